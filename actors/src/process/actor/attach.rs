//! Taking a process the daemon did not spawn: attached by pid, or adopted again after a daemon
//! restart; checked to be the process recorded, and owned once the actor starts.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use nix::unistd::Pid;
use pm_protocol::{KernelState, LogLine, PmError, ProcessSpec, Status};

use super::super::monitor::Monitor;
use super::super::monitor::Sample;
use super::super::options::ProcessOptions;
use super::super::procfs;
use super::super::{liveness, pidfd};
use super::{now_rfc3339, Foreign, Origin, ProcessActor, Run};

/// What attaching read of a foreign process besides its run.
struct ForeignFound {
    /// Its command line (empty in the instant after an exec, before the kernel set it up).
    cmdline: Vec<String>,
    /// Its kernel state at attach.
    state: KernelState,
}

impl ProcessActor {
    /// Adopts a process the daemon did not start. Checks that `pid` exists and records its start time,
    /// so that a recycled pid is never signalled.
    pub fn attach(
        pid: i32,
        name: String,
        opts: impl Into<Arc<ProcessOptions>>,
    ) -> Result<ProcessActor, PmError> {
        Self::attach_checked(pid, name, None, opts.into())
    }

    /// Like [`ProcessActor::attach`], but only if `pid` still has the start time `start_ticks`
    /// (field 22 of `/proc/<pid>/stat`, as recorded earlier, e.g. in a state file): otherwise the pid
    /// was recycled and the answer is `PmError::NoSuchPid`.
    pub fn attach_expecting(
        pid: i32,
        name: String,
        start_ticks: u64,
        opts: impl Into<Arc<ProcessOptions>>,
    ) -> Result<ProcessActor, PmError> {
        Self::attach_checked(pid, name, Some(start_ticks), opts.into())
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
        opts: impl Into<Arc<ProcessOptions>>,
    ) -> Result<ProcessActor, PmError> {
        let (run, found) = Self::foreign_run(pid, Some(start_ticks), Origin::Adopted)?;
        let mut actor = ProcessActor::new(spec, opts);
        if let Ok(mut ring) = actor.ring.lock() {
            for line in log_tail {
                ring.push(line);
            }
        }
        actor.own_run(run, found.state);
        Ok(actor)
    }

    fn attach_checked(
        pid: i32,
        name: String,
        expected: Option<u64>,
        opts: Arc<ProcessOptions>,
    ) -> Result<ProcessActor, PmError> {
        let (run, found) = Self::foreign_run(pid, expected, Origin::Attached)?;
        let cmdline = found.cmdline;
        let (program, args) = match cmdline.split_first() {
            Some((p, a)) => (p.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        let mut spec = ProcessSpec::exec(name, program, args);
        spec.detach = true; // not ours to kill when the daemon goes
        let mut actor = ProcessActor::new(spec, opts);
        actor.info.attached = true;
        actor.info.detached = false;
        actor.info.command = cmdline.join(" ");
        actor.own_run(run, found.state);
        Ok(actor)
    }

    /// A run for a process the daemon did not spawn itself, checked to exist (with the expected start
    /// time, if given), and what was read of it. `origin` says whether it is adopted or attached.
    fn foreign_run(
        pid: i32,
        expected: Option<u64>,
        origin: fn(Foreign) -> Origin,
    ) -> Result<(Run, ForeignFound), PmError> {
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
            origin: origin(Foreign {
                pidfd: fd,
                start_ticks: stat.start_time,
            }),
            pgid,
            started: Instant::now(),
            watch: None,
            stop: None,
            deadline: None,
            guarded: false,
        };
        let found = ForeignFound {
            cmdline,
            state: KernelState::from_stat_letter(stat.state),
        };
        Ok((run, found))
    }

    /// Makes `run` the pending run, owned when the actor starts, and shows it as running in the
    /// kernel `state` read at attach (so a status before the first tick shows a real state).
    fn own_run(&mut self, run: Run, state: KernelState) {
        self.info.pid = run.pid;
        self.info.status = Status::Running;
        self.info.state = state;
        self.info.start_time = run
            .origin
            .foreign()
            .and_then(|f| procfs::start_time_of(f.start_ticks))
            .map(now_rfc3339)
            .unwrap_or_default();
        self.pending_attach = Some(run);
    }

    /// The start time (field 22 of stat) of an attached process, for a state file.
    pub fn attached_start_ticks(&self) -> Option<u64> {
        let run = self.run.as_ref().or(self.pending_attach.as_ref())?;
        match &run.origin {
            Origin::Attached(f) => Some(f.start_ticks),
            Origin::Child(_) | Origin::Adopted(_) => None,
        }
    }

    /// The actor has started: the pending attached (or adopted) run becomes the current one, its
    /// tree watched and its exit awaited.
    pub(super) fn own_pending_run(&mut self, ctx: &mut Context<Self>) {
        if let Some(mut run) = self.pending_attach.take() {
            run.id = self.next_run_id;
            self.next_run_id += 1;
            let (id, pid) = (run.id, run.pid);
            let adopted = matches!(run.origin, Origin::Adopted(_));
            let _ = self.watch_tree(&mut run, ctx);
            self.replace_run(Some(run));
            self.watch_exit(id, pid, ctx);
            if adopted {
                // After the messages already in the mailbox (the registry's subscription), so
                // that the `ready` event of an adopted run reaches it.
                ctx.run_later(std::time::Duration::ZERO, move |act, ctx| {
                    act.probes_adopted(id, ctx)
                });
            }
        }
    }

    /// Registers the tree of an attached (or adopted) `run` with the status monitor of this actor's tick,
    /// and samples it once (the baseline of the first tick's CPU figure); answers that sample.
    fn watch_tree(&self, run: &mut Run, ctx: &mut Context<Self>) -> Option<Sample> {
        let watch = Monitor::shared(self.opts.tick).watch(run.pid, ctx.address().recipient());
        if self.lacks_command(run) {
            watch.want_command();
        }
        let first = watch.sample_now().ok();
        run.watch = Some(watch);
        first
    }

    /// Whether `run` is an attached process whose command line is not known yet (attached in the
    /// instant after its exec, before the kernel set up its arguments).
    pub(super) fn lacks_command(&self, run: &Run) -> bool {
        matches!(run.origin, Origin::Attached(_)) && self.info.command.is_empty()
    }
}
