//! Readiness and health: how a service says it is up ([`Readiness`]), how it is checked
//! ([`Probe`]), their timings ([`ProbeSettings`]), and what a status shows of them ([`Health`]).
//!
//! Each has one text form, the one heroscript, templates, stack files, the state file and the
//! client flags all use: `started`, `notify`, `exited`, `log:<regex>`, `http:<url>`,
//! `tcp:<host>:<port>`, `exec:<command>`. Parsing checks everything that can be checked at
//! definition (the URL, the port, the regex), so a bad one is refused before anything runs.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A check of a running service: passes or fails within its timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Probe {
    /// `http:http://host:port/path`: a GET that answers 2xx or 3xx.
    Http(HttpTarget),
    /// `tcp:host:port`: a TCP connect that succeeds.
    Tcp {
        /// The host name or address.
        host: String,
        /// The port.
        port: u16,
    },
    /// `exec:<command>`: a command (run with `sh -c` as the process's user, in its environment and
    /// directory) that exits 0.
    Exec(String),
}

/// Where an http probe sends its GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The URL as written (`http://127.0.0.1:8080/health`).
    pub url: String,
    /// The host part (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// The path and query, `/` when the URL has none.
    pub path: String,
}

impl HttpTarget {
    /// Reads an `http://` URL. `https://` is refused: the probe speaks plain HTTP/1.1 only.
    ///
    /// ```
    /// use pm_protocol::probe::HttpTarget;
    /// let t = HttpTarget::parse("http://127.0.0.1:8080/health?full=1").unwrap();
    /// assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 8080, "/health?full=1"));
    /// assert!(HttpTarget::parse("https://example.com/").unwrap_err().contains("https"));
    /// ```
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        if url.starts_with("https://") {
            return Err(format!(
                "'{url}': https:// is not supported by the http probe; use http://, or an \
                 exec probe (exec:'curl -fsS {url}')"
            ));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let (host, port) = split_host_port(authority, Some(80))
            .ok_or_else(|| format!("'{url}' has no valid host and port"))?;
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "'{url}' has a space or control character in its path"
            ));
        }
        Ok(HttpTarget {
            url: url.to_string(),
            host,
            port,
            path,
        })
    }
}

/// `host:port`, `[v6]:port`, or with `default_port` a bare host.
fn split_host_port(text: &str, default_port: Option<u16>) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default_port?,
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    host_ok.then(|| (host.to_string(), port))
}

impl Probe {
    /// Reads `http:<url>`, `tcp:<host>:<port>` or `exec:<command>`.
    ///
    /// ```
    /// use pm_protocol::probe::Probe;
    /// let p: Probe = "tcp:localhost:5432".parse().unwrap();
    /// assert_eq!(p, Probe::Tcp { host: "localhost".into(), port: 5432 });
    /// assert_eq!(p.to_string(), "tcp:localhost:5432");
    /// assert!("ftp:x".parse::<Probe>().is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Probe, String> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        match kind {
            "http" => Ok(Probe::Http(HttpTarget::parse(rest)?)),
            "tcp" => {
                let (host, port) = split_host_port(rest, None)
                    .ok_or_else(|| format!("'{rest}' is not a host:port"))?;
                Ok(Probe::Tcp { host, port })
            }
            "exec" if !rest.trim().is_empty() => Ok(Probe::Exec(rest.to_string())),
            "exec" => Err("exec: needs a command".to_string()),
            _ => Err(format!(
                "'{text}' is not a check: http:<url>, tcp:<host>:<port> or exec:<command>"
            )),
        }
    }
}

impl std::str::FromStr for Probe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Probe::parse(s)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Http(t) => write!(f, "http:{}", t.url),
            Probe::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Probe::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            Probe::Exec(cmd) => write!(f, "exec:{cmd}"),
        }
    }
}

impl TryFrom<String> for Probe {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Probe::parse(&s)
    }
}

impl From<Probe> for String {
    fn from(p: Probe) -> String {
        p.to_string()
    }
}

/// How a process's readiness is known (`ready:`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Readiness {
    /// Ready as soon as it runs (the default).
    #[default]
    Started,
    /// Ready when it sends `READY=1` to its `NOTIFY_SOCKET` (the systemd protocol).
    Notify,
    /// Ready once it has exited 0 (a one-shot job such as a migration).
    Exited,
    /// Ready when a line of its output matches this regular expression.
    Log(String),
    /// Ready when this check first passes (tried every `ready_period`).
    Check(Probe),
}

impl Readiness {
    /// Reads `started`, `notify`, `exited`, `log:<regex>` or a check (see [`Probe::parse`]). A
    /// regex that does not compile is refused here.
    ///
    /// ```
    /// use pm_protocol::probe::Readiness;
    /// assert_eq!(Readiness::parse("log:listening on \\d+").unwrap().to_string(), "log:listening on \\d+");
    /// assert!(Readiness::parse("log:(").unwrap_err().contains("regex"));
    /// assert!(Readiness::parse("soon").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Readiness, String> {
        match text {
            "started" => return Ok(Readiness::Started),
            "notify" => return Ok(Readiness::Notify),
            "exited" => return Ok(Readiness::Exited),
            _ => {}
        }
        if let Some(re) = text.strip_prefix("log:") {
            regex::Regex::new(re).map_err(|e| format!("bad regex in 'log:{re}': {e}"))?;
            return Ok(Readiness::Log(re.to_string()));
        }
        Probe::parse(text).map(Readiness::Check).map_err(|e| {
            if text.contains(':') {
                e
            } else {
                format!(
                    "'{text}' is not a readiness: started, notify, exited, log:<regex>, \
                     http:<url>, tcp:<host>:<port> or exec:<command>"
                )
            }
        })
    }

    /// Whether this is anything but `started`.
    pub fn is_explicit(&self) -> bool {
        *self != Readiness::Started
    }
}

