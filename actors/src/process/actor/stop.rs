//! Stopping a run: the stop signal to its whole group, SIGKILL after the grace time, waiting for the
//! group to be gone; the groups that live on after their leader exited by itself; signals.

use std::time::Duration;

use actix::prelude::*;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_protocol::{ExitInfo, PmError, Status};
use tokio::sync::oneshot;

use super::super::pidfd;
use super::super::signal::{parse_signal, to_nix};
use super::{answer, GroupStop, LingeringGroup, Origin, ProcessActor, Run, StopReason};

/// How often a stop looks whether the rest of the group is gone, once the leader has exited.
pub(super) const GROUP_POLL: Duration = Duration::from_millis(10);

/// Whether any process of group `pgid`, a group we started, still exists. Members orphaned to us (we
/// are a child subreaper) are reaped first, so that zombies do not count as alive. Never asked of an
/// attached process's group, whose members belong to someone else. Only called once the group's
/// leader is reaped: `P_PGID` could otherwise reap the leader behind its `Child`'s back.
pub(super) fn group_alive(pgid: i32) -> bool {
    reap_group(pgid);
    !matches!(kill(Pid::from_raw(-pgid), None), Err(Errno::ESRCH))
}

fn reap_group(pgid: i32) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall with a valid pointer; WNOHANG never blocks.
        let r = unsafe {
            libc::waitid(
                libc::P_PGID,
                pgid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        // SAFETY: si_pid is valid to read after waitid filled (or left zeroed) the struct.
        if r != 0 || unsafe { info.si_pid() } == 0 {
            return;
        }
    }
}

