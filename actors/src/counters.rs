//! Daemon-wide counters kept with atomics: requests by command with their latency, and connections by
//! transport; read by the metrics endpoint at scrape time.
//!
//! Every request, from the socket or over HTTP, runs one [`Command`]; whoever runs it times it with
//! [`RequestCounters::time`], which costs a few relaxed atomic additions and no lock, so that counting
//! stays off the hot path's way. The figures are only read when someone scrapes them
//! ([`RequestCounters::read`]).
//!
//! ```
//! use pm_actors::counters::{daemon, Transport};
//! use pm_protocol::command::parse_script;
//!
//! let cmd = &parse_script("!!process.list").unwrap()[0];
//! let before = daemon().requests.read().commands[cmd.action_index()].count;
//! drop(daemon().requests.time(cmd)); // counted when the timer drops
//! assert_eq!(daemon().requests.read().commands[cmd.action_index()].count, before + 1);
//!
//! let open = daemon().connections(Transport::Socket).read().open;
//! let conn = daemon().connections(Transport::Socket).opened();
//! assert!(daemon().connections(Transport::Socket).read().open >= open + 1);
//! drop(conn);
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pm_protocol::command::Command;

/// How many kinds of command there are ([`Command::ACTIONS`]).
const KINDS: usize = Command::ACTIONS.len();

/// The upper bounds of the latency histogram's buckets, in seconds (a last `+Inf` bucket is implied):
/// from a status answered from memory to a stop that waits out a grace time.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The bucket bounds in nanoseconds, to place a duration without a float conversion.
const BUCKET_NANOS: [u64; 16] = {
    let mut out = [0; 16];
    let mut i = 0;
    while i < out.len() {
        // Rounded: every bound is a whole number of nanoseconds, which a product of floats may miss.
        out[i] = (LATENCY_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    out
};

/// The counters of the whole daemon: one set per process (see [`daemon`]).
pub struct DaemonCounters {
    /// Requests by command.
    pub requests: RequestCounters,
    socket: ConnectionCounters,
    http: ConnectionCounters,
}

/// The daemon's counters, shared by every session and the HTTP server.
pub fn daemon() -> &'static DaemonCounters {
    static DAEMON: DaemonCounters = DaemonCounters {
        requests: RequestCounters::new(),
        socket: ConnectionCounters::new(),
        http: ConnectionCounters::new(),
    };
    &DAEMON
}

impl DaemonCounters {
    /// The connection counters of one transport.
    pub fn connections(&self, transport: Transport) -> &ConnectionCounters {
        match transport {
            Transport::Socket => &self.socket,
            Transport::Http => &self.http,
        }
    }
}

/// How a client reaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The Unix socket (heroscript sessions).
    Socket,
    /// The HTTP server.
    Http,
}

impl Transport {
    /// Both transports, in the order metrics list them.
    pub const ALL: [Transport; 2] = [Transport::Socket, Transport::Http];

    /// The label value: `socket` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Socket => "socket",
            Transport::Http => "http",
        }
    }
}

/// Requests counted by kind of command, each kind with a latency histogram.
pub struct RequestCounters {
    commands: [CommandCounters; KINDS],
}

struct CommandCounters {
    /// Requests per bucket of [`LATENCY_BUCKETS`] (not cumulative), the last one past every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// The sum of every request's time.
    nanos: AtomicU64,
}

/// The figures of one kind of command, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandReading {
    /// The action name (`process.start`).
    pub action: &'static str,
    /// Requests so far.
    pub count: u64,
    /// Their time summed, in seconds.
    pub seconds: f64,
    /// Requests per bucket of [`LATENCY_BUCKETS`] (not cumulative); the last one is past every bound.
    pub buckets: Vec<u64>,
}

/// Every kind of command's figures, in the order of [`Command::ACTIONS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestsReading {
    /// One per kind of command.
    pub commands: Vec<CommandReading>,
}

impl RequestCounters {
    /// All at zero.
    pub const fn new() -> Self {
        RequestCounters {
            commands: [const {
                CommandCounters {
                    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
                    nanos: AtomicU64::new(0),
                }
            }; KINDS],
        }
    }

