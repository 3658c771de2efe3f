//! Reading /proc for one process tree: kernel state, CPU and resident memory, cheaply.
//!
//! Cost per tick: one `pread` of each tree member's kept-open `stat` file. A member's `children` list is
//! read (open, read, close) only when it is new to the tree, when its `stat` shows it did something since
//! the previous sample (CPU time, page faults, reaped children, threads), and on every
//! [`REFRESH_TICKS`]th tick (a `vfork`ing shell can start a child without moving any of those). A full
//! [`TreeSampler::sample`] reads every list. Nothing else on the host is read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::time::Instant;

use pm_protocol::KernelState;

/// The fields of `/proc/<pid>/stat` the supervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The kernel's state letter (`R`, `S`, `D`, `T`, `t`, `Z`, `X`, `I`).
    pub state: char,
    /// The parent's pid.
    pub ppid: i32,
    /// The process group (field 5).
    pub pgrp: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Threads in the process.
    pub num_threads: u64,
    /// Field 22: the start time after boot, in clock ticks (identifies a process beyond its pid).
    pub start_time: u64,
    /// Resident set size, in pages.
    pub rss_pages: u64,
    /// Minor + major page faults and the CPU ticks of reaped children: they move whenever the process
    /// does something (a fork faults on its copied pages; a reaped child adds its time).
    pub activity: u64,
}

/// Every process on the host with its stat. It reads all of /proc: for tests and diagnostics, never for
/// a tick (which reads only its own tree).
pub fn scan_all() -> impl Iterator<Item = (i32, Stat)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid).ok()?)))
}

/// Parses a `stat` line; the command name may hold spaces and parentheses, so fields start after the
/// last `)`.
pub fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let close = buf.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(buf.get(close + 2..)?).ok()?;
    let mut f = rest.split_ascii_whitespace();
    // Index i of `f` is field i + 3 of proc(5).
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    let mut f = f.skip(4); // fields 6..=9
    let mut num = || -> Option<u64> { f.next()?.parse().ok() };
    let minflt = num()?;
    let _cminflt = num()?;
    let majflt = num()?;
    let _cmajflt = num()?;
    let utime = num()?;
    let stime = num()?;
    let cutime = num()?;
    let cstime = num()?;
    let mut f = f.skip(2); // fields 18..=19
    let num_threads = f.next()?.parse().ok()?;
    let mut f = f.skip(1); // field 21
    let start_time = f.next()?.parse().ok()?;
    let mut f = f.skip(1); // field 23
    let rss_pages = f.next()?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        cpu_ticks: utime + stime,
        num_threads,
        start_time,
        rss_pages,
        activity: minflt
            .wrapping_add(majflt)
            .wrapping_add(cutime)
            .wrapping_add(cstime),
    })
}

/// Reads `/proc/<pid>/stat` once.
pub fn read_stat(pid: i32) -> io::Result<Stat> {
    let buf = std::fs::read(format!("/proc/{pid}/stat"))?;
    parse_stat(&buf).ok_or_else(|| io::Error::other(format!("unreadable /proc/{pid}/stat")))
}

/// The command line of `pid`, split at NULs (empty for kernel threads or when unreadable).
pub fn read_cmdline(pid: i32) -> Vec<String> {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(buf) => buf
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The wall-clock time of a start time given in clock ticks after boot (field 22 of `stat`).
pub fn start_time_of(start_ticks: u64) -> Option<chrono::DateTime<chrono::Local>> {
    // The boot time never changes while we run: read /proc/stat once, not once per adopted process.
    static BTIME: OnceLock<Option<i64>> = OnceLock::new();
    let btime = (*BTIME.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }))?;
    let secs = btime as f64 + start_ticks as f64 / clock_ticks();
    chrono::DateTime::from_timestamp(secs as i64, (secs.fract() * 1e9) as u32)
        .map(|t| t.with_timezone(&chrono::Local))
}

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            t as f64
        } else {
            100.0
        }
    })
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 {
            p as u64
        } else {
            4096
        }
    })
}

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
}

