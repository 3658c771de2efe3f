//! The lifecycle of a registry entry: what the registry intends for a process, and every transition.
//!
//! Whether a run is starting, running or stopping is its actor's status. What only the registry
//! knows is the rest: whether the process is to run again (after an exit, a cron fire, a daemon
//! restart), and why it does not run when it does not. That is one [`Lifecycle`] per entry, changed
//! only by the `on_*` methods of this module, which the handlers call. A new reason for a process not
//! to run (waiting for a dependency, unhealthy) is one more variant here.
//!
//! A cron schedule's next fire is kept beside the lifecycle, not in it: a process waiting out a
//! restart backoff keeps its schedule armed, and each fire is a start like any other.

use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::{ProcessInfo, Status};

use super::backoff::Decision;
use super::{Entry, Registry};

/// A pending timer and the wall-clock time it is for (shown by status).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    pub(crate) handle: SpawnHandle,
    pub(crate) at: DateTime<Local>,
}

/// What the registry intends for one process. See the [module documentation](self).
#[derive(Debug)]
pub(crate) enum Lifecycle {
    /// Defined and not started yet.
    Defined,
    /// Started (by a user, an automatic restart or a cron fire) or adopted: to run, or with a schedule
    /// to fire, again after a daemon restart. Its actor says whether it is alive now.
    Active,
    /// Started, but its dependencies (`after:`) do not hold yet: it starts when they do, from their
    /// events (see `dependencies.rs`).
    Waiting {
        /// The dependencies that do not hold, as status shows them (`db (ready)`).
        waiting_for: Vec<String>,
    },
    /// Ended by itself; its restart policy starts it again when the timer fires.
    RestartPending {
        /// The restart, and when it is due.
        timer: Timer,
    },
    /// Ended by itself, and its policy does not start it again (a process with a schedule stays
    /// [`Lifecycle::Active`] between its fires instead).
    Ended,
    /// Its policy gave up restarting it: `why` is shown as its error until a user's restart or stop.
    /// A schedule still fires (and the note stays).
    GaveUp {
        /// `gave up after N restarts, last exit: ...`.
        why: String,
    },
    /// A user's stop, kill or delete (or not wanted when the daemon started): no automatic restart
    /// and no cron fire until a user's restart.
    Held,
    /// The daemon is shutting down: nothing starts it again. The state file keeps what it was.
    ShuttingDown {
        /// The lifecycle it had, with its restart timer cancelled.
        before: Box<Lifecycle>,
    },
}

impl Lifecycle {
    /// The lifecycle the state file records: whether the process was wanted, and the give-up note.
    pub(crate) fn restored(wanted: bool, gave_up: Option<String>) -> Lifecycle {
        match (gave_up, wanted) {
            (Some(why), _) => Lifecycle::GaveUp { why },
            (None, true) => Lifecycle::Active,
            (None, false) => Lifecycle::Held,
        }
    }

    /// Whether the process should run (or be scheduled) after a daemon restart; `scheduled`: it has
    /// a cron schedule, which stays wanted between its runs.
    pub(crate) fn wanted(&self, scheduled: bool) -> bool {
        match self {
            Lifecycle::Active | Lifecycle::RestartPending { .. } | Lifecycle::Waiting { .. } => {
                true
            }
            Lifecycle::GaveUp { .. } => scheduled,
            Lifecycle::Defined | Lifecycle::Ended | Lifecycle::Held => false,
            Lifecycle::ShuttingDown { before } => before.wanted(scheduled),
        }
    }

    /// Why the restart policy gave up, while it has.
    pub(crate) fn gave_up(&self) -> Option<&str> {
        match self {
            Lifecycle::GaveUp { why } => Some(why),
            Lifecycle::ShuttingDown { before } => before.gave_up(),
            _ => None,
        }
    }

    /// Whether nothing but a user's restart may start it (no automatic restart, no cron fire).
    pub(crate) fn is_held(&self) -> bool {
        matches!(self, Lifecycle::Held | Lifecycle::ShuttingDown { .. })
    }

    /// What a waiting start still waits for, while it waits.
    pub(crate) fn waiting_for(&self) -> Option<&[String]> {
        match self {
            Lifecycle::Waiting { waiting_for } => Some(waiting_for),
            _ => None,
        }
    }

    /// The pending automatic restart, if one is.
    pub(crate) fn restart_pending(&self) -> Option<&Timer> {
        match self {
            Lifecycle::RestartPending { timer } => Some(timer),
            _ => None,
        }
    }

