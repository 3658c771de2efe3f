//! The state file: every change written atomically and coalesced; read back when the registry starts.
//!
//! Writing. A change bumps a generation number and schedules a write; at most one write is in flight
//! and it writes the state as it is when it starts, so a burst of changes costs a few writes, not one
//! each, and a query (status, list, logs) writes nothing. A due write waits (at most `MAX_PACE`) while
//! starts are on their way to their exec, so that a start (its definition, then its run) is one write. The snapshot is taken on the registry's
//! thread (cloning the specs); serializing, fsync and rename run on `spawn_blocking`. Requests whose
//! answer promises something durable (start, stop, kill, attach, shutdown) answer once a write that
//! covers them has landed.
//!
//! Reading. Before the registry takes its first message it reads the file (on `spawn_blocking`, the
//! mailbox held by `ctx.wait`): a live run (same pid, same start time) is adopted again, with the tail
//! of its log file in the ring; a process that should run but does not is started again and counted as
//! a restart; schedules are armed again. A detached process spawned just before a crash, whose pid
//! never reached the file, is found by the variables every child gets ([`ENV_NAME`], [`ENV_STATE`]).
//! A file that does not parse is moved aside to `state.json.damaged-<time>`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pm_protocol::state::{SavedProcess, SavedRun, SavedState, StateEncoder};
use pm_protocol::{LogLine, PmError};
use tokio::sync::oneshot;

use super::lifecycle::Lifecycle;
use super::{atomic_file, Registry};
use crate::process::{liveness, log_tail, procfs, strays, ProcessActor};

/// Every child's environment holds its process name here.
pub const ENV_NAME: &str = "PROCESSMANAGER_NAME";
/// Every child's environment holds the state file of the daemon that started it here.
pub const ENV_STATE: &str = "PROCESSMANAGER_STATE";

/// How many times the state file has been written since the registry started (for tests and
/// benchmarks: a status query must not write).
///
/// ```
/// # use pm_actors::registry::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let before = registry.send(StateWrites).await.unwrap();
/// registry.send(ListProcesses).await.unwrap().unwrap();
/// assert_eq!(registry.send(StateWrites).await.unwrap(), before);
/// # });
/// ```
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "u64")]
pub struct StateWrites;

impl Handler<StateWrites> for Registry {
    type Result = u64;
    fn handle(&mut self, _: StateWrites, _: &mut Context<Self>) -> u64 {
        self.state.writes
    }
}

/// After a failed write, the next attempt waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// The longest a change waits for the starts on their way (see [`Registry::write_state`]).
const MAX_PACE: Duration = Duration::from_millis(50);
/// In a burst, a write waits this many times as long as the previous one took (see
/// [`StateBook::pace_left`]): rewriting the file then takes at most a sixth of a core, which a burst
/// of starts needs for the children's execs.
const BURST_PACE_FACTOR: u32 = 5;
/// The longest a write waits after the previous one ended: at 10,000 processes a write takes tens of
/// milliseconds, and a shorter cap would let the writer take a third of a core again.
const MAX_BURST_PACE: Duration = Duration::from_millis(250);

/// The books of the state writer.
#[derive(Default)]
pub(crate) struct StateBook {
    /// Bumped by every change.
    generation: u64,
    /// The generation the last completed write covers.
    written: u64,
    in_flight: bool,
    /// The write to come, while one is scheduled.
    scheduled: Option<SpawnHandle>,
    /// Off until the file has been read (a write before would clobber it), and for good when the
    /// config says so.
    enabled: bool,
    last_error: Option<String>,
    /// Completed writes.
    writes: u64,
    /// Lent to each write (one at a time), so that only what changed is serialized again.
    encoder: Option<StateEncoder>,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    /// In a burst (changes came while the last write ran), the next write begins no sooner than this.
    pace_until: Option<Instant>,
    /// Starts sent to their process and not answered yet.
    starts_in_flight: usize,
    /// Since when a due write has waited for starts on their way.
    held_since: Option<Instant>,
}

impl StateBook {
    /// How long a write must still wait after the last one (see `pace_until`).
    fn pace_left(&self) -> Duration {
        self.pace_until.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }
}

