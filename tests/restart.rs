//! The real daemon killed and started again: detached processes adopted, the others restarted, stops
//! kept; two daemons on two sockets of one folder share nothing; a stop leaves no grandchild behind.

mod common;

use std::time::Duration;

use common::{alive, stdout, wait_for, Daemon};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

fn pid_of(v: &Value) -> i32 {
    v["pid"].as_i64().unwrap_or(0) as i32
}

/// Has `d` kill `pid`'s group when dropped (never 0 or less: that would be the test's own group).
fn track(d: &mut Daemon, pid: i32) {
    if pid > 0 {
        d.extra_groups.push(pid);
    }
}

fn start(d: &Daemon, args: &[&str]) {
    let out = d.pmclient(&[&["start"], args].concat());
    assert!(
        out.status.success(),
        "start {args:?}: {}",
        common::stderr(&out)
    );
}

/// SIGKILL to the daemon, and wait for it.
fn crash(d: &mut Daemon) {
    let child = d.child.as_mut().unwrap();
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    d.child = None;
}

#[test]
fn a_killed_daemon_comes_back_with_every_process() {
    let mut d = Daemon::start();
    start(
        &d,
        &[
            "--name",
            "web",
            "--command",
            "exec sleep 300",
            "--detach",
            "--log",
        ],
    );
    start(&d, &["--name", "job", "--command", "exec sleep 300"]);
    start(&d, &["--name", "idle", "--command", "exec sleep 300"]);
    assert!(d.pmclient(&["stop", "--name", "idle"]).status.success());
    let web = pid_of(&d.status_json("web"));
    let job = pid_of(&d.status_json("job"));
    d.extra_groups.extend([web, job]);

    crash(&mut d);
    // The group guard kills the non-detached group; the detached one lives on.
    wait_for(
        "the non-detached child to go with the daemon",
        Duration::from_secs(20),
        || !alive(job),
    );
    assert!(alive(web));
    let saved = std::fs::read_to_string(d.dir.path().join("pm.sock.d/state.json")).unwrap();
    let saved: Value = serde_json::from_str(&saved).expect("the state file is whole");
    assert_eq!(saved["processes"].as_array().unwrap().len(), 3);

    d.launch(&[], true);
    let w = d.status_json("web");
    assert_eq!(
        (w["status"].as_str(), pid_of(&w)),
        (Some("running"), web),
        "adopted"
    );
    let j = d.status_json("job");
    track(&mut d, pid_of(&j));
    assert_eq!(j["status"].as_str(), Some("running"));
    assert_ne!(pid_of(&j), job);
    assert_eq!(
        j["restarts"].as_i64(),
        Some(1),
        "started again, counted as a restart"
    );
    assert_eq!(d.status_json("idle")["status"].as_str(), Some("stopped"));

    // A clean stop of the daemon leaves the detached one running, and the next daemon adopts it again.
    assert!(d.terminate(Duration::from_secs(30)).success());
    d.child = None;
    assert!(alive(web) && !alive(pid_of(&j)));
    d.launch(&[], true);
    assert_eq!(pid_of(&d.status_json("web")), web);
    let j2 = d.status_json("job");
    track(&mut d, pid_of(&j2));
    assert_eq!(
        j2["status"].as_str(),
        Some("running"),
        "wanted processes come back after a clean stop too"
    );
    assert!(d.pmclient(&["kill", "--name", "web"]).status.success());
    assert!(!alive(web));
}

#[test]
fn two_daemons_on_two_sockets_of_one_folder_share_nothing() {
    let mut a = Daemon::unstarted();
    a.socket = a.dir.path().join("a.sock");
    a.launch(&[], true);
    start(
        &a,
        &["--name", "mine", "--command", "exec sleep 300", "--detach"],
    );
    let mine = pid_of(&a.status_json("mine"));
    track(&mut a, mine);

    let mut b = Daemon::unstarted();
    b.socket = a.dir.path().join("b.sock");
    b.stderr_file = a.dir.path().join("b.stderr");
    b.launch(&[], true);
    let out = b.pmclient(&["list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{}", stdout(&out));
    start(&b, &["--name", "mine", "--command", "exec sleep 300"]);
    let theirs = pid_of(&b.status_json("mine"));
    track(&mut b, theirs);
    assert!(a.dir.path().join("a.sock.d/state.json").exists());
    assert!(a.dir.path().join("b.sock.d/state.json").exists());

    // B's restart brings back B's process only; A's detached one stays A's.
    assert!(b.terminate(Duration::from_secs(30)).success());
    b.child = None;
    b.launch(&[], true);
    let names: Vec<String> = {
        let out = b.pmclient(&["list", "--format", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names, ["mine"]);
    assert_ne!(pid_of(&b.status_json("mine")), mine);
    assert_eq!(pid_of(&a.status_json("mine")), mine);
    assert!(a.pmclient(&["kill", "--name", "mine"]).status.success());
}

#[test]
fn a_stop_leaves_none_of_fifty_grandchildren_that_ignore_sigterm() {
    let d = Daemon::start();
    let script =
        "trap '' TERM; for i in $(seq 50); do sh -c 'trap \"\" TERM; exec sleep 300' & done; wait";
    start(
        &d,
        &["--name", "brood", "--command", script, "--grace", "1s"],
    );
    let pgid = pid_of(&d.status_json("brood"));
    let mut cleanup = Daemon::unstarted();
    track(&mut cleanup, pgid);
    wait_for("fifty grandchildren", Duration::from_secs(20), || {
        group_members(pgid).len() == 51
    });
    let out = d.pmclient(&["stop", "--name", "brood"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        group_members(pgid),
        Vec::<i32>::new(),
        "nothing of the group is left"
    );
    assert_eq!(d.status_json("brood")["status"].as_str(), Some("stopped"));
}

/// Live (non-zombie) processes of group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    pm_actors::process::procfs::scan_all()
        .filter(|(_, st)| st.pgrp == pgid && st.state != 'Z')
        .map(|(pid, _)| pid)
        .collect()
}
