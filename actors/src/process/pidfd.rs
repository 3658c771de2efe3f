//! pidfds: a file descriptor for one exact process, to learn of its exit without polling and to signal
//! it without ever reaching a recycled pid.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A pidfd for `pid` (Linux 5.3+). `Err` with ENOSYS on older kernels, ESRCH when `pid` is gone.
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to exactly the process behind `fd` (ESRCH once it has exited, whatever now holds its pid).
pub fn send_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Resolves once the process behind `fd` has exited (the pidfd becomes readable). Needs a tokio reactor.
pub async fn exited(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: an OwnedFd is a valid open fd that stays open, unchanged, for the life of the AsyncFd.
    let afd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)? };
    let _guard = afd.readable().await?;
    Ok(())
}
