//! The registry's side of readiness: a process actor's `ready` event (its run's `ready:` condition
//! holds) reaches the registry here, once per run, and becomes the `Ready` milestone of the
//! dependency graph.

use actix::prelude::*;

use super::Registry;

impl Registry {
    /// `name`'s current run (pid `pid`) became ready. Ready is a fact of one run: a restart sends
    /// this again only once its own readiness holds. A process without a `ready:` option sends
    /// none: it is ready when it starts.
    pub(crate) fn process_ready(&mut self, name: &str, pid: i32, ctx: &mut Context<Self>) {
        if !self.entries.contains_key(name) {
            return;
        }
        tracing::debug!(process = name, pid, "ready");
        self.run_ready(name, pid, ctx);
    }
}
