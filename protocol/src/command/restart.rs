//! `!!process.restart name:x`: stop (if alive) and start again.

super::name_only_command!(
    /// Stop a process (if alive) and start it again.
    Restart,
    "process.restart"
);
