//! The child's code from clone to exec: raw system calls only, no allocation, no lock, no libc, no panic.
//!
//! Everything here runs on a kit's stack in the daemon's memory, beside the daemon's threads and with
//! the thread pointer of the thread that cloned it (see [`super`]): a lock could be held by a daemon
//! thread, the allocator is the daemon's, and libc writes that thread's `errno`. So every function
//! here makes its calls through [`super::raw`], reads only what [`ChildArgs`] points at, and returns
//! its failures as values. [`set_signal_mask`] is called by the daemon too, around the clone.

use std::os::fd::RawFd;

use super::raw;
use super::{ChildStep, Leader, FAILURE_BYTES, UNSHARED};

/// What the child reads: pointers into the plan, valid until the child execs or exits.
pub(super) struct ChildArgs {
    pub(super) candidates: Vec<*const libc::c_char>,
    pub(super) argv: Vec<*const libc::c_char>,
    pub(super) envp: Vec<*const libc::c_char>,
    pub(super) cwd: *const libc::c_char,
    /// For each of 0, 1, 2: the slot to copy from, or -1 to keep the daemon's.
    pub(super) from: [RawFd; 3],
    /// The report pipe's write end, the highest slot: the child's table keeps what is below it too.
    pub(super) report: RawFd,
    pub(super) unshare: bool,
    pub(super) leader: Leader,
    pub(super) groups: *const libc::gid_t,
    pub(super) ngroups: usize,
    pub(super) ids: Option<(libc::uid_t, libc::gid_t)>,
    pub(super) die_with_parent: bool,
    pub(super) daemon: libc::pid_t,
}

/// A raw system call's result as the child uses it: `Err(errno)` on failure.
fn sys(nr: libc::c_long, args: &[usize]) -> Result<isize, i32> {
    // SAFETY: the callers pass arguments valid for the call (see `child_steps`).
    raw::check(unsafe { raw::syscall(nr, args) })
}

/// The child, from clone to exec. Raw system calls only (see the module docs).
pub(super) extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the daemon passed a valid ChildArgs, kept until our exec or exit.
    let a = unsafe { &*(arg as *const ChildArgs) };
    reset_signal_handlers();
    let failure = match child_steps(a) {
        Err(f) => f,
        Ok(()) => {
            set_signal_mask(0);
            exec(a)
        }
    };
    // Everything blocked again: nothing may run between the report and the exit.
    set_signal_mask(ALL_SIGNALS);
    let (step, errno) = failure;
    let e = errno.to_ne_bytes();
    let record: [u8; FAILURE_BYTES] = [step as u8, e[0], e[1], e[2], e[3]];
    let _ = sys(
        libc::SYS_write,
        &[a.report as usize, record.as_ptr() as usize, record.len()],
    );
    let _ = sys(libc::SYS_exit_group, &[127]);
    127
}

/// Tries each candidate path in turn, as execvp does: goes on past a directory where the program is
/// missing and remembers a permission error. Returns only on failure.
fn exec(a: &ChildArgs) -> (ChildStep, i32) {
    let mut errno = libc::ENOENT;
    let mut denied = false;
    for &path in &a.candidates {
        let Err(e) = sys(
            libc::SYS_execve,
            &[
                path as usize,
                a.argv.as_ptr() as usize,
                a.envp.as_ptr() as usize,
            ],
        ) else {
            continue;
        };
        errno = e;
        match errno {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => break,
        }
    }
    if denied && errno != libc::EACCES && a.candidates.len() > 1 {
        errno = libc::EACCES;
    }
    (ChildStep::Exec, errno)
}

/// Every signal, as the kernel's 8-byte mask.
pub(super) const ALL_SIGNALS: u64 = !0;

