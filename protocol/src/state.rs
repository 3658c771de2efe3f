//! The state file (`state.json`): what a daemon keeps so that its processes survive its restart.
//!
//! One JSON document, written whole and atomically. Unknown fields are ignored and missing ones take
//! their defaults, so a newer daemon reads an older file; `version` changes only when a field changes
//! meaning.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;
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
    /// Its last run exited 0: what a dependent's `after:'<name>:completed'` waits for, kept so that
    /// a migration that ran before a daemon restart is not waited for again after it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub completed: bool,
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
            completed: false,
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

/// Writes states as [`SavedState::to_json`] does, serializing again only the processes that changed
/// since the previous call: between two writes of a burst of starts, a few of 1,000 change, and
/// serializing all of them each time was the writer's whole cost.
///
/// ```
/// use pm_protocol::state::{SavedProcess, SavedState, StateEncoder};
/// use pm_protocol::ProcessSpec;
/// let mut encoder = StateEncoder::default();
/// let mut state = SavedState::new(vec![SavedProcess::new(ProcessSpec::shell("web", "sleep 30"))]);
/// assert_eq!(encoder.encode(&state), state.to_json());
/// state.processes[0].wanted = true;
/// assert_eq!(encoder.encode(&state), state.to_json());
/// ```
#[derive(Debug, Default)]
pub struct StateEncoder {
    /// Each process as last encoded, by name: what was encoded, its JSON, and the call that last
    /// saw it. Updated in place: an unchanged process costs one lookup and a copy of its text.
    cache: HashMap<String, Encoded>,
    /// Calls so far.
    calls: u64,
    /// The length of the last document.
    last_len: usize,
}

#[derive(Debug)]
struct Encoded {
    process: SavedProcess,
    json: String,
    seen: u64,
}

impl StateEncoder {
    /// The file's text for `state`, equal to `state.to_json()`.
    pub fn encode(&mut self, state: &SavedState) -> String {
        // The document with no processes, ending in `[]}`: `processes` is its last field.
        let head = SavedState {
            version: state.version,
            saved_at: state.saved_at.clone(),
            daemon_pid: state.daemon_pid,
            processes: Vec::new(),
        }
        .to_json();
        let Some(head) = head.strip_suffix("[]}") else {
            return state.to_json();
        };
        self.calls += 1;
        let call = self.calls;
        // Room for the last document and some growth: a copy of the whole text per reallocation was a
        // third of the encoder's time in a burst of starts.
        let last = self.last_len;
        let mut out = String::with_capacity(head.len() + 2 + last + last / 4 + 4096);
        out.push_str(head);
        out.push('[');
        let mut seen = 0;
        for (i, p) in state.processes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Kept for as long as the process exists: without its growth room (up to half of it).
            let fresh = |p: &SavedProcess| {
                serde_json::to_string(p).ok().map(|mut json| {
                    json.shrink_to_fit();
                    json
                })
            };
            let entry = match self.cache.get_mut(&p.spec.name) {
                Some(e) if unchanged(&e.process, p) => e,
                Some(e) => {
                    let Some(json) = fresh(p) else {
                        return state.to_json();
                    };
                    e.process = p.clone();
                    e.json = json;
                    e
                }
                None => {
                    let Some(json) = fresh(p) else {
                        return state.to_json();
                    };
                    let encoded = Encoded {
                        process: p.clone(),
                        json,
                        seen: 0,
                    };
                    self.cache.entry(p.spec.name.clone()).or_insert(encoded)
                }
            };
            if entry.seen != call {
                entry.seen = call;
                seen += 1;
            }
            out.push_str(&entry.json);
        }
        out.push_str("]}");
        // Processes gone since the last call are forgotten.
        if self.cache.len() != seen {
            self.cache.retain(|_, e| e.seen == call);
        }
        self.last_len = out.len();
        out
    }
}

/// Whether `new` encodes as `old` did: the same shared definition (a definition never changes in
/// place) and the same everything else. Every field is named, so a new one cannot be forgotten here.
fn unchanged(old: &SavedProcess, new: &SavedProcess) -> bool {
    let SavedProcess {
        spec,
        wanted,
        restarts,
        skipped_runs,
        attached,
        gave_up,
        run,
        completed,
    } = new;
    Arc::ptr_eq(&old.spec, spec)
        && old.wanted == *wanted
        && old.restarts == *restarts
        && old.skipped_runs == *skipped_runs
        && old.attached == *attached
        && old.gave_up == *gave_up
        && old.run == *run
        && old.completed == *completed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::any_spec;
    use proptest::prelude::*;

    /// One change between two writes.
    #[derive(Debug, Clone)]
    enum Change {
        Add(ProcessSpec),
        Remove(usize),
        /// A new definition under an existing name (deleted and started again).
        Redefine(usize, ProcessSpec),
        Wanted(usize, bool),
        Restarts(usize, u64),
        Run(usize, Option<(i32, u64)>),
        GaveUp(usize, Option<String>),
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            any_spec().prop_map(Change::Add),
            any::<usize>().prop_map(Change::Remove),
            (any::<usize>(), any_spec()).prop_map(|(i, s)| Change::Redefine(i, s)),
            (any::<usize>(), any::<bool>()).prop_map(|(i, w)| Change::Wanted(i, w)),
            (any::<usize>(), any::<u64>()).prop_map(|(i, r)| Change::Restarts(i, r)),
            (any::<usize>(), proptest::option::of(any::<(i32, u64)>()))
                .prop_map(|(i, r)| Change::Run(i, r)),
            (any::<usize>(), proptest::option::of("[ -~]{0,12}"))
                .prop_map(|(i, g)| Change::GaveUp(i, g)),
        ]
    }

    fn apply(state: &mut SavedState, change: Change) {
        let n = state.processes.len();
        let at = |i: usize| i % n.max(1);
        match change {
            Change::Add(spec) => {
                if state.processes.iter().all(|p| p.spec.name != spec.name) {
                    state.processes.push(SavedProcess::new(spec));
                }
            }
            _ if n == 0 => {}
            Change::Remove(i) => {
                state.processes.remove(at(i));
            }
            Change::Redefine(i, mut spec) => {
                let p = &mut state.processes[at(i)];
                spec.name = p.spec.name.clone();
                *p = SavedProcess::new(spec);
            }
            Change::Wanted(i, w) => state.processes[at(i)].wanted = w,
            Change::Restarts(i, r) => state.processes[at(i)].restarts = r,
            Change::Run(i, r) => {
                state.processes[at(i)].run =
                    r.map(|(pid, start_ticks)| SavedRun { pid, start_ticks })
            }
            Change::GaveUp(i, g) => state.processes[at(i)].gave_up = g,
        }
    }

    proptest! {
        /// Whatever happens between writes, the encoder writes exactly what a whole serialization does.
        #[test]
        fn encoding_is_a_whole_serialization(
            batches in proptest::collection::vec(proptest::collection::vec(change(), 0..6), 1..12),
        ) {
            let mut encoder = StateEncoder::default();
            let mut state = SavedState::new(Vec::new());
            for batch in batches {
                for c in batch {
                    apply(&mut state, c);
                }
                state.saved_at = format!("t{}", state.processes.len());
                prop_assert_eq!(encoder.encode(&state), state.to_json());
            }
        }
    }
}
