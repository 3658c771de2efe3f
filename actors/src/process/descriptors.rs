//! The daemon's descriptor table, grown once at startup to the size a thousand processes need, and
//! the open-files limit it was started with, which its children get back.
//!
//! Each managed process holds a pidfd and kept-open /proc files, so the table of a daemon running
//! 1,000 processes passes 1,024 descriptors. The kernel grows a table by doubling it, and when the
//! table is shared (any process with threads, or with a child that borrows it between clone and
//! exec) every growth waits for an RCU grace period (`expand_fdtable` calls `synchronize_rcu`):
//! on the thread that opened the descriptor, in the middle of a start burst (BENCHMARKS.md). Grown
//! before the daemon has a second thread, the table costs no such wait, and a table never shrinks.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

/// Descriptors reserved at startup: about four per process for 2,000 processes (64 KiB of kernel
/// memory for the table).
pub const RESERVED_DESCRIPTORS: usize = 8192;

/// The open-files limit (soft, hard) this process was started with, once recorded.
static ORIGINAL_OPEN_FILES_LIMIT: OnceLock<(u64, u64)> = OnceLock::new();

/// Records this process's open-files limit as the one its children get: call it before raising the
/// soft limit (the daemon raises it to the hard one for its own pidfds and /proc files). Children
/// started after it have the recorded limit set back before their exec, so that a program that closes
/// every descriptor up to its limit, or uses `select()`, sees the limit it would have had without the
/// daemon. Only the first call records; it answers the recorded limit.
pub fn record_original_open_files_limit() -> io::Result<(u64, u64)> {
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    Ok(*ORIGINAL_OPEN_FILES_LIMIT.get_or_init(|| limit))
}

/// The limit [`record_original_open_files_limit`] recorded, if it was called: what children get.
pub fn original_open_files_limit() -> Option<(u64, u64)> {
    ORIGINAL_OPEN_FILES_LIMIT.get().copied()
}

/// This process's soft limit of open files (`RLIMIT_NOFILE`).
pub fn open_files_limit() -> io::Result<usize> {
    let (soft, _hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    Ok(usize::try_from(soft).unwrap_or(usize::MAX))
}

/// Grows this process's descriptor table to hold `n` descriptors (fewer if the open-files limit is
/// lower), by duplicating a descriptor to the highest number and closing it. Returns the size
/// reserved. Call it before the process starts a thread, so that the growth itself does not wait.
pub fn reserve_descriptor_table(n: usize) -> io::Result<usize> {
    let size = n.min(open_files_limit()?);
    let Some(highest) = size.checked_sub(1) else {
        return Ok(0);
    };
    let highest = libc::c_int::try_from(highest).unwrap_or(libc::c_int::MAX);
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor (the lowest free one >= `highest`), owned here.
    let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by fcntl and nothing else owns it.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of this process's descriptor table (`FDSize` in /proc/self/status).
    fn table_size() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("FDSize:")).unwrap();
        line["FDSize:".len()..].trim().parse().unwrap()
    }

    #[test]
    fn the_table_grows_to_the_size_asked_and_keeps_no_descriptor_open() {
        let want = 3000.min(open_files_limit().unwrap());
        assert_eq!(reserve_descriptor_table(want).unwrap(), want);
        assert!(table_size() >= want, "FDSize {} < {want}", table_size());
        let highest = libc::c_int::try_from(want - 1).unwrap();
        // SAFETY: F_GETFD only asks whether the number is open.
        let flags = unsafe { libc::fcntl(highest, libc::F_GETFD) };
        assert_eq!(flags, -1, "fd {highest} left open");
        assert_eq!(reserve_descriptor_table(0).unwrap(), 0);
    }

    #[test]
    fn the_open_files_limit_caps_the_reservation() {
        let soft = open_files_limit().unwrap();
        if soft > 65_536 {
            eprintln!("skipped: an open-files limit of {soft} would reserve a large table");
            return;
        }
        assert_eq!(reserve_descriptor_table(soft + 1000).unwrap(), soft);
        assert!(table_size() >= soft);
    }
}
