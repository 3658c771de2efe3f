//! Reading and parsing /proc files: a process's `stat`, `schedstat`, `cmdline` and `children`, and the
//! clock and page units their figures are given in.
//!
//! The per-tick sampling of a whole tree, which keeps some of these files open, is the monitor's
//! ([`super::monitor::TreeSampler`]); this module reads each file once, or re-reads one it is given.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

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
        cpu_ticks: utime.saturating_add(stime),
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
    read_stat_into(pid, &mut Vec::new())
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
    let secs = btime as f64 + start_ticks as f64 / clock_ticks() as f64;
    chrono::DateTime::from_timestamp(secs as i64, (secs.fract() * 1e9) as u32)
        .map(|t| t.with_timezone(&chrono::Local))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, USER_HZ): the unit of stat's times.
pub(crate) fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
    })
}

/// The page size (`sysconf(_SC_PAGESIZE)`): the unit of stat's resident set size, and of mappings.
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
    })
}

/// The fields of `/proc/<pid>/schedstat` that move only when the task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedstat {
    /// Time spent on a CPU, in ns (the kernel's `sum_exec_runtime`).
    pub runtime_ns: u64,
    /// Times the task was scheduled on a CPU.
    pub run_count: u64,
}

/// Parses a `schedstat` line: runtime in ns, time waiting on a run queue in ns, times scheduled.
pub fn parse_schedstat(buf: &[u8]) -> Option<Schedstat> {
    let text = std::str::from_utf8(buf).ok()?;
    let mut f = text.split_ascii_whitespace();
    let runtime_ns = f.next()?.parse().ok()?;
    let _run_delay: u64 = f.next()?.parse().ok()?;
    let run_count = f.next()?.parse().ok()?;
    Some(Schedstat {
        runtime_ns,
        run_count,
    })
}

/// Reads a kept `schedstat` (`Ok(None)`: readable but not understood). Three numbers fit on the stack.
pub(crate) fn read_schedstat(f: &File) -> io::Result<Option<Schedstat>> {
    let mut buf = [0u8; 128];
    let n = f.read_at(&mut buf, 0)?;
    Ok(parse_schedstat(&buf[..n]))
}

/// Reads `/proc/<pid>/stat` through `buf` (open, read, close).
pub(crate) fn read_stat_into(pid: i32, buf: &mut Vec<u8>) -> io::Result<Stat> {
    let f = File::open(format!("/proc/{pid}/stat"))?;
    pread_all(&f, buf)?;
    parse_stat(buf).ok_or_else(|| unreadable(pid))
}

pub(crate) fn unreadable(pid: i32) -> io::Error {
    io::Error::other(format!("unreadable /proc/{pid}/stat"))
}

/// The children of `pid`: its main thread's list, or every thread's when it has several (a
/// multi-threaded process forks from any of its threads).
pub(crate) fn read_children(pid: i32, num_threads: u64, buf: &mut Vec<u8>, out: &mut Vec<i32>) {
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

/// The CPU time of process `pid`, all its threads, in nanoseconds: its process CPU clock (the kernel's
/// `MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)`), one system call with no /proc path to walk, which
/// the kernel answers for any process. `None` when there is no such process.
pub(crate) fn process_cpu_ns(pid: i32) -> Option<u64> {
    let clock: libc::clockid_t = ((!pid) << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec it is given; a clock of no process answers EINVAL.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    (r == 0).then(|| ts.tv_sec as u64 * NANOS_PER_SEC + ts.tv_nsec as u64)
}

/// CLOCK_BOOTTIME in clock ticks, the clock of field 22 of stat, rounded down as the kernel rounds a
/// start time.
pub(crate) fn boot_ticks() -> u64 {
    // SAFETY: a zeroed timespec is a valid out-parameter for clock_gettime.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: clock_gettime fills the struct it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    let nanos = ts.tv_sec as u128 * NANOS_PER_SEC as u128 + ts.tv_nsec as u128;
    (nanos * clock_ticks() as u128 / NANOS_PER_SEC as u128) as u64
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The start time of a process cloned between two readings of [`boot_ticks`]. The kernel stamps a
/// clone with CLOCK_BOOTTIME and shows it rounded down to a tick (`nsec_to_clock_t`), as
/// `boot_ticks` rounds; so when both readings fall in one tick, that tick is the start time. Only
/// where a tick is a whole number of nanoseconds (USER_HZ is 100 on Linux): otherwise the kernel's
/// rounding is not a plain division.
pub(crate) fn clone_ticks(before: u64, after: u64) -> Option<u64> {
    (before == after && NANOS_PER_SEC.is_multiple_of(clock_ticks())).then_some(before)
}

/// Reads a whole /proc file from offset 0 into `buf` (/proc regenerates it on each read at 0).
pub(crate) fn pread_all(f: &File, buf: &mut Vec<u8>) -> io::Result<()> {
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

/// The children of `pid`, from every one of its threads' `children` lists; `None` where the kernel
/// has no such file (built without CONFIG_PROC_CHILDREN) or `pid` is gone.
pub fn children_of(pid: i32) -> Option<Vec<i32>> {
    if !std::path::Path::new(&format!("/proc/{pid}/task/{pid}/children")).exists() {
        return None;
    }
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    children_of_all_tasks(pid, &mut buf, &mut out);
    Some(out)
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
    fn parses_schedstat() {
        let s = parse_schedstat(b"708535 12 2\n").unwrap();
        assert_eq!(s.runtime_ns, 708535);
        assert_eq!(s.run_count, 2);
        assert_eq!(parse_schedstat(b"708535 12"), None);
        assert_eq!(parse_schedstat(b""), None);
        assert_eq!(parse_schedstat(b"a b c"), None);
    }
}
