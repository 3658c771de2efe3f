//! Output capture: fast printers, huge lines, invalid UTF-8, rotation, a log file that cannot be written.

mod common;

use std::time::Duration;

use common::*;
use pm_actors::process::OutputTarget;
use pm_protocol::{ProcessSpec, Status, Stream};

const LONG: Duration = Duration::from_secs(60);

fn logged(name: &str, cmd: &str) -> ProcessSpec {
    let mut spec = ProcessSpec::shell(name, cmd);
    spec.log.enabled = true;
    spec
}

fn file_lines(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[actix_rt::test]
async fn two_hundred_thousand_lines_are_all_captured() {
    let (dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(logged("fast", "seq 1 200000; echo done >&2"), opts);
    cleanup.group(p.start().await.unwrap());
    assert_eq!(p.wait().await.unwrap().code, Some(0));
    let path = dir.path().join("logs/fast.log");
    poll("all lines in the file", LONG, || async {
        (file_lines(&path) == 200_001).then_some(())
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().any(|l| l.ends_with(" [stdout] 200000")));
    assert!(text.lines().any(|l| l.ends_with(" [stderr] done")));
    let ring = p.logs(None).await.unwrap();
    assert_eq!(ring.len(), 1000);
    assert!(ring
        .iter()
        .any(|l| l.text == "200000" && l.stream == Stream::Stdout));
}

#[actix_rt::test]
async fn a_one_megabyte_line_is_split_not_dropped_and_bad_utf8_is_kept() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let cmd = "head -c 1048576 /dev/zero | tr '\\0' x; echo; printf 'bad \\377 byte\\n'";
    let p = actor(logged("huge", cmd), opts);
    cleanup.group(p.start().await.unwrap());
    p.wait().await.unwrap();
    let lines = poll("the split line and the bad line", LONG, || async {
        let l = p.logs(None).await.ok()?;
        (l.len() == 17).then_some(l)
    })
    .await;
    assert!(lines[..16]
        .iter()
        .all(|l| l.text.len() == 65536 && l.text.bytes().all(|b| b == b'x')));
    assert_eq!(lines[16].text, "bad \u{FFFD} byte");
}

#[actix_rt::test]
async fn log_files_rotate_by_size() {
    let (dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let mut spec = logged(
        "rot",
        "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done",
    );
    spec.log.max_bytes = 10_000;
    spec.log.keep_files = 2;
    let p = actor(spec, opts);
    cleanup.group(p.start().await.unwrap());
    p.wait().await.unwrap();
    let logs = dir.path().join("logs");
    poll("two rotated files and the last line", LONG, || async {
        let cur = std::fs::read_to_string(logs.join("rot.log")).ok()?;
        (cur.contains(" line 1999\n") && logs.join("rot.log.2").exists()).then_some(())
    })
    .await;
    assert!(!logs.join("rot.log.3").exists());
    for f in ["rot.log", "rot.log.1", "rot.log.2"] {
        let len = std::fs::metadata(logs.join(f)).unwrap().len();
        assert!(len > 0 && len <= 10_000, "{f}: {len}");
    }
}

#[actix_rt::test]
async fn an_unwritable_log_file_is_reported_and_the_child_keeps_running() {
    let (dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::os::unix::fs::symlink("/dev/full", logs.join("full.log")).unwrap();
    let p = actor(
        logged("full", "while :; do echo data; sleep 0.05; done"),
        opts,
    );
    cleanup.group(p.start().await.unwrap());
    let err = poll("the disk-full error in the status", LONG, || async {
        let i = p.info().await.ok()?;
        i.error.contains("log file").then_some(i.error)
    })
    .await;
    assert!(err.contains("No space left"), "{err}");
    let info = p.info().await.unwrap();
    assert_eq!(info.status, Status::Running);
    assert!(
        !p.logs(None).await.unwrap().is_empty(),
        "the ring still gets lines"
    );
    p.kill().await.unwrap();
}

#[actix_rt::test]
async fn output_can_go_to_a_channel() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let p = actor(
        ProcessSpec::shell("chan", "echo one; echo two >&2"),
        opts.with_output(OutputTarget::Channel(tx)),
    );
    cleanup.group(p.start().await.unwrap());
    let mut got = Vec::new();
    while got.len() < 2 {
        let line = tokio::time::timeout(LONG, rx.recv())
            .await
            .unwrap()
            .unwrap();
        got.push((line.stream, line.text));
    }
    got.sort_by_key(|(s, _)| *s == Stream::Stderr);
    assert_eq!(
        got,
        [
            (Stream::Stdout, "one".into()),
            (Stream::Stderr, "two".into())
        ]
    );
}
