//! GetLogs: the last captured lines of a process.

use actix::prelude::*;
use pm_protocol::{LogLine, PmError};

use super::messages::GetLogs;
use super::Registry;
use crate::process;

impl Handler<GetLogs> for Registry {
    type Result = ResponseFuture<Result<Vec<LogLine>, PmError>>;

    fn handle(&mut self, msg: GetLogs, _ctx: &mut Context<Self>) -> Self::Result {
        let addr = self.entry(&msg.name).map(|e| e.addr.clone());
        Box::pin(async move {
            let ask = process::GetLogs { lines: msg.lines };
            addr?
                .send(ask)
                .await
                .map_err(|e| PmError::Internal(e.to_string()))
        })
    }
}
