//! Starting a child with `fork` where the raw clone is not written (any architecture but x86_64 and
//! aarch64, or any with the cargo feature `portable-spawn`): the same plan, the same steps in the
//! child and the same report pipe as the clone, made with libc calls.
//!
//! What it costs: `fork` copies the daemon's page tables while the spawning thread waits, every page
//! the daemon writes until the child execs takes a copy-on-write fault, and the exec closes the
//! daemon's descriptors one by one (all of them are close-on-exec). A child borrows nothing of the
//! daemon's, so a launch never waits for a kit ([`kit_free`] is always true).
//!
//! Between fork and exec the child is a copy of the daemon with one thread, in which another
//! thread's lock (the allocator's, say) may be held for ever: it makes async-signal-safe calls only
//! and never allocates. What needs allocating (the `argv` and `envp` arrays) is built before the
//! fork; the rest it reads in place, in its copy of the plan. Unlike the clone's child it has its own
//! memory and its own `errno`, so plain libc calls are fine.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;

use super::{
    null_terminated, pipe_with, ChildFd, ChildStep, ExecPlan, Launch, Leader, SpawnFailure,
    FAILURE_BYTES,
};
use crate::process::{orphans, procfs};

/// Whether a launch could start a child now: always, as a forked child borrows nothing.
pub fn kit_free() -> bool {
    true
}

/// What the forked child reads: the plan, and what had to be built from it before the fork.
struct ForkArgs<'a> {
    plan: &'a ExecPlan,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// The report pipe's write end (close-on-exec).
    report: RawFd,
    daemon: libc::pid_t,
    /// The highest signal number, whose handler the child resets with the others.
    last_signal: libc::c_int,
}

/// Forks the child for `plan` and answers at once, while the child goes on to its exec on its own;
/// [`Launch::progress`] reads its report as it reads a cloned child's.
pub fn launch(plan: ExecPlan) -> Result<Launch, SpawnFailure> {
    let (report, report_w) = pipe_with(libc::O_NONBLOCK).map_err(SpawnFailure::Daemon)?;
    let args = ForkArgs {
        plan: &plan,
        argv: null_terminated(&plan.argv),
        envp: plan.envp.pointers(),
        report: report_w.as_raw_fd(),
        daemon: std::process::id() as libc::pid_t,
        last_signal: libc::SIGRTMAX(),
    };
    // Every signal is blocked on this thread so that the child starts with them blocked: no handler
    // of the daemon's may run in the child. The child resets the handlers before it unblocks them,
    // and this thread gets its own mask back right after.
    let old = set_signal_mask(&full_signal_set());
    // The orphan reaper must see the child listed as ours from the moment it exists.
    let mut own = orphans::own_children();
    let before = procfs::boot_ticks();
    // SAFETY: the child runs `child_main` only, which makes async-signal-safe calls, reads memory
    // that was built before the fork and never returns (it execs or exits).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child_main(&args);
    }
    let fork_error = io::Error::last_os_error();
    if pid > 0 {
        let after = procfs::boot_ticks();
        own.add(pid, procfs::clone_ticks(before, after));
    }
    drop(own);
    set_signal_mask(&old);
    drop(args);
    // Only the child's copy is left: the pipe ends at its exec or exit.
    drop(report_w);
    if pid < 0 {
        return Err(SpawnFailure::Daemon(fork_error));
    }
    Ok(Launch::forked(pid, report, plan))
}

/// A libc call's result as the child uses it: `Err(errno)` when it answered -1.
fn check(r: libc::c_int) -> Result<libc::c_int, i32> {
    if r == -1 {
        Err(Errno::last_raw())
    } else {
        Ok(r)
    }
}

/// Every signal.
fn full_signal_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is a valid value, which sigfillset then fills.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    set
}

/// No signal.
fn empty_signal_set() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is a valid value, which sigemptyset then clears.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    set
}

/// Sets this thread's signal mask; answers the old one. Async-signal-safe.
fn set_signal_mask(mask: &libc::sigset_t) -> libc::sigset_t {
    let mut old = empty_signal_set();
    // SAFETY: both are valid sigset_t.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, &mut old) };
    old
}

/// The child, from fork to exec; reports a failure on the pipe and exits.
fn child_main(a: &ForkArgs) -> ! {
    reset_signal_handlers(a.last_signal);
    let (step, errno) = match child_steps(a) {
        Err(failure) => failure,
        Ok(()) => {
            set_signal_mask(&empty_signal_set());
            #[cfg(test)]
            if a.plan.stop_before_exec {
                // SAFETY: stops this process, as the clone's child does for the same test.
                unsafe { libc::raise(libc::SIGSTOP) };
            }
            exec(a)
        }
    };
    // Everything blocked again: nothing may run between the report and the exit.
    set_signal_mask(&full_signal_set());
    let [e0, e1, e2, e3] = errno.to_ne_bytes();
    let record: [u8; FAILURE_BYTES] = [step as u8, e0, e1, e2, e3];
    // SAFETY: writes a local buffer to our pipe, then leaves without running anything of the
    // daemon's (no atexit handler, no stdio flush).
    unsafe {
        libc::write(a.report, record.as_ptr().cast(), record.len());
        libc::_exit(127)
    }
}

