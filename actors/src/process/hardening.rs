//! What a program that starts processes should do to itself at startup: no core dumps, and no other
//! user able to attach to it.
//!
//! Until its exec a child runs in the daemon's memory (see `clone_exec`), so a child that crashed
//! there, or a debugger attached to it, would see all of the daemon: its secret, every process's
//! environment. A process that is not dumpable writes no core file and only root may attach to it;
//! its children are dumpable again after their exec (the kernel sets the flag anew for a program
//! that is not set-user-ID). A child that switches to another user sets the flag back to 0 for the
//! memory it shares with the daemon, since the switch sets it to `fs.suid_dumpable`.

use std::io;

/// Makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): no core file, no attaching but
/// by root. The daemon calls it first thing; a program embedding the actors to start processes
/// should call it too.
pub fn no_core_dumps() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)
}

/// Whether this process is dumpable (`prctl(PR_GET_DUMPABLE)`).
pub fn is_dumpable() -> io::Result<bool> {
    nix::sys::prctl::get_dumpable().map_err(io::Error::from)
}
