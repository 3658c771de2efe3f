//! Starting a child the cheap way: `clone(CLONE_VM | CLONE_VFORK)` and `execve`, with everything the
//! child must do between the two (its group or session, its user, its parent-death signal, its stdio).
//!
//! Why not `std::process::Command`: any `pre_exec` step (the parent-death signal needs one) makes std
//! `fork` the whole daemon, copying its page tables and then taking a copy-on-write fault on every page
//! the daemon writes until the child execs; and every exec also walks every descriptor the daemon holds
//! (one pidfd and one /proc file per managed process) to close it. At 1,000 processes those two made a
//! start cost several times the floor of fork and exec. Here the child borrows the daemon's memory until
//! it execs (what `posix_spawn` does) and leaves the daemon's descriptor table without touching the
//! descriptors above a few reserved low slots (`close_range` with `CLOSE_RANGE_UNSHARE`).
//!
//! The child runs on a borrowed stack in the daemon's memory while the daemon's other threads go on, so
//! between clone and exec it makes raw system calls only: no allocation, no lock, no libc call that
//! touches shared state (glibc's `setuid` would signal the daemon's threads, for one). All that it needs
//! is built before the clone.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The child's stack, in the daemon's memory; one spawn at a time uses it (the slots' lock).
const STACK_BYTES: usize = 128 * 1024;

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
    /// The whole environment, `KEY=value`.
    pub envp: Vec<CString>,
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
}

/// A failure in the child before its program ran: the step, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildFailure {
    /// What the child was doing.
    pub step: Step,
    /// The raw OS error.
    pub errno: i32,
}

/// The steps of the child, named in its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
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
}

impl Step {
    fn from_raw(n: u32) -> Step {
        match n {
            1 => Step::Stdio,
            2 => Step::Leader,
            3 => Step::User,
            4 => Step::ParentDeath,
            5 => Step::Cwd,
            _ => Step::Exec,
        }
    }
}

/// Why a spawn failed: in the daemon (clone itself: EAGAIN, ENOMEM) or in the child.
#[derive(Debug)]
pub enum SpawnFailure {
    /// Preparing or cloning failed in the daemon.
    Daemon(io::Error),
    /// The child failed at a step; it has been reaped.
    Child(ChildFailure),
}

impl SpawnFailure {
    /// The failure as an `io::Error`, for its kind and message.
    pub fn io_error(&self) -> io::Error {
        match self {
            SpawnFailure::Daemon(e) => io::Error::new(e.kind(), e.to_string()),
            SpawnFailure::Child(c) => io::Error::from_raw_os_error(c.errno),
        }
    }

    /// The child's step, if the failure was in the child.
    pub fn step(&self) -> Option<Step> {
        match self {
            SpawnFailure::Daemon(_) => None,
            SpawnFailure::Child(c) => Some(c.step),
        }
    }
}

/// The reserved descriptors and the child's stack, shared by every spawn of the process.
struct Spawner {
    /// Three low descriptors (3 or above), each /dev/null between spawns; during a spawn each holds
    /// what the child's 0, 1 or 2 will be. The child keeps only the table below `slots[2] + 1`.
    slots: [RawFd; 3],
    devnull: OwnedFd,
    stack: Box<[u8]>,
    /// `close_range(CLOSE_RANGE_UNSHARE)` works here (Linux 5.9+): the child shares the daemon's
    /// descriptor table until it makes its own small one. Without it the child gets a full copy and
    /// the exec closes the close-on-exec ones, as std does.
    unshare: bool,
}

fn spawner() -> io::Result<&'static Mutex<Spawner>> {
    static SPAWNER: OnceLock<Result<Mutex<Spawner>, String>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| Spawner::new().map(Mutex::new).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| io::Error::other(format!("cannot prepare the spawner: {e}")))
}

