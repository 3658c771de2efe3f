//! The group guard: kills every registered process group when the daemon dies, even by SIGKILL.
//!
//! Design. `PR_SET_PDEATHSIG` alone is not enough: it only reaches the direct child (not the rest of its
//! process group) and it fires when the *forking thread* exits, not the process. Instead the daemon starts
//! one small guard process, `sh` reading a pipe, in its own process group with INT/TERM/HUP/QUIT ignored,
//! so neither a Ctrl-C on the daemon's terminal nor a signal to the daemon's group reaches it.
//! The daemon holds the only write end of the pipe (close-on-exec, so no managed child inherits it) and
//! writes `+<pgid>` when a non-detached child's group appears and `-<pgid>` once that group is gone.
//! When the daemon dies, however it dies, the kernel closes the pipe; the guard reads EOF and sends
//! SIGKILL to every group still registered, then exits. Detached children are never registered. In
//! cgroup mode it then writes `1` to the non-detached branch's `cgroup.kill`; where that file exists
//! ([`GroupGuard::kills_cgroups`]) the actors register no group for a process in that branch.
//!
//! A line is written to the pipe at once, on the caller's thread, without blocking: a group is known to
//! the guard before its start is answered, before its leader can have forked anything of its own. Only
//! when the guard is behind and the pipe is full do lines wait in a backlog, which a writer thread
//! empties in order.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use std::os::unix::process::CommandExt;

/// The guard's program. The groups live in 1,021 variables `b0`..`b1020` (a group in the one its number
/// modulo 1,021 names, as a list ` 12 34`: at 10,000 groups about ten a bucket, and about 26
/// variables on each of dash's chains), so that registering and forgetting cost the same
/// however many groups there are: dash keeps variables in a fixed table of 39 chains, and a variable
/// per group made each line cost time in proportion to all the groups (30-50 us at 10,000). It sets
/// every bucket empty first, so it trusts no variable it did not set, and never parses `set` output,
/// in which a multi-line value could forge a group. Lines other than `+<pgid>` or `-<pgid>` are
/// ignored, and so are groups 0 and 1 (`kill -9 -1` would reach every process), numbers with a leading
/// zero and numbers of more than seven digits (a pid is at most 4194304). On EOF it SIGKILLs exactly
/// the groups listed. Firing takes builtins only (no pipeline), so it needs no fork: it works when the
/// machine is out of processes or memory for new ones.
const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP QUIT PIPE
i=0
while [ "$i" -lt 1021 ]; do eval "b$i="; i=$((i + 1)); done
while read -r l; do
  case $l in
    ?*[!0-9]*|?0*|?1|?????????*|[!+-]*|?) continue ;;
  esac
  p=${l#?}
  i=$((p % 1021))
  eval "v=\$b$i"
  case "$v " in
    *" $p "*) [ "${l%"$p"}" = - ] || continue
      w="$v "; w="${w%%" $p "*} ${w#*" $p "}"; eval "b$i=\${w% }" ;;
    *) [ "${l%"$p"}" = + ] && eval "b$i=\"\$v \$p\"" ;;
  esac
done
i=0
while [ "$i" -lt 1021 ]; do
  eval "v=\$b$i"
  for p in $v; do kill -9 -"$p" 2>/dev/null; done
  i=$((i + 1))
done
[ -n "$1" ] && echo 1 2>/dev/null >"$1"
"#;

/// `sh` running the guard's program (its stdin is the caller's to set), with an empty environment:
/// nothing the daemon was started with can reach the guard's variables; and whether it kills the
/// cgroups of the non-detached processes.
fn guard_command() -> (Command, bool) {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(GUARD_SCRIPT).arg("pm-guard").env_clear();
    // In cgroup mode the guard also kills every non-detached process's cgroup at once (Linux 5.14+),
    // which reaches the members that left their group.
    let mut kills_cgroups = false;
    if let Some(tree) = super::cgroup::tree() {
        let kill = tree.branch(false).join("cgroup.kill");
        kills_cgroups = kill.exists();
        cmd.arg(kill);
    }
    (cmd, kills_cgroups)
}

