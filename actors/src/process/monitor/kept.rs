//! The /proc (and cgroup) files the monitor keeps open between ticks, within a share of the daemon's
//! descriptors.
//!
//! Re-reading an open /proc file costs a fraction of opening it, so each tree member keeps one. But
//! every managed process also holds a pidfd, and at thousands of processes the kept files would take
//! the daemon past its open-files limit. So at most a quarter of the limit is kept open; a member
//! beyond it opens its file for each read (rarely: a sleeping tree is read every other tick or less), and
//! keeps it once there is room again.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::process::descriptors::open_files_limit;

/// Files kept open by every sampler of this process.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// The share of the open-files limit the monitor may keep open (one part in this many).
const SHARE_OF_LIMIT: usize = 4;

/// Files kept open now, by every monitor of this process.
pub fn kept_files() -> usize {
    KEPT.load(Ordering::Relaxed)
}

/// Takes a place for one more kept file, if the budget has one.
fn take_place() -> bool {
    let budget = open_files_limit().map_or(0, |l| l / SHARE_OF_LIMIT);
    KEPT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        (n < budget).then_some(n + 1)
    })
    .is_ok()
}

/// One /proc file of one process (`/proc/<pid>/<name>`), or a file at a path of its own (a cgroup's
/// `cpu.stat`): kept open when the budget allows.
#[derive(Debug)]
pub(super) struct ProcFile {
    pid: i32,
    name: &'static str,
    /// The file's path, when it is not the process's /proc file.
    path: Option<Box<Path>>,
    /// Open and counted in [`KEPT`], or `None`: opened for each read.
    kept: Option<File>,
}

impl ProcFile {
    /// Opens the file (an error when the process is gone) and keeps it if there is room.
    pub(super) fn open(pid: i32, name: &'static str) -> io::Result<ProcFile> {
        let mut file = ProcFile {
            pid,
            name,
            path: None,
            kept: None,
        };
        let f = file.open_now()?;
        file.keep(f);
        Ok(file)
    }

    /// The file at `path`, opened at its first read.
    pub(super) fn at(path: &Path) -> ProcFile {
        ProcFile {
            pid: 0,
            name: "",
            path: Some(path.into()),
            kept: None,
        }
    }

    /// Whether the file is kept open (a read costs no open).
    pub(super) fn is_kept(&self) -> bool {
        self.kept.is_some()
    }

    /// Closes a kept file and gives its place back; later reads open the file for themselves.
    pub(super) fn release(&mut self) {
        if self.kept.take().is_some() {
            KEPT.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A file opened for each read, never kept: for tests of what a read without a kept file does.
    #[cfg(test)]
    pub(super) fn unkept(pid: i32, name: &'static str) -> ProcFile {
        ProcFile {
            pid,
            name,
            path: None,
            kept: None,
        }
    }

    fn open_now(&self) -> io::Result<File> {
        match &self.path {
            Some(path) => File::open(path),
            None => File::open(format!("/proc/{}/{}", self.pid, self.name)),
        }
    }

    fn keep(&mut self, f: File) {
        if take_place() {
            self.kept = Some(f);
        }
    }

    /// `read` on the file: the kept one, or one opened now (and kept if there is room by now). A
    /// kept file of a process that has exited reads ESRCH, even if its pid was reused; one opened now
    /// may belong to a new process of the same pid, which the caller's start-time check catches.
    pub(super) fn read<T>(&mut self, read: impl FnOnce(&File) -> io::Result<T>) -> io::Result<T> {
        if let Some(f) = &self.kept {
            return read(f);
        }
        let f = self.open_now()?;
        let out = read(&f);
        if out.is_ok() {
            self.keep(f);
        }
        out
    }
}

impl Drop for ProcFile {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_counted_until_dropped_and_reads_like_a_fresh_one() {
        let me = std::process::id() as i32;
        let mut file = ProcFile::open(me, "stat").unwrap();
        assert!(
            file.kept.is_some(),
            "a test process has room to keep one file"
        );
        let mut buf = Vec::new();
        file.read(|f| crate::process::procfs::pread_all(f, &mut buf))
            .unwrap();
        assert!(String::from_utf8_lossy(&buf).starts_with(&format!("{me} (")));
        assert!(kept_files() >= 1);
        drop(file);
        assert!(ProcFile::open(i32::MAX, "stat").is_err(), "no such process");
    }
}
