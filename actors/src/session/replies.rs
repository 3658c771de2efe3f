//! A connection's replies in order: each waits for the ones before it and, when its script changed
//! something, for the state file to hold the change, then goes to the [`Outbox`].
//!
//! Their replies wait for the disk together: every script applied while a write is in flight is
//! covered by the next one (group commit), so a client that pipelines many starts pays a few fsyncs,
//! not one each. One write can so free hundreds of replies at once: they wait for room in the outbox
//! (whose writer drops a client that takes no bytes for its write timeout), and the session stops
//! reading lines while [`Replies::backlog_bytes`] is at its limit, so a client that does not read
//! holds a bounded amount of replies in the daemon's memory. The bound is in bytes, not replies, so
//! that a client that writes a whole batch before it reads is served in full whenever the batch's
//! answers fit. A line that runs beside others (see `Session`) has its place in the queue kept by a
//! [`Replies::push_pending`] until its answers are known.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use tokio::sync::{mpsc, oneshot, Notify};

use super::outbox::{Outbox, OutboxError};

pub(super) type Wait = Pin<Box<dyn Future<Output = ()>>>;

/// Bytes for the client, and what they wait for.
pub(super) struct Reply {
    pub(super) bytes: Vec<u8>,
    /// Resolves once what the reply reports is on disk.
    pub(super) durable: Option<Wait>,
}

/// A place in the queue: a reply, or the replies of a line still running.
enum Entry {
    Now(Reply),
    Pending(oneshot::Receiver<Vec<Reply>>),
}

/// The sending side; cheap to clone. Dropping every clone lets the queued replies go out, then the
/// outbox closes.
#[derive(Clone)]
pub(super) struct Replies {
    tx: mpsc::UnboundedSender<Entry>,
    outbox: Outbox,
    backlog: Rc<Backlog>,
}

/// What an entry costs the backlog besides its bytes: its place in the queue and what it waits for,
/// so that a flood of empty replies is bounded too.
const ENTRY_BYTES: usize = 64;

/// Entries queued and not yet handed whole to the outbox.
#[derive(Default)]
struct Backlog {
    count: Cell<usize>,
    /// The bytes of those entries' replies (those known yet), plus [`ENTRY_BYTES`] each.
    bytes: Cell<usize>,
    /// Set when delivery has ended (the client is gone or stuck): nothing will drain any more.
    ended: Cell<bool>,
    changed: Notify,
}

impl Backlog {
    fn add(&self, bytes: usize) {
        self.count.set(self.count.get() + 1);
        self.grow(ENTRY_BYTES + bytes);
    }

    fn grow(&self, bytes: usize) {
        self.bytes.set(self.bytes.get() + bytes);
    }

    /// `bytes` of an entry's replies went to the outbox.
    fn shrink(&self, bytes: usize) {
        self.bytes.set(self.bytes.get().saturating_sub(bytes));
        self.changed.notify_waiters();
    }

    fn done(&self) {
        self.count.set(self.count.get().saturating_sub(1));
        self.shrink(ENTRY_BYTES);
    }

    fn end(&self) {
        self.ended.set(true);
        self.changed.notify_waiters();
    }
}

impl Replies {
    /// Spawns the task that hands replies to `outbox` in order; `on_failure` runs when the outbox
    /// refuses one (its writer has ended: the client is gone, or took no bytes for the write
    /// timeout), after the outbox is abandoned.
    pub(super) fn spawn(outbox: Outbox, on_failure: impl FnOnce(OutboxError) + 'static) -> Replies {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Rc::new(Backlog::default());
        actix_rt::spawn(deliver(rx, outbox.clone(), backlog.clone(), on_failure));
        Replies {
            tx,
            outbox,
            backlog,
        }
    }

    /// Entries queued and not yet handed to the outbox: replies waiting for the disk, for the lines
    /// before them, or for room in the outbox.
    pub(super) fn backlog(&self) -> usize {
        self.backlog.count.get()
    }

    /// What the queued entries hold: their replies' bytes (of those known yet) and a little for each.
    pub(super) fn backlog_bytes(&self) -> usize {
        self.backlog.bytes.get()
    }

    /// Resolves once the entries waiting hold fewer than `limit` bytes ([`Replies::backlog_bytes`]),
    /// or delivery has ended.
    pub(super) fn below_bytes(&self, limit: usize) -> impl Future<Output = ()> + 'static {
        let backlog = self.backlog.clone();
        async move {
            loop {
                // Made before the check, so that a change in between still wakes it.
                let changed = backlog.changed.notified();
                if backlog.ended.get() || backlog.bytes.get() < limit {
                    return;
                }
                changed.await;
            }
        }
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

    /// Keeps a place for replies not known yet, filled with [`PendingReplies::fill`] (with none if
    /// it is dropped unfilled).
    pub(super) fn push_pending(&self) -> Result<PendingReplies, OutboxError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Entry::Pending(rx))
            .map_err(|_| OutboxError::Closed)?;
        self.backlog.add(0);
        Ok(PendingReplies {
            tx,
            backlog: self.backlog.clone(),
        })
    }

    fn queue(&self, bytes: Vec<u8>, durable: Option<Wait>) -> Result<(), OutboxError> {
        let len = bytes.len();
        self.tx
            .send(Entry::Now(Reply { bytes, durable }))
            .map_err(|_| OutboxError::Closed)?;
        self.backlog.add(len);
        Ok(())
    }

    /// The client sent a line (see [`Outbox::heard_from_client`]).
    pub(super) fn heard_from_client(&self) {
        self.outbox.heard_from_client();
    }

    /// Drops what is queued and closes the connection now.
    pub(super) fn abandon(&self) {
        self.outbox.abandon();
    }
}

/// A place kept in the queue ([`Replies::push_pending`]) for the replies of a line still running.
pub(super) struct PendingReplies {
    tx: oneshot::Sender<Vec<Reply>>,
    backlog: Rc<Backlog>,
}

impl PendingReplies {
    /// Puts the line's replies in their place; their bytes count in the backlog from now on.
    pub(super) fn fill(self, replies: Vec<Reply>) {
        let bytes = replies.iter().map(|r| r.bytes.len()).sum();
        if self.tx.send(replies).is_ok() {
            self.backlog.grow(bytes);
        }
    }
}

async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Entry>,
    outbox: Outbox,
    backlog: Rc<Backlog>,
    on_failure: impl FnOnce(OutboxError),
) {
    while let Some(entry) = rx.recv().await {
        let replies = match entry {
            Entry::Now(reply) => vec![reply],
            Entry::Pending(rx) => rx.await.unwrap_or_default(),
        };
        for reply in replies {
            if let Some(durable) = reply.durable {
                durable.await;
            }
            let len = reply.bytes.len();
            // Waits for room: the outbox's writer ends, and this fails, when the client takes no bytes
            // for the write timeout.
            if let Err(e) = outbox.send(reply.bytes).await {
                outbox.abandon();
                backlog.end();
                on_failure(e);
                return;
            }
            backlog.shrink(len);
        }
        backlog.done();
    }
    backlog.end();
}
