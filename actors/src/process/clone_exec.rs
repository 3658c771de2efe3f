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
//! exec'd, about 0.6 ms a start on a 2-core VM, during which an actor thread could have started the
//! next child. Without it, [`launch`] answers at once and the child reports on a pipe ([`Launch`]); it
//! borrows a kit (stack and slots) that is not used again before the kernel says, by clearing a
//! word (`CLONE_CHILD_CLEARTID`), that the child has exec'd or exited.
//!
//! The child runs on its own stack in the daemon's memory, beside the daemon's threads and with the
//! calling thread's thread pointer, so between clone and exec it makes raw system calls only
//! ([`super::raw`]: not even `errno`, which is that thread's): no allocation, no lock, no libc call
//! (glibc's `setuid` would signal the daemon's threads, for one). All that it needs is built before
//! the clone.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::raw;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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

/// A child's stack size: it runs a few small frames between clone and exec.
const STACK_BYTES: usize = 32 * 1024;

/// How many children may be between clone and exec at once; one more waits for the first to exec
/// (a wait of an exec at most). Each kit holds four descriptors for the life of the daemon; 8, 16
/// and 32 measured the same for 1,000 starts pipelined on one connection (0.60-0.77 s each).
const KITS: usize = 8;

/// The first byte a child writes on its report pipe: it has its own descriptor table now, so the
/// daemon may point the kit's slots elsewhere (and must, for the pipe to reach end of file at exec).
const UNSHARED: u8 = 0xff;

/// A failure record on the report pipe: the step, then the errno in native byte order.
const FAILURE_BYTES: usize = 5;

/// What one child between clone and exec borrows: four reserved low descriptors (its 0, 1 and 2 and
/// its report pipe, each /dev/null while idle) and a stack.
struct Kit {
    /// Sorted; the last is the report pipe's write end. Reserved when the table was small, so that
    /// the child's private table (everything up to the last slot) is small too.
    slots: [RawFd; 4],
    stack: Option<Stack>,
    /// 1 from clone until the child execs or exits: the kernel zeroes it then (`CLONE_CHILD_CLEARTID`),
    /// and only then are the stack and the child's arguments free.
    busy: Arc<AtomicI32>,
    /// The slots still hold some child's descriptors.
    dirty: bool,
    /// Counts the kit's uses, so that a late release by an old launch cannot touch a new child's slots.
    generation: u64,
}

impl Kit {
    /// A kit with four new slots on /dev/null, each the lowest free descriptor number (3 or above).
    fn reserve(devnull: &OwnedFd) -> io::Result<Kit> {
        let mut slots = [0; 4];
        for i in 0..slots.len() {
            // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd (the lowest free one >= 3) or -1.
            let fd = unsafe { libc::fcntl(devnull.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if fd < 0 {
                let e = io::Error::last_os_error();
                for &taken in &slots[..i] {
                    // SAFETY: a descriptor this loop just made and nothing else refers to.
                    unsafe { libc::close(taken) };
                }
                return Err(e);
            }
            slots[i] = fd;
        }
        slots.sort_unstable();
        Ok(Kit {
            slots,
            stack: None,
            busy: Arc::new(AtomicI32::new(0)),
            dirty: false,
            generation: 0,
        })
    }
}

/// Every kit, and how children get their descriptor table.
struct Spawner {
    kits: Vec<Kit>,
    devnull: OwnedFd,
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
        // As many kits as the descriptor limit allows, up to KITS: one is enough to start children.
        let mut kits = Vec::with_capacity(KITS);
        while kits.len() < KITS {
            match Kit::reserve(&devnull) {
                Ok(kit) => kits.push(kit),
                Err(_) if !kits.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        // Came with CLOSE_RANGE_UNSHARE (Linux 5.9). Probed without the flag: with it, this thread
        // would leave the descriptor table it shares with the daemon's other threads.
        // SAFETY: closes a descriptor number beyond any table; 0 where close_range exists.
        let unshare =
            unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0u32) } == 0;
        Ok(Spawner {
            kits,
            devnull,
            unshare,
        })
    }

    /// A kit whose last child has exec'd or exited, its slots back on /dev/null. When all are in use,
    /// waits for one child to get there: the wait is bounded by a clone and an exec, and needs nothing
    /// of the daemon's threads.
    fn acquire(&mut self) -> io::Result<usize> {
        loop {
            if let Some(i) = self.free_kit() {
                self.reset(i);
                let kit = &mut self.kits[i];
                kit.generation += 1;
                if kit.stack.is_none() {
                    kit.stack = Some(Stack::new()?);
                }
                return Ok(i);
            }
            let word = &*self.kits[0].busy;
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            // SAFETY: waits while the word is 1, for at most 1 ms; the kernel wakes us when it clears it.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_WAIT,
                    1,
                    &timeout as *const libc::timespec,
                );
            }
        }
    }

    /// A kit whose last child has exec'd or exited.
    fn free_kit(&self) -> Option<usize> {
        self.kits
            .iter()
            .position(|k| k.busy.load(Ordering::Acquire) == 0)
    }

    /// Points a kit's slots back at /dev/null, so that the daemon holds no extra end of a child's pipe.
    fn reset(&mut self, i: usize) {
        let devnull = self.devnull.as_raw_fd();
        let kit = &mut self.kits[i];
        if kit.dirty {
            for &slot in &kit.slots {
                let _ = set_slot(slot, devnull);
            }
            kit.dirty = false;
        }
    }

    /// Resets kit `i` if it still serves the launch of `generation`.
    fn release(&mut self, i: usize, generation: u64) {
        if self.kits[i].generation == generation {
            self.reset(i);
        }
    }
}