/// What was read from disk, on a blocking thread, before the registry takes any message.
struct Loaded {
    state: Option<SavedState>,
    /// Ring refills for live runs, by name.
    tails: HashMap<String, Vec<LogLine>>,
    /// Detached processes found by their environment, by name (wanted, with no live run on file).
    orphans: HashMap<String, SavedRun>,
}

impl Registry {
    /// Something the state file holds has changed: schedule a write.
    pub(crate) fn state_changed(&mut self, ctx: &mut Context<Self>) {
        self.state.generation += 1;
        self.schedule_write(Duration::ZERO, ctx);
    }

    fn schedule_write(&mut self, after: Duration, ctx: &mut Context<Self>) {
        let book = &mut self.state;
        if !book.enabled || book.in_flight || book.scheduled.is_some() {
            return;
        }
        // At the earliest later in this turn's wake-up, so that the rest of the handler's changes are
        // in the snapshot.
        let wait = after.max(book.pace_left());
        book.scheduled = Some(ctx.run_later(wait, |act, ctx| act.write_state(ctx)));
    }

    /// The state as the file holds it.
    fn snapshot(&self) -> SavedState {
        let processes = self
            .entries
            .values()
            .map(|e| SavedProcess {
                spec: e.spec.clone(),
                wanted: e.wanted(),
                restarts: e.backoff.restarts,
                skipped_runs: e.skipped_runs,
                attached: e.attached,
                gave_up: e.lifecycle.gave_up().map(str::to_string),
                run: e.run,
                completed: e.reached.completed(),
            })
            .collect();
        SavedState::new(processes)
    }

    /// Writes the state, unless starts are on their way: each changes the state again with its run
    /// within an exec's time, so the write waits for them (at most `MAX_PACE`), and a start, or a burst
    /// of them, is one write rather than two each.
    fn write_state(&mut self, ctx: &mut Context<Self>) {
        self.state.scheduled = None;
        if self.state.in_flight || self.state.written == self.state.generation {
            return;
        }
        if self.state.starts_in_flight > 0 {
            let since = *self.state.held_since.get_or_insert_with(Instant::now);
            let left = MAX_PACE.saturating_sub(since.elapsed());
            if !left.is_zero() {
                // `start_answered` brings it forward when the last start is answered.
                self.state.scheduled = Some(ctx.run_later(left, |act, ctx| act.write_state(ctx)));
                return;
            }
        }
        self.state.held_since = None;
        let generation = self.state.generation;
        self.state.in_flight = true;
        let began = Instant::now();
        let snapshot = self.snapshot();
        let mut encoder = self.state.encoder.take().unwrap_or_default();
        let path = self.config.paths.state_file.clone();
        let write = tokio::task::spawn_blocking(move || {
            let text = encoder.encode(&snapshot);
            let res = atomic_file::write_atomic(&path, text.as_bytes(), 0o600)
                .map_err(|e| format!("cannot write the state file {}: {e}", path.display()));
            (res, encoder)
        });
        ctx.spawn(write.into_actor(self).map(move |res, act, ctx| {
            act.state.in_flight = false;
            let took = began.elapsed();
            let res = match res {
                Ok((res, encoder)) => {
                    act.state.encoder = Some(encoder);
                    res
                }
                Err(e) => Err(format!("state writer: {e}")),
            };
            match res {
                Ok(()) => {
                    if act.state.last_error.take().is_some() {
                        tracing::info!("the state file is written again");
                    }
                    act.state.written = generation;
                    act.state.writes += 1;
                }
                Err(e) => {
                    // Said once per distinct error, not once per attempt.
                    if act.state.last_error.as_ref() != Some(&e) {
                        tracing::error!("{e}; retrying every second");
                        act.state.last_error = Some(e);
                    }
                    // Whoever waits is answered: the change happened, only its record is late.
                    act.state.written = act.state.written.max(generation);
                }
            }
            let written = act.state.written;
            let (done, waiting) = std::mem::take(&mut act.state.waiters)
                .into_iter()
                .partition(|(g, _)| *g <= written);
            act.state.waiters = waiting;
            for (_, tx) in done {
                let _ = tx.send(());
            }
            // Changes came during the write (a burst): the next one waits `BURST_PACE_FACTOR` times
            // as long as this one took (at most `MAX_BURST_PACE`), each write being the whole file,
            // fsync'd; otherwise a change is written at once.
            let burst = act.state.generation != written;
            act.state.pace_until =
                burst.then(|| Instant::now() + (took * BURST_PACE_FACTOR).min(MAX_BURST_PACE));
            if burst {
                act.schedule_write(Duration::ZERO, ctx);
            } else if act.state.last_error.is_some() {
                act.state.generation += 1;
                act.schedule_write(RETRY_AFTER, ctx);
            }
        }));
    }

