//! The registry harness of the readiness, health and dependency tests: a registry in a temp dir
//! with every event subscribed, status polling with a deadline, and process specs with probes.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use actix::prelude::*;
use pm_actors::process::EventSink;
use pm_actors::registry::*;
use pm_protocol::{
    EventKind, PmError, ProbeSettings, ProcessEvent, ProcessInfo, ProcessSpec, Readiness,
};
use tokio::sync::mpsc;

use super::common::{start_in, Cleanup};

pub struct Harness {
    pub registry: Addr<Registry>,
    pub events: mpsc::UnboundedReceiver<ProcessEvent>,
    pub cleanup: Cleanup,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RegistryConfig::in_dir(dir.path());
        config.status_interval = Duration::from_millis(200);
        let registry = Registry::new(config).start();
        let events = subscribe(&registry).await;
        Harness {
            registry,
            events,
            cleanup: Cleanup::default(),
            dir,
        }
    }

    pub async fn start(&mut self, spec: ProcessSpec) -> Result<ProcessInfo, PmError> {
        let info = start_in(&self.registry, spec).await?;
        self.cleanup.group(info.pid);
        Ok(info)
    }

    pub async fn status(&mut self, name: &str) -> ProcessInfo {
        let info = self
            .registry
            .send(GetStatus { name: name.into() })
            .await
            .unwrap()
            .unwrap();
        self.cleanup.group(info.pid);
        info
    }

    /// Polls the status of `name` until `ok` holds, for at most `secs` seconds.
    pub async fn until(
        &mut self,
        name: &str,
        secs: u64,
        ok: impl Fn(&ProcessInfo) -> bool,
    ) -> ProcessInfo {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let info = self.status(name).await;
            if ok(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "timed out; last status: {info:#?}"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The events of `name` seen so far, without waiting.
    pub fn drain(&mut self, name: &str) -> Vec<EventKind> {
        let mut out = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            if ev.name == name {
                out.push(ev.kind);
            }
        }
        out
    }

    /// Waits (at most `secs`) for an event of `name` that `ok` accepts; answers the events before it.
    pub async fn event(
        &mut self,
        name: &str,
        secs: u64,
        ok: impl Fn(&EventKind) -> bool,
    ) -> Vec<EventKind> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no such event of {name} in time; saw {seen:?}"))
                .expect("events flow");
            if ev.name != name {
                continue;
            }
            let hit = ok(&ev.kind);
            seen.push(ev.kind);
            if hit {
                return seen;
            }
        }
    }

    pub async fn shutdown(&self) {
        self.registry.send(Shutdown).await.unwrap().unwrap();
    }
}

/// Every event of every process of `registry`, from now on.
pub async fn subscribe(registry: &Addr<Registry>) -> mpsc::UnboundedReceiver<ProcessEvent> {
    let (tx, events) = mpsc::unbounded_channel();
    registry
        .send(SubscribeEvents {
            names: None,
            sink: EventSink::Unbounded(tx),
        })
        .await
        .unwrap()
        .unwrap();
    events
}

pub fn probed(name: &str, command: &str, ready: &str) -> ProcessSpec {
    let mut spec = ProcessSpec::shell(name, command);
    spec.probes = ProbeSettings {
        ready: Readiness::parse(ready).unwrap(),
        ready_period_ms: 50,
        ready_timeout_ms: 500,
        ..ProbeSettings::default()
    };
    spec.grace_ms = 1000;
    spec
}

pub fn is_ready(k: &EventKind) -> bool {
    *k == EventKind::Ready
}

/// Whether python3 is here to send raw datagrams (says why a test skips when not).
pub fn have_python3() -> bool {
    let here = std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_ok();
    if !here {
        eprintln!("skipped: python3 (to send a raw datagram) is not installed");
    }
    here
}

/// `python3 -c` sending `text` (assignments separated by `\\n`) to `NOTIFY_SOCKET`.
pub fn raw_notify(text: &str) -> String {
    format!(
        "python3 -c 'import os,socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); \
         s.sendto(b\"{text}\", os.environ[\"NOTIFY_SOCKET\"])'"
    )
}