impl Spawner {
    fn new() -> io::Result<Spawner> {
        let devnull = OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?,
        );
        let mut slots = [0; 3];
        for slot in &mut slots {
            // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd (the lowest free one >= 3) or -1.
            let fd = unsafe { libc::fcntl(devnull.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            *slot = fd;
        }
        slots.sort_unstable();
        // Came with CLOSE_RANGE_UNSHARE (Linux 5.9). Probed without the flag: with it, this thread
        // would leave the descriptor table it shares with the daemon's other threads.
        // SAFETY: closes a descriptor number beyond any table; 0 where close_range exists.
        let unshare =
            unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) } == 0;
        Ok(Spawner {
            slots,
            devnull,
            stack: vec![0u8; STACK_BYTES].into_boxed_slice(),
            unshare,
        })
    }

    /// Points `slot` at `fd`'s file (or /dev/null again).
    fn set_slot(&self, slot: RawFd, fd: RawFd) -> io::Result<()> {
        // SAFETY: both are open descriptors; dup3 atomically replaces what `slot` refers to.
        if unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// What the child reads: pointers into the plan, valid until the child execs or exits.
struct ChildArgs {
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: *const libc::c_char,
    /// For each of 0, 1, 2: the slot to copy from, or -1 to keep the daemon's.
    from: [RawFd; 3],
    /// The highest slot: the child's table keeps what is below it, plus it.
    last_slot: RawFd,
    unshare: bool,
    leader: Leader,
    groups: *const libc::gid_t,
    ngroups: usize,
    ids: Option<(libc::uid_t, libc::gid_t)>,
    die_with_parent: bool,
    daemon: libc::pid_t,
    /// Written by the child on failure, read by the daemon once the vfork is over.
    failed_step: AtomicU32,
    errno: AtomicI32,
}

/// Starts the plan's program; answers the child's pid. The child has been reaped when it fails.
pub fn spawn(plan: ExecPlan) -> Result<i32, SpawnFailure> {
    let spawner = spawner().map_err(SpawnFailure::Daemon)?;
    // A poisoned lock only means a spawn panicked in the daemon; the slots are reset below either way.
    let mut sp = spawner.lock().unwrap_or_else(|p| p.into_inner());
    let nul = |v: &Vec<CString>| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let mut from = [-1; 3];
    for (i, fd) in plan.stdio.iter().enumerate() {
        let source = match fd {
            ChildFd::Inherit => continue,
            ChildFd::Null => sp.devnull.as_raw_fd(),
            ChildFd::Fd(fd) => fd.as_raw_fd(),
        };
        if let Err(e) = sp.set_slot(sp.slots[i], source) {
            reset_slots(&sp);
            return Err(SpawnFailure::Daemon(e));
        }
        from[i] = sp.slots[i];
    }
    let (groups, ngroups, ids) = match &plan.run_as {
        Some(who) => (
            who.groups.as_ptr(),
            who.groups.len(),
            Some((who.uid, who.gid)),
        ),
        None => (std::ptr::null(), 0, None),
    };
    let mut args = ChildArgs {
        candidates: plan.candidates.iter().map(|c| c.as_ptr()).collect(),
        argv: nul(&plan.argv),
        envp: nul(&plan.envp),
        cwd: plan.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        from,
        last_slot: sp.slots[2],
        unshare: sp.unshare,
        leader: plan.leader,
        groups,
        ngroups,
        ids,
        die_with_parent: plan.die_with_parent,
        daemon: std::process::id() as libc::pid_t,
        failed_step: AtomicU32::new(0),
        errno: AtomicI32::new(0),
    };
    let stack = &mut sp.stack;
    // The stack grows down from its 16-byte aligned top.
    let top = ((stack.as_mut_ptr() as usize + stack.len()) & !15) as *mut libc::c_void;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if args.unshare {
        flags |= libc::CLONE_FILES;
    }
    // Every signal is blocked on this thread so that no handler of the daemon's runs on the child's
    // borrowed stack; the child resets the handlers before it unblocks them, and this thread gets its
    // own mask back right after.
    let old = set_signal_mask(ALL_SIGNALS);
    // SAFETY: `child_main` runs on `stack`, reads `args` (alive until clone returns, since CLONE_VFORK
    // suspends this thread until the child execs or exits), and makes raw syscalls only.
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            flags,
            &mut args as *mut ChildArgs as *mut libc::c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    set_signal_mask(old);
    reset_slots(&sp);
    drop(sp);
    drop(plan); // the daemon's copies of the child's descriptors: the child has its own now
    if pid < 0 {
        return Err(SpawnFailure::Daemon(clone_error));
    }
    let step = args.failed_step.load(Ordering::Acquire);
    if step != 0 {
        reap(pid);
        return Err(SpawnFailure::Child(ChildFailure {
            step: Step::from_raw(step),
            errno: args.errno.load(Ordering::Acquire),
        }));
    }
    Ok(pid)
}

/// Points every slot back at /dev/null, so that the daemon holds no extra end of a child's pipe.
fn reset_slots(sp: &Spawner) {
    for &slot in &sp.slots {
        let _ = sp.set_slot(slot, sp.devnull.as_raw_fd());
    }
}

/// Waits for a child that failed before its exec (it exits at once).
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: our own child, which has already called _exit.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// The child, from clone to exec. Raw syscalls only (see the module docs).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the daemon passed a valid ChildArgs and is suspended until we exec or exit.
    let a = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: each call below is a plain system call on values prepared by the daemon.
    unsafe {
        reset_signal_handlers();
        if let Err((step, errno)) = child_steps(a) {
            a.errno.store(errno, Ordering::Release);
            a.failed_step.store(step as u32, Ordering::Release);
            libc::_exit(127);
        }
        set_signal_mask(0);
        // As execvp: go on past a directory where the program is missing, remember a permission error.
        let mut errno = libc::ENOENT;
        let mut denied = false;
        for &path in &a.candidates {
            libc::syscall(libc::SYS_execve, path, a.argv.as_ptr(), a.envp.as_ptr());
            errno = *libc::__errno_location();
            match errno {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => break,
            }
        }
        if denied && errno != libc::EACCES && a.candidates.len() > 1 {
            errno = libc::EACCES;
        }
        // Everything blocked again, so that no handler can run before the daemon reads this.
        set_signal_mask(ALL_SIGNALS);
        a.errno.store(errno, Ordering::Release);
        a.failed_step.store(Step::Exec as u32, Ordering::Release);
        libc::_exit(127)
    }
}

