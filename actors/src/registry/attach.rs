//! AttachProcess: adopt a process the daemon did not start (never restarted, left running at shutdown).

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo, ProcessSpec};

use super::messages::AttachProcess;
use pm_protocol::state::SavedRun;

use super::applied::Apply;
use super::Registry;
use crate::process::ProcessActor;

impl Apply<AttachProcess> for Registry {
    fn apply(
        &mut self,
        msg: AttachProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let adopted = self
            .check_new_name(&msg.name)
            .and_then(|()| ProcessActor::attach(msg.pid, msg.name.clone(), self.process_options()));
        let actor = match adopted {
            Ok(actor) => actor,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        // The registry's record of an adopted process: no restarts, and not ours to stop at shutdown.
        let mut spec = ProcessSpec::exec(msg.name.clone(), String::new(), Vec::<String>::new());
        spec.detach = true;
        self.register(msg.name.clone(), spec, actor, true);
        if let Some(entry) = self.entries.get_mut(&msg.name) {
            entry.on_start();
            entry.run = crate::process::procfs::read_stat(msg.pid)
                .ok()
                .map(|s| SavedRun {
                    pid: msg.pid,
                    start_ticks: s.start_time,
                });
        }
        self.state_changed(ctx);
        self.info_of(msg.name)
    }
}
