//! RestartProcess: stop if alive, start again; lifts a user's hold and a give-up.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::applied::Apply;
use super::messages::RestartProcess;
use super::Registry;
use crate::process::{IsAlive, Restart};

impl Apply<RestartProcess> for Registry {
    fn apply(
        &mut self,
        msg: RestartProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let entry = match self.entry_mut(&msg.name) {
            Ok(e) => e,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        entry.held = false;
        entry.wanted = true;
        entry.gave_up = None;
        if let Some(t) = entry.restart_timer.take() {
            ctx.cancel_future(t.handle);
        }
        let (addr, scheduled) = (
            entry.addr.clone(),
            entry.cron.is_some() && entry.cron_timer.is_none(),
        );
        if scheduled {
            self.arm_cron(&msg.name, ctx);
        }
        self.state_changed(ctx);
        let name = msg.name;
        Box::pin(
            addr.send(IsAlive)
                .into_actor(self)
                .then(move |alive, act, _| {
                    let next: ResponseActFuture<Self, Result<i32, PmError>> = if alive
                        .unwrap_or(false)
                    {
                        let restarted = name.clone();
                        Box::pin(addr.send(Restart).into_actor(act).map(move |res, act, _| {
                            let res = res.unwrap_or_else(|e| Err(PmError::Internal(e.to_string())));
                            if let (Ok(_), Some(entry)) = (&res, act.entries.get_mut(&restarted)) {
                                entry.started_at = Some(std::time::Instant::now());
                            }
                            res
                        }))
                    } else {
                        act.start_run(name.clone())
                    };
                    next.then(move |res, act, _| {
                        let next: ResponseActFuture<Self, Result<ProcessInfo, PmError>> = match res
                        {
                            Ok(_) => act.info_of(name),
                            Err(e) => Box::pin(fut::ready(Err(e))),
                        };
                        next
                    })
                }),
        )
    }
}
