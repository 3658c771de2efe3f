//! The definition of a managed process: everything needed to (re)start it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::depend::Dependency;
use crate::limits::ResourceLimits;
use crate::probe::ProbeSettings;
use crate::signal::SignalName;

/// How the process is launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// A command line run with `sh -c` (may span several lines).
    Shell(String),
    /// A program (looked up in PATH) and its arguments, run directly.
    Exec {
        /// The program: a name looked up in PATH, or a path.
        program: String,
        /// Its arguments, each passed as is (no shell quoting or expansion).
        args: Vec<String>,
    },
}

impl CommandLine {
    /// The command as a person would read it (the `command` field of status and list): the shell line
    /// as is, or the program and its arguments joined with spaces (not quoted, so not always re-runnable).
    ///
    /// ```
    /// use pm_protocol::CommandLine;
    /// let c = CommandLine::Exec { program: "sleep".into(), args: vec!["5".into()] };
    /// assert_eq!(c.display(), "sleep 5");
    /// ```
    pub fn display(&self) -> String {
        match self {
            CommandLine::Shell(s) => s.clone(),
            CommandLine::Exec { program, args } => {
                let mut out = program.clone();
                for a in args {
                    out.push(' ');
                    out.push_str(a);
                }
                out
            }
        }
    }
}

/// When a process that ended by itself is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart (the default when no restart count is given).
    #[default]
    Never,
    /// Restart after a non-zero exit or a death by signal.
    OnFailure,
    /// Restart after any exit.
    Always,
}

/// Automatic restarts after the process ends by itself (never after a user's stop, kill or delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartSettings {
    /// Which exits lead to a restart.
    pub policy: RestartPolicy,
    /// How many automatic restarts; `-1` is unlimited.
    pub max_restarts: i64,
    /// First delay after the immediate first restart, in milliseconds; doubles up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    /// The longest delay between two automatic restarts, in milliseconds.
    pub backoff_max_ms: u64,
    /// Up this long (in milliseconds) and the backoff (and the consecutive-restart count) resets.
    pub reset_after_ms: u64,
}

impl Default for RestartSettings {
    fn default() -> Self {
        RestartSettings {
            policy: RestartPolicy::Never,
            max_restarts: 0,
            backoff_initial_ms: 100,
            backoff_max_ms: 30_000,
            reset_after_ms: 10_000,
        }
    }
}

/// Where the output of a process goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    /// Capture stdout and stderr (to the log file and the in-memory ring). Off: output is discarded.
    pub enabled: bool,
    /// Rotate the log file when it grows past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files to keep (`name.log.1` ... `name.log.N`).
    pub keep_files: u32,
    /// Lines kept in memory for `process.logs`.
    pub ring_lines: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            enabled: false,
            max_bytes: 10 * 1024 * 1024,
            keep_files: 5,
            ring_lines: 1000,
        }
    }
}

/// Everything needed to start (and restart) one managed process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// The unique process name (see [`validate_name`]); also names its log and template files.
    pub name: String,
    /// What to run.
    pub command: CommandLine,
    /// Variables added to the daemon's environment (or replacing it, with `env_clear`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Start from an empty environment (only `env`) instead of the daemon's.
    #[serde(default)]
    pub env_clear: bool,
    /// Dotenv files read at each start, in order (a later file wins); `env` wins over every file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<PathBuf>,
    /// The working directory; `None` is the daemon's own.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Output capture and log rotation.
    #[serde(default)]
    pub log: LogSettings,
    /// Automatic restarts after the process ends by itself.
    #[serde(default)]
    pub restart: RestartSettings,
    /// Lead its own session, write output to files, and outlive the daemon.
    #[serde(default)]
    pub detach: bool,
    /// Seconds after each start at which the process gets the stop sequence; `None` for no deadline.
    #[serde(default)]
    pub deadline_secs: Option<u64>,
    /// A cron expression (5 fields, or 6 with seconds first); the process is then scheduled, not started.
    #[serde(default)]
    pub cron: Option<String>,
    /// A caller's label, echoed in status and as the job id of `start`'s result frame.
    #[serde(default)]
    pub job_id: Option<String>,
    /// The signal a stop sends first (a name such as `TERM` or `SIGTERM`, or a number).
    #[serde(default)]
    pub stop_signal: SignalName,
    /// Grace time between the stop signal and SIGKILL, in milliseconds.
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// Run as this user (the daemon must be root); `None` keeps the daemon's user.
    #[serde(default)]
    pub user: Option<String>,
    /// Run with this group (the daemon must be root); `None` keeps the default group.
    #[serde(default)]
    pub group: Option<String>,

    // Readiness and health (issue 14, part D).
    /// Readiness, health checks and the watchdog (`ready`, `health`, ... options).
    #[serde(default, skip_serializing_if = "ProbeSettings::is_default")]
    pub probes: ProbeSettings,

    // Dependencies (issue 14, part E).
    /// What must hold before a start runs (`after:'db'`, `after:'migrate:completed'`), in order: the
    /// process is `waiting` until each dependency has reached its condition.
    ///
    /// ```
    /// use pm_protocol::{Condition, Dependency, ProcessSpec};
    /// let mut web = ProcessSpec::shell("web", "./web");
    /// web.after = vec![
    ///     Dependency::new("migrate", Condition::Completed),
    ///     Dependency::parse("db").unwrap(), // ready, the default condition
    /// ];
    /// web.restart_with = true;
    /// assert_eq!(web.after[1].describe(), "db (ready)");
    /// ```
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Dependency>,
    /// Restart this process (when it runs) after a dependency of [`ProcessSpec::after`] restarts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_with: bool,
    // Containment and limits (issue 18).
    /// Memory, CPU and process limits, written to the process's cgroup.
    #[serde(default, skip_serializing_if = "ResourceLimits::is_none")]
    pub limits: ResourceLimits,
}

