//! One cgroup v2 per managed process: the daemon's subtree, found once at startup ([`discover`]), and
//! what the actors do with a process's cgroup (create, signal, kill, wait until empty, remove).
//!
//! Why: a program that calls `setsid()` or daemonizes itself leaves its process group, so a stop by
//! group misses it. A cgroup holds every descendant, whatever group or session it moves to, and the
//! kernel tells when it is empty (`cgroup.events`). Where no writable cgroup v2 exists the daemon runs
//! as before, in process groups, and says so (`containment: group`).

mod discover;
mod kill;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use discover::{discover, Mode};
pub use kill::{kill_all, populated, procs, signal_all, wait_empty};

/// The daemon's subtree in a writable cgroup v2 hierarchy.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The subtree's folder, e.g. `/sys/fs/cgroup/unified/processmanager-1a2b3c4d`.
    pub root: PathBuf,
    /// The controllers enabled for the subtree's children (`memory`, `cpu`, `pids`, ...).
    pub controllers: Vec<String>,
    /// The hierarchy's mount point, named in the sentences that refuse a limit.
    pub mount: PathBuf,
    /// Whether v1 hierarchies hold controllers here (a hybrid machine), named in those sentences too.
    pub hybrid: bool,
}

/// The branch of the processes the guard kills with the daemon.
const GUARDED: &str = "guarded";
/// The branch of detached processes.
const DETACHED: &str = "detached";

static TREE: OnceLock<Option<Tree>> = OnceLock::new();

/// Sets the daemon's subtree (or none: group mode) once, at startup; later calls change nothing.
pub fn init(tree: Option<Tree>) {
    let _ = TREE.set(tree);
}

/// The daemon's subtree, when it runs in cgroup mode.
pub fn tree() -> Option<&'static Tree> {
    TREE.get().and_then(|t| t.as_ref())
}

impl Tree {
    /// The folder of the cgroups of detached processes (which outlive the daemon) or of the others
    /// (which the group guard kills at once through its `cgroup.kill` when the daemon dies).
    pub fn branch(&self, detached: bool) -> PathBuf {
        self.root.join(if detached { DETACHED } else { GUARDED })
    }

    /// The cgroup of process `name` (not created): its name with `/` and a leading `.` made harmless.
    pub fn path_for(&self, name: &str, detached: bool) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| if c == '/' || c == '\0' { '_' } else { c })
            .collect();
        let safe = match safe.as_str() {
            "." | ".." => format!("_{safe}"),
            _ if safe.starts_with("cgroup.") => format!("_{safe}"),
            _ => safe,
        };
        self.branch(detached).join(safe)
    }

    /// Creates process `name`'s cgroup (an existing one is kept: an adopted process is in it).
    pub fn create(&self, name: &str, detached: bool) -> io::Result<PathBuf> {
        let path = self.path_for(name, detached);
        match std::fs::create_dir(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(path),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot create cgroup {}: {e}", path.display()),
            )),
        }
    }

    /// Whether `controller` is enabled for the processes' cgroups.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// Removes the empty cgroups of the subtree: those of processes gone while the daemon was away
    /// (an adopted process keeps its cgroup populated; a start creates its cgroup anew).
    pub fn remove_empty(&self) {
        for branch in [self.branch(false), self.branch(true)] {
            let Ok(dir) = std::fs::read_dir(&branch) else {
                continue;
            };
            for entry in dir.flatten() {
                let path = entry.path();
                if path.is_dir() && !populated(&path) {
                    let _ = remove(&path);
                }
            }
        }
    }
}

/// Removes an empty cgroup; a missing one is already removed.
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A cgroup file's first line with `key value` pairs: the value of `key` (`cpu.stat`, `memory.events`).
pub fn keyed_value(path: &Path, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path.join(file)).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests;
