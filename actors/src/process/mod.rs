//! One actor per managed process: its whole lifecycle, its status watcher, its logs.
//!
//! - [`ProcessActor`] owns one child (or one attached process); [`ProcessHandle`] wraps its address.
//! - [`messages`]: the contract. [`ProcessOptions`]: log directory, tick, output target, guard.
//! - [`GroupGuard`]: how non-detached children die with the daemon, even on SIGKILL (see its docs).
//! - [`Monitor`]: the status tick, one thread sampling every watched process tree (see its docs).
//! - `spawn`, `procfs`, `pidfd`, `logs`, `events`, `signal`: the pieces the actor is built of.
//! - [`descriptors`]: the daemon's descriptor table, grown once before it has threads.

mod actor;
mod child;
mod clone_exec;
pub mod descriptors;
mod events;
pub mod guard;
mod handle;
pub mod log_tail;
pub mod logs;
pub mod messages;
pub mod monitor;
mod options;
mod orphans;
mod pidfd;
pub mod procfs;
mod raw;
pub mod signal;
mod spawn;
pub mod user;

pub use actor::ProcessActor;
pub use guard::GroupGuard;
pub use handle::ProcessHandle;
pub use messages::*;
pub use monitor::Monitor;
pub use options::{OutputTarget, ProcessOptions};
pub use orphans::reap_orphans;
