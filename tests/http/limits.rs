//! Request limits: body size, slow clients, the connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::SECRET;
use crate::{json, HttpDaemon};

fn connect(d: &HttpDaemon) -> TcpStream {
    let addr = d.base.trim_start_matches("http://");
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Everything the server sends until it closes the connection.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_body_over_one_mebibyte_is_413_and_the_daemon_goes_on() {
    let d = HttpDaemon::start();
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, body) = json(d.authed("POST", "/api/v1/apply").send_string(&big));
    assert_eq!((status, body["kind"].as_str()), (413, Some("too_large")));
    let (status, _) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!(status, 200);
}

#[test]
fn a_request_that_trickles_in_is_cut_off() {
    let d = HttpDaemon::start_with(&["--http-request-timeout-ms", "500"]);
    // A head that never ends.
    let mut s = connect(&d);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let began = Instant::now();
    let answer = read_all(&mut s);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // A body that never ends.
    let mut s = connect(&d);
    let head = format!(
        "POST /api/v1/apply HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Length: 100\r\n\r\nprocesses:"
    );
    s.write_all(head.as_bytes()).unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"kind\":\"timeout\""), "{answer}");
    let (status, _) = json(d.bare("GET", "/healthz").call());
    assert_eq!(status, 200);
}

#[test]
fn connections_over_the_cap_wait_for_a_free_one() {
    let d = HttpDaemon::start_with(&["--http-max-connections", "1"]);
    let mut held = connect(&d);
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    held.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // The kept-alive connection holds the only slot: the next one is not served meanwhile.
    let mut waiting = connect(&d);
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 12];
    assert!(waiting.read_exact(&mut buf).is_err(), "served over the cap");
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let answer = read_all(&mut waiting);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
