//! The registry: names to process actors, restart policies, cron schedules, templates, shutdown.

pub mod messages;

pub use messages::*;
