//! Starting a child the cheap way: `clone(CLONE_VM)` and `execve`, with everything the child must do
//! between the two (its group or session, its user, its parent-death signal, its stdio), and no wait
//! for the exec on the daemon's thread.
//!
//! Why not `std::process::Command`: any `pre_exec` step (the parent-death signal needs one) makes std
//! `fork` the whole daemon, copying its page tables and then taking a copy-on-write fault on every page
//! the daemon writes until the child execs; and every exec also walks every descriptor the daemon holds
//! (one pidfd and one /proc file per managed process) to close it. At 1,000 processes those two made a
//! start cost several times the floor of fork and exec. Here the child borrows the daemon's memory until
//! it execs and leaves the daemon's descriptor table without touching the descriptors above a few
//! reserved low slots (`close_range` with `CLOSE_RANGE_UNSHARE`).
//!
//! Why not `CLONE_VFORK`, as `posix_spawn` does: it stops the calling thread until the child has
//! exec'd, for as long as the exec takes, during which an actor thread could have started the
//! next child. Without it, [`launch`] answers at once and the child reports on a pipe ([`Launch`]); it
//! borrows a kit (stack and slots, [`kits`]) that is not used again before the kernel says, by clearing
//! a word (`CLONE_CHILD_CLEARTID`), that the child has exec'd or exited.
//!
//! The child runs on its own stack in the daemon's memory, beside the daemon's threads and with the
//! calling thread's thread pointer, so between clone and exec it makes raw system calls only
//! ([`raw`]: not even `errno`, which is that thread's): no allocation, no lock, no libc call
//! (glibc's `setuid` would signal the daemon's threads, for one). All that it needs is built before
//! the clone; all that it runs is in [`pre_exec`].
//!
//! The raw system calls are written for x86_64 and aarch64 only. Elsewhere, or with the cargo feature
//! `portable-spawn` (either way the build script sets the cfg `portable_spawn`), [`launch`] forks
//! instead (`portable`): the same plan, the same child's steps and the same report pipe, at the price
//! of copying the daemon's page tables at every start.
//!
//! - this module: the plan of a child ([`ExecPlan`]), its failures, and [`launch`].
//! - [`launched`]: the [`Launch`] of a child on its way to its exec: its report, its kit, its
//!   deadline's kill and reap.
//! - `kits`: the stacks and reserved descriptor slots children borrow, and the spawner that lends them.
//! - `pre_exec`: the child's own code, from clone to exec.
//! - `portable`: `fork` and the child's steps in libc calls, for every other architecture.

#[cfg(not(portable_spawn))]
mod kits;
mod launched;
#[cfg(portable_spawn)]
mod portable;
#[cfg(not(portable_spawn))]
mod pre_exec;
#[cfg(not(portable_spawn))]
mod raw;

use std::ffi::CString;
use std::io;
#[cfg(any(test, not(portable_spawn)))]
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd};
#[cfg(not(portable_spawn))]
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(portable_spawn))]
use kits::{set_slot, spawner};
pub use launched::Launch;
#[cfg(test)]
use launched::{reap, spawn};
#[cfg(portable_spawn)]
pub use portable::{kit_free, launch};
#[cfg(not(portable_spawn))]
use pre_exec::{child_main, set_signal_mask, ChildArgs, ALL_SIGNALS};

/// A child's environment: the daemon's, shared by every child (none when cleared), without the names
/// that `extra` sets, then `extra`. Nothing of the daemon's is copied per child.
#[derive(Debug, Clone)]
pub struct ChildEnv {
    /// `KEY=value` strings of the daemon's environment.
    pub base: Option<Arc<Vec<CString>>>,
    /// `KEY=value` strings of the child's own variables.
    pub extra: Vec<CString>,
}

/// The `KEY` of a `KEY=value` string.
fn env_key(entry: &CString) -> &[u8] {
    let bytes = entry.as_bytes();
    &bytes[..bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len())]
}

impl ChildEnv {
    /// The `envp` array for execve: pointers into `self`, null-terminated.
    fn pointers(&self) -> Vec<*const libc::c_char> {
        let overridden = |entry: &&CString| self.extra.iter().any(|x| env_key(x) == env_key(entry));
        self.base
            .iter()
            .flat_map(|base| base.iter())
            .filter(|entry| !overridden(entry))
            .chain(&self.extra)
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    }
}

/// Where one of the child's standard descriptors comes from.
#[derive(Debug)]
pub enum ChildFd {
    /// The daemon's own descriptor of the same number.
    Inherit,
    /// /dev/null.
    Null,
    /// This descriptor (the daemon's copy is closed once the child has it).
    Fd(OwnedFd),
}

