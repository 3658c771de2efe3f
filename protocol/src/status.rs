//! What a process is doing: its lifecycle status, its kernel state, the status record, and change events.

use std::fmt;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// The lifecycle of a managed process, as the supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Defined, never started.
    Initial,
    /// Alive (see [`KernelState`] for what the kernel says it is doing).
    Running,
    /// A stop is under way (stop signal sent, grace time running).
    Stopping,
    /// Ended by a user's stop or kill, or by its deadline.
    Stopped,
    /// Exited 0 by itself.
    Completed,
    /// Exited non-zero or died by a signal, by itself; or could not be spawned; or gave up restarting.
    Failed,
    /// Waiting out a backoff delay before an automatic restart.
    Backoff,
    /// Has a cron schedule and waits for its next fire.
    Scheduled,
    /// An attached process that is gone (its exit code cannot be known).
    Terminated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initial => "initial",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Backoff => "backoff",
            Status::Scheduled => "scheduled",
            Status::Terminated => "terminated",
        }
    }

    /// Whether a process in this status has a live pid.
    pub fn is_alive(self) -> bool {
        matches!(self, Status::Running | Status::Stopping)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kernel's word for the process (field 3 of `/proc/<pid>/stat`), with the words of the
/// original plugin, plus three of its own: initial, terminated, unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelState {
    Running,
    Sleeping,
    DiskSleep,
    Stopped,
    TracingStop,
    Zombie,
    Dead,
    Idle,
    /// Defined, never started.
    Initial,
    /// Not running.
    Terminated,
    /// Running, but its state cannot be read.
    Unavailable,
}

impl KernelState {
    /// Maps the state letter of `/proc/<pid>/stat` (R, S, D, T, t, Z, X, I, ...).
    pub fn from_stat_letter(c: char) -> KernelState {
        match c {
            'R' => KernelState::Running,
            'S' => KernelState::Sleeping,
            'D' => KernelState::DiskSleep,
            'T' => KernelState::Stopped,
            't' => KernelState::TracingStop,
            'Z' => KernelState::Zombie,
            'X' | 'x' => KernelState::Dead,
            'I' => KernelState::Idle,
            _ => KernelState::Unavailable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KernelState::Running => "running",
            KernelState::Sleeping => "sleeping",
            KernelState::DiskSleep => "disk-sleep",
            KernelState::Stopped => "stopped",
            KernelState::TracingStop => "tracing-stop",
            KernelState::Zombie => "zombie",
            KernelState::Dead => "dead",
            KernelState::Idle => "idle",
            KernelState::Initial => "initial",
            KernelState::Terminated => "terminated",
            KernelState::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for KernelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal name (`SIGSEGV`), when a signal killed it.
    pub signal: Option<String>,
    pub time: DateTime<Local>,
}

impl ExitInfo {
    /// Whether this exit counts as a success (exit code 0).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `exited with code 3` or `killed by signal SIGSEGV`.
    pub fn describe(&self) -> String {
        match (&self.code, &self.signal) {
            (_, Some(sig)) => format!("killed by signal {sig}"),
            (Some(code), None) => format!("exited with code {code}"),
            (None, None) => "exited".to_string(),
        }
    }
}

/// The status record of one process: what `status` and `list` show.
///
/// The first twelve fields keep the names and types of the original JSON (`pid` 0, `cron`, `job_id`,
/// `error` empty strings and `deadline` 0 mean "none"); the rest are ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub name: String,
    pub command: String,
    pub pid: i32,
    pub status: Status,
    pub cpu_percent: f64,
    pub memory_mb: f64,
    /// RFC 3339, local time; empty when never started.
    pub start_time: String,
    pub log_enabled: bool,
    pub cron: String,
    pub job_id: String,
    pub deadline: i64,
    pub error: String,

    /// What the kernel says the process is doing.
    pub state: KernelState,
    pub args: Vec<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    /// RFC 3339 time of the last exit; empty when none.
    pub end_time: String,
    /// Automatic restarts so far.
    pub restarts: u64,
    /// Seconds since the last start, while alive.
    pub uptime_secs: Option<f64>,
    /// RFC 3339 time of the next automatic restart, while in backoff.
    pub next_restart: Option<String>,
    /// RFC 3339 time of the next cron fire.
    pub next_run: Option<String>,
    /// Cron fires skipped because the previous run was still going.
    pub skipped_runs: u64,
    pub detached: bool,
    /// Adopted with `attach` rather than started by the daemon.
    pub attached: bool,
}

impl ProcessInfo {
    /// A record for a process that is defined and has never run.
    pub fn initial(name: impl Into<String>, command: impl Into<String>) -> Self {
        ProcessInfo {
            name: name.into(),
            command: command.into(),
            pid: 0,
            status: Status::Initial,
            cpu_percent: 0.0,
            memory_mb: 0.0,
            start_time: String::new(),
            log_enabled: false,
            cron: String::new(),
            job_id: String::new(),
            deadline: 0,
            error: String::new(),
            state: KernelState::Initial,
            args: Vec::new(),
            exit_code: None,
            exit_signal: None,
            end_time: String::new(),
            restarts: 0,
            uptime_secs: None,
            next_restart: None,
            next_run: None,
            skipped_runs: 0,
            detached: false,
            attached: false,
        }
    }
}

/// What changed in a [`ProcessEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The lifecycle status changed.
    Status { old: Status, new: Status },
    /// The kernel state changed (sleeping to running, ...).
    State { old: KernelState, new: KernelState },
}

/// A change in one process, sent to every subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub name: String,
    pub pid: i32,
    #[serde(flatten)]
    pub kind: EventKind,
    /// Set when the change is an exit.
    pub exit: Option<ExitInfo>,
    pub time: DateTime<Local>,
}
