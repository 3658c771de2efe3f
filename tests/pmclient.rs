//! pmclient end to end: every subcommand against a real daemon, output and exit codes; its help,
//! completions and man page.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

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

/// `pmclient watch` of the process `w` (given by `args`), started, with its first line read.
fn watch_w(
    d: &Daemon,
    args: &[&str],
    stdin: Stdio,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut watch = d
        .pmclient_cmd(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().unwrap().unwrap(),
        "Watching 'w'; send any line to stop"
    );
    (watch, lines)
}

#[test]
fn watch_prints_events_as_they_happen() {
    let d = Daemon::start();
    let out = d.pmclient(&["watch", "--name", "ghost"]);
    assert_eq!(out.status.code(), Some(1), "an unknown name is an error");
    ok(&d, &["start", "--name", "w", "--command", "sleep 60"]);
    // Standard input at its end from the start (/dev/null) is no line: the watch goes on.
    let (mut watch, mut lines) = watch_w(&d, &["watch", "--name", "w"], Stdio::null());
    ok(&d, &["stop", "--name", "w"]);
    let event = lines.next().unwrap().unwrap();
    assert!(event.contains('w') && event.contains("stop"), "{event}");
    assert!(
        watch.try_wait().unwrap().is_none(),
        "the watch ended at EOF"
    );
    watch.kill().unwrap();
    watch.wait().unwrap();
}