/// Every this many ticks, [`TreeSampler::tick`] reads every `children` list of the tree.
pub const REFRESH_TICKS: u32 = 5;

/// One member of a sampled tree, as last read.
#[derive(Debug)]
struct Member {
    pid: i32,
    start_time: u64,
    cpu_ticks: u64,
    activity: u64,
    num_threads: u64,
    /// Its `stat`, kept open: re-reading an open /proc file costs a fraction of opening it.
    stat: File,
    /// Its children at the last read of its `children` list.
    children: Vec<i32>,
}

/// Samples one process tree tick after tick, keeping each member's `stat` file open.
#[derive(Debug)]
pub struct TreeSampler {
    root: i32,
    /// The tree at the previous sample, root first; swapped with `next` on each sample (no allocation
    /// per tick once the tree is stable).
    members: Vec<Member>,
    next: Vec<Member>,
    queue: Vec<i32>,
    prev_at: Option<Instant>,
    /// Boot time (clock ticks) of the previous sample: a member first seen now that started before it
    /// was missed by a cheap tick, and its CPU time is not all from this interval.
    prev_boot_ticks: u64,
    ticks_to_refresh: u32,
    buf: Vec<u8>,
}

impl TreeSampler {
    /// A sampler for the tree rooted at `root`; files are opened on the first sample.
    pub fn new(root: i32) -> Self {
        TreeSampler {
            root,
            members: Vec::new(),
            next: Vec::new(),
            queue: Vec::new(),
            prev_at: None,
            prev_boot_ticks: 0,
            ticks_to_refresh: 0,
            buf: Vec::with_capacity(512),
        }
    }

    /// Reads the whole tree now, every `children` list included. `Err` when the root is gone or its
    /// stat cannot be read.
    pub fn sample(&mut self) -> io::Result<Sample> {
        self.ticks_to_refresh = REFRESH_TICKS;
        self.read(true)
    }

    /// The periodic status tick: like [`TreeSampler::sample`], but re-reads a member's `children` list
    /// only when it is due (see the module docs).
    pub fn tick(&mut self) -> io::Result<Sample> {
        let full = self.ticks_to_refresh == 0;
        self.ticks_to_refresh = match self.ticks_to_refresh {
            0 => REFRESH_TICKS - 1,
            n => n - 1,
        };
        self.read(full)
    }

