//! The registry's side of process events: a self-exit becomes a restart, a backoff, or a give-up.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use actix::prelude::*;
use pm_protocol::{EventKind, ProcessEvent, Status};
use tokio::sync::mpsc;

use super::backoff::Decision;
use super::lifecycle::Timer;
use super::Registry;

/// The events of every process actor, as a stream the registry reads.
pub(crate) struct EventStream(pub(crate) mpsc::UnboundedReceiver<ProcessEvent>);

impl Stream for EventStream {
    type Item = ProcessEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<ProcessEvent>> {
        self.0.poll_recv(cx)
    }
}

impl StreamHandler<ProcessEvent> for Registry {
    fn handle(&mut self, event: ProcessEvent, ctx: &mut Context<Self>) {
        // Only a run that ended by itself matters here: a user's stop, kill and a deadline end in
        // `stopped`, an attached process in `terminated`. And a run that became ready.
        let new = match event.kind {
            EventKind::Status { new, .. } => new,
            EventKind::Ready => return self.process_ready(&event.name, event.pid, ctx),
            _ => return,
        };
        self.track_run(&event.name, event.pid, new.is_alive(), ctx);
        // The milestones dependents wait for (a `stopping` run is still the same run).
        if new == Status::Running {
            self.run_started(&event.name, event.pid, ctx);
        } else if !new.is_alive() && event.exit.is_some() {
            self.run_ended(&event.name, new, ctx);
        }
        let Some(exit) = event.exit else {
            return;
        };
        if !matches!(new, Status::Completed | Status::Failed) {
            return;
        }
        let Some(id) = self.entries.get(&event.name).map(|e| e.id) else {
            return;
        };
        self.after_run(&event.name, id, exit.success(), &exit.describe(), ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The registry holds a sender, so the stream never ends while it lives; nothing to do.
    }
}

impl Registry {
    /// Decides what follows a run of `name` (definition `id`) that ended by itself.
    pub(crate) fn after_run(
        &mut self,
        name: &str,
        id: u64,
        success: bool,
        last: &str,
        ctx: &mut Context<Self>,
    ) {
        let shutting_down = self.shutting_down;
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if entry.id != id || entry.lifecycle.is_held() || entry.attached || shutting_down {
            return;
        }
        let uptime = entry.started_at.map(|t| t.elapsed()).unwrap_or_default();
        let decision = entry
            .backoff
            .decide(&entry.spec.restart, success, last, uptime);
        let restart_timer = match decision {
            Decision::RestartAfter(delay) if !delay.is_zero() => {
                Some(Registry::restart_timer(name, id, delay, ctx))
            }
            _ => None,
        };
        if let Some(entry) = self.entries.get_mut(name) {
            entry.on_exit(&decision, restart_timer);
        }
        self.state_changed(ctx);
        // Failed for good: what waits for it will not start. Completed for good: what waits for
        // it to start or be ready holds now, or never will.
        match &decision {
            Decision::Stay if success => self.run_finished(name, ctx),
            Decision::GiveUp(why) => self.dependency_failed(name, why, ctx),
            Decision::Stay
                if !success && self.entries.get(name).is_some_and(|e| e.cron.is_none()) =>
            {
                self.dependency_failed(name, last, ctx)
            }
            _ => {}
        }
        match decision {
            Decision::GiveUp(why) => tracing::warn!(process = name, "{why}"),
            Decision::RestartAfter(delay) if delay.is_zero() => {
                self.spawn_start(name.to_string(), ctx);
            }
            Decision::Stay | Decision::RestartAfter(_) => {}
        }
    }

    /// Arms the delayed restart of `name` (definition `id`).
    fn restart_timer(
        name: &str,
        id: u64,
        delay: std::time::Duration,
        ctx: &mut Context<Self>,
    ) -> Timer {
        let at = chrono::Local::now() + delay;
        let owned = name.to_string();
        let handle = ctx.run_later(delay, move |act, ctx| {
            let Some(entry) = act.entries.get_mut(&owned) else {
                return;
            };
            if entry.id != id {
                return;
            }
            entry.on_restart_due();
            act.spawn_start(owned, ctx);
        });
        Timer { handle, at }
    }
}
