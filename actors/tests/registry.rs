//! The Registry with real processes: restarts and backoff, holds after a user's stop, cron, templates,
//! shutdown. Every test waits by polling with a deadline and kills what it started in a drop guard.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use common::start_in;
use nix::sys::signal::{kill, Signal as NixSignal};
use nix::unistd::Pid;
use pm_actors::registry::*;
use pm_protocol::error::Existing;
use pm_protocol::template::Template;
use pm_protocol::{PmError, ProcessInfo, ProcessSpec, RestartPolicy, Status};

/// Kills, on drop, the process group of every pid it saw (so nothing outlives a failed test).
#[derive(Clone, Default)]
struct Reaper(Arc<Mutex<BTreeSet<i32>>>);

impl Reaper {
    fn saw(&self, info: &ProcessInfo) {
        if info.pid > 0 {
            self.0.lock().unwrap().insert(info.pid);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) == 1 {
            for &pid in self.0.lock().unwrap().iter() {
                let _ = kill(Pid::from_raw(-pid), NixSignal::SIGKILL);
                let _ = kill(Pid::from_raw(pid), NixSignal::SIGKILL);
            }
        }
    }
}

struct Harness {
    registry: Addr<Registry>,
    reaper: Reaper,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(prepare: impl FnOnce(&Path)) -> Harness {
        Harness::configured(prepare, |_| {})
    }

    fn configured(
        prepare: impl FnOnce(&Path),
        configure: impl FnOnce(&mut RegistryConfig),
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        prepare(&dir.path().join("templates"));
        let mut config = RegistryConfig::in_dir(dir.path());
        config.status_interval = Duration::from_millis(200);
        configure(&mut config);
        Harness {
            registry: Registry::new(config).start(),
            reaper: Reaper::default(),
            dir,
        }
    }

    async fn start(&self, spec: ProcessSpec) -> Result<ProcessInfo, PmError> {
        let info = start_in(&self.registry, spec).await?;
        self.reaper.saw(&info);
        Ok(info)
    }

    async fn status(&self, name: &str) -> Result<ProcessInfo, PmError> {
        let info = self
            .registry
            .send(GetStatus { name: name.into() })
            .await
            .unwrap()?;
        self.reaper.saw(&info);
        Ok(info)
    }