/// Sets this thread's signal mask (the kernel's own, so glibc's reserved signals too); answers the old.
/// A raw system call, so the child may make it too.
pub(super) fn set_signal_mask(mask: u64) -> u64 {
    let mut old: u64 = 0;
    let _ = sys(
        libc::SYS_rt_sigprocmask,
        &[
            libc::SIG_SETMASK as usize,
            &mask as *const u64 as usize,
            &mut old as *mut u64 as usize,
            8,
        ],
    );
    old
}

/// The kernel's `struct sigaction` as `rt_sigaction` takes it (not libc's, whose mask is 128 bytes).
/// Where the kernel has no `sa_restorer` (it reads 24 bytes), the fields past `flags` are all zero
/// either way, and only `handler` is ever read back.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Resets every caught signal to its default (the daemon's handlers must not run here), and SIGPIPE,
/// which Rust programs ignore, as std does for its children. Ignored signals stay ignored.
fn reset_signal_handlers() {
    for sig in 1..65usize {
        if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
            continue;
        }
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let got = sys(
            libc::SYS_rt_sigaction,
            &[sig, 0, &mut old as *mut KernelSigaction as usize, 8],
        );
        if got.is_err() {
            continue;
        }
        if sig == libc::SIGPIPE as usize
            || (old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN)
        {
            let dfl = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            let _ = sys(
                libc::SYS_rt_sigaction,
                &[sig, &dfl as *const KernelSigaction as usize, 0, 8],
            );
        }
    }
}

fn child_steps(a: &ChildArgs) -> Result<(), (ChildStep, i32)> {
    let step = |step: ChildStep| move |errno: i32| (step, errno);
    // Descriptors: a private table holding only what is up to the report slot, then 0-2 from the
    // slots, then nothing else but the report pipe (close-on-exec).
    if a.unshare {
        sys(
            libc::SYS_close_range,
            &[
                (a.report + 1) as usize,
                libc::c_uint::MAX as usize,
                libc::CLOSE_RANGE_UNSHARE as usize,
            ],
        )
        .map_err(step(ChildStep::Stdio))?;
    }
    // The daemon may let go of the kit's slots now.
    let unshared = [UNSHARED];
    sys(
        libc::SYS_write,
        &[a.report as usize, unshared.as_ptr() as usize, 1],
    )
    .map_err(step(ChildStep::Stdio))?;
    for (target, &from) in a.from.iter().enumerate() {
        if from >= 0 {
            // dup3, not dup2 (which aarch64 lacks): `from` is a slot (>= 3), never `target`.
            sys(libc::SYS_dup3, &[from as usize, target, 0]).map_err(step(ChildStep::Stdio))?;
        }
    }
    if a.unshare && a.report > 3 {
        sys(libc::SYS_close_range, &[3, (a.report - 1) as usize, 0])
            .map_err(step(ChildStep::Stdio))?;
    }
    match a.leader {
        Leader::Group => sys(libc::SYS_setpgid, &[0, 0]),
        Leader::Session => sys(libc::SYS_setsid, &[]),
    }
    .map_err(step(ChildStep::Leader))?;
    if let Some((uid, gid)) = a.ids {
        // Raw calls: glibc's versions would ask every thread of the daemon to switch too.
        sys(libc::SYS_setgroups, &[a.ngroups, a.groups as usize]).map_err(step(ChildStep::User))?;
        sys(libc::SYS_setgid, &[gid as usize]).map_err(step(ChildStep::User))?;
        sys(libc::SYS_setuid, &[uid as usize]).map_err(step(ChildStep::User))?;
    }
    // After any user switch, which clears it.
    if a.die_with_parent {
        sys(
            libc::SYS_prctl,
            &[libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize],
        )
        .map_err(step(ChildStep::ParentDeath))?;
        if sys(libc::SYS_getppid, &[]) != Ok(a.daemon as isize) {
            return Err((ChildStep::ParentDeath, libc::ESRCH));
        }
    }
    if !a.cwd.is_null() {
        sys(libc::SYS_chdir, &[a.cwd as usize]).map_err(step(ChildStep::Cwd))?;
    }
    Ok(())
}
