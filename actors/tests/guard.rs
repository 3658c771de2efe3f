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
    let mut spec = ProcessSpec::shell("guarded", "sleep 60 & sleep 60");
    spec.detach = false;
    let p = actor(spec, opts);
    let pgid = p.start().await.unwrap();
    has_child(pgid).await;
    println!("PGID {pgid}");
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
    let mut pgid = 0;
    for line in BufReader::new(daemon.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest may print "test daemon_helper ... " on the same line first.
        if let Some(p) = line.split("PGID ").nth(1) {
            pgid = p.trim().parse().unwrap();
            break;
        }
    }
    assert!(pgid > 0, "the helper daemon did not start its child");
    cleanup.group(pgid);
    assert_eq!(live_members(pgid).len(), 3, "sh and two sleeps");
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while !live_members(pgid).is_empty() {
        assert!(
            std::time::Instant::now() < end,
            "group {pgid} outlived the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
