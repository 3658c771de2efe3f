//! Signalling and killing every process of a cgroup, and waiting for the kernel to say it is empty.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use tokio::io::unix::AsyncFd;

/// The pids in `cgroup.procs` (none when it cannot be read).
pub fn procs(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Whether `cgroup.events` says `populated 1` (a cgroup that cannot be read is not).
pub fn populated(path: &Path) -> bool {
    super::keyed_value(path, "cgroup.events", "populated") == Some(1)
}

/// Sends `sig` to every process of the cgroup.
pub fn signal_all(path: &Path, sig: i32) {
    for pid in procs(path) {
        // SAFETY: kill takes plain integers. A pid read from cgroup.procs is a member, or one that
        // just exited and is not yet reaped (a zombie keeps its pid).
        unsafe { libc::kill(pid, sig) };
    }
}

/// Kills every process of the cgroup: `cgroup.kill` (Linux 5.14+), else the cgroup frozen (so that
/// nothing forks meanwhile), SIGKILL to each of its pids until none is left, and thawed.
pub fn kill_all(path: &Path) {
    if std::fs::write(path.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let frozen = std::fs::write(path.join("cgroup.freeze"), "1").is_ok();
    for _ in 0..100 {
        let pids = procs(path);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: as in signal_all.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if !frozen {
            std::thread::yield_now();
        }
    }
    if frozen {
        let _ = std::fs::write(path.join("cgroup.freeze"), "0");
    }
}

/// Resolves once the cgroup at `path` is empty (or gone), learned from an inotify event on its
/// `cgroup.events`, which the kernel touches when `populated` changes: no polling, no thread.
pub async fn wait_empty(path: PathBuf) {
    let watch = match EventsWatch::new(&path) {
        Ok(w) => w,
        Err(e) => {
            // Without a watch the caller looks again a little later rather than at once.
            tracing::debug!("cannot watch {}: {e}", path.display());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            return;
        }
    };
    while populated(&path) {
        if watch.next().await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            return;
        }
    }
}

/// An inotify descriptor watching one `cgroup.events` for changes.
struct EventsWatch(AsyncFd<OwnedFd>);

impl EventsWatch {
    fn new(cgroup: &Path) -> io::Result<EventsWatch> {
        // SAFETY: inotify_init1 takes flags and answers a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let file =
            std::ffi::CString::new(cgroup.join("cgroup.events").as_os_str().as_encoded_bytes())
                .map_err(io::Error::other)?;
        // SAFETY: a valid descriptor and a nul-terminated path.
        let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), file.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: an OwnedFd is a valid open fd that stays open, unchanged, for the life of the AsyncFd.
        let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
        Ok(EventsWatch(afd))
    }

    /// Waits for the next change and drains the pending events.
    async fn next(&self) -> io::Result<()> {
        loop {
            let mut ready = self.0.readable().await?;
            let mut buf = [0u8; 1024];
            // SAFETY: reads into a buffer of the given length from our descriptor.
            let n = unsafe {
                libc::read(
                    self.0.get_ref().as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                )
            };
            if n > 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
            ready.clear_ready();
        }
    }
}
