//! Dependencies end to end: `pmclient start --after`, the `waiting` status and `waiting_for` in text,
//! list and JSON, clear errors for an unknown condition and a cycle, a stack whose `after` makes a
//! process wait for readiness, and a waiting process that is waiting again after a daemon restart.

mod common;

use std::time::Duration;

use common::*;

fn status_of(d: &Daemon, name: &str) -> String {
    d.status_json(name)["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn start_after_waits_shows_waiting_and_survives_a_daemon_restart() {
    let mut d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("db-up");
    ok(
        &d,
        &[
            "start",
            "--name",
            "web",
            "--command",
            "sleep 600",
            "--after",
            "migrate:completed",
            "--after",
            "db:started",
        ],
    );
    let json = d.status_json("web");
    assert_eq!(json["status"], "waiting", "{json}");
    assert_eq!(
        json["waiting_for"],
        serde_json::json!(["migrate (completed)", "db (started)"])
    );
    let text = ok(&d, &["status", "--name", "web"]);
    assert!(
        text.contains("\nStatus: waiting\n")
            && text.contains("\nWaiting for: migrate (completed), db (started)\n"),
        "{text}"
    );
    assert!(
        ok(&d, &["list"]).contains("web   waiting"),
        "{}",
        ok(&d, &["list"])
    );

    // The graph is in the state file: after a daemon restart it is waiting again.
    assert!(d.terminate(Duration::from_secs(20)).success());
    d.launch(&[], true);
    wait_for("web waiting again", Duration::from_secs(20), || {
        d.pmclient(&["status", "--name", "web", "--format", "json"])
            .status
            .success()
            && status_of(&d, "web") == "waiting"
    });

    let ready = format!("exec:test -f {}", flag.display());
    ok(
        &d,
        &[
            "start",
            "--name",
            "db",
            "--command",
            "sleep 600",
            "--ready",
            &ready,
            "--ready-period",
            "50ms",
        ],
    );
    ok(
        &d,
        &[
            "start",
            "--name",
            "migrate",
            "--command",
            "true",
            "--after",
            "db",
        ],
    );
    assert_eq!(status_of(&d, "migrate"), "waiting");
    // db runs (web's `db:started` holds), but migrate waits for it to be ready.
    assert_eq!(
        d.status_json("web")["waiting_for"],
        serde_json::json!(["migrate (completed)"])
    );
    std::fs::write(&flag, "").unwrap();
    wait_for("web running", Duration::from_secs(10), || {
        status_of(&d, "web") == "running"
    });
    assert_eq!(status_of(&d, "migrate"), "completed");
    assert!(d.status_json("web").get("waiting_for").is_none());
    ok(&d, &["stop", "--all"]);
}

#[test]
fn unknown_conditions_and_cycles_are_clear_errors_at_definition() {
    let d = Daemon::start();
    let out = d.pmclient(&[
        "start",
        "--name",
        "x",
        "--command",
        "true",
        "--after",
        "db:up",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown condition 'up'"),
        "{}",
        stderr(&out)
    );
    let mut s = d.session();
    s.send("!!process.start name:a command:'sleep 600' after:b\n\n");
    assert!(s.body().contains("started"));
    s.send("!!process.start name:b command:'sleep 600' after:'a:started'\n\n");
    let body = s.body();
    assert!(
        body.starts_with("Error") && body.contains("dependency cycle: b -> a -> b"),
        "{body}"
    );
    s.send("!!process.start name:c command:x after:'a:soon'\n\n");
    let body = s.body();
    assert!(body.contains("unknown condition 'soon'"), "{body}");
    assert_eq!(
        d.pmclient(&["status", "--name", "b"]).status.code(),
        Some(1)
    );
    ok(&d, &["stop", "--all"]);
}

#[test]
fn a_stack_waits_for_readiness_through_after() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("up");
    let file = dir.path().join("stack.yaml");
    std::fs::write(
        &file,
        format!(
            "processes:\n  db:\n    command: sleep 600\n    ready: 'exec:test -f {}'\n    \
             ready_period: 50ms\n  web:\n    command: sleep 600\n    after: db\n    \
             restart_with: true\n",
            flag.display()
        ),
    )
    .unwrap();
    ok(&d, &["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(status_of(&d, "web"), "waiting");
    // A changed db is deleted and defined again: web keeps waiting for it.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("sleep 600", "sleep 601", 1)).unwrap();
    let plan = ok(&d, &["apply", "-f", file.to_str().unwrap()]);
    assert!(plan.contains("db (changed"), "{plan}");
    assert_eq!(status_of(&d, "web"), "waiting");
    std::fs::write(&flag, "").unwrap();
    wait_for("web running", Duration::from_secs(10), || {
        status_of(&d, "web") == "running"
    });
    ok(&d, &["stop", "--all"]);
}

/// Starts `name` running `command` with `extra` flags, and waits until it has completed.
fn completed_job(d: &Daemon, name: &str, command: &str, extra: &[&str]) {
    let mut args = vec!["start", "--name", name, "--command", command];
    args.extend_from_slice(extra);
    ok(d, &args);
    wait_for(
        &format!("{name} completed"),
        Duration::from_secs(10),
        || status_of(d, name) == "completed",
    );
}

#[test]
fn a_dependency_that_completed_for_good_started_and_was_ready_if_its_run_was() {
    let d = Daemon::start();
    // A plain job is ready when it runs: once it has exited 0 for good, `started` and `ready`
    // hold for a dependent started after it (it would otherwise wait for a run never coming).
    completed_job(&d, "once", "true", &[]);
    for (name, after) in [("a", "once:started"), ("b", "once")] {
        ok(
            &d,
            &[
                "start",
                "--name",
                name,
                "--command",
                "sleep 600",
                "--after",
                after,
            ],
        );
        wait_for(&format!("{name} running"), Duration::from_secs(10), || {
            status_of(&d, name) == "running"
        });
    }
    // A `ready:exited` job is ready by completing.
    completed_job(&d, "job", "true", &["--ready", "exited"]);
    ok(
        &d,
        &[
            "start",
            "--name",
            "c",
            "--command",
            "sleep 600",
            "--after",
            "job",
        ],
    );
    wait_for("c running", Duration::from_secs(10), || {
        status_of(&d, "c") == "running"
    });

    // A run that ends for good without being ready fails what waits for it, whether it was
    // already waiting or is started after the end; its own `started` still holds.
    ok(
        &d,
        &[
            "start",
            "--name",
            "e",
            "--command",
            "sleep 600",
            "--after",
            "never",
        ],
    );
    assert_eq!(status_of(&d, "e"), "waiting");
    completed_job(&d, "never", "sleep 0.2", &["--ready", "exec:false"]);
    ok(
        &d,
        &[
            "start",
            "--name",
            "f",
            "--command",
            "sleep 600",
            "--after",
            "never",
        ],
    );
    ok(
        &d,
        &[
            "start",
            "--name",
            "g",
            "--command",
            "sleep 600",
            "--after",
            "never:started",
        ],
    );
    for name in ["e", "f"] {
        wait_for(&format!("{name} failed"), Duration::from_secs(10), || {
            status_of(&d, name) == "failed"
        });
        assert_eq!(
            d.status_json(name)["error"],
            "dependency 'never' exited before it was ready"
        );
    }
    wait_for("g running", Duration::from_secs(10), || {
        status_of(&d, "g") == "running"
    });
    ok(&d, &["stop", "--all"]);
}
