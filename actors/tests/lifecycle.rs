//! Start, exit, stop, kill, wait and spawn failures of real processes.

mod common;

use std::time::Duration;

use common::*;
use pm_actors::process::{GetInfo, Kill, Stop, Wait};
use pm_protocol::{PmError, ProcessSpec, Status};

const LONG: Duration = Duration::from_secs(20);

#[actix_rt::test]
async fn exit_codes_and_signals_are_recorded() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    for (cmd, status, error, code, signal) in [
        ("exit 0", Status::Completed, "", Some(0), None),
        (
            "exit 3",
            Status::Failed,
            "exited with code 3",
            Some(3),
            None,
        ),
        (
            "kill -SEGV $$",
            Status::Failed,
            "killed by signal SIGSEGV",
            None,
            Some("SIGSEGV"),
        ),
    ] {
        let p = actor(ProcessSpec::shell("exits", cmd), opts.clone());
        cleanup.group(p.start().await.unwrap());
        let exit = p.wait().await.unwrap();
        assert_eq!(exit.code, code, "{cmd}");
        assert_eq!(exit.signal.as_deref(), signal, "{cmd}");
        let info = p.info().await.unwrap();
        assert_eq!(info.status, status, "{cmd}");
        assert_eq!(info.error, error, "{cmd}");
        assert!(!p.is_alive().await.unwrap());
        assert!(!info.end_time.is_empty());
    }
}

#[actix_rt::test]
async fn spawn_failures_name_their_cause() {
    let (dir, opts) = options();
    let not_exec = dir.path().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let mut bad_cwd = ProcessSpec::exec("cwd", "true", Vec::<String>::new());
    bad_cwd.cwd = Some(dir.path().join("missing"));
    for (spec, cause) in [
        (
            ProcessSpec::exec("nope", "/nonexistent/program", Vec::<String>::new()),
            "no such program",
        ),
        (
            ProcessSpec::exec("perm", not_exec.to_str().unwrap(), Vec::<String>::new()),
            "permission denied",
        ),
        (bad_cwd, "working directory"),
    ] {
        let p = actor(spec, opts.clone());
        match p.start().await {
            Err(PmError::Spawn { cause: c, .. }) => assert!(c.contains(cause), "{c}"),
            other => panic!("expected a spawn error naming {cause}, got {other:?}"),
        }
        let info = p.info().await.unwrap();
        assert_eq!(info.status, Status::Failed);
        assert!(info.error.contains(cause), "{}", info.error);
        assert_eq!(info.pid, 0);
        assert!(!p.is_alive().await.unwrap());
    }
}

#[actix_rt::test]
async fn start_twice_is_an_error() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::shell("twice", "sleep 60"), opts);
    cleanup.group(p.start().await.unwrap());
    assert!(matches!(p.start().await, Err(PmError::AlreadyRunning(_))));
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn sigterm_ignoring_child_is_killed_after_grace_and_actor_answers_meanwhile() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut spec = ProcessSpec::shell(
        "stubborn",
        "trap '' TERM; echo ready; while :; do sleep 1; done",
    );
    spec.grace_ms = 1500;
    let p = actor(spec, opts);
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    has_child(pid).await; // the trap is set
    p.addr().send(Stop { grace: None }).await.unwrap().unwrap();
    // While the stop waits out its grace, the actor answers at once.
    let info = p.addr().send(GetInfo).await.unwrap();
    assert_eq!(info.status, Status::Stopping);
    let waiter = p.addr().send(Wait);
    let exit = p.stop_and_wait(None).await.unwrap();
    assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(waiter.await.unwrap().unwrap(), exit);
    let info = p.info().await.unwrap();
    assert_eq!(info.status, Status::Stopped);
    assert_eq!(info.error, "");
    assert!(live_members(pid).is_empty());
}

#[actix_rt::test]
async fn kill_is_answered_while_a_stop_waits_out_its_grace() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let spec = ProcessSpec::shell("stubborn2", "trap '' TERM; while :; do sleep 1; done");
    let p = actor(spec, opts);
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    has_child(pid).await;
    p.stop(Some(Duration::from_secs(600))).await.unwrap();
    let exit = p.addr().send(Kill).await.unwrap().unwrap();
    assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(p.info().await.unwrap().status, Status::Stopped);
}

