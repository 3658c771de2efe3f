//! Ending a run: watching its pidfd (or polling where pidfds are missing), reaping it, and the final
//! status; and the child left behind when the actor itself goes away.

use std::time::Duration;

use actix::prelude::*;
use chrono::Local;
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_protocol::{ExitInfo, KernelState, PmError, Status};
use tokio::sync::oneshot;

use super::super::pidfd;
use super::super::signal::signal_name;
use super::stop::{group_alive, GROUP_POLL};
use super::{answer, now_rfc3339, Origin, ProcessActor, Run, StopReason};

/// Polling interval for exits where pidfds are not available (Linux before 5.3).
const FALLBACK_POLL: Duration = Duration::from_millis(100);

fn exit_info(status: std::process::ExitStatus) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    ExitInfo {
        reason: None,
        code: status.code(),
        signal: status.signal().map(signal_name),
        time: Local::now(),
    }
}

/// The exit of a process whose status cannot be known.
fn unknown_exit() -> ExitInfo {
    ExitInfo {
        reason: None,
        code: None,
        signal: None,
        time: Local::now(),
    }
}

impl ProcessActor {
    /// Learns of the exit of run `id` without polling (a pidfd), or by polling where pidfds are missing.
    pub(super) fn watch_exit(&mut self, id: u64, pid: i32, ctx: &mut Context<Self>) {
        let Some(run) = self.current_run(id) else {
            return;
        };
        let fd = match run.origin.foreign().and_then(|f| f.pidfd.as_ref()) {
            Some(fd) => fd.try_clone().ok(),
            None => pidfd::open(pid).ok(),
        };
        match fd {
            Some(fd) => {
                let fut = async move { pidfd::exited(fd).await.is_ok() };
                ctx.spawn(fut.into_actor(self).map(move |ok, act, ctx| {
                    if ok {
                        act.on_exit(id, ctx);
                    } else {
                        act.poll_exit(id, ctx);
                    }
                }));
            }
            None => self.poll_exit(id, ctx),
        }
    }

    fn poll_exit(&mut self, id: u64, ctx: &mut Context<Self>) {
        ctx.run_later(FALLBACK_POLL, move |act, ctx| {
            if act.current_run(id).is_some() && !act.try_exit(id, ctx) {
                act.poll_exit(id, ctx);
            }
        });
    }

    /// The pidfd of run `id` became readable: reap it.
    fn on_exit(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.current_run(id).is_some() && !self.try_exit(id, ctx) {
            // Readable yet not reapable should not happen; fall back to polling rather than lose it.
            self.poll_exit(id, ctx);
        }
    }

    /// Reaps run `id` if it has exited; true when it has.
    pub(super) fn try_exit(&mut self, id: u64, ctx: &mut Context<Self>) -> bool {
        let Some(run) = self.run.as_mut().filter(|r| r.id == id) else {
            return true;
        };
        let exit = match &mut run.origin {
            Origin::Child(child) => match child.try_wait() {
                Ok(Some(status)) => exit_info(status),
                Ok(None) => return false,
                Err(_) => unknown_exit(),
            },
            // Gone when its pidfd fired, or when the pid no longer has its start time.
            Origin::Adopted(f) | Origin::Attached(f) => {
                if f.pidfd.is_none() && f.still_running(run.pid) {
                    return false;
                }
                unknown_exit()
            }
        };
        let Some(run) = self.replace_run(None) else {
            return true;
        };
        self.finish_run(run, exit, ctx);
        true
    }

