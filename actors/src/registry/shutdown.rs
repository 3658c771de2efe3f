//! Shutdown: every process that is not detached is stopped, all in parallel; detached ones keep running.
//! Then whatever still carries the marker of a stopped name (a stray of a run that had already ended)
//! is killed. The answer is an error when a stop failed, so that the daemon's exit code can say so.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::Shutdown;
use super::stop::stopped;
use super::Registry;
use crate::process::strays::{StrayScanner, Sweep};

impl Handler<Shutdown> for Registry {
    type Result = ResponseFuture<Result<(), PmError>>;

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let mut stops = Vec::new();
        for (name, entry) in self.entries.iter_mut() {
            entry.on_shutdown(ctx);
            if !entry.spec.detach && !entry.attached {
                // Queued now: every actor runs its stop sequence at the same time.
                stops.push((name.clone(), entry.process.stop_and_wait(None)));
            }
        }
        let scanner = StrayScanner::shared(&self.config.paths.state_file);
        let durable = self.durable();
        Box::pin(async move {
            durable.await;
            let mut failed = Vec::new();
            // Every stop is already queued: awaiting them in turn waits for the slowest only.
            let mut sweeps = Vec::new();
            for (name, stop) in stops {
                if let Err(e) = stopped(stop.await) {
                    tracing::warn!(process = %name, "stop at shutdown: {e}");
                    failed.push(name.clone());
                }
                if let Some(s) = &scanner {
                    sweeps.push((name.clone(), s.sweep(&name, Sweep::Kill)));
                }
            }
            for (name, sweep) in sweeps {
                let killed = sweep.await;
                if killed > 0 {
                    tracing::info!(process = %name, killed, "killed what was left outside its group");
                }
            }
            match failed.len() {
                0 => Ok(()),
                n => Err(PmError::Internal(format!(
                    "{n} process(es) could not be stopped: {}",
                    failed.join(", ")
                ))),
            }
        })
    }
}
