//! The status monitor: one thread per tick interval samples every watched process tree in one pass.
//!
//! Design. A timer per actor costs, at 1,000 processes, more than the /proc reads themselves (a timer
//! wheel entry, a future and a context poll per actor per tick). Instead each [`ProcessActor`] registers
//! its run's tree with the [`Monitor`] of its tick interval and holds a [`TreeWatch`]; the monitor's
//! thread sleeps until the next tick, reads every tree ([`TreeSampler::tick`]), and puts each reading in
//! the watch's cell, where the actor finds it when asked for its status. The thread messages an actor
//! ([`TreeNotice`]) only when the actor has something to do: the root's kernel state changed (a root
//! that cannot be read counts as `unavailable`, so it is told once), or the command line of an attached
//! process became readable. While nothing is watched, the thread parks on a condition variable with no
//! timeout: no wakeup at all.
//!
//! A tree that showed no CPU and no change of state for three ticks in a row is read every other
//! tick, and one that stayed so for [`LONG_IDLE_AFTER`] readings every fourth. Idle trees also share
//! a budget of [`IDLE_READS_PER_TICK`] reads a tick: past it (thousands of sleeping processes) each
//! is read every 4th, 8th, ... tick, so that the cost of watching idle processes stops growing with
//! their number (at 10,000 a sleeping tree that wakes up shows within sixteen ticks). A tree that is
//! not idle is read every tick, however many there are. New watches are taken up at the next tick (a
//! parked thread is woken), and dropped ones swept
//! then: a burst of starts wakes the thread at most once. The thread runs at nice 10: on a machine with
//! few cores, a tick waits for a restart or a request rather than delaying it.
//!
//! Dropping a [`TreeWatch`] (the run ended, the actor stopped) unregisters the tree and closes its files.
//!
//! The reading of one tree, and what it keeps open between ticks, is [`TreeSampler`] (in `tree`).
//!
//! [`ProcessActor`]: super::ProcessActor

mod cgroup_cpu;
mod kept;
mod tree;

pub use kept::kept_files;
pub use tree::{Sample, TreeSampler, CGROUP_PAYS_FROM, FALLBACK_REFRESH_TICKS, REFRESH_TICKS};

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix::WeakRecipient;
use pm_protocol::KernelState;

use super::procfs;

/// The shortest tick the monitor runs: a zero interval would spin its thread.
const MIN_TICK: Duration = Duration::from_millis(1);
/// A tree whose readings showed no CPU and the same state this many ticks in a row is read every
/// other tick: at 1,000 sleeping processes that halves the monitor's whole cost (one /proc read per
/// process per tick), and a tree that wakes up shows within two ticks instead of one.
const IDLE_AFTER: u32 = 3;
/// A tree idle for this many readings in a row (a couple of minutes at a one-second tick) is read
/// every fourth tick: at thousands of sleeping processes the monitor's cost is then a quarter, and
/// a tree that wakes up shows within four ticks.
const LONG_IDLE_AFTER: u32 = 64;
/// Reads of idle trees a tick, shared by all of them: with more idle trees than this, each is read
/// only every so many ticks (a power of two) so that the reads stay within it. A read costs a few
/// microseconds, so the budget keeps the idle monitor under half a percent of a core at a 1 s tick.
const IDLE_READS_PER_TICK: usize = 1024;

/// The spacing mask (a power of two less one) that keeps `idle` trees within the budget: 0 while they
/// fit, 1 for every other tick, 3 for every fourth, ...
fn budget_mask(idle: usize) -> u64 {
    let every = idle
        .div_ceil(IDLE_READS_PER_TICK)
        .max(1)
        .next_power_of_two();
    every as u64 - 1
}

/// Sent to the watching actor when a tick found something for it to do; the actor reads the watch's
/// cell ([`TreeWatch::latest`], [`TreeWatch::take_command`]) to see what.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct TreeNotice {
    /// The watch the notice is about ([`TreeWatch::id`]): a notice for an earlier run is stale.
    pub watch: u64,
}

/// The sampler of every watched tree for one tick interval. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Monitor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    interval: Duration,
    inbox: Mutex<Inbox>,
    wake: Condvar,
    /// The thread waits with no timeout: nothing is watched.
    parked: AtomicBool,
    /// Sampling passes so far.
    passes: AtomicU64,
    /// Trees the thread samples, as of its last look at the inbox.
    watched: AtomicUsize,
    /// Notices sent so far.
    notices: AtomicU64,
}

/// Changes to the watched set, taken up by the thread when it wakes.
#[derive(Debug, Default)]
struct Inbox {
    added: Vec<Arc<Watch>>,
    /// A watch was dropped: sweep the closed ones.
    removed: bool,
}

