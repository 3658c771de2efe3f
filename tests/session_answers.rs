//! A person's first hour at the socket: every script answers (an empty `logs` included), a start that
//! failed to spawn says how to go on, and an open quote that swallows lines is pointed out.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// How long a test waits for an answer that must come at once (the hang it guards against is forever).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// The next frame's body, failing (instead of hanging) when none comes within [`ANSWER_WITHIN`].
fn body_soon(s: &mut Raw) -> String {
    s.stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
    s.body()
}

/// Waits for a pmclient to exit within [`ANSWER_WITHIN`]; kills it and fails when it does not.
fn finished(mut child: Child, what: &str) -> (Option<i32>, String, String) {
    let deadline = Instant::now() + ANSWER_WITHIN;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: pmclient did not answer");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), stdout(&out), stderr(&out))
}

fn pmclient_soon(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let child = d
        .pmclient_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    finished(child, &format!("{args:?}"))
}

#[test]
fn logs_with_nothing_to_show_still_answer_one_frame() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!!process.start name:'quiet' command:'sleep 60' log:true\n\n");
    assert_eq!(body_soon(&mut s), "Process 'quiet' started successfully\n");
    s.send("!!process.start name:'unlogged' command:'sleep 60'\n\n");
    assert_eq!(
        body_soon(&mut s),
        "Process 'unlogged' started successfully\n"
    );

    // A logged process that printed nothing yet: an empty body, and the session goes on.
    s.send("!!process.logs name:'quiet'\n\n");
    assert_eq!(body_soon(&mut s), "");
    s.send("!!process.logs name:'quiet' lines:0\n\n");
    assert_eq!(body_soon(&mut s), "");
    // A process that captures nothing says so.
    s.send("!!process.logs name:'unlogged'\n\n");
    let frame = s.frame();
    assert_eq!(
        frame,
        "**RESULT** \nError reading process logs: process 'unlogged' does not capture its output: \
         start it with log:true\n**ENDRESULT**\n"
    );
    s.send("!!process.list\n\n");
    assert!(body_soon(&mut s).contains("quiet"));

    let (code, out, err) = pmclient_soon(&d, &["logs", "--name", "quiet"]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    let (code, out, err) = pmclient_soon(&d, &["logs", "--name", "quiet", "--lines", "0"]);
    assert_eq!((code, out.as_str()), (Some(0), ""), "{err}");
    let (code, out, err) = pmclient_soon(&d, &["logs", "--name", "unlogged"]);
    assert_ne!(code, Some(0));
    assert!(out.contains("does not capture its output"), "{out}{err}");
}

#[test]
fn a_start_that_failed_to_spawn_says_how_to_go_on() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!!process.start name:'now' program:'/nonexistent/program'\n\n");
    let first = body_soon(&mut s);
    assert!(
        first.starts_with("Error starting process: cannot spawn 'now'"),
        "{first}"
    );
    // The fixed command: the old definition still holds the name, and the answer says how to go on.
    s.send("!!process.start name:'now' command:'sleep 60'\n\n");
    assert_eq!(
        body_soon(&mut s),
        "Error starting process: process with name 'now' already exists (it is failed, defined \
         otherwise than this start: delete it, then start it again, or apply a stack that defines \
         it, to replace it)\n"
    );
    s.send("!!process.start name:'now' program:'/nonexistent/program'\n\n");
    assert_eq!(
        body_soon(&mut s),
        "Error starting process: process with name 'now' already exists (it is failed: delete it \
         first, or restart it)\n"
    );
    s.send("!!process.delete name:'now'\n\n");
    body_soon(&mut s);
    s.send("!!process.start name:'now' command:'sleep 60'\n\n");
    assert_eq!(body_soon(&mut s), "Process 'now' started successfully\n");
    let (code, out, err) = pmclient_soon(&d, &["start", "--name", "now", "--command", "sleep 60"]);
    assert_ne!(code, Some(0));
    assert!(
        out.contains("process with name 'now' already exists (it is running: delete it first"),
        "{out}{err}"
    );
}

/// The notice for a quote opened on `line` with `'` (its text is the protocol crate's).
fn quote_notice(line: usize) -> String {
    pm_protocol::session::open_quote_notice(line, '\'')
}

#[test]
fn an_open_quote_is_pointed_out_once_and_keeps_its_lines() {
    let d = Daemon::start();
    let mut s = d.session();
    s.stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
    // Silence inside the quote: the timer's notice, one line outside any frame.
    s.send("!!process.start name:'web'\n  command:'sleep 60\n");
    assert_eq!(s.line(), quote_notice(2));
    // Blank lines and `q` stay data, with no second notice; the closing quote runs the script.
    s.send("\n\nq\nexit 0'\n\n");
    assert_eq!(s.body(), "Process 'web' started successfully\n");
    let command = d.status_json("web")["command"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(command, "sleep 60\n\n\nq\nexit 0");
    // A second blank line inside a new quote is pointed out at once.
    s.send("!!process.start name:'db' command:'sleep 60\n\n\n");
    assert_eq!(s.line(), quote_notice(1));
    s.send("'\n\n");
    assert_eq!(s.body(), "Process 'db' started successfully\n");
    s.send("!!process.list\n\n");
    assert!(s.body().contains("db"));
    // A missing opening quote closes a value early; the error says a quote may be missing.
    s.send("!!process.start name:'api command:'sleep 10'\n\n");
    let error = s.body();
    assert!(error.contains("a quote may be missing"), "{error}");
}

#[test]
fn pmclient_and_frames_still_parse_around_a_notice() {
    let d = Daemon::start();
    // A value that holds blank lines on purpose makes the daemon send a notice before its frame.
    let command = "echo one\n\n\necho two";
    let (code, out, err) = pmclient_soon(
        &d,
        &["start", "--name", "blanks", "--command", command, "--log"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out, "Process 'blanks' started successfully\n");
    assert_eq!(d.status_json("blanks")["command"], command);
}
