//! Readiness and health of each run (`ready:`, `health:`, `watchdog:`): the readiness check loop,
//! the health check loop once ready, the notify socket's messages, and the stop of a run that is
//! unhealthy or not ready in time.
//!
//! Readiness is a fact of one run: every start begins `starting` (when the process has a `ready:`
//! or `health:` option) and becomes `ready` once its condition holds, which the registry learns from
//! the `ready` event. Checks are futures on the actor's context; each result is looked at only if
//! its run is still the current one and not stopping, so nothing needs cancelling when a run ends.
//! The next check is armed when the previous one has answered: a slow check never overlaps itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::Local;
use pm_protocol::{EventKind, ExitInfo, Health, Probe, Readiness, RestartPolicy};
use regex::Regex;
use tokio::sync::oneshot;

use super::super::logs::ReadyLine;
use super::super::probe::{self, human, notify};
use super::super::spawn;
use super::{now_rfc3339, ProcessActor, StopReason};

/// The readiness and health of the current run, and what outlives runs (the notify socket).
#[derive(Default)]
pub(super) struct ProbeState {
    run_id: u64,
    ready: bool,
    /// The health check loop of this run is armed (once per run, though a notify process may
    /// become ready again after `RELOADING=1`).
    checking: bool,
    /// Consecutive failed health checks (or watchdog expiries).
    failures: u32,
    /// Why the supervisor stops the current run (`unhealthy: ...`, `not ready within 5 s`).
    pub(super) stop_reason: Option<String>,
    watchdog: Option<SpawnHandle>,
    notify: Option<notify::NotifySocket>,
    /// The `ready:'log:...'` regex, compiled at the first start.
    ready_regex: Option<Arc<Regex>>,
    /// What the readiness and the health check loops keep between checks.
    prepared: [probe::Prepared; 2],
}

/// What a check's answer feeds.
#[derive(Clone, Copy)]
enum CheckKind {
    Ready,
    Health,
}

