//! The CPU cost of a crash loop with unlimited restarts (a measurement, ignored by default):
//! `cargo test --release -p pm-actors --test crash_loop_cost -- --ignored --nocapture`
//! (`PM_COST_SECS` sets the window, 30 s by default). The budget is 1% of one core.

mod common;

use std::time::{Duration, Instant};

use common::start_in;
use pm_actors::registry::*;
use pm_protocol::{ProcessSpec, RestartPolicy};

/// utime + stime of this process in clock ticks (`/proc/self/stat` fields 14 and 15; children excluded).
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = stat.rsplit(')').next().unwrap();
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state): utime is field 14, stime field 15.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[actix_rt::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn crash_loop_cpu_cost() {
    let secs: u64 = std::env::var("PM_COST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let mut spec = ProcessSpec::shell("crash", "exit 1");
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.restart.max_restarts = -1;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;

    let (t0, c0) = (Instant::now(), own_cpu_ticks());
    start_in(&registry, spec).await.unwrap();
    actix_rt::time::sleep(Duration::from_secs(secs)).await;
    let (cpu, wall) = (
        (own_cpu_ticks() - c0) as f64 / hz,
        t0.elapsed().as_secs_f64(),
    );
    let info = registry
        .send(GetStatus {
            name: "crash".into(),
        })
        .await
        .unwrap()
        .unwrap();
    registry.send(Shutdown).await.unwrap().unwrap();

    let percent = 100.0 * cpu / wall;
    println!(
        "crash loop: {} restarts in {wall:.1} s, supervisor CPU {cpu:.3} s = {percent:.3}% of a core",
        info.restarts
    );
    assert!(info.restarts >= 5, "{info:#?}");
    assert!(percent < 1.0, "{percent:.3}% of a core");
}

#[actix_rt::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn restart_latency_from_exit_to_new_pid() {
    use pm_protocol::{EventKind, Status};
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = pm_actors::process::EventSink::Unbounded(tx);
    registry
        .send(SubscribeEvents { names: None, sink })
        .await
        .unwrap()
        .unwrap();
    let mut spec = ProcessSpec::shell("flap", "exit 1");
    spec.restart.policy = RestartPolicy::OnFailure;
    spec.restart.max_restarts = -1;
    // Every run counts as having stayed up long enough: every restart is immediate.
    spec.restart.reset_after_ms = 0;
    start_in(&registry, spec).await.ok();
    let (mut exited, mut gaps) = (None, Vec::new());
    while gaps.len() < 200 {
        let ev = rx.recv().await.unwrap();
        match ev.kind {
            EventKind::Status {
                new: Status::Failed,
                ..
            } if ev.exit.is_some() => exited = Some(ev.time),
            EventKind::Status {
                new: Status::Running,
                ..
            } => {
                if let Some(t) = exited.take() {
                    gaps.push((ev.time - t).num_microseconds().unwrap_or(i64::MAX));
                }
            }
            _ => {}
        }
    }
    registry.send(Shutdown).await.unwrap().unwrap();
    gaps.sort_unstable();
    println!(
        "restart latency (exit event to running event, 200 restarts): median {} us, p90 {} us",
        gaps[100], gaps[180]
    );
}