#[actix_rt::test]
async fn stopping_a_shell_with_a_background_job_leaves_no_sleep() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::shell("bg", "sleep 60 & sleep 60"), opts);
    let pgid = p.start().await.unwrap();
    cleanup.group(pgid);
    poll("both sleeps", LONG, || async {
        (live_members(pgid).len() == 3).then_some(())
    })
    .await;
    p.stop_and_wait(None).await.unwrap();
    assert_eq!(live_members(pgid), Vec::<i32>::new());
    assert_eq!(p.info().await.unwrap().status, Status::Stopped);
}

#[actix_rt::test]
async fn many_waiters_all_get_the_exit() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::shell("waited", "sleep 0.3; exit 7"), opts);
    cleanup.group(p.start().await.unwrap());
    let waits: Vec<_> = (0..10).map(|_| p.addr().send(Wait)).collect();
    for w in waits {
        assert_eq!(w.await.unwrap().unwrap().code, Some(7));
    }
}

#[actix_rt::test]
async fn signal_reaches_the_process() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::exec("sig", "sleep", ["60"]), opts);
    cleanup.group(p.start().await.unwrap());
    assert!(matches!(
        p.signal("NOPE", false).await,
        Err(PmError::InvalidSignal(_))
    ));
    p.signal("USR1", true).await.unwrap();
    let exit = p.wait().await.unwrap();
    assert_eq!(exit.signal.as_deref(), Some("SIGUSR1"));
    let info = p.info().await.unwrap();
    assert_eq!(info.status, Status::Failed);
    assert_eq!(info.error, "killed by signal SIGUSR1");
    assert!(matches!(
        p.signal("HUP", false).await,
        Err(PmError::NotRunning(_))
    ));
}

/// A stopped (SIGSTOP) process gets SIGCONT right after the stop signal, so it acts on that signal
/// at once instead of holding it pending until the SIGKILL.
#[actix_rt::test]
async fn a_stopped_process_is_woken_to_take_its_stop_signal() {
    let (dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let marker = dir.path().join("got-term");
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'echo TERM > {}; exit 0' TERM; touch {}; while true; do sleep 0.1; done",
        marker.display(),
        ready.display()
    );
    let p = actor(ProcessSpec::shell("frozen", script), opts);
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    poll("the trap to be set", LONG, || async {
        ready.exists().then_some(())
    })
    .await;
    p.signal("STOP", true).await.unwrap();
    poll("the group to stop", LONG, || async {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('T')
            })
            .then_some(())
    })
    .await;
    let grace = Duration::from_secs(60);
    let asked = std::time::Instant::now();
    let exit = p.stop_and_wait(Some(grace)).await.unwrap();
    assert!(asked.elapsed() < grace / 3, "{:?}", asked.elapsed());
    assert_eq!(exit.signal, None, "not killed: {exit:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "TERM\n");
}

/// A simple command runs as the program itself (directly when its words are literal, else `sh` execs
/// it): one process, which gets the stop signal; a command with shell syntax keeps its shell.
#[actix_rt::test]
async fn a_simple_shell_command_is_the_program_itself() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();

    let simple = actor(ProcessSpec::shell("simple", "sleep 60"), opts.clone());
    let pid = simple.start().await.unwrap();
    cleanup.group(pid);
    poll("sh to exec sleep", LONG, || async {
        (comm(pid) == "sleep\n").then_some(())
    })
    .await;
    assert_eq!(live_members(pid), vec![pid]);
    let exit = simple.stop_and_wait(Some(LONG)).await.unwrap();
    assert_eq!(
        exit.signal.as_deref(),
        Some("SIGTERM"),
        "sleep itself got the stop signal"
    );

    let quoted = actor(ProcessSpec::shell("quoted", "sleep '60'"), opts.clone());
    let pid = quoted.start().await.unwrap();
    cleanup.group(pid);
    poll("sh to exec the quoted sleep", LONG, || async {
        (comm(pid) == "sleep\n" && live_members(pid) == vec![pid]).then_some(())
    })
    .await;
    quoted.kill().await.unwrap();

    let compound = actor(ProcessSpec::shell("compound", "sleep 60; true"), opts);
    let pid = compound.start().await.unwrap();
    cleanup.group(pid);
    poll("sh and its sleep", LONG, || async {
        (live_members(pid).len() == 2).then_some(())
    })
    .await;
    assert_eq!(comm(pid), "sh\n");
    compound.kill().await.unwrap();
}
