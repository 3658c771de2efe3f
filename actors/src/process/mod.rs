//! One actor per managed process: its whole lifecycle, its status watcher, its logs.

pub mod messages;

pub use messages::*;
