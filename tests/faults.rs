//! Fault tests with the real daemon: a SIGKILL during a burst of starts, a full log disk, a low file
//! descriptor limit, a process limit. Most are slow or need root (mount, prlimit, another user), so
//! ignored by default; run them with
//!
//! ```sh
//! cargo test -p processmanager --test faults -- --ignored --test-threads=1
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{alive, wait_for, Daemon, Raw};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn list(d: &Daemon) -> Vec<Value> {
    let out = d.pmclient(&["list", "--format", "json"]);
    assert!(out.status.success(), "list: {}", common::stderr(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn pid_of(v: &Value) -> i32 {
    v["pid"].as_i64().unwrap_or(0) as i32
}

/// Has `d` kill `pid`'s group when dropped (never 0 or less: that would be the test's own group).
fn track(d: &mut Daemon, pid: i32) {
    if pid > 0 {
        d.extra_groups.push(pid);
    }
}

/// The next frame's body, or `None` when the daemon closed the connection first.
fn body_or_closed(s: &mut Raw) -> Option<String> {
    let mut body = String::new();
    let first = s.line();
    if !first.starts_with("**RESULT**") {
        return None;
    }
    loop {
        let l = s.line();
        if l.is_empty() {
            return None;
        }
        if l == "**ENDRESULT**\n" {
            return Some(body);
        }
        body.push_str(&l);
    }
}

/// Live processes whose environment names `state_file`, by the process name they carry.
fn marked(state_file: &Path) -> BTreeMap<String, Vec<i32>> {
    let want = format!("PROCESSMANAGER_STATE={}", state_file.display());
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        if !vars.contains(&want.as_bytes()) || !alive(pid) {
            continue;
        }
        let name = vars.iter().find_map(|v| {
            std::str::from_utf8(v)
                .ok()?
                .strip_prefix("PROCESSMANAGER_NAME=")
                .map(str::to_string)
        });
        if let Some(name) = name {
            out.entry(name).or_default().push(pid);
        }
    }
    out
}

#[test]
#[ignore = "slow: 100 starts, a SIGKILL and a restart; run with --ignored"]
fn a_sigkill_during_a_burst_of_100_starts_loses_nothing_and_runs_nothing_twice() {
    let mut d = Daemon::start();
    let state_file = d.dir.path().join("pm.sock.d/state.json");
    let answered = Arc::new(Mutex::new(BTreeSet::new()));
    let clients: Vec<_> = (0..10)
        .map(|t| {
            let mut s = d.session();
            let answered = answered.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    let n = t * 10 + i;
                    // Even: detached (outlives the daemon); odd: dies with it.
                    let detach = if n % 2 == 0 { " detach:true" } else { "" };
                    let start =
                        format!("!!process.start name:'p{n}' command:'exec sleep 300'{detach}\n\n");
                    // The daemon may be killed between two starts: a refused write is its end.
                    if s.stream.write_all(start.as_bytes()).is_err() {
                        return;
                    }
                    match body_or_closed(&mut s) {
                        Some(b) if b.contains("started successfully") => {
                            answered.lock().unwrap().insert(format!("p{n}"));
                        }
                        Some(b) => panic!("p{n}: {b}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    wait_for("30 answered starts", Duration::from_secs(60), || {
        answered.lock().unwrap().len() >= 30
    });
    let daemon = d.child.as_mut().unwrap();
    let _ = kill(Pid::from_raw(daemon.id() as i32), Signal::SIGKILL);
    let _ = daemon.wait();
    d.child = None;
    for c in clients {
        c.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    wait_for(
        "the guard to end the non-detached",
        Duration::from_secs(20),
        || {
            marked(&state_file)
                .keys()
                .all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0)
        },
    );
    let survivors = marked(&state_file);
    for &pid in survivors.values().flatten() {
        d.extra_groups.push(pid);
    }
    for (name, pids) in &survivors {
        assert_eq!(pids.len(), 1, "{name} runs {} times", pids.len());
    }
    let text = std::fs::read_to_string(&state_file).unwrap();
    let saved: Value =
        serde_json::from_str(&text).expect("the state file is whole after a SIGKILL");
    eprintln!(
        "killed after {} answers; {} defined on file; {} detached alive",
        answered.len(),
        saved["processes"].as_array().unwrap().len(),
        survivors.len()
    );

    d.launch(&[], true);
    let listed: BTreeMap<String, Value> = list(&d)
        .into_iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p))
        .collect();
    for p in listed.values() {
        track(&mut d, pid_of(p));
    }
    for name in &answered {
        assert!(
            listed.contains_key(name),
            "{name} was answered but is unknown"
        );
    }
    for (name, pids) in &survivors {
        let p = listed
            .get(name)
            .unwrap_or_else(|| panic!("{name} runs but is unknown"));
        assert_eq!(pid_of(p), pids[0], "{name} adopted with its pid");
    }
    wait_for(
        "every defined process running",
        Duration::from_secs(30),
        || list(&d).iter().all(|p| p["status"] == "running"),
    );
    let now = marked(&state_file);
    for p in list(&d) {
        track(&mut d, pid_of(&p));
    }
    for (name, pids) in &now {
        assert_eq!(
            pids.len(),
            1,
            "{name} runs {} times after the restart",
            pids.len()
        );
        assert!(listed.contains_key(name), "{name} runs unmanaged");
    }
    assert_eq!(now.len(), listed.len());
}

/// Unmounts on drop (lazily: whatever still holds a file there lets go later).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
#[ignore = "needs root to mount a 64 KiB tmpfs; run with --ignored"]
fn a_full_log_disk_is_reported_while_the_child_and_the_daemon_go_on() {
    let mut d = Daemon::unstarted();
    let logs = d.dir.path().join("small-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&logs)
        .status()
        .unwrap();
    assert!(ok.success(), "mount a tmpfs (root needed)");
    let _mount = Mount(logs.clone());
    let conf = d.dir.path().join("pm.conf");
    std::fs::write(
        &conf,
        format!("log-dir: {}\nstatus-interval-ms: 100\n", logs.display()),
    )
    .unwrap();
    d.launch(&["--config", conf.to_str().unwrap()], true);
    let line = "x".repeat(100);
    let out = d.pmclient(&[
        "start",
        "--name",
        "chatty",
        "--log",
        "--command",
        &format!("i=0; while :; do i=$((i+1)); echo \"$i {line}\"; sleep 0.002; done"),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let pid = pid_of(&d.status_json("chatty"));
    track(&mut d, pid);
    wait_for(
        "the full disk in the status",
        Duration::from_secs(30),
        || {
            let e = d.status_json("chatty")["error"]
                .as_str()
                .unwrap_or("")
                .to_string();
            e.contains("cannot write log file") && e.contains("No space left")
        },
    );
    let s = d.status_json("chatty");
    assert_eq!((s["status"].as_str(), pid_of(&s)), (Some("running"), pid));
    // Output still reaches the ring, and the daemon answers everyone.
    let last = |d: &Daemon| {
        let out = d.pmclient(&["logs", "--name", "chatty", "--lines", "1"]);
        common::stdout(&out)
    };
    let before = last(&d);
    wait_for("new lines in the ring", Duration::from_secs(10), || {
        last(&d) != before
    });
    assert_eq!(list(&d).len(), 1);
    // Room again: writing resumes and the error clears.
    for e in std::fs::read_dir(&logs).unwrap().flatten() {
        std::fs::File::create(e.path()).unwrap();
    }
    wait_for("the error to clear", Duration::from_secs(30), || {
        d.status_json("chatty")["error"].as_str() == Some("")
    });
    assert!(d.pmclient(&["kill", "--name", "chatty"]).status.success());
    assert!(d.terminate(Duration::from_secs(30)).success());
}

/// Sets the soft limit `resource` (`nofile`, `nproc`) of `pid` with prlimit(1), as `user` (the
/// daemon's own user: root here lacks CAP_SYS_RESOURCE, so only the owner may change it, and only
/// below the hard limit, which is left alone).
fn set_limit(pid: i32, resource: &str, soft: u64, user: Option<u32>) {
    let mut cmd = match user {
        Some(uid) => {
            let mut c = std::process::Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .arg("--clear-groups")
                .arg("prlimit");
            c
        }
        None => std::process::Command::new("prlimit"),
    };
    let out = cmd
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--{resource}={soft}:"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A daemon, a session on it, and its pid, running one process `warm`.
fn daemon_with_a_warm_process() -> (Daemon, Raw, i32) {
    let mut d = Daemon::start();
    let mut s = d.session();
    let pid = d.pid();
    s.send("!!process.start name:'warm' command:'exec sleep 300'\n\n");
    assert!(body_or_closed(&mut s).is_some_and(|b| b.contains("started successfully")));
    let warm = pid_of(&d.status_json("warm"));
    track(&mut d, warm);
    (d, s, pid)
}

/// Sends `script(i)` for i = 0, 1, ... up to `max` starts, one at a time, until one is not started;
/// answers the names started (the first quoted word of each script) and the refusal. Every process listed then is killed with `d`.
fn start_until_refused(
    d: &mut Daemon,
    s: &mut Raw,
    max: usize,
    script: impl Fn(usize) -> String,
) -> (Vec<String>, Option<String>) {
    let mut started = Vec::new();
    let mut refusal = None;
    for i in 0..max {
        let text = script(i);
        s.send(&format!("{text}\n\n"));
        let body = body_or_closed(s).expect("the daemon answers at its fd limit");
        if body.contains("started successfully") {
            let name = text.split('\'').nth(1).unwrap_or_default();
            started.push(name.to_string());
        } else {
            refusal = Some(body);
            break;
        }
    }
    for p in list(d) {
        track(d, pid_of(&p));
    }
    (started, refusal)
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
#[ignore = "lowers the daemon's fd limit with prlimit; run with --ignored"]
fn a_low_fd_limit_fails_starts_clearly_and_the_daemon_recovers() {
    // The first start sets up what every later start shares (the group guard's pipe, the spawner's
    // reserved descriptors): count from after it.
    let (mut d, mut s, pid) = daemon_with_a_warm_process();
    assert!(d.pmclient(&["delete", "--name", "warm"]).status.success());
    let base = open_fds(pid);
    // About 16 of its own, and 32 the spawner keeps for its 8 kits (4 each: see clone_exec.rs).
    assert!(base < 56, "the daemon starts with {base} fds");
    set_limit(pid, "nofile", 64, None);
    let (started, refusal) = start_until_refused(&mut d, &mut s, 64, |i| {
        format!("!!process.start name:'f{i}' command:'exec sleep 300' log:true")
    });
    let refusal = refusal.expect("a start fails once the fds run out");
    eprintln!(
        "{} starts before the limit; refusal: {refusal}",
        started.len()
    );
    assert!(
        refusal.contains("Too many open files") || refusal.contains("os error 24"),
        "{refusal}"
    );
    // Still answering on the open session.
    s.send("!!process.list\n\n");
    assert!(body_or_closed(&mut s).is_some());
    // Resources come back: new connections, new starts.
    set_limit(pid, "nofile", 4096, None);
    let out = d.pmclient(&[
        "start",
        "--name",
        "after",
        "--command",
        "exec sleep 300",
        "--log",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let after = pid_of(&d.status_json("after"));
    track(&mut d, after);
    for name in started.iter().chain([&"after".to_string()]) {
        assert!(d.pmclient(&["delete", "--name", name]).status.success());
    }
    // Whatever was opened for the failed start is closed again.
    wait_for("fds back near the start", Duration::from_secs(20), || {
        open_fds(pid) <= base + 4
    });
    assert!(d.terminate(Duration::from_secs(30)).success());
}

#[test]
fn a_start_near_the_fd_limit_is_refused_with_a_sentence_that_says_so() {
    let (mut d, mut s, pid) = daemon_with_a_warm_process();
    // Room for a few processes above what the daemon holds now (its own limit lowered, as an
    // administrator's ulimit would be).
    let limit = open_fds(pid) + 40;
    set_limit(pid, "nofile", limit as u64, None);
    let (started, refusal) = start_until_refused(&mut d, &mut s, 40, |i| {
        format!("!!process.start name:'n{i}' program:'sleep' args:'300'")
    });
    let refusal = refusal.expect("a start is refused before the fds run out");
    assert!(started.len() >= 3, "refused too early: {refusal}");
    assert!(
        refusal.contains("Too many open files for another process")
            && refusal.contains(&format!("of its {limit} descriptors"))
            && refusal.contains("ulimit -n"),
        "{refusal}"
    );
    // Refused with room to spare: new connections are still served.
    let out = d.pmclient(&["status", "--name", "warm"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    for name in started.iter().chain([&"warm".to_string()]) {
        assert!(d.pmclient(&["delete", "--name", name]).status.success());
    }
    assert!(d.terminate(Duration::from_secs(30)).success());
}

#[test]
#[ignore = "runs the daemon as nobody under RLIMIT_NPROC (root ignores that limit); run with --ignored"]
fn fork_failures_are_clear_errors_and_the_daemon_recovers() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = Daemon::unstarted();
    // nobody must reach the socket folder.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let mut cmd = std::process::Command::new(common::DAEMON);
    cmd.arg("--socket")
        .arg(&d.socket)
        .env("PM_SECRET", common::SECRET);
    let stderr = std::fs::File::create(&d.stderr_file).unwrap();
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    {
        use std::os::unix::process::CommandExt;
        cmd.uid(nobody.uid.as_raw())
            .gid(nobody.gid.as_raw())
            .process_group(0);
    }
    d.child = Some(cmd.spawn().unwrap());
    let socket = d.socket.clone();
    wait_for("the daemon as nobody", Duration::from_secs(20), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    let pid = d.pid();
    let mut s = d.session();
    // Let the runtime's threads settle, then allow nobody two more tasks than it has.
    let tasks = || -> u64 {
        let mut n = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(st) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let field = |k: &str| {
                st.lines()
                    .find(|l| l.starts_with(k))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if field("Uid:") == Some(nobody.uid.as_raw() as u64) {
                n += field("Threads:").unwrap_or(1);
            }
        }
        n
    };
    let limit = tasks() + 2;
    set_limit(pid, "nproc", limit, Some(nobody.uid.as_raw()));
    let mut refusal = None;
    let mut started = Vec::new();
    for i in 0..10 {
        s.send(&format!(
            "!!process.start name:'n{i}' command:'exec sleep 300'\n\n"
        ));
        let body = body_or_closed(&mut s).expect("the daemon answers at its process limit");
        if body.contains("started successfully") {
            started.push(format!("n{i}"));
        } else {
            refusal = Some(body);
            break;
        }
    }
    for p in list(&d) {
        track(&mut d, pid_of(&p));
    }
    let refusal = refusal.expect("a start fails once fork does");
    eprintln!(
        "{} starts before the limit; refusal: {refusal}",
        started.len()
    );
    // The refusal names the limit the fork met.
    assert!(
        refusal.contains("cannot create a process (EAGAIN)") && refusal.contains("RLIMIT_NPROC"),
        "{refusal}"
    );
    s.send("!!process.list\n\n");
    assert!(body_or_closed(&mut s).is_some(), "still answering");
    set_limit(pid, "nproc", 50_000, Some(nobody.uid.as_raw()));
    s.send("!!process.start name:'after' command:'exec sleep 300'\n\n");
    let body = body_or_closed(&mut s).unwrap();
    assert!(body.contains("started successfully"), "{body}");
    let after = pid_of(&d.status_json("after"));
    track(&mut d, after);
    assert!(d.terminate(Duration::from_secs(30)).success());
}
