//! One cgroup v2 per managed process: the daemon's subtree, found once at startup ([`discover`]), and
//! what the actors do with a process's cgroup (create, signal, kill, wait until empty, remove).
//!
//! Why: a program that calls `setsid()` or daemonizes itself leaves its process group, so a stop by
//! group misses it. A cgroup holds every descendant, whatever group or session it moves to, and the
//! kernel tells when it is empty (`cgroup.events`). Where no writable cgroup v2 exists the daemon runs
//! as before, in process groups, and says so (`containment: group`).

mod discover;
mod kill;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};

use pm_protocol::ResourceLimits;

pub use discover::{discover, place, Mode, Place};
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

static TREE: OnceLock<Result<Tree, String>> = OnceLock::new();

/// Sets the daemon's subtree, or why it has none (group mode), once, at startup; later calls
/// change nothing.
pub fn init(found: Result<Tree, String>) {
    let _ = TREE.set(found);
}

/// The daemon's subtree, when it runs in cgroup mode.
pub fn tree() -> Option<&'static Tree> {
    TREE.get().and_then(|t| t.as_ref().ok())
}

/// Why a limit of `limits` cannot be had here: the sentence that refuses the start, naming the
/// missing controller and why it is missing; `None` when every limit can be written.
pub fn refusal(limits: &ResourceLimits) -> Option<String> {
    let (option, controller) = limits
        .needs()
        .into_iter()
        .find(|(_, c)| tree().is_none_or(|t| !t.has(c)))?;
    let tree = match TREE.get() {
        Some(Ok(tree)) => tree,
        Some(Err(why)) => {
            return Some(format!(
                "{option} needs a cgroup v2 {controller} controller, and this daemon runs \
                 without cgroups: {why}"
            ))
        }
        None => {
            return Some(format!(
                "{option} needs a cgroup v2 {controller} controller, and this daemon runs \
                 without cgroups"
            ))
        }
    };
    let parent = tree.root.parent().unwrap_or(&tree.root);
    let offered = std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
    let why = if tree.hybrid && !offered.split_whitespace().any(|c| c == controller) {
        " (it is on the v1 hierarchy here)".to_string()
    } else if offered.split_whitespace().any(|c| c == controller) {
        format!(
            " (it could not be enabled in {}: a cgroup that holds processes cannot hand \
             controllers to its children)",
            parent.display()
        )
    } else {
        String::new()
    };
    Some(format!(
        "{option} needs the cgroup v2 {controller} controller, which is not enabled in {}{why}",
        tree.mount.display()
    ))
}

/// Writes `limits` to the cgroup at `path` (each to its file; an unset one back to `max`).
pub fn write_limits(path: &Path, limits: &ResourceLimits) -> io::Result<()> {
    let max = |v: Option<u64>| v.map_or("max".to_string(), |n| n.to_string());
    let writes = [
        ("memory", "memory.max", max(limits.memory_max)),
        ("memory", "memory.high", max(limits.memory_high)),
        (
            "cpu",
            "cpu.max",
            limits
                .cpu_max
                .map_or("max 100000".to_string(), pm_protocol::limits::cpu_max_line),
        ),
        ("pids", "pids.max", max(limits.pids_max)),
    ];
    for (controller, file, value) in writes {
        if !path.join(file).exists() {
            // Its controller is off: only a limit that is set needs it (see `refusal`).
            let _ = controller;
            continue;
        }
        std::fs::write(path.join(file), &value).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write {value} to {}: {e}", path.join(file).display()),
            )
        })?;
    }
    Ok(())
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

    /// Creates process `name`'s cgroup (an existing one is kept: an adopted process is in it) and
    /// makes the caller its owner, answering the owner's token (see [`release`]) and whether the
    /// cgroup is new (its limits are then the kernel's defaults, none).
    pub fn create(&self, name: &str, detached: bool) -> io::Result<(PathBuf, u64, bool)> {
        let path = self.path_for(name, detached);
        let mut owners = owners();
        let made = match std::fs::create_dir(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create cgroup {}: {e}", path.display()),
                ))
            }
        };
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        owners.insert(path.clone(), token);
        Ok((path, token, made))
    }

    /// Makes the caller the owner of process `name`'s existing cgroup (an adopted process's).
    pub fn adopt(&self, name: &str, detached: bool) -> Option<(PathBuf, u64)> {
        let path = self.path_for(name, detached);
        let mut owners = owners();
        path.is_dir().then(|| {
            let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
            owners.insert(path.clone(), token);
            (path, token)
        })
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

impl Tree {
    /// At the daemon's exit: removes its subtree, or as much of it as is empty (detached processes
    /// that live on keep their cgroups, and so the subtree).
    /// The cgroups killed by the shutdown empty within milliseconds: it waits up to 100 ms for them.
    pub fn remove_if_empty(&self) {
        for _ in 0..20 {
            self.remove_empty();
            for dir in [self.branch(false), self.branch(true), self.root.clone()] {
                let _ = std::fs::remove_dir(dir);
            }
            if !self.branch(false).exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// Who owns each cgroup: the token of the actor that last created or adopted it. A process deleted
/// and defined again at once (a stack's changed process) has two actors for one cgroup for a moment:
/// the old one's [`release`] must then neither kill nor remove what the new one started.
static OWNERS: LazyLock<Mutex<HashMap<PathBuf, u64>>> = LazyLock::new(Default::default);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn owners() -> MutexGuard<'static, HashMap<PathBuf, u64>> {
    OWNERS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The owner `token` lets go of the cgroup at `path`: with `kill`, what is left in it is killed, and
/// the cgroup is removed once the kernel has emptied it, on a thread of its own. Nothing is done once
/// another owner has taken the cgroup.
pub fn release(path: PathBuf, token: u64, kill: bool) {
    let mine = move |owners: &HashMap<PathBuf, u64>, path: &Path| owners.get(path) == Some(&token);
    {
        let owners = owners();
        if !mine(&owners, &path) {
            return;
        }
        if kill {
            kill_all(&path);
        }
    }
    let _ = std::thread::Builder::new()
        .name("pm-cgroup".into())
        .spawn(move || {
            // EBUSY while the killed processes finish exiting: a few ms at most.
            for _ in 0..400 {
                let mut owners = owners();
                if !mine(&owners, &path) {
                    return;
                }
                match remove(&path) {
                    Ok(()) => {
                        owners.remove(&path);
                        return;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                    Err(e) => {
                        tracing::warn!("cannot remove cgroup {}: {e}", path.display());
                        return;
                    }
                }
                drop(owners);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
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
