//! processmanager: a process supervisor for Linux on actix, its socket daemon and its client library.
//!
//! Layout of this crate (the binaries and what they share):
//! - [`config`]: `pm.conf`, the daemon's YAML configuration, and its socket-derived defaults.
//! - [`paths`]: where a daemon keeps its files, all derived from its socket path (`S`, `S.d/...`).
//! - [`secret`]: the shared secret: given, read from a file, or generated and written to `S.d/secret`.
//! - [`argv`]: the original's single-dash long flags (`-socket`, `-name`) accepted beside `--socket`.
//! - [`listener`]: the Unix socket: stale-socket detection, mode 0600, the connection limit, and the
//!   accept loop that starts one `Session` actor (in `pm-actors`) per connection.
//! - [`http`]: the HTTP server (`--http`): the JSON API, browser sessions, Server-Sent Events and
//!   the OpenAPI document, on the same registry as the socket.
//! - [`client`]: the client library (async, tokio): connect, authenticate, send heroscript, read framed
//!   results. `pmclient` is a thin command line over it.
//! - `bin/processmanager.rs`: the daemon; `bin/pmclient.rs`: the command-line client.
//!
//! The other crates: `pm-protocol` (heroscript, typed commands, wire strings, the session state machine)
//! and `pm-actors` (ProcessActor, Registry, Session).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod argv;
pub mod client;
pub mod config;
pub mod http;
pub mod listener;
pub mod paths;
pub mod reload;
pub mod secret;
