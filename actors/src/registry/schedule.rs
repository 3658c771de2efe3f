//! Cron fires: each fire starts the process (once its dependencies hold), or is skipped and counted
//! while the last run goes on.
//!
//! Timers run on the monotonic clock, which a suspend or a clock change does not move like the wall
//! clock. So a timer never sleeps more than the config's `cron_recheck` (30 s): on waking it compares
//! the wall clock with the fire time and either sleeps again or fires once, then computes the next
//! fire from now. A late wake-up fires once (never once per missed fire), and a clock set back waits
//! for the wall time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::PmError;

use super::lifecycle::Timer;
use super::Registry;

/// The wall clock that cron schedules follow: the system's, or (for tests of clock changes) the
/// system's moved by an offset that can be changed while the registry runs.
#[derive(Debug, Clone, Default)]
pub struct CronClock {
    shift_ms: Option<Arc<AtomicI64>>,
}

impl CronClock {
    /// A clock that starts equal to the system's and moves by [`CronClock::shift`].
    pub fn shifted() -> CronClock {
        CronClock {
            shift_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Sets this clock to the system's plus `by` (negative: set back). No effect on the system clock.
    pub fn shift(&self, by: chrono::Duration) {
        if let Some(s) = &self.shift_ms {
            s.store(by.num_milliseconds(), Ordering::Relaxed);
        }
    }

    /// The time now on this clock.
    pub fn now(&self) -> DateTime<Local> {
        let now = Local::now();
        match &self.shift_ms {
            Some(s) => now + chrono::Duration::milliseconds(s.load(Ordering::Relaxed)),
            None => now,
        }
    }
}

impl Registry {
    /// Arms the next fire of `name`'s schedule, from the wall clock now.
    pub(crate) fn arm_cron(&mut self, name: &str, ctx: &mut Context<Self>) {
        let now = self.config.cron_clock.now();
        let next = self
            .entries
            .get(name)
            .and_then(|e| e.cron.as_ref())
            .and_then(|c| c.next_after(&now));
        match next {
            Some(at) => self.arm_cron_at(name, at, ctx),
            None => tracing::warn!(process = name, "cron schedule will not fire again"),
        }
    }

    fn arm_cron_at(&mut self, name: &str, at: DateTime<Local>, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if let Some(old) = entry.next_fire.take() {
            ctx.cancel_future(old.handle);
        }
        let wait = (at - self.config.cron_clock.now())
            .to_std()
            .unwrap_or_default()
            .min(self.config.cron_recheck);
        let (id, owned) = (entry.id, name.to_string());
        let handle = ctx.run_later(wait, move |act, ctx| act.cron_wake(owned, id, at, ctx));
        entry.next_fire = Some(Timer { handle, at });
    }

    fn cron_wake(&mut self, name: String, id: u64, at: DateTime<Local>, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(&name) else {
            return;
        };
        if entry.id != id || entry.lifecycle.is_held() {
            return;
        }
        entry.next_fire = None;
        if self.config.cron_clock.now() < at {
            return self.arm_cron_at(&name, at, ctx);
        }
        self.arm_cron(&name, ctx);
        // A fire is a start: it waits for its dependencies as one does.
        if self.cron_fire_waits(&name, ctx) {
            return;
        }
        let fire = self.start_run(name.clone()).map(move |res, act, _| {
            if let Err(PmError::AlreadyRunning(_)) = res {
                if let Some(entry) = act.entries.get_mut(&name) {
                    entry.skipped_runs += 1;
                    tracing::info!(process = %name, skipped = entry.skipped_runs, "cron fire skipped: still running");
                }
            }
        });
        ctx.spawn(fire);
    }
}
