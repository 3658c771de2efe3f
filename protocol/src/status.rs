//! What a process is doing: its lifecycle status, its kernel state, the status record, and change events.

use std::fmt;

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// The lifecycle of a managed process, as the supervisor sees it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// Started, and waiting for its dependencies (`after:`) to hold; see `waiting_for`.
    Waiting,
}

impl Status {
    /// Every status, in the order of the lifecycle's description above.
    pub const ALL: [Status; 10] = [
        Status::Initial,
        Status::Running,
        Status::Stopping,
        Status::Stopped,
        Status::Completed,
        Status::Failed,
        Status::Backoff,
        Status::Scheduled,
        Status::Terminated,
        Status::Waiting,
    ];

    /// The wire word (`running`, `backoff`, ...), as in text output and JSON.
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
            Status::Waiting => "waiting",
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelState {
    /// `R`: running or runnable (`running`).
    Running,
    /// `S`: interruptible sleep, waiting for an event (`sleeping`).
    Sleeping,
    /// `D`: uninterruptible sleep, usually disk I/O (`disk-sleep`).
    DiskSleep,
    /// `T`: stopped by a job-control signal such as SIGSTOP (`stopped`).
    Stopped,
    /// `t`: stopped by a debugger (`tracing-stop`).
    TracingStop,
    /// `Z`: exited, not yet reaped by its parent (`zombie`).
    Zombie,
    /// `X`: being torn down (`dead`).
    Dead,
    /// `I`: an idle kernel thread (`idle`).
    Idle,
    /// Defined, never started.
    Initial,
    /// Not running.
    Terminated,
    /// Running, but its state cannot be read.
    Unavailable,
}

impl KernelState {
    /// Maps the state letter of `/proc/<pid>/stat` (R, S, D, T, t, Z, X, I); any other letter is
    /// [`KernelState::Unavailable`].
    ///
    /// ```
    /// use pm_protocol::KernelState;
    /// assert_eq!(KernelState::from_stat_letter('D'), KernelState::DiskSleep);
    /// assert_eq!(KernelState::from_stat_letter('D').as_str(), "disk-sleep");
    /// assert_eq!(KernelState::from_stat_letter('?'), KernelState::Unavailable);
    /// ```
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

    /// The wire word (`sleeping`, `disk-sleep`, ...), as in the `state` field and `State:` line.
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal name (`SIGSEGV`), when a signal killed it.
    pub signal: Option<String>,
    /// When the supervisor saw the exit (reaped the child, or found an attached pid gone).
    pub time: DateTime<Local>,
    /// Why the supervisor ended the run, when it did so for a reason of the run's own (`unhealthy:
    /// ...`, `not ready within 5 s`): this is then what [`ExitInfo::describe`] says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ExitInfo {
    /// Whether this exit counts as a success (exit code 0, and not ended by the supervisor for a
    /// reason of the run's own).
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.reason.is_none()
    }

