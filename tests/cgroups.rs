//! Cgroup mode end to end: a child that left its process group is stopped through its cgroup, status
//! shows the containment, delete removes the cgroup, and the guard kills the cgroups of a daemon
//! killed by SIGKILL. Skipped, with the reason, where the daemon finds no writable cgroup v2.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

/// The cgroup of `name` from its status, or `None` (after printing why) when the daemon runs in
/// group mode here.
fn cgroup_of(d: &Daemon, name: &str) -> Option<PathBuf> {
    let v = d.status_json(name);
    if v["containment"] == "cgroup" {
        return Some(PathBuf::from(v["cgroup"].as_str().unwrap()));
    }
    assert_eq!(v["containment"], "group", "{v}");
    let why = d
        .stderr()
        .lines()
        .find(|l| l.contains("containment:"))
        .unwrap_or("no containment line")
        .to_string();
    skip_cgroup_mode(&why);
    None
}

fn procs(cgroup: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(cgroup.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Starts `name` running a shell whose `setsid` child leaves the process group; answers the
/// cgroup and its pids once both sleeps are in it.
fn start_escaper(d: &mut Daemon, name: &str) -> Option<(PathBuf, Vec<i32>)> {
    ok(
        d,
        &[
            "start",
            "--name",
            name,
            "--command",
            "setsid sleep 3601 & sleep 3602",
        ],
    );
    let cgroup = cgroup_of(d, name)?;
    let pids = three_in(d, &cgroup);
    Some((cgroup, pids))
}

/// Waits for the escaper's three processes in `cgroup` and answers them; whatever happens to the
/// test, nothing it started outlives it.
fn three_in(d: &mut Daemon, cgroup: &std::path::Path) -> Vec<i32> {
    let mut pids = Vec::new();
    wait_for(
        "three processes in the cgroup",
        Duration::from_secs(10),
        || {
            pids = procs(cgroup);
            pids.len() == 3
        },
    );
    d.extra_groups.extend(&pids);
    pids
}

#[test]
fn a_setsid_child_is_stopped_through_the_cgroup_and_delete_removes_it() {
    let mut d = Daemon::start_with(&["--cgroups", "auto"], true);
    let Some((cgroup, pids)) = start_escaper(&mut d, "esc") else {
        return;
    };
    assert!(cgroup.ends_with("guarded/esc"), "{}", cgroup.display());
    let text = ok(&d, &["status", "--name", "esc"]);
    assert!(text.contains("\nContainment: cgroup\n"), "{text}");
    // The stop answers once the cgroup is empty: the setsid child is gone with the rest.
    ok(&d, &["stop", "--name", "esc"]);
    assert!(procs(&cgroup).is_empty(), "{:?}", procs(&cgroup));
    wait_for("every pid gone", Duration::from_secs(10), || {
        pids.iter().all(|&p| !alive(p))
    });
    ok(&d, &["delete", "--name", "esc"]);
    wait_for("the cgroup removed", Duration::from_secs(10), || {
        !cgroup.exists()
    });
    // A clean shutdown removes the daemon's whole subtree.
    let subtree = cgroup.parent().unwrap().parent().unwrap().to_path_buf();
    d.terminate(Duration::from_secs(20));
    assert!(!subtree.exists(), "{}", subtree.display());
}

#[test]
fn the_guard_kills_the_cgroups_when_the_daemon_is_killed() {
    let mut d = Daemon::start_with(&["--cgroups", "auto"], true);
    let Some((cgroup, pids)) = start_escaper(&mut d, "orphaned") else {
        return;
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid()),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait_for(
        "the cgroup emptied by the guard",
        Duration::from_secs(10),
        || procs(&cgroup).is_empty(),
    );
    wait_for("every pid gone", Duration::from_secs(10), || {
        pids.iter().all(|&p| !alive(p))
    });
    // The daemon had no shutdown to remove its subtree: the test does.
    let guarded = cgroup.parent().unwrap();
    let subtree = guarded.parent().unwrap();
    for dir in [&cgroup, guarded, &subtree.join("detached"), subtree] {
        let _ = std::fs::remove_dir(dir);
    }
    assert!(!subtree.exists(), "{}", subtree.display());
}

/// A restart keeps the process's cgroup (made once, at the first start) and its new child is born
/// in it; delete still removes it.
#[test]
fn a_restart_keeps_the_cgroup_and_the_new_child_is_in_it() {
    let mut d = Daemon::start_with(&["--cgroups", "auto"], true);
    ok(
        &d,
        &[
            "start",
            "--name",
            "again",
            "--command",
            "sleep 3603",
            "--restarts",
            "-1",
        ],
    );
    let Some(cgroup) = cgroup_of(&d, "again") else {
        return;
    };
    let first = d.status_json("again")["pid"].as_i64().unwrap() as i32;
    d.extra_groups.push(first);
    assert_eq!(procs(&cgroup), vec![first]);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    );
    let mut second = 0;
    wait_for("the restart", Duration::from_secs(10), || {
        let v = d.status_json("again");
        second = v["pid"].as_i64().unwrap_or(0) as i32;
        v["status"] == "running" && second != first && second != 0
    });
    d.extra_groups.push(second);
    assert_eq!(cgroup_of(&d, "again"), Some(cgroup.clone()));
    wait_for(
        "the new child in the cgroup",
        Duration::from_secs(10),
        || procs(&cgroup) == vec![second],
    );
    ok(&d, &["delete", "--name", "again"]);
    wait_for("the cgroup removed", Duration::from_secs(10), || {
        !cgroup.exists()
    });
}

#[test]
fn cgroups_off_runs_in_process_groups() {
    let d = Daemon::start_with(&["--cgroups", "off"], true);
    ok(&d, &["start", "--name", "plain", "--command", "sleep 3603"]);
    let v = d.status_json("plain");
    assert_eq!(v["containment"], "group", "{v}");
    assert!(v.get("cgroup").is_none(), "{v}");
    let text = ok(&d, &["status", "--name", "plain"]);
    assert!(!text.contains("Containment"), "{text}");
    assert!(d
        .stderr()
        .contains("containment: process groups (cgroups are off"));
}

#[test]
fn a_bad_cgroups_mode_is_refused() {
    let d = Daemon::unstarted();
    let child = d.spawn(&["--cgroups", "sometimes"], true);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        d.stderr()
            .contains("cgroups must be 'auto' or 'off', not 'sometimes'"),
        "{}",
        d.stderr()
    );
}