/// A handle on the guard process. Cheap to clone; registering never blocks.
#[derive(Clone, Debug)]
pub struct GroupGuard {
    pipe: Arc<GuardPipe>,
    pid: u32,
    /// It kills the branch of non-detached cgroups through its `cgroup.kill` when the daemon dies.
    kills_cgroups: bool,
}

/// The daemon's end of the guard's stdin (non-blocking), and the lines it had no room for yet.
#[derive(Debug)]
struct GuardPipe {
    fd: OwnedFd,
    backlog: Mutex<Backlog>,
    /// Wakes the writer thread when the backlog gains lines.
    backlog_added: Condvar,
}

#[derive(Debug, Default)]
struct Backlog {
    /// Lines waiting, in order; while any wait, new lines queue behind them.
    lines: Vec<u8>,
    /// The writer thread holds lines taken from `lines`: they come before any new line.
    draining: bool,
    /// The guard is gone (a write failed): lines are dropped.
    gone: bool,
}

impl GroupGuard {
    /// Starts a new guard process and its writer thread.
    pub fn start() -> std::io::Result<GroupGuard> {
        let (cmd, kills_cgroups) = guard_command();
        GroupGuard::start_with(cmd, kills_cgroups)
    }

    /// Starts `cmd` as the guard, reading the `+pgid`/`-pgid` lines on its stdin (and killing the
    /// non-detached cgroups at the end, if `kills_cgroups`).
    fn start_with(mut cmd: Command, kills_cgroups: bool) -> std::io::Result<GroupGuard> {
        let mut own = super::orphans::own_children();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        own.add(child.id() as i32, None);
        drop(own);
        let fd: OwnedFd = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("guard has no stdin"))?
            .into();
        // SAFETY: sets a status flag on our own descriptor; the guard's read end is another description.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let pipe = Arc::new(GuardPipe {
            fd,
            backlog: Mutex::default(),
            backlog_added: Condvar::new(),
        });
        let pid = child.id();
        let writer = Arc::clone(&pipe);
        std::thread::Builder::new()
            .name("pm-group-guard".into())
            .spawn(move || writer.drain_backlog(child))?;
        Ok(GroupGuard {
            pipe,
            pid,
            kills_cgroups,
        })
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

    /// Whether the guard kills every non-detached process's cgroup when the daemon dies (cgroup mode
    /// on Linux 5.14+): a process in such a cgroup needs no group of its own registered.
    pub fn kills_cgroups(&self) -> bool {
        self.kills_cgroups
    }

    /// The group `pgid` is to be killed if the daemon dies. When this returns the line is in the
    /// guard's pipe, or (the guard being far behind) queued after the lines already waiting.
    pub fn register(&self, pgid: i32) {
        self.pipe.send(format!("+{pgid}\n").as_bytes());
    }

    /// The group `pgid` is gone: forget it (its number may be reused).
    pub fn unregister(&self, pgid: i32) {
        self.pipe.send(format!("-{pgid}\n").as_bytes());
    }
}

