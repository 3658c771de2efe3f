//! Cron fires: each fire starts the process, or is skipped and counted while the last run goes on.
//!
//! Timers run on the monotonic clock, which a suspend or a clock change does not move like the wall
//! clock. So a timer never sleeps more than [`MAX_SLEEP`]: on waking it compares the wall clock with
//! the fire time and either sleeps again or fires once, then computes the next fire from now. A late
//! wake-up fires once (never once per missed fire), and a clock set back waits for the wall time.

use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::PmError;

use super::{Registry, Timer};

/// The longest a cron timer sleeps before checking the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Registry {
    /// Arms the next fire of `name`'s schedule, from the wall clock now.
    pub(crate) fn arm_cron(&mut self, name: &str, ctx: &mut Context<Self>) {
        let now = Local::now();
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
        if let Some(old) = entry.cron_timer.take() {
            ctx.cancel_future(old.handle);
        }
        let wait = (at - Local::now())
            .to_std()
            .unwrap_or_default()
            .min(MAX_SLEEP);
        let (id, owned) = (entry.id, name.to_string());
        let handle = ctx.run_later(wait, move |act, ctx| act.cron_wake(owned, id, at, ctx));
        entry.cron_timer = Some(Timer { handle, at });
    }

    fn cron_wake(&mut self, name: String, id: u64, at: DateTime<Local>, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(&name) else {
            return;
        };
        if entry.id != id || entry.held {
            return;
        }
        entry.cron_timer = None;
        if Local::now() < at {
            return self.arm_cron_at(&name, at, ctx);
        }
        self.arm_cron(&name, ctx);
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