#[test]
fn watch_stops_on_a_line_from_stdin() {
    let d = Daemon::start();
    ok(&d, &["start", "w", "--command", "sleep 60"]);
    let (mut watch, mut lines) = watch_w(&d, &["watch", "w"], Stdio::piped());
    let mut stdin = watch.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "Watch ended");
    let mut status = None;
    wait_for("the watch to exit", Duration::from_secs(10), || {
        status = watch.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    drop(stdin);
    ok(&d, &["stop", "w"]);
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

#[test]
fn relative_paths_are_the_users_not_the_daemons() {
    let d = Daemon::start();
    // The daemon runs in another directory: only pmclient's own can make these paths work.
    std::fs::create_dir_all(d.dir.path().join("here/sub")).unwrap();
    // As getcwd(3) gives it to pmclient, and `pwd` to the script.
    let here = d.dir.path().join("here").canonicalize().unwrap();
    let script = here.join("hello.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello from $(pwd)\"\nsleep 60\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run_here = |args: &[&str]| {
        let out = d.pmclient_cmd(args).current_dir(&here).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    };
    run_here(&["start", "prog", "--program", "./hello.sh", "--log"]);
    run_here(&["start", "shell", "--command", "./hello.sh", "--log"]);
    run_here(&[
        "start",
        "sub",
        "--command",
        "./../hello.sh",
        "--cwd",
        "sub",
        "--log",
    ]);
    let wants = [
        ("prog", format!("hello from {}", here.display())),
        ("shell", format!("hello from {}", here.display())),
        ("sub", format!("hello from {}", here.join("sub").display())),
    ];
    for (name, want) in &wants {
        wait_for(
            &format!("{name}'s greeting"),
            Duration::from_secs(10),
            || ok(&d, &["logs", name]).contains(want.as_str()),
        );
    }
    assert_eq!(d.status_json("prog")["command"], script.to_str().unwrap());
    ok(&d, &["stop", "--all"]);
}

/// pmclient's stdout for arguments that need no daemon, which must succeed.
fn offline(args: &[&str]) -> String {
    let out = Command::new(PMCLIENT).args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The help of `flag`, which must say something after the flag and its value: on the same line, or
/// (when clap puts every description on a line of its own) on the next.
fn described(help: &str, flag: &str) -> String {
    let lines: Vec<&str> = help.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with('-') && l.split([' ', ',']).any(|w| w == flag))
        .unwrap_or_else(|| panic!("{flag} is not in the help:\n{help}"));
    let same_line = lines[at]
        .trim()
        .split_once("  ")
        .map_or("", |(_, d)| d.trim());
    let next_line = lines.get(at + 1).map_or("", |l| l.trim());
    let description = if !same_line.is_empty() {
        same_line
    } else if !next_line.starts_with('-') {
        next_line
    } else {
        ""
    };
    assert!(
        !description.is_empty(),
        "{flag} has no description: {}",
        lines[at]
    );
    format!("{} {description}", lines[at].trim())
}

/// The part of a help text under `heading` (up to the next blank line).
fn section<'a>(help: &'a str, heading: &str) -> &'a str {
    let start = help
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no '{heading}' in:\n{help}"));
    let rest = &help[start + heading.len() + 2..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[test]
fn help_lists_exit_codes_flags_and_global_options_apart() {
    let help = offline(&["--help"]);
    let codes = section(&help, "Exit codes:");
    for code in ["0", "1", "2", "64"] {
        assert!(
            codes
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit code {code}:\n{codes}"
        );
    }
    assert!(codes.contains("usage"), "{codes}");

    let start = offline(&["start", "--help"]);
    for flag in ["--name", "--jobid", "--user", "--group"] {
        described(&start, flag);
    }
    let globals = section(&start, "Global options:");
    for flag in ["--socket", "--secret", "--secret-file"] {
        described(globals, flag);
        assert!(
            !section(&start, "Options:").contains(flag),
            "{flag} among start's own options"
        );
    }
    described(&offline(&["signal", "--help"]), "--signal");
    described(&offline(&["attach", "--help"]), "--pid");
    let logs = offline(&["logs", "--help"]);
    assert!(
        described(&logs, "--lines").contains("[default: all]"),
        "{logs}"
    );
    assert!(described(&logs, "--format").contains("json"), "{logs}");
}

#[test]
fn completions_and_man_page_are_printed() {
    let bash = offline(&["completions", "bash"]);
    for sub in ["start", "stop", "logs", "watch", "completions", "man"] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
    }
    for shell in ["zsh", "fish"] {
        assert!(
            offline(&["completions", shell]).contains("watch"),
            "{shell}"
        );
    }
    let man = offline(&["man"]);
    assert!(man.lines().any(|l| l.starts_with(".TH")), "{man}");
    let out = Command::new(PMCLIENT)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
}

#[test]
fn a_positional_name_works_wherever_name_does() {
    let d = Daemon::start();
    assert_eq!(
        ok(
            &d,
            &["start", "web", "--command", "echo up; sleep 60", "--log"]
        ),
        "Process 'web' started successfully\n"
    );
    assert!(ok(&d, &["status", "web"]).contains("Name: web"));
    wait_for("web's output", Duration::from_secs(10), || {
        ok(&d, &["logs", "web"]).contains("up")
    });
    let page: serde_json::Value =
        serde_json::from_str(&ok(&d, &["logs", "web", "--format", "json", "-n", "1"])).unwrap();
    assert_eq!(page["lines"][0]["text"], "up", "{page}");
    assert_eq!(page["lines"].as_array().map(Vec::len), Some(1), "{page}");
    // Followed in JSON: one object per line.
    let mut follow = d
        .pmclient_cmd(&["logs", "web", "-f", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let first = BufReader::new(follow.stdout.take().unwrap()).lines().next();
    follow.kill().unwrap();
    follow.wait().unwrap();
    let line: serde_json::Value = serde_json::from_str(&first.unwrap().unwrap()).unwrap();
    assert_eq!(line["text"], "up", "{line}");
    ok(&d, &["signal", "web", "--signal", "HUP"]);
    assert_eq!(
        ok(&d, &["stop", "web"]),
        "Process 'web' stopped successfully\n"
    );
    ok(&d, &["restart", "web"]);
    ok(&d, &["kill", "web"]);
    assert_eq!(
        ok(&d, &["delete", "web"]),
        "Process 'web' deleted successfully\n"
    );

    // A name given twice, or not at all, is bad usage.
    for args in [
        &["status", "web", "--name", "web"][..],
        &["restart"],
        &["stop", "web", "--all"],
    ] {
        let out = d.pmclient(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn cron_macros_schedule_and_reboot_is_refused_by_name() {
    let d = Daemon::start();
    ok(
        &d,
        &["start", "nightly", "--command", "true", "--cron", "@daily"],
    );
    let st = d.status_json("nightly");
    assert_eq!(st["cron"], "@daily");
    assert_eq!(st["status"], "scheduled", "{st}");
    assert!(
        st["next_run"]
            .as_str()
            .is_some_and(|t| t.contains("T00:00:00")),
        "{st}"
    );

    let out = d.pmclient(&["start", "boot", "--command", "true", "--cron", "@reboot"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("run_on_startup"), "{}", stdout(&out));
    let out = d.pmclient(&["start", "bad", "--command", "true", "--cron", "* * *"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("@daily"), "{}", stdout(&out));
}
