//! One actor per managed process: its whole lifecycle, its status watcher, its logs.
//!
//! - [`ProcessActor`] owns one child (or one attached process); [`ProcessHandle`] wraps its address.
//! - [`messages`]: the contract. [`ProcessOptions`]: log directory, tick, output target, guard.
//! - [`GroupGuard`]: how non-detached children die with the daemon, even on SIGKILL (see its docs).
//! - [`Monitor`]: the status tick, one thread sampling every watched process tree (see its docs).
//! - `spawn`, `procfs`, `pidfd`, `logs`, `events`, `signal`: the pieces the actor is built of.
//! - [`descriptors`]: the daemon's descriptor table, grown once before it has threads, and the
//!   open-files limit its children get back.
//! - [`echo`]: captured lines to the daemon's stdout, `name | line` (`--log-stdout`).
//! - [`strays`]: the processes that left their group but carry its marker, found in /proc at a stop.
//! - [`hardening`]: what a program that starts processes does to itself first (no core dumps).

mod actor;
pub mod cgroup;
mod child;
mod clone_exec;
pub mod descriptors;
pub mod echo;
mod env_file;
mod events;
pub mod guard;
mod handle;
pub mod hardening;
pub mod limits;
pub(crate) mod liveness;
pub mod log_tail;
pub mod logs;
pub mod messages;
pub mod monitor;
mod options;
mod orphans;
mod pidfd;
mod probe;
pub mod procfs;
pub mod record;
pub mod signal;
mod spawn;
pub mod strays;
pub mod user;

pub use actor::ProcessActor;
pub use guard::GroupGuard;
pub use handle::ProcessHandle;
pub use messages::*;
pub use monitor::Monitor;
pub use options::{OutputTarget, ProcessOptions, START_DEADLINE};
pub use orphans::reap_orphans;

/// The start time of `pid` in clock ticks (field 22 of its stat): kept since its clone for a child of
/// ours, read from /proc for any other.
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    orphans::start_ticks(pid).or_else(|| procfs::read_stat(pid).ok().map(|s| s.start_time))
}
