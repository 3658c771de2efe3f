//! The state file with real processes: a registry's life ends without a shutdown (as in a crash), the
//! next one on the same folder adopts live runs, restarts the rest, keeps stops; damaged files, pid
//! reuse, detached children found by their environment, and queries that write nothing.
//!
//! A "life" is a registry in an actix system of its own thread. Ending it stops that system, which
//! leaves every child running: the non-detached ones are then killed by the test, as the daemon's
//! group guard does when a daemon dies (the guard itself is tested in `guard.rs`, a real SIGKILLed
//! daemon in the `faults` suite).

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use common::{poll_status, start_in, Life};
use pm_actors::process::procfs;
use pm_actors::registry::*;
use pm_protocol::state::{SavedProcess, SavedRun, SavedState};
use pm_protocol::{PmError, ProcessInfo, ProcessSpec, RestartPolicy, Status};

/// Kills, on drop, the process group and pid of everything it was shown.
#[derive(Clone, Default)]
struct Reaper(Arc<Mutex<BTreeSet<i32>>>);

impl Reaper {
    fn pid(&self, pid: i32) {
        if pid > 0 {
            self.0.lock().unwrap().insert(pid);
        }
    }
    fn saw(&self, info: &ProcessInfo) {
        self.pid(info.pid);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            for &pid in self.0.lock().unwrap().iter() {
                kill_and_reap(pid);
            }
        }
    }
}

/// SIGKILL to `pid`'s group and to `pid`; waits until it has died (a SIGKILL is not instant on a
/// loaded machine, and a next life must not find it still running), then reaps it if it is our child.
fn kill_and_reap(pid: i32) {
    // SAFETY: plain syscalls; harmless on a pid that is gone.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    let end = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: as above.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
}

fn alive(pid: i32) -> bool {
    procfs::read_stat(pid).is_ok_and(|s| s.state != 'Z')
}

async fn poll<T, F: FnMut() -> Option<T>>(what: &str, mut check: F) -> T {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_state(dir: &Path) -> Option<SavedState> {
    let text = std::fs::read_to_string(dir.join("state.json")).ok()?;
    Some(SavedState::from_json(&text).expect("the state file always parses"))
}

async fn status(r: &Addr<Registry>, name: &str) -> ProcessInfo {
    r.send(GetStatus { name: name.into() })
        .await
        .unwrap()
        .unwrap()
}

async fn start(r: &Addr<Registry>, spec: ProcessSpec, reaper: &Reaper) -> ProcessInfo {
    let info = start_in(r, spec).await.unwrap();
    reaper.saw(&info);
    info
}

#[actix_rt::test]
async fn a_new_life_adopts_restarts_and_keeps_stops() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let life = Life::start(dir.path());
    let r = life.registry.clone();

    let mut svc = ProcessSpec::shell("svc", "sleep 300");
    svc.restart.policy = RestartPolicy::OnFailure;
    svc.restart.max_restarts = -1;
    let svc = start(&r, svc, &reaper).await;
    let mut bg = ProcessSpec::shell("bg", "echo hello; echo world; exec sleep 300");
    bg.detach = true;
    bg.log.enabled = true;
    let bg = start(&r, bg, &reaper).await;
    start(&r, ProcessSpec::shell("off", "sleep 300"), &reaper).await;
    let off = r
        .send(StopProcess { name: "off".into() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(off.status, Status::Stopped);
    let mut cron = ProcessSpec::shell("yearly", "true");
    cron.cron = Some("0 0 1 1 *".into());
    start(&r, cron, &reaper).await;

    // Every answered request is already in the file.
    let state = read_state(dir.path()).expect("a state file");
    let by_name = |n: &str| state.processes.iter().find(|p| p.spec.name == n).cloned();
    assert_eq!(state.processes.len(), 4);
    assert!(by_name("svc").unwrap().wanted && !by_name("off").unwrap().wanted);
    assert!(by_name("yearly").unwrap().wanted);
    let bg_run = by_name("bg").unwrap().run.expect("bg's run is recorded");
    assert_eq!(bg_run.pid, bg.pid);
    assert_eq!(
        bg_run.start_ticks,
        procfs::read_stat(bg.pid).unwrap().start_time
    );
    poll("the detached output in its file", || {
        let log = std::fs::read_to_string(dir.path().join("logs/bg.log")).ok()?;
        log.contains("world").then_some(())
    })
    .await;

    life.end();
    // What the group guard does when a daemon dies: its non-detached groups go.
    kill_and_reap(svc.pid);
    assert!(alive(bg.pid), "a detached process outlives its daemon");

    let life = Life::start(dir.path());
    let r = life.registry.clone();
    let bg2 = status(&r, "bg").await;
    assert_eq!(
        (bg2.status, bg2.pid),
        (Status::Running, bg.pid),
        "adopted, same pid"
    );
    let lines = r
        .send(GetProcessLogs {
            name: "bg".into(),
            lines: None,
        })
        .await
        .unwrap()
        .unwrap();
    let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        ["hello", "world"],
        "the ring is refilled from the file"
    );

    let svc2 = status(&r, "svc").await;
    reaper.saw(&svc2);
    assert_eq!(svc2.status, Status::Running);
    assert_ne!(svc2.pid, svc.pid);
    assert_eq!(svc2.restarts, 1, "started again, counted as a restart");
    assert_eq!(status(&r, "off").await.status, Status::Stopped);
    let yearly = status(&r, "yearly").await;
    assert_eq!(yearly.status, Status::Scheduled);
    assert!(yearly.next_run.is_some());
    let all = r.send(ListProcesses).await.unwrap().unwrap();
    assert_eq!(all.len(), 4);

    // The adopted process is ours: a stop ends it, and it stays stopped in the next life.
    let stopped = r
        .send(StopProcess { name: "bg".into() })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stopped.status, Status::Stopped);
    assert!(!alive(bg.pid));
    let state = read_state(dir.path()).unwrap();
    let bg_saved = state
        .processes
        .iter()
        .find(|p| p.spec.name == "bg")
        .unwrap();
    assert!(!bg_saved.wanted && bg_saved.run.is_none());
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
}