/// One watched tree.
#[derive(Debug)]
struct Watch {
    id: u64,
    /// Its [`TreeWatch`] is gone: sample it no more.
    closed: AtomicBool,
    /// The actor waits for the root's command line (an attached process caught before its exec set it).
    wants_command: AtomicBool,
    cell: Mutex<Cell>,
    /// Weak, so that a watch never keeps its actor alive.
    notify: WeakRecipient<TreeNotice>,
}

/// What a watch holds between ticks.
#[derive(Debug)]
struct Cell {
    sampler: TreeSampler,
    /// The latest reading; `None` when the root could not be read (or before the first sample).
    latest: Option<Sample>,
    /// The root's state as of the last tick (`Unavailable` when unreadable), to notice a change;
    /// `None` before the first tick, so that the first one always tells the actor.
    ticked: Option<KernelState>,
    /// The root's command line, once read for an actor that wants it.
    command: Option<Vec<String>>,
    /// Readings in a row with no CPU and no change of state (see [`IDLE_AFTER`]).
    idle: u32,
}

/// Locks `m`, poisoned or not: no thread panics while holding these locks, and if one did, the data (a
/// reading, a list of watches) is still sound.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Monitor {
    /// The monitor of tick `interval`, shared by every actor of this process with that interval; its
    /// thread starts on first use and lives as long as the process (parked while nothing is watched).
    pub fn shared(interval: Duration) -> Monitor {
        static MONITORS: OnceLock<Mutex<Vec<Monitor>>> = OnceLock::new();
        let mut monitors = lock(MONITORS.get_or_init(Default::default));
        if let Some(m) = monitors.iter().find(|m| m.shared.interval == interval) {
            return m.clone();
        }
        let m = Monitor::start(interval);
        monitors.push(m.clone());
        m
    }

    /// A monitor with its own thread. Should the thread not start, trees are still watched, but sampled
    /// only on [`TreeWatch::sample_now`].
    fn start(interval: Duration) -> Monitor {
        let shared = Arc::new(Shared {
            interval,
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            parked: AtomicBool::new(false),
            passes: AtomicU64::new(0),
            watched: AtomicUsize::new(0),
            notices: AtomicU64::new(0),
        });
        let thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("pm-monitor".into())
            .spawn(move || {
                yield_to_requests();
                run(&thread)
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the status monitor: {e}; status is read only on request");
        }
        Monitor { shared }
    }

    /// The tick interval.
    pub fn interval(&self) -> Duration {
        self.shared.interval
    }

    /// Starts watching the tree rooted at `root`: from the next tick on, its reading is kept in the
    /// returned watch, and `notify` gets a [`TreeNotice`] when the actor has something to do. Files are
    /// opened on the first sample; dropping the watch stops it.
    pub fn watch(&self, root: i32, notify: Recipient<TreeNotice>) -> TreeWatch {
        self.watch_with(TreeSampler::new(root), notify)
    }

    /// [`Monitor::watch`] for a tree whose root was started just now (see
    /// [`TreeSampler::started_now`]): nothing is read before its first tick.
    pub fn watch_started(&self, root: i32, notify: Recipient<TreeNotice>) -> TreeWatch {
        self.watch_with(TreeSampler::started_now(root), notify)
    }

    /// [`Monitor::watch_started`] for a process started just now in the cgroup at `cgroup` (see
    /// [`TreeSampler::in_cgroup`]).
    pub fn watch_started_in(
        &self,
        root: i32,
        cgroup: &std::path::Path,
        notify: Recipient<TreeNotice>,
    ) -> TreeWatch {
        self.watch_with(TreeSampler::started_now(root).in_cgroup(cgroup), notify)
    }

    fn watch_with(&self, sampler: TreeSampler, notify: Recipient<TreeNotice>) -> TreeWatch {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let watch = Arc::new(Watch {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            closed: AtomicBool::new(false),
            wants_command: AtomicBool::new(false),
            cell: Mutex::new(Cell {
                sampler,
                latest: None,
                ticked: None,
                command: None,
                idle: 0,
            }),
            notify: notify.downgrade(),
        });
        let mut inbox = lock(&self.shared.inbox);
        inbox.added.push(watch.clone());
        // A waiting thread takes it up at its next tick; only a parked one needs waking (it parks and
        // unparks holding this lock, so the flag is exact here). A burst of starts wakes it once.
        if self.shared.parked.load(Ordering::SeqCst) {
            self.shared.wake.notify_one();
        }
        drop(inbox);
        TreeWatch {
            watch,
            shared: self.shared.clone(),
        }
    }

    /// Whether the thread is parked: nothing watched, no wakeup due (for tests and diagnostics).
    pub fn is_parked(&self) -> bool {
        self.shared.parked.load(Ordering::SeqCst)
    }

    /// Sampling passes (ticks) the thread has made so far.
    pub fn passes(&self) -> u64 {
        self.shared.passes.load(Ordering::SeqCst)
    }

    /// Trees watched, as of the thread's last look at its registrations.
    pub fn watched(&self) -> usize {
        self.shared.watched.load(Ordering::SeqCst)
    }

    /// [`TreeNotice`]s sent so far: a tick that finds nothing new sends none.
    pub fn notices(&self) -> u64 {
        self.shared.notices.load(Ordering::SeqCst)
    }
}

