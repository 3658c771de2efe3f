//! A non-detached child (and its whole group) dies with the daemon, even when the daemon gets SIGKILL.
//!
//! `daemon_helper` is the "daemon": re-run from this test binary, it starts a ProcessActor running
//! `sh -c 'sleep 60 & sleep 60'`, prints the group id and waits. The test SIGKILLs it and polls until
//! no process of that group is left.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use pm_protocol::ProcessSpec;

#[actix_rt::test]
#[ignore = "run by daemon_sigkill_takes_the_children_along as its daemon"]
async fn daemon_helper() {
    let (_dir, opts) = options();
    let guard = opts.guard.as_ref().map_or(0, |g| g.pid());
    let mut spec = ProcessSpec::shell("guarded", "sleep 60 & sleep 60");
    spec.detach = false;
    let p = actor(spec, opts);
    let pgid = p.start().await.unwrap();
    has_child(pgid).await;
    println!("PGID {pgid} GUARD {guard}");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn daemon_sigkill_takes_the_children_along() {
    let mut cleanup = Cleanup::default();
    let exe = std::env::current_exe().unwrap();
    let mut daemon = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "daemon_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (mut pgid, mut guard) = (0, 0);
    for line in BufReader::new(daemon.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print "test daemon_helper ... " on the same line first.
        if let Some(p) = line.split("PGID ").nth(1) {
            let mut words = p.split_whitespace();
            pgid = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            guard = words.nth(1).and_then(|w| w.parse().ok()).unwrap_or(0);
            break;
        }
    }
    assert!(pgid > 0, "the helper daemon did not start its child");
    assert!(guard > 0, "the helper daemon has no group guard");
    cleanup.group(pgid);
    // The helper reports as soon as sh has one child; the second sleep may be a moment behind.
    wait_until("sh and two sleeps in the group", pgid, guard, || {
        live_members(pgid).len() == 3
    });
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    wait_until("the group to be gone with its daemon", pgid, guard, || {
        live_members(pgid).is_empty()
    });
}

/// Polls `cond`; on timeout fails with what the group and the guard look like, so that a failure
/// says which side did not do its part.
fn wait_until(what: &str, pgid: i32, guard: i32, mut cond: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}; group {pgid}: {}; guard {guard}: {}",
            describe(&live_members(pgid)),
            describe(&[guard]),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `[pid (comm) state ppid pgrp session wchan=..]` of each pid, or `[pid gone]`.
fn describe(pids: &[i32]) -> String {
    let one = |pid: &i32| {
        let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}"));
        match read("stat") {
            Ok(stat) => {
                // pid (comm) state ppid pgrp session
                let stat: Vec<&str> = stat.split_whitespace().take(6).collect();
                let stat = stat.join(" ");
                let wchan = read("wchan").unwrap_or_default();
                format!("[{stat} wchan={wchan}]")
            }
            Err(_) => format!("[{pid} gone]"),
        }
    };
    let all: Vec<String> = pids.iter().map(one).collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(" ")
    }
}
