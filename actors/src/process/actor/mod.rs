//! The `ProcessActor`: the one owner of one managed process (spawn, stop, kill, signal, wait, reap,
//! status tick, deadline, logs, events); its state, and the message handlers that call into the
//! files beside this one.
//!
//! - `start`: a start, from its spawn kit to the exec'd child with its exit watcher and log capture;
//! - `exit`: learning of an exit (pidfd, or polling), reaping it and ending the run;
//! - `stop`: a stop or kill of the whole group, the groups that linger, signals;
//! - `attach`: taking a process the daemon did not spawn (attached, or adopted after a restart);
//! - `status`: the status record, the readings of the tree, the log ring;
//! - `strays`: the processes that left the group, carrying its marker, swept with a stop;
//! - `health`: readiness and health checks, the notify socket, the stop of an unhealthy run.
//!
//! Exits are event-driven: a pidfd per run, awaited with tokio's `AsyncFd`, wakes the actor the moment
//! the process exits, and the actor reaps it at once. Polling happens only during a stop, to see the
//! rest of the process group go (`kill(-pgid, 0)` at `GROUP_POLL`), and once a tick while a group
//! lives on after its leader exited by itself.
//!
//! The status tick is not the actor's: each run registers its tree with the shared
//! [`Monitor`](super::Monitor) of its tick interval, whose thread samples every tree and keeps the
//! reading in the run's [`TreeWatch`], where `GetInfo` finds it. The monitor sends a [`TreeNotice`]
//! only when the actor has something to do (a new kernel state to announce, a root it could not read,
//! an attached process's command line), so an idle actor costs nothing per tick. A log file's write
//! error is looked up when the status is asked.

mod attach;
mod cgroup;
mod exit;
mod health;
mod leftovers;
mod start;
mod status;
mod stop;
mod strays;

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::{
    CommandLine, EventKind, ExitInfo, KernelState, PmError, ProcessEvent, ProcessInfo, ProcessSpec,
    Status,
};
use tokio::sync::oneshot;

use super::child::ChildProcess;
use super::events::Subscribers;
use super::guard::GroupGuard;
use super::liveness;
use super::logs::{LogRing, RotatingFile};
use super::messages::*;
use super::monitor::{TreeNotice, TreeWatch};
use super::options::ProcessOptions;
use super::record::{Live, Record, RecordReader};

type ExitSender = oneshot::Sender<Result<ExitInfo, PmError>>;

/// Why a run is being stopped: decides its final status and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    User,
    Deadline(u64),
    /// Unhealthy, or not ready in time: the reason is in the actor's probe state.
    Probe,
}

/// Who a run's process is to the daemon: decides how it is reaped, signalled and ended.
enum Origin {
    /// Our own child, spawned for this run: reaped with `try_wait`, so its pid (and its group's id)
    /// cannot be recycled while the run lasts.
    Child(ChildProcess),
    /// A run of this spec that an earlier daemon started, taken up again from the state file. Its
    /// exit status cannot be known, so its end counts as a failure.
    Adopted(Foreign),
    /// A process attached by pid: its end is only `terminated`, and it is never started again.
    Attached(Foreign),
}

/// A process the daemon did not spawn: what proves that its pid still names it.
struct Foreign {
    /// A pidfd to signal exactly this process, never a recycled pid (`None` where pidfds are missing).
    pidfd: Option<OwnedFd>,
    /// Field 22 of its stat, checked where no pidfd exists.
    start_ticks: u64,
}

impl Foreign {
    /// Whether `pid` is still this process and has not exited.
    fn still_running(&self, pid: i32) -> bool {
        liveness::still_running(pid, Some(self.start_ticks)).is_some()
    }
}

impl Origin {
    /// The proof of identity of a process that is not our child.
    fn foreign(&self) -> Option<&Foreign> {
        match self {
            Origin::Child(_) => None,
            Origin::Adopted(f) | Origin::Attached(f) => Some(f),
        }
    }
}

