//! Shutdown: every process that is not detached is stopped, dependents before their dependencies
//! (level by level, each level in parallel); detached ones keep running.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::Shutdown;
use super::Registry;

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
        let durable = self.durable();
        Box::pin(async move {
            durable.await;
            for (name, res) in stops.await {
                if let Err(e) = res {
                    tracing::warn!(process = %name, "stop at shutdown: {e}");
                }
            }
            Ok(())
        })
    }
}
