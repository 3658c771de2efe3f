//! `!!process.delete name:x`: stop (if alive) and forget the process.

super::name_only_command!(
    /// Stop a process (if alive) and forget it; its log file stays.
    Delete,
    "process.delete"
);
