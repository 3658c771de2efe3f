//! The `ProcessActor`: the one owner of one managed process (spawn, stop, kill, signal, wait, reap,
//! status tick, deadline, logs, events).
//!
//! Exits are event-driven: a pidfd per run, awaited with tokio's `AsyncFd`, wakes the actor the moment
//! the process exits, and the actor reaps it at once. Polling happens only during a stop, to see the
//! rest of the process group go (`kill(-pgid, 0)` every 10 ms), and once a tick while a group lives on
//! after its leader exited by itself.
//!
//! The status tick is not the actor's: each run registers its tree with the shared [`Monitor`] of its
//! tick interval, whose thread samples every tree and keeps the reading in the run's [`TreeWatch`],
//! where `GetInfo` finds it. The monitor sends a [`TreeNotice`] only when the actor has something to do
//! (a new kernel state to announce, a root it could not read, an attached process's command line), so
//! an idle actor costs nothing per tick. A log file's write error is looked up when the status is asked.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Local, SecondsFormat};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_protocol::{
    CommandLine, EventKind, ExitInfo, KernelState, LogLine, PmError, ProcessEvent, ProcessInfo,
    ProcessSpec, Status, Stream,
};
use tokio::sync::oneshot;

use super::child::{ChildProcess, Spawned};
use super::events::Subscribers;
use super::guard::GroupGuard;
use super::logs::{Capture, LogRing, RotatingFile};
use super::monitor::{Monitor, TreeNotice, TreeWatch};
use super::options::{OutputTarget, ProcessOptions};
use super::procfs::{self, Sample};
use super::signal::{parse_signal, signal_name};
use super::spawn::{self, StdioPlan};
use super::{liveness, messages::*, pidfd};

/// How often a stop looks whether the rest of the group is gone, once the leader has exited.
const GROUP_POLL: Duration = Duration::from_millis(10);
/// Polling interval for exits where pidfds are not available (Linux before 5.3).
const FALLBACK_POLL: Duration = Duration::from_millis(100);

type ExitSender = oneshot::Sender<Result<ExitInfo, PmError>>;

/// Why a run is being stopped: decides its final status and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    User,
    Deadline(u64),
}

/// One run of the process, from spawn (or attach) to exit.
struct Run {
    id: u64,
    pid: i32,
    /// Our own child (None when attached): reaped with `try_wait`.
    child: Option<ChildProcess>,
    /// The process group signals go to; `None` for an attached process that does not lead its group.
    pgid: Option<i32>,
    /// For attached processes: a pidfd to signal exactly this process, never a recycled pid.
    pidfd: Option<OwnedFd>,
    /// For attached processes: field 22 of stat, checked where no pidfd exists.
    start_ticks: u64,
    started: Instant,
    /// The run's tree as the status monitor watches it (registered once the actor runs).
    watch: Option<TreeWatch>,
    stop: Option<StopReason>,
    deadline: Option<SpawnHandle>,
    guarded: bool,
}

/// A stop (or kill) waiting for a whole process group to be gone.
struct GroupStop {
    run_id: u64,
    pgid: Option<i32>,
    exit: Option<ExitInfo>,
    kill_timer: Option<SpawnHandle>,
    poll: Option<SpawnHandle>,
    waiters: Vec<ExitSender>,
    /// Restarts waiting for this stop to finish.
    restarts: Vec<oneshot::Sender<()>>,
}

/// One actor per managed process. See the module docs of [`crate::process`].
pub struct ProcessActor {
    spec: ProcessSpec,
    opts: ProcessOptions,
    info: ProcessInfo,
    run: Option<Run>,
    /// The attached process to adopt when the actor starts.
    pending_attach: Option<Run>,
    attached: bool,
    next_run_id: u64,
    last_exit: Option<ExitInfo>,
    waiters: Vec<ExitSender>,
    stops: Vec<GroupStop>,
    /// Guarded groups whose leader exited by itself while other members live on.
    /// (pgid, registered with the guard, started by us).
    lingering: Vec<(i32, bool, bool)>,
    /// The check of `lingering`, once a tick while it is not empty.
    lingering_check: Option<SpawnHandle>,
    subscribers: Subscribers,
    ring: Arc<Mutex<LogRing>>,
    log_file: Option<Arc<Mutex<RotatingFile>>>,
}

