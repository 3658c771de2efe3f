//! The tree sampler: one process tree's kernel state, CPU and resident memory, read from /proc tick
//! after tick, cheaply.
//!
//! Cost per tick: one `pread` of each tree member's kept-open `schedstat` (a quarter to a sixth of a
//! `stat` read: the kernel formats three numbers instead of fifty-two). Its runtime and run count move
//! only when the task runs, so a single-threaded member whose `schedstat` has not moved has the same
//! state, CPU time, threads and children as at its last `stat`, and nothing else of it is read. Its
//! `stat` is read (open, read, close) when it is new, when its `schedstat` moved (a `vfork`ing shell runs
//! too), when it has several threads (`schedstat` covers the main thread only), and on every
//! [`REFRESH_TICKS`]th tick (resident memory shrinks by reclaim without the task running); its `children`
//! list when its `stat` was read and shows it did something. A member whose `schedstat` is not kept
//! open, or that has several threads, asks its process CPU clock instead (see `clock_gate`): no file
//! is opened while it stands still. A kernel without usable `schedstat` (see
//! [`schedstat_usable`]) keeps `stat` open instead and reads it every tick, with every `children` list on
//! every [`FALLBACK_REFRESH_TICKS`]th tick. A full [`TreeSampler::sample`] reads every `stat` and
//! `children` list. Nothing else on the host is read.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use pm_protocol::KernelState;

use super::cgroup_cpu::CgroupCpu;
use super::kept::ProcFile;

use crate::process::procfs::{
    boot_ticks, clock_ticks, page_size, parse_schedstat, parse_stat, pread_all, process_cpu_ns,
    read_children, read_schedstat, read_stat_into, unreadable, Schedstat, Stat,
};

/// One reading of a process tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The root's kernel state.
    pub state: KernelState,
    /// CPU over the interval since the previous sample, summed over the tree; 100.0 is one core.
    pub cpu_percent: f64,
    /// Resident memory summed over the tree.
    pub rss_bytes: u64,
    /// Processes in the tree, root included.
    pub processes: usize,
    /// CPU time the tree used since the sampler started (the run's start for
    /// [`TreeSampler::started_now`]), in seconds: the sum of every sample's share, so it never goes
    /// back when a child exits.
    pub cpu_seconds: f64,
}

/// Every this many ticks, [`TreeSampler::tick`] reads every member's `stat` and `children` even when its
/// `schedstat` has not moved. A task that does not run keeps its state, CPU time, threads and children,
/// but its resident memory can still shrink (the kernel reclaims or swaps out its pages, or drops file
/// pages it maps), and that only shows in `stat`. Reclaim moves slowly, so a figure at most 30 ticks old
/// for a process that has not run is close enough, and it adds 1/30 of a `stat` and `children` read per
/// process per tick (BENCHMARKS.md has the cost of a read). The trees' refresh ticks are
/// spread by their root's pid, so that trees started together do not all refresh on the same tick.
/// (`children` too: a `clone(CLONE_PARENT)` gives a process a child without it running.)
pub const REFRESH_TICKS: u32 = 30;

/// The smallest tree whose ticks read its cgroup's `cpu.stat` (in cgroup mode): a quiet tick then
/// reads that one file instead of each member's `schedstat`. For a smaller tree the walk costs no
/// more, and at 1,000 one-process trees reading `cpu.stat` beside the walk doubled the status tick's
/// CPU (BENCHMARKS.md, "Cgroups"); what such a tree's processes that left it use is then not counted,
/// as in group mode.
pub const CGROUP_PAYS_FROM: usize = 3;

/// Without schedstat, every this many ticks [`TreeSampler::tick`] reads every `children` list: a
/// `vfork`ing shell can start a child without moving anything in its `stat`.
pub const FALLBACK_REFRESH_TICKS: u32 = 5;

/// Whether a process's `schedstat` says when it runs, given that of a process known to have run (`None`
/// when the file is missing). A kernel without `CONFIG_SCHED_INFO` has no such file, and one whose
/// scheduler statistics are off writes `0 0 0`: then a tick reads `stat` every time.
pub fn schedstat_usable(probe: Option<&[u8]>) -> bool {
    probe
        .and_then(parse_schedstat)
        .is_some_and(|s| s.runtime_ns != 0 || s.run_count != 0)
}

/// Whether this kernel's `schedstat` can stand in for `stat` on a tick (asked once, of this process).
fn schedstat_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| schedstat_usable(std::fs::read("/proc/self/schedstat").ok().as_deref()))
}

