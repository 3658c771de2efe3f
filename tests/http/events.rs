//! The Server-Sent Events stream: an event after a start over the socket, and resume.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use crate::HttpDaemon;

/// Reads events (`id`, `event`, `data`) until one whose data names `name`.
fn event_for(lines: &mut impl Iterator<Item = String>, name: &str) -> (u64, String, String) {
    let (mut id, mut kind) = (0, String::new());
    for line in lines.by_ref() {
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            if v.contains(&format!("\"name\":\"{name}\"")) {
                return (id, kind, v.to_string());
            }
        }
    }
    panic!("the stream ended before an event for {name}");
}

fn stream(d: &HttpDaemon, last_id: Option<u64>) -> impl Iterator<Item = String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_secs(20))
        .build();
    let mut req = agent.get(&d.url("/api/v1/events")).set(
        "Authorization",
        &format!("Bearer {}", crate::common::SECRET),
    );
    if let Some(id) = last_id {
        req = req.set("Last-Event-ID", &id.to_string());
    }
    let r = req.call().unwrap();
    assert_eq!(r.header("Content-Type"), Some("text/event-stream"));
    let reader: Box<dyn Read + Send> = r.into_reader();
    BufReader::new(reader).lines().map(|l| l.unwrap())
}

#[test]
fn a_start_over_the_socket_arrives_as_an_event_and_a_reader_resumes() {
    let d = HttpDaemon::start();
    let mut events = stream(&d, None);
    crate::common::ok(
        &d.daemon,
        &["start", "--name", "nap", "--command", "sleep 600"],
    );
    let (id, kind, data) = event_for(&mut events, "nap");
    assert!(id >= 1);
    assert!(kind == "status" || kind == "state", "{kind}");
    let value: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(value["kind"], kind.as_str());
    drop(events);

    crate::common::ok(&d.daemon, &["stop", "--name", "nap"]);
    // Resuming after the first event replays what came after it, the stop included.
    let mut resumed = stream(&d, Some(id));
    let mut ids = Vec::new();
    loop {
        let (next, _, data) = event_for(&mut resumed, "nap");
        assert!(next > id, "{next} after {id}");
        ids.push(next);
        if data.contains("\"new\":\"stopped\"") {
            break;
        }
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}