    /// Polls the status of `name` until `ok` holds, for at most `secs` seconds.
    async fn until(&self, name: &str, secs: u64, ok: impl Fn(&ProcessInfo) -> bool) -> ProcessInfo {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            // Not found yet is fine (templates load in the background).
            let info = self.status(name).await;
            if let Ok(info) = &info {
                if ok(info) {
                    return info.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out; last status: {info:#?}"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn shutdown(&self) {
        self.registry.send(Shutdown).await.unwrap().unwrap();
    }
}

fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry: read its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn crashing(name: &str, code: i32, max: i64, policy: RestartPolicy) -> ProcessSpec {
    let mut spec = ProcessSpec::shell(name, format!("exit {code}"));
    spec.restart.max_restarts = max;
    spec.restart.policy = policy;
    spec
}

#[actix_rt::test]
async fn crash_loop_backs_off_and_shows_next_restart() {
    let h = Harness::new();
    let begun = Instant::now();
    h.start(crashing("loop", 1, -1, RestartPolicy::OnFailure))
        .await
        .ok();
    let info = h
        .until("loop", 20, |i| {
            i.status == Status::Backoff && i.restarts >= 5
        })
        .await;
    // Restart 5 is scheduled (counted, waiting 800 ms): restarts 2, 3 and 4 waited 100 + 200 + 400 ms.
    assert!(
        begun.elapsed() >= Duration::from_millis(700),
        "{:?}",
        begun.elapsed()
    );
    assert!(info.next_restart.is_some(), "{info:#?}");
    assert_eq!(info.exit_code, Some(1));
    h.shutdown().await;
}

#[actix_rt::test]
async fn restarts_run_out_with_a_clear_error() {
    let h = Harness::new();
    h.start(crashing("three", 3, 3, RestartPolicy::OnFailure))
        .await
        .ok();
    let info = h
        .until("three", 20, |i| {
            // The last run's own failure shows a moment before the registry gives up on it.
            i.status == Status::Failed && i.error.contains("gave up") && i.restarts == 3
        })
        .await;
    assert!(
        info.error.contains("gave up after 3 restarts"),
        "{}",
        info.error
    );
    assert!(info.error.contains("exited with code 3"), "{}", info.error);
    assert!(info.next_restart.is_none());
    h.shutdown().await;
}

#[actix_rt::test]
async fn policies_decide_what_restarts() {
    let h = Harness::new();
    // on-failure does not restart a clean exit.
    h.start(crashing("clean", 0, 5, RestartPolicy::OnFailure))
        .await
        .ok();
    let info = h
        .until("clean", 10, |i| i.status == Status::Completed)
        .await;
    assert_eq!(info.restarts, 0);
    // always does, and a never policy with a count does not.
    h.start(crashing("again", 0, 2, RestartPolicy::Always))
        .await
        .ok();
    let info = h
        .until("again", 10, |i| {
            i.restarts == 2 && i.status == Status::Failed
        })
        .await;
    assert!(
        info.error.contains("gave up after 2 restarts"),
        "{}",
        info.error
    );
    h.start(crashing("never", 1, 5, RestartPolicy::Never))
        .await
        .ok();
    let info = h.until("never", 10, |i| i.status == Status::Failed).await;
    assert_eq!(info.restarts, 0);
    // A spawn failure is an error, recorded, and counts as a failed run for the restart policy.
    let mut missing = ProcessSpec::exec("missing", "/nonexistent/program", Vec::<String>::new());
    missing.restart = crashing("-", 1, 2, RestartPolicy::OnFailure).restart;
    let e = h.start(missing).await.unwrap_err();
    assert!(matches!(e, PmError::Spawn { .. }), "{e:?}");
    let info = h
        .until("missing", 10, |i| {
            i.restarts == 2 && i.error.contains("gave up")
        })
        .await;
    assert!(info.error.contains("cannot spawn"), "{}", info.error);
    assert_eq!(info.status, Status::Failed);
    h.shutdown().await;
}

/// A process that restarts on any exit, for the user's-end tests.
fn immortal(name: &str) -> ProcessSpec {
    let mut spec = ProcessSpec::shell(name, "sleep 30");
    spec.restart.policy = RestartPolicy::Always;
    spec.restart.max_restarts = -1;
    spec
}

/// Watches a process for a second (generous: restarts here happen within milliseconds) and checks that
/// it stays down and was not restarted.
async fn stays_down(h: &Harness, name: &str, pid: i32) {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let info = h.status(name).await.unwrap();
        assert_eq!(info.restarts, 0, "{info:#?}");
        assert!(
            !info.status.is_alive() && info.status != Status::Backoff,
            "{info:#?}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid));
}

#[actix_rt::test]
async fn no_restart_after_stop_kill_or_delete() {
    let h = Harness::new();
    let a = h.start(immortal("stopped")).await.unwrap();
    let b = h.start(immortal("killed")).await.unwrap();
    let c = h.start(immortal("deleted")).await.unwrap();

    let info = h
        .registry
        .send(StopProcess {
            name: "stopped".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, Status::Stopped);
    let exit = h
        .registry
        .send(KillProcess {
            name: "killed".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
    h.registry
        .send(DeleteProcess {
            name: "deleted".into(),
        })
        .await
        .unwrap()
        .unwrap();

    stays_down(&h, "stopped", a.pid).await;
    stays_down(&h, "killed", b.pid).await;
    assert!(!alive(c.pid));
    assert_eq!(
        h.status("deleted").await.unwrap_err(),
        PmError::NotFound("deleted".into())
    );
    let names: Vec<_> = h.registry.send(ListProcesses).await.unwrap().unwrap();
    let names: Vec<_> = names.into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["killed", "stopped"]);

    // A restart lifts the hold; the name of a deleted process is free again.
    let again = h
        .registry
        .send(RestartProcess {
            name: "stopped".into(),
        })
        .await
        .unwrap()
        .unwrap();
    h.reaper.saw(&again);
    assert_eq!(again.status, Status::Running);
    assert_ne!(again.pid, a.pid);
    h.start(immortal("deleted")).await.unwrap();
    h.shutdown().await;
}

#[actix_rt::test]
async fn names_are_checked_and_unique() {
    let h = Harness::new();
    let e = h
        .start(ProcessSpec::shell("../x", "true"))
        .await
        .unwrap_err();
    assert_eq!(e, PmError::InvalidName("../x".into()));
    h.start(ProcessSpec::shell("one", "sleep 30"))
        .await
        .unwrap();
    let e = h
        .start(ProcessSpec::shell("one", "sleep 30"))
        .await
        .unwrap_err();
    let existing = Some(Existing {
        status: Status::Running,
        differs: false,
    });
    assert_eq!(
        e,
        PmError::AlreadyExists {
            name: "one".into(),
            existing
        }
    );
    let e = h.status("nobody").await.unwrap_err();
    assert_eq!(e, PmError::NotFound("nobody".into()));
    let mut bad = ProcessSpec::shell("badcron", "true");
    bad.cron = Some("0 0 30 2 *".into());
    let e = h.start(bad).await.unwrap_err().to_string();
    assert!(
        e.contains("'0 0 30 2 *'") && e.contains("never fire"),
        "{e}"
    );
    let e = h
        .registry
        .send(SignalProcess {
            name: "one".into(),
            signal: "NOPE".into(),
            group: false,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(e, PmError::InvalidSignal(_)), "{e:?}");
    h.shutdown().await;
}

#[actix_rt::test]
async fn a_start_that_failed_to_spawn_says_how_to_replace_it() {
    let h = Harness::new();
    let missing = ProcessSpec::exec("now", "/nonexistent/program", Vec::<String>::new());
    let e = h.start(missing.clone()).await.unwrap_err();
    assert!(matches!(e, PmError::Spawn { .. }), "{e:?}");
    let e = h.start(missing).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "process with name 'now' already exists (it is failed: delete it first, or restart it)"
    );
    let e = h
        .start(ProcessSpec::shell("now", "sleep 30"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "process with name 'now' already exists (it is failed, defined otherwise than this \
         start: delete it, then start it again, or apply a stack that defines it, to replace it)"
    );
    h.registry
        .send(Applied(DeleteProcess { name: "now".into() }))
        .await
        .unwrap()
        .unwrap();
    let info = h
        .start(ProcessSpec::shell("now", "sleep 30"))
        .await
        .unwrap();
    assert_eq!(info.status, Status::Running);
    h.shutdown().await;
}

#[actix_rt::test]
async fn logs_of_a_process_that_captures_nothing_say_so() {
    let h = Harness::new();
    h.start(ProcessSpec::shell("quiet", "sleep 30"))
        .await
        .unwrap();
    let page = |name: &str| GetProcessLogPage {
        name: name.into(),
        after: None,
        lines: None,
    };
    let e = h.registry.send(page("quiet")).await.unwrap().unwrap_err();
    assert_eq!(e, PmError::NoLogCapture("quiet".into()));
    let mut logged = ProcessSpec::shell("logged", "sleep 30");
    logged.log.enabled = true;
    h.start(logged).await.unwrap();
    let empty = h.registry.send(page("logged")).await.unwrap().unwrap();
    assert!(empty.lines.is_empty());
    h.shutdown().await;
}

#[actix_rt::test]
async fn cron_fires_every_second_and_shows_next_run() {
    let h = Harness::new();
    let out = h.dir.path().join("fires");
    let mut spec = ProcessSpec::shell("tick", format!("date +%s.%N >> {}", out.display()));
    spec.cron = Some("* * * * * *".into());
    let info = h.start(spec).await.unwrap();
    assert_eq!(info.status, Status::Scheduled, "{info:#?}");
    assert!(info.next_run.is_some());
    let deadline = Instant::now() + Duration::from_secs(15);
    let fires = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let fires: Vec<f64> = text.lines().filter_map(|l| l.parse().ok()).collect();
        if fires.len() >= 3 {
            break fires;
        }
        assert!(Instant::now() < deadline, "only {} fires", fires.len());
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    // One fire per second: never two in the same second.
    for pair in fires.windows(2) {
        assert!(pair[1].floor() > pair[0].floor(), "{fires:?}");
    }
    let info = h.until("tick", 5, |i| i.status == Status::Scheduled).await;
    assert!(info.next_run.is_some());
    // A stop holds the schedule.
    let info = h
        .registry
        .send(StopProcess {
            name: "tick".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.status, Status::Stopped);
    assert!(info.next_run.is_none(), "{info:#?}");
    h.shutdown().await;
}

fn next_run(info: &ProcessInfo) -> chrono::DateTime<chrono::FixedOffset> {
    let at = info.next_run.as_deref().expect("a next run");
    chrono::DateTime::parse_from_rfc3339(at).expect("an RFC 3339 time")
}

/// Cron follows the wall clock, not the time its timer slept: a clock moved forward past several
/// fires fires once and plans from the new time; a clock set back does not move the next fire
/// earlier, and the fire waits until the wall clock reaches it. The clock is the registry's own
/// shifted one, so the machine's clock is never touched.
#[actix_rt::test]
async fn cron_follows_the_wall_clock_when_it_jumps() {
    let clock = CronClock::shifted();
    let h = Harness::configured(
        |_| {},
        |config| {
            config.cron_clock = clock.clone();
            config.cron_recheck = Duration::from_millis(50);
        },
    );
    let out = h.dir.path().join("fires");
    let mut spec = ProcessSpec::shell("yearly", format!("echo fired >> {}", out.display()));
    spec.cron = Some("0 0 1 1 *".into());
    let info = h.start(spec).await.unwrap();
    let first = next_run(&info);
    let fires = || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .count()
    };

    // Forward past two New Years: one fire, and the next is planned from the new time.
    let forward = first + chrono::Duration::days(400) - chrono::Local::now().fixed_offset();
    clock.shift(forward);
    let info = h
        .until("yearly", 10, |i| {
            fires() >= 1 && i.status == Status::Scheduled && i.next_run.is_some()
        })
        .await;
    let second = next_run(&info);
    let jumped_to = clock.now().fixed_offset();
    assert!(second > jumped_to, "{second} is not after {jumped_to}");
    assert!(
        second - jumped_to <= chrono::Duration::days(366),
        "{second}"
    );
    assert_eq!(fires(), 1, "one fire for the missed ones");

    // Set back two years: the next fire stays where it was (over several wake-ups) and nothing fires.
    clock.shift(forward - chrono::Duration::days(730));
    let watched_until = Instant::now() + Duration::from_millis(400);
    while Instant::now() < watched_until {
        let info = h.status("yearly").await.unwrap();
        assert_eq!(
            next_run(&info),
            second,
            "a clock set back moved the next fire"
        );
        assert_eq!(fires(), 1, "fired while the clock was set back");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }

    // Now 1.5 s before that fire: it comes when the wall clock gets there, not before.
    let shifted_at = Instant::now();
    clock
        .shift(second - chrono::Duration::milliseconds(1500) - chrono::Local::now().fixed_offset());
    h.until("yearly", 10, |_| fires() >= 2).await;
    let waited = shifted_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "fired {waited:?} after the shift"
    );
    assert_eq!(fires(), 2);
    h.shutdown().await;
}

#[actix_rt::test]
async fn cron_skips_overlapping_runs_and_deadline_bounds_a_run() {
    let h = Harness::new();
    let mut slow = ProcessSpec::shell("slow", "sleep 30");
    slow.cron = Some("* * * * * *".into());
    h.start(slow).await.unwrap();
    let info = h.until("slow", 15, |i| i.skipped_runs >= 2).await;
    assert_eq!(info.status, Status::Running, "{info:#?}");
    let first = info.pid;

    let mut bounded = ProcessSpec::shell("bounded", "sleep 30");
    bounded.cron = Some("* * * * * *".into());
    bounded.deadline_secs = Some(1);
    bounded.grace_ms = 500;
    h.start(bounded).await.unwrap();
    let run = h
        .until("bounded", 15, |i| i.pid > 0 && i.status == Status::Running)
        .await;
    // The deadline ends the run well before its 30 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(run.pid) {
        assert!(Instant::now() < deadline, "run outlived its deadline");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(alive(first), "the long run was cut short by a skipped fire");
    h.shutdown().await;
    assert!(!alive(first));
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

#[actix_rt::test]
async fn templates_load_at_startup_and_bad_files_are_skipped() {
    let h = Harness::with(|dir| {
        write(
            dir,
            "boot.json",
            r#"{"name":"boot","cmd":"sleep","p_options":{"args":["30"],"run_on_startup":true}}"#,
        );
        write(
            dir,
            "later.json",
            r#"{"name":"later","cmd":"sleep","p_options":{"args":["30"]}}"#,
        );
        write(dir, "broken.json", "{ this is not json");
    });
    let info = h.until("boot", 10, |i| i.status == Status::Running).await;
    assert_eq!(info.command, "sleep 30");
    assert_eq!(
        h.status("later").await.unwrap_err(),
        PmError::NotFound("later".into())
    );
    let all = h.registry.send(GetAllTemplates).await.unwrap().unwrap();
    let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["boot", "later"]);
    let info = h
        .registry
        .send(StartFromTemplate {
            name: "later".into(),
        })
        .await
        .unwrap()
        .unwrap();
    h.reaper.saw(&info);
    assert_eq!(info.status, Status::Running);
    let e = h
        .registry
        .send(GetTemplate {
            name: "broken".into(),
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("broken.json"), "{e}");
    h.shutdown().await;
}

#[actix_rt::test]
async fn template_option_writes_a_file_that_loads_back() {
    let h = Harness::new();
    let mut spec = ProcessSpec::exec("saved", "sleep", ["30"]);
    spec.env.insert("A".into(), "1".into());
    spec.restart.max_restarts = 2;
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.deadline_secs = Some(100);
    spec.job_id = Some("job-7".into());
    let opt = TemplateOption {
        run_on_startup: true,
    };
    let msg = StartProcess {
        spec: spec.clone(),
        template: Some(opt),
    };
    let info = h.registry.send(msg).await.unwrap().unwrap();
    h.reaper.saw(&info);
    let path = h.dir.path().join("templates/saved.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let back = h
        .registry
        .send(GetTemplate {
            name: "saved".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, spec);
    let t = Template::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(t.p_options.run_on_startup);
    h.shutdown().await;
}

#[actix_rt::test]
async fn shutdown_stops_everything_but_detached() {
    let h = Harness::new();
    let mut pids = Vec::new();
    for n in 0..3 {
        // A shell with a child: the whole group must go.
        let mut spec = ProcessSpec::shell(format!("svc{n}"), "sleep 30 & sleep 30; wait");
        spec.grace_ms = 2000;
        pids.push(h.start(spec).await.unwrap().pid);
    }
    // One ignores SIGTERM and is killed after its grace.
    let mut stubborn = ProcessSpec::shell("stubborn", "trap '' TERM; sleep 30 & wait; sleep 30");
    stubborn.grace_ms = 300;
    pids.push(h.start(stubborn).await.unwrap().pid);
    let mut detached = ProcessSpec::shell("keeper", "sleep 30");
    detached.detach = true;
    let keeper = h.start(detached).await.unwrap().pid;

    let begun = Instant::now();
    h.shutdown().await;
    assert!(begun.elapsed() < Duration::from_secs(10));
    for pid in pids {
        assert!(!alive(pid), "{pid} survived");
        // Nothing of its group is left either.
        assert!(!group_exists(pid), "group {pid} survived");
    }
    assert!(alive(keeper), "the detached process was stopped");
    let e = h
        .start(ProcessSpec::shell("late", "true"))
        .await
        .unwrap_err();
    assert_eq!(e, PmError::ShuttingDown);
}

#[actix_rt::test]
async fn stop_all_stops_every_live_process_for_good() {
    let h = Harness::new();
    let mut live = Vec::new();
    for n in 0..19 {
        let info = h.start(immortal(&format!("svc{n:02}"))).await.unwrap();
        live.push((info.name, info.pid));
    }
    // Ignores SIGTERM (and so does its child): killed after its short grace, not restarted either.
    let mut stubborn = immortal("stubborn");
    stubborn.command =
        pm_protocol::CommandLine::Shell("trap '' TERM; sleep 30 & wait; sleep 30".into());
    stubborn.grace_ms = 300;
    let info = h.start(stubborn).await.unwrap();
    live.push((info.name, info.pid));
    // Waiting out a long backoff: held, so it does not come back.
    let mut crasher = crashing("crasher", 3, -1, RestartPolicy::OnFailure);
    crasher.restart.backoff_initial_ms = 60_000;
    h.start(crasher).await.unwrap();
    h.until("crasher", 10, |i| i.status == Status::Backoff)
        .await;
    // Ended by itself before the stop: left as it is.
    h.start(ProcessSpec::shell("finished", "true"))
        .await
        .unwrap();
    h.until("finished", 10, |i| i.status == Status::Completed)
        .await;

    let all = h.registry.send(StopAll).await.unwrap().unwrap();
    assert!(all.failed.is_empty(), "{:?}", all.failed);
    let mut want: Vec<String> = live.iter().map(|(n, _)| n.clone()).collect();
    want.push("crasher".into());
    want.sort();
    assert_eq!(all.stopped, want);
    // Answered once every one is gone, group and all.
    for (name, pid) in &live {
        assert!(!alive(*pid), "{name} ({pid}) survived");
        assert!(!group_exists(*pid), "group of {name} survived");
    }
    // The state file already says so: nothing of it is wanted any more.
    let text = std::fs::read_to_string(h.dir.path().join("state.json")).unwrap();
    let saved = pm_protocol::state::SavedState::from_json(&text).unwrap();
    assert_eq!(saved.processes.len(), 22);
    for p in &saved.processes {
        assert!(!p.wanted, "{p:?}");
    }

    // Nothing comes back (restarts happen within milliseconds; a second is generous).
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        for info in h.registry.send(ListProcesses).await.unwrap().unwrap() {
            h.reaper.saw(&info);
            let want = match info.name.as_str() {
                "finished" => Status::Completed,
                _ => Status::Stopped,
            };
            assert_eq!(info.status, want, "{info:#?}");
            assert_eq!(info.pid, 0, "{info:#?}");
            assert!(info.next_restart.is_none(), "{info:#?}");
            if info.name != "crasher" {
                assert_eq!(info.restarts, 0, "{info:#?}");
            }
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let stubborn = h.status("stubborn").await.unwrap();
    assert_eq!(stubborn.exit_signal.as_deref(), Some("SIGKILL"));

    // Nothing left alive: a second stop-all stops nothing, and says so.
    let again = h.registry.send(StopAll).await.unwrap().unwrap();
    assert_eq!(again, StoppedAll::default());
    h.shutdown().await;
}

#[actix_rt::test]
async fn subscribers_get_the_events_of_every_process() {
    let h = Harness::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = pm_actors::process::EventSink::Unbounded(tx);
    h.registry
        .send(SubscribeEvents { names: None, sink })
        .await
        .unwrap()
        .unwrap();
    h.start(ProcessSpec::shell("brief", "exit 4"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, rx.recv())
            .await
            .expect("no exit event")
            .unwrap();
        if ev.exit.is_some() {
            assert_eq!(ev.name, "brief");
            assert_eq!(ev.exit.unwrap().code, Some(4));
            break;
        }
    }
    let e = h
        .registry
        .send(SubscribeEvents {
            names: Some(vec!["ghost".into()]),
            sink: pm_actors::process::EventSink::Unbounded(
                tokio::sync::mpsc::unbounded_channel().0,
            ),
        })
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e, PmError::NotFound("ghost".into()));
    h.shutdown().await;
}

/// Whether any process of the group `pgid` still exists (signal 0 only checks).
fn group_exists(pgid: i32) -> bool {
    kill(Pid::from_raw(-pgid), None).is_ok()
}

/// `ListJson` writes every record through one scratch record: each must come out as its own, with
/// nothing left from the one before (a running process with arguments and a job id first, then a
/// failed one, a stopped one and a scheduled one), exactly as `list_json` of `ListProcesses`.
#[actix_rt::test]
async fn the_json_list_is_every_record_as_the_list_has_it() {
    let h = Harness::new();
    let mut rich = ProcessSpec::exec("a-running", "sleep", ["30", "--", "x"]);
    rich.job_id = Some("job-7".into());
    h.start(rich).await.unwrap();
    h.start(crashing("b-failed", 3, 0, RestartPolicy::Never))
        .await
        .unwrap();
    h.until("b-failed", 10, |i| i.status == Status::Failed)
        .await;
    let stopped = h.start(immortal("c-stopped")).await.unwrap();
    h.registry
        .send(StopProcess {
            name: "c-stopped".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert!(!alive(stopped.pid));
    let mut cron = ProcessSpec::shell("d-scheduled", "true");
    cron.cron = Some("0 0 1 1 *".into());
    h.start(cron).await.unwrap();

    let streamed = h.registry.send(ListJson).await.unwrap().unwrap();
    let records = h.registry.send(ListProcesses).await.unwrap().unwrap();
    let listed = pm_protocol::response::list_json(&records);
    // What is read live (uptime, CPU, memory) moves between the two lists, for the running one only.
    let without_live = |text: &str| {
        let mut all: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        for key in ["uptime_secs", "cpu_percent", "memory_mb", "cpu_seconds"] {
            all[0].as_object_mut().unwrap().remove(key);
        }
        all
    };
    let (streamed_all, listed_all) = (without_live(&streamed), without_live(&listed));
    assert_eq!(streamed_all.len(), 4, "{streamed}");
    assert_eq!(streamed_all, listed_all, "{streamed}\n{listed}");
    assert_eq!(streamed_all[1]["exit_code"], 3, "{streamed}");
    assert_eq!(streamed_all[3]["status"], "scheduled", "{streamed}");
    assert!(streamed_all[1]["job_id"] == "" && streamed_all[0]["job_id"] == "job-7");
    // Not running, its uptime is not carried over from the running one before it.
    assert_eq!(streamed_all[1]["uptime_secs"], serde_json::Value::Null);
    // The stopped and the scheduled ones read nothing live: their bytes are the list's bytes.
    let tail = |text: &str| text[text.find("\"c-stopped\"").unwrap()..].to_string();
    assert_eq!(tail(&streamed), tail(&listed));
    h.shutdown().await;
}
