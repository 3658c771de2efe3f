//! `!!process.stop name:x`: stop gracefully (stop signal, grace time, SIGKILL).

super::name_only_command!(
    /// Stop a process gracefully; it is not restarted.
    Stop,
    "process.stop"
);
