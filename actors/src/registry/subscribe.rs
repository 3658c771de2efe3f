//! SubscribeEvents: a sink on some processes, or on every process present and future.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::SubscribeEvents;
use super::Registry;
use crate::process::EventSink;

/// Whether a sink can still receive (a dropped receiver is pruned).
pub(crate) fn sink_open(sink: &EventSink) -> bool {
    match sink {
        EventSink::Recipient(r) => r.connected(),
        EventSink::Channel(tx) => !tx.is_closed(),
        EventSink::Unbounded(tx) => !tx.is_closed(),
    }
}

impl Handler<SubscribeEvents> for Registry {
    type Result = Result<(), PmError>;

    fn handle(&mut self, msg: SubscribeEvents, _ctx: &mut Context<Self>) -> Self::Result {
        match msg.names {
            Some(names) => {
                // All names are checked before any subscription is made.
                let processes = names
                    .iter()
                    .map(|n| self.entry(n).map(|e| &e.process))
                    .collect::<Result<Vec<_>, _>>()?;
                for process in processes {
                    process.add_subscriber(msg.sink.clone());
                }
            }
            None => {
                for entry in self.entries.values() {
                    entry.process.add_subscriber(msg.sink.clone());
                }
                self.global_sinks.push(msg.sink);
            }
        }
        Ok(())
    }
}
