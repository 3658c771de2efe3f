//! RestartProcess: stop if alive, start again; lifts a user's hold and a give-up.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::applied::Apply;
use super::messages::RestartProcess;
use super::Registry;

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
        entry.on_user_restart(ctx);
        let (process, scheduled) = (
            entry.process.clone(),
            entry.cron.is_some() && entry.next_fire.is_none(),
        );
        if scheduled {
            self.arm_cron(&msg.name, ctx);
        }
        self.state_changed(ctx);
        let name = msg.name;
        Box::pin(
            process
                .is_alive()
                .into_actor(self)
                .then(move |alive, act, _| {
                    let next: ResponseActFuture<Self, Result<ProcessInfo, PmError>> =
                        if alive.unwrap_or(false) {
                            Box::pin(process.restart_info().into_actor(act).map(
                                move |res, act, _| {
                                    if let (Ok(_), Some(entry)) = (&res, act.entries.get_mut(&name))
                                    {
                                        entry.started_at = Some(std::time::Instant::now());
                                    }
                                    res.map(|info| act.composed(&name, info))
                                },
                            ))
                        } else {
                            act.start_run(name)
                        };
                    next
                }),
        )
    }
}