/// A registered tree: holds its latest reading. Dropping it unregisters the tree and closes its files.
#[derive(Debug)]
pub struct TreeWatch {
    watch: Arc<Watch>,
    shared: Arc<Shared>,
}

impl TreeWatch {
    /// This watch's number, as in its [`TreeNotice`]s.
    pub fn id(&self) -> u64 {
        self.watch.id
    }

    /// The latest reading (of a tick or of [`TreeWatch::sample_now`]); `None` when the root could not
    /// be read, or before the first sample.
    pub fn latest(&self) -> Option<Sample> {
        lock(&self.watch.cell).latest
    }

    /// A handle on [`latest`](Self::latest) that does not keep the watch (and its files) once the
    /// watch is gone.
    pub(crate) fn latest_reading(&self) -> LatestReading {
        LatestReading(Arc::downgrade(&self.watch))
    }

    /// Reads the whole tree now ([`TreeSampler::sample`]) and keeps the reading as the latest.
    pub fn sample_now(&self) -> io::Result<Sample> {
        let mut cell = lock(&self.watch.cell);
        let sampled = cell.sampler.sample();
        cell.latest = sampled.as_ref().ok().copied();
        sampled
    }

    /// Asks the monitor to read the root's command line on the next ticks until it is not empty, and to
    /// notify with it ([`TreeWatch::take_command`]).
    pub fn want_command(&self) {
        self.watch.wants_command.store(true, Ordering::SeqCst);
    }

    /// The root's command line, if the monitor has read it since it was wanted.
    pub fn take_command(&self) -> Option<Vec<String>> {
        lock(&self.watch.cell).command.take()
    }
}

/// [`TreeWatch::latest`] for whoever holds a status record: `None` once the watch is gone.
#[derive(Debug, Clone)]
pub(crate) struct LatestReading(std::sync::Weak<Watch>);

impl LatestReading {
    /// The latest reading, while the watch lives.
    pub(crate) fn get(&self) -> Option<Sample> {
        lock(&self.0.upgrade()?.cell).latest
    }
}

impl Drop for TreeWatch {
    fn drop(&mut self) {
        self.watch.closed.store(true, Ordering::SeqCst);
        // Close the tree's files now rather than at the thread's next look.
        lock(&self.watch.cell).sampler.close();
        // Swept at the next tick (the thread parks then if nothing is left): no wakeup per exit.
        lock(&self.shared.inbox).removed = true;
    }
}

impl Watch {
    /// One tick of this tree: keeps the reading, and notifies the actor when it has something to do.
    /// `budget` is the spacing mask the idle trees' shared budget asks for ([`budget_mask`]).
    fn tick(&self, pass: u64, budget: u64) -> Ticked {
        let mut cell = lock(&self.cell);
        if self.closed.load(Ordering::SeqCst) {
            // Dropped since the pass began: its files stay closed.
            return Ticked::default();
        }
        // Idle trees take every other pass, half of them each time; long idle ones every fourth;
        // either, every so many as the budget needs.
        let waiting = self.wants_command.load(Ordering::SeqCst);
        let spacing = match cell.idle {
            n if n >= LONG_IDLE_AFTER => budget.max(3),
            n if n >= IDLE_AFTER => budget.max(1),
            _ => 0,
        };
        let idle = spacing != 0;
        if !waiting && (pass ^ self.id) & spacing != 0 {
            return Ticked {
                notified: false,
                idle,
            };
        }
        let sampled = cell.sampler.tick().ok();
        cell.latest = sampled;
        let state = sampled.map_or(KernelState::Unavailable, |s| s.state);
        let mut notify = cell.ticked.replace(state) != Some(state);
        let quiet = !notify && sampled.is_some_and(|s| s.cpu_percent == 0.0);
        cell.idle = if quiet {
            cell.idle.saturating_add(1)
        } else {
            0
        };
        if sampled.is_some() && self.wants_command.load(Ordering::SeqCst) {
            let command = procfs::read_cmdline(cell.sampler.root());
            if !command.is_empty() {
                self.wants_command.store(false, Ordering::SeqCst);
                cell.command = Some(command);
                notify = true;
            }
        }
        drop(cell);
        if notify {
            if let Some(actor) = self.notify.upgrade() {
                actor.do_send(TreeNotice { watch: self.id });
            }
        }
        Ticked {
            notified: notify,
            idle,
        }
    }
}

