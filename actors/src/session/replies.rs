//! A connection's replies in order: each waits for the ones before it and, when its script changed
//! something, for the state file to hold the change, then goes to the [`Outbox`].
//!
//! Scripts are applied one at a time, but their replies wait for the disk together: every script
//! applied while a write is in flight is covered by the next one (group commit), so a client that
//! pipelines many starts pays a few fsyncs, not one each.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use super::outbox::{Outbox, OutboxError};

type Wait = Pin<Box<dyn Future<Output = ()>>>;

struct Reply {
    bytes: Vec<u8>,
    /// Resolves once what the reply reports is on disk.
    durable: Option<Wait>,
}

/// The sending side; cheap to clone. Dropping every clone lets the queued replies go out, then the
/// outbox closes.
#[derive(Clone)]
pub(super) struct Replies {
    tx: mpsc::UnboundedSender<Reply>,
    outbox: Outbox,
}

impl Replies {
    /// Spawns the task that hands replies to `outbox` in order; `on_failure` runs when the outbox
    /// refuses one (the client does not read, or is gone), after the outbox is abandoned.
    pub(super) fn spawn(outbox: Outbox, on_failure: impl FnOnce(OutboxError) + 'static) -> Replies {
        let (tx, rx) = mpsc::unbounded_channel();
        actix_rt::spawn(deliver(rx, outbox.clone(), on_failure));
        Replies { tx, outbox }
    }

    /// Queues bytes behind the replies before them.
    pub(super) fn push(&self, bytes: impl Into<Vec<u8>>) -> Result<(), OutboxError> {
        self.queue(bytes.into(), None)
    }

    /// Queues bytes that also wait for `durable` (a registry's [`Durable`](crate::registry::Durable)).
    pub(super) fn push_when(
        &self,
        bytes: impl Into<Vec<u8>>,
        durable: impl Future<Output = ()> + 'static,
    ) -> Result<(), OutboxError> {
        self.queue(bytes.into(), Some(Box::pin(durable)))
    }

    fn queue(&self, bytes: Vec<u8>, durable: Option<Wait>) -> Result<(), OutboxError> {
        self.tx
            .send(Reply { bytes, durable })
            .map_err(|_| OutboxError::Closed)
    }

    /// Drops what is queued and closes the connection now.
    pub(super) fn abandon(&self) {
        self.outbox.abandon();
    }
}

async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Reply>,
    outbox: Outbox,
    on_failure: impl FnOnce(OutboxError),
) {
    while let Some(reply) = rx.recv().await {
        if let Some(durable) = reply.durable {
            durable.await;
        }
        if let Err(e) = outbox.push(reply.bytes) {
            outbox.abandon();
            on_failure(e);
            return;
        }
    }
}