/// Whether the child leads a new process group or a new session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// `setpgid(0, 0)`: its own group, in the daemon's session.
    Group,
    /// `setsid()`: its own session (and group), no controlling terminal.
    Session,
}

/// Everything the child does between clone and exec, prepared in the daemon.
#[derive(Debug)]
pub struct ExecPlan {
    /// The paths to try in turn, as `execvp` would (the program, or each PATH entry joined with it).
    pub candidates: Vec<CString>,
    /// argv, argv[0] first.
    pub argv: Vec<CString>,
    /// The environment.
    pub envp: ChildEnv,
    /// The working directory, when not the daemon's.
    pub cwd: Option<CString>,
    /// Descriptors 0, 1 and 2.
    pub stdio: [ChildFd; 3],
    /// Its own group or its own session.
    pub leader: Leader,
    /// Supplementary groups, group and user to switch to.
    pub run_as: Option<super::user::RunAs>,
    /// SIGKILL the child when the spawning thread dies (`PR_SET_PDEATHSIG`).
    pub die_with_parent: bool,
    /// The open-files limit (soft, hard) to set in the child: the one the daemon was started with
    /// (see [`super::descriptors::original_open_files_limit`]); `None` keeps the daemon's.
    pub open_files: Option<(u64, u64)>,
    /// The cgroup the child is born in (`clone3` with `CLONE_INTO_CGROUP`), where the kernel can.
    /// The fork path does not read it: its child always moves itself (`cgroup_procs`).
    #[cfg_attr(portable_spawn, allow(dead_code))]
    pub cgroup_dir: Option<CString>,
    /// The `cgroup.procs` file of that cgroup: where the kernel cannot, the child moves itself into
    /// it before anything else runs.
    pub cgroup_procs: Option<CString>,
    /// Test hook: the child stops itself (SIGSTOP) right before its exec.
    #[cfg(test)]
    pub stop_before_exec: bool,
}

/// A failure in the child before its program ran: the step, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    /// What the child was doing.
    pub step: ChildStep,
    /// The raw OS error.
    pub errno: i32,
}

/// The steps of the child, named in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ChildStep {
    /// Setting up descriptors 0-2.
    Stdio = 1,
    /// setpgid or setsid.
    Leader = 2,
    /// setgroups, setgid or setuid.
    User = 3,
    /// The parent-death signal, or the daemon already gone.
    ParentDeath = 4,
    /// chdir.
    Cwd = 5,
    /// execve.
    Exec = 6,
    /// Setting the open-files limit back to the daemon's original one.
    Limits = 7,
    /// Moving into its cgroup.
    Cgroup = 8,
}

impl ChildStep {
    fn from_raw(n: u32) -> ChildStep {
        match n {
            1 => ChildStep::Stdio,
            2 => ChildStep::Leader,
            3 => ChildStep::User,
            4 => ChildStep::ParentDeath,
            5 => ChildStep::Cwd,
            7 => ChildStep::Limits,
            8 => ChildStep::Cgroup,
            _ => ChildStep::Exec,
        }
    }
}

/// Why a spawn failed: in the daemon (clone itself: EAGAIN, ENOMEM), in the child, or by taking too
/// long.
#[derive(Debug)]
pub enum SpawnFailure {
    /// Preparing or cloning failed in the daemon.
    Daemon(io::Error),
    /// The child failed at a step; it has been reaped.
    Child(ChildFailure),
    /// The child did not reach its exec within this deadline; it has been killed and reaped.
    Abandoned(Duration),
}

impl SpawnFailure {
    /// The failure as an `io::Error`, for its kind and message.
    pub fn io_error(&self) -> io::Error {
        match self {
            SpawnFailure::Daemon(e) => io::Error::new(e.kind(), e.to_string()),
            SpawnFailure::Child(c) => io::Error::from_raw_os_error(c.errno),
            SpawnFailure::Abandoned(after) => io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "did not reach exec within {}: abandoned",
                    describe_duration(*after)
                ),
            ),
        }
    }

    /// The child's step, if the failure was in the child.
    pub fn step(&self) -> Option<ChildStep> {
        match self {
            SpawnFailure::Daemon(_) | SpawnFailure::Abandoned(_) => None,
            SpawnFailure::Child(c) => Some(c.step),
        }
    }
}

/// A duration as a person writes it: whole seconds as `10 s`, anything else in milliseconds.
fn describe_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The first byte a child writes on its report pipe: it has its own descriptor table now, so the
/// daemon may point the kit's slots elsewhere (and must, for the pipe to reach end of file at exec).
const UNSHARED: u8 = 0xff;

/// A failure record on the report pipe: the step, then the errno in native byte order.
const FAILURE_BYTES: usize = 5;

