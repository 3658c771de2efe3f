//! Exact wire strings: greeting, framing, sentences, status, list, JSON, logs, events, frame reading.

use chrono::{DateTime, Local};

use super::*;
use crate::heroscript::parse;
use crate::{EventKind, ExitInfo, KernelState, Status, Stream};

fn time(s: &str) -> DateTime<Local> {
    DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Local)
}

fn running(name: &str, pid: i32) -> ProcessInfo {
    let mut p = ProcessInfo::initial(name, "sleep 100");
    p.pid = pid;
    p.status = Status::Running;
    p.state = KernelState::Sleeping;
    p.cpu_percent = 1.5;
    p.memory_mb = 12.3;
    p.start_time = "2024-05-01T10:00:00+02:00".into();
    p.uptime_secs = Some(3723.9);
    p
}

#[test]
fn greeting_and_authentication_lines() {
    assert_eq!(
        GREETING,
        " ** Welcome: you are not authenticated, provide secret.\n"
    );
    assert_eq!(AUTHENTICATED, " ** Welcome: you are authenticated.\n");
    assert_eq!(INVALID_SECRET, "Invalid secret. Try again or disconnect.\n");
}

#[test]
fn frames_always_end_the_body_with_a_newline() {
    assert_eq!(frame("e42", "ok\n"), "**RESULT** e42\nok\n**ENDRESULT**\n");
    assert_eq!(frame("", "{\n}"), "**RESULT** \n{\n}\n**ENDRESULT**\n");
    assert_eq!(frame("", ""), "**RESULT** \n**ENDRESULT**\n");
    // Blank lines are kept and a CR before a newline is dropped, as line by line.
    assert_eq!(frame("", "a\n\nb"), "**RESULT** \na\n\nb\n**ENDRESULT**\n");
    assert_eq!(
        frame("", "a\r\nb\r\n"),
        "**RESULT** \na\nb\n**ENDRESULT**\n"
    );
}

#[test]
fn parse_errors_are_framed_with_a_body_starting_with_error() {
    let e = parse("!!!!!x.y").unwrap_err();
    assert_eq!(
        frame("", parse_error(&e)),
        "**RESULT** \nError: line 1, col 1: too many '!' (5): an action starts with one to four '!'\n**ENDRESULT**\n"
    );
}

#[test]
fn sentences() {
    assert_eq!(
        success(Operation::Start, "x"),
        "Process 'x' started successfully\n"
    );
    assert_eq!(
        success(Operation::Stop, "x"),
        "Process 'x' stopped successfully\n"
    );
    assert_eq!(
        success(Operation::Restart, "x"),
        "Process 'x' restarted successfully\n"
    );
    assert_eq!(
        success(Operation::Delete, "x"),
        "Process 'x' deleted successfully\n"
    );
    assert_eq!(
        success(Operation::Kill, "x"),
        "Process 'x' killed successfully\n"
    );
    assert_eq!(
        failure(Operation::Start, &PmError::already_exists("x")),
        "Error starting process: process with name 'x' already exists\n"
    );
    assert_eq!(
        failure(Operation::Stop, &PmError::NotFound("x".into())),
        "Error stopping process: process 'x' not found\n"
    );
    assert_eq!(
        failure(Operation::Status, &PmError::NotFound("x".into())),
        "Error getting process status: process 'x' not found\n"
    );
    let ok: Result<(), PmError> = Ok(());
    assert_eq!(
        outcome(Operation::Delete, "x", &ok),
        "Process 'x' deleted successfully\n"
    );
    let bad: Result<(), PmError> = Err(PmError::NotFound("x".into()));
    assert_eq!(
        outcome(Operation::Restart, "x", &bad),
        "Error restarting process: process 'x' not found\n"
    );
}

#[test]
fn status_as_text() {
    let mut p = running("web", 4242);
    p.cron = "*/5 * * * *".into();
    p.job_id = "e42".into();
    p.deadline = 30;
    assert_eq!(
        status_text(&p),
        "Name: web\nCommand: sleep 100\nStatus: running\nPID: 4242\nCPU: 1.50%\nMemory: 12.30 MB\n\
         Started: 2024-05-01T10:00:00+02:00\nState: sleeping\nRestarts: 0\nUptime: 1h2m3s\nLog: disabled\n\
         Cron: */5 * * * *\nJob ID: e42\nDeadline: 30s\n"
    );
    let mut done = ProcessInfo::initial("job", "false");
    done.status = Status::Failed;
    done.exit_code = Some(1);
    done.end_time = "2024-05-01T10:00:01+02:00".into();
    done.error = "exited with code 1".into();
    assert_eq!(
        status_text(&done),
        "Name: job\nCommand: false\nStatus: failed\nPID: 0\nCPU: 0.00%\nMemory: 0.00 MB\nStarted: never started\n\
         State: initial\nRestarts: 0\nExit: exited with code 1\nEnded: 2024-05-01T10:00:01+02:00\nLog: disabled\n\
         Error: exited with code 1\n"
    );
}

