//! Dependencies (`after:`) with real processes: a chain db -> migrate (completed) -> web comes up in
//! order and stops in reverse; each readiness kind holds a dependent back until it is ready; a
//! failed dependency fails what waits for it; a cycle is refused; a waiting process comes back
//! waiting after a daemon restart; `restart_with` restarts a dependent after its dependency. Every
//! wait polls a condition with a deadline.

mod common;
#[path = "health/harness.rs"]
mod harness;
#[allow(dead_code)] // The hang and burst controls serve the health tests.
#[path = "health/server.rs"]
mod server;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{poll_status, start_in, Cleanup, Life};
use harness::{have_python3, probed, raw_notify, Harness};
use pm_actors::registry::*;
use pm_protocol::{Dependency, EventKind, ProcessSpec, RestartPolicy, Status};
use server::HealthServer;

/// `spec` with `after:` entries in their text form.
fn after(mut spec: ProcessSpec, deps: &[&str]) -> ProcessSpec {
    spec.after = deps.iter().map(|d| Dependency::parse(d).unwrap()).collect();
    spec.grace_ms = 2000;
    spec
}

/// A service that writes `<name>` to `log` when it starts and `stop:<name>` when it is stopped.
fn service(name: &str, log: &Path) -> ProcessSpec {
    let log = log.display();
    let mut spec = ProcessSpec::shell(
        name,
        format!(
            "trap 'echo stop:{name} >> {log}; exit 0' TERM; echo {name} >> {log}; \
             while :; do sleep 0.05; done"
        ),
    );
    spec.grace_ms = 2000;
    spec
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[actix_rt::test]
async fn a_chain_comes_up_in_order_and_stops_in_reverse() {
    let mut h = Harness::new().await;
    let log = h.dir.path().join("order");
    let flag = h.dir.path().join("db-up");
    // Defined before what it depends on.
    let web = after(service("web", &log), &["migrate:completed"]);
    let info = h.start(web).await.unwrap();
    assert_eq!(info.status, Status::Waiting, "{info:#?}");
    assert_eq!(info.waiting_for, ["migrate (completed)"]);
    let migrate = after(
        ProcessSpec::shell("migrate", format!("echo migrate >> {}", log.display())),
        &["db"],
    );
    let info = h.start(migrate).await.unwrap();
    assert_eq!(info.waiting_for, ["db (ready)"]);
    let db = format!(
        "trap 'echo stop:db >> {l}; exit 0' TERM; echo db >> {l}; \
         while [ ! -f {f} ]; do sleep 0.02; done; echo accepting; while :; do sleep 0.05; done",
        l = log.display(),
        f = flag.display()
    );
    let mut db = probed("db", &db, "log:^accepting$");
    db.log.enabled = true;
    h.start(db).await.unwrap();
    h.until("db", 10, |i| i.status == Status::Running).await;
    // Running, not ready: the others still wait.
    assert_eq!(h.status("migrate").await.status, Status::Waiting);
    assert_eq!(h.status("web").await.waiting_for, ["migrate (completed)"]);
    std::fs::write(&flag, "").unwrap();
    h.until("web", 10, |i| i.status == Status::Running).await;
    assert_eq!(h.status("migrate").await.status, Status::Completed);
    // Running is not yet having written its line: wait for the third.
    common::poll("web's line", Duration::from_secs(10), || async {
        (lines(&log).len() >= 3).then_some(())
    })
    .await;
    assert_eq!(lines(&log), ["db", "migrate", "web"]);
    // The events told the waiting.
    assert!(h
        .drain("web")
        .iter()
        .any(|k| matches!(k, EventKind::Waiting { waiting_for } if waiting_for == &["migrate (completed)"])));
    let all = h.registry.send(StopAll).await.unwrap().unwrap();
    assert!(all.failed.is_empty(), "{all:?}");
    assert_eq!(lines(&log)[3..], ["stop:web", "stop:db"]);
    h.shutdown().await;
}

/// `dep` is started with readiness `ready`; a dependent waits until `release` makes it ready.
async fn dependent_waits_for(h: &mut Harness, dep: ProcessSpec, release: impl FnOnce()) {
    let name = dep.name.clone();
    let dependent = after(ProcessSpec::shell("user", "sleep 600"), &[&name]);
    h.start(dep).await.unwrap();
    let info = h.start(dependent).await.unwrap();
    assert_eq!(info.status, Status::Waiting, "{info:#?}");
    h.until(&name, 10, |i| {
        i.status == Status::Running || i.status == Status::Completed
    })
    .await;
    let hold = Instant::now() + Duration::from_millis(300);
    while Instant::now() < hold {
        let info = h.status("user").await;
        assert_eq!(info.status, Status::Waiting, "{info:#?}");
        assert_eq!(info.waiting_for, [format!("{name} (ready)")]);
        actix_rt::time::sleep(Duration::from_millis(30)).await;
    }
    release();
    h.until("user", 10, |i| i.status == Status::Running).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn tcp_readiness_holds_a_dependent() {
    let mut h = Harness::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dep = probed("db", "sleep 600", &format!("tcp:127.0.0.1:{port}"));
    let mut listener = None;
    dependent_waits_for(&mut h, dep, || {
        listener = Some(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    })
    .await;
}

#[actix_rt::test]
async fn http_readiness_holds_a_dependent() {
    let mut h = Harness::new().await;
    let server = HealthServer::start(503);
    let dep = probed("api", "sleep 600", &format!("http:{}", server.url()));
    dependent_waits_for(&mut h, dep, || server.set(200)).await;
}

#[actix_rt::test]
async fn exec_readiness_holds_a_dependent() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("up");
    let dep = probed(
        "q",
        "sleep 600",
        &format!("exec:test -f {}", flag.display()),
    );
    dependent_waits_for(&mut h, dep, || std::fs::write(&flag, "").unwrap()).await;
}

#[actix_rt::test]
async fn log_readiness_holds_a_dependent() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("up");
    let command = format!(
        "while [ ! -f {} ]; do sleep 0.02; done; echo ready now; sleep 600",
        flag.display()
    );
    let dep = probed("logger", &command, "log:ready now");
    dependent_waits_for(&mut h, dep, || std::fs::write(&flag, "").unwrap()).await;
}

#[actix_rt::test]
async fn notify_readiness_holds_a_dependent() {
    if !have_python3() {
        return;
    }
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("up");
    let command = format!(
        "while [ ! -f {} ]; do sleep 0.02; done; {}; sleep 600",
        flag.display(),
        raw_notify("READY=1")
    );
    let dep = probed("svc", &command, "notify");
    dependent_waits_for(&mut h, dep, || std::fs::write(&flag, "").unwrap()).await;
}

#[actix_rt::test]
async fn exited_readiness_holds_a_dependent() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("up");
    let command = format!("while [ ! -f {} ]; do sleep 0.02; done", flag.display());
    let dep = probed("job", &command, "exited");
    dependent_waits_for(&mut h, dep, || std::fs::write(&flag, "").unwrap()).await;
}