/// Wakes the starts that wait for a kit (see [`kit_freed`]).
static KIT_FREED: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Whether a launch could take a kit now, without waiting for a child's exec. True when the spawner
/// cannot be made: the launch then answers that error.
#[cfg(not(portable_spawn))]
pub fn kit_free() -> bool {
    match spawner() {
        Ok(s) => s
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .free_kit()
            .is_some(),
        Err(_) => true,
    }
}

/// Resolves when a kit may have come free: a launch saw its child exec or exit, or 1 ms passed (a
/// child can free its kit unseen, when nobody is looking at its launch). Check [`kit_free`] after.
pub async fn kit_freed() {
    let notified = KIT_FREED.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if kit_free() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_millis(1), notified).await;
}

/// Clones the child for `plan` and answers at once, while the child goes on to its exec on its own.
/// With every kit busy it waits (at most one exec) for one: callers on an actor's thread first wait
/// for [`kit_free`] without blocking, through [`kit_freed`].
#[cfg(not(portable_spawn))]
pub fn launch(plan: ExecPlan) -> Result<Launch, SpawnFailure> {
    let spawner = spawner().map_err(SpawnFailure::Daemon)?;
    // A poisoned lock only means a spawn panicked in the daemon; kits are reset before each use.
    let mut sp = spawner.lock().unwrap_or_else(|p| p.into_inner());
    let (report, report_w) = pipe_with(libc::O_NONBLOCK).map_err(SpawnFailure::Daemon)?;
    let k = sp.acquire().map_err(SpawnFailure::Daemon)?;
    let slots = sp.kits[k].slots;
    sp.kits[k].dirty = true;
    let mut from = [-1; 3];
    let mut sources = Vec::with_capacity(4);
    for (i, fd) in plan.stdio.iter().enumerate() {
        let source = match fd {
            ChildFd::Inherit => continue,
            ChildFd::Null => sp.devnull.as_raw_fd(),
            ChildFd::Fd(fd) => fd.as_raw_fd(),
        };
        sources.push((slots[i], source));
        from[i] = slots[i];
    }
    sources.push((slots[3], report_w.as_raw_fd()));
    for (slot, source) in sources {
        if let Err(e) = set_slot(slot, source) {
            sp.reset(k);
            return Err(SpawnFailure::Daemon(e));
        }
    }
    drop(report_w); // the slot holds it now
    let (groups, ngroups, ids) = match &plan.run_as {
        Some(who) => (
            who.groups.as_ptr(),
            who.groups.len(),
            Some((who.uid, who.gid)),
        ),
        None => (std::ptr::null(), 0, None),
    };
    let mut args = Box::new(ChildArgs {
        candidates: plan.candidates.iter().map(|c| c.as_ptr()).collect(),
        argv: null_terminated(&plan.argv),
        envp: plan.envp.pointers(),
        cwd: plan.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        from,
        report: slots[3],
        unshare: sp.unshare,
        leader: plan.leader,
        groups,
        ngroups,
        ids,
        die_with_parent: plan.die_with_parent,
        daemon: std::process::id() as libc::pid_t,
        open_files: plan.open_files.map(|(soft, hard)| libc::rlimit64 {
            rlim_cur: soft,
            rlim_max: hard,
        }),
        cgroup_procs: plan
            .cgroup_procs
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr()),
        #[cfg(test)]
        stop_before_exec: plan.stop_before_exec,
    });
    let kit = &mut sp.kits[k];
    let generation = kit.generation;
    let Some(stack) = kit.stack.as_ref() else {
        return Err(SpawnFailure::Daemon(io::Error::other(
            "a kit without a stack",
        )));
    };
    let top = stack.top();
    let mut flags = libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD;
    if sp.unshare {
        flags |= libc::CLONE_FILES;
    }
    let busy = Arc::clone(&sp.kits[k].busy);
    // Born in its cgroup: no write between clone and exec, and the kernel places the child at the
    // fork, which costs far less than a move of a running process (`cgroup.procs`).
    let into = match &plan.cgroup_dir {
        Some(dir) if clone3_usable() => match open_cgroup(dir) {
            Ok(fd) => Some(fd),
            Err(e) => {
                sp.reset(k);
                return Err(SpawnFailure::Daemon(e));
            }
        },
        _ => None,
    };
    if into.is_some() {
        args.cgroup_procs = std::ptr::null();
    }
    busy.store(1, Ordering::Release);
    // Every signal is blocked on this thread so that the child starts with them blocked: no handler
    // of the daemon's may run on the child's stack. The child resets the handlers before it unblocks
    // them, and this thread gets its own mask back right after.
    let old = set_signal_mask(ALL_SIGNALS);
    // The orphan reaper must see the child listed as ours from the moment it exists.
    let mut own = super::orphans::own_children();
    let before = super::procfs::boot_ticks();
    // SAFETY: `child_main` runs on the kit's stack and reads `args`; both stay untouched until the
    // kernel clears `busy` at the child's exec or exit: `acquire` checks it before it lends the kit
    // again, and a `Launch` keeps `args` until its report has ended (after the clear) or it has killed
    // and reaped the child. The child makes raw system calls only (see the module docs).
    let clone = |args: &mut ChildArgs| unsafe {
        libc::clone(
            child_main,
            top,
            flags,
            args as *mut ChildArgs as *mut libc::c_void,
            std::ptr::null_mut::<libc::pid_t>(),
            std::ptr::null_mut::<libc::c_void>(),
            busy.as_ptr(),
        )
    };
    let mut pid = match &into {
        None => clone(&mut args),
        Some(fd) => {
            let clone_args = raw::CloneArgs {
                flags: (flags & !libc::CSIGNAL) as u64 | raw::CLONE_INTO_CGROUP,
                child_tid: busy.as_ptr() as u64,
                exit_signal: libc::SIGCHLD as u64,
                stack: (top as usize - kits::STACK_BYTES) as u64,
                stack_size: kits::STACK_BYTES as u64,
                cgroup: fd.as_raw_fd() as u64,
                ..Default::default()
            };
            // SAFETY: as the clone above: the same child, stack, arguments and cleared word.
            match raw::check(unsafe {
                raw::clone3(
                    &clone_args,
                    child_main,
                    &mut *args as *mut ChildArgs as *mut libc::c_void,
                )
            }) {
                Ok(pid) => pid as libc::pid_t,
                Err(errno) => {
                    // SAFETY: sets this thread's errno, read below as the clone's error.
                    unsafe { *libc::__errno_location() = errno };
                    -1
                }
            }
        }
    };
    let mut clone_error = io::Error::last_os_error();
    if into.is_some() && pid < 0 && clone3_refused(&clone_error) {
        // The kernel (before 5.7) or a seccomp filter says no: the child writes `cgroup.procs`.
        args.cgroup_procs = plan
            .cgroup_procs
            .as_ref()
            .map_or(std::ptr::null(), |c| c.as_ptr());
        pid = clone(&mut args);
        clone_error = io::Error::last_os_error();
    }
    drop(into);
    if pid > 0 {
        let after = super::procfs::boot_ticks();
        own.add(pid, super::procfs::clone_ticks(before, after));
    }
    drop(own);
    set_signal_mask(old);
    if pid < 0 {
        busy.store(0, Ordering::Release);
        sp.reset(k);
        return Err(SpawnFailure::Daemon(clone_error));
    }
    if !sp.unshare {
        // The child has a full copy of the table already.
        sp.reset(k);
    }
    drop(sp);
    Ok(Launch::new(pid, report, (k, generation), busy, args, plan))
}

