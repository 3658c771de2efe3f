//! Reading /proc for one process tree: kernel state, CPU and resident memory, cheaply.
//!
//! Cost per tick: the root's `stat` and `children` files stay open and are re-read with `pread` (one
//! syscall each); each descendant costs an open/read/close of its `stat` and `children`. Nothing else on
//! the host is read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::OnceLock;
use std::time::Instant;

use pm_protocol::KernelState;

/// The fields of `/proc/<pid>/stat` the supervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    pub num_threads: u64,
    /// Field 22: the start time after boot, in clock ticks (identifies a process beyond its pid).
    pub start_time: u64,
    pub rss_pages: u64,
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
    let mut f = f.skip(9); // fields 5..=13
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    let mut f = f.skip(4); // fields 16..=19
    let num_threads = f.next()?.parse().ok()?;
    let mut f = f.skip(1); // field 21
    let start_time = f.next()?.parse().ok()?;
    let mut f = f.skip(1); // field 23
    let rss_pages = f.next()?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        cpu_ticks: utime + stime,
        num_threads,
        start_time,
        rss_pages,
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

/// Samples one process tree tick after tick, keeping the root's files open.
#[derive(Debug)]
pub struct TreeSampler {
    root: i32,
    stat: Option<File>,
    children: Option<File>,
    /// (pid, start time, cpu ticks) of every process of the tree at the previous sample.
    prev: Vec<(i32, u64, u64)>,
    prev_at: Option<Instant>,
    buf: Vec<u8>,
    /// Kept-open `stat` and `children` files of the descendants seen at the last sample: opening a
    /// /proc path costs several times more than re-reading an open one.
    descendants: Vec<(i32, File, Option<File>)>,
}

impl TreeSampler {
    /// A sampler for the tree rooted at `root`; files are opened on the first sample.
    pub fn new(root: i32) -> Self {
        TreeSampler {
            root,
            stat: None,
            children: None,
            prev: Vec::new(),
            prev_at: None,
            buf: Vec::with_capacity(512),
            descendants: Vec::new(),
        }
    }

    /// Reads the tree now. `Err` when the root is gone or its stat cannot be read.
    pub fn sample(&mut self) -> io::Result<Sample> {
        let now = Instant::now();
        if self.stat.is_none() {
            self.stat = Some(File::open(format!("/proc/{}/stat", self.root))?);
        }
        let root_stat = match &self.stat {
            Some(f) => pread_all(f, &mut self.buf).and_then(|_| {
                parse_stat(&self.buf).ok_or_else(|| io::Error::other("unreadable stat"))
            })?,
            None => return Err(io::Error::other("no stat")),
        };

        let mut current: Vec<(i32, u64, u64)> = Vec::with_capacity(self.prev.len().max(1));
        let mut rss_pages = root_stat.rss_pages;
        current.push((self.root, root_stat.start_time, root_stat.cpu_ticks));

        // Children of the root: its main thread's file stays open when it is single-threaded.
        let mut queue: Vec<i32> = Vec::new();
        if root_stat.num_threads <= 1 {
            if self.children.is_none() {
                self.children = File::open(format!("/proc/{0}/task/{0}/children", self.root)).ok();
            }
            if let Some(f) = &self.children {
                if pread_all(f, &mut self.buf).is_ok() {
                    push_pids(&self.buf, &mut queue);
                }
            }
        } else {
            children_of_all_tasks(self.root, &mut self.buf, &mut queue);
        }

        let mut kept = std::mem::take(&mut self.descendants);
        while let Some(pid) = queue.pop() {
            let (stat_file, children_file) = match kept.iter().position(|d| d.0 == pid) {
                Some(i) => {
                    let (_, s, c) = kept.swap_remove(i);
                    (s, c)
                }
                None => match File::open(format!("/proc/{pid}/stat")) {
                    Ok(f) => (f, None),
                    Err(_) => continue, // exited between the two reads
                },
            };
            // A kept file of a process that has exited reads ESRCH, even if its pid was reused.
            if pread_all(&stat_file, &mut self.buf).is_err() {
                continue;
            }
            let Some(st) = parse_stat(&self.buf) else {
                continue;
            };
            rss_pages += st.rss_pages;
            current.push((pid, st.start_time, st.cpu_ticks));
            if current.len() > 100_000 {
                break; // a fork bomb: stop counting rather than spin
            }
            let mut children_file = children_file;
            if st.num_threads <= 1 {
                if children_file.is_none() {
                    children_file = File::open(format!("/proc/{pid}/task/{pid}/children")).ok();
                }
                if let Some(f) = &children_file {
                    if pread_all(f, &mut self.buf).is_ok() {
                        push_pids(&self.buf, &mut queue);
                    }
                }
            } else {
                children_of_all_tasks(pid, &mut self.buf, &mut queue);
            }
            self.descendants.push((pid, stat_file, children_file));
        }

        let cpu_percent = match self.prev_at {
            Some(then) => {
                let mut delta: u64 = 0;
                for &(pid, start, ticks) in &current {
                    let before = self
                        .prev
                        .iter()
                        .find(|&&(p, s, _)| p == pid && s == start)
                        .map(|&(_, _, t)| t);
                    // A process new to the tree did all its work since the previous sample.
                    delta += ticks.saturating_sub(before.unwrap_or(0));
                }
                let secs = now.duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    delta as f64 / clock_ticks() / secs * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        let processes = current.len();
        self.prev = current;
        self.prev_at = Some(now);
        Ok(Sample {
            state: KernelState::from_stat_letter(root_stat.state),
            cpu_percent,
            rss_bytes: rss_pages * page_size(),
            processes,
        })
    }
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
