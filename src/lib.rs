//! processmanager: a process supervisor for Linux on actix.
//!
//! - [`config`]: `pm.conf`, the daemon's YAML configuration, and its socket-derived defaults.

pub mod config;
