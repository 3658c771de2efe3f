//! Claims of docs/protocol.md that no other test pins, checked against the real daemon.

mod common;

use std::time::Duration;

use common::*;

/// The answer to `!!process.status name:none`.
const NONE_NOT_FOUND: &str = "Error getting process status: process 'none' not found\n";

/// Starts `name` running `true` with `options` and waits until its status is `want`.
fn start_true(d: &Daemon, s: &mut Raw, name: &str, options: &str, want: &str) {
    s.send(&format!(
        "!!process.start name:{name} command:true {options}\n\n"
    ));
    assert_eq!(s.body(), format!("Process '{name}' started successfully\n"));
    wait_for(&format!("{name} {want}"), Duration::from_secs(10), || {
        d.status_json(name)["status"] == want
    });
}

#[test]
fn every_action_line_starts_a_script_of_its_own() {
    let d = Daemon::start();
    let mut s = d.session();
    // No blank line between the two actions: the second line runs the first.
    s.send("!!process.start name:one command:true\n!!process.status name:none\n\n");
    assert_eq!(s.body(), "Process 'one' started successfully\n");
    assert_eq!(s.body(), NONE_NOT_FOUND);
}

#[test]
fn a_line_buffered_behind_a_watch_runs_once_the_watch_ends() {
    let d = Daemon::start();
    let mut s = d.session();
    start_true(&d, &mut s, "done", "", "completed");
    // The status line makes the watch run and stays buffered; the blank line ends the watch.
    s.send("!!process.watch name:done\n!!process.status name:done\n\n");
    assert_eq!(s.body(), "Watching 'done'; send any line to stop\n");
    assert_eq!(s.body(), "Watch ended\n");
    s.send("\n");
    let status = s.body();
    assert!(status.starts_with("Name: done\n"), "{status}");
    assert!(!status.contains("not run"), "{status}");
}

#[test]
fn the_line_that_ends_a_watch_is_not_run() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!!process.watch\n\n");
    assert_eq!(s.body(), "Watching every process; send any line to stop\n");
    s.send("!!process.start name:never command:true\n");
    assert_eq!(s.body(), "Watch ended\n");
    // Nothing is buffered, so the blank line answers nothing: the next frame is the list.
    s.send("\n!!process.list format:json\n\n");
    assert_eq!(s.body(), "[]\n");
}

#[test]
fn quit_written_as_an_action_closes_without_a_frame() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!process.status name:none\n!!quit # bye\n\n!!process.list\n\n");
    assert_eq!(s.body(), NONE_NOT_FOUND);
    assert_eq!(s.rest(), "");
}

#[test]
fn status_text_of_a_process_never_started() {
    let d = Daemon::start();
    let mut s = d.session();
    start_true(
        &d,
        &mut s,
        "yearly",
        "cron:'0 0 1 1 *' jobid:y1",
        "scheduled",
    );
    s.send("!!process.status name:yearly\n\n");
    let text = s.body();
    assert!(text.contains("\nStarted: never started\n"), "{text}");
    let at = |line: &str| {
        text.find(line)
            .unwrap_or_else(|| panic!("no {line:?} in {text}"))
    };
    assert!(at("\nLog: ") < at("\nCron: 0 0 1 1 *\n"), "{text}");
    assert!(at("\nCron: ") < at("\nNext run: "), "{text}");
    assert!(at("\nNext run: ") < at("\nJob ID: y1\n"), "{text}");
    assert_eq!(d.status_json("yearly")["start_time"], "");
}

#[test]
fn grammar_examples_of_the_document() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!!process.start name:web\n  log:true comand:'ls'\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** \nError: line 2, col 12: unknown parameter 'comand' for process.start \
         (did you mean 'command'?)\n**ENDRESULT**\n"
    );
    // `key:` then white space then text: the text is the value.
    s.send("!!process.start name:j command:true jobid: cwd:/tmp\n\n");
    assert_eq!(
        s.frame(),
        "**RESULT** cwd:/tmp\nProcess 'j' started successfully\n**ENDRESULT**\n"
    );
    s.send("!!process.start name:k command:true log:true#x\n\n");
    let body = s.body();
    assert!(
        body.starts_with("Error: line 1, col 41: invalid value 'true#x' for 'log'"),
        "{body}"
    );
}

/// A kill of a process that is not alive answers its error and changes nothing: the status, the
/// last error and the end time stay what they were.
#[test]
fn a_kill_of_a_process_that_is_not_alive_changes_nothing() {
    let d = Daemon::start();
    let mut s = d.session();
    s.send("!!process.start name:f1 command:'exit 3'\n\n");
    assert_eq!(s.body(), "Process 'f1' started successfully\n");
    wait_for("f1 failed", Duration::from_secs(10), || {
        d.status_json("f1")["status"] == "failed"
    });
    let before = d.status_json("f1");
    s.send("!!process.kill name:f1\n\n");
    assert_eq!(
        s.body(),
        "Error killing process: process 'f1' is not running\n"
    );
    let after = d.status_json("f1");
    for key in ["status", "error", "end_time", "exit_code"] {
        assert_eq!(after[key], before[key], "{key} changed");
    }
}

/// A watch on a process that another client deletes stays a watch: its events come, and the
/// watcher's line still ends it with `Watch ended` on a session that goes on.
#[test]
fn a_watch_outlives_the_deletion_of_what_it_watches() {
    let d = Daemon::start();
    let mut a = d.session();
    a.send("!!process.start name:wz command:'sleep 60'\n\n");
    assert_eq!(a.body(), "Process 'wz' started successfully\n");
    let mut b = d.session();
    b.send("!!process.watch name:wz\n\n");
    assert_eq!(b.body(), "Watching 'wz'; send any line to stop\n");
    a.send("!!process.delete name:wz\n\n");
    assert!(a.body().contains("deleted"), "delete answered");
    let event = b.body();
    assert!(event.contains("wz (pid "), "{event}");
    b.send("\n");
    // Whatever events were still on their way come first; then the watch's end.
    let mut last = b.body();
    while last != "Watch ended\n" {
        assert!(last.contains("wz (pid "), "{last}");
        last = b.body();
    }
    b.send("!!process.status name:none\n\n");
    assert_eq!(b.body(), NONE_NOT_FOUND);
}