#[test]
fn list_as_an_aligned_table_sorted_by_name() {
    let mut b = ProcessInfo::initial("beta-worker", "x");
    b.restarts = 12;
    let table = list_text(&[running("web", 4242), b]);
    assert_eq!(
        table,
        "NAME         STATUS   PID   CPU   MEM      UPTIME  RESTARTS\n\
         beta-worker  initial  -     0.0%  0.0 MB   -       12\n\
         web          running  4242  1.5%  12.3 MB  1h2m3s  0\n"
    );
    assert_eq!(
        list_text(&[]),
        "NAME  STATUS  PID  CPU  MEM  UPTIME  RESTARTS\n"
    );
}

#[test]
fn json_keeps_the_original_fields_and_ends_with_a_newline() {
    let text = status_json(&running("web", 4242));
    assert!(text.ends_with("}\n"));
    assert!(
        text.starts_with(
            "{\n  \"name\": \"web\",\n  \"command\": \"sleep 100\",\n  \"pid\": 4242,\n"
        ),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for (field, kind) in [
        ("name", "string"),
        ("command", "string"),
        ("pid", "number"),
        ("status", "string"),
        ("cpu_percent", "number"),
        ("memory_mb", "number"),
        ("start_time", "string"),
        ("log_enabled", "bool"),
        ("cron", "string"),
        ("job_id", "string"),
        ("deadline", "number"),
        ("error", "string"),
    ] {
        let value = &v[field];
        let ok = match kind {
            "string" => value.is_string(),
            "number" => value.is_number(),
            _ => value.is_boolean(),
        };
        assert!(ok, "{field} should be a {kind}: {value}");
    }
    assert_eq!(v["status"], "running");
    let list = list_json(&[running("b", 2), running("a", 1)]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(
        (v[0]["name"].as_str(), v[1]["name"].as_str()),
        (Some("a"), Some("b"))
    );
    assert_eq!(list_json(&[]), "[]\n");
}

#[test]
fn logs_and_events_as_text() {
    let t = time("2024-05-01T10:00:00+02:00");
    let lines = [
        LogLine {
            time: t,
            stream: Stream::Stdout,
            text: "hello".into(),
        },
        LogLine {
            time: t,
            stream: Stream::Stderr,
            text: "oops".into(),
        },
    ];
    let local = crate::status::time_text(&t);
    // Milliseconds, as the log file has them.
    assert!(local.contains(":00.000"), "{local}");
    assert_eq!(
        logs_text(&lines),
        format!("{local} [stdout] hello\n{local} [stderr] oops\n")
    );
    let page = crate::logs::LogPage {
        next: 9,
        skipped: 2,
        lines: lines[..1].to_vec(),
    };
    let time_json = serde_json::to_string(&t).unwrap();
    assert_eq!(
        logs_json(&page),
        format!(
            "{{\n  \"next\": 9,\n  \"skipped\": 2,\n  \"lines\": [\n    {{\n      \"time\": {time_json},\n      \"stream\": \"stdout\",\n      \"text\": \"hello\"\n    }}\n  ]\n}}\n"
        )
    );
    let event = ProcessEvent {
        name: "web".into(),
        pid: 7,
        kind: EventKind::Status {
            old: Status::Running,
            new: Status::Failed,
        },
        exit: Some(ExitInfo {
            reason: None,
            code: Some(3),
            signal: None,
            time: t,
        }),
        time: t,
    };
    assert_eq!(
        event_text(&event),
        format!("{local} web (pid 7): status running -> failed (exited with code 3)\n")
    );
    let json: serde_json::Value = serde_json::from_str(&event_json(&event)).unwrap();
    assert_eq!(json["kind"], "status");
}

#[test]
fn the_help_lists_every_command() {
    for action in crate::Command::known_actions() {
        if action != "exit" && action != "quit" {
            assert!(
                HELP.contains(&format!("!!{action}")),
                "{action} missing from help"
            );
        }
    }
    assert!(HELP.contains("!!exit or !!quit or q"));
}

#[test]
fn the_frame_reader_takes_frames_back_apart() {
    let wire = format!(
        "{GREETING}{AUTHENTICATED}{}{}",
        frame("e42", "Process 'w' started successfully\n"),
        frame(
            "",
            "Error stopping process: process 'x' not found\r\n**RESULT** inside\n"
        )
    );
    let mut reader = FrameReader::new();
    let frames: Vec<Frame> = wire.lines().filter_map(|l| reader.push_line(l)).collect();
    assert!(!reader.in_frame());
    assert_eq!(frames.len(), 2);
    assert_eq!(
        frames[0],
        Frame {
            jobid: "e42".into(),
            body: "Process 'w' started successfully\n".into()
        }
    );
    assert!(!frames[0].is_error());
    assert_eq!(
        frames[1].body,
        "Error stopping process: process 'x' not found\n**RESULT** inside\n"
    );
    assert!(frames[1].is_error());
}

#[test]
fn an_open_quote_notice_between_frames_is_no_frame() {
    let notice = crate::session::open_quote_notice(2, '\'');
    let wire = format!(
        "{GREETING}{AUTHENTICATED}{notice}{}{notice}{}",
        frame("", "Process 'a' started successfully\n"),
        frame("j", "")
    );
    let mut reader = FrameReader::new();
    let frames: Vec<Frame> = wire.lines().filter_map(|l| reader.push_line(l)).collect();
    assert_eq!(
        frames,
        [
            Frame {
                jobid: String::new(),
                body: "Process 'a' started successfully\n".into()
            },
            Frame {
                jobid: "j".into(),
                body: String::new()
            }
        ]
    );
}

#[test]
fn a_body_line_that_reads_as_the_end_mark_cannot_end_the_frame() {
    let body = "a\n**ENDRESULT**\n  **ENDRESULT**\nb\n";
    let framed = frame("j", body);
    assert_eq!(
        framed,
        "**RESULT** j\na\n **ENDRESULT**\n   **ENDRESULT**\nb\n**ENDRESULT**\n"
    );
    let mut reader = FrameReader::new();
    let frames: Vec<Frame> = framed.lines().filter_map(|l| reader.push_line(l)).collect();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].body, body);
}

