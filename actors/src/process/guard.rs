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

/// The guard's program: keeps a space-separated set of pgids; on EOF SIGKILLs them all.
const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
g=' '
while read -r l; do
  case $l in
    +*) g="$g${l#+} " ;;
    -*) p=${l#-}
        case $g in *" $p "*) g="${g%% $p *} ${g#* $p }" ;; esac ;;
  esac
done
for p in $g; do kill -9 -$p 2>/dev/null; done
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
                for line in rx {
                    if let Err(e) = stdin.write_all(line.as_bytes()) {
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
