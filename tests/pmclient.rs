//! pmclient end to end: every subcommand against a real daemon, output and exit codes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.pmclient(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn quotes_newlines_and_backslashes_survive_the_trip() {
    let d = Daemon::start();
    let command = "printf '%s\\n' \"it's \\\\ \\\"quoted\\\"\"\necho 'second line'";
    ok(
        &d,
        &["start", "--name", "quoted", "--command", command, "--log"],
    );
    assert_eq!(d.status_json("quoted")["command"], command);
    let mut logs = String::new();
    wait_for("the output in the logs", Duration::from_secs(10), || {
        logs = ok(&d, &["logs", "--name", "quoted"]);
        logs.contains("second line")
    });
    assert!(logs.contains("it's \\ \"quoted\""), "{logs}");
}

#[test]
fn the_seed_spellings_and_every_lifecycle_command() {
    let d = Daemon::start();
    let sock = d.socket.to_str().unwrap();
    let out = Command::new(PMCLIENT)
        .args([
            "-socket",
            sock,
            "-secret",
            SECRET,
            "start",
            "-name",
            "myprocess",
            "-command",
            "sleep 60",
            "-log",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Process 'myprocess' started successfully\n");
    let table = ok(&d, &["list"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "PID", "CPU", "MEM", "UPTIME", "RESTARTS"]
    );
    assert!(
        table.lines().nth(1).unwrap().starts_with("myprocess"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&d, &["list", "-format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert!(ok(&d, &["status", "-name", "myprocess"]).contains("Name: myprocess"));
    assert_eq!(d.status_json("myprocess")["status"], "running");
    assert_eq!(
        ok(&d, &["stop", "-name", "myprocess"]),
        "Process 'myprocess' stopped successfully\n"
    );
    assert_eq!(
        ok(&d, &["restart", "--name", "myprocess"]),
        "Process 'myprocess' restarted successfully\n"
    );
    assert_eq!(d.status_json("myprocess")["status"], "running");
    assert_eq!(
        ok(&d, &["signal", "--name", "myprocess", "--signal", "HUP"]),
        "Process 'myprocess' signalled successfully\n"
    );
    ok(&d, &["restart", "--name", "myprocess"]);
    assert_eq!(
        ok(&d, &["kill", "--name", "myprocess"]),
        "Process 'myprocess' killed successfully\n"
    );
    assert_ne!(d.status_json("myprocess")["status"], "running");
    assert_eq!(
        ok(&d, &["delete", "-name", "myprocess"]),
        "Process 'myprocess' deleted successfully\n"
    );
    assert_eq!(ok(&d, &["list", "--format", "json"]).trim(), "[]");
}

#[test]
fn stop_all_stops_every_live_process() {
    let d = Daemon::start();
    for n in 0..4 {
        let name = format!("w{n}");
        let args = [
            "start",
            "--name",
            &name,
            "--command",
            "sleep 60",
            "--restarts",
            "-1",
        ];
        ok(&d, &args);
    }
    ok(&d, &["start", "--name", "done", "--command", "true"]);
    wait_for("'done' to complete", Duration::from_secs(10), || {
        d.status_json("done")["status"] == "completed"
    });
    let pids = d.pids();
    assert_eq!(pids.len(), 4, "{pids:?}");

    assert_eq!(ok(&d, &["stop", "--all"]), "Stopped 4 processes\n");
    for pid in &pids {
        assert!(!alive(*pid), "{pid} survived the stop");
    }
    let list: serde_json::Value =
        serde_json::from_str(&ok(&d, &["list", "--format", "json"])).unwrap();
    for p in list.as_array().unwrap() {
        let want = if p["name"] == "done" {
            "completed"
        } else {
            "stopped"
        };
        assert_eq!(p["status"], want, "{p}");
        assert_eq!(p["pid"], 0, "{p}");
    }
    // The original's single-dash spelling; nothing is left alive to stop.
    assert_eq!(ok(&d, &["stop", "-all"]), "Stopped 0 processes\n");

    // Exactly one of --name and --all.
    for args in [&["stop"][..], &["stop", "--name", "w0", "--all"]] {
        let out = d.pmclient(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn start_options_reach_the_process() {
    let d = Daemon::start();
    let cwd = d.dir.path().to_str().unwrap().to_string();
    ok(
        &d,
        &[
            "start",
            "--name",
            "opts",
            "--program",
            "sh",
            "--arg",
            "-c",
            "--arg",
            "echo \"$GREETING from $(pwd)\"; sleep 60",
            "--env",
            "GREETING=hi there",
            "--cwd",
            &cwd,
            "--log",
            "--restarts",
            "2",
            "--stop-signal",
            "INT",
            "--grace",
            "2s",
            "--jobid",
            "j7",
            "--deadline",
            "1h",
        ],
    );
    let st = d.status_json("opts");
    assert_eq!(st["job_id"], "j7");
    assert_eq!(st["deadline"], 3600);
    wait_for("the output", Duration::from_secs(10), || {
        ok(&d, &["logs", "--name", "opts", "--lines", "5"])
            .contains(&format!("hi there from {cwd}"))
    });
    ok(&d, &["stop", "--name", "opts"]);
}

#[test]
fn exit_codes_tell_errors_from_an_unreachable_daemon() {
    let d = Daemon::start();
    let out = d.pmclient(&["stop", "--name", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "Error stopping process: process 'ghost' not found\n"
    );
    let out = d.pmclient(&["status", "--name", "ghost", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));

    let gone = d.dir.path().join("nobody.sock");
    let out = Command::new(PMCLIENT)
        .arg("--socket")
        .arg(&gone)
        .args(["--secret", "x", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("not running") && err.contains(gone.to_str().unwrap()),
        "{err}"
    );
    let out = Command::new(PMCLIENT)
        .arg("--socket")
        .arg(&gone)
        .arg("list")
        .env_remove("PM_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn attach_adopts_a_running_pid() {
    let mut d = Daemon::start();
    let mut stray = Command::new("sleep").arg("60").spawn().unwrap();
    d.extra_groups.push(stray.id() as i32);
    let pid = stray.id().to_string();
    assert_eq!(
        ok(&d, &["attach", "--pid", &pid, "--name", "stray"]),
        "Process 'stray' attached successfully\n"
    );
    assert_eq!(d.status_json("stray")["pid"], stray.id());
    ok(&d, &["kill", "--name", "stray"]);
    let _ = stray.wait();
}

#[test]
fn watch_prints_events_as_they_happen() {
    let d = Daemon::start();
    let out = d.pmclient(&["watch", "--name", "ghost"]);
    assert_eq!(out.status.code(), Some(1), "an unknown name is an error");
    ok(&d, &["start", "--name", "w", "--command", "sleep 60"]);
    let mut watch = d
        .pmclient_cmd(&["watch", "--name", "w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "Watching 'w'; send any line to stop"
    );
    ok(&d, &["stop", "--name", "w"]);
    let event = lines.next().unwrap().unwrap();
    assert!(event.contains('w') && event.contains("stop"), "{event}");
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[test]
fn logs_follow_prints_new_lines() {
    let d = Daemon::start();
    ok(
        &d,
        &[
            "start",
            "--name",
            "ticker",
            "--command",
            "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done",
            "--log",
        ],
    );
    let mut follow = d
        .pmclient_cmd(&["logs", "--name", "ticker", "--lines", "1", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let line = lines.next().unwrap().unwrap();
        seen.push(line.rsplit(' ').next().unwrap().to_string());
    }
    follow.kill().unwrap();
    follow.wait().unwrap();
    let numbers: Vec<u32> = seen
        .iter()
        .map(|t| t.trim_start_matches("tick").parse().unwrap())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no repeats: {seen:?}"
    );
    ok(&d, &["stop", "--name", "ticker"]);
}