/// A child's stack: its own mapping, so that only the pages a child touches take memory (a few, not
/// all 32 KiB), with an inaccessible page below it, so that an overflow faults instead of writing
/// over the daemon's heap.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: a plain mapping, used by one child at a time under the spawner's lock.
unsafe impl Send for Stack {}

impl Stack {
    fn new() -> io::Result<Stack> {
        let guard = page_size();
        let len = STACK_BYTES + guard;
        // SAFETY: a fresh anonymous private mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of the mapping just made.
        if unsafe { libc::mprotect(base, guard, libc::PROT_NONE) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: the mapping just made, unused.
            unsafe { libc::munmap(base, len) };
            return Err(e);
        }
        Ok(Stack { base, len })
    }

    /// The stack grows down from its top, which is page-aligned (so 16-byte aligned).
    fn top(&self) -> *mut libc::c_void {
        (self.base as usize + self.len) as *mut libc::c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no child uses it (kits are dropped only with the spawner).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Points `slot` at `fd`'s file.
fn set_slot(slot: RawFd, fd: RawFd) -> io::Result<()> {
    // SAFETY: both are open descriptors; dup3 atomically replaces what `slot` refers to.
    if unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What the child reads: pointers into the plan, valid until the child execs or exits.
struct ChildArgs {
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: *const libc::c_char,
    /// For each of 0, 1, 2: the slot to copy from, or -1 to keep the daemon's.
    from: [RawFd; 3],
    /// The report pipe's write end, the highest slot: the child's table keeps what is below it too.
    report: RawFd,
    unshare: bool,
    leader: Leader,
    groups: *const libc::gid_t,
    ngroups: usize,
    ids: Option<(libc::uid_t, libc::gid_t)>,
    die_with_parent: bool,
    daemon: libc::pid_t,
}

/// A child between clone and exec. [`Launch::progress`] tells when it has exec'd (or failed); until
/// then this holds what the child reads.
pub struct Launch {
    pid: i32,
    /// The report pipe's read end (non-blocking): [`UNSHARED`], then end of file at the exec, or a
    /// failure record.
    report: OwnedFd,
    kit: usize,
    generation: u64,
    /// The kit's busy word (the kernel clears it at the exec or exit).
    busy: Arc<AtomicI32>,
    released: bool,
    got: Vec<u8>,
    done: bool,
    // Read by the child until its exec: dropped only once the kit's busy word is clear.
    _args: Box<ChildArgs>,
    _plan: ExecPlan,
}

/// Wakes the starts that wait for a kit (see [`kit_freed`]).
static KIT_FREED: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Whether a launch could take a kit now, without waiting for a child's exec. True when the spawner
/// cannot be made: the launch then answers that error.
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
    let nul = |v: &Vec<CString>| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
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
        argv: nul(&plan.argv),
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
    let pid = unsafe {
        libc::clone(
            child_main,
            top,
            flags,
            &mut *args as *mut ChildArgs as *mut libc::c_void,
            std::ptr::null_mut::<libc::pid_t>(),
            std::ptr::null_mut::<libc::c_void>(),
            busy.as_ptr(),
        )
    };
    let clone_error = io::Error::last_os_error();
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
    Ok(Launch {
        pid,
        report,
        kit: k,
        generation,
        busy,
        released: false,
        got: Vec::new(),
        done: false,
        _args: args,
        _plan: plan,
    })
}

impl Launch {
    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The report pipe's read end, to wait on (readable) between calls to [`Launch::progress`].
    pub fn report_fd(&self) -> RawFd {
        self.report.as_raw_fd()
    }

    /// Reads what the child has reported, without blocking: `None` while it is still on its way to
    /// its exec; `Ok(pid)` once it has exec'd; `Err` once it has failed (it has been reaped then).
    /// A child killed before it could report is seen here too: its end of the pipe closes when its
    /// kit's busy word clears, so call this again now and then, not only when the pipe is readable.
    pub fn progress(&mut self) -> Option<Result<i32, SpawnFailure>> {
        if self.done {
            return None;
        }
        let mut eof = false;
        let mut buf = [0u8; 16];
        loop {
            // SAFETY: reads into a local buffer from our own non-blocking descriptor.
            let n =
                unsafe { libc::read(self.report.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            match n {
                n if n > 0 => self.got.extend_from_slice(&buf[..n as usize]),
                0 => {
                    eof = true;
                    break;
                }
                _ => match io::Error::last_os_error() {
                    e if e.kind() == io::ErrorKind::Interrupted => continue,
                    e if e.kind() == io::ErrorKind::WouldBlock => break,
                    e => {
                        self.abandon();
                        return Some(Err(SpawnFailure::Daemon(e)));
                    }
                },
            }
        }
        if self.got.first() == Some(&UNSHARED) {
            self.got.remove(0);
            self.release();
        }
        if self.busy.load(Ordering::Acquire) == 0 {
            self.release();
        }
        if self.got.len() >= FAILURE_BYTES {
            let step = Step::from_raw(u32::from(self.got[0]));
            let errno = i32::from_ne_bytes([self.got[1], self.got[2], self.got[3], self.got[4]]);
            self.finish_kit();
            reap(self.pid);
            return Some(Err(SpawnFailure::Child(ChildFailure { step, errno })));
        }
        if eof {
            self.finish_kit();
            return Some(Ok(self.pid));
        }
        None
    }

    /// Blocks until [`Launch::progress`] has an answer: for tests and threads of their own.
    #[cfg(test)]
    pub fn wait(mut self) -> Result<i32, SpawnFailure> {
        loop {
            if let Some(r) = self.progress() {
                return r;
            }
            let mut pfd = libc::pollfd {
                fd: self.report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd; a 10 ms timeout, so a child killed before it reported is seen.
            unsafe { libc::poll(&mut pfd, 1, 10) };
        }
    }

    /// The child has its own table (or is gone): the kit's slots go back to /dev/null.
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            if let Ok(s) = spawner() {
                let mut sp = s.lock().unwrap_or_else(|p| p.into_inner());
                sp.release(self.kit, self.generation);
            }
        }
    }

    /// The child has exec'd or exited: nothing of the kit is in use any more.
    fn finish_kit(&mut self) {
        self.release();
        self.done = true;
        KIT_FREED.notify_waiters();
    }

    /// Gives the child up before its answer: it is killed and reaped, so that it no longer reads its
    /// arguments when they are freed.
    fn abandon(&mut self) {
        if self.done {
            return;
        }
        // SAFETY: our own child, not yet reaped, so the pid is still its.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        reap(self.pid);
        self.finish_kit();
    }
}

impl Drop for Launch {
    /// A launch given up before its answer (its actor stopped).
    fn drop(&mut self) {
        self.abandon();
    }
}

/// Starts the plan's program and waits for its exec; answers the child's pid. The child has been
/// reaped when it fails.
#[cfg(test)]
pub fn spawn(plan: ExecPlan) -> Result<i32, SpawnFailure> {
    launch(plan)?.wait()
}

/// Waits for a child that failed before its exec (it exits at once).
fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: our own child, which has already called _exit.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    super::orphans::forget(pid);
}

/// A raw system call's result as the child uses it: `Err(errno)` on failure.
fn sys(nr: libc::c_long, args: &[usize]) -> Result<isize, i32> {
    // SAFETY: the callers pass arguments valid for the call (see `child_steps`).
    raw::check(unsafe { raw::syscall(nr, args) })
}

/// The child, from clone to exec. Raw system calls only (see the module docs).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
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
fn exec(a: &ChildArgs) -> (Step, i32) {
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
    (Step::Exec, errno)
}

/// Every signal, as the kernel's 8-byte mask.
const ALL_SIGNALS: u64 = !0;

/// Sets this thread's signal mask (the kernel's own, so glibc's reserved signals too); answers the old.
/// A raw system call, so the child may make it too.
fn set_signal_mask(mask: u64) -> u64 {
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

fn child_steps(a: &ChildArgs) -> Result<(), (Step, i32)> {
    let step = |step: Step| move |errno: i32| (step, errno);
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
        .map_err(step(Step::Stdio))?;
    }
    // The daemon may let go of the kit's slots now.
    let unshared = [UNSHARED];
    sys(
        libc::SYS_write,
        &[a.report as usize, unshared.as_ptr() as usize, 1],
    )
    .map_err(step(Step::Stdio))?;
    for (target, &from) in a.from.iter().enumerate() {
        if from >= 0 {
            // dup3, not dup2 (which aarch64 lacks): `from` is a slot (>= 3), never `target`.
            sys(libc::SYS_dup3, &[from as usize, target, 0]).map_err(step(Step::Stdio))?;
        }
    }
    if a.unshare && a.report > 3 {
        sys(libc::SYS_close_range, &[3, (a.report - 1) as usize, 0]).map_err(step(Step::Stdio))?;
    }
    match a.leader {
        Leader::Group => sys(libc::SYS_setpgid, &[0, 0]),
        Leader::Session => sys(libc::SYS_setsid, &[]),
    }
    .map_err(step(Step::Leader))?;
    if let Some((uid, gid)) = a.ids {
        // Raw calls: glibc's versions would ask every thread of the daemon to switch too.
        sys(libc::SYS_setgroups, &[a.ngroups, a.groups as usize]).map_err(step(Step::User))?;
        sys(libc::SYS_setgid, &[gid as usize]).map_err(step(Step::User))?;
        sys(libc::SYS_setuid, &[uid as usize]).map_err(step(Step::User))?;
    }
    // After any user switch, which clears it.
    if a.die_with_parent {
        sys(
            libc::SYS_prctl,
            &[libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize],
        )
        .map_err(step(Step::ParentDeath))?;
        if sys(libc::SYS_getppid, &[]) != Ok(a.daemon as isize) {
            return Err((Step::ParentDeath, libc::ESRCH));
        }
    }
    if !a.cwd.is_null() {
        sys(libc::SYS_chdir, &[a.cwd as usize]).map_err(step(Step::Cwd))?;
    }
    Ok(())
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
            envp: ChildEnv {
                base: None,
                extra: vec![c("PATH=/usr/bin:/bin"), c("MARK=clone-exec-test")],
            },
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

    /// The shared environment minus the names the child sets, then the child's own, in that order.
    #[test]
    fn a_childs_own_variables_replace_the_shared_ones() {
        let mut p = plan("/bin/sleep", &["30"]);
        p.envp = ChildEnv {
            base: Some(Arc::new(vec![
                c("PATH=/usr/bin:/bin"),
                c("MARK=shared"),
                c("KEEP=kept"),
            ])),
            extra: vec![c("MARK=own"), c("NEW=1")],
        };
        let pid = spawn(p).unwrap();
        let _g = Reaped(pid);
        exec_done(pid, "sleep");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert_eq!(environ, b"PATH=/usr/bin:/bin\0KEEP=kept\0MARK=own\0NEW=1\0");
    }

    /// The start time kept at the clone is the one /proc shows, whenever the clone pinned it down.
    #[test]
    fn the_start_time_kept_at_the_clone_is_the_kernels() {
        let mut kept = 0;
        for _ in 0..40 {
            let pid = spawn(plan("/bin/sleep", &["30"])).unwrap();
            let _reaped = Reaped(pid);
            let Some(ticks) = super::super::orphans::start_ticks(pid) else {
                continue;
            };
            let shown = super::super::procfs::read_stat(pid).unwrap().start_time;
            assert_eq!(ticks, shown, "child {pid}");
            kept += 1;
        }
        // A clone takes well under a tick (10 ms): both readings fall in one tick nearly always.
        assert!(kept > 0, "no clone of 40 had its start time kept");
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
