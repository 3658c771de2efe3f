//! The actor's hooks into its process's cgroup (see [`crate::process::cgroup`]): entered at the start,
//! signalled and killed with the group at a stop, waited for by an event until empty, removed when
//! the process goes.

use std::path::PathBuf;

use actix::prelude::*;
use pm_protocol::PmError;

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
        let path = match &self.cgroup {
            Some(path) if self.cgroup_killed => {
                // A child cloned with CLONE_INTO_CGROUP into a cgroup that was once killed through
                // `cgroup.kill` is killed at birth on some kernels (6.18 here: the cgroup's kill
                // count is ahead of the one the child took): a fresh directory takes its place.
                // The stop that killed it is over, so it is empty.
                self.cgroup_killed = false;
                if std::fs::remove_dir(path).is_ok() {
                    std::fs::create_dir(path)
                        .map_err(|e| fail(format!("cannot make cgroup {}: {e}", path.display())))?;
                    self.cgroup_limits_written = self.spec.limits == Default::default();
                }
                path.clone()
            }
            Some(path) => path.clone(),
            None => {
                let (path, token, made) = tree
                    .create(&self.spec.name, self.spec.detach)
                    .map_err(|e| fail(e.to_string()))?;
                // A new cgroup has no limit: with none asked, there is nothing to write (four
                // lookups of files saved at each first start).
                self.cgroup_limits_written = made && self.spec.limits == Default::default();
                self.cgroup_token = Some(token);
                self.cgroup = Some(path.clone());
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
        let path = self.cgroup.as_deref()?;
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
        self.cgroup.as_deref().is_some_and(cgroup::populated)
    }

    /// Sends `sig` to every process of the cgroup (those that left the group included).
    pub(super) fn cgroup_signal(&self, sig: i32) {
        if let Some(path) = &self.cgroup {
            cgroup::signal_all(path, sig);
        }
    }

    /// Kills every process of the cgroup.
    pub(super) fn cgroup_kill(&mut self) {
        if let Some(path) = &self.cgroup {
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
            self.cgroup.clone(),
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

    /// `containment` and `cgroup` of the status record: `cgroup` while this actor owns a cgroup (it
    /// makes it at a start and removes it when it lets it go). Called for every status and list, so
    /// it only writes what changed and asks the file system nothing it knows already.
    pub(super) fn containment_info(&mut self) {
        self.info.memory_max = self.spec.limits.memory_max;
        let Some(path) = &self.cgroup else {
            if self.info.containment != "group" {
                self.info.containment = "group".into();
                self.info.cgroup.clear();
            }
            return;
        };
        if std::path::Path::new(&self.info.cgroup) != path.as_path() {
            self.info.containment = "cgroup".into();
            self.info.cgroup = path.display().to_string();
        }
        // Only where the memory controller is on: elsewhere the files do not exist, and a list of
        // thousands would try to open two missing files for each process.
        if cgroup::tree().is_some_and(|t| t.has("memory")) {
            self.info.memory_current = std::fs::read_to_string(path.join("memory.current"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            self.info.oom_kills =
                cgroup::keyed_value(path, "memory.events", "oom_kill").unwrap_or(0);
        }
    }

    /// The actor goes away: a cgroup whose processes do not outlive the daemon is killed and, once
    /// empty, removed (unless a new actor of the same name owns it by now).
    pub(super) fn release_cgroup(&mut self, keep_alive: bool) {
        if let Some((path, token)) = self.cgroup.take().zip(self.cgroup_token.take()) {
            if !keep_alive {
                cgroup::release(path, token, true);
            }
        }
    }
}
