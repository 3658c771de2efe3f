//! Shutdown: every process that is not detached is stopped, dependents before their dependencies
//! (level by level, each level in parallel); detached ones keep running. Then whatever still carries
//! the marker of a stopped name (a stray of a run that had already ended) is killed. The answer is an
//! error when a stop failed, so that the daemon's exit code can say so.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::Shutdown;
use super::Registry;
use crate::process::strays::{StrayScanner, Sweep};

impl Handler<Shutdown> for Registry {
    type Result = ResponseFuture<Result<(), PmError>>;

    fn handle(&mut self, _msg: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let mut names = Vec::new();
        for (name, entry) in self.entries.iter_mut() {
            entry.on_shutdown(ctx);
            if !entry.spec.detach && !entry.attached {
                names.push(name.clone());
            }
        }
        // Built now, run once the state is on disk: dependents first, level by level.
        let stops = self.stop_by_level(names);
        let scanner = StrayScanner::shared(&self.config.paths.state_file);
        let durable = self.durable();
        Box::pin(async move {
            durable.await;
            let mut failed = Vec::new();
            let mut sweeps = Vec::new();
            for (name, res) in stops.await {
                if let Err(e) = res {
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
