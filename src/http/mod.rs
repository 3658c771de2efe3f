//! The daemon's HTTP server and its routes.

pub mod metrics;