impl GuardPipe {
    /// Writes `line` now if nothing waits before it and the pipe has room; queues what is left.
    fn send(&self, line: &[u8]) {
        // A poisoned lock only means a writer panicked; the backlog itself is always whole.
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if backlog.gone {
            return;
        }
        let mut rest = line;
        if backlog.lines.is_empty() && !backlog.draining {
            match self.write_some(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) => return backlog.lose_guard(&e),
            }
        }
        if !rest.is_empty() {
            backlog.lines.extend_from_slice(rest);
            self.backlog_added.notify_one();
        }
    }

    /// One non-blocking write: how much of `buf` the pipe took (0 when it is full).
    fn write_some(&self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            // SAFETY: writes from a valid buffer to our own descriptor.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            match std::io::Error::last_os_error() {
                e if e.kind() == std::io::ErrorKind::Interrupted => continue,
                e if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(0),
                e => return Err(e),
            }
        }
    }

    /// Writes all of `buf`, waiting for room in the pipe as needed.
    fn write_all_waiting(&self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            let n = self.write_some(buf)?;
            buf = &buf[n..];
            if n == 0 {
                let mut pfd = libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd. An error or hangup shows in the next write.
                unsafe { libc::poll(&mut pfd, 1, -1) };
            }
        }
        Ok(())
    }

    /// The writer thread: empties the backlog in order until the guard is gone, then reaps it.
    fn drain_backlog(&self, mut guard: Child) {
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        while !backlog.gone {
            if backlog.lines.is_empty() {
                backlog = self
                    .backlog_added
                    .wait(backlog)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            let lines = std::mem::take(&mut backlog.lines);
            backlog.draining = true;
            drop(backlog);
            let written = self.write_all_waiting(&lines);
            backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
            backlog.draining = false;
            if let Err(e) = written {
                backlog.lose_guard(&e);
            }
        }
        drop(backlog);
        let _ = guard.wait();
        super::orphans::forget(guard.id() as i32);
    }
}

impl Backlog {
    fn lose_guard(&mut self, e: &std::io::Error) {
        tracing::error!("group guard is gone ({e}): children may outlive the daemon");
        self.gone = true;
        self.lines.clear();
    }
}

