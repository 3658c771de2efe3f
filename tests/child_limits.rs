//! Limits the daemon changes for itself and not for its children: a managed program starts with the
//! open-files limit the daemon was started with, not the one the daemon raised for its own use.

mod common;

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The soft and hard "Max open files" of `pid`.
fn open_files(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let mut words = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .unwrap()
        .split_whitespace();
    let soft = words.next().unwrap().to_string();
    (soft, words.next().unwrap().to_string())
}

#[test]
fn a_child_starts_with_the_open_files_limit_the_daemon_was_started_with() {
    let original = "512";
    let mut d = Daemon::unstarted();
    // The shell lowers the soft limit, then becomes the daemon (same pid).
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("ulimit -Sn {original} && exec \"$0\" \"$@\""))
        .arg(DAEMON)
        .arg("--socket")
        .arg(&d.socket)
        .env("PM_SECRET", SECRET)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&d.stderr_file).unwrap())
        .process_group(0);
    d.child = Some(cmd.spawn().unwrap());
    let socket = d.socket.clone();
    wait_for("the daemon's socket", Duration::from_secs(20), || {
        UnixStream::connect(&socket).is_ok()
    });
    let (daemon_soft, hard) = open_files(d.pid());
    if hard.parse::<u64>().is_ok_and(|h| h <= 512) {
        eprintln!("skipped: a hard open-files limit of {hard} leaves nothing to raise");
        return;
    }
    assert_ne!(daemon_soft, original, "the daemon did not raise its limit");
    let out = d.pmclient(&["start", "--name", "limited", "--command", "sleep 300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pids = d.pids();
    let [pid] = pids[..] else {
        panic!("one process expected: {pids:?}")
    };
    assert_eq!(open_files(pid), (original.to_string(), hard.clone()));
    // The daemon keeps its own raised limit.
    assert_eq!(open_files(d.pid()), (daemon_soft, hard));
}
