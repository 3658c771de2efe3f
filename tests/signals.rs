//! Signals end to end: a stop signal checked where it is defined, a stopped process woken by a stop,
//! and an attached process's kernel state shown at once.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Names that every "invalid signal" message lists.
fn lists_valid_names(text: &str) -> bool {
    text.contains("HUP, INT, QUIT") && text.contains("TERM") && text.contains("SYS")
}

#[test]
fn a_bad_stop_signal_is_refused_by_pmclient_and_the_socket() {
    let d = Daemon::start();
    let out = d.pmclient(&[
        "start",
        "--name",
        "bogus",
        "--command",
        "sleep 60",
        "--stop-signal",
        "BOGUS",
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("invalid signal 'BOGUS'") && lists_valid_names(&err),
        "{err}"
    );

    let mut s = d.session();
    s.send("!!process.start name:bogus command:'sleep 60' stop_signal:BOGUS template:true\n\n");
    let body = s.body();
    assert!(
        body.contains("invalid value 'BOGUS' for 'stop_signal'") && lists_valid_names(&body),
        "{body}"
    );
    let out = d.pmclient(&["status", "--name", "bogus"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let template = d.dir.path().join("pm.sock.d/templates/bogus.json");
    assert!(!template.exists(), "a template was written");

    // A valid name in any spelling is taken, and kept in the template as its canonical name.
    ok(
        &d,
        &[
            "start",
            "--name",
            "good",
            "--command",
            "sleep 60",
            "--stop-signal",
            "2",
            "--template",
        ],
    );
    let text = std::fs::read_to_string(d.dir.path().join("pm.sock.d/templates/good.json")).unwrap();
    assert!(text.contains(r#""stop_signal": "SIGINT""#), "{text}");
    ok(&d, &["kill", "--name", "good"]);
}

#[test]
fn a_template_with_a_bad_stop_signal_is_skipped_with_its_reason() {
    let mut d = Daemon::unstarted();
    let templates = d.dir.path().join("pm.sock.d/templates");
    std::fs::create_dir_all(&templates).unwrap();
    let template = |name: &str, signal: &str| {
        format!(
            r#"{{"name": "{name}", "cmd": "sleep 60", "p_options": {{"shell": true,
                "stop_signal": "{signal}", "run_on_startup": true}}}}"#
        )
    };
    std::fs::write(templates.join("bad.json"), template("bad", "BOGUS")).unwrap();
    // An older file's short name still loads.
    std::fs::write(templates.join("old.json"), template("old", "INT")).unwrap();
    d.launch(&[], true);
    wait_for("the templates line", Duration::from_secs(20), || {
        d.stderr().contains("templates: ")
    });
    let log = d.stderr();
    assert!(
        log.contains("1 skipped, 1 to start on startup: old"),
        "{log}"
    );
    assert!(
        log.contains("bad.json")
            && log.contains("invalid signal 'BOGUS'")
            && lists_valid_names(&log),
        "{log}"
    );
    wait_for("old to run", Duration::from_secs(20), || {
        d.status_json("old")["status"] == "running"
    });
    d.extra_groups
        .push(d.status_json("old")["pid"].as_i64().unwrap() as i32);
    ok(&d, &["kill", "--name", "old"]);
}

#[test]
fn a_stopped_process_gets_its_stop_signal_at_once() {
    let d = Daemon::start();
    let marker = d.dir.path().join("got-term");
    let ready = d.dir.path().join("ready");
    let script = format!(
        "trap 'echo TERM > {marker}; exit 0' TERM; touch {ready}; while true; do sleep 0.1; done",
        marker = marker.display(),
        ready = ready.display()
    );
    ok(
        &d,
        &[
            "start",
            "--name",
            "frozen",
            "--command",
            &script,
            "--grace",
            "60s",
        ],
    );
    wait_for("the trap to be set", Duration::from_secs(10), || {
        ready.exists()
    });
    ok(&d, &["signal", "--name", "frozen", "--signal", "STOP"]);
    let pid = d.status_json("frozen")["pid"].as_i64().unwrap();
    wait_for("the process to stop", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('T')
        })
    });
    let asked = Instant::now();
    ok(&d, &["stop", "--name", "frozen"]);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "stop took {took:?}: the stop signal waited for the SIGKILL"
    );
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "TERM\n",
        "the program did not see SIGTERM"
    );
}

#[test]
fn an_attached_process_shows_its_kernel_state_at_once() {
    let mut d = Daemon::start();
    let mut stray = Command::new("sleep").arg("60").spawn().unwrap();
    d.extra_groups.push(stray.id() as i32);
    wait_for("sleep to sleep", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{}/stat", stray.id()))
            .is_ok_and(|s| s.contains("(sleep) S"))
    });
    let pid = stray.id().to_string();
    ok(&d, &["attach", "--pid", &pid, "--name", "stray"]);
    let text = ok(&d, &["status", "--name", "stray"]);
    assert_eq!(d.status_json("stray")["state"], "sleeping", "{text}");
    assert!(text.contains("sleeping"), "{text}");
    ok(&d, &["kill", "--name", "stray"]);
    let _ = stray.wait();
}
