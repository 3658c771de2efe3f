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

/// `pmclient logs -f` running, its stdout and stderr lines gathered as they come; killed on drop.
struct Follower {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    err: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Follower {
    fn start(d: &Daemon, name: &str) -> Follower {
        let mut child = d
            .pmclient_cmd(&["logs", "--name", name, "-f"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let gather = |stream: Box<dyn std::io::Read + Send>| {
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let into = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line);
                }
            });
            lines
        };
        let out = gather(Box::new(child.stdout.take().unwrap()));
        let err = gather(Box::new(child.stderr.take().unwrap()));
        Follower { child, out, err }
    }

    /// The number each printed line ends with (the lines of `seq`), in the order printed.
    fn numbers(&self) -> Vec<u64> {
        let out = self.out.lock().unwrap();
        out.iter()
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    }

    fn printed(&self, text: &str) -> bool {
        let out = self.out.lock().unwrap();
        out.iter().any(|l| l.ends_with(&format!(" {text}")))
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_follow_prints_every_line_once_across_reads() {
    let d = Daemon::start();
    let go = |b: u32| d.dir.path().join(format!("go{b}"));
    // Three bursts of 600 lines, each let out by the test once the one before has been printed.
    let command = format!(
        "for b in 0 1 2; do while [ ! -e {}$b ]; do sleep 0.02; done; seq $((b*600+1)) $((b*600+600)); done; sleep 3600",
        d.dir.path().join("go").display()
    );
    ok(
        &d,
        &["start", "--name", "bursts", "--command", &command, "--log"],
    );
    let follow = Follower::start(&d, "bursts");
    for b in 0..3u32 {
        std::fs::write(go(b), "").unwrap();
        let last = u64::from(b + 1) * 600;
        wait_for(
            &format!("line {last} to be printed"),
            Duration::from_secs(20),
            || follow.numbers().last() == Some(&last),
        );
    }
    assert_eq!(follow.numbers(), (1..=1800).collect::<Vec<u64>>());
    assert!(follow.err.lock().unwrap().is_empty(), "{:?}", follow.err);
    ok(&d, &["stop", "--name", "bursts"]);
}

#[test]
fn logs_follow_counts_the_lines_that_came_and_went_between_two_reads() {
    let d = Daemon::start();
    let go = d.dir.path().join("go");
    // 3,000 lines at once: more than the 1,000 the daemon keeps, all between two reads.
    let command = format!(
        "echo ready; while [ ! -e {} ]; do sleep 0.02; done; seq 1 3000; sleep 3600",
        go.display()
    );
    ok(
        &d,
        &["start", "--name", "flood", "--command", &command, "--log"],
    );
    let follow = Follower::start(&d, "flood");
    wait_for("the follower's first read", Duration::from_secs(20), || {
        follow.printed("ready")
    });
    std::fs::write(&go, "").unwrap();
    wait_for("line 3000 to be printed", Duration::from_secs(20), || {
        follow.numbers().last() == Some(&3000)
    });
    let numbers = follow.numbers();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "each line once, in order"
    );
    let skipped: u64 = follow
        .err
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            l.strip_prefix("pmclient: ")
                .and_then(|l| l.split(' ').next()?.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("not a count of lines: {l}"))
        })
        .sum();
    assert!(skipped >= 2000, "the ring keeps 1,000 of 3,000: {skipped}");
    assert_eq!(numbers.len() as u64 + skipped, 3000);
    ok(&d, &["stop", "--name", "flood"]);
}