#[test]
fn a_multi_line_command_stays_on_its_status_line() {
    let mut p = running("web", 7);
    p.command = "echo a\n**ENDRESULT**\necho b".into();
    let text = status_text(&p);
    assert!(
        text.contains("Command: echo a\\n**ENDRESULT**\\necho b\n"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("Name:")).count(), 1);
}

proptest::proptest! {
    /// Whatever the body, the client reads back exactly one frame with exactly that body.
    #[test]
    fn any_body_survives_framing(lines in proptest::collection::vec("[ *A-Z\\n]{0,20}|\\*\\*ENDRESULT\\*\\*|  \\*\\*ENDRESULT\\*\\*", 0..8)) {
        let body: String = lines.iter().map(|l| format!("{}\n", l.replace('\n', ""))).collect();
        let framed = frame("id", &body);
        let mut reader = FrameReader::new();
        let frames: Vec<Frame> = framed.lines().filter_map(|l| reader.push_line(l)).collect();
        proptest::prop_assert_eq!(frames.len(), 1);
        proptest::prop_assert_eq!(&frames[0].body, &body);
        proptest::prop_assert_eq!(&frames[0].jobid, "id");
    }
}

#[test]
fn every_operation_names_a_command() {
    use crate::command::Command;
    let all = [
        Operation::Start,
        Operation::Stop,
        Operation::Restart,
        Operation::Delete,
        Operation::Kill,
        Operation::Signal,
        Operation::Attach,
        Operation::Status,
        Operation::List,
        Operation::Logs,
        Operation::Watch,
        Operation::StopAll,
    ];
    for op in all {
        assert!(Command::ACTIONS.contains(&op.action()), "{op:?}");
    }
}