#[actix_rt::test]
async fn an_adopted_process_that_ends_is_restarted_by_its_policy() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let life = Life::start(dir.path());
    let mut spec = ProcessSpec::shell("keeper", "exec sleep 300");
    spec.detach = true;
    spec.restart.policy = RestartPolicy::Always;
    spec.restart.max_restarts = 3;
    let first = start(&life.registry, spec, &reaper).await;
    life.end();

    let life = Life::start(dir.path());
    let r = life.registry.clone();
    assert_eq!(status(&r, "keeper").await.pid, first.pid);
    kill_and_reap(first.pid);
    let again = poll_status(&r, "keeper", |i| i.pid > 0 && i.pid != first.pid).await;
    reaper.saw(&again);
    assert_eq!(again.restarts, 1);
    r.send(Shutdown).await.unwrap().unwrap();
    r.send(KillProcess {
        name: "keeper".into(),
    })
    .await
    .unwrap()
    .unwrap();
    life.end();
}

#[actix_rt::test]
async fn a_damaged_state_file_is_moved_aside_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let torn = "{\"version\":1,\"processes\":[{\"spec\":{\"na";
    std::fs::write(dir.path().join("state.json"), torn).unwrap();
    let life = Life::start(dir.path());
    let r = life.registry.clone();
    assert!(r.send(ListProcesses).await.unwrap().unwrap().is_empty());
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("state.json.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside once");
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), torn);
    // The new state is written in its place.
    let reaper = Reaper::default();
    start(&r, ProcessSpec::shell("fresh", "sleep 300"), &reaper).await;
    assert_eq!(read_state(dir.path()).unwrap().processes.len(), 1);
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
}

#[actix_rt::test]
async fn queries_write_nothing_and_a_burst_of_changes_is_coalesced() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let life = Life::start(dir.path());
    let r = life.registry.clone();
    let starts: Vec<_> = (0..50)
        .map(|i| {
            r.send(StartProcess {
                spec: ProcessSpec::shell(format!("p{i}"), "sleep 300"),
                template: None,
            })
        })
        .collect();
    for s in starts {
        reaper.saw(&s.await.unwrap().unwrap());
    }
    let writes = r.send(StateWrites).await.unwrap();
    assert!(
        (1..50).contains(&writes),
        "50 concurrent starts coalesce into fewer writes: {writes}"
    );
    let saved = read_state(dir.path()).unwrap();
    assert_eq!(saved.processes.len(), 50);
    assert!(saved.processes.iter().all(|p| p.wanted));

    // Let the runs' events land (their pids go in the file too), then only ask.
    poll("every run recorded", || {
        let s = read_state(dir.path())?;
        s.processes.iter().all(|p| p.run.is_some()).then_some(())
    })
    .await;
    let settled = poll_writes_settle(&r).await;
    for i in 0..200 {
        let name = format!("p{}", i % 50);
        status(&r, &name).await;
        r.send(ListProcesses).await.unwrap().unwrap();
        r.send(GetProcessLogs {
            name,
            lines: Some(5),
        })
        .await
        .unwrap()
        .unwrap();
    }
    assert_eq!(r.send(StateWrites).await.unwrap(), settled, "queries wrote");
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
}

