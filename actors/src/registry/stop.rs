//! StopProcess, KillProcess and DeleteProcess: a user's end of a process, never followed by a restart.

use actix::prelude::*;
use pm_protocol::{ExitInfo, PmError, ProcessInfo};

use super::applied::Apply;
use super::messages::{DeleteProcess, KillProcess, StopProcess};
use super::Registry;
use crate::process::strays::{StrayScanner, Sweep};
use crate::process::ProcessHandle;

impl Registry {
    /// Holds the process (no restart, no cron fire) and answers its handle and definition id.
    fn hold(
        &mut self,
        name: &str,
        ctx: &mut Context<Self>,
    ) -> Result<(ProcessHandle, u64), PmError> {
        let entry = self.entry_mut(name)?;
        entry.on_user_stop(ctx);
        let found = (entry.process.clone(), entry.id);
        self.state_changed(ctx);
        Ok(found)
    }
}

/// `NotRunning` from a stop of a process that was not alive is not an error for the user's stop.
pub(super) fn stopped(res: Result<ExitInfo, PmError>) -> Result<(), PmError> {
    match res {
        Ok(_) | Err(PmError::NotRunning(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

impl Apply<StopProcess> for Registry {
    fn apply(
        &mut self,
        msg: StopProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let (process, _) = match self.hold(&msg.name, ctx) {
            Ok(found) => found,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let name = msg.name;
        Box::pin(
            process
                .stop_and_wait(None)
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
        _ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ExitInfo, PmError>> {
        let process = match self.entry(&msg.name) {
            Ok(entry) => entry.process.clone(),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        // A kill of a process that is not alive answers an error and leaves it as it was (its
        // schedule, its pending restart, its last error): only a kill that kills holds it.
        let name = msg.name;
        Box::pin(
            process
                .is_alive()
                .into_actor(self)
                .then(move |alive, act, ctx| {
                    let next: ResponseActFuture<Self, Result<ExitInfo, PmError>> = match alive {
                        Ok(true) => {
                            let held = act.hold(&name, ctx);
                            let kill = async move {
                                let (process, _) = held?;
                                process.kill().await
                            };
                            Box::pin(kill.into_actor(act))
                        }
                        Ok(false) => Box::pin(fut::ready(Err(PmError::NotRunning(name)))),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    };
                    next
                }),
        )
    }
}

impl Apply<DeleteProcess> for Registry {
    fn apply(
        &mut self,
        msg: DeleteProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), PmError>> {
        let (process, id) = match self.hold(&msg.name, ctx) {
            Ok(found) => found,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let name = msg.name;
        let stop = process.stop_and_wait(None);
        // What an earlier run left outside its group (one that exited by itself) goes too; detached
        // processes' descendants are theirs to keep, as at the shutdown.
        // Asked only once the stop is over: the stop's strays get its grace first.
        let scanner = self
            .entries
            .get(&name)
            .filter(|e| !e.spec.detach && !e.attached)
            .and_then(|_| StrayScanner::shared(&self.config.paths.state_file));
        let swept = name.clone();
        let ended = async move {
            let res = stop.await;
            if let Some(scanner) = scanner {
                scanner.sweep(&swept, Sweep::Kill).await;
            }
            res
        };
        Box::pin(ended.into_actor(self).map(move |res, act, ctx| {
            stopped(res)?;
            // Forget this definition only: the name may have been deleted and defined again meanwhile.
            if act.entries.get(&name).is_some_and(|e| e.id == id) {
                act.remove_entry(&name);
                act.state_changed(ctx);
                // Unless an apply defines it again at once: its dependents wait on.
                if !act.replacing.contains(&name) {
                    act.dependency_failed(&name, "deleted", ctx);
                }
            }
            Ok(())
        }))
    }
}
