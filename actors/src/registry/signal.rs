//! SignalProcess: any signal to the process or its group.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::SignalProcess;
use super::Registry;

impl Handler<SignalProcess> for Registry {
    type Result = ResponseFuture<Result<(), PmError>>;

    fn handle(&mut self, msg: SignalProcess, _ctx: &mut Context<Self>) -> Self::Result {
        let sent = self
            .entry(&msg.name)
            .map(|e| e.process.signal(&msg.signal, msg.group));
        Box::pin(async move { sent?.await })
    }
}