#[cfg(test)]
impl GroupGuard {
    /// How many bytes wait in the guard's pipe.
    fn in_pipe(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int; a pipe answers it on either end.
        unsafe { libc::ioctl(self.pipe.fd.as_raw_fd(), libc::FIONREAD, &mut n) };
        n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::{Duration, Instant};

    /// The guard's buckets, as its program spells them.
    const BUCKETS: u32 = 1021;

    #[test]
    fn the_program_has_as_many_buckets_as_the_tests_think() {
        assert_eq!(GUARD_SCRIPT.matches(&BUCKETS.to_string()).count(), 3);
    }

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
        /// Whether it was sent SIGKILL: it has exited, or the signal is still pending. Once the guard
        /// has finished, every kill it made has returned, so this cannot miss one not yet acted on.
        fn killed(&mut self) -> bool {
            let status = std::fs::read_to_string(format!("/proc/{}/status", self.pgid()));
            let sigkill_pending = status.is_ok_and(|s| {
                s.lines()
                    .filter_map(|l| l.strip_prefix("SigPnd:").or(l.strip_prefix("ShdPnd:")))
                    .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
                    .any(|mask| mask & (1 << (libc::SIGKILL - 1)) != 0)
            });
            self.exited() || sigkill_pending
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
        let mut guard = cmd.stdin(Stdio::piped()).spawn().unwrap();
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
        // Many groups that cannot exist (above any pid), forgotten in a scrambled order, and junk:
        // a thousand in a row, and twenty in each of the buckets of the two real groups, around
        // them in their lists.
        let same_bucket = |pgid: u32, j: u32| {
            5_000_000 + (pgid + BUCKETS - 5_000_000 % BUCKETS) % BUCKETS + BUCKETS * j
        };
        let mut fake: Vec<u32> = (0..1000).map(|i| 5_000_000 + i).collect();
        for j in 0..20 {
            fake.push(same_bucket(kept.pgid(), j));
            fake.push(same_bucket(forgotten.pgid(), j));
        }
        fake.sort_unstable();
        fake.dedup();
        assert!(fake
            .iter()
            .all(|f| *f > 4_194_304 && f.to_string().len() == 7));
        assert_eq!(same_bucket(kept.pgid(), 3) % BUCKETS, kept.pgid() % BUCKETS);
        for p in &fake[..fake.len() / 2] {
            lines.push_str(&format!("+{p}\n"));
        }
        lines.push_str(&format!("+{}\n+{}\n", forgotten.pgid(), kept.pgid()));
        for p in &fake[fake.len() / 2..] {
            lines.push_str(&format!("+{p}\n"));
        }
        for i in 0..fake.len() {
            lines.push_str(&format!("-{}\n", fake[(i * 7919) % fake.len()]));
        }
        lines.push_str(&format!(
            "-{}\n+\n-\n+12a\nx\n+1 2\n+{}\n-424242\n",
            forgotten.pgid(),
            kept.pgid()
        ));
        run_guard(guard_command().0, &lines);
        wait_exited(&mut kept);
        assert!(!forgotten.killed(), "a forgotten group was killed");
    }

    /// Variables the guard did not set cannot add a group, hide one, or reach `kill -9 -1`: not a
    /// multi-line value that looks like a registration, nor an index or slot of its own naming.
    #[test]
    fn variables_from_outside_neither_add_nor_hide_a_group() {
        let mut kept = Group::start();
        let mut bystander = Group::start();
        let (k, b) = (kept.pgid(), bystander.pgid());
        let (mut cmd, _) = guard_command();
        cmd.env(format!("b{}", b % BUCKETS), format!(" {b}"))
            .env("v", format!(" {b}"))
            .env("i", (b % BUCKETS).to_string())
            .env("ML", format!("x\nb{}= {b}\n", b % BUCKETS));
        // Groups 0 and 1 and a leading zero are refused: `kill -9 -1` would reach every process.
        run_guard(cmd, &format!("+0\n+1\n+0{b}\n+{k}\n"));
        wait_exited(&mut kept);
        assert!(
            !bystander.killed(),
            "a group named only from outside was killed"
        );
    }

    /// A guard running a stand-in program, killed (and reaped by its writer thread) at the end.
    struct StandIn(GroupGuard);
    impl Drop for StandIn {
        fn drop(&mut self) {
            // SAFETY: signals the stand-in, a child of this process that has not been reaped.
            unsafe { libc::kill(self.0.pid() as i32, libc::SIGKILL) };
            // The next write fails once its read end is closed: the writer thread then reaps it.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.0.pipe.backlog.lock().unwrap().gone && Instant::now() < deadline {
                self.0.unregister(0);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Registering does not hand the line to another thread to write some time later: when it
    /// returns, the guard can read it, so a daemon killed right after a start still takes that group.
    #[test]
    fn a_group_is_in_the_pipe_when_register_returns() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60"); // never reads: whatever is written stays in the pipe
        let guard = StandIn(GroupGuard::start_with(cmd, false).unwrap());
        guard.0.register(4242);
        assert_eq!(guard.0.in_pipe(), "+4242\n".len());
        guard.0.unregister(4242);
        assert_eq!(guard.0.in_pipe(), "+4242\n-4242\n".len());
    }

    /// When the guard is behind and its pipe is full, registering still returns at once, and every
    /// line reaches the guard later, in order.
    #[test]
    fn lines_beyond_a_full_pipe_wait_in_order_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (gate, out) = (dir.path().join("gate"), dir.path().join("out"));
        let gate_c = std::ffi::CString::new(gate.to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(gate_c.as_ptr(), 0o600) }, 0);
        let mut cmd = Command::new("/bin/sh");
        // Reads nothing until the test opens the gate, then copies every line to `out`.
        cmd.args(["-c", r#"read -r go < "$1"; exec cat > "$2""#, "sh"])
            .arg(&gate)
            .arg(&out);
        let guard = StandIn(GroupGuard::start_with(cmd, false).unwrap());
        let mut expected = String::new();
        for pgid in 100_000..110_000 {
            expected.push_str(&format!("+{pgid}\n-{pgid}\n"));
        }
        assert!(expected.len() > 2 * 65_536, "more than a pipe holds");
        let sender = guard.0.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for pgid in 100_000..110_000 {
                sender.register(pgid);
                sender.unregister(pgid);
            }
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("registering blocked on a full pipe");
        assert!(guard.0.in_pipe() > 0 && guard.0.in_pipe() < expected.len());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&gate)
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = std::fs::read_to_string(&out).unwrap_or_default();
            if got.len() >= expected.len() {
                assert!(got == expected, "the lines arrived out of order or changed");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} bytes arrived",
                got.len(),
                expected.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