/// The controller `c` is enabled for the processes' cgroups of daemon `d` (read from a cgroup of
/// its, as its start line names the subtree); `None` after printing why not.
fn controller_on(d: &Daemon, c: &str) -> Option<()> {
    ok(d, &["start", "--name", "probe", "--command", "sleep 3604"]);
    let cgroup = cgroup_of(d, "probe")?;
    ok(d, &["delete", "--name", "probe"]);
    let parent = cgroup.parent().unwrap();
    let on = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    if on.split_whitespace().any(|x| x == c) {
        return Some(());
    }
    let why = format!(
        "the cgroup v2 {c} controller is not enabled in {} here",
        parent.display()
    );
    // `.ci/cgroup-vm` boots a machine that has every controller: there a skip is a failure.
    assert!(std::env::var_os("PM_CGROUP_CONTROLLERS").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

#[test]
fn a_limit_without_its_controller_is_refused_with_the_reason() {
    let d = Daemon::start_with(&["--cgroups", "auto"], true);
    let Some(cgroup) = ({
        ok(&d, &["start", "--name", "probe", "--command", "sleep 3605"]);
        cgroup_of(&d, "probe")
    }) else {
        return;
    };
    let on = std::fs::read_to_string(cgroup.parent().unwrap().join("cgroup.subtree_control"))
        .unwrap_or_default();
    for (flag, value, controller) in [
        ("--memory-max", "512M", "memory"),
        ("--cpu-max", "150%", "cpu"),
        ("--pids-max", "200", "pids"),
    ] {
        if on.split_whitespace().any(|c| c == controller) {
            eprintln!("{controller} is enabled here: its refusal is not tested");
            continue;
        }
        let out = d.pmclient(&[
            "start",
            "--name",
            "lim",
            "--command",
            "sleep 3606",
            flag,
            value,
        ]);
        assert_ne!(out.status.code(), Some(0));
        let option = flag.trim_start_matches("--").replace('-', "_");
        let err = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            err.contains(&format!(
                "{option} needs the cgroup v2 {controller} controller, which is not enabled in"
            )),
            "{err}"
        );
        let v = d.status_json("lim");
        assert_eq!(v["status"], "failed", "{v}");
        ok(&d, &["delete", "--name", "lim"]);
    }
    // Group mode refuses every limit, and says why it runs without cgroups.
    let off = Daemon::start_with(&["--cgroups", "off"], true);
    let out = off.pmclient(&[
        "start",
        "--name",
        "lim",
        "--command",
        "sleep 3607",
        "--pids-max",
        "5",
    ]);
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        err.contains("pids_max needs a cgroup v2 pids controller, and this daemon runs without cgroups: cgroups are off"),
        "{err}"
    );
}

