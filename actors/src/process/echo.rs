//! `--log-stdout`: every captured line also goes to the daemon's stdout, prefixed `name | ` as
//! `docker compose` prints its services' output, for `docker logs` / `kubectl logs`.
//!
//! Both streams get the same prefix (log collectors that parse compose's format read them alike); the
//! log file and `logs` still tell stdout from stderr. Lines go to one writer thread through a bounded
//! channel: a capture task never waits on the daemon's stdout (a slow terminal, a full pipe to a log
//! collector). When the channel is full the batch is dropped and counted, and the writer says how
//! many lines were lost (`processmanager | 12 lines dropped: stdout is too slow`) before its next
//! batch, so a gap is never silent.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

/// Batches the writer may be behind before lines are dropped (a batch is one read of one pipe).
pub const ECHO_BACKLOG: usize = 1024;

/// The writer of echoed lines. Cheap to clone; sending never blocks.
#[derive(Clone, Debug)]
pub struct LineEcho {
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl LineEcho {
    /// Echoes to the daemon's stdout.
    pub fn stdout() -> std::io::Result<LineEcho> {
        LineEcho::to_writer(std::io::stdout(), ECHO_BACKLOG)
    }

    /// Echoes to `out` on a thread of its own, at most `backlog` batches behind.
    pub fn to_writer(
        mut out: impl Write + Send + 'static,
        backlog: usize,
    ) -> std::io::Result<LineEcho> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(backlog);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        std::thread::Builder::new()
            .name("pm-log-stdout".into())
            .spawn(move || {
                while let Ok(batch) = rx.recv() {
                    let n = lost.swap(0, Ordering::Relaxed);
                    if n > 0 {
                        let s = if n == 1 { "" } else { "s" };
                        let note =
                            format!("processmanager | {n} line{s} dropped: stdout is too slow\n");
                        let _ = out.write_all(note.as_bytes());
                    }
                    // A closed stdout (EPIPE) loses the echo, never the daemon.
                    let _ = out.write_all(&batch);
                    for more in rx.try_iter() {
                        let _ = out.write_all(&more);
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(LineEcho { tx, dropped })
    }

    /// Echoes `lines` of process `name`; drops (and counts) them when the writer is too far behind.
    pub fn send(&self, name: &str, lines: &[String]) {
        let mut batch = Vec::with_capacity(lines.iter().map(|l| l.len() + name.len() + 4).sum());
        for l in lines {
            batch.extend_from_slice(name.as_bytes());
            batch.extend_from_slice(b" | ");
            batch.extend_from_slice(l.as_bytes());
            batch.push(b'\n');
        }
        match self.tx.try_send(batch) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped
                    .fetch_add(lines.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped and not yet reported by the writer.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn lines_get_the_name_and_a_full_writer_drops_and_says_so() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let echo = LineEcho::to_writer(ours, 1).unwrap();
        echo.send("web", &["GET / 200".into(), "GET /a 404".into()]);
        let mut reader = theirs;
        let mut got = vec![0u8; 64];
        let mut text = String::new();
        while !text.ends_with("404\n") {
            let n = reader.read(&mut got).unwrap();
            text.push_str(std::str::from_utf8(&got[..n]).unwrap());
        }
        assert_eq!(text, "web | GET / 200\nweb | GET /a 404\n");
        // Nobody reads now: the socket buffer fills, then the one-batch channel, then lines drop.
        let big = vec!["x".repeat(64 * 1024)];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while echo.dropped() == 0 {
            assert!(std::time::Instant::now() < deadline, "nothing was dropped");
            echo.send("big", &big);
        }
        drop(reader);
    }
}