    fn read(&mut self, full: bool) -> io::Result<Sample> {
        let now = Instant::now();
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
            let known = prev.iter().position(|m| m.pid == pid);
            let (stat_file, old) = match known {
                Some(i) => {
                    let m = prev.swap_remove(i);
                    (None, Some(m))
                }
                None => match File::open(format!("/proc/{pid}/stat")) {
                    Ok(f) => (Some(f), None),
                    Err(e) if is_root => return self.fail(prev, current, e),
                    Err(_) => continue, // exited between the two reads
                },
            };
            let file = match (&stat_file, &old) {
                (Some(f), _) => f,
                (None, Some(m)) => &m.stat,
                (None, None) => continue,
            };
            // A kept file of a process that has exited reads ESRCH, even if its pid was reused.
            let st = match pread_all(file, &mut self.buf).and_then(|_| {
                parse_stat(&self.buf).ok_or_else(|| io::Error::other("unreadable stat"))
            }) {
                Ok(st) => st,
                Err(e) if is_root => return self.fail(prev, current, e),
                Err(_) => continue,
            };
            // The same process only if its start time matches (a pid may be reused by a new file).
            let old = old.filter(|m| m.start_time == st.start_time);
            if is_root {
                root_state = Some(st.state);
            }
            rss_pages += st.rss_pages;
            delta_ticks += match &old {
                Some(m) => st.cpu_ticks.saturating_sub(m.cpu_ticks),
                // New to the tree: all its work is from this interval, unless it started before the
                // previous sample and a cheap tick did not see it then.
                None if self.prev_at.is_some() && st.start_time < self.prev_boot_ticks => 0,
                None => st.cpu_ticks,
            };
            let reread = full
                || match &old {
                    Some(m) => {
                        m.activity != st.activity
                            || m.cpu_ticks != st.cpu_ticks
                            || m.num_threads != st.num_threads
                    }
                    None => true,
                };
            let (stat, mut children) = match (stat_file, old) {
                (Some(f), _) => (f, Vec::new()),
                (None, Some(m)) => (m.stat, m.children),
                (None, None) => continue,
            };
            if reread {
                children.clear();
                read_children(pid, st.num_threads, &mut self.buf, &mut children);
            }
            self.queue.extend_from_slice(&children);
            current.push(Member {
                pid,
                start_time: st.start_time,
                cpu_ticks: st.cpu_ticks,
                activity: st.activity,
                num_threads: st.num_threads,
                stat,
                children,
            });
            if current.len() > 100_000 {
                break; // a fork bomb: stop counting rather than spin
            }
        }
        let Some(state) = root_state else {
            return self.fail(prev, current, io::Error::other("no stat"));
        };
        let cpu_percent = match self.prev_at {
            Some(then) => {
                let secs = now.duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    delta_ticks as f64 / clock_ticks() / secs * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        let processes = current.len();
        prev.clear(); // closes the files of members that left the tree
        self.members = current;
        self.next = prev;
        self.prev_at = Some(now);
        self.prev_boot_ticks = boot_ticks;
        Ok(Sample {
            state: KernelState::from_stat_letter(state),
            cpu_percent,
            rss_bytes: rss_pages * page_size(),
            processes,
        })
    }

    /// The root cannot be read: forget the tree (its files are closed) and answer `e`.
    fn fail(
        &mut self,
        prev: Vec<Member>,
        current: Vec<Member>,
        e: io::Error,
    ) -> io::Result<Sample> {
        drop((prev, current));
        self.members = Vec::new();
        self.next = Vec::new();
        Err(e)
    }
}

/// The children of `pid`: its main thread's list, or every thread's when it has several (a
/// multi-threaded process forks from any of its threads).
fn read_children(pid: i32, num_threads: u64, buf: &mut Vec<u8>, out: &mut Vec<i32>) {
    if num_threads <= 1 {
        if let Ok(f) = File::open(format!("/proc/{pid}/task/{pid}/children")) {
            if pread_all(&f, buf).is_ok() {
                push_pids(buf, out);
            }
        }
    } else {
        children_of_all_tasks(pid, buf, out);
    }
}

/// CLOCK_BOOTTIME in clock ticks, the clock of field 22 of stat.
fn boot_ticks() -> u64 {
    // SAFETY: a zeroed timespec is a valid out-parameter for clock_gettime.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime fills the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let secs = ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
    (secs * clock_ticks()) as u64
}

/// Reads a whole /proc file from offset 0 into `buf` (/proc regenerates it on each read at 0).
fn pread_all(f: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 1024];
    loop {
        let n = f.read_at(&mut chunk, buf.len() as u64)?;
        buf.extend_from_slice(&chunk[..n]);
        if n < chunk.len() {
            return Ok(());
        }
    }
}

fn push_pids(buf: &[u8], out: &mut Vec<i32>) {
    if let Ok(text) = std::str::from_utf8(buf) {
        out.extend(
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
}

/// Children of every thread of `pid` (a multi-threaded process forks from any of its threads).
fn children_of_all_tasks(pid: i32, buf: &mut Vec<u8>, out: &mut Vec<i32>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for entry in dir.flatten() {
        let mut path = entry.path();
        path.push("children");
        if let Ok(f) = File::open(&path) {
            if pread_all(&f, buf).is_ok() {
                push_pids(buf, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_a_tricky_name() {
        let line = b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194304 100 0 0 0 7 5 0 0 20 0 3 0 98765 1000000 250 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.cpu_ticks, 12);
        assert_eq!(st.num_threads, 3);
        assert_eq!(st.start_time, 98765);
        assert_eq!(st.rss_pages, 250);
    }

    #[test]
    fn samples_its_own_process() {
        let mut s = TreeSampler::new(std::process::id() as i32);
        let a = s.sample().unwrap();
        assert!(a.rss_bytes > 0);
        assert!(s.sample().is_ok());
    }
}
