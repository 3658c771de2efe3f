//! The messages a `ProcessActor` answers. The contract other actors and the library API code against.
//!
//! Every handler answers at once or returns a future that does not hold the actor: while a `StopAndWait`
//! waits out its grace time, a `Kill`, a `GetInfo` or a `Wait` is answered.

use std::time::Duration;

use actix::prelude::*;
use pm_protocol::logs::LogPage;
use pm_protocol::{ExitInfo, LogLine, PmError, ProcessEvent, ProcessInfo, ProcessSpec};

/// Start the process. Error if it is already alive. Answers its status record once it runs (the pid,
/// the start time), so that a start is one message.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct Start;

/// Send the stop signal to the group, then SIGKILL after the grace time (the spec's unless given).
/// Answers once the signal is sent; the process is `stopping` until the group is gone.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<(), PmError>")]
pub struct Stop {
    /// The grace time before SIGKILL; the spec's `grace_ms` when `None`.
    pub grace: Option<Duration>,
}

/// Like [`Stop`], and answers when the whole group is gone, with the exit.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<ExitInfo, PmError>")]
pub struct StopAndWait {
    /// The grace time before SIGKILL; the spec's `grace_ms` when `None`.
    pub grace: Option<Duration>,
}

/// SIGKILL to the group, and reap. Answers when the process is gone.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<ExitInfo, PmError>")]
pub struct Kill;

/// Answers with the exit once the process ends (at once if it is not alive and has exited before).
/// Any number of waiters at once.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<ExitInfo, PmError>")]
pub struct Wait;

/// Send any signal (a name like `HUP`/`SIGHUP` or a number) to the process, or to its whole group.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct Signal {
    /// The signal: a name (`HUP`, `SIGHUP`) or a number.
    pub signal: String,
    /// Send it to the whole process group rather than the process alone.
    pub group: bool,
}

/// Stop gracefully (forcing after the grace time), then start again; on a process that is not alive,
/// just start. Answers the status record of the new run.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct Restart;

/// Whether the process is alive now.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "bool")]
pub struct IsAlive;

/// The status record as of the last tick (cheap: no /proc read).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "ProcessInfo")]
pub struct GetInfo;

/// Read the status from /proc now and answer it.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "ProcessInfo")]
pub struct UpdateStatus;

/// The spec the actor runs (for templates, restarts and state files).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "ProcessSpec")]
pub struct GetSpec;

/// The last `lines` lines of the in-memory log ring (all of them when `None`).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Vec<LogLine>")]
pub struct GetLogs {
    /// How many of the newest lines; every kept line when `None`.
    pub lines: Option<usize>,
}

/// The lines of the in-memory log ring after line `after` (all of them when `None`), the last
/// `lines` of those when given, with the numbers a follower needs ([`LogPage`]).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "LogPage")]
pub struct GetLogPage {
    /// The `next` of an earlier page: only the lines after it.
    pub after: Option<u64>,
    /// How many of the newest lines; every line after `after` when `None`.
    pub lines: Option<usize>,
}

/// An event delivered to an actix subscriber.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct ProcessEventMsg(pub ProcessEvent);

/// Where events go. A slow, full or dropped subscriber never blocks the actor or the others:
/// delivery is `try_send`, and a subscriber whose receiver is gone is removed.
#[derive(Clone)]
pub enum EventSink {
    /// An actix actor, sent [`ProcessEventMsg`] with `try_send` (a full mailbox drops the event).
    Recipient(Recipient<ProcessEventMsg>),
    /// A bounded channel (a full channel drops the event).
    Channel(tokio::sync::mpsc::Sender<ProcessEvent>),
    /// An unbounded channel (the receiver must keep up; the registry uses one so no exit is lost).
    Unbounded(tokio::sync::mpsc::UnboundedSender<ProcessEvent>),
}

/// Send an event that only the registry knows of (a start `waiting` for its dependencies, a waiting
/// start failed by its dependency) to every subscriber of the process, as the actor's own events go.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Announce(pub pm_protocol::EventKind);

/// Add a subscriber to every change of status or kernel state.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Subscribe(pub EventSink);
