//! The actor's hooks into its process's cgroup (see [`crate::process::cgroup`]): entered at the start,
//! signalled and killed with the group at a stop, waited for by an event until empty, removed when
//! the process goes.

use std::path::{Path, PathBuf};

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::super::cgroup;
use super::ProcessActor;

impl ProcessActor {
    /// The cgroup a start puts the child in, created now; `None` in group mode.
    /// A limit that cannot be had here refuses the start, never silently ignored.
    pub(super) fn cgroup_for_start(&mut self) -> Result<Option<PathBuf>, PmError> {
        let fail = |cause: String| PmError::Spawn {
            name: self.spec.name.clone(),
            cause,
        };
        if let Some(why) = cgroup::refusal(&self.spec.limits) {
            return Err(fail(why));
        }
        let Some(tree) = cgroup::tree() else {
            return Ok(None);
        };
        // One cgroup for every run of the process: made at its first start (or found by adoption),
        // removed at its delete. A restart makes no directory and writes no limit again (the spec
        // of an actor never changes).
        let path = match self.cgroup().map(Path::to_path_buf) {
            Some(path) if self.cgroup_killed => {
                // A child cloned with CLONE_INTO_CGROUP into a cgroup that was once killed through
                // `cgroup.kill` is killed at birth on some kernels (6.18 here: the cgroup's kill
                // count is ahead of the one the child took): a fresh directory takes its place.
                // The stop that killed it is over, so it is empty.
                self.cgroup_killed = false;
                if std::fs::remove_dir(&path).is_ok() {
                    std::fs::create_dir(&path)
                        .map_err(|e| fail(format!("cannot make cgroup {}: {e}", path.display())))?;
                    self.cgroup_limits_written = self.spec.limits == Default::default();
                }
                path
            }
            Some(path) => path,
            None => {
                let (path, token, made) = tree
                    .create(&self.spec.name, self.spec.detach)
                    .map_err(|e| fail(e.to_string()))?;
                // A new cgroup has no limit: with none asked, there is nothing to write (four
                // lookups of files saved at each first start).
                self.cgroup_limits_written = made && self.spec.limits == Default::default();
                self.cgroup_token = Some(token);
                set_cgroup(&mut self.info, Some(&path));
                path
            }
        };
        if !self.cgroup_limits_written {
            cgroup::write_limits(&path, &self.spec.limits).map_err(|e| fail(e.to_string()))?;
            self.cgroup_limits_written = true;
        }
        // Without the memory controller the file does not exist: no open that fails at each start.
        if tree.has("memory") {
            self.oom_kills_before = cgroup::keyed_value(&path, "memory.events", "oom_kill");
        }
        Ok(Some(path))
    }

    /// Whether the OOM killer killed in the cgroup since the start: the description of the exit.
    pub(super) fn oom_killed(&self) -> Option<String> {
        let path = self.cgroup()?;
        if !cgroup::tree()?.has("memory") {
            return None;
        }
        let now = cgroup::keyed_value(path, "memory.events", "oom_kill")?;
        if now <= self.oom_kills_before.unwrap_or(0) {
            return None;
        }
        Some(match self.spec.limits.memory_max {
            Some(max) => format!(
                "killed by the OOM killer (memory_max {})",
                pm_protocol::status::bytes_text(max)
            ),
            None => "killed by the OOM killer".into(),
        })
    }

    /// Whether the process's cgroup still holds a process.
    pub(super) fn cgroup_busy(&self) -> bool {
        self.cgroup().is_some_and(cgroup::populated)
    }

    /// Sends `sig` to every process of the cgroup (those that left the group included).
    pub(super) fn cgroup_signal(&self, sig: i32) {
        if let Some(path) = self.cgroup() {
            cgroup::signal_all(path, sig);
        }
    }

    /// Kills every process of the cgroup.
    pub(super) fn cgroup_kill(&mut self) {
        if let Some(path) = self.cgroup() {
            cgroup::kill_all(path);
            self.cgroup_killed = true;
        }
    }

    /// The stop of run `run_id` waits for the cgroup to be empty: an inotify event on its
    /// `cgroup.events` calls [`ProcessActor::poll_group`] again (instead of its polling interval).
    pub(super) fn wait_cgroup_empty(
        &mut self,
        run_id: u64,
        guarded: bool,
        ctx: &mut Context<Self>,
    ) {
        let (Some(path), Some(i)) = (
            self.cgroup().map(Path::to_path_buf),
            self.stops.iter().position(|s| s.run_id == run_id),
        ) else {
            return;
        };
        if let Some(h) = self.stops[i].poll.take() {
            ctx.cancel_future(h);
        }
        let wait = cgroup::wait_empty(path)
            .into_actor(self)
            .map(move |(), act, ctx| act.poll_group(run_id, guarded, ctx));
        self.stops[i].poll = Some(ctx.spawn(wait));
    }

    /// The process's cgroup, made at its first start (or found by adoption) and kept across its
    /// restarts until its delete; `None` in group mode. The status record's `cgroup` is the one copy
    /// of its path.
    pub(super) fn cgroup(&self) -> Option<&Path> {
        Some(Path::new(&self.info.cgroup)).filter(|p| !p.as_os_str().is_empty())
    }

    /// The actor goes away: a cgroup whose processes do not outlive the daemon is killed and, once
    /// empty, removed (unless a new actor of the same name owns it by now).
    pub(super) fn release_cgroup(&mut self, keep_alive: bool) {
        let path = self.cgroup().map(Path::to_path_buf);
        set_cgroup(&mut self.info, None);
        if let Some((path, token)) = path.zip(self.cgroup_token.take()) {
            if !keep_alive {
                cgroup::release(path, token, true);
            }
        }
    }
}

/// Sets the cgroup of a status record (the actor's one copy of its path, see
/// [`ProcessActor::cgroup`]), and its `containment` with it.
pub(super) fn set_cgroup(info: &mut ProcessInfo, path: Option<&Path>) {
    match path {
        // A restart keeps its cgroup: nothing to write then.
        Some(path) if Path::new(&info.cgroup) == path => {}
        Some(path) => {
            info.containment = "cgroup".into();
            info.cgroup = path.display().to_string();
        }
        None => {
            info.containment = "group".into();
            info.cgroup.clear();
        }
    }
}
