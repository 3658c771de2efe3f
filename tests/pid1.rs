//! The daemon as the first process of a PID namespace (`unshare --pid --fork --mount-proc`, as in a
//! container): it runs processes, takes up the orphans of a double fork, leaves no zombie, reloads on
//! SIGHUP and takes everything down on SIGTERM, exiting 0. And `--log-stdout` / `log-stdout: true`:
//! every captured line on the daemon's stdout as `name | line`.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ok, wait_for, Daemon, DAEMON, SECRET};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Why a PID namespace cannot be made here, if it cannot.
fn no_pid_namespace() -> Option<String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Err(e) => Some(format!("unshare (util-linux) cannot be run: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "unshare --pid --fork --mount-proc is not permitted here: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

/// Collects a child's stdout on a thread, to be read while it runs.
fn collect(mut out: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let into = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

/// Runs `program` (the daemon, or a wrapper that runs it) for `d` and waits for its socket; answers
/// its stdout as it comes.
fn launch_reading_stdout(d: &mut Daemon, program: &str, args: &[&str]) -> Arc<Mutex<String>> {
    let stderr = std::fs::File::create(&d.stderr_file).unwrap();
    let mut child = Command::new(program)
        .args(args)
        .env("PM_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    d.child = Some(child);
    let socket = d.socket.clone();
    wait_for("the daemon's socket", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    out
}

/// The processes whose command line holds `needle`, with their parent's pid.
fn with_cmdline(needle: &str) -> Vec<(i32, i32)> {
    pm_actors::process::procfs::scan_all()
        .filter(|(pid, s)| {
            s.state != 'Z'
                && pm_actors::process::procfs::read_cmdline(*pid)
                    .join(" ")
                    .contains(needle)
        })
        .map(|(pid, s)| (pid, s.ppid))
        .collect()
}

/// The children of `pid` that are zombies.
fn zombie_children(pid: i32) -> Vec<i32> {
    pm_actors::process::procfs::scan_all()
        .filter(|(_, s)| s.ppid == pid && s.state == 'Z')
        .map(|(p, _)| p)
        .collect()
}

/// `unshare`'s child, the daemon, as this (outer) namespace numbers it.
fn daemon_in(unshare: &Child) -> Option<i32> {
    let pid = unshare.id() as i32;
    pm_actors::process::procfs::scan_all()
        .find(|(_, s)| s.ppid == pid)
        .map(|(p, _)| p)
}

#[test]
fn as_pid_1_it_runs_adopts_reaps_and_shuts_down_cleanly() {
    if let Some(why) = no_pid_namespace() {
        println!("skipped: {why}");
        return;
    }
    let mut d = Daemon::unstarted();
    let socket = d.socket.display().to_string();
    let args = [
        "--pid",
        "--fork",
        "--mount-proc",
        DAEMON,
        "--log-stdout",
        "--socket",
        &socket,
    ];
    let out = launch_reading_stdout(&mut d, "unshare", &args);
    let daemon = daemon_in(d.child.as_ref().unwrap()).expect("the daemon under unshare");

    // It is pid 1 where its processes live, and their output reaches its stdout.
    ok(
        &d,
        &[
            "start",
            "--name",
            "who",
            "--command",
            "echo \"pid1=$(cat /proc/1/comm)\"; sleep 4243100",
        ],
    );
    wait_for("the echoed line", Duration::from_secs(20), || {
        out.lock().unwrap().contains("who | pid1=processmanager\n")
    });

    // A double fork: the orphan is the daemon's (pid 1's) child now, and reaped when it ends.
    ok(
        &d,
        &[
            "start",
            "--name",
            "orphan",
            "--command",
            "(sleep 4243101 &); exec sleep 4243102",
        ],
    );
    wait_for(
        "the orphan under the daemon",
        Duration::from_secs(20),
        || {
            with_cmdline("sleep 4243101")
                .iter()
                .any(|&(_, ppid)| ppid == daemon)
        },
    );
    // Orphans that exit at once: none stays a zombie.
    ok(
        &d,
        &[
            "start",
            "--name",
            "brief",
            "--command",
            "for i in 1 2 3 4 5; do (true &); done; (sleep 0.2 &); exit 0",
        ],
    );
    wait_for(
        "no zombie under the daemon",
        Duration::from_secs(20),
        || {
            zombie_children(daemon).is_empty()
                && d.status_json("brief")["status"].as_str() != Some("running")
        },
    );

    // SIGHUP reloads (pid 1 ignores signals it does not handle: this one is handled).
    kill(Pid::from_raw(daemon), Signal::SIGHUP).unwrap();
    wait_for("the reload", Duration::from_secs(20), || {
        d.stderr().contains("SIGHUP: re-reading")
    });
    ok(&d, &["status", "--name", "who"]);

    // SIGTERM: every process stopped, exit code 0, nothing of the test left.
    kill(Pid::from_raw(daemon), Signal::SIGTERM).unwrap();
    let unshare = d.child.as_mut().unwrap();
    let mut status = None;
    wait_for("the daemon's exit", Duration::from_secs(30), || {
        status = unshare.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.unwrap().code(), Some(0), "{}", d.stderr());
    d.child = None;
    for needle in ["sleep 4243100", "sleep 4243101", "sleep 4243102"] {
        assert!(with_cmdline(needle).is_empty(), "{needle} survived");
    }
}

#[test]
fn log_stdout_in_pm_conf_prefixes_each_line_with_the_name() {
    let mut d = Daemon::unstarted();
    let conf = d.dir.path().join("pm.conf");
    std::fs::write(&conf, "log-stdout: true\n").unwrap();
    let (socket, conf) = (d.socket.display().to_string(), conf.display().to_string());
    let out = launch_reading_stdout(&mut d, DAEMON, &["--socket", &socket, "--config", &conf]);
    ok(
        &d,
        &[
            "start",
            "--name",
            "web",
            "--log",
            "--command",
            "echo 'GET / 200'; echo 'oops' >&2",
        ],
    );
    // A process that is not logged is shown too.
    ok(&d, &["start", "--name", "quiet", "--command", "echo hush"]);
    wait_for("both lines", Duration::from_secs(20), || {
        let text = out.lock().unwrap();
        text.contains("web | GET / 200\n")
            && text.contains("web | oops\n")
            && text.contains("quiet | hush\n")
    });
    // Beside the log file, as before.
    let logs = ok(&d, &["logs", "--name", "web"]);
    assert!(logs.contains("GET / 200"), "{logs}");
}
