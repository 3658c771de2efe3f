//! Readiness and health end to end: `pmclient start` flags, the HEALTH column, the JSON fields,
//! clear errors at definition, and readiness after a daemon restart (the spec's probes are in the
//! state file).

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn health_of(d: &Daemon, name: &str) -> String {
    d.status_json(name)["health"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn pmclient_flags_health_column_json_and_a_daemon_restart() {
    let mut d = Daemon::start();
    let port = free_port();
    let ready = format!("tcp:127.0.0.1:{port}");
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
            "--health",
            &ready,
            "--health-period",
            "100ms",
            "--restarts",
            "-1",
        ],
    );
    ok(&d, &["start", "--name", "plain", "--command", "sleep 600"]);
    assert_eq!(health_of(&d, "db"), "starting");
    let table = ok(&d, &["list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "HEALTH", "PID", "CPU", "MEM", "UPTIME", "RESTARTS"]
    );
    assert!(table.contains("db     running  starting"), "{table}");
    assert!(table.contains("plain  running  -"), "{table}");
    assert!(d.status_json("plain").get("health").is_none());

    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_for("db ready", Duration::from_secs(10), || {
        health_of(&d, "db") == "ready"
    });
    let json = d.status_json("db");
    assert!(
        json["ready_since"].as_str().is_some_and(|s| !s.is_empty()),
        "{json}"
    );
    assert!(ok(&d, &["status", "--name", "db"]).contains("\nHealth: ready\n"));

    // The daemon goes and comes back: the readiness is asked again, and holds.
    assert!(d.terminate(Duration::from_secs(20)).success());
    d.launch(&[], true);
    wait_for("db ready again", Duration::from_secs(20), || {
        d.pmclient(&["status", "--name", "db", "--format", "json"])
            .status
            .success()
            && health_of(&d, "db") == "ready"
    });
    drop(listener);
}

#[test]
fn bad_readiness_and_health_are_clear_errors_at_definition() {
    let d = Daemon::start();
    for (flags, word) in [
        (["--ready", "http:https://example.com/"], "https"),
        (["--ready", "log:("], "regex"),
        (["--health", "udp:x"], "check"),
        (["--ready", "soon"], "readiness"),
    ] {
        let mut args = vec!["start", "--name", "x", "--command", "true"];
        args.extend_from_slice(&flags);
        let out = d.pmclient(&args);
        assert!(!out.status.success(), "{flags:?}");
        assert!(stderr(&out).contains(word), "{flags:?}: {}", stderr(&out));
    }
    let out = d.pmclient(&[
        "start",
        "--name",
        "x",
        "--command",
        "true",
        "--watchdog",
        "5s",
    ]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success() && said.contains("notify"), "{said}");
    // The same in heroscript, over the socket.
    let mut s = d.session();
    s.send("!!process.start name:x command:true ready:'tcp:nohost'\n\n");
    let body = s.body();
    assert!(
        body.starts_with("Error") && body.contains("host:port"),
        "{body}"
    );
}