#[test]
fn health_shows_in_status_list_json_and_events() {
    let mut web = running("web", 4242);
    web.health = Some(crate::Health::Unhealthy);
    web.health_detail = "GET http://127.0.0.1:8080/health: 503 after 12 ms".into();
    let text = status_text(&web);
    assert!(text.contains("\nHealth: unhealthy\n"), "{text}");
    assert!(
        text.contains("\nHealth detail: GET http://127.0.0.1:8080/health: 503 after 12 ms\n"),
        "{text}"
    );
    let table = list_text(&[web.clone(), ProcessInfo::initial("db", "x")]);
    assert_eq!(
        table,
        "NAME  STATUS   HEALTH     PID   CPU   MEM      UPTIME  RESTARTS\n\
         db    initial  -          -     0.0%  0.0 MB   -       0\n\
         web   running  unhealthy  4242  1.5%  12.3 MB  1h2m3s  0\n"
    );
    web.health = Some(crate::Health::Ready);
    web.ready_since = Some("2024-05-01T10:00:01.000+02:00".into());
    let v: serde_json::Value = serde_json::from_str(&status_json(&web)).unwrap();
    assert_eq!(v["health"], "ready");
    assert_eq!(v["ready_since"], "2024-05-01T10:00:01.000+02:00");
    assert!(v["health_detail"].as_str().unwrap().contains("503"));
    // A process without readiness or health keeps the JSON it had.
    let v: serde_json::Value = serde_json::from_str(&status_json(&running("x", 1))).unwrap();
    assert!(v.get("health").is_none() && v.get("ready_since").is_none());
    let ev = ProcessEvent {
        name: "web".into(),
        pid: 4242,
        kind: EventKind::Unhealthy {
            detail: "timed out after 1 s".into(),
        },
        exit: None,
        time: chrono::Local::now(),
    };
    assert!(event_text(&ev).ends_with("web (pid 4242): unhealthy: timed out after 1 s\n"));
    let v: serde_json::Value = serde_json::from_str(&event_json(&ev)).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["detail"].as_str()),
        (Some("unhealthy"), Some("timed out after 1 s"))
    );
    // Dependencies (issue 14, part E): the waiting event, and waiting_for in status.
    let ev = ProcessEvent {
        kind: EventKind::Waiting {
            waiting_for: vec!["db (ready)".into(), "migrate (completed)".into()],
        },
        ..ev
    };
    assert!(
        event_text(&ev).ends_with("web (pid 4242): waiting for db (ready), migrate (completed)\n")
    );
    let v: serde_json::Value = serde_json::from_str(&event_json(&ev)).unwrap();
    assert_eq!(v["kind"], "waiting");
    assert_eq!(v["waiting_for"][1], "migrate (completed)");
    let mut waiting = running("api", 0);
    waiting.status = crate::Status::Waiting;
    waiting.waiting_for = vec!["db (ready)".into()];
    assert!(
        status_text(&waiting).ends_with("Waiting for: db (ready)\n"),
        "{}",
        status_text(&waiting)
    );
    let v: serde_json::Value = serde_json::from_str(&status_json(&waiting)).unwrap();
    assert_eq!(
        (v["status"].as_str(), v["waiting_for"][0].as_str()),
        (Some("waiting"), Some("db (ready)"))
    );
}

#[test]
fn a_body_framed_in_place_reads_as_one_framed_line_by_line() {
    let bodies = [
        "",
        "ok",
        "ok\n",
        "a\n\nb",
        "[\n  {\n    \"name\": \"web\"\n  }\n]\n",
        "x **ENDRESULT**",
    ];
    for body in bodies {
        for jobid in ["", "e42"] {
            assert_eq!(
                frame(jobid, body),
                super::frame_line_by_line(jobid, body),
                "{body:?}"
            );
        }
    }
    // A body sized for more than it holds keeps its buffer: the head goes in front, in place.
    let mut big = String::with_capacity(4096);
    big.push_str("[\n]");
    let framed = frame("j", big);
    assert_eq!(framed, "**RESULT** j\n[\n]\n**ENDRESULT**\n");
    assert!(framed.capacity() >= 4096);
}

#[test]
fn containment_and_limits_show_in_status_and_json() {
    let mut p = running("web", 4242);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["containment"], "group");
    assert!(v.get("cgroup").is_none() && v.get("oom_kills").is_none());
    assert!(!status_text(&p).contains("Containment"));
    p.containment = "cgroup".into();
    p.cgroup = "/sys/fs/cgroup/pm/guarded/web".into();
    p.memory_max = Some(512 << 20);
    p.memory_current = Some(3 << 19);
    p.oom_kills = 2;
    let text = status_text(&p);
    assert!(
        text.ends_with(
            "Containment: cgroup\nCgroup: /sys/fs/cgroup/pm/guarded/web\n\
             Memory max: 512 MiB\nMemory current: 1.5 MiB\nOOM kills: 2\n"
        ),
        "{text}"
    );
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["memory_max"], 512u64 << 20);
    assert_eq!(v["oom_kills"], 2);
    let back: ProcessInfo = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}
