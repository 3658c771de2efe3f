//! A child of the daemon, as [`super::clone_exec`] started it: its pid, and reaping it.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Our own child. Its pid stays ours (no other process can take it) until it is reaped here.
#[derive(Debug)]
pub struct ChildProcess {
    pid: i32,
    status: Option<ExitStatus>,
}

/// A started child and the daemon's ends of its output pipes (when captured).
#[derive(Debug)]
pub struct Spawned {
    /// The child.
    pub child: ChildProcess,
    /// The read end of its stdout pipe.
    pub stdout: Option<OwnedFd>,
    /// The read end of its stderr pipe.
    pub stderr: Option<OwnedFd>,
}

impl ChildProcess {
    pub(crate) fn new(pid: i32) -> ChildProcess {
        ChildProcess { pid, status: None }
    }

    /// Its pid.
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Its exit status if it has exited (reaping it), `None` while it runs. Never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.wait_with(libc::WNOHANG)
    }

    /// Blocks until it exits and reaps it: for a thread of its own, never an actor's.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            match self.wait_with(0) {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn wait_with(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let mut raw = 0;
        // SAFETY: waits for our own child only, with a valid status pointer.
        match unsafe { libc::waitpid(self.pid, &mut raw, flags) } {
            0 => Ok(None),
            r if r < 0 => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ECHILD) {
                    super::orphans::forget(self.pid);
                }
                Err(e)
            }
            _ => {
                super::orphans::forget(self.pid);
                let status = ExitStatus::from_raw(raw);
                self.status = Some(status);
                Ok(Some(status))
            }
        }
    }
}
