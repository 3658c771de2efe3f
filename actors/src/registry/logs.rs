//! GetLogs and GetLogPage: the captured lines of a process, asked of its actor.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use pm_protocol::logs::LogPage;
use pm_protocol::{LogLine, PmError};

use super::messages::{GetLogPage, GetLogs};
use super::Registry;
use crate::process::{self, ProcessActor};

impl Handler<GetLogs> for Registry {
    type Result = ResponseFuture<Result<Vec<LogLine>, PmError>>;

    fn handle(&mut self, msg: GetLogs, _ctx: &mut Context<Self>) -> Self::Result {
        self.ask_process(&msg.name, process::GetLogs { lines: msg.lines })
    }
}

impl Handler<GetLogPage> for Registry {
    type Result = ResponseFuture<Result<LogPage, PmError>>;

    fn handle(&mut self, msg: GetLogPage, _ctx: &mut Context<Self>) -> Self::Result {
        let ask = process::GetLogPage {
            after: msg.after,
            lines: msg.lines,
        };
        self.ask_process(&msg.name, ask)
    }
}

impl Registry {
    /// Sends `msg` to the actor of process `name`; an unknown name is an error.
    fn ask_process<M>(&self, name: &str, msg: M) -> ResponseFuture<Result<M::Result, PmError>>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ProcessActor: Handler<M>,
        <ProcessActor as Actor>::Context: ToEnvelope<ProcessActor, M>,
    {
        let addr = self.entry(name).map(|e| e.addr.clone());
        Box::pin(async move {
            addr?
                .send(msg)
                .await
                .map_err(|e| PmError::Internal(e.to_string()))
        })
    }
}
