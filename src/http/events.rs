//! `GET /api/v1/events`: the watch stream as Server-Sent Events. One subscription to the registry
//! feeds a numbered ring (for `Last-Event-ID` resume) and a bounded broadcast to every reader; a
//! reader that falls further behind than the broadcast holds has its stream closed, so nothing is
//! ever buffered without end for a slow reader.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use pm_actors::process::EventSink;
use pm_actors::registry::SubscribeEvents;
use pm_actors::session::RegistryLink;
use pm_protocol::{PmError, ProcessEvent};
use tokio::sync::{broadcast, mpsc};

use super::{lock, HttpState};

/// Events a reader may be behind before its stream is closed.
pub const DEFAULT_BACKLOG: usize = 256;
/// Events kept for readers that resume with `Last-Event-ID`.
pub const RING_EVENTS: usize = 1024;
/// Events the registry may hold for the hub before it drops them (it never waits on a watcher).
const SUBSCRIPTION_QUEUE: usize = 1024;
/// How often an idle stream sends a comment, so that a reader that is gone is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One numbered event, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its number, increasing from 1; the `id:` field.
    pub id: u64,
    /// `status` or `state`; the `event:` field.
    pub kind: String,
    /// The watch event as one line of JSON (the object `watch format:json` answers).
    pub data: String,
}

impl SseEvent {
    /// The event in the wire format of Server-Sent Events.
    pub fn to_wire(&self) -> String {
        format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            self.id, self.kind, self.data
        )
    }
}

/// The numbered event stream: the ring of recent events and the broadcast to live readers.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Mutex<Ring>>,
    live: broadcast::Sender<Arc<SseEvent>>,
}

struct Ring {
    events: VecDeque<Arc<SseEvent>>,
    next_id: u64,
}

impl EventHub {
    /// A hub whose readers may be `backlog` events behind.
    pub fn new(backlog: usize) -> Self {
        let (live, _) = broadcast::channel(backlog.max(1));
        EventHub {
            inner: Arc::new(Mutex::new(Ring {
                events: VecDeque::with_capacity(RING_EVENTS),
                next_id: 1,
            })),
            live,
        }
    }

    /// Numbers `event`, keeps it in the ring and sends it to the live readers.
    pub fn publish(&self, event: &ProcessEvent) {
        let value = serde_json::to_value(event).unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("event")
            .to_string();
        let mut ring = lock(&self.inner);
        let numbered = Arc::new(SseEvent {
            id: ring.next_id,
            kind,
            data: value.to_string(),
        });
        ring.next_id += 1;
        if ring.events.len() == RING_EVENTS {
            ring.events.pop_front();
        }
        ring.events.push_back(numbered.clone());
        // Sent under the ring's lock, so that a reader joining now sees each event once.
        let _ = self.live.send(numbered);
    }

    /// The events after `last_id` still in the ring, whether some after it are gone from the ring,
    /// and a receiver for what comes next.
    fn join(
        &self,
        last_id: Option<u64>,
    ) -> (Vec<Arc<SseEvent>>, bool, broadcast::Receiver<Arc<SseEvent>>) {
        let ring = lock(&self.inner);
        let receiver = self.live.subscribe();
        let Some(last) = last_id else {
            return (Vec::new(), false, receiver);
        };
        let missed = ring.events.front().is_some_and(|e| e.id > last + 1)
            || (ring.events.is_empty() && ring.next_id > last + 1);
        let replay = ring
            .events
            .iter()
            .filter(|e| e.id > last)
            .cloned()
            .collect();
        (replay, missed, receiver)
    }