impl ProcessActor {
    /// Sends `sig` to the run's group (or, for an attached process, to exactly that process).
    fn signal_run(run: &Run, sig: NixSignal, group: bool) -> Result<(), PmError> {
        let map_err = |e: Errno| match e {
            Errno::ESRCH => PmError::NoSuchPid { pid: run.pid },
            other => PmError::Io(format!("cannot signal {}: {other}", run.pid)),
        };
        let foreign = match &run.origin {
            Origin::Child(_) => {
                // Our unreaped child: its pid (and so its group id) cannot have been recycled.
                let target = match (group, run.pgid) {
                    (true, Some(g)) => -g,
                    _ => run.pid,
                };
                return kill(Pid::from_raw(target), sig).map_err(map_err);
            }
            Origin::Adopted(f) | Origin::Attached(f) => f,
        };
        // Not our child: prove it is still the same process before touching its pid or group.
        match &foreign.pidfd {
            Some(fd) => pidfd::send_signal(fd, if group { 0 } else { sig as i32 })
                .map_err(|e| map_err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?,
            None => {
                if !foreign.still_running(run.pid) {
                    return Err(PmError::NoSuchPid { pid: run.pid });
                }
                if !group {
                    kill(Pid::from_raw(run.pid), sig).map_err(map_err)?;
                }
            }
        }
        if group {
            let target = run.pgid.map(|g| -g).unwrap_or(run.pid);
            kill(Pid::from_raw(target), sig).map_err(map_err)?;
        }
        Ok(())
    }

    /// The stop sequence: the stop signal now, SIGKILL after the grace time. Never waits here.
    pub(super) fn begin_stop(
        &mut self,
        reason: StopReason,
        grace: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PmError> {
        // A spec's signal is checked where it is defined; a name this platform lacks falls back.
        let stop_signal = to_nix(self.spec.stop_signal).unwrap_or(NixSignal::SIGTERM);
        self.begin_stop_with(reason, grace, stop_signal, ctx)
    }

    /// The stop sequence with `stop_signal`; joins a stop already under way. Answers the run's id.
    pub(super) fn begin_stop_with(
        &mut self,
        reason: StopReason,
        grace: Option<Duration>,
        stop_signal: NixSignal,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PmError> {
        if reason == StopReason::User {
            self.user_stops = self.user_stops.wrapping_add(1);
        }
        let name = self.spec.name.clone();
        let grace = grace.unwrap_or(Duration::from_millis(self.spec.grace_ms));
        let run = self.run.as_mut().ok_or(PmError::NotRunning(name))?;
        let id = run.id;
        if run.stop.is_some() {
            return Ok(id); // already stopping: join it
        }
        run.stop = Some(reason);
        let (pid, pgid) = (run.pid, run.pgid);
        let ours = !matches!(run.origin, Origin::Attached(_));
        let sent = Self::signal_run(run, stop_signal, pgid.is_some());
        self.cgroup_signal(stop_signal as i32);
        let run = self
            .run
            .as_mut()
            .ok_or_else(|| PmError::NotRunning(self.spec.name.clone()))?;
        if sent.is_ok() && !matches!(stop_signal, NixSignal::SIGKILL | NixSignal::SIGCONT) {
            // A stopped (SIGSTOP, SIGTSTP) process keeps the stop signal pending until the SIGKILL;
            // waking it right after lets it act on the signal now, as systemd does.
            if let Err(e) = Self::signal_run(run, NixSignal::SIGCONT, pgid.is_some()) {
                tracing::debug!("SIGCONT after the stop signal to {pid}: {e}");
            }
        }
        let strays = self.sweeps_strays(ours);
        if strays {
            self.signal_strays(stop_signal, pgid);
        }
        let kill_timer = ctx.run_later(grace, move |act, _| act.force_kill(id));
        self.stops.push(GroupStop {
            run_id: id,
            pgid,
            exit: None,
            kill_timer: Some(kill_timer),
            poll: None,
            waiters: Vec::new(),
            restarts: Vec::new(),
            group_gone: false,
            strays,
        });
        self.set_status(Status::Stopping, pid, None);
        if let Err(e) = sent {
            tracing::debug!("stop signal to {pid}: {e}");
        }
        Ok(id)
    }

    /// A user's stop that answers once the whole group is gone, with the run's exit.
    pub(super) fn stop_and_wait(
        &mut self,
        grace: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<ExitInfo, PmError>> {
        match self.begin_stop(StopReason::User, grace, ctx) {
            Ok(id) => self.stop_waiter(id),
            Err(e @ PmError::NotRunning(_)) => self.stop_leftovers(grace, e),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    /// SIGKILL to the whole group now (no grace), answered once the group is gone.
    pub(super) fn kill_and_wait(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<ExitInfo, PmError>> {
        let kill = self.begin_stop_with(
            StopReason::User,
            Some(Duration::ZERO),
            NixSignal::SIGKILL,
            ctx,
        );
        match kill {
            Ok(id) => {
                self.force_kill(id);
                self.stop_waiter(id)
            }
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    /// Sends the signal named `signal` to the current run (its whole group with `group`).
    pub(super) fn signal(&self, signal: &str, group: bool) -> Result<(), PmError> {
        let sig = parse_signal(signal)?;
        let run = self
            .run
            .as_ref()
            .ok_or_else(|| PmError::NotRunning(self.spec.name.clone()))?;
        Self::signal_run(run, sig, group)
    }

    /// SIGKILL to whatever is left of run `id`'s group.
    pub(super) fn force_kill(&mut self, id: u64) {
        self.cgroup_kill();
        let stop = self.stops.iter().find(|s| s.run_id == id);
        if stop.is_some_and(|s| s.strays) {
            self.signal_strays(NixSignal::SIGKILL, None);
        }
        if let Some(run) = self.current_run(id) {
            let _ = Self::signal_run(run, NixSignal::SIGKILL, run.pgid.is_some());
        } else if let Some(pgid) = stop.filter(|s| !s.group_gone).and_then(|s| s.pgid) {
            // The leader is reaped but the group is not empty, so its id is still taken: safe to kill.
            let _ = kill(Pid::from_raw(-pgid), NixSignal::SIGKILL);
        }
    }

    /// Waits for the stop of run `id` to finish; with no such stop, answers the last exit at once.
    pub(super) fn stop_waiter(&mut self, id: u64) -> ResponseFuture<Result<ExitInfo, PmError>> {
        let (tx, rx) = oneshot::channel();
        match self.stops.iter_mut().find(|s| s.run_id == id) {
            Some(stop) => stop.waiters.push(tx),
            None => {
                let _ = tx.send(
                    self.last_exit
                        .clone()
                        .ok_or_else(|| PmError::NotRunning(self.spec.name.clone())),
                );
            }
        }
        Box::pin(answer(rx))
    }

    /// Once the leader of stopped run `run_id` is reaped: finishes the stop when its group is gone.
    pub(super) fn poll_group(&mut self, run_id: u64, guarded: bool, ctx: &mut Context<Self>) {
        let Some(i) = self.stops.iter().position(|s| s.run_id == run_id) else {
            return;
        };
        if self.stops[i].pgid.is_some_and(group_alive) {
            return;
        }
        if self.cgroup_busy() {
            return self.wait_cgroup_empty(run_id, guarded, ctx);
        }
        if let (true, Some(g), Some(pgid)) = (guarded, &self.opts.guard, self.stops[i].pgid) {
            g.unregister(pgid);
        }
        self.group_gone(run_id, ctx);
    }

    /// The stop is over: its timers cancelled, its waiters and restarts answered.
    pub(super) fn finish_stop(&mut self, stop: GroupStop, ctx: &mut Context<Self>) {
        for h in [stop.kill_timer, stop.poll].into_iter().flatten() {
            ctx.cancel_future(h);
        }
        let result = stop
            .exit
            .ok_or_else(|| PmError::Internal("stop finished without an exit".into()));
        for w in stop.waiters {
            let _ = w.send(result.clone());
        }
        for r in stop.restarts {
            let _ = r.send(());
        }
    }

    /// Group `pgid` lives on after its leader exited by itself: looks once a tick whether it is gone.
    pub(super) fn watch_lingering(&mut self, pgid: i32, guarded: bool, ctx: &mut Context<Self>) {
        self.lingering.push(LingeringGroup { pgid, guarded });
        if self.lingering_check.is_none() {
            let check = ctx.run_interval(self.opts.tick, |act, ctx| act.forget_gone_groups(ctx));
            self.lingering_check = Some(check);
        }
    }

    /// Forgets the lingering groups that are gone (unregistering them from the guard), and stops
    /// looking once none is left.
    fn forget_gone_groups(&mut self, ctx: &mut Context<Self>) {
        let guard = self.opts.guard.clone();
        self.lingering.retain(|group| {
            let alive = group_alive(group.pgid);
            if !alive && group.guarded {
                if let Some(g) = &guard {
                    g.unregister(group.pgid);
                }
            }
            alive
        });
        if self.lingering.is_empty() {
            if let Some(check) = self.lingering_check.take() {
                ctx.cancel_future(check);
            }
        }
    }
}
