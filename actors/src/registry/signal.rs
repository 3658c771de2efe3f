//! SignalProcess: any signal to the process or its group.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::SignalProcess;
use super::Registry;
use crate::process::Signal;

impl Handler<SignalProcess> for Registry {
    type Result = ResponseFuture<Result<(), PmError>>;

    fn handle(&mut self, msg: SignalProcess, _ctx: &mut Context<Self>) -> Self::Result {
        let addr = self.entry(&msg.name).map(|e| e.addr.clone());
        Box::pin(async move {
            let signal = Signal {
                signal: msg.signal,
                group: msg.group,
            };
            addr?
                .send(signal)
                .await
                .map_err(|e| PmError::Internal(e.to_string()))?
        })
    }
}