/// Every signal, as the kernel's 8-byte mask.
const ALL_SIGNALS: u64 = !0;

/// Sets this thread's signal mask (the kernel's own, so glibc's reserved signals too); answers the old.
/// A raw syscall, so the child may make it too.
fn set_signal_mask(mask: u64) -> u64 {
    let mut old: u64 = 0;
    // SAFETY: valid pointers to two 8-byte kernel sigsets.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            &mut old as *mut u64,
            8usize,
        );
    }
    old
}

/// Resets every caught signal to its default (the daemon's handlers must not run here), and SIGPIPE,
/// which Rust programs ignore, as std does for its children. Ignored signals stay ignored.
unsafe fn reset_signal_handlers() {
    for sig in 1..65 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            continue;
        }
        if sig == libc::SIGPIPE
            || (old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
        {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    }
}

unsafe fn child_steps(a: &ChildArgs) -> Result<(), (Step, i32)> {
    let fail = |step: Step| Err((step, *libc::__errno_location()));
    let sys = |r: libc::c_long| r >= 0;
    // Descriptors: a private table holding only what is below the highest slot, then 0-2 from the
    // slots, then nothing above 2.
    if a.unshare
        && !sys(libc::syscall(
            libc::SYS_close_range,
            (a.last_slot + 1) as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ))
    {
        return fail(Step::Stdio);
    }
    for (target, &from) in a.from.iter().enumerate() {
        if from >= 0 && libc::dup2(from, target as RawFd) < 0 {
            return fail(Step::Stdio);
        }
    }
    if a.unshare
        && !sys(libc::syscall(
            libc::SYS_close_range,
            3u32,
            libc::c_uint::MAX,
            0u32,
        ))
    {
        return fail(Step::Stdio);
    }
    let leader = match a.leader {
        Leader::Group => libc::setpgid(0, 0),
        Leader::Session => libc::syscall(libc::SYS_setsid) as libc::c_int,
    };
    if leader < 0 {
        return fail(Step::Leader);
    }
    if let Some((uid, gid)) = a.ids {
        // Raw calls: glibc's versions would ask every thread of the daemon to switch too.
        if !sys(libc::syscall(libc::SYS_setgroups, a.ngroups, a.groups))
            || !sys(libc::syscall(libc::SYS_setgid, gid))
            || !sys(libc::syscall(libc::SYS_setuid, uid))
        {
            return fail(Step::User);
        }
    }
    // After any user switch, which clears it.
    if a.die_with_parent {
        if !sys(libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
        )) {
            return fail(Step::ParentDeath);
        }
        if libc::syscall(libc::SYS_getppid) as libc::pid_t != a.daemon {
            return Err((Step::ParentDeath, libc::ESRCH));
        }
    }
    if !a.cwd.is_null() && !sys(libc::syscall(libc::SYS_chdir, a.cwd)) {
        return fail(Step::Cwd);
    }
    Ok(())
}

