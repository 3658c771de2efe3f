//! What a person reads: figures with two decimals, one time format in the log file and in `logs`,
//! and a process that never started saying so, all through the real binaries.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn json_figures_have_two_decimals_and_logs_read_as_the_file() {
    let d = Daemon::start();
    // A busy loop, so that the CPU figure is a fraction with many digits before rounding.
    ok(
        &d,
        &[
            "start",
            "busy",
            "--command",
            "echo ready; while :; do :; done",
            "--log",
        ],
    );
    let pid = d.status_json("busy")["pid"].as_i64().unwrap() as i32;
    let mut d = d;
    d.extra_groups.push(pid);
    let mut cpu = 0.0;
    wait_for("a CPU figure", Duration::from_secs(20), || {
        cpu = d.status_json("busy")["cpu_percent"].as_f64().unwrap_or(0.0);
        cpu > 0.0
    });
    let memory = d.status_json("busy")["memory_mb"].as_f64().unwrap();
    for (what, v) in [("cpu_percent", cpu), ("memory_mb", memory)] {
        let hundredths = v * 100.0;
        assert!(
            (hundredths - hundredths.round()).abs() < 1e-6,
            "{what} {v} has more than two decimals"
        );
    }
    // `pmclient logs` shows the line as the log file holds it: time with milliseconds, `[stdout]`.
    let shown = ok(&d, &["logs", "busy"]);
    let line = shown.lines().next().unwrap_or_default().to_string();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(rest, "[stdout] ready", "{line}");
    let fraction = time.split('.').nth(1).unwrap_or_default();
    assert_eq!(fraction.len(), "123+00:00".len(), "milliseconds: {time}");
    let file = d
        .socket
        .with_extension("sock.d")
        .join("logs")
        .join("busy.log");
    let written = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(written.lines().next(), Some(line.as_str()), "{file:?}");
}

#[test]
fn a_process_that_never_started_says_so() {
    let d = Daemon::start();
    let out = d.pmclient(&[
        "start",
        "nightly",
        "--program",
        "/nonexistent/program",
        "--cron",
        "@daily",
    ]);
    let status = ok(&d, &["status", "nightly"]);
    assert!(
        status.contains("Started: never started\n"),
        "{status}\n(start said: {}{})",
        stdout(&out),
        stderr(&out)
    );
}
