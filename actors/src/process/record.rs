//! A process's status record: written by its actor, read in place by its registry.
//!
//! A list of every process used to ask each actor for a copy of its record: at 10,000 processes that
//! was 10,000 messages and replies, with every record cloned and moved through them, most of the
//! list's cost. The registry starts its process actors on its own arbiter, so an actor and its
//! registry run on one thread (the cell is behind an `Rc`: the compiler keeps both ends there), and
//! actors on one thread never run at once. The actor writes its record while it handles something; the
//! registry reads it while it handles something else; neither calls into the other. So the record is
//! one cell that both hold, read without a lock and copied only by the reader that needs a copy.
//!
//! The record's live fields (uptime, the monitor's latest CPU and memory, a log file's write error,
//! the cgroup's memory) are read from what [`Live`] holds whenever a copy is made, by the actor's own
//! status answer and by the registry's list alike ([`RecordReader::now`]).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pm_protocol::ProcessInfo;

use super::cgroup;
use super::logs::RotatingFile;
use super::monitor::LatestReading;

/// What the live fields of a copy are read from.
#[derive(Default)]
pub(crate) struct Live {
    /// When the current run started; `None` while there is no run.
    pub started: Option<Instant>,
    /// The monitor's latest reading of the current run's tree.
    pub latest: Option<LatestReading>,
    /// The log file, whose write error shows as the record's error.
    pub log_file: Option<Arc<Mutex<RotatingFile>>>,
}

struct Shared {
    info: ProcessInfo,
    live: Live,
}

/// The actor's end: the record, as a `ProcessInfo` it reads and writes in place.
pub(crate) struct Record {
    shared: Rc<UnsafeCell<Shared>>,
}

/// The registry's end: copies of the record as it is now.
#[derive(Clone)]
pub struct RecordReader {
    shared: Rc<UnsafeCell<Shared>>,
}

impl Record {
    pub(crate) fn new(info: ProcessInfo, live: Live) -> Record {
        Record {
            shared: Rc::new(UnsafeCell::new(Shared { info, live })),
        }
    }

    /// A reader for the registry.
    pub(crate) fn reader(&self) -> RecordReader {
        RecordReader {
            shared: Rc::clone(&self.shared),
        }
    }

    /// What the live fields are read from.
    pub(crate) fn live(&self) -> &Live {
        // SAFETY: see `deref`.
        unsafe { &(*self.shared.get()).live }
    }

    /// What the live fields are read from, to change it.
    pub(crate) fn live_mut(&mut self) -> &mut Live {
        // SAFETY: see `deref_mut`.
        unsafe { &mut (*self.shared.get()).live }
    }

    /// A copy of the record with its live fields read now.
    pub(crate) fn now(&self) -> ProcessInfo {
        // SAFETY: see `deref`.
        unsafe { &*self.shared.get() }.now()
    }
}

impl Deref for Record {
    type Target = ProcessInfo;

    fn deref(&self) -> &ProcessInfo {
        // SAFETY: the cell is only reached through this `Record` (one per actor, not `Clone`) and its
        // `RecordReader`s. The `Rc` keeps them all on one thread, and a reader's reference lives only
        // within `RecordReader::now`, which the registry calls while it handles a message: the actor is not
        // running then, and no reference from this `Record` outlives the actor's own handling of
        // something (it is tied to `&self`). So a shared reference here never meets a unique one.
        unsafe { &(*self.shared.get()).info }
    }
}

impl DerefMut for Record {
    fn deref_mut(&mut self) -> &mut ProcessInfo {
        // SAFETY: as in `deref`: `&mut self` makes this the only reference from the actor's side,
        // and no reader's reference is alive while the actor runs (one thread; `RecordReader::now` returns
        // before anything else runs on it).
        unsafe { &mut (*self.shared.get()).info }
    }
}

impl RecordReader {
    /// A copy of the record with its live fields read now.
    pub fn now(&self) -> ProcessInfo {
        // SAFETY: a shared reference for the length of this call, which runs to its end on the
        // registry's (or the actor's) thread without yielding; the actor, on the same thread (the
        // `Rc`), is not in the middle of anything meanwhile, so no unique reference exists (see
        // `Record::deref`).
        unsafe { &*self.shared.get() }.now()
    }

    /// Makes `out` a copy of the record with its live fields read now, reusing what `out` holds
    /// (a JSON list copies every record through one).
    pub fn copy_into(&self, out: &mut ProcessInfo) {
        // SAFETY: as in `now`.
        let shared = unsafe { &*self.shared.get() };
        out.copy_from(&shared.info);
        shared.live.read_into(out);
    }
}

impl Shared {
    fn now(&self) -> ProcessInfo {
        let mut info = self.info.clone();
        self.live.read_into(&mut info);
        info
    }
}

impl Live {
    /// The live fields of `info`.
    fn read_into(&self, info: &mut ProcessInfo) {
        if let Some(file) = &self.log_file {
            if let Some(err) = file.lock().ok().and_then(|f| f.error.clone()) {
                info.error = err;
            } else if info.error.starts_with("cannot write log file") {
                info.error.clear();
            }
        }
        if let Some(started) = self.started {
            info.uptime_secs = Some(started.elapsed().as_secs_f64());
            if let Some(s) = self.latest.as_ref().and_then(LatestReading::get) {
                info.cpu_percent = s.cpu_percent;
                info.memory_mb = s.rss_bytes as f64 / 1_048_576.0;
                info.cpu_seconds = s.cpu_seconds;
            }
        }
        // Only where the memory controller is on: elsewhere the files do not exist, and a list of
        // thousands would try to open two missing files for each process.
        if !info.cgroup.is_empty() && cgroup::tree().is_some_and(|t| t.has("memory")) {
            let path = std::path::Path::new(&info.cgroup);
            info.memory_current = std::fs::read_to_string(path.join("memory.current"))
                .ok()
                .and_then(|t| t.trim().parse().ok());
            info.oom_kills = cgroup::keyed_value(path, "memory.events", "oom_kill").unwrap_or(0);
        }
    }
}
