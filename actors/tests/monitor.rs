//! The status tick (CPU, memory, kernel state over the process tree) and the deadline.

mod common;

use std::time::Duration;

use common::*;
use pm_protocol::{KernelState, ProcessSpec, Status};

const LONG: Duration = Duration::from_secs(20);

#[actix_rt::test]
async fn busy_loop_reads_about_one_core_and_sleep_about_none() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // The busy loop runs in a child of `sh -c`: the tree is summed.
    let busy = actor(
        ProcessSpec::shell("busy", "sh -c 'while :; do :; done'; true"),
        opts.clone(),
    );
    let idle = actor(ProcessSpec::shell("idle", "sleep 60; true"), opts);
    cleanup.group(busy.start().await.unwrap());
    cleanup.group(idle.start().await.unwrap());
    let cpu = poll("busy CPU over 50%", LONG, || async {
        let i = busy.info().await.ok()?;
        (i.cpu_percent > 50.0).then_some(i.cpu_percent)
    })
    .await;
    assert!(cpu < 250.0, "{cpu}");
    // Let a few ticks pass, then the sleeping tree reads about nothing.
    let pid = idle.pid().await.unwrap();
    has_child(pid).await;
    for _ in 0..3 {
        let i = idle.update_status().await.unwrap();
        assert!(i.cpu_percent < 5.0, "{}", i.cpu_percent);
        assert_eq!(i.state, KernelState::Sleeping);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    busy.kill().await.unwrap();
    idle.kill().await.unwrap();
}

#[actix_rt::test]
async fn memory_of_the_tree_is_counted() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // A child shell holds 64 MiB in a variable.
    let cmd = "sh -c 'x=$(head -c 67108864 /dev/zero | tr \"\\0\" a); echo held; sleep 60'; true";
    let p = actor(ProcessSpec::shell("mem", cmd), opts);
    cleanup.group(p.start().await.unwrap());
    let mb = poll("memory of at least 50 MB", LONG, || async {
        let i = p.info().await.ok()?;
        (i.memory_mb >= 50.0).then_some(i.memory_mb)
    })
    .await;
    assert!(mb < 1024.0, "{mb}");
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn stopped_state_is_named_not_unavailable() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::exec("stopme", "sleep", ["60"]), opts);
    cleanup.group(p.start().await.unwrap());
    p.signal("STOP", false).await.unwrap();
    poll("state stopped", LONG, || async {
        (p.update_status().await.ok()?.state == KernelState::Stopped).then_some(())
    })
    .await;
    p.signal("CONT", false).await.unwrap();
    p.kill().await.unwrap();
    assert_eq!(p.info().await.unwrap().state, KernelState::Terminated);
}

#[actix_rt::test]
async fn deadline_stops_the_process_and_says_why() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut spec = ProcessSpec::exec("late", "sleep", ["60"]);
    spec.deadline_secs = Some(1);
    let p = actor(spec, opts);
    cleanup.group(p.start().await.unwrap());
    let exit = p.wait().await.unwrap();
    assert_eq!(exit.signal.as_deref(), Some("SIGTERM"));
    let info = p.info().await.unwrap();
    assert_eq!(info.status, Status::Stopped);
    assert_eq!(info.error, "deadline of 1 s exceeded");
}
