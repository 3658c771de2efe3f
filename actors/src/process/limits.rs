//! The machine's limits a start can meet, said in a sentence: open files (checked before a start), and
//! processes and threads (named when a clone fails with EAGAIN).
//!
//! Each managed process costs the daemon about [`DESCRIPTORS_PER_PROCESS`] descriptors while it runs (a
//! pidfd, the monitor's kept-open /proc file), a start a few more for a moment (its report pipe, its
//! output pipes). A start refused while there is room for it and a few others is clearer than one that
//! fails at random later, in a log file's open or a client's accept.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::descriptors::open_files_limit;

/// Descriptors a running process costs the daemon: its pidfd and the monitor's kept-open /proc file
/// (output pipes of a logged process add two).
pub const DESCRIPTORS_PER_PROCESS: usize = 2;

/// Descriptors kept free for everything but starts (connections, log files, the state file), at most;
/// a low limit keeps an eighth of itself.
const RESERVED_FOR_THE_REST: usize = 64;

/// `Err` with a sentence when the daemon's open files are too near its limit for another start.
pub fn room_for_a_start() -> Result<(), String> {
    let Ok(limit) = open_files_limit() else {
        return Ok(());
    };
    let Ok(lowest_free) = lowest_free_descriptor() else {
        // The table is full: the dup itself failed with EMFILE.
        return Err(descriptors_sentence(limit, limit));
    };
    // Descriptors are handed out lowest first, so every one below the lowest free one is in use.
    let reserve = RESERVED_FOR_THE_REST.min(limit / 8);
    if lowest_free + reserve >= limit {
        return Err(descriptors_sentence(lowest_free, limit));
    }
    Ok(())
}

fn descriptors_sentence(in_use: usize, limit: usize) -> String {
    format!(
        "Too many open files for another process: the daemon uses {in_use} of its {limit} \
         descriptors (each process costs about {DESCRIPTORS_PER_PROCESS}, {} with its log), and \
         keeps the rest for connections and files; raise its open-files limit (ulimit -n, \
         LimitNOFILE=) or stop some processes",
        DESCRIPTORS_PER_PROCESS + 2
    )
}

/// The lowest descriptor number not in use.
fn lowest_free_descriptor() -> io::Result<usize> {
    // SAFETY: F_DUPFD_CLOEXEC on stdin's number returns a new descriptor (the lowest free one) or
    // fails; an fd 0 that is closed fails with EBADF, answered below by the same question to /dev/null.
    let fd = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
    let fd = if fd >= 0 {
        fd
    } else {
        let null = std::fs::File::open("/dev/null")?;
        // SAFETY: as above, on a descriptor owned here.
        let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        fd
    };
    // SAFETY: fd was just returned by fcntl and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(usize::try_from(fd).unwrap_or(usize::MAX))
}

/// Which limit a clone that failed with EAGAIN met, as a clause: the system's processes or threads
/// (`kernel.pid_max`, `kernel.threads-max`), the control group's `pids.max`, or this user's
/// `RLIMIT_NPROC`.
pub fn process_limit_clause() -> String {
    let tasks = read_number_after("/proc/loadavg", '/');
    let pid_max = read_number("/proc/sys/kernel/pid_max");
    let threads_max = read_number("/proc/sys/kernel/threads-max");
    let near = |max: Option<u64>| matches!((tasks, max), (Some(t), Some(m)) if t + 64 >= m);
    if near(pid_max) {
        return format!(
            "the system has {} of its kernel.pid_max {} processes and threads",
            tasks.unwrap_or(0),
            pid_max.unwrap_or(0)
        );
    }
    if near(threads_max) {
        return format!(
            "the system has {} of its kernel.threads-max {} threads",
            tasks.unwrap_or(0),
            threads_max.unwrap_or(0)
        );
    }
    if let Some((current, max)) = cgroup_pids() {
        if current + 8 >= max {
            return format!("the daemon's control group has {current} of its pids.max {max} tasks");
        }
    }
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC) {
        Ok((soft, _)) if soft != libc::RLIM_INFINITY => format!(
            "the daemon's user has reached its limit of {soft} processes and threads \
             (RLIMIT_NPROC, ulimit -u)"
        ),
        _ => "the system is out of processes or threads (kernel.pid_max, kernel.threads-max, \
              pids.max, RLIMIT_NPROC)"
            .to_string(),
    }
}

/// The daemon's control group's `pids.current` and `pids.max` (cgroup v2), when it has a maximum.
fn cgroup_pids() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = format!("/sys/fs/cgroup{path}");
    let max = read_number(&format!("{dir}/pids.max"))?;
    let current = read_number(&format!("{dir}/pids.current"))?;
    Some((current, max))
}

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The number after the first `sep` in the file, up to the next blank (the task count of loadavg).
fn read_number_after(path: &str, sep: char) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let (_, rest) = text.split_once(sep)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_room_for_a_start_in_a_test_process() {
        assert_eq!(room_for_a_start(), Ok(()));
        assert!(lowest_free_descriptor().unwrap() >= 3);
    }

    #[test]
    fn the_sentence_names_the_figures_and_the_way_out() {
        let s = descriptors_sentence(19_950, 20_000);
        assert!(s.starts_with("Too many open files"), "{s}");
        assert!(
            s.contains("19950 of its 20000") && s.contains("ulimit -n"),
            "{s}"
        );
    }

    #[test]
    fn an_eagain_clause_names_a_limit() {
        let clause = process_limit_clause();
        assert!(
            ["pid_max", "threads-max", "pids.max", "RLIMIT_NPROC"]
                .iter()
                .any(|l| clause.contains(l)),
            "{clause}"
        );
    }
}
