//! StopProcess, KillProcess and DeleteProcess: a user's end of a process, never followed by a restart.

use actix::prelude::*;
use pm_protocol::{ExitInfo, PmError, ProcessInfo};

use super::applied::Apply;
use super::messages::{DeleteProcess, KillProcess, StopProcess};
use super::{Entry, Registry};
use crate::process::{Kill, ProcessActor, StopAndWait};

impl Registry {
    /// Holds the process (no restart, no cron fire) and answers its actor's address and definition id.
    fn hold(
        &mut self,
        name: &str,
        ctx: &mut Context<Self>,
    ) -> Result<(Addr<ProcessActor>, u64), PmError> {
        let entry = self.entry_mut(name)?;
        Registry::hold_entry(entry, ctx);
        let found = (entry.addr.clone(), entry.id);
        self.state_changed(ctx);
        Ok(found)
    }

    /// A user's end of a process: not wanted (as the state file will say once the caller records the
    /// change), no automatic restart, no cron fire, until a start or restart.
    pub(super) fn hold_entry(entry: &mut Entry, ctx: &mut Context<Self>) {
        entry.held = true;
        entry.wanted = false;
        entry.gave_up = None;
        Registry::cancel_timers(entry, ctx);
    }
}

/// `NotRunning` from a stop of a process that was not alive is not an error for the user's stop.
pub(super) fn stopped(res: Result<Result<ExitInfo, PmError>, MailboxError>) -> Result<(), PmError> {
    match res {
        Ok(Ok(_)) | Ok(Err(PmError::NotRunning(_))) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(PmError::Internal(e.to_string())),
    }
}

impl Apply<StopProcess> for Registry {
    fn apply(
        &mut self,
        msg: StopProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let (addr, _) = match self.hold(&msg.name, ctx) {
            Ok(found) => found,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let name = msg.name;
        Box::pin(
            addr.send(StopAndWait::default())
                .into_actor(self)
                .then(move |res, act, _| {
                    let next: ResponseActFuture<Self, Result<ProcessInfo, PmError>> =
                        match stopped(res) {
                            Ok(()) => act.info_of(name),
                            Err(e) => Box::pin(fut::ready(Err(e))),
                        };
                    next
                }),
        )
    }
}

impl Apply<KillProcess> for Registry {
    fn apply(
        &mut self,
        msg: KillProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ExitInfo, PmError>> {
        let held = self.hold(&msg.name, ctx);
        let kill = async move {
            let (addr, _) = held?;
            addr.send(Kill)
                .await
                .map_err(|e| PmError::Internal(e.to_string()))?
        };
        Box::pin(kill.into_actor(self))
    }
}

impl Apply<DeleteProcess> for Registry {
    fn apply(
        &mut self,
        msg: DeleteProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), PmError>> {
        let (addr, id) = match self.hold(&msg.name, ctx) {
            Ok(found) => found,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let name = msg.name;
        Box::pin(
            addr.send(StopAndWait::default())
                .into_actor(self)
                .map(move |res, act, ctx| {
                    stopped(res)?;
                    // Forget this definition only: the name may have been deleted and defined again meanwhile.
                    if act.entries.get(&name).is_some_and(|e| e.id == id) {
                        act.entries.remove(&name);
                        act.state_changed(ctx);
                    }
                    Ok(())
                }),
        )
    }
}
