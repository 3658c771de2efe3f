//! Readiness and health with real processes, a real HTTP server (`health/server.rs`), real sockets
//! and the machine's `systemd-notify`: each readiness kind makes the `ready` event (the registry's
//! cue for dependents) arrive only once it holds, `ready_within` fails a start, an unhealthy server
//! is restarted after exactly `health_failures` failures or at its timeout, a probe that never
//! exits is killed and leaves nothing behind. Every wait polls a condition with a deadline.

mod common;
#[path = "health/harness.rs"]
mod harness;
#[path = "health/server.rs"]
mod server;

use std::time::{Duration, Instant};

use actix::prelude::*;
use common::{start_in, Cleanup, Life};
use harness::{have_python3, is_ready, probed, raw_notify, subscribe, Harness};
use pm_actors::registry::*;
use pm_protocol::{EventKind, Health, ProcessSpec, RestartPolicy, Status};
use server::HealthServer;

/// Starting, not ready (and no `ready` event) while `hold` lasts; ready with `ready_since` after `release`.
async fn ready_only_after(h: &mut Harness, name: &str, release: impl FnOnce()) {
    let info = h.until(name, 10, |i| i.status == Status::Running).await;
    assert_eq!(info.health, Some(Health::Starting), "{info:#?}");
    assert!(info.ready_since.is_none());
    // A few readiness periods go by without it.
    let hold = Instant::now() + Duration::from_millis(300);
    while Instant::now() < hold {
        let info = h.status(name).await;
        assert_eq!(info.health, Some(Health::Starting), "{info:#?}");
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(!h.drain(name).iter().any(is_ready), "ready too early");
    release();
    h.event(name, 10, is_ready).await;
    let info = h.status(name).await;
    assert_eq!(info.health, Some(Health::Ready), "{info:#?}");
    assert!(info.ready_since.is_some(), "{info:#?}");
}

#[actix_rt::test]
async fn http_readiness_waits_for_a_2xx() {
    let mut h = Harness::new().await;
    let server = HealthServer::start(503);
    h.start(probed(
        "web",
        "sleep 600",
        &format!("http:{}", server.url()),
    ))
    .await
    .unwrap();
    let info = h
        .until("web", 10, |i| i.health_detail.contains("503"))
        .await;
    assert!(
        info.health_detail
            .starts_with(&format!("GET {}: 503 after ", server.url())),
        "{}",
        info.health_detail
    );
    ready_only_after(&mut h, "web", || server.set(204)).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn tcp_readiness_waits_for_a_listener() {
    let mut h = Harness::new().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    h.start(probed("db", "sleep 600", &format!("tcp:127.0.0.1:{port}")))
        .await
        .unwrap();
    let mut listener = None;
    ready_only_after(&mut h, "db", || {
        listener = Some(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    })
    .await;
    drop(listener);
    h.shutdown().await;
}

#[actix_rt::test]
async fn exec_readiness_runs_in_the_process_directory() {
    let mut h = Harness::new().await;
    let cwd = h.dir.path().join("work");
    std::fs::create_dir_all(&cwd).unwrap();
    let mut spec = probed(
        "mig",
        "sleep 600",
        "exec:test -f up && test \"$PM_T\" = yes",
    );
    spec.cwd = Some(cwd.clone());
    spec.env.insert("PM_T".into(), "yes".into());
    h.start(spec).await.unwrap();
    ready_only_after(&mut h, "mig", || {
        std::fs::write(cwd.join("up"), "").unwrap()
    })
    .await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn log_readiness_waits_for_a_matching_line() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("go");
    let command = format!(
        "echo starting; while [ ! -f {} ]; do sleep 0.02; done; echo 'listening on 8080'; sleep 600",
        flag.display()
    );
    h.start(probed("log", &command, r"log:^listening on \d+$"))
        .await
        .unwrap();
    ready_only_after(&mut h, "log", || std::fs::write(&flag, "").unwrap()).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn exited_readiness_is_a_clean_exit() {
    let mut h = Harness::new().await;
    h.start(probed("once", "sleep 0.3; exit 0", "exited"))
        .await
        .unwrap();
    let before = h.event("once", 10, is_ready).await;
    // Ready comes with the exit, before the process is `completed`.
    assert!(!before.iter().any(|k| matches!(
        k,
        EventKind::Status {
            new: Status::Completed,
            ..
        }
    )));
    let info = h.until("once", 10, |i| i.status == Status::Completed).await;
    assert_eq!(info.health, Some(Health::Ready));
    // A failed one-shot never becomes ready.
    h.start(probed("bad", "exit 3", "exited")).await.unwrap();
    let info = h.until("bad", 10, |i| i.status == Status::Failed).await;
    assert_ne!(info.health, Some(Health::Ready));
    assert!(!h.drain("bad").iter().any(is_ready));
    h.shutdown().await;
}

#[actix_rt::test]
async fn ready_within_fails_the_start_and_the_policy_decides() {
    let mut h = Harness::new().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut spec = probed("slow", "sleep 600", &format!("tcp:127.0.0.1:{port}"));
    spec.probes.ready_within_ms = Some(400);
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.restart.max_restarts = 1;
    let first = h.start(spec).await.unwrap().pid;
    let info = h
        .until("slow", 20, |i| {
            i.status == Status::Failed && i.error.contains("gave up")
        })
        .await;
    assert_eq!(info.restarts, 1, "{info:#?}");
    assert!(
        info.error.contains("not ready within 400 ms"),
        "{}",
        info.error
    );
    assert!(!std::path::Path::new(&format!("/proc/{first}")).exists());
    h.shutdown().await;
}

fn healthy(name: &str, server: &HealthServer, failures: u32) -> ProcessSpec {
    let mut spec = ProcessSpec::shell(name, "sleep 600");
    spec.probes.health =
        Some(pm_protocol::Probe::parse(&format!("http:{}", server.url())).unwrap());
    spec.probes.health_period_ms = 50;
    spec.probes.health_timeout_ms = 300;
    spec.probes.health_failures = failures;
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.restart.max_restarts = -1;
    spec.grace_ms = 1000;
    spec
}

#[actix_rt::test]
async fn a_503_restarts_after_exactly_health_failures() {
    let mut h = Harness::new().await;
    let server = HealthServer::start(200);
    let first = h.start(healthy("api", &server, 3)).await.unwrap().pid;
    h.event("api", 10, is_ready).await;
    // Two failures, then a pass: the count resets, nothing happens.
    // Counted before the burst, and both of its answers counted after: the server takes a request
    // from the burst before it counts the answer.
    let began = server.answered();
    server.burst(2, 503);
    h.until("api", 10, |_| {
        server.burst_left() == 0 && server.answered() >= began + 2
    })
    .await;
    let settle = server.answered();
    h.until("api", 10, |_| server.answered() >= settle + 3)
        .await;
    assert!(server.answered() >= began + 5);
    let info = h.status("api").await;
    assert_eq!((info.pid, info.restarts), (first, 0), "{info:#?}");
    assert_eq!(info.health, Some(Health::Ready));
    assert!(!h
        .drain("api")
        .iter()
        .any(|k| matches!(k, EventKind::Unhealthy { .. })));
    // Three in a row: unhealthy, stopped with its stop signal, restarted, ready again.
    server.burst(3, 503);
    let seen = h
        .event("api", 10, |k| matches!(k, EventKind::Unhealthy { .. }))
        .await;
    let Some(EventKind::Unhealthy { detail }) = seen.last() else {
        unreachable!()
    };
    assert!(detail.contains(": 503 after "), "{detail}");
    let info = h
        .until("api", 10, |i| {
            i.restarts == 1 && i.health == Some(Health::Ready)
        })
        .await;
    assert_ne!(info.pid, first);
    assert_eq!(server.burst_left(), 0);
    assert!(
        info.error.is_empty() || info.error.contains("unhealthy"),
        "{info:#?}"
    );
    assert!(!std::path::Path::new(&format!("/proc/{first}")).exists());
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_hung_server_is_restarted_at_the_timeout_and_the_exit_says_why() {
    let mut h = Harness::new().await;
    let server = HealthServer::start(200);
    let mut spec = healthy("hung", &server, 1);
    spec.restart.max_restarts = 1;
    let first = h.start(spec).await.unwrap().pid;
    h.event("hung", 10, is_ready).await;
    server.hang(true);
    let info = h
        .until("hung", 10, |i| {
            i.restarts == 1 && i.pid != first && i.pid != 0
        })
        .await;
    assert_eq!(info.status, Status::Running);
    // The second run hangs too, and with no restart left it fails for good, saying why.
    let info = h
        .until("hung", 10, |i| {
            i.status == Status::Failed && i.error.contains("gave up")
        })
        .await;
    assert!(
        info.error.contains("unhealthy: GET") && info.error.contains("timed out after 300 ms"),
        "{}",
        info.error
    );
    server.hang(false);
    h.shutdown().await;
}

#[actix_rt::test]
async fn the_policy_never_leaves_it_running_and_unhealthy() {
    let mut h = Harness::new().await;
    let server = HealthServer::start(200);
    let mut spec = healthy("kept", &server, 2);
    spec.restart.policy = RestartPolicy::Never;
    spec.restart.max_restarts = 0;
    let pid = h.start(spec).await.unwrap().pid;
    h.event("kept", 10, is_ready).await;
    server.set(500);
    let info = h
        .until("kept", 10, |i| i.health == Some(Health::Unhealthy))
        .await;
    assert_eq!((info.status, info.pid), (Status::Running, pid));
    assert!(info.health_detail.contains(": 500 after "), "{info:#?}");
    // Healthy again: ready again, same run.
    server.set(200);
    let info = h
        .until("kept", 10, |i| i.health == Some(Health::Ready))
        .await;
    assert_eq!(info.pid, pid);
    h.shutdown().await;
}

/// The pids listed in `file`, one a line.
fn pids_in(file: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[actix_rt::test]
async fn a_probe_that_never_exits_is_killed_and_leaves_nothing() {
    let mut h = Harness::new().await;
    let list = h.dir.path().join("probes");
    // Each check records its pid, starts a grandchild in its group, and never exits.
    let check = format!("exec:echo $$ >> {}; sleep 600 & sleep 600", list.display());
    let mut spec = probed("stuck", "sleep 600", &check);
    spec.probes.ready_timeout_ms = 150;
    h.start(spec).await.unwrap();
    h.until("stuck", 10, |i| {
        i.health_detail.contains("timed out after 150 ms")
    })
    .await;
    h.until("stuck", 10, |_| pids_in(&list).len() >= 3).await;
    h.registry
        .send(StopProcess {
            name: "stuck".into(),
        })
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i32> = pids_in(&list)
            .into_iter()
            .filter(|&p| common::live_members(p).into_iter().next().is_some())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "probe groups left: {left:?}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    h.shutdown().await;
}

/// Whether the machine's `systemd-notify` can be used here.
fn systemd_notify() -> Option<&'static str> {
    let path = "/usr/bin/systemd-notify";
    std::path::Path::new(path).exists().then_some(path)
}

#[actix_rt::test]
async fn notify_with_the_real_systemd_notify() {
    let Some(tool) = systemd_notify() else {
        eprintln!("skipped: /usr/bin/systemd-notify is not installed");
        return;
    };
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("go");
    let command = format!(
        "while [ ! -f {f} ]; do sleep 0.02; done; {tool} --status='warm and ready' && {tool} --ready; sleep 600",
        f = flag.display()
    );
    h.start(probed("svc", &command, "notify")).await.unwrap();
    ready_only_after(&mut h, "svc", || std::fs::write(&flag, "").unwrap()).await;
    let info = h.status("svc").await;
    assert_eq!(info.health_detail, "warm and ready");
    h.shutdown().await;
}

#[actix_rt::test]
async fn notify_with_raw_datagrams_and_only_from_its_tree() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("go");
    if !have_python3() {
        return;
    }
    let command = format!(
        "while [ ! -f {f} ]; do sleep 0.02; done; {}; sleep 600",
        raw_notify("STATUS=up\\nREADY=1"),
        f = flag.display()
    );
    let mut spec = probed("raw", &command, "notify");
    spec.probes.watchdog_ms = Some(60_000);
    h.start(spec).await.unwrap();
    let info = h.until("raw", 10, |i| i.status == Status::Running).await;
    // A stranger (this test) cannot speak for it.
    let socket = h.dir.path().join("notify/raw.notify");
    let stranger = std::os::unix::net::UnixDatagram::unbound().unwrap();
    stranger.send_to(b"READY=1", &socket).unwrap();
    ready_only_after(&mut h, "raw", || std::fs::write(&flag, "").unwrap()).await;
    assert_eq!(h.status("raw").await.health_detail, "up");
    assert_eq!(h.status("raw").await.pid, info.pid);
    h.shutdown().await;
}

/// A sender of its tree that exits right after its datagram (a child of the shell, reaped at
/// once) is heard every time: its credentials are checked as the datagram is read, not once the
/// actor gets to it, when it may be gone.
#[actix_rt::test]
async fn notify_from_a_sender_that_exits_at_once_is_heard_every_time() {
    if !have_python3() {
        eprintln!("skipped: no python3 to send raw notify datagrams");
        return;
    }
    const TRIES: usize = 50;
    let mut h = Harness::new().await;
    let dir = h.dir.path().to_path_buf();
    // Each sender says its own number, from the shell's loop.
    let sender = "I=$i python3 -c 'import os,socket; s=socket.socket(socket.AF_UNIX, \
                  socket.SOCK_DGRAM); s.sendto((\"STATUS=\" + os.environ[\"I\"]).encode(), \
                  os.environ[\"NOTIFY_SOCKET\"])'";
    let command = format!(
        "i=1; while [ $i -le {TRIES} ]; do while [ ! -f {d}/go-$i ]; do sleep 0.005; done; \
         {sender}; i=$((i+1)); done; sleep 600",
        d = dir.display()
    );
    let spec = probed("chatty", &command, "notify");
    h.start(spec).await.unwrap();
    h.until("chatty", 10, |i| i.status == Status::Running).await;
    for i in 1..=TRIES {
        std::fs::write(dir.join(format!("go-{i}")), "").unwrap();
        let want = i.to_string();
        h.until("chatty", 10, |info| info.health_detail == want)
            .await;
    }
    h.shutdown().await;
}

#[actix_rt::test]
async fn reloading_makes_it_unready_until_ready_again() {
    if !have_python3() {
        return;
    }
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("reloaded");
    let command = format!(
        "{}; while [ ! -f {f} ]; do sleep 0.02; done; {}; sleep 0.3; {}; sleep 600",
        raw_notify("READY=1"),
        raw_notify("RELOADING=1"),
        raw_notify("READY=1"),
        f = flag.display()
    );
    let mut spec = probed("reload", &command, "notify");
    spec.probes.health = Some(pm_protocol::Probe::parse("exec:true").unwrap());
    spec.probes.health_period_ms = 50;
    h.start(spec).await.unwrap();
    h.event("reload", 10, is_ready).await;
    std::fs::write(&flag, "").unwrap();
    let seen = h
        .event("reload", 10, |k| matches!(k, EventKind::Unready { .. }))
        .await;
    assert_eq!(
        seen.last(),
        Some(&EventKind::Unready {
            detail: "reloading".into()
        })
    );
    let info = h.status("reload").await;
    assert_eq!(info.health, Some(Health::Starting), "{info:#?}");
    assert!(info.ready_since.is_none());
    h.event("reload", 10, is_ready).await;
    assert_eq!(h.status("reload").await.health, Some(Health::Ready));
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_silent_watchdog_makes_it_unhealthy() {
    let mut h = Harness::new().await;
    let mut spec = probed(
        "dog",
        "systemd-notify --ready 2>/dev/null || exit 0; sleep 600",
        "notify",
    );
    if systemd_notify().is_none() {
        eprintln!("skipped: /usr/bin/systemd-notify is not installed");
        return;
    }
    spec.probes.watchdog_ms = Some(200);
    spec.probes.health_failures = 2;
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.restart.max_restarts = 1;
    h.start(spec).await.unwrap();
    let seen = h
        .event("dog", 10, |k| matches!(k, EventKind::Unhealthy { .. }))
        .await;
    assert!(seen.iter().any(is_ready));
    assert!(
        matches!(seen.last(), Some(EventKind::Unhealthy { detail }) if detail == "no WATCHDOG=1 for 200 ms"),
        "{seen:?}"
    );
    h.until("dog", 10, |i| i.restarts == 1).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn an_adopted_run_is_ready_again_after_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cleanup = Cleanup::default();
    let mut spec = probed("kept", "exec sleep 600", &format!("tcp:127.0.0.1:{port}"));
    spec.detach = true;
    spec.probes.health = Some(pm_protocol::Probe::parse(&format!("tcp:127.0.0.1:{port}")).unwrap());
    spec.probes.health_period_ms = 100;
    let status = |r: Addr<Registry>| async move {
        r.send(GetStatus {
            name: "kept".into(),
        })
        .await
        .unwrap()
        .unwrap()
    };
    let first = {
        let life = Life::start(dir.path());
        let info = start_in(&life.registry, spec).await.unwrap();
        cleanup.group(info.pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while status(life.registry.clone()).await.health != Some(Health::Ready) {
            assert!(Instant::now() < deadline, "not ready in the first life");
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        info.pid
    };
    let life = Life::start(dir.path());
    let mut events = subscribe(&life.registry).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = status(life.registry.clone()).await;
        if info.health == Some(Health::Ready) {
            break info;
        }
        assert!(
            Instant::now() < deadline,
            "not ready after adoption: {info:#?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(info.pid, first, "the same run, adopted");
    assert!(info.ready_since.is_some());
    // Its health checks go on: the listener gone, it is unhealthy (and the policy never keeps it).
    drop(listener);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(life.registry.clone()).await.health != Some(Health::Unhealthy) {
        assert!(Instant::now() < deadline, "no health checks after adoption");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kinds = Vec::new();
    while let Ok(ev) = events.try_recv() {
        kinds.push(ev.kind);
    }
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Unhealthy { .. })),
        "{kinds:?}"
    );
    life.registry
        .send(KillProcess {
            name: "kept".into(),
        })
        .await
        .unwrap()
        .unwrap();
}

#[actix_rt::test]
async fn a_failed_exec_check_says_its_exit_code_and_first_line() {
    let mut h = Harness::new().await;
    let mut spec = ProcessSpec::shell("checked", "sleep 600");
    spec.probes.health =
        Some(pm_protocol::Probe::parse("exec:echo; echo broken >&2; exit 4").unwrap());
    spec.probes.health_period_ms = 50;
    spec.probes.health_failures = 1;
    let pid = h.start(spec).await.unwrap().pid;
    let info = h
        .until("checked", 10, |i| i.health == Some(Health::Unhealthy))
        .await;
    assert_eq!(
        info.health_detail,
        "exec echo; echo broken >&2; exit 4: exit code 4: broken"
    );
    // The policy is never: it keeps running, unhealthy.
    assert_eq!((info.status, info.pid), (Status::Running, pid));
    h.shutdown().await;
}