/// Builds an `OwnedFd` pair for a pipe whose both ends are close-on-exec: (read, write).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors or fails.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    fn plan(program: &str, args: &[&str]) -> ExecPlan {
        ExecPlan {
            candidates: vec![c(program)],
            argv: std::iter::once(program)
                .chain(args.iter().copied())
                .map(c)
                .collect(),
            envp: vec![c("PATH=/usr/bin:/bin"), c("MARK=clone-exec-test")],
            cwd: None,
            stdio: [ChildFd::Null, ChildFd::Null, ChildFd::Null],
            leader: Leader::Group,
            run_as: None,
            die_with_parent: false,
        }
    }

    /// Kills and reaps the child's group when the test ends, however it ends.
    struct Reaped(i32);
    impl Drop for Reaped {
        fn drop(&mut self) {
            // SAFETY: our own child's group, then our own child.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
            reap(self.0);
        }
    }

    fn poll(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the child's exec of `comm`, so that /proc shows the program, not our clone.
    fn exec_done(pid: i32, comm: &str) {
        poll("the exec", || {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        });
    }

    fn status_field(pid: i32, field: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap()
            .trim()
            .to_string()
    }

    #[test]
    fn the_child_gets_0_1_2_and_nothing_else_of_ours() {
        // Plenty of the daemon's own descriptors above the slots.
        let held: Vec<std::fs::File> = (0..50)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let pid = spawn(plan("/bin/sleep", &["30"])).unwrap();
        let _g = Reaped(pid);
        exec_done(pid, "sleep");
        let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        fds.sort_unstable();
        assert_eq!(fds, vec![0, 1, 2]);
        // Ours are all still open and still ours, from this thread and from another one.
        for f in &held {
            assert!(f.try_clone().is_ok());
        }
        let raw: Vec<RawFd> = held.iter().map(|f| f.as_raw_fd()).collect();
        std::thread::spawn(move || {
            for fd in raw {
                // SAFETY: F_GETFD only reads the flags of a descriptor.
                assert!(
                    unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0,
                    "fd {fd} lost"
                );
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_descriptor_opened_after_a_spawn_is_seen_by_every_thread() {
        let pid = spawn(plan("/bin/true", &[])).unwrap();
        reap(pid);
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = f.as_raw_fd();
        // SAFETY: as above.
        let seen = std::thread::spawn(move || unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
        assert!(seen.join().unwrap());
    }

    #[test]
    fn the_child_leads_its_group_or_session_with_default_signals() {
        for leader in [Leader::Group, Leader::Session] {
            let mut p = plan("/bin/sleep", &["30"]);
            p.leader = leader;
            let pid = spawn(p).unwrap();
            let _g = Reaped(pid);
            exec_done(pid, "sleep");
            // SAFETY: plain queries of a pid.
            assert_eq!(unsafe { libc::getpgid(pid) }, pid);
            let sid = unsafe { libc::getsid(pid) };
            assert_eq!(sid == pid, leader == Leader::Session, "{leader:?}");
            assert_eq!(status_field(pid, "SigBlk"), "0000000000000000");
            assert_eq!(status_field(pid, "SigCgt"), "0000000000000000");
            let ignored = u64::from_str_radix(&status_field(pid, "SigIgn"), 16).unwrap();
            assert_eq!(
                ignored & (1 << (libc::SIGPIPE - 1)),
                0,
                "SIGPIPE is ignored"
            );
        }
    }

    #[test]
    fn output_goes_to_the_given_descriptor() {
        let (mut r, w) = pipe().map(|(r, w)| (std::fs::File::from(r), w)).unwrap();
        let mut p = plan("/bin/sh", &["-c", "echo \"$MARK\" in \"$(pwd)\""]);
        p.stdio[1] = ChildFd::Fd(w);
        p.cwd = Some(c("/tmp"));
        let pid = spawn(p).unwrap();
        let _g = Reaped(pid);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap(); // EOF: no copy of the write end is left with us
        assert_eq!(out, "clone-exec-test in /tmp\n");
    }

    #[test]
    fn failures_name_their_step_and_leave_no_child() {
        let missing = spawn(plan("/no/such/program", &[])).unwrap_err();
        assert_eq!(missing.step(), Some(Step::Exec));
        assert_eq!(missing.io_error().kind(), io::ErrorKind::NotFound);

        let mut p = plan("/bin/true", &[]);
        p.cwd = Some(c("/no/such/dir"));
        let bad_cwd = spawn(p).unwrap_err();
        assert_eq!(bad_cwd.step(), Some(Step::Cwd));

        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("not-executable");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let denied = spawn(plan(script.to_str().unwrap(), &[])).unwrap_err();
        assert_eq!(denied.io_error().kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn the_path_is_searched_in_order_past_missing_entries() {
        let mut p = plan("sleep", &["30"]);
        p.candidates = vec![c("/no/such/dir/sleep"), c("/bin/sleep")];
        let pid = spawn(p).unwrap();
        let _g = Reaped(pid);
        exec_done(pid, "sleep");
    }

    #[test]
    fn the_child_dies_with_the_thread_that_spawned_it() {
        let mut p = plan("/bin/sleep", &["30"]);
        p.die_with_parent = true;
        let pid = std::thread::spawn(move || spawn(p).unwrap())
            .join()
            .unwrap();
        let guard = Reaped(pid);
        // The spawning thread is gone: the kernel sends the child SIGKILL.
        let mut status = 0;
        poll("the child to die", || {
            // SAFETY: our own child; WNOHANG.
            unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
        });
        std::mem::forget(guard); // reaped: its pid is no longer ours to signal
        assert!(libc::WIFSIGNALED(status));
        assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    }
}
