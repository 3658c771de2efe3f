//! The group guard: kills every registered process group when the daemon dies, even by SIGKILL.
//!
//! Design. `PR_SET_PDEATHSIG` alone is not enough: it only reaches the direct child (not the rest of its
//! process group) and it fires when the *forking thread* exits, not the process. Instead the daemon starts
//! one small guard process, `sh` reading a pipe, in its own process group with INT/TERM/HUP/QUIT ignored,
//! so neither a Ctrl-C on the daemon's terminal nor a signal to the daemon's group reaches it.
//! The daemon holds the only write end of the pipe (close-on-exec, so no managed child inherits it) and
//! writes `+<pgid>` when a non-detached child's group appears and `-<pgid>` once that group is gone.
//! When the daemon dies, however it dies, the kernel closes the pipe; the guard reads EOF and sends
//! SIGKILL to every group still registered, then exits. Detached children are never registered.
//!
//! Writes go through a channel to one writer thread, so registering never blocks an actor's thread.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;

use std::os::unix::process::CommandExt;

/// The guard's program: one shell variable `g<pgid>` per registered group, so that registering and
/// forgetting cost the same however many groups there are (a list in one string made each removal scan
/// and rebuild it: seconds of CPU for a stop of 1,000); on EOF SIGKILLs every group still set. Lines
/// that are not `+<digits>` or `-<digits>` are ignored.
const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
while read -r l; do
  case $l in
    ?*[!0-9]*) ;;
    +?*) eval "g${l#+}=" ;;
    -?*) unset "g${l#-}" ;;
  esac
done
set | while IFS='=' read -r k v; do
  case $k in g[0-9]*) kill -9 -"${k#g}" 2>/dev/null ;; esac
done
"#;

/// A handle on the guard process. Cheap to clone; registering is a non-blocking channel send.
#[derive(Clone, Debug)]
pub struct GroupGuard {
    tx: mpsc::Sender<String>,
    pid: u32,
}

impl GroupGuard {
    /// Starts a new guard process and its writer thread.
    pub fn start() -> std::io::Result<GroupGuard> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let pid = child.id();
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("guard has no stdin"))?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("pm-group-guard".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Everything queued goes in one write: a burst of starts is one wakeup of the guard.
                    let mut lines = first;
                    lines.extend(rx.try_iter());
                    if let Err(e) = stdin.write_all(lines.as_bytes()) {
                        tracing::error!(
                            "group guard is gone ({e}): children may outlive the daemon"
                        );
                        break;
                    }
                }
                // Every sender dropped: keep the pipe open for the life of the process, so the
                // guard fires only when the daemon itself dies.
                std::mem::forget(stdin);
                // Reap the guard should it ever exit while we live.
                let _ = child.wait();
            })?;
        Ok(GroupGuard { tx, pid })
    }

    /// The guard shared by every process actor of this daemon, started on first use.
    pub fn shared() -> Result<GroupGuard, String> {
        static SHARED: OnceLock<Result<GroupGuard, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                GroupGuard::start().map_err(|e| format!("cannot start group guard: {e}"))
            })
            .clone()
    }

    /// The guard process's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The group `pgid` is to be killed if the daemon dies.
    pub fn register(&self, pgid: i32) {
        let _ = self.tx.send(format!("+{pgid}\n"));
    }

    /// The group `pgid` is gone: forget it (its number may be reused).
    pub fn unregister(&self, pgid: i32) {
        let _ = self.tx.send(format!("-{pgid}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A `sleep` leading its own group, killed when the test ends.
    struct Group(std::process::Child);
    impl Group {
        fn start() -> Group {
            Group(
                Command::new("sleep")
                    .arg("60")
                    .process_group(0)
                    .spawn()
                    .unwrap(),
            )
        }
        fn pgid(&self) -> u32 {
            self.0.id()
        }
        fn exited(&mut self) -> bool {
            self.0.try_wait().unwrap().is_some()
        }
    }
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn on_eof_it_kills_exactly_the_groups_still_registered() {
        let mut kept = Group::start();
        let mut forgotten = Group::start();
        let mut guard = Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = format!("+{}\n+{}\n", kept.pgid(), forgotten.pgid());
        // Many groups that cannot exist (above any pid), forgotten in a scrambled order, and junk.
        let fake: Vec<u32> = (0..1000).map(|i| 5_000_000 + i).collect();
        for p in &fake {
            lines.push_str(&format!("+{p}\n"));
        }
        for i in 0..fake.len() {
            lines.push_str(&format!("-{}\n", fake[(i * 7919) % fake.len()]));
        }
        lines.push_str(&format!("-{}\n+\n-\n+12a\nx\n+1 2\n", forgotten.pgid()));
        let mut stdin = guard.stdin.take().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
        drop(stdin); // the daemon's end closes: the guard fires
        let deadline = Instant::now() + Duration::from_secs(30);
        while guard.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the guard did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !kept.exited() {
            assert!(Instant::now() < deadline, "the registered group lives on");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!forgotten.exited(), "a forgotten group was killed");
    }
}
