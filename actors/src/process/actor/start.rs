//! Starting a run: a free spawn kit, the clone, a failed spawn, the exec'd child wired up (exit
//! watcher, deadline, log capture), and a restart.

use std::borrow::Cow;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Local;
use pm_protocol::{KernelState, PmError, Status, Stream};
use tokio::sync::oneshot;

use super::super::child::Spawned;
use super::super::env_file;
use super::super::limits;
use super::super::logs::{Capture, ReadyLine};
use super::super::monitor::Monitor;
use super::super::options::OutputTarget;
use super::super::spawn::{self, StdioPlan};
use super::{answer, now_rfc3339, Origin, ProcessActor, Run, StopReason};

impl ProcessActor {
    /// Spawns the process; the answer comes once it has exec'd (or failed before). Until then the actor
    /// takes no other message, so a start stays one step for everyone else, but its thread goes on
    /// serving every other actor: a burst of starts overlaps the children's execs.
    pub(super) fn start(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<i32, PmError>> {
        let (tx, rx) = oneshot::channel();
        self.start_with_kit(tx, ctx);
        rx
    }

    /// Starts once a spawn kit is free: in a burst every kit can be lent to a child still on its way
    /// to its exec, and the actor waits in its reactor (no other message meanwhile), never on its thread.
    fn start_with_kit(
        &mut self,
        tx: oneshot::Sender<Result<i32, PmError>>,
        ctx: &mut Context<Self>,
    ) {
        if spawn::kit_free() {
            return self.start_now(tx, ctx);
        }
        ctx.wait(
            spawn::kit_freed()
                .into_actor(self)
                .map(move |(), act, ctx| act.start_with_kit(tx, ctx)),
        );
    }

    fn start_now(&mut self, tx: oneshot::Sender<Result<i32, PmError>>, ctx: &mut Context<Self>) {
        match self.launch(ctx) {
            Err(e) => {
                let _ = tx.send(Err(e));
            }
            Ok((pending, plan)) => {
                // The guard learns the group now, before its leader can fork: were the daemon killed
                // while the start is on its way, the leader's children would die with it too.
                let pid = pending.pid();
                if let Some(g) = self.run_guard() {
                    g.register(pid);
                }
                let deadline = self.opts.start_deadline;
                ctx.wait(
                    pending
                        .finish(deadline)
                        .into_actor(self)
                        .map(move |res, act, ctx| {
                            let res = res.map_err(|e| spawn::spawn_error(&act.spec, &e));
                            let answer = act.on_spawned(res, plan, ctx);
                            if let (Err(_), Some(g)) = (&answer, act.run_guard()) {
                                g.unregister(pid);
                            }
                            let _ = tx.send(answer);
                        }),
                );
            }
        }
    }

    /// Clones the child for a start.
    fn launch(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> Result<(spawn::PendingSpawn, StdioPlan), PmError> {
        if self.run.is_some() {
            return Err(PmError::AlreadyRunning(self.spec.name.clone()));
        }
        // Refused whole while there is room for it, rather than failing in some open on its way.
        limits::room_for_a_start().map_err(|cause| PmError::Spawn {
            name: self.spec.name.clone(),
            cause,
        })?;
        if self.info.attached {
            return Err(PmError::Invalid(format!(
                "'{}' was attached, not started by the supervisor: it cannot be started again",
                self.spec.name
            )));
        }
        // The env files are read at each start, so that a restart picks up a changed file.
        let mut with_files = match env_file::with_env_files(&self.spec) {
            Ok(Cow::Owned(spec)) => Some(spec),
            Ok(Cow::Borrowed(_)) => None,
            Err(e) => return Err(self.spawn_failed(e)),
        };
        // `ready:notify`: the child gets its own socket, as systemd gives its services theirs.
        match self.notify_socket(ctx) {
            Ok(None) => {}
            Ok(Some(path)) => {
                let spec =
                    with_files.get_or_insert_with(|| pm_protocol::ProcessSpec::clone(&self.spec));
                let path = path.display().to_string();
                spec.env.insert("NOTIFY_SOCKET".into(), path);
            }
            Err(cause) => {
                let name = self.spec.name.clone();
                return Err(self.spawn_failed(PmError::Spawn { name, cause }));
            }
        }
        let cgroup = self.cgroup_for_start().map_err(|e| self.spawn_failed(e))?;
        let spec = with_files.as_ref().unwrap_or(&self.spec);
        let mut plan = spawn::stdio_plan(spec, &self.opts.output);
        // `--log-stdout` shows every process's output, logged or not.
        if plan == StdioPlan::Null && !spec.detach && self.opts.echo.is_some() {
            plan = StdioPlan::Capture;
        }
        match spawn::launch(
            spec,
            plan,
            &self.opts.log_dir,
            cgroup.as_deref(),
            self.opts.marker.as_deref(),
        ) {
            Ok(pending) => {
                self.info.env_files = spec
                    .env_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                Ok((pending, plan))
            }
            Err(e) => Err(self.spawn_failed(e)),
        }
    }

    /// A start that failed: the process is `failed`, with the cause as its error.
    fn spawn_failed(&mut self, e: PmError) -> PmError {
        self.info.error = match &e {
            PmError::Spawn { cause, .. } => cause.clone(),
            other => other.to_string(),
        };
        self.info.pid = 0;
        self.set_status(Status::Failed, 0, None);
        e
    }

    /// The child has exec'd (or failed to): wires its exit watcher, deadline and log capture, and
    /// makes it the current run.
    fn on_spawned(
        &mut self,
        spawned: Result<Spawned, PmError>,
        plan: StdioPlan,
        ctx: &mut Context<Self>,
    ) -> Result<i32, PmError> {
        let Spawned {
            child,
            stdout,
            stderr,
        } = spawned.map_err(|e| self.spawn_failed(e))?;
        let pid = child.id() as i32;
        let id = self.next_run_id;
        self.next_run_id += 1;

        let guarded = self.run_guard().is_some();
        if plan == StdioPlan::Capture {
            let ready_line = self.ready_line(id, ctx);
            self.start_capture(stdout, stderr, ready_line);
        }
        let deadline = self.spec.deadline_secs.map(|secs| {
            ctx.run_later(Duration::from_secs(secs), move |act, ctx| {
                if act.current_run(id).is_some_and(|r| r.stop.is_none()) {
                    let _ = act.begin_stop(StopReason::Deadline(secs), None, ctx);
                }
            })
        });
        // Nothing is read from /proc here: the first tick gives state, CPU and memory (a burst of
        // starts is bound by CPU, and this read was a tenth of the daemon's share of it).
        let monitor = Monitor::shared(self.opts.tick);
        let watch = match self.cgroup() {
            Some(dir) => monitor.watch_started_in(pid, dir, ctx.address().recipient()),
            None => monitor.watch_started(pid, ctx.address().recipient()),
        };
        self.replace_run(Some(Run {
            id,
            pid,
            origin: Origin::Child(child),
            pgid: Some(pid),
            started: Instant::now(),
            watch: Some(watch),
            stop: None,
            deadline,
            guarded,
        }));
        self.watch_exit(id, pid, ctx);

        let now = Local::now();
        self.info.pid = pid;
        self.info.start_time = now_rfc3339(now);
        self.info.error.clear();
        self.info.cpu_percent = 0.0;
        self.info.memory_mb = 0.0;
        self.set_status(Status::Running, pid, None);
        self.set_state(KernelState::Running, pid);
        self.probes_begin(id, ctx);
        Ok(pid)
    }

    /// Reads the child's output pipes into the ring, the log file or the caller's channel.
    fn start_capture(
        &mut self,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
        ready_line: Option<ReadyLine>,
    ) {
        let capture = Capture {
            ready_line,
            echo: (self.opts.echo.clone())
                .map(|e| (e, std::sync::Arc::from(self.spec.name.as_str()))),
            ring: self.ring.clone(),
            file: match self.opts.output {
                OutputTarget::DaemonStdio => None,
                _ => self.info.live().log_file.clone(),
            },
            channel: match &self.opts.output {
                OutputTarget::Channel(tx) => Some(tx.clone()),
                _ => None,
            },
        };
        let pipes = [(stdout, Stream::Stdout), (stderr, Stream::Stderr)];
        for (fd, stream) in pipes {
            let Some(fd) = fd else { continue };
            match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
                Ok(rx) => {
                    actix::spawn(capture.clone().run(rx, stream));
                }
                Err(e) => {
                    self.info.error = format!("cannot capture {}: {e}", stream.as_str());
                }
            }
        }
    }

    /// A start, after the stop of the previous run if that is still under way (its leader has exited
    /// but the rest of its group, its strays or its cgroup are not gone yet). That stop's sweeps and
    /// its kill at the grace aim at what the old run left, and would hit the new run, whose processes
    /// carry the same marker and enter the same cgroup. A user's stop meanwhile drops the start.
    pub(super) fn start_after_stops(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<i32, PmError>> {
        let Some(stop) = self.stops.last_mut() else {
            return Box::pin(answer(self.start(ctx)).into_actor(self));
        };
        let (tx, rx) = oneshot::channel();
        stop.restarts.push(tx);
        let user_stops = self.user_stops;
        Box::pin(
            async move { rx.await.is_ok() }
                .into_actor(self)
                .then(move |_, act, ctx| {
                    if act.user_stops != user_stops {
                        let name = act.spec.name.clone();
                        return Box::pin(fut::ready(Err(PmError::NotRunning(name))))
                            as ResponseActFuture<Self, Result<i32, PmError>>;
                    }
                    act.start_after_stops(ctx)
                }),
        )
    }

    /// Stops the current run (if any) and starts a new one once its whole group is gone; answers the
    /// new run's pid.
    pub(super) fn restart(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<i32, PmError>> {
        let id = match self.run.as_ref() {
            None => return Box::pin(answer(self.start(ctx)).into_actor(self)),
            Some(_) => match self.begin_stop(StopReason::User, None, ctx) {
                Ok(id) => id,
                Err(e) => return Box::pin(fut::ready(Err(e))),
            },
        };
        let (tx, rx) = oneshot::channel();
        if let Some(stop) = self.stops.iter_mut().find(|s| s.run_id == id) {
            stop.restarts.push(tx);
        }
        Box::pin(
            async move { rx.await.is_ok() }
                .into_actor(self)
                .then(|_, act, ctx| {
                    if let Some(run) = act.run.as_ref() {
                        // Someone else started it meanwhile: that run is the restarted one.
                        let pid = run.pid;
                        return Box::pin(fut::ready(Ok(pid)))
                            as ResponseActFuture<Self, Result<i32, PmError>>;
                    }
                    Box::pin(answer(act.start(ctx)).into_actor(act))
                }),
        )
    }
}
