//! `!!process.kill name:x`: SIGKILL to the process group.

super::name_only_command!(
    /// SIGKILL the process group at once; it is not restarted.
    Kill,
    "process.kill"
);
