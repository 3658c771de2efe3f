//! Notifications: the sequence for start, exit and restart; a subscriber that never reads stalls nobody.

mod common;

use std::time::Duration;

use common::*;
use pm_actors::process::EventSink;
use pm_protocol::{EventKind, ProcessEvent, ProcessSpec, Status};
use tokio::sync::mpsc;

async fn next_status(rx: &mut mpsc::UnboundedReceiver<ProcessEvent>) -> (Status, Status, bool) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("an event in time")
            .expect("channel open");
        if let EventKind::Status { old, new } = ev.kind {
            return (old, new, ev.exit.is_some());
        }
    }
}

#[actix_rt::test]
async fn start_exit_restart_sequence() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let p = actor(ProcessSpec::shell("seq", "sleep 60"), opts);
    p.subscribe(EventSink::Unbounded(tx)).await.unwrap();
    cleanup.group(p.start().await.unwrap());
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Initial, Status::Running, false)
    );
    let first = p.pid().await.unwrap();
    let second = p.restart().await.unwrap();
    cleanup.group(second);
    assert_ne!(first, second);
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Running, Status::Stopping, false)
    );
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Stopping, Status::Stopped, true)
    );
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Stopped, Status::Running, false)
    );
    p.signal("KILL", false).await.unwrap();
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Running, Status::Failed, true)
    );
    // A restart of a process that is not alive just starts it.
    cleanup.group(p.restart().await.unwrap());
    assert_eq!(
        next_status(&mut rx).await,
        (Status::Failed, Status::Running, false)
    );
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn a_subscriber_that_never_reads_does_not_stall_the_others() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let (stuck_tx, _stuck_rx) = mpsc::channel(1); // never read
    let (dead_tx, dead_rx) = mpsc::channel(1);
    drop(dead_rx);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let p = actor(ProcessSpec::shell("many", "exit 0"), opts);
    p.subscribe(EventSink::Channel(stuck_tx)).await.unwrap();
    p.subscribe(EventSink::Channel(dead_tx)).await.unwrap();
    p.subscribe(EventSink::Unbounded(tx)).await.unwrap();
    for _ in 0..20 {
        cleanup.group(p.start().await.unwrap());
        p.wait().await.unwrap();
        let (_, running, _) = next_status(&mut rx).await;
        assert_eq!(running, Status::Running);
        assert_eq!(
            next_status(&mut rx).await,
            (Status::Running, Status::Completed, true)
        );
    }
}
