//! Runs `examples/supervise.rs`: an actix actor using the in-process API sees exits and stops the process.

#[path = "../examples/supervise.rs"]
mod supervise;

use pm_protocol::Status;

#[test]
fn the_supervise_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = supervise::run(dir.path()).unwrap();
    assert_eq!(outcome.exits, ["exited with code 3", "exited with code 3"]);
    // The exits were restarted automatically until the watcher stopped it.
    assert!(outcome.last.restarts >= 1, "{:#?}", outcome.last);
    assert!(!outcome.last.status.is_alive(), "{:#?}", outcome.last);
    assert_ne!(outcome.last.status, Status::Backoff);
    assert!(
        outcome.last.pid == 0 || std::fs::metadata(format!("/proc/{}", outcome.last.pid)).is_err()
    );
}