/// One run of the process, from spawn (or attach) to exit.
struct Run {
    id: u64,
    pid: i32,
    origin: Origin,
    /// The process group signals go to; `None` for an attached process that does not lead its group.
    pgid: Option<i32>,
    started: Instant,
    /// The run's tree as the status monitor watches it (registered once the actor runs).
    watch: Option<TreeWatch>,
    stop: Option<StopReason>,
    deadline: Option<SpawnHandle>,
    /// Its group is registered with the group guard.
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
    /// The group is gone (its id may be recycled: never signal it again); strays may be left.
    group_gone: bool,
    /// The stop also reaches the processes that left the group with its marker (see `strays`).
    strays: bool,
}

/// A group we started whose leader exited by itself while other members live on.
struct LingeringGroup {
    pgid: i32,
    /// Registered with the group guard: unregistered once the group is gone.
    guarded: bool,
}

/// One actor per managed process. See the module docs of [`crate::process`].
pub struct ProcessActor {
    /// Shared with the registry's record: one definition in memory per process, not two.
    spec: Arc<ProcessSpec>,
    /// Shared by every actor of a registry: at ten thousand processes a copy each (its paths
    /// included) was a few megabytes of the daemon's idle memory.
    opts: Arc<ProcessOptions>,
    /// The status record, which the registry reads in place (see [`super::record`]).
    info: Record,
    run: Option<Run>,
    /// The attached (or adopted) process to own when the actor starts.
    pending_attach: Option<Run>,
    next_run_id: u64,
    last_exit: Option<ExitInfo>,
    waiters: Vec<ExitSender>,
    stops: Vec<GroupStop>,
    /// How many user stops were asked: a start queued behind a stop is dropped if one came meanwhile.
    user_stops: u32,
    lingering: Vec<LingeringGroup>,
    /// The periodic look at `lingering`, once a tick while it is not empty.
    lingering_check: Option<SpawnHandle>,
    subscribers: Subscribers,
    ring: Arc<Mutex<LogRing>>,
    /// Readiness and health of the current run.
    probes: health::ProbeState,
    /// This actor's token as the owner of `cgroup` (see [`super::cgroup::release`]).
    cgroup_token: Option<u64>,
    /// The cgroup's OOM kill count at the start, to tell an OOM kill from another SIGKILL.
    oom_kills_before: Option<u64>,
    /// The spec's limits are in the cgroup (written at the first start of this actor).
    cgroup_limits_written: bool,
    /// The cgroup was killed through `cgroup.kill`: the next start makes it anew (see
    /// `cgroup_for_start`).
    cgroup_killed: bool,
}

fn now_rfc3339(t: DateTime<Local>) -> String {
    pm_protocol::status::time_text(&t)
}

/// The answer `rx` brings, or an internal error when the actor went away before it answered.
async fn answer<T>(rx: oneshot::Receiver<Result<T, PmError>>) -> Result<T, PmError> {
    rx.await
        .unwrap_or_else(|_| Err(PmError::Internal("process actor stopped".into())))
}

impl ProcessActor {
    /// An actor for `spec`. It does not start the process: send [`Start`].
    ///
    /// A process that is not detached is started with `PR_SET_PDEATHSIG` (SIGKILL), which the
    /// kernel ties to the *thread* that cloned it, not to the program: start the actor on an
    /// arbiter that lives as long as its processes should. One started on a short-lived arbiter
    /// sees its children killed when that arbiter's thread ends.
    pub fn new(
        spec: impl Into<Arc<ProcessSpec>>,
        opts: impl Into<Arc<ProcessOptions>>,
    ) -> ProcessActor {
        let spec = spec.into();
        let opts = opts.into();
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
        let adopted = super::cgroup::tree().and_then(|t| t.adopt(&spec.name, spec.detach));
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
        info.memory_max = spec.limits.memory_max;
        let live = Live {
            log_file,
            ..Live::default()
        };
        let mut actor = ProcessActor {
            spec,
            opts,
            info: Record::new(info, live),
            run: None,
            pending_attach: None,
            next_run_id: 1,
            last_exit: None,
            waiters: Vec::new(),
            stops: Vec::new(),
            user_stops: 0,
            lingering: Vec::new(),
            lingering_check: None,
            subscribers: Subscribers::default(),
            ring,
            probes: health::ProbeState::default(),
            cgroup_token: adopted.as_ref().map(|(_, token)| *token),
            oom_kills_before: None,
            cgroup_limits_written: false,
            cgroup_killed: false,
        };
        // An adopted (detached) process is in the cgroup of its name, if it is there.
        cgroup::set_cgroup(
            &mut actor.info,
            adopted.as_ref().map(|(path, _)| path.as_path()),
        );
        actor
    }

