//! StopAll: a user's stop of every live process, dependents before their dependencies (level by
//! level, each level at once); answers when they are all gone.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::{StopAll, StoppedAll};
use super::Registry;

impl Handler<StopAll> for Registry {
    type Result = ResponseActFuture<Self, Result<StoppedAll, PmError>>;

    fn handle(&mut self, _msg: StopAll, ctx: &mut Context<Self>) -> Self::Result {
        if self.shutting_down {
            return Box::pin(fut::ready(Err(PmError::ShuttingDown)));
        }
        // A process waiting out a restart backoff, or for its dependencies, is live for the user:
        // holding it is its stop.
        let mut waiting = Vec::new();
        let mut probes = Vec::new();
        for (name, entry) in self.entries.iter_mut() {
            if entry.lifecycle.restart_pending().is_some()
                || entry.lifecycle.waiting_for().is_some()
            {
                entry.on_user_stop(ctx);
                waiting.push(name.clone());
            } else {
                // Every probe is queued now, so the actors answer at the same time.
                probes.push((name.clone(), entry.id, entry.process.is_alive()));
            }
        }
        if !waiting.is_empty() {
            self.state_changed(ctx);
        }
        let alive = async move {
            let mut alive = Vec::new();
            for (name, id, probe) in probes {
                if probe.await.unwrap_or(false) {
                    alive.push((name, id));
                }
            }
            alive
        };
        Registry::when_durable(Box::pin(alive.into_actor(self).then(
            move |alive, act, ctx| {
                let mut held = Vec::new();
                for (name, id) in alive {
                    // Deleted (or deleted and defined again) while the probes ran: not ours to stop.
                    let Some(entry) = act.entries.get_mut(&name).filter(|e| e.id == id) else {
                        continue;
                    };
                    // Held before the stop signal, as a single stop: an exit during the grace, or a
                    // restart already on its way, is not followed by another start.
                    entry.on_user_stop(ctx);
                    held.push(name);
                }
                if !held.is_empty() {
                    act.state_changed(ctx);
                }
                let stops = act.stop_by_level(held);
                async move {
                    let mut all = StoppedAll {
                        stopped: waiting,
                        failed: Vec::new(),
                    };
                    for (name, res) in stops.await {
                        match res {
                            Ok(()) => all.stopped.push(name),
                            Err(e) => all.failed.push((name, e)),
                        }
                    }
                    all.stopped.sort();
                    Ok(all)
                }
                .into_actor(act)
            },
        )))
    }
}