    /// `exited with code 3` or `killed by signal SIGSEGV` (the signal wins when both are set); plain
    /// `exited` when neither is known.
    pub fn describe(&self) -> String {
        if let Some(reason) = &self.reason {
            return reason.clone();
        }
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The process name.
    pub name: String,
    /// The command line as a person reads it ([`CommandLine::display`](crate::CommandLine::display); for
    /// an attached process, its `/proc` command line joined with spaces).
    pub command: String,
    /// The live pid; 0 when not running.
    pub pid: i32,
    /// The lifecycle status.
    pub status: Status,
    /// CPU use since the previous sample, summed over the process tree; 100.0 is one full core. 0 when
    /// not running. JSON carries two decimals, as the text does.
    #[serde(serialize_with = "two_decimals")]
    pub cpu_percent: f64,
    /// Resident memory summed over the process tree, in MiB (2^20 bytes). 0 when not running. JSON
    /// carries two decimals.
    #[serde(serialize_with = "two_decimals")]
    pub memory_mb: f64,
    /// RFC 3339 time of the last start, local time; empty when never started.
    pub start_time: String,
    /// Whether output is captured (log file and in-memory ring).
    pub log_enabled: bool,
    /// The cron expression as written; empty when not scheduled.
    pub cron: String,
    /// The `jobid` given at start; empty when none.
    pub job_id: String,
    /// The deadline in whole seconds after each start; 0 when none.
    pub deadline: i64,
    /// The last problem: a spawn failure, a failed exit's description, a deadline stop; empty when none.
    /// Cleared by the next start.
    pub error: String,

    /// What the kernel says the process is doing.
    pub state: KernelState,
    /// The arguments of a program run directly ([`CommandLine::Exec`](crate::CommandLine::Exec)); empty
    /// for a shell command line.
    pub args: Vec<String>,
    /// The exit code of the last exit; `None` when it never exited or a signal killed it.
    pub exit_code: Option<i32>,
    /// The signal name (`SIGKILL`) when a signal ended the last run; `None` otherwise.
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
    /// Started detached: leads its own session, writes output to files, and outlives the daemon.
    pub detached: bool,
    /// Adopted with `attach` rather than started by the daemon.
    pub attached: bool,
    /// CPU time of the current run, in seconds, summed over the process tree as the status monitor
    /// has seen it; 0 when not running (each run starts again from 0). JSON carries two decimals.
    #[serde(default, serialize_with = "two_decimals")]
    pub cpu_seconds: f64,
    /// The env files the last start read, in order; left out of the JSON when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,

    // Readiness and health (issue 14, part D).
    /// `starting`, `ready` or `unhealthy` while a process with a `ready:` or `health:` option runs;
    /// `None` (left out of the JSON) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::probe::Health>,
    /// RFC 3339 time the current run became ready; left out of the JSON when not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<String>,
    /// The last failed check (`GET http://...: 503 after 12 ms`), or the last `STATUS=` a notify
    /// process sent; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_detail: String,

    // Dependencies (issue 14, part E).
    /// While `waiting`: the dependencies that do not hold yet, as `db (ready)`, in the order of
    /// `after:`; left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_for: Vec<String>,
    // Containment and limits (issue 18).
    /// `cgroup` when the process runs in a cgroup of its own (stop and delete reach every process in
    /// it), `group` when only its process group (and the fallback's marker scan) does.
    ///
    /// A static text, not a `String`: one allocation less per process in every record and every
    /// copy of it a list makes.
    #[serde(default = "group_containment")]
    pub containment: std::borrow::Cow<'static, str>,
    /// The path of the process's cgroup; left out of the JSON in group mode.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup: String,
    /// The `memory_max` limit in bytes, where set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    /// The cgroup's `memory.current` in bytes, where the memory controller is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_current: Option<u64>,
    /// OOM kills in the cgroup (`memory.events` `oom_kill`); left out of the JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub oom_kills: u64,
}

fn group_containment() -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed("group")
}

/// Bytes as a person reads them: `512 MiB`, `1.5 GiB`, `900 B`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit == "B" || value.fract() == 0.0 {
        format!("{value} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Every time the protocol shows (start, end, next run, next restart, log lines in the file and on
/// the wire, events): RFC 3339 in local time with milliseconds. The daemon stamps what it sees when it
/// sees it, so finer digits would claim a precision the stamps do not have.
pub fn time_text(time: &DateTime<Local>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// Writes a figure with two decimals: the sampler's last digits are noise, not precision.
fn two_decimals<S: serde::Serializer>(value: &f64, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_f64((value * 100.0).round() / 100.0)
}

impl ProcessInfo {
    /// Makes this record a copy of `source`, reusing what its strings and vectors already hold: a
    /// list copies thousands of records through one. (The derived `clone_from` makes a new copy.)
    pub fn copy_from(&mut self, source: &ProcessInfo) {
        // Every field by name, no `..`: a field added to the record must be added here.
        let ProcessInfo {
            name,
            command,
            pid,
            status,
            cpu_percent,
            memory_mb,
            start_time,
            log_enabled,
            cron,
            job_id,
            deadline,
            error,
            state,
            args,
            exit_code,
            exit_signal,
            end_time,
            restarts,
            uptime_secs,
            next_restart,
            next_run,
            skipped_runs,
            detached,
            attached,
            cpu_seconds,
            env_files,
            health,
            ready_since,
            health_detail,
            waiting_for,
            containment,
            cgroup,
            memory_max,
            memory_current,
            oom_kills,
        } = source;
        self.name.clone_from(name);
        self.command.clone_from(command);
        self.pid.clone_from(pid);
        self.status.clone_from(status);
        self.cpu_percent.clone_from(cpu_percent);
        self.memory_mb.clone_from(memory_mb);
        self.start_time.clone_from(start_time);
        self.log_enabled.clone_from(log_enabled);
        self.cron.clone_from(cron);
        self.job_id.clone_from(job_id);
        self.deadline.clone_from(deadline);
        self.error.clone_from(error);
        self.state.clone_from(state);
        self.args.clone_from(args);
        self.exit_code.clone_from(exit_code);
        self.exit_signal.clone_from(exit_signal);
        self.end_time.clone_from(end_time);
        self.restarts.clone_from(restarts);
        self.uptime_secs.clone_from(uptime_secs);
        self.next_restart.clone_from(next_restart);
        self.next_run.clone_from(next_run);
        self.skipped_runs.clone_from(skipped_runs);
        self.detached.clone_from(detached);
        self.attached.clone_from(attached);
        self.cpu_seconds.clone_from(cpu_seconds);
        self.env_files.clone_from(env_files);
        self.health.clone_from(health);
        self.ready_since.clone_from(ready_since);
        self.health_detail.clone_from(health_detail);
        self.waiting_for.clone_from(waiting_for);
        self.containment.clone_from(containment);
        self.cgroup.clone_from(cgroup);
        self.memory_max.clone_from(memory_max);
        self.memory_current.clone_from(memory_current);
        self.oom_kills.clone_from(oom_kills);
    }

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
            cpu_seconds: 0.0,
            env_files: Vec::new(),
            health: None,
            ready_since: None,
            health_detail: String::new(),
            waiting_for: Vec::new(),
            containment: group_containment(),
            cgroup: String::new(),
            memory_max: None,
            memory_current: None,
            oom_kills: 0,
        }
    }
}

