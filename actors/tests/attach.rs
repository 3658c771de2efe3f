//! Adopting a process the supervisor did not start, and never signalling a recycled pid.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::*;
use pm_actors::process::{ProcessActor, ProcessHandle};
use pm_protocol::{KernelState, PmError, Status};

fn outside_sleep(cleanup: &mut Cleanup) -> std::process::Child {
    let child = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    cleanup.group(child.id() as i32);
    child
}

#[actix_rt::test]
async fn attach_then_stop() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut child = outside_sleep(&mut cleanup);
    let pid = child.id() as i32;
    let actor = ProcessActor::attach(pid, "adopted".into(), opts).unwrap();
    let p = ProcessHandle::spawn(actor, "adopted");
    let info = p.info().await.unwrap();
    assert_eq!(info.pid, pid);
    assert_eq!(info.status, Status::Running);
    assert!(info.attached);
    // Right after a spawn the kernel may not have set up the new program's arguments yet: an empty
    // command is filled in by the next status read.
    let info = poll(
        "the attached command line",
        Duration::from_secs(10),
        || async {
            let i = p.update_status().await.ok()?;
            (!i.command.is_empty()).then_some(i)
        },
    )
    .await;
    assert_eq!(info.command, "sleep 60");
    assert!(p.is_alive().await.unwrap());
    let waiter = p.addr().send(pm_actors::process::Wait);
    p.stop_and_wait(Some(Duration::from_secs(5))).await.unwrap();
    waiter.await.unwrap().unwrap();
    assert_eq!(p.info().await.unwrap().status, Status::Terminated);
    let status = child.wait().unwrap();
    assert!(!status.success(), "sleep was ended by the stop signal");
}

/// The kernel state is read at attach: the status record shows it before the first status tick.
#[actix_rt::test]
async fn an_attached_process_has_its_kernel_state_at_once() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut child = outside_sleep(&mut cleanup);
    let pid = child.id() as i32;
    poll("sleep to sleep", Duration::from_secs(10), || async {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains("(sleep) S"))
            .then_some(())
    })
    .await;
    let actor = ProcessActor::attach(pid, "asleep".into(), opts).unwrap();
    let p = ProcessHandle::spawn(actor, "asleep");
    assert_eq!(p.info().await.unwrap().state, KernelState::Sleeping);
    p.kill().await.unwrap();
    let _ = child.wait();
}

#[actix_rt::test]
async fn an_attached_process_that_exits_is_terminated() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut child = outside_sleep(&mut cleanup);
    let pid = child.id() as i32;
    let p = ProcessHandle::spawn(
        ProcessActor::attach(pid, "gone".into(), opts).unwrap(),
        "gone",
    );
    child.kill().unwrap();
    let _ = child.wait();
    poll("terminated", Duration::from_secs(20), || async {
        (p.info().await.ok()?.status == Status::Terminated).then_some(())
    })
    .await;
    assert!(matches!(
        p.signal("TERM", false).await,
        Err(PmError::NotRunning(_))
    ));
}

#[actix_rt::test]
async fn a_recycled_pid_is_not_signalled() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut child = outside_sleep(&mut cleanup);
    let pid = child.id() as i32;
    let real = pm_actors::process::procfs::read_stat(pid)
        .unwrap()
        .start_time;
    // A start time recorded for an earlier process with this pid (as in a state file): refused.
    let stale = ProcessActor::attach_expecting(pid, "old".into(), real + 1, opts.clone());
    assert!(matches!(stale, Err(PmError::NoSuchPid { .. })));
    // The right start time is accepted.
    let ok = ProcessActor::attach_expecting(pid, "same".into(), real, opts.clone()).unwrap();
    assert_eq!(ok.attached_start_ticks(), Some(real));
    assert!(matches!(
        ProcessActor::attach(0, "zero".into(), opts),
        Err(PmError::NoSuchPid { .. })
    ));
    // The process was never signalled.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    let _ = child.wait();
}