impl ProcessActor {
    /// The notify socket's path for a `ready:notify` start (bound at the first one), to give the
    /// child as `NOTIFY_SOCKET`; `None` for any other readiness.
    pub(super) fn notify_socket(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> Result<Option<PathBuf>, String> {
        if self.spec.probes.ready != Readiness::Notify {
            return Ok(None);
        }
        if let Some(s) = &self.probes.notify {
            return Ok(Some(s.path().to_path_buf()));
        }
        let path = self
            .opts
            .notify_dir()
            .join(format!("{}.notify", self.spec.name));
        let (socket, datagrams) = notify::NotifySocket::bind(&path)
            .map_err(|e| format!("cannot bind the notify socket {}: {e}", path.display()))?;
        ctx.add_stream(Datagrams(datagrams));
        self.probes.notify = Some(socket);
        Ok(Some(path))
    }

    /// The log-line watch of run `id` for its capture, with `ready:'log:...'`.
    pub(super) fn ready_line(&mut self, id: u64, ctx: &mut Context<Self>) -> Option<ReadyLine> {
        let Readiness::Log(re) = &self.spec.probes.ready else {
            return None;
        };
        if self.probes.ready_regex.is_none() {
            // Checked where the option is defined; a regex refused here is reported, never matched.
            match Regex::new(re) {
                Ok(r) => self.probes.ready_regex = Some(Arc::new(r)),
                Err(e) => {
                    self.info.health_detail = format!("bad regex: {e}");
                    return None;
                }
            }
        }
        let regex = self.probes.ready_regex.clone()?;
        let (tx, rx) = oneshot::channel();
        ctx.spawn(rx.into_actor(self).map(move |matched, act, ctx| {
            if matched.is_ok() {
                act.become_ready(id, ctx);
            }
        }));
        Some(ReadyLine {
            regex,
            matched: Arc::new(Mutex::new(Some(tx))),
        })
    }

    /// Run `id` has started: `starting` until its readiness holds, then its health checks.
    pub(super) fn probes_begin(&mut self, id: u64, ctx: &mut Context<Self>) {
        self.probes_run(id, false, ctx);
    }

    /// Readiness and health for run `id`, started by us or `adopted`.
    fn probes_run(&mut self, id: u64, adopted: bool, ctx: &mut Context<Self>) {
        if let (Some(socket), Some(run)) = (&self.probes.notify, &self.run) {
            socket.set_leader(run.pid);
        }
        let settings = &self.spec.probes;
        self.probes.run_id = id;
        self.probes.ready = false;
        self.probes.checking = false;
        self.probes.failures = 0;
        self.probes.stop_reason = None;
        if let Some(h) = self.probes.watchdog.take() {
            ctx.cancel_future(h);
        }
        if !settings.has_health() {
            return;
        }
        self.info.health = Some(Health::Starting);
        self.info.ready_since = None;
        self.info.health_detail.clear();
        if let Some(within) = settings
            .ready_within_ms
            .filter(|_| !adopted)
            .map(Duration::from_millis)
        {
            ctx.run_later(within, move |act, ctx| {
                if act.probes.run_id == id && !act.probes.ready {
                    act.probe_stop(id, format!("not ready within {}", human(within)), ctx);
                }
            });
        }
        match &settings.ready {
            Readiness::Check(_) => self.check_later(id, CheckKind::Ready, Duration::ZERO, ctx),
            _ if adopted => self.become_ready(id, ctx),
            Readiness::Started => self.become_ready(id, ctx),
            // Told by the notify socket, the log capture, or the exit.
            Readiness::Notify | Readiness::Log(_) | Readiness::Exited => {}
        }
    }

    /// Run `id` was adopted after a daemon restart: it ran before, so a readiness that cannot be
    /// asked again (notify, log, started) holds at once, a check is asked again, and the health
    /// checks resume. A notify process keeps its socket path, bound again here.
    pub(super) fn probes_adopted(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.current_run(id).is_none() {
            return;
        }
        if let Err(e) = self.notify_socket(ctx) {
            tracing::warn!(process = %self.spec.name, "{e}");
        }
        self.probes_run(id, true, ctx);
    }

    /// Run `id` is ready: the `ready` event (the registry's cue), `ready_since`, the health checks.
    fn become_ready(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(pid) = self.live_run(id) else {
            return;
        };
        if self.probes.ready {
            return;
        }
        self.probes.ready = true;
        self.probes.failures = 0;
        self.info.health = Some(Health::Ready);
        self.info.ready_since = Some(now_rfc3339(Local::now()));
        self.emit(pid, EventKind::Ready, None);
        if self.spec.probes.health.is_some() && !self.probes.checking {
            self.probes.checking = true;
            let period = Duration::from_millis(self.spec.probes.health_period_ms);
            self.check_later(id, CheckKind::Health, period, ctx);
        }
        self.arm_watchdog(id, ctx);
    }

    /// The pid of run `id` while it is the current run and no stop is under way.
    fn live_run(&self, id: u64) -> Option<i32> {
        self.current_run(id)
            .filter(|r| r.stop.is_none())
            .map(|r| r.pid)
    }

    /// Arms the next check of `kind` after `delay`, on the daemon's shared grid of check times.
    fn check_later(&mut self, id: u64, kind: CheckKind, delay: Duration, ctx: &mut Context<Self>) {
        let delay = probe::coalesced(delay);
        ctx.run_later(delay, move |act, ctx| act.check_now(id, kind, ctx));
    }

    /// Runs one check of `kind` for run `id`, its answer handled on the actor.
    fn check_now(&mut self, id: u64, kind: CheckKind, ctx: &mut Context<Self>) {
        if self.live_run(id).is_none() {
            return;
        }
        let p = &self.spec.probes;
        let (probe, timeout) = match (kind, &p.ready, &p.health) {
            (CheckKind::Ready, Readiness::Check(probe), _) => (probe, p.ready_timeout_ms),
            (CheckKind::Health, _, Some(probe)) => (probe, p.health_timeout_ms),
            _ => return,
        };
        if matches!(probe, Probe::Exec(_)) && !spawn::kit_free() {
            // Every spawn kit is lent to a child on its way to its exec: wait in the reactor.
            ctx.spawn(
                spawn::kit_freed()
                    .into_actor(self)
                    .map(move |(), act, ctx| act.check_now(id, kind, ctx)),
            );
            return;
        }
        let guard = self.guard().cloned();
        let prepared = &mut self.probes.prepared[kind as usize];
        let check = probe::check(
            probe,
            prepared,
            &self.spec,
            Duration::from_millis(timeout),
            guard,
        );
        ctx.spawn(check.into_actor(self).map(move |res, act, ctx| match kind {
            CheckKind::Ready => act.ready_answer(id, res, ctx),
            CheckKind::Health => act.health_answer(id, res, ctx),
        }));
    }

    fn ready_answer(&mut self, id: u64, res: Result<(), String>, ctx: &mut Context<Self>) {
        if self.live_run(id).is_none() || self.probes.ready {
            return;
        }
        match res {
            Ok(()) => self.become_ready(id, ctx),
            Err(why) => {
                self.info.health_detail = why;
                let period = Duration::from_millis(self.spec.probes.ready_period_ms);
                self.check_later(id, CheckKind::Ready, period, ctx);
            }
        }
    }

    fn health_answer(&mut self, id: u64, res: Result<(), String>, ctx: &mut Context<Self>) {
        if self.live_run(id).is_none() {
            return;
        }
        self.health_result(id, res, ctx);
        if self.live_run(id).is_some() {
            let period = Duration::from_millis(self.spec.probes.health_period_ms);
            self.check_later(id, CheckKind::Health, period, ctx);
        }
    }

    /// One passed or failed health check (or watchdog period) of run `id`.
    fn health_result(&mut self, id: u64, res: Result<(), String>, ctx: &mut Context<Self>) {
        let Some(pid) = self.live_run(id) else {
            return;
        };
        let why = match res {
            Ok(()) => {
                // A pass before the threshold resets the count (and ends an `unhealthy` that the
                // policy `never` left running).
                self.probes.failures = 0;
                if self.probes.ready {
                    self.info.health = Some(Health::Ready);
                }
                return;
            }
            Err(why) => why,
        };
        self.probes.failures += 1;
        self.info.health_detail = why.clone();
        if self.probes.failures < self.spec.probes.health_failures
            || self.info.health == Some(Health::Unhealthy)
        {
            return;
        }
        self.info.health = Some(Health::Unhealthy);
        self.emit(
            pid,
            EventKind::Unhealthy {
                detail: why.clone(),
            },
            None,
        );
        if self.spec.restart.policy != RestartPolicy::Never {
            self.probe_stop(id, format!("unhealthy: {why}"), ctx);
        }
    }

    /// Stops run `id` for a reason of its own: it then ends `failed` with `reason` as its last
    /// exit, and its restart policy decides what follows.
    fn probe_stop(&mut self, id: u64, reason: String, ctx: &mut Context<Self>) {
        if self.live_run(id).is_none() {
            return;
        }
        tracing::warn!(process = %self.spec.name, "{reason}");
        self.info.health_detail = reason.clone();
        self.probes.stop_reason = Some(reason);
        let _ = self.begin_stop(StopReason::Probe, None, ctx);
    }

    /// With `watchdog:`, a failed check whenever no `WATCHDOG=1` came for that long.
    fn arm_watchdog(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(period) = self.spec.probes.watchdog_ms.map(Duration::from_millis) else {
            return;
        };
        if let Some(h) = self.probes.watchdog.take() {
            ctx.cancel_future(h);
        }
        self.probes.watchdog = Some(ctx.run_later(period, move |act, ctx| {
            act.probes.watchdog = None;
            let why = format!("no WATCHDOG=1 for {}", human(period));
            act.health_result(id, Err(why), ctx);
            act.arm_watchdog(id, ctx);
        }));
    }

    /// The run has exited with `exit`: `ready:exited` is ready now if it exited 0 by itself; a run
    /// the supervisor stopped for a reason of its own carries that reason. Its health ends with it.
    pub(super) fn probes_end(
        &mut self,
        pid: i32,
        by_probe: bool,
        exit: &mut ExitInfo,
        ctx: &mut Context<Self>,
    ) {
        if let Some(h) = self.probes.watchdog.take() {
            ctx.cancel_future(h);
        }
        if let Some(socket) = &self.probes.notify {
            socket.set_leader(0);
        }
        if by_probe {
            exit.reason = self.probes.stop_reason.take();
        }
        if !self.spec.probes.has_health() {
            return;
        }
        if self.spec.probes.ready == Readiness::Exited && exit.success() && !by_probe {
            self.probes.ready = true;
            self.info.health = Some(Health::Ready);
            self.info.ready_since = Some(now_rfc3339(Local::now()));
            self.emit(pid, EventKind::Ready, None);
            return;
        }
        self.info.health = None;
        self.info.ready_since = None;
    }

    /// A datagram from the notify socket: only the current run's tree may speak.
    fn on_notify(&mut self, d: notify::NotifyDatagram, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_ref().filter(|r| r.stop.is_none()) else {
            return;
        };
        let (id, leader) = (run.id, run.pid);
        // Checked as it was read, while its sender was surely still there to look at.
        if d.tree_of != Some(leader) {
            tracing::debug!(process = %self.spec.name, pid = ?d.pid, "notify refused: not its tree");
            return;
        }
        for (key, value) in d.assignments() {
            match (key, value) {
                ("READY", "1") => self.become_ready(id, ctx),
                ("STATUS", text) => self.info.health_detail = text.to_string(),
                ("WATCHDOG", "1") if self.probes.ready => {
                    self.health_result(id, Ok(()), ctx);
                    self.arm_watchdog(id, ctx);
                }
                ("STOPPING" | "RELOADING", "1") if self.probes.ready => {
                    let detail = if key == "STOPPING" {
                        "stopping"
                    } else {
                        "reloading"
                    };
                    self.probes.ready = false;
                    self.info.health = Some(Health::Starting);
                    self.info.ready_since = None;
                    self.info.health_detail = detail.to_string();
                    self.emit(
                        leader,
                        EventKind::Unready {
                            detail: detail.to_string(),
                        },
                        None,
                    );
                }
                _ => {}
            }
        }
        // `d.fds` (a barrier) close here, once the datagram has been handled.
        drop(d);
    }
}

impl StreamHandler<notify::NotifyDatagram> for ProcessActor {
    fn handle(&mut self, d: notify::NotifyDatagram, ctx: &mut Context<Self>) {
        self.on_notify(d, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The socket's task ends only when the actor drops it; nothing to do.
    }
}

/// The notify socket's channel as a stream for `add_stream`.
struct Datagrams(tokio::sync::mpsc::UnboundedReceiver<notify::NotifyDatagram>);

impl Stream for Datagrams {
    type Item = notify::NotifyDatagram;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