/// Resets every caught signal to its default (the daemon's handlers must not run here), and SIGPIPE,
/// which Rust programs ignore, as std does for its children. Ignored signals stay ignored.
fn reset_signal_handlers(last_signal: libc::c_int) {
    for sig in 1..=last_signal {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed sigaction is a valid value (SIG_DFL, no flags, an empty mask).
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: only reads the disposition into `old`; fails for numbers libc keeps to itself.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
            continue;
        }
        if sig == libc::SIGPIPE
            || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
        {
            // SAFETY: as above.
            let default: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: sets a valid disposition.
            unsafe { libc::sigaction(sig, &default, std::ptr::null_mut()) };
        }
    }
}

/// The child's steps before the exec, in the clone's order.
fn child_steps(a: &ForkArgs) -> Result<(), (ChildStep, i32)> {
    let step = |step: ChildStep| move |errno: i32| (step, errno);
    set_up_stdio(&a.plan.stdio).map_err(step(ChildStep::Stdio))?;
    if let Some(procs) = &a.plan.cgroup_procs {
        // SAFETY: opens a nul-terminated path; the descriptor is closed below.
        let fd = unsafe { libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        check(fd).map_err(step(ChildStep::Cgroup))?;
        // SAFETY: writes one byte from a local buffer to our descriptor (`0`: this process).
        let written = unsafe { libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) };
        // SAFETY: closes the descriptor opened above.
        unsafe { libc::close(fd) };
        check(written as libc::c_int).map_err(step(ChildStep::Cgroup))?;
    }
    let led = match a.plan.leader {
        // SAFETY: makes this process lead a group of its own.
        Leader::Group => unsafe { libc::setpgid(0, 0) },
        // SAFETY: makes this process lead a session of its own.
        Leader::Session => unsafe { libc::setsid() },
    };
    check(led).map_err(step(ChildStep::Leader))?;
    if let Some((soft, hard)) = a.plan.open_files {
        let limit = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: sets this process's own limit (the daemon's raised one stays) from a local value.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) })
            .map_err(step(ChildStep::Limits))?;
    }
    if let Some(who) = &a.plan.run_as {
        // SAFETY: `groups` holds `len` ids. This process has one thread, so libc's switch is its own.
        check(unsafe { libc::setgroups(who.groups.len() as _, who.groups.as_ptr()) })
            .map_err(step(ChildStep::User))?;
        // SAFETY: as above.
        check(unsafe { libc::setgid(who.gid) }).map_err(step(ChildStep::User))?;
        // SAFETY: as above.
        check(unsafe { libc::setuid(who.uid) }).map_err(step(ChildStep::User))?;
        // Unlike the clone's child, this one has memory of its own: whatever the switch did to its
        // dumpable flag leaves the daemon's be, and the exec sets it anew.
    }
    // After any user switch, which clears it.
    if a.plan.die_with_parent {
        // SAFETY: sets this process's parent-death signal.
        check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) })
            .map_err(step(ChildStep::ParentDeath))?;
        // SAFETY: a query of this process.
        if unsafe { libc::getppid() } != a.daemon {
            return Err((ChildStep::ParentDeath, libc::ESRCH));
        }
    }
    if let Some(cwd) = &a.plan.cwd {
        // SAFETY: a NUL-terminated path the plan holds.
        check(unsafe { libc::chdir(cwd.as_ptr()) }).map_err(step(ChildStep::Cwd))?;
    }
    Ok(())
}

/// Points 0, 1 and 2 where the plan says, and marks every other descriptor close-on-exec, so that
/// the program gets what a cloned child gets: 0, 1 and 2 only.
fn set_up_stdio(stdio: &[ChildFd; 3]) -> Result<(), i32> {
    let mut devnull = -1;
    let mut sources = [-1; 3];
    for (source, fd) in sources.iter_mut().zip(stdio) {
        *source = match fd {
            ChildFd::Inherit => -1,
            ChildFd::Fd(fd) => fd.as_raw_fd(),
            ChildFd::Null => {
                if devnull < 0 {
                    // SAFETY: opens a constant NUL-terminated path.
                    devnull = check(unsafe {
                        libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC)
                    })?;
                }
                devnull
            }
        };
    }
    // A source among 0-2 moves above them first: copying another onto its number would lose it.
    for source in sources.iter_mut().filter(|s| (0..3).contains(*s)) {
        // SAFETY: a new descriptor for an open one.
        *source = check(unsafe { libc::fcntl(*source, libc::F_DUPFD_CLOEXEC, 3) })?;
    }
    for (target, &source) in (0..).zip(&sources) {
        if source >= 0 {
            // SAFETY: both are descriptors of this process; dup2 clears close-on-exec on `target`.
            check(unsafe { libc::dup2(source, target) })?;
        }
    }
    // A kernel before this flag leaves each descriptor's own flag to decide, as std's children do.
    let above_stdio: libc::c_uint = 3;
    // SAFETY: sets a flag on descriptors of this process only.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            above_stdio,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    Ok(())
}

/// Tries each candidate path in turn, as execvp does: goes on past a directory where the program is
/// missing and remembers a permission error. Returns only on failure.
fn exec(a: &ForkArgs) -> (ChildStep, i32) {
    let candidates = &a.plan.candidates;
    let mut errno = libc::ENOENT;
    let mut denied = false;
    for path in candidates {
        // SAFETY: NUL-terminated path, and null-terminated arrays of pointers into the plan.
        unsafe { libc::execve(path.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr()) };
        errno = Errno::last_raw();
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => break,
        }
    }
    if denied && errno != libc::EACCES && candidates.len() > 1 {
        errno = libc::EACCES;
    }
    (ChildStep::Exec, errno)
}
