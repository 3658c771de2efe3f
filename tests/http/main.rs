//! The HTTP server of the real daemon binary, through a real HTTP client (ureq): status codes,
//! bodies, auth, limits and the event stream.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod auth;
mod events;
mod limits;
mod metrics;
mod openapi;

use std::time::Duration;

use common::{wait_for, Daemon, SECRET};

/// A daemon with its HTTP server on a free loopback port.
pub struct HttpDaemon {
    pub daemon: Daemon,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl HttpDaemon {
    pub fn start() -> HttpDaemon {
        HttpDaemon::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> HttpDaemon {
        HttpDaemon::launch(Daemon::unstarted(), extra)
    }

    /// Launches `daemon` (prepared, not started) with its HTTP server on a free loopback port.
    pub fn launch(daemon: Daemon, extra: &[&str]) -> HttpDaemon {
        let mut args = vec!["--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        HttpDaemon::launch_with_args(daemon, &args)
    }

    /// Launches `daemon` with `args` after its socket, which must turn the HTTP server on.
    pub fn launch_with_args(mut daemon: Daemon, args: &[&str]) -> HttpDaemon {
        daemon.launch(args, true);
        let mut base = String::new();
        wait_for(
            "the HTTP server's log line",
            Duration::from_secs(20),
            || {
                let log = daemon.stderr();
                let Some(at) = log.find("HTTP server listening on ") else {
                    return false;
                };
                let rest = &log[at + "HTTP server listening on ".len()..];
                base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                true
            },
        );
        HttpDaemon { daemon, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer secret.
    pub fn authed(&self, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &self.url(path)).set("Authorization", &format!("Bearer {SECRET}"))
    }

    /// A request without credentials.
    pub fn bare(&self, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &self.url(path))
    }
}

/// The status and body of an answer, an error status included.
pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match result {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("no HTTP answer: {e}"),
    }
}

/// The status and JSON body of an answer.
pub fn json(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    let (status, body) = answer(result);
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    (status, value)
}
