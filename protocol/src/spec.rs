//! The definition of a managed process: everything needed to (re)start it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the process is launched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// A command line run with `sh -c` (may span several lines).
    Shell(String),
    /// A program (looked up in PATH) and its arguments, run directly.
    Exec { program: String, args: Vec<String> },
}

impl CommandLine {
    /// The command as a person would read it (the `command` field of status and list).
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
    pub policy: RestartPolicy,
    /// How many automatic restarts; `-1` is unlimited.
    pub max_restarts: i64,
    /// First delay after the immediate first restart; doubles up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// Up this long and the backoff (and the consecutive-restart count) resets.
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
    pub name: String,
    pub command: CommandLine,
    /// Variables added to the daemon's environment (or replacing it, with `env_clear`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub env_clear: bool,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub restart: RestartSettings,
    /// Lead its own session, write output to files, and outlive the daemon.
    #[serde(default)]
    pub detach: bool,
    /// Seconds after a start at which the process gets the stop sequence.
    #[serde(default)]
    pub deadline_secs: Option<u64>,
    /// A cron expression (5 fields, or 6 with seconds first); the process is then scheduled, not started.
    #[serde(default)]
    pub cron: Option<String>,
    #[serde(default)]
    pub job_id: Option<String>,
    /// The signal a stop sends first (a name such as `TERM` or `SIGTERM`, or a number).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    /// Grace time between the stop signal and SIGKILL, in milliseconds.
    #[serde(default = "default_grace_ms")]
    pub grace_ms: u64,
    /// Run as this user and group (the daemon must be root).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

fn default_stop_signal() -> String {
    "SIGTERM".to_string()
}

fn default_grace_ms() -> u64 {
    10_000
}

impl ProcessSpec {
    /// A spec with defaults for everything but the name and a `sh -c` command line.
    pub fn shell(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self::new(name, CommandLine::Shell(command.into()))
    }

    /// A spec with defaults for everything but the name and a program run directly.
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
            cwd: None,
            log: LogSettings::default(),
            restart: RestartSettings::default(),
            detach: false,
            deadline_secs: None,
            cron: None,
            job_id: None,
            stop_signal: default_stop_signal(),
            grace_ms: default_grace_ms(),
            user: None,
            group: None,
        }
    }
}

/// Checks a process name: 1 to 64 of letters, digits, `-`, `_`, `.` (a name becomes a file name).
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
