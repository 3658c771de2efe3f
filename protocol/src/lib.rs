//! The processmanager protocol: plain data and functions, no async runtime, no actix.
//!
//! Layout:
//! - [`spec`]: what a process is ([`ProcessSpec`]): command, environment, logs, restarts, deadline, cron.
//! - [`status`]: what a process is doing ([`ProcessInfo`], [`Status`], [`KernelState`]) and the events
//!   that report changes ([`ProcessEvent`]).
//! - [`probe`]: readiness and health checks ([`Readiness`], [`Probe`], [`ProbeSettings`]).
//! - [`depend`]: dependencies between processes ([`Dependency`], `after:'db:ready'`).
//! - [`signal`]: the typed signal name ([`SignalName`]) of a stop signal.
//! - [`error`]: the typed error ([`PmError`]) shared by the library API and the socket.
//! - [`heroscript`]: the text grammar people type (`!!process.start name:'web' ...`).
//! - [`command`]: typed commands, one file per command, parsed from and rendered back to heroscript.
//! - [`session`]: the socket session's line state machine (secret, buffering, help, quit).
//! - [`response`]: the wire strings and framing (`**RESULT**` ... `**ENDRESULT**`), text and JSON bodies.
//! - [`cron`]: standard 5-field cron expressions converted for the `cron` crate, and next-fire times.
//! - [`template`]: the template file format (`<name>.json`, Ligato's keys plus ours) and its specs.
//! - [`state`]: the state file format (`state.json`): what survives a daemon restart.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod command;
pub mod cron;
pub mod depend;
pub mod error;
pub mod heroscript;
pub mod limits;
pub mod logs;
pub mod plan;
pub mod probe;
pub mod response;
pub mod session;
pub mod signal;
pub mod spec;
pub mod stack;
pub mod state;
pub mod status;
pub mod template;

pub use command::{Command, Format};
pub use depend::{Condition, Dependency};
pub use error::PmError;
pub use heroscript::ParseError;
pub use limits::ResourceLimits;
pub use logs::{LogLine, Stream};
pub use probe::{Health, Probe, ProbeSettings, Readiness};
pub use session::{SessionEvent, SessionMachine};
pub use signal::SignalName;
pub use spec::{CommandLine, LogSettings, ProcessSpec, RestartPolicy, RestartSettings};
pub use status::{EventKind, ExitInfo, KernelState, ProcessEvent, ProcessInfo, Status};