    /// Subscribes the hub to every process's events, present and future, and feeds it from a task
    /// on the current actix system.
    pub async fn subscribe(&self, registry: &RegistryLink) -> Result<(), PmError> {
        let (tx, mut rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        registry
            .subscribe
            .send(SubscribeEvents {
                names: None,
                sink: EventSink::Channel(tx),
            })
            .await
            .unwrap_or(Err(PmError::ShuttingDown))?;
        let hub = self.clone();
        actix_rt::spawn(async move {
            while let Some(event) = rx.recv().await {
                hub.publish(&event);
            }
        });
        Ok(())
    }
}

/// Where a reader's stream is: the replay first, then the live events.
struct Reader {
    replay: std::vec::IntoIter<Arc<SseEvent>>,
    live: broadcast::Receiver<Arc<SseEvent>>,
    keepalive: tokio::time::Interval,
    done: bool,
}

impl Reader {
    async fn next_chunk(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        if let Some(event) = self.replay.next() {
            return Some(event.to_wire());
        }
        tokio::select! {
            received = self.live.recv() => match received {
                Ok(event) => Some(event.to_wire()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // Closed rather than buffered: the reader reconnects with Last-Event-ID.
                    tracing::info!(missed = n, "SSE reader fell behind: closing its stream");
                    self.done = true;
                    Some(format!(": closed: {n} events behind; reconnect with Last-Event-ID\n\n"))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            },
            _ = self.keepalive.tick() => Some(": keepalive\n\n".to_string()),
        }
    }
}

/// `GET /api/v1/events`: `id: <n>`, `event: status|state`, `data: <the watch event as JSON>`; a
/// `Last-Event-ID` header replays the events after it that the ring still holds.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses((status = 200, description = "A stream of Server-Sent Events; each `data` is a \
        ProcessEvent as one line of JSON", content_type = "text/event-stream", body = String)))]
pub async fn events(req: HttpRequest, state: web::Data<HttpState>) -> HttpResponse {
    let last_id = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (replay, missed, live) = state.events.join(last_id);
    let mut first = String::from("retry: 1000\n\n");
    if missed {
        first.push_str(": some events after Last-Event-ID are gone from the ring\n\n");
    }
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let reader = Reader {
        replay: replay.into_iter(),
        live,
        keepalive,
        done: false,
    };
    let head = stream::once(async move { Ok::<_, actix_web::Error>(web::Bytes::from(first)) });
    let rest = stream::unfold(reader, |mut reader| async move {
        let chunk = reader.next_chunk().await?;
        Some((Ok(web::Bytes::from(chunk)), reader))
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .streaming(futures_util::StreamExt::chain(head, rest))
}

/// Mounts `GET /api/v1/events`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/events", web::get().to(events));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Local;
    use pm_protocol::{EventKind, Status};

    fn event(name: &str) -> ProcessEvent {
        ProcessEvent {
            name: name.into(),
            pid: 1,
            kind: EventKind::Status {
                old: Status::Running,
                new: Status::Stopped,
            },
            exit: None,
            time: Local::now(),
        }
    }

    #[test]
    fn a_reader_resumes_after_its_last_event() {
        let hub = EventHub::new(8);
        hub.publish(&event("a"));
        hub.publish(&event("b"));
        let (replay, missed, _) = hub.join(Some(1));
        assert!(!missed);
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].id, 2);
        assert_eq!(replay[0].kind, "status");
        assert!(
            replay[0].data.contains("\"name\":\"b\""),
            "{}",
            replay[0].data
        );
        assert!(replay[0]
            .to_wire()
            .starts_with("id: 2\nevent: status\ndata: {"));
    }

    #[actix_rt::test]
    async fn a_reader_that_falls_behind_is_closed_not_buffered() {
        let hub = EventHub::new(2);
        let (replay, _, live) = hub.join(None);
        let mut reader = Reader {
            replay: replay.into_iter(),
            live,
            keepalive: tokio::time::interval(KEEPALIVE),
            done: false,
        };
        reader.keepalive.reset();
        for name in ["a", "b", "c", "d", "e"] {
            hub.publish(&event(name));
        }
        let last = reader.next_chunk().await.unwrap();
        assert!(last.starts_with(": closed: 3 events behind"), "{last}");
        assert_eq!(reader.next_chunk().await, None);
    }
}
