//! The status record: readings of the run's tree (kernel state, CPU, memory, an attached process's
//! command line), the record as asked, and pages of the log ring.

use actix::prelude::*;
use pm_protocol::{CommandLine, KernelState, ProcessInfo};

use super::super::monitor::Sample;
use super::super::monitor::TreeNotice;
use super::super::procfs;
use super::{Foreign, Origin, ProcessActor};

impl ProcessActor {
    /// Reads /proc for the whole tree now and updates the status record.
    pub(super) fn sample_now(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = self.run.as_ref().and_then(|r| r.watch.as_ref()) else {
            return;
        };
        let sampled = watch.sample_now().ok();
        self.apply_sample(sampled, ctx);
    }

    /// The monitor has a reading worth acting on; one about an earlier run's tree is stale.
    pub(super) fn on_tree_notice(&mut self, notice: TreeNotice, ctx: &mut Context<Self>) {
        let watch = self.run.as_ref().and_then(|r| r.watch.as_ref());
        if let Some(latest) = watch.filter(|w| w.id() == notice.watch).map(|w| w.latest()) {
            self.apply_sample(latest, ctx);
        }
    }

    /// Takes up a reading of the run's tree (`None`: the root could not be read): the kernel state (an
    /// event when it changed), CPU and memory, and the command line an attached process lacked.
    fn apply_sample(&mut self, sampled: Option<Sample>, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_ref() else { return };
        let (pid, id) = (run.pid, run.id);
        let lacks_command = self.lacks_command(run);
        // An attached process without a pidfd: a root that cannot be read may be one that is gone.
        let attached_without_pidfd =
            matches!(run.origin, Origin::Attached(Foreign { pidfd: None, .. }));
        match sampled {
            Some(s) => {
                self.info.cpu_percent = s.cpu_percent;
                self.info.memory_mb = s.rss_bytes as f64 / 1_048_576.0;
                self.set_state(s.state, pid);
                if lacks_command {
                    let cmdline = self
                        .run
                        .as_ref()
                        .and_then(|r| r.watch.as_ref()?.take_command())
                        .unwrap_or_else(|| procfs::read_cmdline(pid));
                    if let Some((program, args)) = cmdline.split_first() {
                        std::sync::Arc::make_mut(&mut self.spec).command = CommandLine::Exec {
                            program: program.clone(),
                            args: args.to_vec(),
                        };
                        self.info.args = args.to_vec();
                        self.info.command = cmdline.join(" ");
                    }
                }
            }
            None => {
                if attached_without_pidfd {
                    self.try_exit(id, ctx);
                } else {
                    self.set_state(KernelState::Unavailable, pid);
                }
            }
        }
    }

    /// The status record now: the latest reading of the tree, the uptime, and a log file's write error.
    pub(super) fn info_now(&self) -> ProcessInfo {
        self.info.now()
    }

    /// A page of the ring (an empty one if a reader thread panicked while holding it).
    pub(super) fn log_page(
        &self,
        after: Option<u64>,
        lines: Option<usize>,
    ) -> pm_protocol::logs::LogPage {
        self.ring
            .lock()
            .map(|r| r.page(after, lines))
            .unwrap_or_default()
    }
}