/// What one tree's tick did.
#[derive(Debug, Default, Clone, Copy)]
struct Ticked {
    /// The actor was sent a [`TreeNotice`].
    notified: bool,
    /// The tree counted as idle this tick (read or not): it shares the idle budget.
    idle: bool,
}

/// Lowers this thread's scheduling priority (nice 10): a tick of 1,000 trees is background work, and on
/// a machine with few cores it should wait for a restart or a request, not delay them.
fn yield_to_requests() {
    // SAFETY: gettid has no arguments; setpriority on our own thread only lowers its priority.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// The monitor thread: takes up registrations, sleeps until the next tick (or parks while nothing is
/// watched), samples every tree, again.
fn run(shared: &Shared) {
    let interval = shared.interval.max(MIN_TICK);
    let mut watches: Vec<Arc<Watch>> = Vec::new();
    let mut next: Option<Instant> = None;
    // Trees idle at the previous pass: they set this pass's share of the idle budget.
    let mut idle_trees = 0;
    loop {
        let mut inbox = lock(&shared.inbox);
        let due = loop {
            watches.append(&mut inbox.added);
            if std::mem::take(&mut inbox.removed) {
                watches.retain(|w| !w.closed.load(Ordering::SeqCst));
            }
            shared.watched.store(watches.len(), Ordering::SeqCst);
            let now = Instant::now();
            // An interval too long to add to a clock reading never ticks.
            let deadline = if watches.is_empty() {
                None
            } else {
                next.or_else(|| now.checked_add(interval))
            };
            next = deadline;
            match deadline {
                Some(d) if d <= now => break d,
                Some(d) => {
                    inbox = shared
                        .wake
                        .wait_timeout(inbox, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    shared.parked.store(true, Ordering::SeqCst);
                    inbox = shared
                        .wake
                        .wait(inbox)
                        .unwrap_or_else(PoisonError::into_inner);
                    shared.parked.store(false, Ordering::SeqCst);
                }
            }
        };
        drop(inbox);
        let pass = shared.passes.load(Ordering::SeqCst);
        let budget = budget_mask(idle_trees);
        idle_trees = 0;
        for w in &watches {
            let ticked = w.tick(pass, budget);
            idle_trees += usize::from(ticked.idle);
            if ticked.notified {
                shared.notices.fetch_add(1, Ordering::SeqCst);
            }
        }
        shared.passes.fetch_add(1, Ordering::SeqCst);
        // The next tick one interval after this one, or, if sampling overran it, one from now.
        let now = Instant::now();
        next = due
            .checked_add(interval)
            .filter(|&d| d > now)
            .or_else(|| now.checked_add(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice values of this process's monitor threads.
    fn monitor_nice_values() -> Vec<i64> {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                if comm.trim() != "pm-monitor" {
                    return None;
                }
                let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
                // Field 19 of stat, counted after the command name's closing parenthesis.
                stat.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(16)?
                    .parse()
                    .ok()
            })
            .collect()
    }

    #[test]
    fn idle_trees_beyond_the_budget_are_read_less_often() {
        assert_eq!(budget_mask(0), 0);
        assert_eq!(budget_mask(IDLE_READS_PER_TICK), 0);
        assert_eq!(budget_mask(IDLE_READS_PER_TICK + 1), 1);
        assert_eq!(budget_mask(10_000), 15);
        // Each pass reads one tree in `mask + 1` of a run of consecutive ids: within the budget.
        for idle in [3_000usize, 10_000, 50_000] {
            let mask = budget_mask(idle);
            let read = (0..idle as u64).filter(|id| (7 ^ id) & mask == 0).count();
            assert!(
                read <= IDLE_READS_PER_TICK,
                "{idle} idle trees: {read} reads a tick"
            );
        }
    }

    #[test]
    fn the_monitor_thread_yields_to_requests() {
        let _monitor = Monitor::shared(Duration::from_millis(37));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let nice = monitor_nice_values();
            if !nice.is_empty() && nice.iter().all(|&n| n == 10) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "monitor threads' nice values: {nice:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
