//! SubscribeEvents: a sink on some processes, or on every process present and future.

use actix::prelude::*;
use pm_protocol::PmError;

use super::messages::SubscribeEvents;
use super::Registry;
use crate::process::{EventSink, Subscribe};

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
                let addrs = names
                    .iter()
                    .map(|n| self.entry(n).map(|e| e.addr.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                for addr in addrs {
                    addr.do_send(Subscribe(msg.sink.clone()));
                }
            }
            None => {
                for entry in self.entries.values() {
                    entry.addr.do_send(Subscribe(msg.sink.clone()));
                }
                self.global_sinks.push(msg.sink);
            }
        }
        Ok(())
    }
}
