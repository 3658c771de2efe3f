//! A real daemon in a temporary directory, its own socket, and a guard that leaves nothing running.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

pub const SECRET: &str = "test-secret";
pub const DAEMON: &str = env!("CARGO_BIN_EXE_processmanager");
pub const PMCLIENT: &str = env!("CARGO_BIN_EXE_pmclient");

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A daemon process; dropping it stops it (SIGTERM, then SIGKILL) and kills any pid it was told about.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub stderr_file: PathBuf,
    /// Process groups the test started itself or learned about; killed on drop.
    pub extra_groups: Vec<i32>,
}

impl Daemon {
    /// A daemon on a fresh socket with the secret in PM_SECRET.
    pub fn start() -> Daemon {
        Daemon::start_with(&[], true)
    }

    /// A daemon with extra flags; `with_env_secret` puts [`SECRET`] in PM_SECRET.
    pub fn start_with(extra: &[&str], with_env_secret: bool) -> Daemon {
        let mut d = Daemon::unstarted();
        d.launch(extra, with_env_secret);
        d
    }

    /// The directory and socket path of a daemon that is not running yet.
    pub fn unstarted() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Daemon {
            child: None,
            stderr_file: dir.path().join("daemon.stderr"),
            socket: dir.path().join("pm.sock"),
            dir,
            extra_groups: Vec::new(),
        }
    }

    /// Starts the daemon on this socket and waits until the socket answers.
    pub fn launch(&mut self, extra: &[&str], with_env_secret: bool) {
        let socket = self.socket.to_str().unwrap().to_string();
        let mut args = vec!["--socket", socket.as_str()];
        args.extend_from_slice(extra);
        self.launch_with_args(&args, with_env_secret);
    }

    /// Starts the daemon with exactly these arguments and waits until this socket answers.
    pub fn launch_with_args(&mut self, args: &[&str], with_env_secret: bool) {
        let child = self.spawn_with_args(args, with_env_secret);
        self.child = Some(child);
        let socket = self.socket.clone();
        wait_for("the daemon's socket", Duration::from_secs(20), || {
            UnixStream::connect(&socket).is_ok()
        });
    }

    /// Spawns the daemon binary on this daemon's socket (used for a second daemon too).
    pub fn spawn(&self, extra: &[&str], with_env_secret: bool) -> Child {
        let mut args = vec!["--socket", self.socket.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.spawn_with_args(&args, with_env_secret)
    }

    /// Spawns the daemon binary with exactly these arguments.
    pub fn spawn_with_args(&self, args: &[&str], with_env_secret: bool) -> Child {
        let mut cmd = Command::new(DAEMON);
        cmd.args(args);
        cmd.env_remove("PM_SECRET").env("RUST_LOG", "info");
        if with_env_secret {
            cmd.env("PM_SECRET", SECRET);
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_file)
            .unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        cmd.process_group(0);
        cmd.spawn().unwrap()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// Runs pmclient against this daemon with the secret in PM_SECRET.
    /// `pmclient status --name <name> --format json`, which must succeed, as JSON.
    pub fn status_json(&self, name: &str) -> serde_json::Value {
        let out = self.pmclient(&["status", "--name", name, "--format", "json"]);
        assert!(out.status.success(), "status {name}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn pmclient(&self, args: &[&str]) -> Output {
        self.pmclient_cmd(args).output().unwrap()
    }

    pub fn pmclient_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PMCLIENT);
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd.env("PM_SECRET", SECRET);
        cmd
    }

    /// A raw connection, with a read timeout so a test never hangs.
    pub fn raw(&self) -> Raw {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw {
            reader: BufReader::new(s.try_clone().unwrap()),
            stream: s,
        }
    }

    /// An authenticated raw connection.
    pub fn session(&self) -> Raw {
        let mut r = self.raw();
        assert_eq!(
            r.line(),
            " ** Welcome: you are not authenticated, provide secret.\n"
        );
        r.send(&format!("{SECRET}\n"));
        assert_eq!(r.line(), " ** Welcome: you are authenticated.\n");
        r
    }

    /// Sends SIGTERM and waits (up to `limit`) for the exit.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pids of every managed process (from `list --format json`).
    pub fn pids(&self) -> Vec<i32> {
        let out = self.pmclient(&["list", "--format", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["pid"].as_i64())
                    .filter(|p| *p > 0)
                    .map(|p| p as i32)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let mut pids = Vec::new();
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                pids = self.pids();
            }
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        // Detached children outlive their daemon on purpose, also when a test fails before it
        // recorded them: every one carries this socket's state file in its environment.
        let state_file = PathBuf::from(format!("{}.d/state.json", self.socket.display()));
        let detached = pm_actors::registry::detached_children(&state_file);
        let detached = detached.into_iter().map(|(pid, _)| pid);
        for pid in pids
            .into_iter()
            .chain(self.extra_groups.iter().copied())
            .chain(detached)
        {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A raw socket conversation.
pub struct Raw {
    pub stream: UnixStream,
    pub reader: BufReader<UnixStream>,
}

impl Raw {
    pub fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap();
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One line with its newline ("" at the end of the connection).
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            // A daemon killed with unread input resets the connection: that too is its end.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => buf.clear(),
            other => {
                other.unwrap();
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// One whole frame, `**RESULT**` to `**ENDRESULT**`, as bytes on the wire.
    pub fn frame(&mut self) -> String {
        let mut out = self.line();
        assert!(out.starts_with("**RESULT**"), "not a frame: {out:?}");
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed inside a frame: {out}");
            out.push_str(&l);
            if l == "**ENDRESULT**\n" {
                return out;
            }
        }
    }

    /// The body of the next frame.
    pub fn body(&mut self) -> String {
        let f = self.frame();
        let start = f.find('\n').unwrap() + 1;
        f[start..f.len() - "**ENDRESULT**\n".len()].to_string()
    }

    /// Everything until the daemon closes the connection.
    pub fn rest(&mut self) -> String {
        let mut s = String::new();
        let _ = self.reader.read_to_string(&mut s);
        s
    }
}

/// Whether a process (not a zombie of ours) exists.
pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Field 3 is the state; a zombie is as good as gone.
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
}

/// Runs pmclient, which must succeed, and answers its stdout.
pub fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.pmclient(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A cgroup-mode round the daemon did not run in (`why`, from its log): skipped with the reason where
/// this machine offers no writable cgroup v2, but a failure where it does, for then a daemon that fell
/// back to process groups is broken, not excused.
pub fn skip_cgroup_mode(why: &str) {
    if let Ok(place) = pm_actors::process::cgroup::place() {
        panic!(
            "the daemon ran in group mode ({why}), though {} is writable here",
            place.parent.display()
        );
    }
    eprintln!("skipped: the daemon runs in group mode here ({why})");
}