/// The write count once it has stopped moving (the runs' events have been written).
async fn poll_writes_settle(r: &Addr<Registry>) -> u64 {
    let mut last = r.send(StateWrites).await.unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    // A write is scheduled at once and runs for milliseconds: 20 quiet rounds mean none is due.
    let mut quiet = 0;
    while quiet < 20 {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
        let now = r.send(StateWrites).await.unwrap();
        if now == last {
            quiet += 1;
        } else {
            last = now;
            quiet = 0;
        }
        assert!(Instant::now() < end, "the state writes never settle");
    }
    last
}

/// A process outside any registry, in a session of its own, with `env`.
fn outside(env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("300");
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

fn write_state(dir: &Path, processes: Vec<SavedProcess>) {
    std::fs::write(dir.join("state.json"), SavedState::new(processes).to_json()).unwrap();
}

#[actix_rt::test]
async fn a_reused_pid_is_never_adopted_nor_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let mut stranger = outside(&[]);
    let pid = stranger.id() as i32;
    reaper.pid(pid);
    let ticks = procfs::read_stat(pid).unwrap().start_time;
    // The file says "web" and "adopted" ran as `pid`, started at another time: that pid was reused.
    let mut web = ProcessSpec::shell("web", "sleep 300");
    web.detach = true;
    let gone = Some(SavedRun {
        pid,
        start_ticks: ticks + 1,
    });
    write_state(
        dir.path(),
        vec![
            SavedProcess {
                wanted: true,
                run: gone,
                ..SavedProcess::new(web)
            },
            SavedProcess {
                wanted: true,
                attached: true,
                run: gone,
                ..SavedProcess::new(ProcessSpec::exec("adopted", "", Vec::<String>::new()))
            },
        ],
    );
    let life = Life::start(dir.path());
    let r = life.registry.clone();
    let web = poll_status(&r, "web", |i| i.pid > 0).await;
    reaper.saw(&web);
    assert_ne!(web.pid, pid, "started anew, not adopted");
    assert_eq!(web.restarts, 1);
    assert_eq!(
        r.send(GetStatus {
            name: "adopted".into()
        })
        .await
        .unwrap()
        .unwrap_err(),
        PmError::NotFound("adopted".into()),
        "an attached process that is gone is forgotten"
    );
    r.send(KillProcess { name: "web".into() })
        .await
        .unwrap()
        .unwrap();
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger holding the pid was never signalled"
    );
    let _ = stranger.kill();
    let _ = stranger.wait();
}

#[actix_rt::test]
async fn a_detached_child_whose_pid_never_reached_the_file_is_found_by_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let state_file = dir.path().join("state.json");
    let mut orphan = outside(&[
        (ENV_NAME, "orph".to_string()),
        (ENV_STATE, state_file.display().to_string()),
    ]);
    let pid = orphan.id() as i32;
    reaper.pid(pid);
    // Another daemon's child with the same name is none of ours.
    let mut foreign = outside(&[
        (ENV_NAME, "orph".to_string()),
        (ENV_STATE, "/elsewhere/state.json".to_string()),
    ]);
    reaper.pid(foreign.id() as i32);
    let mut spec = ProcessSpec::exec("orph", "sleep", ["300"]);
    spec.detach = true;
    write_state(
        dir.path(),
        vec![SavedProcess {
            wanted: true,
            ..SavedProcess::new(spec)
        }],
    );
    let life = Life::start(dir.path());
    let r = life.registry.clone();
    let info = status(&r, "orph").await;
    assert_eq!(
        (info.status, info.pid),
        (Status::Running, pid),
        "adopted, not run twice"
    );
    r.send(KillProcess {
        name: "orph".into(),
    })
    .await
    .unwrap()
    .unwrap();
    let _ = orphan.wait();
    assert!(
        foreign.try_wait().unwrap().is_none(),
        "the foreign one is untouched"
    );
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
    let _ = foreign.kill();
    let _ = foreign.wait();
}

#[actix_rt::test]
async fn a_stop_cut_short_by_the_daemons_end_is_finished_by_the_next_life() {
    let dir = tempfile::tempdir().unwrap();
    let reaper = Reaper::default();
    let mut survivor = outside(&[]);
    let pid = survivor.id() as i32;
    reaper.pid(pid);
    let mut spec = ProcessSpec::exec("halfway", "sleep", ["300"]);
    spec.detach = true;
    spec.grace_ms = 500;
    let run = Some(SavedRun {
        pid,
        start_ticks: procfs::read_stat(pid).unwrap().start_time,
    });
    write_state(
        dir.path(),
        vec![SavedProcess {
            wanted: false,
            run,
            ..SavedProcess::new(spec)
        }],
    );
    let life = Life::start(dir.path());
    let r = life.registry.clone();
    let info = poll_status(&r, "halfway", |i| i.status == Status::Stopped).await;
    assert_eq!(info.pid, 0);
    assert!(
        survivor.try_wait().unwrap().is_some(),
        "the stop was finished"
    );
    r.send(Shutdown).await.unwrap().unwrap();
    life.end();
}