impl std::str::FromStr for Readiness {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Readiness::parse(s)
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Started => f.write_str("started"),
            Readiness::Notify => f.write_str("notify"),
            Readiness::Exited => f.write_str("exited"),
            Readiness::Log(re) => write!(f, "log:{re}"),
            Readiness::Check(p) => p.fmt(f),
        }
    }
}

impl TryFrom<String> for Readiness {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Readiness::parse(&s)
    }
}

impl From<Readiness> for String {
    fn from(r: Readiness) -> String {
        r.to_string()
    }
}

/// Readiness, health checks and the watchdog of one process, with their timings
/// ([`ProcessSpec::probes`](crate::ProcessSpec::probes)).
///
/// ```
/// use pm_protocol::{Probe, ProcessSpec, Readiness};
/// let mut spec = ProcessSpec::exec("api", "./api", ["--port", "8080"]);
/// spec.probes.ready = Readiness::parse("http:http://127.0.0.1:8080/ready").unwrap();
/// spec.probes.ready_within_ms = Some(30_000);
/// spec.probes.health = Some(Probe::parse("tcp:127.0.0.1:8080").unwrap());
/// spec.probes.health_failures = 2;
/// assert!(spec.probes.validate().is_ok() && spec.probes.has_health());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeSettings {
    /// How readiness is known (`ready:`); `started` by default.
    pub ready: Readiness,
    /// Time between two readiness checks (`ready_period`), in milliseconds.
    pub ready_period_ms: u64,
    /// The timeout of each readiness check (`ready_timeout`), in milliseconds.
    pub ready_timeout_ms: u64,
    /// A start not ready this long after it began fails as a start (`ready_within`); `None`: no limit.
    pub ready_within_ms: Option<u64>,
    /// The health check (`health:`), run once the process is ready.
    pub health: Option<Probe>,
    /// Time between two health checks (`health_period`), in milliseconds.
    pub health_period_ms: u64,
    /// The timeout of each health check (`health_timeout`), in milliseconds.
    pub health_timeout_ms: u64,
    /// Consecutive failed checks that make the process unhealthy (`health_failures`).
    pub health_failures: u32,
    /// With `ready:notify`: no `WATCHDOG=1` for this long counts as a failed check (`watchdog`).
    pub watchdog_ms: Option<u64>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            ready: Readiness::Started,
            ready_period_ms: 1_000,
            ready_timeout_ms: 1_000,
            ready_within_ms: None,
            health: None,
            health_period_ms: 10_000,
            health_timeout_ms: 1_000,
            health_failures: 3,
            watchdog_ms: None,
        }
    }
}

impl ProbeSettings {
    /// Whether every setting is at its default (then the spec's JSON leaves them out).
    pub fn is_default(&self) -> bool {
        *self == ProbeSettings::default()
    }

    /// Whether the process has a readiness or health state to show (`health:` in its status).
    pub fn has_health(&self) -> bool {
        self.ready.is_explicit() || self.health.is_some() || self.watchdog_ms.is_some()
    }

    /// Checks what no single value shows: the watchdog needs `ready:notify`, counts and periods
    /// are not zero.
    pub fn validate(&self) -> Result<(), String> {
        if self.watchdog_ms.is_some() && self.ready != Readiness::Notify {
            return Err(
                "watchdog needs ready:notify (the process feeds it with WATCHDOG=1)".into(),
            );
        }
        if self.health_failures == 0 {
            return Err("health_failures must be at least 1".into());
        }
        let zero = [
            ("ready_period", self.ready_period_ms),
            ("ready_timeout", self.ready_timeout_ms),
            ("health_period", self.health_period_ms),
            ("health_timeout", self.health_timeout_ms),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be longer than 0"));
        }
        Ok(())
    }
}

/// What the readiness and health of a running process are (`health:` in its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Running, not ready yet.
    Starting,
    /// Ready, and its health checks (if any) pass.
    Ready,
    /// Its health checks failed `health_failures` times in a row (or its watchdog ran out).
    Unhealthy,
}

impl Health {
    /// The wire word: `starting`, `ready`, `unhealthy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Ready => "ready",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        for text in [
            "started",
            "notify",
            "exited",
            "log:^ready at \\d+$",
            "http:http://127.0.0.1:8080/health",
            "http:http://[::1]:81/",
            "tcp:db.local:5432",
            "tcp:[::1]:5432",
            "exec:pg_isready -h localhost",
        ] {
            let r = Readiness::parse(text).unwrap();
            assert_eq!(r.to_string(), text);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Readiness>(&json).unwrap(), r);
        }
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for (text, word) in [
            ("http:https://x/", "https"),
            ("http:ftp://x/", "http://"),
            ("http:http://:80/", "host"),
            ("tcp:host", "host:port"),
            ("tcp:host:99999", "host:port"),
            ("exec:", "command"),
            ("log:[", "regex"),
            ("soon", "readiness"),
        ] {
            let e = Readiness::parse(text).unwrap_err();
            assert!(e.contains(word), "{text}: {e}");
        }
    }

    #[test]
    fn a_url_without_path_or_port_gets_the_defaults() {
        let t = HttpTarget::parse("http://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = HttpTarget::parse("http://h:1?x=1").unwrap();
        assert_eq!(t.path, "/?x=1");
    }

    #[test]
    fn the_watchdog_needs_notify() {
        let mut s = ProbeSettings {
            watchdog_ms: Some(1000),
            ..ProbeSettings::default()
        };
        assert!(s.validate().unwrap_err().contains("notify"));
        s.ready = Readiness::Notify;
        assert!(s.validate().is_ok());
    }
}