    /// Starts timing a request for `command`; it is counted when the timer drops.
    pub fn time(&self, command: &Command) -> RequestTimer<'_> {
        RequestTimer {
            counters: self,
            kind: command.action_index(),
            started: Instant::now(),
        }
    }

    /// Starts timing a request for the command named `action` (`process.start`, as in
    /// [`Command::ACTIONS`]), for a front door that does not hold a [`Command`]; an unknown name is
    /// not counted.
    pub fn time_action(&self, action: &str) -> RequestTimer<'_> {
        RequestTimer {
            counters: self,
            kind: Command::ACTIONS
                .iter()
                .position(|a| *a == action)
                .unwrap_or(KINDS),
            started: Instant::now(),
        }
    }

    /// Counts one request of the kind at `kind` ([`Command::action_index`]) that took `took`.
    pub fn record(&self, kind: usize, took: Duration) {
        let Some(c) = self.commands.get(kind) else {
            return;
        };
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKET_NANOS.len());
        c.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        c.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The figures now. The count is the sum of the buckets as read, so a reading is always whole
    /// even while requests are being counted.
    pub fn read(&self) -> RequestsReading {
        let commands = self
            .commands
            .iter()
            .zip(Command::ACTIONS)
            .map(|(c, action)| {
                let buckets: Vec<u64> = c
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                CommandReading {
                    action,
                    count: buckets.iter().sum(),
                    seconds: c.nanos.load(Ordering::Relaxed) as f64 / 1e9,
                    buckets,
                }
            })
            .collect();
        RequestsReading { commands }
    }
}

impl Default for RequestCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// Times one request; counts it in its [`RequestCounters`] when dropped.
pub struct RequestTimer<'a> {
    counters: &'a RequestCounters,
    kind: usize,
    started: Instant,
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        self.counters.record(self.kind, self.started.elapsed());
    }
}

/// The connections of one transport.
pub struct ConnectionCounters {
    accepted: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
}

/// One transport's connection figures, as read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionReading {
    /// Open now.
    pub open: u64,
    /// Accepted so far.
    pub accepted: u64,
    /// Refused so far because too many were open.
    pub refused: u64,
}

impl ConnectionCounters {
    /// All at zero.
    pub const fn new() -> Self {
        ConnectionCounters {
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Counts a connection accepted; it counts as open until the guard drops.
    pub fn opened(&self) -> OpenConnection<'_> {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        OpenConnection { counters: self }
    }

    /// Counts a connection refused for being over the limit.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn read(&self) -> ConnectionReading {
        // Closed first: a connection closed between the two loads is then never counted as open
        // below zero.
        let closed = self.closed.load(Ordering::Relaxed);
        let accepted = self.accepted.load(Ordering::Relaxed);
        ConnectionReading {
            open: accepted.saturating_sub(closed),
            accepted,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

impl Default for ConnectionCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// A connection counted as open until dropped.
pub struct OpenConnection<'a> {
    counters: &'a ConnectionCounters,
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.counters.closed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_protocol::command::parse_script;

    #[test]
    fn a_request_lands_in_the_first_bucket_that_holds_it() {
        let counters = RequestCounters::new();
        let stop = &parse_script("!!process.stop name:x").unwrap()[0];
        counters.record(stop.action_index(), Duration::from_micros(100));
        counters.record(stop.action_index(), Duration::from_millis(3));
        counters.record(stop.action_index(), Duration::from_secs(60));
        let reading = counters.read();
        let stops = &reading.commands[stop.action_index()];
        assert_eq!(stops.action, "process.stop");
        assert_eq!(stops.count, 3);
        assert_eq!(stops.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(stops.buckets[0], 1, "100 µs is within the 0.0001 s bound");
        assert_eq!(stops.buckets[5], 1, "3 ms is within the 0.005 s bound");
        assert_eq!(
            stops.buckets[LATENCY_BUCKETS.len()],
            1,
            "a minute is past every bound"
        );
        assert!((stops.seconds - 60.0031).abs() < 1e-9, "{}", stops.seconds);
        let others: u64 = reading.commands.iter().map(|c| c.count).sum();
        assert_eq!(others, 3, "only stops were counted");
    }

    #[test]
    fn a_timer_counts_its_request_when_dropped() {
        let counters = RequestCounters::new();
        let list = &parse_script("!!process.list").unwrap()[0];
        let timer = counters.time(list);
        assert_eq!(counters.read().commands[list.action_index()].count, 0);
        drop(timer);
        assert_eq!(counters.read().commands[list.action_index()].count, 1);
    }

    #[test]
    fn a_request_is_timed_by_its_action_name_too() {
        let counters = RequestCounters::new();
        let list = &parse_script("!!process.list").unwrap()[0];
        drop(counters.time_action("process.list"));
        drop(counters.time_action("no.such"));
        let reading = counters.read();
        assert_eq!(reading.commands[list.action_index()].count, 1);
        assert_eq!(reading.commands.iter().map(|c| c.count).sum::<u64>(), 1);
    }

    #[test]
    fn a_connection_is_open_until_its_guard_drops() {
        let counters = ConnectionCounters::new();
        let first = counters.opened();
        let second = counters.opened();
        counters.refused();
        assert_eq!(
            counters.read(),
            ConnectionReading {
                open: 2,
                accepted: 2,
                refused: 1
            }
        );
        drop((first, second));
        assert_eq!(counters.read().open, 0);
        assert_eq!(counters.read().accepted, 2);
    }
}
