//! GetProcessLogs and GetProcessLogPage: the captured lines of a process, asked of its actor; a page
//! of a process that captures nothing is an error that says so.

use actix::prelude::*;
use pm_protocol::logs::LogPage;
use pm_protocol::{LogLine, PmError};

use super::messages::{GetProcessLogPage, GetProcessLogs};
use super::Registry;

impl Handler<GetProcessLogs> for Registry {
    type Result = ResponseFuture<Result<Vec<LogLine>, PmError>>;

    fn handle(&mut self, msg: GetProcessLogs, _ctx: &mut Context<Self>) -> Self::Result {
        let asked = self.entry(&msg.name).map(|e| e.process.logs(msg.lines));
        Box::pin(async move { asked?.await })
    }
}

impl Handler<GetProcessLogPage> for Registry {
    type Result = ResponseFuture<Result<LogPage, PmError>>;

    fn handle(&mut self, msg: GetProcessLogPage, _ctx: &mut Context<Self>) -> Self::Result {
        let asked = self.entry(&msg.name).and_then(|e| {
            if e.spec.log.enabled {
                Ok(e.process.log_page(msg.after, msg.lines))
            } else {
                Err(PmError::NoLogCapture(msg.name.clone()))
            }
        });
        Box::pin(async move { asked?.await })
    }
}
