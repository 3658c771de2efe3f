//! The exec check: a command run like the process itself (same spawn path, user, environment and
//! directory), in its own process group, reaped here, and killed with its whole group at its timeout
//! or when the check is dropped: a check never leaves a process behind.

use std::borrow::Cow;
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_protocol::{CommandLine, ProcessSpec};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;

use super::super::child::ChildProcess;
use super::super::guard::GroupGuard;
use super::super::{env_file, pidfd, spawn};
use super::{human, Failure};

/// The most output kept to find its first line.
const OUTPUT_MAX: usize = 4096;

/// How often the exit of a check is looked for where pidfds are missing.
const FALLBACK_POLL: Duration = Duration::from_millis(10);

/// An exec check started and not yet reaped.
pub(crate) struct ExecProbe {
    pending: Option<spawn::PendingSpawn>,
    child: Option<ChildProcess>,
    pid: i32,
    command: String,
    /// Kills the check's group should the daemon die while it runs.
    guard: Option<GroupGuard>,
}

impl ExecProbe {
    /// Spawns `command` with `sh -c` as the process of `spec` would run (its user, environment, env
    /// files, directory), output captured. Call on the process actor's thread.
    pub(crate) fn start(
        spec: &ProcessSpec,
        command: &str,
        guard: Option<GroupGuard>,
    ) -> Result<ExecProbe, Failure> {
        let base = match env_file::with_env_files(spec) {
            Ok(Cow::Owned(s)) => s,
            Ok(Cow::Borrowed(s)) => s.clone(),
            Err(e) => return Err(format!("exec {command}: {e}")),
        };
        let mut probe = base;
        probe.command = CommandLine::Shell(command.to_string());
        probe.detach = false;
        probe.log.enabled = false;
        probe.env_files.clear();
        // The log folder is not used: a check's output is piped, never written to a file.
        let pending = spawn::launch(
            &probe,
            spawn::StdioPlan::Capture,
            std::path::Path::new("."),
            None,
            // No marker: a check is not the process, and must never be taken for it (or for a
            // stray of it) by a later daemon's scan.
            None,
        )
        .map_err(|e| format!("exec {command}: {e}"))?;
        let pid = pending.pid();
        if let Some(g) = &guard {
            g.register(pid);
        }
        Ok(ExecProbe {
            pid,
            pending: Some(pending),
            child: None,
            command: command.to_string(),
            guard,
        })
    }

    /// Waits for the check to exit within `timeout` (its exec included); kills its group at the
    /// timeout. `exit code 1: <first line of its output>` when it fails.
    pub(crate) async fn finish(mut self, timeout: Duration) -> Result<(), Failure> {
        let give_up = tokio::time::Instant::now() + timeout;
        let command = self.command.clone();
        let timed_out = || format!("exec {command}: timed out after {}", human(timeout));
        let Some(pending) = self.pending.take() else {
            return Err(timed_out());
        };
        let spawned = match tokio::time::timeout_at(give_up, pending.finish(timeout)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("exec {}: {}", self.command, e.io_error())),
            Err(_) => return Err(timed_out()),
        };
        self.child = Some(spawned.child);
        let mut output = Vec::new();
        let exited = tokio::time::timeout_at(
            give_up,
            read_until_exit(self.pid, spawned.stdout, spawned.stderr, &mut output),
        )
        .await;
        // The whole group goes, while the exited leader still holds its id: nothing is left behind.
        let _ = kill(Pid::from_raw(-self.pid), NixSignal::SIGKILL);
        let status = self.reap().await;
        match (exited, status) {
            (Err(_), _) => Err(timed_out()),
            (Ok(()), Some(s)) if s.success() => Ok(()),
            (Ok(()), status) => {
                use std::os::unix::process::ExitStatusExt;
                let how = match status {
                    Some(s) if s.code().is_some() => {
                        format!("exit code {}", s.code().unwrap_or(-1))
                    }
                    Some(s) => format!("killed by signal {}", s.signal().unwrap_or(0)),
                    None => "exit status unknown".to_string(),
                };
                let first = String::from_utf8_lossy(&output);
                let first = first.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                Err(format!("exec {command}: {how}: {first}"))
            }
        }
    }

    /// Reaps the child (killed or exited), waiting in the reactor, never on the thread.
    async fn reap(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => tokio::time::sleep(FALLBACK_POLL).await,
                Err(_) => break None,
            }
        };
        if let Some(g) = self.guard.take() {
            g.unregister(self.pid);
        }
        status
    }
}

impl Drop for ExecProbe {
    /// A check dropped before it ended (its actor went away): its group is killed and a thread reaps
    /// it, as the actor does with its own child.
    fn drop(&mut self) {
        if self.pending.is_none() && self.child.is_none() {
            return;
        }
        let _ = kill(Pid::from_raw(-self.pid), NixSignal::SIGKILL);
        let (guard, pgid) = (self.guard.take(), self.pid);
        let child = self.child.take();
        let _ = std::thread::Builder::new()
            .name("pm-probe-reaper".into())
            .spawn(move || {
                if let Some(mut child) = child {
                    let _ = child.wait();
                }
                if let Some(g) = guard {
                    g.unregister(pgid);
                }
            });
        // A pending spawn reaps its own child when dropped before its exec report.
    }
}

/// Reads the check's output (the first [`OUTPUT_MAX`] bytes) until its leader exits.
async fn read_until_exit(
    pid: i32,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    output: &mut Vec<u8>,
) {
    let open = |fd: Option<OwnedFd>| fd.and_then(|fd| Receiver::from_owned_fd(fd).ok());
    let (mut out, mut err) = (open(stdout), open(stderr));
    let exit = wait_exit(pid);
    tokio::pin!(exit);
    let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
    loop {
        tokio::select! {
            () = &mut exit => break,
            n = read_some(&mut out, &mut a) => keep(output, &mut out, &a, n),
            n = read_some(&mut err, &mut b) => keep(output, &mut err, &b, n),
        }
    }
    // What it wrote before it exited is in the pipes already.
    for pipe in [&out, &err].into_iter().flatten() {
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = pipe.try_read(&mut buf) {
            if output.len() < OUTPUT_MAX {
                output.extend_from_slice(&buf[..n]);
            }
        }
    }
}

async fn read_some(pipe: &mut Option<Receiver>, buf: &mut [u8]) -> usize {
    match pipe {
        Some(p) => p.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

fn keep(output: &mut Vec<u8>, pipe: &mut Option<Receiver>, buf: &[u8], n: usize) {
    if n == 0 {
        *pipe = None; // closed: read it no more
    } else if output.len() < OUTPUT_MAX {
        output.extend_from_slice(&buf[..n]);
    }
}

/// Resolves once `pid` (our child) has exited, without reaping it where pidfds exist.
async fn wait_exit(pid: i32) {
    match pidfd::open(pid) {
        Ok(fd) => {
            let _ = pidfd::exited(fd).await;
        }
        // Without pidfds: until the pid (a zombie included) no longer answers signal 0 as ours,
        // which for an unreaped child is never; the timeout and the group kill end it then.
        Err(_) => loop {
            tokio::time::sleep(FALLBACK_POLL).await;
            if super::super::procfs::read_stat(pid).is_ok_and(|s| s.state == 'Z') {
                return;
            }
        },
    }
}
