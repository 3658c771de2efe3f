//! GetStatus and ListProcesses: the actors' records with the registry's restart and schedule fields.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::messages::{GetStatus, ListJson, ListProcesses};
use super::{Entry, Registry};

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
        Ok(self.entries.values().map(Entry::status_now).collect())
    }
}

impl Handler<ListJson> for Registry {
    type Result = Result<String, PmError>;

    fn handle(&mut self, _msg: ListJson, _ctx: &mut Context<Self>) -> Self::Result {
        let count = self.entries.len();
        Ok(pm_protocol::response::list_json_streamed(
            &LiveRecords(self),
            count,
        ))
    }
}

/// Every entry's record, composed, as a JSON array: each is copied into one scratch record in turn
/// and written from there, so a list of thousands allocates no record of its own.
struct LiveRecords<'a>(&'a Registry);

impl serde::Serialize for LiveRecords<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.entries.len()))?;
        let mut scratch = ProcessInfo::initial(String::new(), "");
        for e in self.0.entries.values() {
            e.status_into(&mut scratch);
            seq.serialize_element(&scratch)?;
        }
        seq.end()
    }
}