    /// A start was sent to its process.
    pub(crate) fn start_sent(&mut self) {
        self.state.starts_in_flight += 1;
    }

    /// A start was answered: once none is on its way, a write held for them goes now.
    pub(crate) fn start_answered(&mut self, ctx: &mut Context<Self>) {
        let book = &mut self.state;
        book.starts_in_flight = book.starts_in_flight.saturating_sub(1);
        if book.starts_in_flight == 0 && book.held_since.is_some() {
            if let Some(handle) = book.scheduled.take() {
                ctx.cancel_future(handle);
            }
            self.schedule_write(Duration::ZERO, ctx);
        }
    }

    /// Resolves once every change made so far is in the file (at once when nothing is pending).
    pub(crate) fn durable(&mut self) -> impl std::future::Future<Output = ()> + 'static {
        let book = &mut self.state;
        let rx = (book.enabled && book.written < book.generation).then(|| {
            let (tx, rx) = oneshot::channel();
            book.waiters.push((book.generation, tx));
            rx
        });
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
        }
    }

    /// `fut`, answered once the changes it made are in the file.
    pub(crate) fn when_durable<T: 'static>(
        fut: ResponseActFuture<Self, T>,
    ) -> ResponseActFuture<Self, T> {
        Box::pin(fut.then(|out, act, _| act.durable().into_actor(act).map(move |(), _, _| out)))
    }

    /// Records the live run of `name` from a status event (pid > 0 while alive, gone otherwise).
    pub(crate) fn track_run(&mut self, name: &str, pid: i32, alive: bool, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        let run = if alive && pid > 0 {
            if entry.run.is_some_and(|r| r.pid == pid) {
                return;
            }
            crate::process::start_ticks(pid).map(|start_ticks| SavedRun { pid, start_ticks })
        } else {
            None
        };
        if entry.run != run {
            entry.run = run;
            self.state_changed(ctx);
        }
    }

    /// Reads the state file before any message is handled, then restores and loads templates.
    pub(crate) fn restore_at_startup(&mut self, ctx: &mut Context<Self>) {
        let path = self.config.paths.state_file.clone();
        let log_dir = self.config.paths.log_dir.clone();
        let read = tokio::task::spawn_blocking(move || load(&path, &log_dir));
        ctx.wait(read.into_actor(self).map(|res, act, ctx| {
            match res {
                Ok(Ok(loaded)) => {
                    act.state.enabled = true;
                    act.restore(loaded, ctx);
                }
                Ok(Err(e)) => tracing::error!(
                    "{e}; the state file is left as it is and not written while this daemon runs"
                ),
                Err(e) => tracing::error!("reading the state file: {e}"),
            }
            if act.config.load_templates {
                act.load_templates_at_startup(ctx);
            } else {
                act.startup.done = true;
            }
        }));
    }

    fn restore(&mut self, loaded: Loaded, ctx: &mut Context<Self>) {
        let Some(state) = loaded.state else { return };
        let Loaded {
            mut tails,
            mut orphans,
            ..
        } = loaded;
        let (mut adopted, mut started, mut defined) = (0, 0, 0);
        for p in state.processes {
            let name = p.spec.name.clone();
            if p.attached {
                self.restore_attached(p);
                continue;
            }
            let live = p.run.filter(same_process).or_else(|| orphans.remove(&name));
            let tail = tails.remove(&name).unwrap_or_default();
            match self.restore_one(p, live, tail, ctx) {
                Ok(Restored::Adopted) => adopted += 1,
                Ok(Restored::Started) => started += 1,
                Ok(Restored::Defined) => defined += 1,
                Err(e) => tracing::error!(process = %name, "not restored from the state file: {e}"),
            }
        }
        tracing::info!(
            adopted,
            started,
            defined,
            "restored from {}",
            self.config.paths.state_file.display()
        );
        self.state_changed(ctx);
    }

    fn restore_one(
        &mut self,
        p: SavedProcess,
        live: Option<SavedRun>,
        tail: Vec<LogLine>,
        ctx: &mut Context<Self>,
    ) -> Result<Restored, PmError> {
        let name = p.spec.name.clone();
        let scheduled = p.spec.cron.is_some();
        // A live run is adopted even when not wanted (a stop the crash interrupted): it is then
        // stopped again below, rather than left running unmanaged.
        let outcome = match live {
            Some(run) => {
                self.check_new_name(&name)?;
                let spec = Self::unmarked(Arc::unwrap_or_clone(p.spec));
                let actor = ProcessActor::adopt(
                    spec.clone(),
                    run.pid,
                    run.start_ticks,
                    tail,
                    self.process_options(),
                )?;
                self.register(name.clone(), spec, actor, false);
                Restored::Adopted
            }
            None => {
                self.define(Arc::unwrap_or_clone(p.spec))?;
                Restored::Defined
            }
        };
        let Some(entry) = self.entries.get_mut(&name) else {
            return Err(PmError::Internal("restored entry vanished".into()));
        };
        entry.backoff.restarts = p.restarts;
        entry.skipped_runs = p.skipped_runs;
        entry.reached.restore_completed(p.completed, &entry.spec);
        entry.lifecycle = Lifecycle::restored(p.wanted, p.gave_up);
        if !p.wanted {
            if outcome == Restored::Adopted {
                tracing::info!(process = %name, "stopping it again: its stop was cut short by the daemon's end");
                entry.process.request_stop(None);
            }
            return Ok(outcome);
        }
        if outcome == Restored::Adopted {
            entry.run = live;
            entry.started_at = Some(std::time::Instant::now());
            if let Some(run) = live {
                self.run_adopted(&name, run.pid, ctx);
            }
            if scheduled {
                self.arm_cron(&name, ctx);
            }
            return Ok(outcome);
        }
        // It should run and does not: a restart (a schedule is only armed again).
        if !scheduled || p.run.is_some() {
            entry.backoff.restarts += 1;
        }
        let launch = self.launch(name.clone(), ctx);
        ctx.spawn(launch.map(move |res, _, _| {
            if let Err(e) = res {
                tracing::warn!(process = %name, "restart after the daemon restart failed: {e}");
            }
        }));
        Ok(if scheduled {
            Restored::Defined
        } else {
            Restored::Started
        })
    }

    /// An attached process is adopted again if it still runs, and forgotten otherwise.
    fn restore_attached(&mut self, p: SavedProcess) {
        let name = p.spec.name.clone();
        let Some(run) = p.run else { return };
        let attached = self.check_new_name(&name).and_then(|()| {
            ProcessActor::attach_expecting(
                run.pid,
                name.clone(),
                run.start_ticks,
                self.process_options(),
            )
        });
        match attached {
            Ok(actor) => {
                self.register(name.clone(), p.spec, actor, true);
                if let Some(entry) = self.entries.get_mut(&name) {
                    entry.run = Some(run);
                }
            }
            Err(e) => {
                tracing::info!(process = %name, pid = run.pid, "attached process is gone, forgotten: {e}")
            }
        }
    }

    /// The spec without the marker variables (an older daemon kept them in every spec; its state
    /// file may still hold them): each spawn adds the marker (see [`ProcessOptions::marker`]), so that
    /// ten thousand specs do not each carry a map of two variables.
    ///
    /// [`ProcessOptions::marker`]: crate::process::ProcessOptions::marker
    pub(crate) fn unmarked(mut spec: pm_protocol::ProcessSpec) -> pm_protocol::ProcessSpec {
        spec.env.remove(ENV_NAME);
        spec.env.remove(ENV_STATE);
        spec
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restored {
    Adopted,
    Started,
    Defined,
}

/// Whether `run`'s pid is still that very process (same start time, not a zombie).
fn same_process(run: &SavedRun) -> bool {
    liveness::still_running(run.pid, Some(run.start_ticks)).is_some()
}

/// Reads the state file. Missing: no state. Unparsable: moved aside, no state. Unreadable: an error
/// (the file is kept and must not be overwritten).
fn load(path: &Path, log_dir: &Path) -> Result<Loaded, String> {
    let mut loaded = Loaded {
        state: None,
        tails: HashMap::new(),
        orphans: HashMap::new(),
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(loaded),
        Err(e) => {
            return Err(format!(
                "cannot read the state file {}: {e}",
                path.display()
            ))
        }
    };
    let state = match std::str::from_utf8(&text)
        .map_err(|e| e.to_string())
        .and_then(SavedState::from_json)
    {
        Ok(s) => s,
        Err(reason) => {
            let aside = damaged_name(path);
            match std::fs::rename(path, &aside) {
                Ok(()) => tracing::error!(
                    "the state file {} is damaged ({reason}); moved aside to {}; starting with no \
                     processes from it",
                    path.display(),
                    aside.display()
                ),
                Err(e) => {
                    return Err(format!(
                        "the state file {} is damaged ({reason}) and cannot be moved aside: {e}",
                        path.display()
                    ))
                }
            }
            return Ok(loaded);
        }
    };
    let mut wanted_detached = Vec::new();
    for p in &state.processes {
        let live = p.run.filter(same_process);
        if live.is_some() && p.spec.log.enabled {
            let file = log_dir.join(format!("{}.log", p.spec.name));
            loaded.tails.insert(
                p.spec.name.clone(),
                log_tail::read_tail(&file, p.spec.log.ring_lines),
            );
        }
        if live.is_none() && p.wanted && p.spec.detach && !p.attached {
            wanted_detached.push(p.spec.name.clone());
        }
    }
    if !wanted_detached.is_empty() {
        loaded.orphans = find_orphans(path, &wanted_detached);
    }
    // What a daemon killed by SIGKILL left behind: the guard killed its groups, not what had left them.
    let keep: HashSet<String> = state
        .processes
        .iter()
        .filter(|p| p.spec.detach || p.run.is_some_and(|r| same_process(&r)))
        .map(|p| p.spec.name.clone())
        .collect();
    let killed = strays::kill_left_behind(path, &keep);
    if killed > 0 {
        tracing::warn!(
            killed,
            "killed processes an earlier daemon left behind outside their groups"
        );
    }
    loaded.state = Some(state);
    Ok(loaded)
}

/// `state.json.damaged-<local time>`, next to the file.
fn damaged_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".damaged-{}",
        chrono::Local::now().format("%Y%m%dT%H%M%S%.3f")
    ));
    PathBuf::from(name)
}