fn now_rfc3339(t: DateTime<Local>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// Whether any process of group `pgid` still exists. Members orphaned to us (we are a child
/// subreaper) are reaped first when the group is `ours` (never an attached process's group, whose
/// members belong to someone else), so that zombies do not count as alive. Only called once the group's
/// leader is reaped: `P_PGID` could otherwise reap the leader behind its `Child`'s back.
fn group_alive(pgid: i32, ours: bool) -> bool {
    if ours {
        reap_group(pgid);
    }
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

fn exit_info(status: std::process::ExitStatus) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    ExitInfo {
        code: status.code(),
        signal: status.signal().map(signal_name),
        time: Local::now(),
    }
}

impl ProcessActor {
    /// An actor for `spec`. It does not start the process: send [`Start`].
    pub fn new(spec: ProcessSpec, opts: ProcessOptions) -> ProcessActor {
        let mut info = ProcessInfo::initial(spec.name.clone(), spec.command.display());
        info.args = match &spec.command {
            CommandLine::Shell(_) => Vec::new(),
            CommandLine::Exec { args, .. } => args.clone(),
        };
        info.log_enabled = spec.log.enabled;
        info.cron = spec.cron.clone().unwrap_or_default();
        info.job_id = spec.job_id.clone().unwrap_or_default();
        info.deadline = spec.deadline_secs.map(|d| d as i64).unwrap_or(0);
        info.detached = spec.detach;
        let ring = Arc::new(Mutex::new(LogRing::new(spec.log.ring_lines)));
        let log_file = spec.log.enabled.then(|| {
            let mut file =
                RotatingFile::new(opts.log_dir.join(format!("{}.log", spec.name)), &spec.log);
            // An unknown user is reported by the start; the file then stays the daemon's.
            file.owner = super::user::run_as(&spec)
                .ok()
                .flatten()
                .map(|who| (who.uid, who.gid));
            Arc::new(Mutex::new(file))
        });
        ProcessActor {
            spec,
            opts,
            info,
            run: None,
            pending_attach: None,
            attached: false,
            next_run_id: 1,
            last_exit: None,
            waiters: Vec::new(),
            stops: Vec::new(),
            lingering: Vec::new(),
            lingering_check: None,
            subscribers: Subscribers::default(),
            ring,
            log_file,
        }
    }

    /// Adopts a process the daemon did not start. Checks that `pid` exists and records its start time,
    /// so that a recycled pid is never signalled.
    pub fn attach(pid: i32, name: String, opts: ProcessOptions) -> Result<ProcessActor, PmError> {
        Self::attach_checked(pid, name, None, opts)
    }

    /// Like [`ProcessActor::attach`], but only if `pid` still has the start time `start_ticks`
    /// (field 22 of `/proc/<pid>/stat`, as recorded earlier, e.g. in a state file): otherwise the pid
    /// was recycled and the answer is `PmError::NoSuchPid`.
    pub fn attach_expecting(
        pid: i32,
        name: String,
        start_ticks: u64,
        opts: ProcessOptions,
    ) -> Result<ProcessActor, PmError> {
        Self::attach_checked(pid, name, Some(start_ticks), opts)
    }

    /// Takes up again a run of `spec` that an earlier daemon started (its pid and start time, from the
    /// state file). The actor is the process's own: when the run ends it may be started again. The
    /// run's exit status cannot be known (it is not our child), so its end counts as a failure.
    /// `log_tail` refills the in-memory ring. A pid that no longer has `start_ticks` is
    /// `PmError::NoSuchPid`, and is never signalled.
    pub fn adopt(
        spec: ProcessSpec,
        pid: i32,
        start_ticks: u64,
        log_tail: Vec<LogLine>,
        opts: ProcessOptions,
    ) -> Result<ProcessActor, PmError> {
        let (run, _) = Self::adoptable_run(pid, Some(start_ticks))?;
        let mut actor = ProcessActor::new(spec, opts);
        if let Ok(mut ring) = actor.ring.lock() {
            for line in log_tail {
                ring.push(line);
            }
        }
        actor.take_up(run);
        Ok(actor)
    }

    fn attach_checked(
        pid: i32,
        name: String,
        expected: Option<u64>,
        opts: ProcessOptions,
    ) -> Result<ProcessActor, PmError> {
        let (run, cmdline) = Self::adoptable_run(pid, expected)?;
        let (program, args) = match cmdline.split_first() {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let mut spec = ProcessSpec::exec(name, program, args);
        spec.detach = true; // not ours to kill when the daemon goes
        let mut actor = ProcessActor::new(spec, opts);
        actor.attached = true;
        actor.info.attached = true;
        actor.info.detached = false;
        actor.info.command = cmdline.join(" ");
        actor.take_up(run);
        Ok(actor)
    }

    /// A run for a process the daemon did not spawn itself, checked to exist (with the expected start
    /// time, if given), and its command line.
    fn adoptable_run(pid: i32, expected: Option<u64>) -> Result<(Run, Vec<String>), PmError> {
        if pid <= 0 {
            return Err(PmError::NoSuchPid { pid });
        }
        // The pidfd first, then the start time: if the start time is the expected one, the pidfd
        // names that very process.
        let fd = match pidfd::open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(PmError::NoSuchPid { pid })
            }
            Err(_) => None,
        };
        let stat = liveness::still_running(pid, expected).ok_or(PmError::NoSuchPid { pid })?;
        let cmdline = procfs::read_cmdline(pid);
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid)))
            .ok()
            .map(|p| p.as_raw())
            .filter(|&g| g == pid && g != nix::unistd::getpgrp().as_raw());
        let run = Run {
            id: 0,
            pid,
            child: None,
            pgid,
            pidfd: fd,
            start_ticks: stat.start_time,
            started: Instant::now(),
            watch: None,
            stop: None,
            deadline: None,
            guarded: false,
        };
        Ok((run, cmdline))
    }

    /// Makes `run` the pending run, taken up when the actor starts, and shows it as running.
    fn take_up(&mut self, run: Run) {
        self.info.pid = run.pid;
        self.info.status = Status::Running;
        self.info.start_time = procfs::start_time_of(run.start_ticks)
            .map(now_rfc3339)
            .unwrap_or_default();
        self.pending_attach = Some(run);
    }

    /// The start time (field 22 of stat) of an attached process, for a state file.
    pub fn attached_start_ticks(&self) -> Option<u64> {
        self.run
            .as_ref()
            .or(self.pending_attach.as_ref())
            .filter(|_| self.attached)
            .map(|r| r.start_ticks)
    }

    fn emit(&mut self, pid: i32, kind: EventKind, exit: Option<ExitInfo>) {
        if self.subscribers.is_empty() {
            return;
        }
        let ev = ProcessEvent {
            name: self.spec.name.clone(),
            pid,
            kind,
            exit,
            time: Local::now(),
        };
        self.subscribers.send(&ev);
    }

    fn set_status(&mut self, new: Status, pid: i32, exit: Option<ExitInfo>) {
        let old = self.info.status;
        self.info.status = new;
        if old != new || exit.is_some() {
            self.emit(pid, EventKind::Status { old, new }, exit);
        }
    }

    fn set_state(&mut self, new: KernelState, pid: i32) {
        let old = self.info.state;
        if old != new {
            self.info.state = new;
            self.emit(pid, EventKind::State { old, new }, None);
        }
    }

    /// Spawns the process; the answer comes once it has exec'd (or failed before). Until then the actor
    /// takes no other message, so a start stays one step for everyone else, but its thread goes on
    /// serving every other actor: a burst of starts overlaps the children's execs.
    fn start(&mut self, ctx: &mut Context<Self>) -> oneshot::Receiver<Result<i32, PmError>> {
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
        match self.launch() {
            Err(e) => {
                let _ = tx.send(Err(e));
            }
            Ok((pending, plan)) => {
                // The guard learns the group now, before its leader can fork: were the daemon killed
                // while the start is on its way, the leader's children would die with it too.
                let pid = pending.pid();
                if let Some(g) = self.guard() {
                    g.register(pid);
                }
                ctx.wait(pending.finish().into_actor(self).map(move |res, act, ctx| {
                    let res = res.map_err(|e| spawn::spawn_error(&act.spec, &e));
                    let answer = act.took_off(res, plan, ctx);
                    if let (Err(_), Some(g)) = (&answer, act.guard()) {
                        g.unregister(pid);
                    }
                    let _ = tx.send(answer);
                }));
            }
        }
    }

    /// The group guard, when this process's children are to die with the daemon.
    fn guard(&self) -> Option<&GroupGuard> {
        self.opts.guard.as_ref().filter(|_| !self.spec.detach)
    }

    /// Clones the child for a start.
    fn launch(&mut self) -> Result<(spawn::PendingSpawn, StdioPlan), PmError> {
        if self.run.is_some() {
            return Err(PmError::AlreadyRunning(self.spec.name.clone()));
        }
        if self.attached {
            return Err(PmError::Invalid(format!(
                "'{}' was attached, not started by the supervisor: it cannot be started again",
                self.spec.name
            )));
        }
        let plan = spawn::stdio_plan(&self.spec, &self.opts.output);
        match spawn::launch(&self.spec, plan, &self.opts.log_dir) {
            Ok(pending) => Ok((pending, plan)),
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

    /// The child has exec'd: wires its exit watcher, deadline and log capture.
    fn took_off(
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

        let guarded = self.guard().is_some();
        if plan == StdioPlan::Capture {
            self.start_capture(stdout, stderr);
        }
        let deadline = self.spec.deadline_secs.map(|secs| {
            ctx.run_later(Duration::from_secs(secs), move |act, ctx| {
                if act
                    .run
                    .as_ref()
                    .is_some_and(|r| r.id == id && r.stop.is_none())
                {
                    let _ = act.begin_stop(StopReason::Deadline(secs), None, ctx);
                }
            })
        });
        let mut run = Run {
            id,
            pid,
            child: Some(child),
            pgid: Some(pid),
            pidfd: None,
            start_ticks: 0,
            started: Instant::now(),
            watch: None,
            stop: None,
            deadline,
            guarded,
        };
        // Nothing is read from /proc here: the first tick gives state, CPU and memory (a burst of
        // starts is bound by CPU, and this read was a tenth of the daemon's share of it).
        run.watch =
            Some(Monitor::shared(self.opts.tick).watch_started(pid, ctx.address().recipient()));
        self.run = Some(run);
        self.watch_exit(id, pid, ctx);

        let now = Local::now();
        self.info.pid = pid;
        self.info.start_time = now_rfc3339(now);
        self.info.error.clear();
        self.info.cpu_percent = 0.0;
        self.info.memory_mb = 0.0;
        self.set_status(Status::Running, pid, None);
        self.set_state(KernelState::Running, pid);
        Ok(pid)
    }

    fn start_capture(&mut self, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) {
        let capture = Capture {
            ring: self.ring.clone(),
            file: match self.opts.output {
                OutputTarget::DaemonStdio => None,
                _ => self.log_file.clone(),
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

    /// Learns of the exit of run `id` without polling (a pidfd), or by polling where pidfds are missing.
    fn watch_exit(&mut self, id: u64, pid: i32, ctx: &mut Context<Self>) {
        let fd = match &self.run {
            Some(r) if r.id == id => match &r.pidfd {
                Some(fd) => fd.try_clone().ok(),
                None => pidfd::open(pid).ok(),
            },
            _ => return,
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
            if act.run.as_ref().is_some_and(|r| r.id == id) && !act.try_exit(id, ctx) {
                act.poll_exit(id, ctx);
            }
        });
    }

    /// The pidfd of run `id` became readable: reap it.
    fn on_exit(&mut self, id: u64, ctx: &mut Context<Self>) {
        if self.run.as_ref().is_some_and(|r| r.id == id) && !self.try_exit(id, ctx) {
            // Readable yet not reapable should not happen; fall back to polling rather than lose it.
            self.poll_exit(id, ctx);
        }
    }

    /// Reaps run `id` if it has exited; true when it has.
    fn try_exit(&mut self, id: u64, ctx: &mut Context<Self>) -> bool {
        let Some(run) = self.run.as_mut().filter(|r| r.id == id) else {
            return true;
        };
        let exit = match run.child.as_mut() {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => exit_info(status),
                Ok(None) => return false,
                Err(_) => ExitInfo {
                    code: None,
                    signal: None,
                    time: Local::now(),
                },
            },
            None => {
                // Attached: gone when its pidfd fired, or when the pid no longer has its start time.
                if run.pidfd.is_none()
                    && liveness::still_running(run.pid, Some(run.start_ticks)).is_some()
                {
                    return false;
                }
                ExitInfo {
                    code: None,
                    signal: None,
                    time: Local::now(),
                }
            }
        };
        let Some(run) = self.run.take() else {
            return true;
        };
        self.finish_run(run, exit, ctx);
        true
    }

    fn finish_run(&mut self, run: Run, exit: ExitInfo, ctx: &mut Context<Self>) {
        if let Some(h) = run.deadline {
            ctx.cancel_future(h);
        }
        let (status, error) = if self.attached {
            (Status::Terminated, String::new())
        } else {
            match run.stop {
                Some(StopReason::User) => (Status::Stopped, String::new()),
                Some(StopReason::Deadline(secs)) => {
                    (Status::Stopped, format!("deadline of {secs} s exceeded"))
                }
                None if run.child.is_none() => (
                    Status::Failed,
                    "ended while adopted after a daemon restart (exit status unknown)".to_string(),
                ),
                None if exit.success() => (Status::Completed, String::new()),
                None => (Status::Failed, exit.describe()),
            }
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
        let ours = run.child.is_some();
        let group_left = run.pgid.filter(|&g| ours && group_alive(g, ours));
        match group_left {
            None => {
                if let (true, Some(g), Some(pgid)) = (run.guarded, &self.opts.guard, run.pgid) {
                    g.unregister(pgid);
                }
            }
            Some(pgid) if !self.stops.iter().any(|s| s.run_id == run.id) => {
                self.linger(pgid, run.guarded, ours, ctx);
            }
            Some(_) => {}
        }
        if let Some(i) = self.stops.iter().position(|s| s.run_id == run.id) {
            self.stops[i].exit = Some(exit.clone());
            if group_left.is_none() {
                let stop = self.stops.swap_remove(i);
                self.finish_stop(stop, ctx);
            } else {
                let run_id = run.id;
                let guarded = run.guarded;
                let h = ctx.run_interval(GROUP_POLL, move |act, ctx| {
                    act.poll_group(run_id, guarded, ours, ctx)
                });
                self.stops[i].poll = Some(h);
            }
        }

        self.set_status(status, run.pid, Some(exit));
        self.set_state(KernelState::Terminated, run.pid);
    }

    fn poll_group(&mut self, run_id: u64, guarded: bool, ours: bool, ctx: &mut Context<Self>) {
        let Some(i) = self.stops.iter().position(|s| s.run_id == run_id) else {
            return;
        };
        if self.stops[i].pgid.is_some_and(|g| group_alive(g, ours)) {
            return;
        }
        let stop = self.stops.swap_remove(i);
        if let (true, Some(g), Some(pgid)) = (guarded, &self.opts.guard, stop.pgid) {
            g.unregister(pgid);
        }
        self.finish_stop(stop, ctx);
    }

    fn finish_stop(&mut self, stop: GroupStop, ctx: &mut Context<Self>) {
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

    /// Sends `sig` to the run's group (or, for an attached process, to exactly that process).
    fn signal_run(run: &Run, sig: NixSignal, group: bool) -> Result<(), PmError> {
        let map_err = |e: Errno| match e {
            Errno::ESRCH => PmError::NoSuchPid { pid: run.pid },
            other => PmError::Io(format!("cannot signal {}: {other}", run.pid)),
        };
        if run.child.is_some() {
            // Our unreaped child: its pid (and so its group id) cannot have been recycled.
            let target = match (group, run.pgid) {
                (true, Some(g)) => -g,
                _ => run.pid,
            };
            return kill(Pid::from_raw(target), sig).map_err(map_err);
        }
        // Attached: prove it is still the same process before touching its pid or group.
        match &run.pidfd {
            Some(fd) => pidfd::send_signal(fd, if group { 0 } else { sig as i32 })
                .map_err(|e| map_err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?,
            None => {
                if liveness::still_running(run.pid, Some(run.start_ticks)).is_none() {
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
    fn begin_stop(
        &mut self,
        reason: StopReason,
        grace: Option<Duration>,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PmError> {
        let stop_signal = parse_signal(&self.spec.stop_signal).unwrap_or(NixSignal::SIGTERM);
        self.begin_stop_with(reason, grace, stop_signal, ctx)
    }

    fn begin_stop_with(
        &mut self,
        reason: StopReason,
        grace: Option<Duration>,
        stop_signal: NixSignal,
        ctx: &mut Context<Self>,
    ) -> Result<u64, PmError> {
        let name = self.spec.name.clone();
        let grace = grace.unwrap_or(Duration::from_millis(self.spec.grace_ms));
        let run = self.run.as_mut().ok_or(PmError::NotRunning(name))?;
        let id = run.id;
        if run.stop.is_some() {
            return Ok(id); // already stopping: join it
        }
        run.stop = Some(reason);
        let pid = run.pid;
        let group = run.pgid.is_some();
        let sent = Self::signal_run(run, stop_signal, group);
        let kill_timer = ctx.run_later(grace, move |act, _| act.force_kill(id));
        self.stops.push(GroupStop {
            run_id: id,
            pgid: self.run.as_ref().and_then(|r| r.pgid),
            exit: None,
            kill_timer: Some(kill_timer),
            poll: None,
            waiters: Vec::new(),
            restarts: Vec::new(),
        });
        self.set_status(Status::Stopping, pid, None);
        if let Err(e) = sent {
            tracing::debug!("stop signal to {pid}: {e}");
        }
        Ok(id)
    }

    /// SIGKILL to whatever is left of run `id`'s group.
    fn force_kill(&mut self, id: u64) {
        if let Some(run) = self.run.as_ref().filter(|r| r.id == id) {
            let _ = Self::signal_run(run, NixSignal::SIGKILL, run.pgid.is_some());
        } else if let Some(pgid) = self
            .stops
            .iter()
            .find(|s| s.run_id == id)
            .and_then(|s| s.pgid)
        {
            // The leader is reaped but the group is not empty, so its id is still taken: safe to kill.
            let _ = kill(Pid::from_raw(-pgid), NixSignal::SIGKILL);
        }
    }

    fn stop_waiter(&mut self, id: u64) -> ResponseFuture<Result<ExitInfo, PmError>> {
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
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(PmError::Internal("process actor stopped".into())))
        })
    }

    /// Registers the tree of an attached (or adopted) `run` with the status monitor of this actor's tick,
    /// and samples it once (the baseline of the first tick's CPU figure); answers that sample.
    fn watch_tree(&self, run: &mut Run, ctx: &mut Context<Self>) -> Option<Sample> {
        let watch = Monitor::shared(self.opts.tick).watch(run.pid, ctx.address().recipient());
        if self.attached && self.info.command.is_empty() {
            watch.want_command();
        }
        let first = watch.sample_now().ok();
        run.watch = Some(watch);
        first
    }

    /// Reads /proc for the whole tree now and updates the status record.
    fn sample_now(&mut self, ctx: &mut Context<Self>) {
        let Some(watch) = self.run.as_ref().and_then(|r| r.watch.as_ref()) else {
            return;
        };
        let sampled = watch.sample_now().ok();
        self.apply_sample(sampled, ctx);
    }

    /// Takes up a reading of the run's tree (`None`: the root could not be read): the kernel state (an
    /// event when it changed), CPU and memory, and the command line an attached process lacked.
    fn apply_sample(&mut self, sampled: Option<Sample>, ctx: &mut Context<Self>) {
        let Some(run) = self.run.as_ref() else { return };
        let (pid, id, has_pidfd) = (run.pid, run.id, run.pidfd.is_some());
        match sampled {
            Some(s) => {
                self.info.cpu_percent = s.cpu_percent;
                self.info.memory_mb = s.rss_bytes as f64 / 1_048_576.0;
                self.set_state(s.state, pid);
                if self.attached && self.info.command.is_empty() {
                    // Attached in the instant after its exec, before the kernel set up its arguments.
                    let cmdline = self
                        .run
                        .as_ref()
                        .and_then(|r| r.watch.as_ref()?.take_command())
                        .unwrap_or_else(|| procfs::read_cmdline(pid));
                    if let Some((program, args)) = cmdline.split_first() {
                        self.spec.command = CommandLine::Exec {
                            program: program.clone(),
                            args: args.to_vec(),
                        };
                        self.info.args = args.to_vec();
                        self.info.command = cmdline.join(" ");
                    }
                }
            }
            None => {
                if self.attached && !has_pidfd {
                    self.try_exit(id, ctx);
                } else {
                    self.set_state(KernelState::Unavailable, pid);
                }
            }
        }
    }

    /// Group `pgid` lives on after its leader exited by itself: look once a tick whether it is gone.
    fn linger(&mut self, pgid: i32, guarded: bool, ours: bool, ctx: &mut Context<Self>) {
        self.lingering.push((pgid, guarded, ours));
        if self.lingering_check.is_none() {
            let check = ctx.run_interval(self.opts.tick, |act, ctx| act.check_lingering(ctx));
            self.lingering_check = Some(check);
        }
    }

    /// Forgets the lingering groups that are gone (unregistering them from the guard), and stops
    /// looking once none is left.
    fn check_lingering(&mut self, ctx: &mut Context<Self>) {
        let guard = self.opts.guard.clone();
        self.lingering.retain(|&(pgid, guarded, ours)| {
            let alive = group_alive(pgid, ours);
            if !alive && guarded {
                if let Some(g) = &guard {
                    g.unregister(pgid);
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

    /// The status record now: the latest reading of the tree, the uptime, and a log file's write error.
    fn info_now(&mut self) -> ProcessInfo {
        if let Some(file) = &self.log_file {
            if let Some(err) = file.lock().ok().and_then(|f| f.error.clone()) {
                self.info.error = err;
            } else if self.info.error.starts_with("cannot write log file") {
                self.info.error.clear();
            }
        }
        let mut info = self.info.clone();
        if let Some(run) = &self.run {
            info.uptime_secs = Some(run.started.elapsed().as_secs_f64());
            if let Some(s) = run.watch.as_ref().and_then(|w| w.latest()) {
                info.cpu_percent = s.cpu_percent;
                info.memory_mb = s.rss_bytes as f64 / 1_048_576.0;
            }
        }
        info
    }
}

impl Actor for ProcessActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(mut run) = self.pending_attach.take() {
            run.id = self.next_run_id;
            self.next_run_id += 1;
            let (id, pid) = (run.id, run.pid);
            let _ = self.watch_tree(&mut run, ctx);
            self.run = Some(run);
            self.watch_exit(id, pid, ctx);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // The actor goes away (deleted, or its system stops): a non-detached child goes with it, and a
        // thread reaps whatever child is left so that none becomes a zombie.
        if let Some(mut run) = self.run.take() {
            if let Some(mut child) = run.child.take() {
                if !self.spec.detach {
                    let _ = kill(Pid::from_raw(-run.pid), NixSignal::SIGKILL);
                }
                let guard = self.opts.guard.clone().filter(|_| run.guarded);
                let pgid = run.pid;
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
    }
}

impl Handler<Start> for ProcessActor {
    type Result = ResponseFuture<Result<i32, PmError>>;
    fn handle(&mut self, _: Start, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(answer(self.start(ctx)))
    }
}

/// The answer of a start, once it comes.
async fn answer(rx: oneshot::Receiver<Result<i32, PmError>>) -> Result<i32, PmError> {
    rx.await
        .unwrap_or_else(|_| Err(PmError::Internal("process actor stopped".into())))
}

impl Handler<Stop> for ProcessActor {
    type Result = Result<(), PmError>;
    fn handle(&mut self, msg: Stop, ctx: &mut Context<Self>) -> Self::Result {
        self.begin_stop(StopReason::User, msg.grace, ctx)
            .map(|_| ())
    }
}

impl Handler<StopAndWait> for ProcessActor {
    type Result = ResponseFuture<Result<ExitInfo, PmError>>;
    fn handle(&mut self, msg: StopAndWait, ctx: &mut Context<Self>) -> Self::Result {
        match self.begin_stop(StopReason::User, msg.grace, ctx) {
            Ok(id) => self.stop_waiter(id),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Handler<Kill> for ProcessActor {
    type Result = ResponseFuture<Result<ExitInfo, PmError>>;
    fn handle(&mut self, _: Kill, ctx: &mut Context<Self>) -> Self::Result {
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
}

impl Handler<Wait> for ProcessActor {
    type Result = ResponseFuture<Result<ExitInfo, PmError>>;
    fn handle(&mut self, _: Wait, _: &mut Context<Self>) -> Self::Result {
        if self.run.is_none() {
            let r = self
                .last_exit
                .clone()
                .ok_or_else(|| PmError::NotRunning(self.spec.name.clone()));
            return Box::pin(async move { r });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(PmError::Internal("process actor stopped".into())))
        })
    }
}

impl Handler<Signal> for ProcessActor {
    type Result = Result<(), PmError>;
    fn handle(&mut self, msg: Signal, _: &mut Context<Self>) -> Self::Result {
        let sig = parse_signal(&msg.signal)?;
        let run = self
            .run
            .as_ref()
            .ok_or_else(|| PmError::NotRunning(self.spec.name.clone()))?;
        Self::signal_run(run, sig, msg.group)
    }
}

impl Handler<Restart> for ProcessActor {
    type Result = ResponseActFuture<Self, Result<i32, PmError>>;
    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) -> Self::Result {
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

impl Handler<IsAlive> for ProcessActor {
    type Result = bool;
    fn handle(&mut self, _: IsAlive, _: &mut Context<Self>) -> bool {
        self.run.is_some()
    }
}

impl Handler<GetInfo> for ProcessActor {
    type Result = MessageResult<GetInfo>;
    fn handle(&mut self, _: GetInfo, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.info_now())
    }
}

impl Handler<UpdateStatus> for ProcessActor {
    type Result = MessageResult<UpdateStatus>;
    fn handle(&mut self, _: UpdateStatus, ctx: &mut Context<Self>) -> Self::Result {
        self.sample_now(ctx);
        MessageResult(self.info_now())
    }
}

impl Handler<GetSpec> for ProcessActor {
    type Result = MessageResult<GetSpec>;
    fn handle(&mut self, _: GetSpec, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.spec.clone())
    }
}

impl Handler<GetLogs> for ProcessActor {
    type Result = MessageResult<GetLogs>;
    fn handle(&mut self, msg: GetLogs, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.log_page(None, msg.lines).lines)
    }
}

impl Handler<GetLogPage> for ProcessActor {
    type Result = MessageResult<GetLogPage>;
    fn handle(&mut self, msg: GetLogPage, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.log_page(msg.after, msg.lines))
    }
}

impl ProcessActor {
    /// A page of the ring (an empty one if a reader thread panicked while holding it).
    fn log_page(&self, after: Option<u64>, lines: Option<usize>) -> pm_protocol::logs::LogPage {
        self.ring
            .lock()
            .map(|r| r.page(after, lines))
            .unwrap_or_default()
    }
}

impl Handler<Subscribe> for ProcessActor {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.add(msg.0);
    }
}

impl Handler<TreeNotice> for ProcessActor {
    type Result = ();
    fn handle(&mut self, msg: TreeNotice, ctx: &mut Context<Self>) {
        let watch = self.run.as_ref().and_then(|r| r.watch.as_ref());
        // A notice about an earlier run's tree is stale.
        if let Some(latest) = watch.filter(|w| w.id() == msg.watch).map(|w| w.latest()) {
            self.apply_sample(latest, ctx);
        }
    }
}