/// What changed in a [`ProcessEvent`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The lifecycle status changed.
    Status {
        /// The status before.
        old: Status,
        /// The status after.
        new: Status,
    },
    /// The kernel state changed (sleeping to running, ...).
    State {
        /// The state before.
        old: KernelState,
        /// The state after.
        new: KernelState,
    },
    /// The run became ready (its `ready:` condition holds).
    Ready,
    /// A ready run is no longer ready (`RELOADING=1` or `STOPPING=1` from a notify process).
    Unready {
        /// Why, as the process said it.
        detail: String,
    },
    /// Its health checks failed `health_failures` times in a row (or its watchdog ran out).
    Unhealthy {
        /// The last failure (`GET http://127.0.0.1:8080/health: 503 after 12 ms`).
        detail: String,
    },
    /// A start waits for its dependencies (`after:`).
    Waiting {
        /// The dependencies that do not hold yet (`db (ready)`).
        waiting_for: Vec<String>,
    },
}

/// A change in one process, sent to every subscriber.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// The process name.
    pub name: String,
    /// The pid the change concerns (the one that exited, for an exit); 0 when there is none (a failed
    /// spawn, a change while not running).
    pub pid: i32,
    /// What changed; flattened into the JSON as `kind`, `old` and `new`.
    #[serde(flatten)]
    pub kind: EventKind,
    /// Set when the change is an exit.
    pub exit: Option<ExitInfo>,
    /// When the supervisor saw the change.
    pub time: DateTime<Local>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_status_once() {
        // The match has no catch-all: a new status fails to compile here until ALL has it.
        let place = |s: Status| match s {
            Status::Initial => 0,
            Status::Running => 1,
            Status::Stopping => 2,
            Status::Stopped => 3,
            Status::Completed => 4,
            Status::Failed => 5,
            Status::Backoff => 6,
            Status::Scheduled => 7,
            Status::Terminated => 8,
            Status::Waiting => 9,
        };
        assert_eq!(Status::ALL.len(), 10);
        for (i, &s) in Status::ALL.iter().enumerate() {
            assert_eq!(place(s), i, "{s} in its place");
        }
    }

    #[test]
    fn times_carry_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-12-04T09:41:39.123456789+00:00").unwrap();
        let text = time_text(&t.with_timezone(&Local));
        let back = DateTime::parse_from_rfc3339(&text).unwrap();
        assert_eq!(back.timestamp_millis(), t.timestamp_millis());
        assert!(text.contains(":39.123"), "{text}");
    }

    #[test]
    fn json_figures_carry_two_decimals() {
        let mut info = ProcessInfo::initial("web", "sleep 1");
        info.cpu_percent = 9.9961302780545;
        info.memory_mb = 12.345678;
        let json: serde_json::Value = serde_json::to_value(&info).unwrap();
        assert_eq!(json["cpu_percent"], serde_json::json!(10.0));
        assert_eq!(json["memory_mb"], serde_json::json!(12.35));
        let back: ProcessInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back.cpu_percent, 10.0);
    }
}