/// One member of a sampled tree, as last read.
#[derive(Debug)]
struct Member {
    pid: i32,
    /// Its `stat` as last read (kept as is while it does not run).
    stat: Stat,
    /// Its `schedstat` (or, without schedstat, its `stat`), kept open while the daemon's descriptors
    /// allow: re-reading an open /proc file costs a fraction of opening it.
    kept: ProcFile,
    /// Which file `kept` is.
    kind: Kept,
    /// Its children at the last read of its `children` list.
    children: Vec<i32>,
    /// Its process CPU clock at the last read, where a tick would otherwise open a file to see
    /// whether it ran (see [`clock_gate`]).
    clock: Option<u64>,
}

/// Which /proc file a member keeps open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// `stat`, read every tick (no usable schedstat).
    Stat,
    /// `schedstat`, with its figures at the last read (`None`: not understood, so read `stat` too).
    Schedstat(Option<Schedstat>),
}

/// What reading one member gave.
struct MemberRead {
    member: Member,
    /// CPU time since the previous sample, in clock ticks.
    cpu_ticks: u64,
}

/// Samples one process tree tick after tick, keeping one /proc file of each member open.
#[derive(Debug)]
pub struct TreeSampler {
    root: i32,
    /// The tree at the previous sample, root first; swapped with `next` on each sample (no allocation
    /// per tick once the tree is stable).
    members: Vec<Member>,
    next: Vec<Member>,
    queue: Vec<i32>,
    prev_at: Option<Instant>,
    /// CPU seconds of every sample so far, summed ([`Sample::cpu_seconds`]).
    cpu_seconds: f64,
    /// Boot time (clock ticks) of the previous sample: a member first seen now that started before it
    /// was missed by a cheap tick, and its CPU time is not all from this interval.
    prev_boot_ticks: u64,
    /// Ticks so far, for the periodic refreshes.
    ticks: u32,
    /// Whether members keep `schedstat` open and skip `stat` while they do not run.
    schedstat: bool,
    /// The tree's cgroup, in cgroup mode: its CPU figure, and the gate of quiet ticks.
    cgroup: Option<CgroupCpu>,
    /// The previous reading, repeated by a tick that finds the cgroup quiet.
    last: Option<Sample>,
}

