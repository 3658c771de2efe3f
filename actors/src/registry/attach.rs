//! AttachProcess: adopt a process the daemon did not start (never restarted, left running at shutdown).

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo, ProcessSpec};

use super::messages::AttachProcess;
use super::Registry;
use crate::process::ProcessActor;

impl Handler<AttachProcess> for Registry {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;

    fn handle(&mut self, msg: AttachProcess, _ctx: &mut Context<Self>) -> Self::Result {
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
        self.register(msg.name.clone(), spec, actor.start(), true);
        self.info_of(msg.name)
    }
}
