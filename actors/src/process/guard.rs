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

/// The guard's program. The groups live in a dense array `q1..q$n` with an index `g<pgid>` into it, so
/// that registering and forgetting cost the same however many groups there are (a removal moves the
/// last entry into the freed place). On EOF it SIGKILLs exactly `q1..q$n`. It trusts no variable it
/// did not set (an index counts only if `q<index>` points back at the group) and never parses `set`
/// output, in which a multi-line value could forge a group. Lines other than `+<pgid>` or `-<pgid>`
/// are ignored, and so are groups 0 and 1 (`kill -9 -1` would reach every process) and numbers with
/// a leading zero. Firing takes builtins only (no pipeline), so it needs no fork: it works when the
/// machine is out of processes or memory for new ones.
const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
n=0
known() {
  eval "i=\${g$1:-0}"
  case $i in *[!0-9]*) i=0 ;; esac
  [ "$i" -ge 1 ] && [ "$i" -le "$n" ] && eval "[ \"\$q$i\" = $1 ]"
}
while read -r l; do
  case $l in
    ?*[!0-9]*|?0*|?1) ;;
    +?*) p=${l#+}; known "$p" || { n=$((n + 1)); eval "q$n=$p g$p=$n"; } ;;
    -?*) p=${l#-}
      if known "$p"; then
        eval "t=\$q$n"; eval "q$i=$t g$t=$i"; unset "q$n" "g$p"; n=$((n - 1))
      fi ;;
  esac
done
while [ "$n" -gt 0 ]; do eval "kill -9 -\$q$n" 2>/dev/null; n=$((n - 1)); done
"#;

/// `sh` running the guard's program on a piped stdin, with an empty environment: nothing the daemon
/// was started with can reach the guard's variables.
fn guard_command() -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(GUARD_SCRIPT)
        .env_clear()
        .stdin(Stdio::piped());
    cmd
}

/// A handle on the guard process. Cheap to clone; registering is a non-blocking channel send.
#[derive(Clone, Debug)]
pub struct GroupGuard {
    tx: mpsc::Sender<String>,
    pid: u32,
}

impl GroupGuard {
    /// Starts a new guard process and its writer thread.
    pub fn start() -> std::io::Result<GroupGuard> {
        let mut child = guard_command()
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

    /// Runs the guard over `lines`, closes its stdin and waits until it has finished.
    fn run_guard(mut cmd: Command, lines: &str) {
        let mut guard = cmd.spawn().unwrap();
        let mut stdin = guard.stdin.take().unwrap();
        stdin.write_all(lines.as_bytes()).unwrap();
        drop(stdin); // the daemon's end closes: the guard fires
        let deadline = Instant::now() + Duration::from_secs(30);
        while guard.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the guard did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_exited(group: &mut Group) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !group.exited() {
            assert!(Instant::now() < deadline, "the registered group lives on");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn on_eof_it_kills_exactly_the_groups_still_registered() {
        let mut kept = Group::start();
        let mut forgotten = Group::start();
        let mut lines = format!("+{}\n", kept.pgid());
        // Many groups that cannot exist (above any pid), forgotten in a scrambled order, and junk.
        // The real forgotten group comes last, so the first removal moves it to another place.
        let fake: Vec<u32> = (0..1000).map(|i| 5_000_000 + i).collect();
        for p in &fake {
            lines.push_str(&format!("+{p}\n"));
        }
        lines.push_str(&format!("+{}\n", forgotten.pgid()));
        for i in 0..fake.len() {
            lines.push_str(&format!("-{}\n", fake[(i * 7919) % fake.len()]));
        }
        lines.push_str(&format!(
            "-{}\n+\n-\n+12a\nx\n+1 2\n+{}\n-424242\n",
            forgotten.pgid(),
            kept.pgid()
        ));
        run_guard(guard_command(), &lines);
        wait_exited(&mut kept);
        assert!(!forgotten.exited(), "a forgotten group was killed");
    }

    /// Variables the guard did not set cannot add a group, hide one, or reach `kill -9 -1`: not a
    /// multi-line value that looks like a registration, nor an index or slot of its own naming.
    #[test]
    fn variables_from_outside_neither_add_nor_hide_a_group() {
        let mut kept = Group::start();
        let mut bystander = Group::start();
        let (k, b) = (kept.pgid(), bystander.pgid());
        let mut cmd = guard_command();
        cmd.env("q1", b.to_string())
            .env("q2", b.to_string())
            .env(format!("g{k}"), "2")
            .env(format!("g{b}"), "1")
            .env("n", "2")
            .env("ML", format!("x\ng{b}=\nq1={b}\n"));
        // Groups 0 and 1 and a leading zero are refused: `kill -9 -1` would reach every process.
        run_guard(cmd, &format!("+0\n+1\n+0{b}\n+{k}\n"));
        wait_exited(&mut kept);
        assert!(
            !bystander.exited(),
            "a group named only from outside was killed"
        );
    }
}
