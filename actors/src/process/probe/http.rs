//! The http check: a plain HTTP/1.1 GET over tokio that reads the status line only. A 2xx or 3xx
//! passes; redirects are not followed (a 3xx already says the server answers).
//!
//! Each check is a connection of its own, as a kubelet's is: a server that stops accepting, or
//! whose accept queue is full, fails the next check. What does not change between checks (the
//! request's bytes, a literal address) is made once per target ([`HttpCheck`]); and the connection
//! is closed with a reset once the status line is read (`SO_LINGER` 0, as HAProxy's checks do), so
//! that neither side keeps it in `TIME_WAIT`: a thousand checks a second would otherwise leave tens
//! of thousands of closed connections for the kernel to keep and time out.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pm_protocol::probe::HttpTarget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{human, Failure};

/// The most of an answer read to find its status line.
const STATUS_LINE_MAX: usize = 1024;

/// An http check made ready once for its target, shared by all its checks.
#[derive(Debug)]
pub(crate) struct HttpCheck {
    target: HttpTarget,
    /// The address, when the host is one (a name is resolved at each check).
    addr: Option<SocketAddr>,
    request: Vec<u8>,
}

impl HttpCheck {
    pub(crate) fn new(target: &HttpTarget) -> Arc<HttpCheck> {
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: processmanager\r\nAccept: */*\r\n\
             Connection: close\r\n\r\n",
            target.path, target.port
        );
        Arc::new(HttpCheck {
            addr: target
                .host
                .parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, target.port)),
            target: target.clone(),
            request: request.into_bytes(),
        })
    }

    /// Whether this was made for `target`.
    pub(crate) fn is_for(&self, target: &HttpTarget) -> bool {
        self.target == *target
    }
}

/// GETs the check's target within `timeout` (connect, request and status line together).
pub(super) async fn get(check: Arc<HttpCheck>, timeout: Duration) -> Result<(), Failure> {
    let began = Instant::now();
    let what = || format!("GET {}", check.target.url);
    let code = match tokio::time::timeout(timeout, status_code(&check)).await {
        Err(_) => return Err(format!("{}: timed out after {}", what(), human(timeout))),
        Ok(Err(e)) => return Err(format!("{}: {e}", what())),
        Ok(Ok(code)) => code,
    };
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "{}: {code} after {}",
            what(),
            human(began.elapsed())
        ))
    }
}

async fn status_code(check: &HttpCheck) -> Result<u16, String> {
    let target = &check.target;
    let stream = match check.addr {
        Some(addr) => tokio::net::TcpStream::connect(addr).await,
        None => tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await,
    };
    let mut stream = stream.map_err(|e| e.to_string())?;
    // Closed with a reset when dropped (see the module's documentation): a linger of 0 never
    // blocks the drop, unlike one with a time. A failure to ask it leaves the ordinary close.
    let reset = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &reset);
    stream
        .write_all(&check.request)
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; STATUS_LINE_MAX];
    let mut len = 0;
    loop {
        if let Some(end) = buf[..len].windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]);
        }
        if len == buf.len() {
            return Err("no HTTP status line".into());
        }
        let n = stream
            .read(&mut buf[len..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return parse_status_line(&buf[..len]);
        }
        len += n;
    }
}

/// `HTTP/1.1 503 Service Unavailable` to 503.
fn parse_status_line(line: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    match (
        words.next(),
        words.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Ok(code),
        _ if text.is_empty() => Err("the connection closed without an answer".into()),
        _ => Err(format!(
            "not an HTTP answer: {:?}",
            text.chars().take(60).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content"), Ok(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 503"), Ok(503));
        assert!(parse_status_line(b"SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line(b"").unwrap_err().contains("closed"));
    }
}