fn default_grace_ms() -> u64 {
    10_000
}

impl ProcessSpec {
    /// A spec with defaults for everything but the name and a `sh -c` command line. The name is not
    /// checked here (see [`validate_name`]).
    ///
    /// ```
    /// use pm_protocol::{CommandLine, ProcessSpec};
    /// let mut spec = ProcessSpec::shell("ticker", "while true; do date; sleep 1; done");
    /// spec.log.enabled = true;
    /// assert_eq!(spec.command, CommandLine::Shell("while true; do date; sleep 1; done".into()));
    /// assert_eq!((spec.stop_signal.as_str(), spec.grace_ms), ("SIGTERM", 10_000));
    /// assert_eq!(spec.restart.max_restarts, 0); // never restarted unless asked
    /// ```
    pub fn shell(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self::new(name, CommandLine::Shell(command.into()))
    }

    /// A spec with defaults for everything but the name and a program run directly (looked up in PATH,
    /// no shell). The name is not checked here (see [`validate_name`]).
    ///
    /// ```
    /// use pm_protocol::{CommandLine, ProcessSpec, RestartPolicy};
    /// let mut spec = ProcessSpec::exec("web", "python3", ["-m", "http.server", "8080"]);
    /// spec.restart.policy = RestartPolicy::OnFailure;
    /// spec.restart.max_restarts = -1;
    /// assert_eq!(spec.command.display(), "python3 -m http.server 8080");
    /// assert!(matches!(&spec.command, CommandLine::Exec { args, .. } if args.len() == 3));
    /// ```
    pub fn exec<I, S>(name: impl Into<String>, program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            name,
            CommandLine::Exec {
                program: program.into(),
                args: args.into_iter().map(Into::into).collect(),
            },
        )
    }

    fn new(name: impl Into<String>, command: CommandLine) -> Self {
        ProcessSpec {
            name: name.into(),
            command,
            env: BTreeMap::new(),
            env_clear: false,
            env_files: Vec::new(),
            cwd: None,
            log: LogSettings::default(),
            restart: RestartSettings::default(),
            detach: false,
            deadline_secs: None,
            cron: None,
            job_id: None,
            stop_signal: SignalName::TERM,
            grace_ms: default_grace_ms(),
            user: None,
            group: None,
            probes: ProbeSettings::default(),
            after: Vec::new(),
            restart_with: false,
            limits: ResourceLimits::default(),
        }
    }
}

/// Checks a process name: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, and not `.` or `..` (a name
/// becomes a file name). A bad name is [`PmError::InvalidName`](crate::PmError::InvalidName).
///
/// ```
/// use pm_protocol::{spec::validate_name, PmError};
/// assert!(validate_name("web-1.worker_2").is_ok());
/// assert_eq!(validate_name("../etc"), Err(PmError::InvalidName("../etc".into())));
/// assert!(validate_name("").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<(), crate::PmError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::PmError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["web", "a", "web-1.worker_2", &"x".repeat(64)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "../etc", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
