//! Helpers shared by the process actor tests: options in a temp dir, polling with a deadline, and a drop
//! guard that kills every process group a test started.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use actix::Addr;
use pm_actors::process::{ProcessActor, ProcessHandle, ProcessOptions};
use pm_protocol::ProcessSpec;

/// Kills the recorded process groups (and pids) when dropped, pass or fail.
#[derive(Default)]
pub struct Cleanup {
    pub groups: Vec<i32>,
}

impl Cleanup {
    pub fn group(&mut self, pgid: i32) {
        if pgid > 0 {
            self.groups.push(pgid);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &g in &self.groups {
            // SAFETY: kill with a negative pid signals the group; harmless if it is gone.
            unsafe {
                libc::kill(-g, libc::SIGKILL);
            }
        }
    }
}

/// A temp dir and options with a fast tick (100 ms).
pub fn options() -> (tempfile::TempDir, ProcessOptions) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = ProcessOptions::new(dir.path().join("logs")).with_tick(Duration::from_millis(100));
    (dir, opts)
}

/// Starts an actor for `spec` on the current system.
pub fn actor(spec: ProcessSpec, opts: ProcessOptions) -> ProcessHandle {
    let name = spec.name.clone();
    ProcessHandle::spawn(ProcessActor::new(spec, opts), name)
}

/// Polls `check` every 20 ms until it yields `Some`, or panics with `what` after `limit`.
pub async fn poll<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Pids whose process group is `pgid` and that are not zombies (scans /proc: tests only).
pub fn live_members(pgid: i32) -> Vec<i32> {
    pm_actors::process::procfs::scan_all()
        .filter(|(_, st)| st.pgrp == pgid && st.state != 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// Waits until `pid` has a child (e.g. a shell has set its traps and started its loop).
pub async fn has_child(pid: i32) {
    poll("a child process", Duration::from_secs(20), || async move {
        let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        (!kids.trim().is_empty()).then_some(())
    })
    .await
}

/// Sends `StartProcess` for `spec` (no template) to a registry and answers its reply.
pub async fn start_in(
    registry: &actix::Addr<pm_actors::registry::Registry>,
    spec: ProcessSpec,
) -> Result<pm_protocol::ProcessInfo, pm_protocol::PmError> {
    registry
        .send(pm_actors::registry::StartProcess {
            spec,
            template: None,
        })
        .await
        .expect("the registry answers")
}

/// Polls the status of `name` in a registry every 20 ms until `want` holds (20 s at most).
pub async fn poll_status(
    r: &actix::Addr<pm_actors::registry::Registry>,
    name: &str,
    want: impl Fn(&pm_protocol::ProcessInfo) -> bool,
) -> pm_protocol::ProcessInfo {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let info = r
            .send(pm_actors::registry::GetStatus { name: name.into() })
            .await
            .expect("the registry answers")
            .expect("a status");
        if want(&info) {
            return info;
        }
        assert!(Instant::now() < end, "timed out; last status {info:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One life of a registry on `dir`, in an actix system on its own thread.
pub struct Life {
    pub registry: Addr<pm_actors::registry::Registry>,
    system: actix::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Life {
    pub fn start(dir: &std::path::Path) -> Life {
        let mut config = pm_actors::registry::RegistryConfig::in_dir(dir);
        config.status_interval = Duration::from_millis(100);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runner = actix::System::new();
            runner.block_on(async {
                let registry = pm_actors::registry::Registry::new(config).start();
                tx.send((registry, actix::System::current())).unwrap();
            });
            let _ = runner.run();
        });
        let (registry, system) = rx.recv().unwrap();
        Life {
            registry,
            system,
            thread: Some(thread),
        }
    }

    /// Ends the life without a shutdown: the registry is gone, every child is left as it is.
    pub fn end(mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Life {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.system.stop();
            let _ = t.join();
        }
    }
}