#[actix_rt::test]
async fn a_started_condition_needs_only_a_run() {
    let mut h = Harness::new().await;
    let dep = probed("slow", "sleep 600", "exec:false");
    h.start(dep).await.unwrap();
    let user = after(ProcessSpec::shell("user", "sleep 600"), &["slow:started"]);
    h.start(user).await.unwrap();
    h.until("user", 10, |i| i.status == Status::Running).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_failed_dependency_fails_what_waits_for_it() {
    let mut h = Harness::new().await;
    let web = after(ProcessSpec::shell("web", "sleep 600"), &["db"]);
    let top = after(ProcessSpec::shell("top", "sleep 600"), &["web"]);
    h.start(web).await.unwrap();
    h.start(top).await.unwrap();
    let mut db = probed("db", "sleep 0.2; exit 4", "exec:false");
    db.restart.policy = RestartPolicy::OnFailure;
    db.restart.max_restarts = 1;
    db.restart.backoff_initial_ms = 50;
    h.start(db).await.unwrap();
    let info = h.until("web", 10, |i| i.status == Status::Failed).await;
    assert!(
        info.error
            .starts_with("dependency 'db' failed: gave up after 1 restart"),
        "{}",
        info.error
    );
    let top = h.until("top", 10, |i| i.status == Status::Failed).await;
    assert!(
        top.error
            .starts_with("dependency 'web' failed: dependency 'db' failed"),
        "{}",
        top.error
    );
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_deleted_dependency_fails_its_dependent() {
    let mut h = Harness::new().await;
    let mut gone = probed("gone", "sleep 600", "exec:false");
    gone.grace_ms = 500;
    h.start(gone).await.unwrap();
    h.start(after(ProcessSpec::shell("lone", "sleep 600"), &["gone"]))
        .await
        .unwrap();
    h.registry
        .send(DeleteProcess {
            name: "gone".into(),
        })
        .await
        .unwrap()
        .unwrap();
    let info = h.until("lone", 10, |i| i.status == Status::Failed).await;
    assert_eq!(info.error, "dependency 'gone' failed: deleted");
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_cycle_is_refused_naming_it() {
    let mut h = Harness::new().await;
    h.start(after(ProcessSpec::shell("web", "sleep 600"), &["api"]))
        .await
        .unwrap();
    let err = h
        .start(after(ProcessSpec::shell("api", "sleep 600"), &["web"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("dependency cycle: api -> web -> api"),
        "{err}"
    );
    let err = h
        .start(after(
            ProcessSpec::shell("me", "sleep 600"),
            &["me:started"],
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("dependency cycle: me -> me"),
        "{err}"
    );
    // Refused means not defined: the name is free.
    h.start(ProcessSpec::shell("api", "sleep 600"))
        .await
        .unwrap();
    h.until("web", 10, |i| i.status == Status::Running).await;
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_waiting_process_comes_back_waiting_after_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cleanup = Cleanup::default();
    {
        let life = Life::start(dir.path());
        start_in(&life.registry, ProcessSpec::shell("mig", "true"))
            .await
            .unwrap();
        poll_status(&life.registry, "mig", |i| i.status == Status::Completed).await;
        let web = after(ProcessSpec::shell("web", "sleep 600"), &["db"]);
        let info = start_in(&life.registry, web).await.unwrap();
        assert_eq!(info.status, Status::Waiting);
        // The graph is in the state file before this life ends.
        let state = dir.path().join("state.json");
        let deadline = Instant::now() + Duration::from_secs(10);
        let written = |s: String| {
            s.contains("\"after\"") && s.replace(' ', "").contains("\"completed\":true")
        };
        while !std::fs::read_to_string(&state).is_ok_and(written) {
            assert!(
                Instant::now() < deadline,
                "the state file has no dependency"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        life.end();
    }
    let life = Life::start(dir.path());
    let info = poll_status(&life.registry, "web", |i| i.status == Status::Waiting).await;
    assert_eq!(info.waiting_for, ["db (ready)"]);
    let db = start_in(&life.registry, ProcessSpec::shell("db", "sleep 600"))
        .await
        .unwrap();
    cleanup.group(db.pid);
    let web = poll_status(&life.registry, "web", |i| i.status == Status::Running).await;
    cleanup.group(web.pid);
    // The migration that completed in the first life still counts in this one.
    let late = after(ProcessSpec::shell("late", "sleep 600"), &["mig:completed"]);
    let late = start_in(&life.registry, late).await.unwrap();
    cleanup.group(late.pid);
    assert_eq!(late.status, Status::Running, "{late:#?}");
    life.registry.send(Shutdown).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn restart_with_restarts_a_running_dependent_after_its_dependency() {
    let mut h = Harness::new().await;
    h.start(ProcessSpec::shell("db", "sleep 600"))
        .await
        .unwrap();
    let mut with = after(ProcessSpec::shell("with", "sleep 600"), &["db"]);
    with.restart_with = true;
    let without = after(ProcessSpec::shell("without", "sleep 600"), &["db"]);
    let with = h.start(with).await.unwrap();
    let without = h.start(without).await.unwrap();
    h.registry
        .send(RestartProcess { name: "db".into() })
        .await
        .unwrap()
        .unwrap();
    let db = h.status("db").await;
    let again = h
        .until("with", 10, |i| {
            i.status == Status::Running && i.pid != with.pid
        })
        .await;
    assert!(db.pid > 0 && again.pid > 0);
    assert_eq!(h.status("without").await.pid, without.pid);
    h.shutdown().await;
}

#[actix_rt::test]
async fn the_shutdown_stops_dependents_first_level_by_level() {
    let mut h = Harness::new().await;
    let log = h.dir.path().join("order");
    h.start(service("db", &log)).await.unwrap();
    h.start(after(service("cache", &log), &["db:started"]))
        .await
        .unwrap();
    h.start(after(service("api", &log), &["db", "cache"]))
        .await
        .unwrap();
    h.start(after(service("web", &log), &["api"]))
        .await
        .unwrap();
    for name in ["db", "cache", "api", "web"] {
        h.until(name, 10, |i| i.status == Status::Running).await;
    }
    // Each has written its name once its shell runs its loop (its trap is set before).
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines(&log).len() < 4 {
        assert!(Instant::now() < deadline, "{:?}", lines(&log));
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    h.shutdown().await;
    assert_eq!(
        lines(&log)[4..],
        ["stop:web", "stop:api", "stop:cache", "stop:db"]
    );
}

#[actix_rt::test]
async fn a_cron_fire_waits_for_its_dependencies() {
    let mut h = Harness::new().await;
    let flag = h.dir.path().join("gate-up");
    let out = h.dir.path().join("fires");
    let gate = probed(
        "gate",
        "sleep 600",
        &format!("exec:test -f {}", flag.display()),
    );
    h.start(gate).await.unwrap();
    let mut tick = after(
        ProcessSpec::shell("tick", format!("echo fired >> {}", out.display())),
        &["gate"],
    );
    tick.cron = Some("* * * * * *".into());
    let info = h.start(tick).await.unwrap();
    assert_eq!(info.status, Status::Scheduled, "{info:#?}");
    let fires = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // The fire waits: the process is `waiting`, and further fires are skipped while it does.
    let info = h
        .until("tick", 10, |i| {
            i.status == Status::Waiting && i.skipped_runs >= 1
        })
        .await;
    assert_eq!(info.waiting_for, ["gate (ready)"], "{info:#?}");
    assert_eq!(fires(), 0, "a fire ran before its dependency was ready");
    std::fs::write(&flag, "").unwrap();
    common::poll(
        "a fire once the gate is ready",
        Duration::from_secs(10),
        || async { (fires() >= 1).then_some(()) },
    )
    .await;
    h.shutdown().await;
}
