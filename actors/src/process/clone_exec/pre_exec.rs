//! The child's code from clone to exec: raw system calls only, no allocation, no lock, no libc, no panic.
//!
//! Everything here runs on a kit's stack in the daemon's memory, beside the daemon's threads and with
//! the thread pointer of the thread that cloned it (see [`super`]): a lock could be held by a daemon
//! thread, the allocator is the daemon's, and libc writes that thread's `errno`. So every function
//! here makes its calls through [`super::raw`], reads only what [`ChildArgs`] points at, and returns
//! its failures as values. [`set_signal_mask`] is called by the daemon too, around the clone.
//!
//! Nothing here may panic either (a panic would unwind on the kit's stack into the daemon's state):
//! arithmetic wraps, arrays are destructured rather than indexed, and every system call takes a fixed
//! number of arguments. Every function but [`child_main`] is inlined into it, and `.ci/child-calls`
//! checks its machine code for calls to anything else (the symbol is `pm_child_main`).

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
    /// The open-files limit the daemon was started with, to set back (the daemon raised its own).
    pub(super) open_files: Option<libc::rlimit64>,
    /// The `cgroup.procs` file to write `0` (this process) to, or null.
    pub(super) cgroup_procs: *const libc::c_char,
    /// Test hook: the child stops itself (SIGSTOP) right before its exec.
    #[cfg(test)]
    pub(super) stop_before_exec: bool,
}

/// A raw system call's result as the child uses it: `Err(errno)` on failure. The callers pass
/// arguments valid for the call (see `child_steps`), as do those of `sys1` to `sys4`.
#[inline(always)]
fn sys0(nr: libc::c_long) -> Result<isize, i32> {
    // SAFETY: a call without arguments.
    raw::check(unsafe { raw::syscall0(nr) })
}

#[inline(always)]
fn sys1(nr: libc::c_long, a0: usize) -> Result<isize, i32> {
    // SAFETY: the callers pass an argument valid for the call.
    raw::check(unsafe { raw::syscall1(nr, a0) })
}

#[inline(always)]
fn sys2(nr: libc::c_long, a0: usize, a1: usize) -> Result<isize, i32> {
    // SAFETY: the callers pass arguments valid for the call.
    raw::check(unsafe { raw::syscall2(nr, a0, a1) })
}

#[inline(always)]
fn sys3(nr: libc::c_long, a0: usize, a1: usize, a2: usize) -> Result<isize, i32> {
    // SAFETY: the callers pass arguments valid for the call.
    raw::check(unsafe { raw::syscall3(nr, a0, a1, a2) })
}

#[inline(always)]
fn sys4(nr: libc::c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> Result<isize, i32> {
    // SAFETY: the callers pass arguments valid for the call.
    raw::check(unsafe { raw::syscall4(nr, a0, a1, a2, a3) })
}

/// The child, from clone to exec. Raw system calls only (see the module docs). Never inlined, and
/// under a fixed symbol, so that `.ci/child-calls` finds its machine code.
#[inline(never)]
#[export_name = "pm_child_main"]
pub(super) extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the daemon passed a valid ChildArgs, kept until our exec or exit.
    let a = unsafe { &*(arg as *const ChildArgs) };
    reset_signal_handlers();
    let failure = match child_steps(a) {
        Err(f) => f,
        Ok(()) => {
            set_signal_mask(0);
            #[cfg(test)]
            if a.stop_before_exec {
                if let Ok(me) = sys0(libc::SYS_getpid) {
                    let _ = sys2(libc::SYS_kill, me as usize, libc::SIGSTOP as usize);
                }
            }
            exec(a)
        }
    };
    // Everything blocked again: nothing may run between the report and the exit.
    set_signal_mask(ALL_SIGNALS);
    let (step, errno) = failure;
    let [e0, e1, e2, e3] = errno.to_ne_bytes();
    let record: [u8; FAILURE_BYTES] = [step as u8, e0, e1, e2, e3];
    let _ = sys3(
        libc::SYS_write,
        a.report as usize,
        record.as_ptr() as usize,
        record.len(),
    );
    let _ = sys1(libc::SYS_exit_group, 127);
    127
}

