//! The http check: a plain HTTP/1.1 GET over tokio that reads the status line only. A 2xx or 3xx
//! passes; redirects are not followed (a 3xx already says the server answers).

use std::time::{Duration, Instant};

use pm_protocol::probe::HttpTarget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{human, Failure};

/// The most of an answer read to find its status line.
const STATUS_LINE_MAX: usize = 1024;

/// GETs `target` within `timeout` (connect, request and status line together).
pub(super) async fn get(target: HttpTarget, timeout: Duration) -> Result<(), Failure> {
    let began = Instant::now();
    let what = format!("GET {}", target.url);
    let code = match tokio::time::timeout(timeout, status_code(&target)).await {
        Err(_) => return Err(format!("{what}: timed out after {}", human(timeout))),
        Ok(Err(e)) => return Err(format!("{what}: {e}")),
        Ok(Ok(code)) => code,
    };
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("{what}: {code} after {}", human(began.elapsed())))
    }
}

async fn status_code(target: &HttpTarget) -> Result<u16, String> {
    let mut stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| e.to_string())?;
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
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            return parse_status_line(&buf[..end]);
        }
        if buf.len() >= STATUS_LINE_MAX {
            return Err("no HTTP status line".into());
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return parse_status_line(&buf);
        }
        buf.extend_from_slice(&chunk[..n]);
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
