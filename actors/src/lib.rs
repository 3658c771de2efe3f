//! The processmanager actors.
//!
//! Layout:
//! - [`process`]: one `ProcessActor` per managed process. It alone touches its child: spawn, stop with
//!   grace, kill, signal, wait, reap, the periodic status tick (/proc), logs, deadline, notifications.
//! - [`registry`]: the `Registry` actor: names to process actors, restart policies with backoff, cron
//!   schedules, templates, shutdown. It is also the in-process Rust API.
//! - [`session`]: one `Session` actor per socket connection: the secret, then heroscript turned into
//!   registry messages, framed results written back.
//! - [`counters`]: the daemon's request and connection counters (atomics), read by the metrics
//!   endpoint.

#![warn(missing_docs)]

pub mod counters;
pub mod process;
pub mod registry;
pub mod session;
