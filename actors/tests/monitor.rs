//! The status tick (CPU, memory, kernel state over the process tree) and the deadline.
//!
//! Most checks read `info()` (`GetInfo`), which answers the status monitor's latest reading: what the
//! shared tick saw, not a sample taken for the question.

mod common;

use std::time::Duration;

use common::*;
use pm_actors::process::{EventSink, Monitor, ProcessHandle, ProcessOptions};
use pm_protocol::{EventKind, KernelState, ProcessEvent, ProcessSpec, Status};
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(20);

/// Waits until the monitor of `opts`'s tick has made `n` more passes.
async fn ticks(opts: &ProcessOptions, n: u64) {
    let monitor = Monitor::shared(opts.tick);
    let target = monitor.passes() + n;
    poll("monitor ticks", LONG, || async {
        (monitor.passes() >= target).then_some(())
    })
    .await
}

/// The next kernel-state event whose new state is `want`, as (old, new).
async fn state_event(
    rx: &mut mpsc::UnboundedReceiver<ProcessEvent>,
    want: KernelState,
) -> (KernelState, KernelState) {
    loop {
        let ev = tokio::time::timeout(LONG, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no state event to {want:?} in time"))
            .expect("channel open");
        if let EventKind::State { old, new } = ev.kind {
            if new == want {
                return (old, new);
            }
        }
    }
}

/// A spec for `python3 -c script`, run as a grandchild (`sh` -> `sh` -> `python3`) when `nested`.
fn python(name: &str, script: &str, nested: bool) -> ProcessSpec {
    let mut spec = if nested {
        ProcessSpec::shell(name, r#"sh -c 'python3 -c "$PM_TEST_SCRIPT"; true'; true"#)
    } else {
        ProcessSpec::shell(name, r#"python3 -c "$PM_TEST_SCRIPT""#)
    };
    spec.env.insert("PM_TEST_SCRIPT".into(), script.into());
    spec
}

#[actix_rt::test]
async fn busy_loop_reads_about_one_core_and_sleep_about_none() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // The busy loop runs in a child of `sh -c`: the tree is summed.
    let busy = actor(
        ProcessSpec::shell("busy", "sh -c 'while :; do :; done'; true"),
        opts.clone(),
    );
    let idle = actor(ProcessSpec::shell("idle", "sleep 60; true"), opts.clone());
    cleanup.group(busy.start().await.unwrap());
    cleanup.group(idle.start().await.unwrap());
    let cpu = poll("busy CPU over 50%", LONG, || async {
        let i = busy.info().await.ok()?;
        (i.cpu_percent > 50.0).then_some(i.cpu_percent)
    })
    .await;
    assert!(cpu < 250.0, "{cpu}");
    // Let a few ticks pass, then the sleeping tree reads about nothing, on the tick and sampled now.
    let pid = idle.pid().await.unwrap();
    has_child(pid).await;
    ticks(&opts, 3).await;
    let i = idle.info().await.unwrap();
    assert!(i.cpu_percent < 5.0, "{}", i.cpu_percent);
    assert!(i.memory_mb > 0.0);
    assert_eq!(i.state, KernelState::Sleeping);
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
async fn cpu_seconds_add_up_and_keep_a_child_that_exited() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // A child burns a second of CPU and exits; the root sleeps on.
    let mut spec = ProcessSpec::shell("burn", r#"python3 -c "$PM_TEST_SCRIPT"; sleep 60"#);
    let script = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass";
    spec.env.insert("PM_TEST_SCRIPT".into(), script.into());
    let p = actor(spec, opts.clone());
    cleanup.group(p.start().await.unwrap());
    let burnt = poll("half a second of CPU", LONG, || async {
        let i = p.info().await.ok()?;
        (i.cpu_seconds >= 0.5).then_some(i.cpu_seconds)
    })
    .await;
    // Once the root's only child is `sleep`, python has exited: its seconds stay counted.
    let pid = p.pid().await.unwrap();
    poll("python gone, sleep started", LONG, || async move {
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", kids.trim())).ok()?;
        (comm.trim() == "sleep").then_some(())
    })
    .await;
    ticks(&opts, 2).await;
    let after = p.info().await.unwrap().cpu_seconds;
    assert!(
        after >= burnt,
        "{after} < {burnt}: the exited child's seconds were lost"
    );
    assert!((0.5..5.0).contains(&after), "{after}");
    p.kill().await.unwrap();
    let gone = p.info().await.unwrap();
    assert_eq!(gone.cpu_seconds, 0.0, "not running: 0");
}

#[actix_rt::test]
async fn memory_of_the_tree_is_counted() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // A child shell holds 64 MiB in a variable.
    let cmd = "sh -c 'x=$(head -c 67108864 /dev/zero | tr \"\\0\" a); echo held; sleep 60'; true";
    let p = actor(ProcessSpec::shell("mem", cmd), opts);
    cleanup.group(p.start().await.unwrap());
    memory_reaches(&p, 50.0, "memory of at least 50 MB").await;
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

#[actix_rt::test]
async fn a_stop_and_a_continue_reach_subscribers_from_the_tick() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let p = actor(ProcessSpec::exec("stopcont", "sleep", ["60"]), opts.clone());
    p.subscribe(EventSink::Unbounded(tx)).await.unwrap();
    cleanup.group(p.start().await.unwrap());
    poll("sleeping", LONG, || async {
        (p.info().await.ok()?.state == KernelState::Sleeping).then_some(())
    })
    .await;
    // Long enough asleep that the monitor reads it every other tick only: it still sees the stop.
    ticks(&opts, 8).await;
    while rx.try_recv().is_ok() {}
    // Nobody asks for a sample: the events come from the monitor's ticks alone.
    p.signal("STOP", false).await.unwrap();
    assert_eq!(
        state_event(&mut rx, KernelState::Stopped).await,
        (KernelState::Sleeping, KernelState::Stopped)
    );
    assert_eq!(p.info().await.unwrap().state, KernelState::Stopped);
    p.signal("CONT", false).await.unwrap();
    // It may be caught running for an instant on its way back to sleep.
    let (old, _) = state_event(&mut rx, KernelState::Sleeping).await;
    assert!(
        matches!(old, KernelState::Stopped | KernelState::Running),
        "{old:?}"
    );
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn a_grandchild_that_grows_is_counted_by_the_tick() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // The grandchild sleeps a while first, so that ticks see the tree small and still, then grows.
    let script = "import time\ntime.sleep(1.5)\nx = b'a' * (64 << 20)\ntime.sleep(60)";
    let p = actor(python("grow", script, true), opts);
    let root = p.start().await.unwrap();
    cleanup.group(root);
    poll("three processes", LONG, || async {
        (live_members(root).len() == 3).then_some(())
    })
    .await;
    let small = p.info().await.unwrap().memory_mb;
    assert!(small < 50.0, "{small}");
    memory_reaches(&p, 64.0, "the grandchild's 64 MiB").await;
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn a_busy_second_thread_shows_while_the_main_thread_sleeps() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    // /proc/<pid>/schedstat covers the main thread only, which sleeps here: the tick must not skip
    // the process's stat for it.
    let script = "import threading, time\ndef spin():\n    while True:\n        pass\n\
                  threading.Thread(target=spin, daemon=True).start()\ntime.sleep(60)";
    let p = actor(python("threads", script, false), opts.clone());
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    poll("two threads", LONG, || async {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status.lines().any(|l| l == "Threads:\t2").then_some(())
    })
    .await;
    // Past the main thread's start-up: three ticks in a row each see the spinning thread.
    ticks(&opts, 3).await;
    for _ in 0..3 {
        ticks(&opts, 1).await;
        let cpu = p.info().await.unwrap().cpu_percent;
        assert!(cpu > 20.0, "a spinning thread read as {cpu}% CPU");
    }
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn the_monitor_parks_when_nothing_is_watched_and_an_idle_tree_messages_nobody() {
    // A tick no other test uses: this monitor is this test's own.
    let tick = Duration::from_millis(73);
    let (_dir, opts) = options();
    let opts = opts.with_tick(tick);
    let monitor = Monitor::shared(tick);
    let mut cleanup = Cleanup::default();
    poll("parked before any watch", LONG, || async {
        monitor.is_parked().then_some(())
    })
    .await;
    let p = actor(ProcessSpec::exec("watched", "sleep", ["60"]), opts.clone());
    cleanup.group(p.start().await.unwrap());
    poll("sleeping, as ticked", LONG, || async {
        (monitor.watched() == 1 && p.info().await.ok()?.state == KernelState::Sleeping)
            .then_some(())
    })
    .await;
    // Past the first tick's notice (the actor learns the state the monitor saw), a sleeping process
    // changes nothing: its ticks message nobody.
    ticks(&opts, 2).await;
    let notices = monitor.notices();
    ticks(&opts, 5).await;
    assert_eq!(monitor.notices(), notices);
    // The run ends: its tree is no longer watched, and the thread parks.
    p.kill().await.unwrap();
    poll("parked after the run ended", LONG, || async {
        (monitor.is_parked() && monitor.watched() == 0).then_some(())
    })
    .await;
    // A new run is watched again.
    cleanup.group(p.start().await.unwrap());
    poll("watched again", LONG, || async {
        (monitor.watched() == 1 && !monitor.is_parked()).then_some(())
    })
    .await;
    p.kill().await.unwrap();
    poll("parked again", LONG, || async {
        monitor.is_parked().then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn a_group_left_behind_by_its_leader_is_reaped_once_gone() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::shell("leaves", "sleep 0.5 & exit 0"), opts);
    let pgid = p.start().await.unwrap();
    cleanup.group(pgid);
    assert_eq!(p.wait().await.unwrap().code, Some(0));
    // The background sleep, orphaned to this process (a subreaper), ends as a zombie that only the
    // actor's check of lingering groups reaps.
    poll("the group gone, zombies included", LONG, || async {
        let left = pm_actors::process::procfs::scan_all().any(|(_, st)| st.pgrp == pgid);
        (!left).then_some(())
    })
    .await;
}

/// Waits until the tree's memory reads at least `mb` (and a sane figure, under 1 GiB).
async fn memory_reaches(p: &ProcessHandle, mb: f64, what: &str) {
    let got = poll(what, LONG, || async {
        let i = p.info().await.ok()?;
        (i.memory_mb >= mb).then_some(i.memory_mb)
    })
    .await;
    assert!(got < 1024.0, "{got}");
}