/// The detached children of the daemon whose state file is `state_file`, as (pid, process name): session
/// leaders carrying its marker ([`ENV_NAME`], [`ENV_STATE`]). It reads every process's environment: for
/// a daemon's start and for tests, never for a tick.
pub fn detached_children(state_file: &Path) -> Vec<(i32, String)> {
    let mut found = strays::marked_processes(state_file);
    // Detached children lead their own session; their descendants, who inherit the variables, do not.
    found.retain(|&(pid, _)| {
        nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(pid))).map(|s| s.as_raw()) == Ok(pid)
    });
    found
}

fn find_orphans(state_file: &Path, names: &[String]) -> HashMap<String, SavedRun> {
    let mut found: HashMap<String, SavedRun> = HashMap::new();
    for (pid, name) in detached_children(state_file) {
        let Some(name) = names.iter().find(|n| **n == name) else {
            continue;
        };
        let Ok(stat) = procfs::read_stat(pid) else {
            continue;
        };
        let run = SavedRun {
            pid,
            start_ticks: stat.start_time,
        };
        // Should there be two, the older one is adopted; the other is left alone and said.
        match found.get(name) {
            Some(other) if other.start_ticks <= run.start_ticks => {
                tracing::warn!(process = %name, pid, "a second detached copy was found and left alone");
            }
            _ => {
                found.insert(name.to_string(), run);
            }
        }
    }
    found
}