    /// Takes the pending restart timer out (to cancel it); the process is then [`Lifecycle::Active`].
    fn take_restart_timer(&mut self) -> Option<Timer> {
        match std::mem::replace(self, Lifecycle::Active) {
            Lifecycle::RestartPending { timer } => Some(timer),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Entry {
    /// Whether the process should run (or be scheduled) after a daemon restart.
    pub(crate) fn wanted(&self) -> bool {
        self.lifecycle.wanted(self.cron.is_some())
    }

    /// A run is being started (by a user, a restart, a cron fire, the daemon's own start, or its
    /// dependencies now holding).
    pub(crate) fn on_start(&mut self) {
        if matches!(
            self.lifecycle,
            Lifecycle::Defined | Lifecycle::Ended | Lifecycle::Waiting { .. }
        ) {
            self.lifecycle = Lifecycle::Active;
        }
    }

    /// A start waits for the dependencies `waiting_for` (or still does, for fewer of them).
    pub(crate) fn on_wait(&mut self, waiting_for: Vec<String>) {
        self.lifecycle = Lifecycle::Waiting { waiting_for };
    }

    /// A waiting start failed for good: its dependency `why` will not hold.
    pub(crate) fn on_dependency_failed(&mut self, why: String) {
        self.lifecycle = Lifecycle::GaveUp { why };
    }

    /// A run ended by itself and the restart policy decided `decision`; `restart_timer` is the timer
    /// armed for a delayed restart.
    pub(crate) fn on_exit(&mut self, decision: &Decision, restart_timer: Option<Timer>) {
        self.lifecycle = match (decision, restart_timer) {
            (Decision::GiveUp(why), _) => Lifecycle::GaveUp { why: why.clone() },
            (Decision::RestartAfter(_), Some(timer)) => Lifecycle::RestartPending { timer },
            (Decision::RestartAfter(_), None) => Lifecycle::Active,
            // A give-up note stays until a user's restart or stop, whatever later fires end in; and
            // a restart already pending (a cron fire ran during the backoff) still comes.
            (Decision::Stay, _)
                if self.lifecycle.gave_up().is_some()
                    || self.lifecycle.restart_pending().is_some() =>
            {
                return
            }
            (Decision::Stay, _) if self.cron.is_some() => Lifecycle::Active,
            (Decision::Stay, _) => Lifecycle::Ended,
        };
    }

    /// The restart timer fired.
    pub(crate) fn on_restart_due(&mut self) {
        if self.lifecycle.restart_pending().is_some() {
            self.lifecycle = Lifecycle::Active;
        }
    }

    /// A user's stop, kill or delete: not wanted, no automatic restart, no cron fire, until a restart.
    pub(crate) fn on_user_stop(&mut self, ctx: &mut Context<Registry>) {
        self.cancel_timers(ctx);
        self.lifecycle = Lifecycle::Held;
    }

    /// A user's restart: lifts a hold and a give-up, and drops a pending automatic restart (the
    /// schedule stays armed).
    pub(crate) fn on_user_restart(&mut self, ctx: &mut Context<Registry>) {
        if let Some(timer) = self.lifecycle.take_restart_timer() {
            ctx.cancel_future(timer.handle);
        }
        self.lifecycle = Lifecycle::Active;
    }

    /// The daemon is shutting down: nothing starts the process again; what the state file records
    /// is unchanged.
    pub(crate) fn on_shutdown(&mut self, ctx: &mut Context<Registry>) {
        self.cancel_timers(ctx);
        if !matches!(self.lifecycle, Lifecycle::ShuttingDown { .. }) {
            let before = std::mem::replace(&mut self.lifecycle, Lifecycle::Held);
            self.lifecycle = Lifecycle::ShuttingDown {
                before: Box::new(before),
            };
        }
    }

    /// Cancels the pending restart and the next cron fire.
    fn cancel_timers(&mut self, ctx: &mut Context<Registry>) {
        let restart = self.lifecycle.take_restart_timer();
        for timer in [restart, self.next_fire.take()].into_iter().flatten() {
            ctx.cancel_future(timer.handle);
        }
    }

    /// What a user sees of a process that is not alive: the actor's status unless the registry knows
    /// better (a restart on its way, a give-up, a schedule, a user's hold).
    pub(crate) fn overlay_status(&self, info: &mut ProcessInfo) {
        if info.status.is_alive() {
            return;
        }
        if let Some(waiting_for) = self.lifecycle.waiting_for() {
            info.status = Status::Waiting;
            waiting_for.clone_into(&mut info.waiting_for);
        } else if self.lifecycle.restart_pending().is_some() {
            info.status = Status::Backoff;
        } else if let Some(why) = self.lifecycle.gave_up() {
            info.status = Status::Failed;
            why.clone_into(&mut info.error);
        } else if self.next_fire.is_some() {
            info.status = Status::Scheduled;
        } else if self.lifecycle.is_held()
            && matches!(
                info.status,
                Status::Failed | Status::Completed | Status::Initial
            )
        {
            // A user's stop while it waited (backoff, schedule, never run) still ends in `stopped`.
            info.status = Status::Stopped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_state_file_records_comes_back() {
        for (wanted, gave_up) in [
            (true, None),
            (false, None),
            (true, Some("why")),
            (false, Some("why")),
        ] {
            let lifecycle = Lifecycle::restored(wanted, gave_up.map(str::to_string));
            assert_eq!(lifecycle.gave_up(), gave_up);
            // A give-up is wanted exactly when a schedule keeps it (which is how it was written).
            if gave_up.is_none() {
                assert_eq!(lifecycle.wanted(false), wanted);
            } else {
                assert!(lifecycle.wanted(true) && !lifecycle.wanted(false));
            }
        }
        assert!(Lifecycle::restored(false, None).is_held());
    }

    #[test]
    fn shutting_down_keeps_what_is_recorded_and_holds() {
        for before in [
            Lifecycle::Active,
            Lifecycle::Ended,
            Lifecycle::GaveUp { why: "x".into() },
            Lifecycle::Held,
        ] {
            let (wanted, gave_up) = (before.wanted(false), before.gave_up().map(str::to_string));
            let down = Lifecycle::ShuttingDown {
                before: Box::new(before),
            };
            assert_eq!(down.wanted(false), wanted);
            assert_eq!(down.gave_up().map(str::to_string), gave_up);
            assert!(down.is_held());
        }
    }
}
