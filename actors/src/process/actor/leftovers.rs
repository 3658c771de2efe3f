//! What a run that ended by itself left behind: the members of its process group that outlived
//! their leader, and what is left in its cgroup. A user's stop of the process takes them down as it
//! would a run (the stop signal, SIGKILL after the grace), so that `stop` never answers while
//! something of the process still runs.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_protocol::{ExitInfo, PmError};

use super::super::cgroup;
use super::super::signal::to_nix;
use super::stop::{group_alive, GROUP_POLL};
use super::ProcessActor;

impl ProcessActor {
    /// The leftovers of an ended run, if there are any: its lingering groups and its cgroup while
    /// populated.
    fn leftovers(&self) -> Option<(Vec<i32>, Option<PathBuf>)> {
        let groups: Vec<i32> = self.lingering.iter().map(|g| g.pgid).collect();
        let cgroup = self
            .cgroup()
            .map(std::path::Path::to_path_buf)
            .filter(|p| cgroup::populated(p));
        (!groups.is_empty() || cgroup.is_some()).then_some((groups, cgroup))
    }

    /// A user's stop of a process that is not running: its leftovers get the stop signal now and
    /// SIGKILL after the grace; answers `NotRunning` (a stop with nothing to stop) once they are
    /// gone, at once when there are none. Nothing here blocks: the wait is a timer and, for the
    /// cgroup, an event on its `cgroup.events`.
    pub(super) fn stop_leftovers(
        &mut self,
        grace: Option<Duration>,
        not_running: PmError,
    ) -> actix::ResponseFuture<Result<ExitInfo, PmError>> {
        let Some((groups, cgroup)) = self.leftovers() else {
            return Box::pin(async move { Err(not_running) });
        };
        let grace = grace.unwrap_or(Duration::from_millis(self.spec.grace_ms));
        let signal = to_nix(self.spec.stop_signal).unwrap_or(NixSignal::SIGTERM);
        signal_groups(&groups, signal);
        if let Some(path) = &cgroup {
            cgroup::signal_all(path, signal as i32);
            // It may be killed below, after the grace (see `cgroup_for_start`).
            self.cgroup_killed = true;
        }
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + grace;
            if let Some(path) = cgroup {
                if tokio::time::timeout_at(deadline, cgroup::wait_empty(path.clone()))
                    .await
                    .is_err()
                {
                    cgroup::kill_all(&path);
                }
                while cgroup::populated(&path) {
                    cgroup::wait_empty(path.clone()).await;
                }
            }
            let mut killed = false;
            while groups.iter().any(|&g| group_alive(g)) {
                if !killed && tokio::time::Instant::now() >= deadline {
                    signal_groups(&groups, NixSignal::SIGKILL);
                    killed = true;
                }
                tokio::time::sleep(GROUP_POLL).await;
            }
            Err(not_running)
        })
    }
}

fn signal_groups(groups: &[i32], signal: NixSignal) {
    for &pgid in groups {
        if let Err(e) = kill(Pid::from_raw(-pgid), signal) {
            tracing::debug!("{signal} to the group {pgid} left behind: {e}");
        }
    }
}