    /// The run has exited: its final status, its waiters answered, and the rest of its group (which
    /// may live on) handed to the stop that waits for it or watched as lingering.
    fn finish_run(&mut self, run: Run, mut exit: ExitInfo, ctx: &mut Context<Self>) {
        if let Some(h) = run.deadline {
            ctx.cancel_future(h);
        }
        let by_probe = run.stop == Some(StopReason::Probe);
        self.probes_end(run.pid, by_probe, &mut exit, ctx);
        if exit.reason.is_none() && !exit.success() {
            exit.reason = self.oom_killed();
        }
        let (status, error) = match (&run.origin, run.stop) {
            (Origin::Attached(_), _) => (Status::Terminated, String::new()),
            (_, Some(StopReason::User)) => (Status::Stopped, String::new()),
            (_, Some(StopReason::Deadline(secs))) => {
                (Status::Stopped, format!("deadline of {secs} s exceeded"))
            }
            (_, Some(StopReason::Probe)) => (Status::Failed, exit.describe()),
            (Origin::Adopted(_), None) => (
                Status::Failed,
                "ended while adopted after a daemon restart (exit status unknown)".to_string(),
            ),
            (Origin::Child(_), None) if exit.success() => (Status::Completed, String::new()),
            (Origin::Child(_), None) => (Status::Failed, exit.describe()),
        };
        self.info.error = error;
        self.info.exit_code = exit.code;
        self.info.exit_signal = exit.signal.clone();
        self.info.end_time = now_rfc3339(exit.time);
        self.info.pid = 0;
        self.info.cpu_percent = 0.0;
        self.info.memory_mb = 0.0;
        self.info.uptime_secs = None;
        self.last_exit = Some(exit.clone());
        for w in self.waiters.drain(..) {
            let _ = w.send(Ok(exit.clone()));
        }

        // The rest of the group may live on (a backgrounded job).
        // An attached process's group is not ours to wait for: its members (zombies included) belong
        // to someone else; the stop ends when the process itself is gone.
        let ours = matches!(run.origin, Origin::Child(_));
        let group_left = run.pgid.filter(|&g| ours && group_alive(g));
        match group_left {
            None => {
                if let (true, Some(g), Some(pgid)) = (run.guarded, &self.opts.guard, run.pgid) {
                    g.unregister(pgid);
                }
            }
            Some(pgid) if !self.stops.iter().any(|s| s.run_id == run.id) => {
                self.watch_lingering(pgid, run.guarded, ctx);
            }
            Some(_) => {}
        }
        if let Some(i) = self.stops.iter().position(|s| s.run_id == run.id) {
            self.stops[i].exit = Some(exit.clone());
            if group_left.is_none() && !self.cgroup_busy() {
                self.group_gone(run.id, ctx);
            } else {
                let run_id = run.id;
                let guarded = run.guarded;
                let h = ctx.run_interval(GROUP_POLL, move |act, ctx| {
                    act.poll_group(run_id, guarded, ctx)
                });
                self.stops[i].poll = Some(h);
            }
        }

        self.set_status(status, run.pid, Some(exit));
        self.set_state(KernelState::Terminated, run.pid);
    }

    /// Waits for the current run's exit; with no run, answers the last exit at once.
    pub(super) fn exit_waiter(&mut self) -> ResponseFuture<Result<ExitInfo, PmError>> {
        if self.run.is_none() {
            let r = self
                .last_exit
                .clone()
                .ok_or_else(|| PmError::NotRunning(self.spec.name.clone()));
            return Box::pin(async move { r });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        Box::pin(answer(rx))
    }

    /// The actor goes away (deleted, or its system stops): a non-detached child goes with it, and a
    /// thread reaps whatever child is left so that none becomes a zombie.
    pub(super) fn abandon_run(&mut self) {
        let Some(Run {
            origin: Origin::Child(mut child),
            pid,
            guarded,
            ..
        }) = self.replace_run(None)
        else {
            return;
        };
        if !self.spec.detach {
            let _ = kill(Pid::from_raw(-pid), NixSignal::SIGKILL);
        }
        let guard = self.opts.guard.clone().filter(|_| guarded);
        let pgid = pid;
        let _ = std::thread::Builder::new()
            .name("pm-reaper".into())
            .spawn(move || {
                let _ = child.wait();
                if let Some(g) = guard {
                    g.unregister(pgid);
                }
            });
    }
}