#[test]
fn memory_max_kills_a_program_past_it_and_says_so() {
    let d = Daemon::start_with(&["--cgroups", "auto"], true);
    if controller_on(&d, "memory").is_none() {
        return;
    }
    // A shell that doubles a string until the OOM killer ends it.
    let hog = "x=x; while :; do x=$x$x; done";
    ok(
        &d,
        &[
            "start",
            "--name",
            "hog",
            "--command",
            hog,
            "--memory-max",
            "32M",
        ],
    );
    wait_for("the OOM kill", Duration::from_secs(30), || {
        d.status_json("hog")["status"] == "failed"
    });
    let v = d.status_json("hog");
    assert_eq!(
        v["error"], "killed by the OOM killer (memory_max 32 MiB)",
        "{v}"
    );
    assert!(v["oom_kills"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert_eq!(v["memory_max"], 32u64 << 20);
}

#[test]
fn pids_max_stops_a_fork_bomb() {
    let d = Daemon::start_with(&["--cgroups", "auto"], true);
    if controller_on(&d, "pids").is_none() {
        return;
    }
    // Forks sleepers without end; the cgroup holds at most 20 of them.
    let bomb = "while :; do sleep 3608 & done";
    ok(
        &d,
        &[
            "start",
            "--name",
            "bomb",
            "--command",
            bomb,
            "--pids-max",
            "20",
        ],
    );
    let cgroup = cgroup_of(&d, "bomb").unwrap();
    wait_for("the cgroup at its limit", Duration::from_secs(20), || {
        procs(&cgroup).len() >= 19
    });
    assert!(procs(&cgroup).len() <= 20, "{}", procs(&cgroup).len());
    ok(&d, &["stop", "--name", "bomb"]);
    assert!(procs(&cgroup).is_empty());
}

/// A detached process lives in `detached/<name>`: a daemon killed by SIGKILL leaves it running there,
/// the next daemon adopts it with its cgroup (its status names it), removes the empty cgroups of what
/// is gone, and a stop ends the adopted process through the cgroup, `setsid` child included.
#[test]
fn a_restarted_daemon_adopts_a_detached_process_with_its_cgroup() {
    let flags = ["--cgroups", "auto"];
    let mut d = Daemon::start_with(&flags, true);
    let command = "setsid sleep 3611 & sleep 3612";
    ok(
        &d,
        &["start", "--name", "kept", "--detach", "--command", command],
    );
    let Some(cgroup) = cgroup_of(&d, "kept") else {
        return;
    };
    assert!(cgroup.ends_with("detached/kept"), "{}", cgroup.display());
    let pids = three_in(&mut d, &cgroup);
    // The cgroup of a process that is gone, as a crash between a delete and its rmdir leaves it.
    let gone = cgroup.parent().unwrap().join("gone");
    std::fs::create_dir(&gone).unwrap();

    let mut child = d.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    d.launch(&flags, true);
    let v = d.status_json("kept");
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["containment"], "cgroup", "{v}");
    assert_eq!(v["cgroup"].as_str(), cgroup.to_str(), "{v}");
    assert!(pids.iter().all(|&p| alive(p)), "the detached process died");
    assert!(!gone.exists(), "{} left", gone.display());

    ok(&d, &["stop", "--name", "kept"]);
    assert!(procs(&cgroup).is_empty(), "{:?}", procs(&cgroup));
    wait_for("every pid gone", Duration::from_secs(10), || {
        pids.iter().all(|&p| !alive(p))
    });
}

/// A kill goes through `cgroup.kill`; a child cloned into a cgroup once killed that way is killed at
/// birth on some kernels, so the next start makes the cgroup anew: the restarted run lives.
#[test]
fn a_run_after_a_kill_lives_in_its_cgroup() {
    let mut d = Daemon::start_with(&["--cgroups", "auto"], true);
    let Some((cgroup, _)) = start_escaper(&mut d, "phoenix") else {
        return;
    };
    ok(&d, &["kill", "--name", "phoenix"]);
    assert!(procs(&cgroup).is_empty(), "{:?}", procs(&cgroup));
    ok(&d, &["restart", "--name", "phoenix"]);
    three_in(&mut d, &cgroup);
    let v = d.status_json("phoenix");
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["cgroup"].as_str(), cgroup.to_str(), "{v}");
    ok(&d, &["delete", "--name", "phoenix"]);
}
