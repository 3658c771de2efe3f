//! Whether a pid still names the process recorded earlier: the same start time, and not yet exited.

use super::procfs::{self, Stat};

/// The stat of `pid` while it is a live process (not a zombie) that started at `start_ticks` (field 22
/// of its stat; any start time with `None`). `None` once it has exited, when its pid was recycled, or
/// when /proc cannot be read for it: a pid that answers `None` must not be signalled.
pub fn still_running(pid: i32, start_ticks: Option<u64>) -> Option<Stat> {
    procfs::read_stat(pid)
        .ok()
        .filter(|s| s.state != 'Z' && start_ticks.is_none_or(|t| t == s.start_time))
}