    /// The registry's end of this actor's status record (read by a list without a message).
    pub fn record_reader(&self) -> RecordReader {
        self.info.reader()
    }

    /// Makes `run` the current run (or none) and answers the one before; the record learns where
    /// the run's live fields come from (its start, its tree's latest reading) in the same step, so
    /// the two cannot disagree.
    fn replace_run(&mut self, run: Option<Run>) -> Option<Run> {
        let live = self.info.live_mut();
        live.started = run.as_ref().map(|r| r.started);
        live.latest = run
            .as_ref()
            .and_then(|r| r.watch.as_ref())
            .map(TreeWatch::latest_reading);
        std::mem::replace(&mut self.run, run)
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

    /// The group guard, when this process's children are to die with the daemon.
    fn guard(&self) -> Option<&GroupGuard> {
        self.opts.guard.as_ref().filter(|_| !self.spec.detach)
    }

    /// The guard a run's group is registered with: none when the run is in a cgroup the guard kills
    /// whole, where a registration (a line the guard's `sh` reads and files) would buy nothing.
    fn run_guard(&self) -> Option<&GroupGuard> {
        self.guard()
            .filter(|g| !(g.kills_cgroups() && self.cgroup().is_some()))
    }

    /// The run `id`, if it is still the current one.
    fn current_run(&self, id: u64) -> Option<&Run> {
        self.run.as_ref().filter(|r| r.id == id)
    }
}

impl Actor for ProcessActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.own_pending_run(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let outlives = self.spec.detach && self.run.is_some();
        self.abandon_run();
        self.release_cgroup(outlives);
    }
}

impl Handler<Start> for ProcessActor {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;
    fn handle(&mut self, _: Start, ctx: &mut Context<Self>) -> Self::Result {
        let started = self.start_after_stops(ctx);
        Box::pin(started.map(|res, act, _| res.map(|_pid| act.info_now())))
    }
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
        self.stop_and_wait(msg.grace, ctx)
    }
}

impl Handler<Kill> for ProcessActor {
    type Result = ResponseFuture<Result<ExitInfo, PmError>>;
    fn handle(&mut self, _: Kill, ctx: &mut Context<Self>) -> Self::Result {
        self.kill_and_wait(ctx)
    }
}

impl Handler<Wait> for ProcessActor {
    type Result = ResponseFuture<Result<ExitInfo, PmError>>;
    fn handle(&mut self, _: Wait, _: &mut Context<Self>) -> Self::Result {
        self.exit_waiter()
    }
}

impl Handler<Signal> for ProcessActor {
    type Result = Result<(), PmError>;
    fn handle(&mut self, msg: Signal, _: &mut Context<Self>) -> Self::Result {
        self.signal(&msg.signal, msg.group)
    }
}

impl Handler<Restart> for ProcessActor {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;
    fn handle(&mut self, _: Restart, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(
            self.restart(ctx)
                .map(|res, act, _| res.map(|_pid| act.info_now())),
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
        MessageResult(ProcessSpec::clone(&self.spec))
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

impl Handler<Subscribe> for ProcessActor {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        self.subscribers.add(msg.0);
    }
}

impl Handler<Announce> for ProcessActor {
    type Result = ();
    fn handle(&mut self, msg: Announce, _: &mut Context<Self>) {
        self.emit(self.info.pid, msg.0, None);
    }
}

impl Handler<TreeNotice> for ProcessActor {
    type Result = ();
    fn handle(&mut self, msg: TreeNotice, ctx: &mut Context<Self>) {
        self.on_tree_notice(msg, ctx);
    }
}
