//! Shutdown: every process that is not detached is stopped, all in parallel; detached ones keep running.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::Shutdown;
use super::stop::stopped;
use super::Registry;

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
        let durable = self.durable();
        Box::pin(async move {
            durable.await;
            // Every stop is already queued: awaiting them in turn waits for the slowest only.
            for (name, stop) in stops {
                if let Err(e) = stopped(stop.await) {
                    tracing::warn!(process = %name, "stop at shutdown: {e}");
                }
            }
            Ok(())
        })
    }
}
