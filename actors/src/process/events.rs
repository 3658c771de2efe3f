//! Delivering events to subscribers without ever blocking: a full subscriber misses the event, a dead one
//! is dropped.

use pm_protocol::ProcessEvent;
use tokio::sync::mpsc::error::TrySendError;

use super::messages::{EventSink, ProcessEventMsg};

/// The subscribers of one process.
#[derive(Default)]
pub struct Subscribers {
    sinks: Vec<EventSink>,
}

impl Subscribers {
    /// Adds a subscriber; it gets every later event.
    pub fn add(&mut self, sink: EventSink) {
        self.sinks.push(sink);
    }

    /// Whether nobody listens (events are then not even built).
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Sends `event` to every live subscriber, dropping the dead ones.
    pub fn send(&mut self, event: &ProcessEvent) {
        self.sinks.retain(|sink| match sink {
            // An actor's mailbox is unbounded for do_send: exit events are never lost to a busy
            // registry, and sending never waits.
            EventSink::Recipient(r) => {
                if r.connected() {
                    r.do_send(ProcessEventMsg(event.clone()));
                    true
                } else {
                    false
                }
            }
            EventSink::Channel(tx) => match tx.try_send(event.clone()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            },
            EventSink::Unbounded(tx) => tx.send(event.clone()).is_ok(),
        });
    }
}
