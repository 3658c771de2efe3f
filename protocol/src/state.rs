//! The state file (`state.json`): what a daemon keeps so that its processes survive its restart.
//!
//! One JSON document, written whole and atomically. Unknown fields are ignored and missing ones take
//! their defaults, so a newer daemon reads an older file; `version` changes only when a field changes
//! meaning.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::spec::ProcessSpec;

/// The format version this crate writes.
pub const STATE_VERSION: u32 = 1;

/// The whole state file.
///
/// ```
/// use pm_protocol::state::{SavedProcess, SavedRun, SavedState};
/// use pm_protocol::ProcessSpec;
/// let mut state = SavedState::new(Vec::new());
/// state.processes.push(SavedProcess {
///     wanted: true,
///     run: Some(SavedRun { pid: 4242, start_ticks: 123_456 }),
///     ..SavedProcess::new(ProcessSpec::shell("web", "sleep 30"))
/// });
/// let back = SavedState::from_json(&state.to_json()).unwrap();
/// assert_eq!(back, state);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedState {
    /// [`STATE_VERSION`] when written.
    pub version: u32,
    /// When it was written (RFC 3339, the daemon's local time); for people reading the file.
    #[serde(default)]
    pub saved_at: String,
    /// The daemon that wrote it; for people reading the file.
    #[serde(default)]
    pub daemon_pid: u32,
    /// Every defined process, sorted by name.
    #[serde(default)]
    pub processes: Vec<SavedProcess>,
}

/// One defined process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProcess {
    /// Its definition, with the daemon's defaults applied. Shared with the daemon's own record, so
    /// that a snapshot of 1,000 processes copies 1,000 pointers, not 1,000 definitions.
    pub spec: Arc<ProcessSpec>,
    /// It should be running (or, with a cron schedule, scheduled): not stopped by a user, not given up.
    #[serde(default)]
    pub wanted: bool,
    /// Automatic restarts so far.
    #[serde(default)]
    pub restarts: u64,
    /// Cron fires skipped because the previous run was still going.
    #[serde(default)]
    pub skipped_runs: u64,
    /// Adopted with `attach` rather than started by the daemon (never restarted).
    #[serde(default)]
    pub attached: bool,
    /// Why the restarts stopped (`gave up after N restarts, ...`), if they did.
    #[serde(default)]
    pub gave_up: Option<String>,
    /// The current run, if one is alive.
    #[serde(default)]
    pub run: Option<SavedRun>,
}

impl SavedProcess {
    /// A process that is defined and nothing more: not wanted, never run.
    pub fn new(spec: impl Into<Arc<ProcessSpec>>) -> Self {
        SavedProcess {
            spec: spec.into(),
            wanted: false,
            restarts: 0,
            skipped_runs: 0,
            attached: false,
            gave_up: None,
            run: None,
        }
    }
}

/// A live run: its pid and what makes that pid this very process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRun {
    /// The process id.
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat`: the start time after boot, in clock ticks. A pid with another
    /// start time is another process (the pid was reused) and is never touched.
    pub start_ticks: u64,
}

impl SavedState {
    /// A state of `processes`, stamped with the current version, time and pid.
    pub fn new(processes: Vec<SavedProcess>) -> Self {
        SavedState {
            version: STATE_VERSION,
            saved_at: chrono::Local::now().to_rfc3339(),
            daemon_pid: std::process::id(),
            processes,
        }
    }

    /// The file's text: compact, since it is rewritten whole on every change (`jq .` shows it).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            // Plain data always serializes; keep a valid document should that ever change.
            format!("{{\"version\":{STATE_VERSION},\"error\":\"{e}\"}}")
        })
    }

    /// Parses the file's text; a newer version than this crate knows is refused.
    ///
    /// ```
    /// use pm_protocol::state::SavedState;
    /// assert!(SavedState::from_json("{\"version\":1}").unwrap().processes.is_empty());
    /// assert!(SavedState::from_json("{\"version\":99}").is_err());
    /// assert!(SavedState::from_json("{ torn").is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<SavedState, String> {
        let state: SavedState = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if state.version > STATE_VERSION {
            return Err(format!(
                "written by a newer daemon (format version {}, this one reads up to {STATE_VERSION})",
                state.version
            ));
        }
        Ok(state)
    }
}
