//! GetStatus and ListProcesses: the actors' records with the registry's restart and schedule fields.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::messages::{GetStatus, ListProcesses};
use super::Registry;

impl Handler<GetStatus> for Registry {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;

    fn handle(&mut self, msg: GetStatus, _ctx: &mut Context<Self>) -> Self::Result {
        self.info_of(msg.name)
    }
}

impl Handler<ListProcesses> for Registry {
    type Result = Result<Vec<ProcessInfo>, PmError>;

    fn handle(&mut self, _msg: ListProcesses, _ctx: &mut Context<Self>) -> Self::Result {
        // Each actor's record is read where it lies (no message per process: see
        // `crate::process::record`); the map is sorted by name.
        Ok(self
            .entries
            .values()
            .map(|e| {
                let mut info = e.record.now();
                e.compose_in_place(&mut info);
                info
            })
            .collect())
    }
}
