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
    eprintln!("skipped: the daemon runs in group mode here ({why})");
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
    let mut pids = Vec::new();
    wait_for(
        "three processes in the cgroup",
        Duration::from_secs(10),
        || {
            pids = procs(&cgroup);
            pids.len() == 3
        },
    );
    // Whatever happens to the test, nothing it started outlives it.
    d.extra_groups.extend(&pids);
    Some((cgroup, pids))
}

#[test]
fn a_setsid_child_is_stopped_through_the_cgroup_and_delete_removes_it() {
    let mut d = Daemon::start();
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
}

#[test]
fn the_guard_kills_the_cgroups_when_the_daemon_is_killed() {
    let mut d = Daemon::start();
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
    let _ = std::fs::remove_dir(&cgroup);
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
