//! An actix actor that supervises a process through the in-process API, with no socket: it starts a
//! crashing process with unlimited restarts, subscribes to its events, reacts to its second exit by
//! stopping it, and reports what it saw.
//!
//! Run it with `cargo run --example supervise`.

use std::time::Duration;

use actix::prelude::*;
use pm_actors::process::{EventSink, ProcessEventMsg};
use pm_actors::registry::{
    GetStatus, Registry, RegistryConfig, StartProcess, StopProcess, SubscribeEvents,
};
use pm_protocol::{PmError, ProcessInfo, ProcessSpec, RestartPolicy};
use tokio::sync::oneshot;

/// What the watcher saw: the exits it was told about, and the status once it stopped the process.
#[derive(Debug)]
pub struct Outcome {
    pub exits: Vec<String>,
    pub last: ProcessInfo,
}

/// Starts `demo`, watches its events, and stops it after its second exit.
struct Watcher {
    registry: Addr<Registry>,
    exits: Vec<String>,
    done: Option<oneshot::Sender<Result<Outcome, PmError>>>,
}

impl Actor for Watcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let registry = self.registry.clone();
        let me = ctx.address().recipient::<ProcessEventMsg>();
        let mut spec = ProcessSpec::shell("demo", "echo working; sleep 0.2; exit 3");
        spec.restart.policy = RestartPolicy::OnFailure;
        spec.restart.max_restarts = -1;
        let setup = async move {
            // Subscribe first (to every process), so not even the first exit can be missed.
            let sink = EventSink::Recipient(me);
            registry
                .send(SubscribeEvents { names: None, sink })
                .await
                .map_err(internal)??;
            registry
                .send(StartProcess {
                    spec,
                    template: None,
                })
                .await
                .map_err(internal)?
        };
        ctx.spawn(setup.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                act.finish(Err(e), ctx);
            }
        }));
    }
}

fn internal(e: MailboxError) -> PmError {
    PmError::Internal(e.to_string())
}

impl Watcher {
    fn finish(&mut self, outcome: Result<Outcome, PmError>, ctx: &mut Context<Self>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(outcome);
        }
        ctx.stop();
    }
}

impl Handler<ProcessEventMsg> for Watcher {
    type Result = ();

    fn handle(&mut self, ProcessEventMsg(event): ProcessEventMsg, ctx: &mut Context<Self>) {
        let Some(exit) = event.exit else { return };
        println!("{} (pid {}) {}", event.name, event.pid, exit.describe());
        self.exits.push(exit.describe());
        if self.exits.len() != 2 {
            return;
        }
        // React to the second exit: stop it (which also ends the automatic restarts).
        let registry = self.registry.clone();
        let stop = async move {
            registry
                .send(StopProcess {
                    name: "demo".into(),
                })
                .await
                .map_err(internal)??;
            registry
                .send(GetStatus {
                    name: "demo".into(),
                })
                .await
                .map_err(internal)?
        };
        ctx.spawn(stop.into_actor(self).map(|res, act, ctx| {
            let exits = std::mem::take(&mut act.exits);
            act.finish(res.map(|last| Outcome { exits, last }), ctx);
        }));
    }
}

/// Runs the whole example in its own actix system, with the registry's files under `dir`.
pub fn run(dir: &std::path::Path) -> Result<Outcome, PmError> {
    let config = RegistryConfig::in_dir(dir);
    System::new().block_on(async move {
        let registry = Registry::new(config).start();
        let (tx, rx) = oneshot::channel();
        Watcher {
            registry: registry.clone(),
            exits: Vec::new(),
            done: Some(tx),
        }
        .start();
        let outcome = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| PmError::Internal("the watcher did not finish in 30 s".into()))?
            .map_err(|_| PmError::Internal("the watcher stopped without an answer".into()))?;
        registry
            .send(pm_actors::registry::Shutdown)
            .await
            .map_err(internal)??;
        outcome
    })
}

#[allow(dead_code)] // A test includes this file and calls `run` itself.
fn main() {
    let dir = std::env::temp_dir().join(format!("pm-example-{}", std::process::id()));
    match run(&dir) {
        Ok(outcome) => println!(
            "saw {} exits; after the stop: {} with {} restarts",
            outcome.exits.len(),
            outcome.last.status,
            outcome.last.restarts
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
