//! A connection's outgoing bytes: a bounded queue drained by a writer task, so the session never waits
//! on a client that does not read.
//!
//! A client is dropped when it takes no bytes for the write timeout while it sends none either: one
//! that writes a long batch before it reads its answers is still busy talking, not stuck.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::AbortHandle;

/// Why bytes could not be queued: the client is not reading (queue full) or is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxError {
    /// The queue is full: the client does not read.
    Full,
    /// The connection is gone.
    Closed,
}

/// The sending side; cheap to clone. Dropping every clone lets the writer flush what is queued and close;
/// [`Outbox::abandon`] closes at once.
#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Vec<u8>>,
    writer: AbortHandle,
    /// When the client last sent something ([`Outbox::heard_from_client`]).
    heard: Rc<Cell<Instant>>,
}

impl Outbox {
    /// Spawns (on the current actix/tokio runtime) the task that writes queued chunks to `writer`.
    /// At most `capacity` chunks wait; a single write that takes longer than `write_timeout`, with
    /// nothing heard from the client in that time, ends it.
    pub fn spawn<W>(writer: W, capacity: usize, write_timeout: Duration) -> Outbox
    where
        W: AsyncWrite + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let heard = Rc::new(Cell::new(Instant::now()));
        let writer =
            actix_rt::spawn(drain(rx, writer, write_timeout, heard.clone())).abort_handle();
        Outbox { tx, writer, heard }
    }

    /// The client sent something: a write waiting for it to read starts its timeout again.
    pub fn heard_from_client(&self) {
        self.heard.set(Instant::now());
    }

    /// Drops what is queued and the writing half now (for a client that does not read: waiting for it
    /// to take the queue would keep its connection open).
    pub fn abandon(&self) {
        self.writer.abort();
    }

    /// Queues bytes without waiting.
    pub fn push(&self, bytes: impl Into<Vec<u8>>) -> Result<(), OutboxError> {
        self.tx.try_send(bytes.into()).map_err(|e| match e {
            TrySendError::Full(_) => OutboxError::Full,
            TrySendError::Closed(_) => OutboxError::Closed,
        })
    }

    /// Queues bytes, waiting for room; fails once the writer has ended (the client is gone, or took
    /// no bytes for the write timeout).
    pub async fn send(&self, bytes: impl Into<Vec<u8>>) -> Result<(), OutboxError> {
        self.tx
            .send(bytes.into())
            .await
            .map_err(|_| OutboxError::Closed)
    }

    /// Whether the writer task has ended (the client is gone or stuck).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

async fn drain<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut writer: W,
    limit: Duration,
    heard: Rc<Cell<Instant>>,
) {
    while let Some(chunk) = rx.recv().await {
        let began = Instant::now();
        let write = writer.write_all(&chunk);
        tokio::pin!(write);
        loop {
            let deadline = began.max(heard.get()) + limit;
            match tokio::time::timeout_at(deadline.into(), &mut write).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "client write failed");
                    return;
                }
                // The client sent something meanwhile: it is busy writing, not gone.
                Err(_) if began.max(heard.get()) + limit > Instant::now() => {}
                Err(_) => {
                    tracing::info!(
                        "client neither read nor wrote for {limit:?}: dropping the connection"
                    );
                    return;
                }
            }
        }
    }
    let _ = tokio::time::timeout(limit, writer.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[actix_rt::test]
    async fn abandon_closes_the_connection_at_once() {
        let (a, mut b) = tokio::io::duplex(16);
        let outbox = Outbox::spawn(a, 2, Duration::from_secs(3600));
        outbox.push(vec![b'x'; 64]).unwrap();
        outbox.abandon();
        let mut got = Vec::new();
        // Ends (EOF) although the writer would otherwise wait an hour for the reader.
        tokio::time::timeout(Duration::from_secs(10), b.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert!(
            got.len() < 64,
            "the queued chunk was dropped, not delivered"
        );
    }

    #[actix_rt::test]
    async fn bytes_arrive_in_order_and_the_writer_closes_after_the_last_sender() {
        let (a, mut b) = tokio::io::duplex(64);
        let outbox = Outbox::spawn(a, 4, Duration::from_secs(5));
        outbox.push("one\n").unwrap();
        outbox.push(b"two\n".to_vec()).unwrap();
        drop(outbox);
        let mut got = String::new();
        b.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "one\ntwo\n");
    }

    #[actix_rt::test]
    async fn a_reader_that_never_reads_fills_the_queue_then_is_dropped() {
        let (a, b) = tokio::io::duplex(16);
        let outbox = Outbox::spawn(a, 2, Duration::from_millis(200));
        let mut full = false;
        for _ in 0..100 {
            if outbox.push(vec![b'x'; 64]) == Err(OutboxError::Full) {
                full = true;
                break;
            }
        }
        assert!(full, "the queue is bounded");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // Without `abandon`, the write timeout ends the writer.
        while !outbox.is_closed() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer gives up on a stuck reader"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(b);
    }

    #[actix_rt::test]
    async fn a_client_that_keeps_writing_is_not_dropped_for_not_reading() {
        let (a, b) = tokio::io::duplex(16);
        let outbox = Outbox::spawn(a, 2, Duration::from_millis(200));
        outbox.push(vec![b'x'; 64]).unwrap();
        // Heard from for five write timeouts: the writer waits on.
        let talking_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < talking_until {
            outbox.heard_from_client();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!outbox.is_closed(), "dropped while the client was writing");
        }
        // Silent: dropped after the write timeout.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !outbox.is_closed() {
            assert!(Instant::now() < deadline, "a silent client was kept");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(b);
    }
}