thread_local! {
    /// The buffer every sampler on this thread reads its files into (one thread, the monitor's,
    /// samples every tree): one buffer a tree would cost each managed process half a kilobyte.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl TreeSampler {
    /// A sampler for the tree rooted at `root`; files are opened on the first sample.
    pub fn new(root: i32) -> Self {
        Self::with_schedstat(root, schedstat_works())
    }

    /// A sampler for a tree whose root was started just now: no baseline sample is needed, since all
    /// of the tree's CPU time is from after this instant, so the first tick already gives a CPU figure
    /// (a start reads nothing from /proc).
    pub fn started_now(root: i32) -> Self {
        let mut sampler = Self::new(root);
        sampler.prev_at = Some(Instant::now());
        sampler
    }

    /// A sampler that reads every member's `stat` on every tick, as on a kernel without usable
    /// `schedstat`: for tests and cost comparisons.
    pub fn without_schedstat(root: i32) -> Self {
        Self::with_schedstat(root, false)
    }

    fn with_schedstat(root: i32, schedstat: bool) -> Self {
        TreeSampler {
            root,
            members: Vec::new(),
            next: Vec::new(),
            queue: Vec::new(),
            prev_at: None,
            cpu_seconds: 0.0,
            prev_boot_ticks: 0,
            ticks: 0,
            schedstat,
            cgroup: None,
            last: None,
        }
    }

    /// The tree's processes are those of the cgroup at `dir` (cgroup mode): from
    /// [`CGROUP_PAYS_FROM`] members on, its CPU comes from the cgroup's `cpu.stat` (see
    /// `cgroup_cpu`), and a tick whose `cpu.stat` has not moved reads nothing else. State, memory and
    /// the process count still come from the walk of the tree.
    pub fn in_cgroup(mut self, dir: &Path) -> Self {
        self.cgroup = Some(CgroupCpu::new(dir));
        self
    }

    /// The root of the sampled tree.
    pub fn root(&self) -> i32 {
        self.root
    }

    /// Reads the whole tree now, every member's `stat` and `children` list included. `Err` when the root
    /// is gone or its stat cannot be read.
    pub fn sample(&mut self) -> io::Result<Sample> {
        self.read(Refresh {
            stat: true,
            children: true,
        })
    }

    /// The periodic status tick: like [`TreeSampler::sample`], but reads a member's `stat` and
    /// `children` list only when it is due (see the module docs).
    pub fn tick(&mut self) -> io::Result<Sample> {
        self.ticks = self.ticks.wrapping_add(1);
        let phase = self.ticks.wrapping_add(self.root.unsigned_abs());
        self.read(Refresh {
            stat: phase.is_multiple_of(REFRESH_TICKS),
            children: phase.is_multiple_of(FALLBACK_REFRESH_TICKS),
        })
    }

    fn read(&mut self, refresh: Refresh) -> io::Result<Sample> {
        READ_BUF.with_borrow_mut(|buf| self.read_with(refresh, buf))
    }

    fn read_with(&mut self, refresh: Refresh, buf: &mut Vec<u8>) -> io::Result<Sample> {
        let now = Instant::now();
        if let Some(quiet) = self.quiet_cgroup(refresh, now, buf) {
            return Ok(quiet);
        }
        let boot_ticks = boot_ticks();
        let mut prev = std::mem::take(&mut self.members);
        let mut current = std::mem::take(&mut self.next);
        current.clear();
        self.queue.clear();
        self.queue.push(self.root);
        let mut rss_pages = 0;
        let mut delta_ticks: u64 = 0;
        let mut root_state = None;
        while let Some(pid) = self.queue.pop() {
            let is_root = pid == self.root;
            let read = match prev.iter().position(|m| m.pid == pid) {
                Some(i) => reread(prev.swap_remove(i), refresh, buf),
                None => self.first_read(pid, buf),
            };
            // A kept file of a process that has exited reads ESRCH, even if its pid was reused.
            let MemberRead { member, cpu_ticks } = match read {
                Ok(r) => r,
                Err(e) if is_root => return self.fail(prev, current, e),
                Err(_) => continue, // exited between the two reads
            };
            if is_root {
                root_state = Some(member.stat.state);
            }
            // Saturating: the monitor thread must not panic on a figure it did not expect.
            rss_pages = member.stat.rss_pages.saturating_add(rss_pages);
            delta_ticks = cpu_ticks.saturating_add(delta_ticks);
            self.queue.extend_from_slice(&member.children);
            // Most trees are one process: grow from one place, not the four a first push takes.
            if current.len() == current.capacity() {
                current.reserve_exact(current.len().max(1));
            }
            current.push(member);
            if current.len() > 100_000 {
                break; // a fork bomb: stop counting rather than spin
            }
        }
        let Some(state) = root_state else {
            return self.fail(prev, current, io::Error::other("no stat"));
        };
        // The cgroup's figure where it has one: the tree's own misses what left it or exited.
        let gated = current.len() >= CGROUP_PAYS_FROM;
        let cgroup_usec = match self.cgroup.as_mut() {
            Some(c) if gated => c.used_usec(buf),
            Some(c) => {
                c.forget();
                None
            }
            None => None,
        };
        let used = match cgroup_usec {
            Some(usec) => usec as f64 / 1e6,
            None => delta_ticks as f64 / clock_ticks() as f64,
        };
        let cpu_percent = match self.prev_at {
            Some(then) => {
                let secs = now.duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    used / secs * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        let processes = current.len();
        if self.prev_at.is_some() {
            self.cpu_seconds += used;
        }
        prev.clear(); // closes the files of members that left the tree
        self.members = current;
        self.next = prev;
        self.prev_at = Some(now);
        self.prev_boot_ticks = boot_ticks;
        let sample = Sample {
            state: KernelState::from_stat_letter(state),
            cpu_percent,
            rss_bytes: rss_pages.saturating_mul(page_size() as u64),
            processes,
            cpu_seconds: self.cpu_seconds,
        };
        self.last = Some(sample);
        Ok(sample)
    }

    /// Whether the cgroup's `cpu.stat` stands in for the tree: in cgroup mode, for a tree of
    /// [`CGROUP_PAYS_FROM`] members or more at the last walk.
    fn gated(&self) -> bool {
        self.cgroup.is_some() && self.members.len() >= CGROUP_PAYS_FROM
    }

    /// In cgroup mode, a tick (not a refresh) whose cgroup used no CPU since the previous reading:
    /// that reading again with no CPU, and nothing else read.
    fn quiet_cgroup(
        &mut self,
        refresh: Refresh,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<Sample> {
        let last = self.last.filter(|_| !refresh.stat && self.gated())?;
        if !self.cgroup.as_mut()?.quiet(buf) {
            return None;
        }
        self.prev_at = Some(now);
        self.prev_boot_ticks = boot_ticks();
        let quiet = Sample {
            cpu_percent: 0.0,
            ..last
        };
        self.last = Some(quiet);
        Some(quiet)
    }

    /// A member new to the tree: its `schedstat` is opened and kept (its `stat` read once), or, without
    /// schedstat, its `stat` is kept.
    fn first_read(&mut self, pid: i32, buf: &mut Vec<u8>) -> io::Result<MemberRead> {
        let sched_file = if self.schedstat {
            ProcFile::open(pid, "schedstat").ok()
        } else {
            None
        };
        // Its process CPU clock, for the ticks that ask it (see `clock_gate`).
        let mut clock = None;
        let (kept, kind, stat) = match sched_file {
            // schedstat and the clock before stat: if it runs in between, the next tick sees it moved.
            Some(mut f) => {
                let sched = f.read(read_schedstat).ok().flatten();
                clock = process_cpu_ns(pid);
                (f, Kept::Schedstat(sched), read_stat_into(pid, buf)?)
            }
            None => {
                let mut f = ProcFile::open(pid, "stat")?;
                f.read(|f| pread_all(f, buf))?;
                let stat = parse_stat(buf).ok_or_else(|| unreadable(pid))?;
                (f, Kept::Stat, stat)
            }
        };
        // All its work is from this interval, unless it started before the previous sample and a cheap
        // tick did not see it then.
        let cpu_ticks = if self.prev_at.is_some() && stat.start_time < self.prev_boot_ticks {
            0
        } else {
            stat.cpu_ticks
        };
        let mut children = Vec::new();
        read_children(pid, stat.num_threads, buf, &mut children);
        Ok(MemberRead {
            member: Member {
                pid,
                clock,
                stat,
                kept,
                kind,
                children,
            },
            cpu_ticks,
        })
    }

    /// Forgets the tree and closes its files; the next sample opens them again.
    pub fn close(&mut self) {
        self.members = Vec::new();
        self.next = Vec::new();
    }

    /// The root cannot be read: forget the tree (its files are closed) and answer `e`.
    fn fail(
        &mut self,
        prev: Vec<Member>,
        current: Vec<Member>,
        e: io::Error,
    ) -> io::Result<Sample> {
        drop((prev, current));
        self.close();
        self.last = None;
        Err(e)
    }
}

/// Which reads a sample forces on members that did nothing since the previous one.
#[derive(Debug, Clone, Copy)]
struct Refresh {
    /// Read `stat` (and `children`) of every member, moved or not.
    stat: bool,
    /// Read `children` of members whose kept file is `stat`.
    children: bool,
}

/// A member known from the previous sample. With a kept `schedstat`, a single-threaded member whose
/// runtime and run count have not moved has not run: its `stat` figures and children are as they were,
/// and neither file is read. Otherwise its `stat` is read, and its `children` when it did something.
fn reread(mut m: Member, refresh: Refresh, buf: &mut Vec<u8>) -> io::Result<MemberRead> {
    let (stat, moved) = match m.kind {
        Kept::Schedstat(_) if clock_gate(&m.kept, m.stat.num_threads) => {
            // Read before anything else: if it runs in between, the next tick sees the clock moved.
            let clock = process_cpu_ns(m.pid);
            if !refresh.stat && clock.is_some() && clock == m.clock {
                return Ok(MemberRead {
                    member: m,
                    cpu_ticks: 0,
                });
            }
            m.clock = clock;
            // Its `schedstat` is not read while the clock stands in: a kept one would hold a place
            // of the kept files' budget for nothing.
            m.kept.release();
            (same_stat(&m, buf)?, true)
        }
        Kept::Schedstat(last) => {
            let sched = m.kept.read(read_schedstat)?;
            // An unparsable schedstat counts as moved (and stays so): the member is read in full.
            let moved = sched.is_none() || sched != last;
            m.kind = Kept::Schedstat(sched);
            // schedstat of /proc/<pid> is the main thread's only: other threads run unseen.
            if !(refresh.stat || moved || m.stat.num_threads != 1) {
                return Ok(MemberRead {
                    member: m,
                    cpu_ticks: 0,
                });
            }
            (same_stat(&m, buf)?, moved || refresh.stat)
        }
        Kept::Stat => {
            m.kept.read(|f| pread_all(f, buf))?;
            let stat = parse_stat(buf).ok_or_else(|| unreadable(m.pid))?;
            (stat, refresh.stat || refresh.children)
        }
    };
    let old = m.stat;
    let did_something = moved
        || old.activity != stat.activity
        || old.cpu_ticks != stat.cpu_ticks
        || old.num_threads != stat.num_threads;
    if did_something {
        m.children.clear();
        read_children(m.pid, stat.num_threads, buf, &mut m.children);
    }
    m.stat = stat;
    Ok(MemberRead {
        member: m,
        cpu_ticks: stat.cpu_ticks.saturating_sub(old.cpu_ticks),
    })
}

/// The member's `stat` read now, if it is still the same process: ESRCH when it is gone and its pid
/// reused between two reads (another start time).
fn same_stat(m: &Member, buf: &mut Vec<u8>) -> io::Result<Stat> {
    let stat = read_stat_into(m.pid, buf)?;
    if stat.start_time != m.stat.start_time {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(stat)
}

/// Whether a member's tick asks its process CPU clock whether it ran, rather than its `schedstat`:
/// where that file is not kept open (the daemon's descriptors are short: at 10,000 processes on a
/// limit of 20,000, half of them) a read would open it, walking its /proc path, and where it has
/// several threads `schedstat` covers the main thread only and `stat` would be opened. The clock is
/// one system call for the whole process; one that stood still since the last read means the member
/// did not run. A clock that moved leads to the member's `stat` (and its children when it did
/// something), as a moved `schedstat` does.
fn clock_gate(kept: &ProcFile, threads: u64) -> bool {
    !kept.is_kept() || threads != 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::procfs::read_stat;

    // The samplers here read a child of their own, never this test process: its tree holds the
    // children of every test running beside them, whose kept files the tests below count.
    #[test]
    fn samples_a_process() {
        let child = Spawned::sleeping();
        let mut s = TreeSampler::new(child.pid());
        let a = s.sample().unwrap();
        assert!(a.rss_bytes > 0);
        assert!(s.sample().is_ok());
    }

    #[test]
    fn stat_every_tick_without_usable_schedstat() {
        assert!(schedstat_usable(Some(b"708535 0 2\n")));
        assert!(
            !schedstat_usable(Some(b"0 0 0\n")),
            "scheduler statistics off"
        );
        assert!(!schedstat_usable(None), "no CONFIG_SCHED_INFO");
        assert!(!schedstat_usable(Some(b"garbage")));
        let child = Spawned::sleeping();
        let mut fallback = TreeSampler::without_schedstat(child.pid());
        assert!(!fallback.schedstat);
        assert!(fallback.sample().unwrap().rss_bytes > 0);
        assert!(fallback.tick().unwrap().rss_bytes > 0);
    }

    /// A child in its own process group, killed with its group when dropped.
    struct Spawned(std::process::Child);

    impl Spawned {
        fn new(program: &str, args: &[&str]) -> Spawned {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new(program)
                .args(args)
                .process_group(0)
                .spawn()
                .unwrap();
            Spawned(child)
        }

        /// `sleep 60`, once it has exec'd and sleeps.
        fn sleeping() -> Spawned {
            let child = Spawned::new("sleep", &["60"]);
            let pid = child.pid();
            wait_until("sleep to have exec'd and sleep", || {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                comm == "sleep\n" && read_stat(pid).is_ok_and(|s| s.state == 'S')
            });
            child
        }

        fn pid(&self) -> i32 {
            self.0.id() as i32
        }
    }

    impl Drop for Spawned {
        fn drop(&mut self) {
            // SAFETY: signals the group this test started.
            unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }

    /// This process's open files that are /proc files of `pid`.
    fn kept_files_of(pid: i32) -> Vec<String> {
        let prefix = format!("/proc/{pid}/");
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.starts_with(&prefix))
            .collect()
    }

    #[test]
    fn a_sleeping_process_keeps_one_file_open_in_either_mode() {
        let child = Spawned::sleeping();
        let pid = child.pid();
        for (mut sampler, file) in [
            (
                TreeSampler::new(pid),
                if schedstat_works() {
                    "schedstat"
                } else {
                    "stat"
                },
            ),
            (TreeSampler::without_schedstat(pid), "stat"),
        ] {
            sampler.sample().unwrap();
            for _ in 0..(REFRESH_TICKS + 2) {
                let s = sampler.tick().unwrap();
                assert_eq!(s.processes, 1);
                assert!(s.rss_bytes > 0);
            }
            assert_eq!(kept_files_of(pid), vec![format!("/proc/{pid}/{file}")]);
            drop(sampler);
            assert!(kept_files_of(pid).is_empty());
        }
    }

    #[test]
    fn a_running_process_shows_cpu_on_a_tick() {
        let child = Spawned::new("sh", &["-c", "while :; do :; done"]);
        let mut sampler = TreeSampler::new(child.pid());
        sampler.sample().unwrap();
        let end = Instant::now() + std::time::Duration::from_secs(20);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(50));
            if sampler.tick().unwrap().cpu_percent > 0.0 {
                break;
            }
            assert!(Instant::now() < end, "no CPU seen for a busy loop");
        }
    }

    /// A member whose file is not kept is read again only when its process CPU clock moved (or on a
    /// refresh): its last `stat`, marked here, survives a tick of a sleeping process and is replaced
    /// on a refresh and once a busy process runs.
    #[test]
    fn without_a_kept_file_a_tick_reads_only_when_the_cpu_clock_moved() {
        const MARK: u64 = 123_456_789;
        let quiet = Refresh {
            stat: false,
            children: false,
        };
        let refresh = Refresh {
            stat: true,
            children: true,
        };
        let unkept = |pid: i32| {
            let mut sampler = TreeSampler::new(pid);
            sampler.sample().unwrap();
            let mut m = sampler.members.pop().unwrap();
            m.kept = ProcFile::unkept(pid, "schedstat");
            m.clock = process_cpu_ns(pid);
            assert!(m.clock.is_some(), "the clock of a live child reads");
            m
        };
        let mut buf = Vec::new();

        let sleeper = Spawned::sleeping();
        let mut m = unkept(sleeper.pid());
        assert!(clock_gate(&m.kept, m.stat.num_threads));
        m.stat.rss_pages = MARK;
        let read = reread(m, quiet, &mut buf).unwrap();
        assert_eq!(read.cpu_ticks, 0);
        assert_eq!(
            read.member.stat.rss_pages, MARK,
            "a sleeping process was read"
        );
        let read = reread(read.member, refresh, &mut buf).unwrap();
        assert_ne!(read.member.stat.rss_pages, MARK, "a refresh did not read");

        let busy = Spawned::new("sh", &["-c", "while :; do :; done"]);
        let mut m = unkept(busy.pid());
        m.stat.rss_pages = MARK;
        let before = m.clock;
        wait_until("the busy loop to run", || {
            process_cpu_ns(busy.pid()) != before
        });
        let read = reread(m, quiet, &mut buf).unwrap();
        assert_ne!(
            read.member.stat.rss_pages, MARK,
            "a running process was not read"
        );
        assert_ne!(read.member.clock, before);

        let gone = sleeper.pid();
        drop(sleeper);
        assert_eq!(process_cpu_ns(gone), None, "a reaped process has no clock");
    }

    /// Polls `cond` every 10 ms for up to 20 s.
    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + std::time::Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn a_fork_and_a_stop_show_on_the_next_tick() {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        // The shell waits on its stdin, then forks a sleep: between ticks, nothing else moves.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; sleep 60; true"])
            .stdin(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let child = Spawned(child);
        let pid = child.pid();
        let mut sampler = TreeSampler::new(pid);
        wait_until("the shell reading", || {
            read_stat(pid).is_ok_and(|s| s.state == 'S')
        });
        sampler.sample().unwrap();
        for _ in 0..3 {
            assert_eq!(sampler.tick().unwrap().processes, 1);
        }
        stdin.write_all(b"go\n").unwrap();
        wait_until("the sleep", || {
            let mut kids = Vec::new();
            read_children(pid, 1, &mut Vec::new(), &mut kids);
            kids.iter()
                .any(|&k| read_stat(k).is_ok_and(|s| s.state == 'S'))
        });
        // One tick, not a periodic refresh (which would hide a broken shortcut but for 1 in 30).
        assert_eq!(sampler.tick().unwrap().processes, 2);
        // SAFETY: signals the shell this test started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        wait_until("the shell stopped", || {
            read_stat(pid).is_ok_and(|s| s.state == 'T')
        });
        assert_eq!(sampler.tick().unwrap().state, KernelState::Stopped);
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        wait_until("the shell waiting again", || {
            read_stat(pid).is_ok_and(|s| s.state == 'S')
        });
        assert_eq!(sampler.tick().unwrap().state, KernelState::Sleeping);
    }
}