/// Tries each candidate path in turn, as execvp does: goes on past a directory where the program is
/// missing and remembers a permission error. Returns only on failure.
#[inline(always)]
fn exec(a: &ChildArgs) -> (ChildStep, i32) {
    let mut errno = libc::ENOENT;
    let mut denied = false;
    for &path in &a.candidates {
        let Err(e) = sys3(
            libc::SYS_execve,
            path as usize,
            a.argv.as_ptr() as usize,
            a.envp.as_ptr() as usize,
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
#[inline(always)]
pub(super) fn set_signal_mask(mask: u64) -> u64 {
    let mut old: u64 = 0;
    let _ = sys4(
        libc::SYS_rt_sigprocmask,
        libc::SIG_SETMASK as usize,
        &mask as *const u64 as usize,
        &mut old as *mut u64 as usize,
        8,
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
#[inline(always)]
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
        let got = sys4(
            libc::SYS_rt_sigaction,
            sig,
            0,
            &mut old as *mut KernelSigaction as usize,
            8,
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
            let _ = sys4(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction as usize,
                0,
                8,
            );
        }
    }
}

#[inline(always)]
fn child_steps(a: &ChildArgs) -> Result<(), (ChildStep, i32)> {
    let step = |step: ChildStep| move |errno: i32| (step, errno);
    // Descriptors: a private table holding only what is up to the report slot, then 0-2 from the
    // slots, then nothing else but the report pipe (close-on-exec).
    if a.unshare {
        sys3(
            libc::SYS_close_range,
            a.report.wrapping_add(1) as usize,
            libc::c_uint::MAX as usize,
            libc::CLOSE_RANGE_UNSHARE as usize,
        )
        .map_err(step(ChildStep::Stdio))?;
    }
    // The daemon may let go of the kit's slots now.
    let unshared = [UNSHARED];
    sys3(
        libc::SYS_write,
        a.report as usize,
        unshared.as_ptr() as usize,
        1,
    )
    .map_err(step(ChildStep::Stdio))?;
    for (target, &from) in a.from.iter().enumerate() {
        if from >= 0 {
            // dup3, not dup2 (which aarch64 lacks): `from` is a slot (>= 3), never `target`.
            sys3(libc::SYS_dup3, from as usize, target, 0).map_err(step(ChildStep::Stdio))?;
        }
    }
    if a.unshare && a.report > 3 {
        sys3(
            libc::SYS_close_range,
            3,
            a.report.wrapping_sub(1) as usize,
            0,
        )
        .map_err(step(ChildStep::Stdio))?;
    }
    // First of the steps that count: whatever the program forks from its first instruction on is in
    // the cgroup too. Before the user switch, which could take the right to write the file away.
    if !a.cgroup_procs.is_null() {
        enter_cgroup(a.cgroup_procs).map_err(step(ChildStep::Cgroup))?;
    }
    match a.leader {
        Leader::Group => sys2(libc::SYS_setpgid, 0, 0),
        Leader::Session => sys0(libc::SYS_setsid),
    }
    .map_err(step(ChildStep::Leader))?;
    // Limits belong to the child alone (no CLONE_THREAD): this leaves the daemon's raised one be.
    if let Some(limit) = &a.open_files {
        sys4(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE as usize,
            limit as *const libc::rlimit64 as usize,
            0,
        )
        .map_err(step(ChildStep::Limits))?;
    }
    if let Some((uid, gid)) = a.ids {
        // Raw calls: glibc's versions would ask every thread of the daemon to switch too.
        sys2(libc::SYS_setgroups, a.ngroups, a.groups as usize).map_err(step(ChildStep::User))?;
        sys1(libc::SYS_setgid, gid as usize).map_err(step(ChildStep::User))?;
        sys1(libc::SYS_setuid, uid as usize).map_err(step(ChildStep::User))?;
        // The switch set the dumpable flag of the memory we share with the daemon to
        // fs.suid_dumpable: were it 1, any user could attach to the daemon until our exec (which
        // sets the flag for the program anew).
        sys2(libc::SYS_prctl, libc::PR_SET_DUMPABLE as usize, 0).map_err(step(ChildStep::User))?;
    }
    // After any user switch, which clears it.
    if a.die_with_parent {
        sys2(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
        )
        .map_err(step(ChildStep::ParentDeath))?;
        if sys0(libc::SYS_getppid) != Ok(a.daemon as isize) {
            return Err((ChildStep::ParentDeath, libc::ESRCH));
        }
    }
    if !a.cwd.is_null() {
        sys1(libc::SYS_chdir, a.cwd as usize).map_err(step(ChildStep::Cwd))?;
    }
    Ok(())
}

/// Moves this process into the cgroup whose `cgroup.procs` is `procs` (`0` names the writer).
#[inline(always)]
fn enter_cgroup(procs: *const libc::c_char) -> Result<(), i32> {
    let fd = sys4(
        libc::SYS_openat,
        libc::AT_FDCWD as usize,
        procs as usize,
        (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
        0,
    )? as usize;
    let zero = [b'0'];
    let written = sys3(libc::SYS_write, fd, zero.as_ptr() as usize, 1);
    let _ = sys1(libc::SYS_close, fd);
    written.map(|_| ())
}