/// Whether `clone3` with `CLONE_INTO_CGROUP` has not been refused yet (see [`clone3_refused`]).
#[cfg(not(portable_spawn))]
fn clone3_usable() -> bool {
    !CLONE3_REFUSED.load(Ordering::Relaxed)
}

/// Set once `clone3` has been refused: every later child writes its `cgroup.procs` instead.
#[cfg(not(portable_spawn))]
static CLONE3_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `error` of a `clone3` means the call or its cgroup flag is not to be had here (ENOSYS
/// before 5.3 or under a seccomp filter, E2BIG or EINVAL before 5.7): remembered, said once.
#[cfg(not(portable_spawn))]
fn clone3_refused(error: &io::Error) -> bool {
    let refused = matches!(
        error.raw_os_error(),
        Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)
    );
    if refused && !CLONE3_REFUSED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            "clone3 with CLONE_INTO_CGROUP is refused here ({error}): children move into their \
             cgroup by a write to cgroup.procs"
        );
    }
    refused
}

/// A descriptor of the cgroup folder `dir`, for `clone3`: a path-only one, which is all the kernel
/// needs and touches none of cgroupfs's open handlers.
#[cfg(not(portable_spawn))]
fn open_cgroup(dir: &CString) -> io::Result<OwnedFd> {
    // SAFETY: opens a nul-terminated path; the new descriptor is owned below.
    let fd = unsafe {
        libc::open(
            dir.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot open cgroup {}: {e}", dir.to_string_lossy()),
        ));
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `argv` array for execve: pointers into `strings`, null-terminated.
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Builds an `OwnedFd` pair for a pipe whose both ends are close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    pipe_with(0)
}

/// A close-on-exec pipe with extra flags (`O_NONBLOCK`): (read, write).
fn pipe_with(flags: libc::c_int) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors or fails.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
pub(super) mod tests;
