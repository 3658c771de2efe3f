//! A child between its clone and its exec as the daemon sees it: what it reports, when its kit is
//! free again, and giving it up (killed, then reaped without an actor's thread waiting for it).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
#[cfg(not(portable_spawn))]
use std::sync::atomic::{AtomicI32, Ordering};
#[cfg(not(portable_spawn))]
use std::sync::Arc;

#[cfg(not(portable_spawn))]
use super::kits::spawner;
#[cfg(not(portable_spawn))]
use super::pre_exec::ChildArgs;
use super::{ChildFailure, ChildStep, ExecPlan, SpawnFailure, KIT_FREED, UNSHARED};

/// A child between clone and exec. [`Launch::progress`] tells when it has exec'd (or failed); until
/// then this holds what the child reads.
pub struct Launch {
    pid: i32,
    /// The report pipe's read end (non-blocking): [`UNSHARED`], then end of file at the exec, or a
    /// failure record.
    report: OwnedFd,
    /// The kit the child borrows.
    pub(super) kit: usize,
    generation: u64,
    /// The kit's busy word (the kernel clears it at the exec or exit).
    #[cfg(not(portable_spawn))]
    busy: Arc<AtomicI32>,
    released: bool,
    got: Vec<u8>,
    done: bool,
    /// Read by the child until its exec: dropped only once the kit's busy word is clear, or handed
    /// to the thread that reaps a child given up ([`Launch::abandon`]).
    borrowed: Option<Borrowed>,
}

/// What a child reads until its exec or exit: its arguments and the plan they point into.
struct Borrowed {
    #[cfg(not(portable_spawn))]
    _args: Box<ChildArgs>,
    _plan: ExecPlan,
}

/// [`Borrowed`] on its way to the thread that reaps a child given up, by a pointer that frees nothing
/// when dropped: should that thread not start, the memory is leaked rather than freed under the
/// child.
struct HandedOver(*mut Borrowed);

// SAFETY: the pointer is the only way to the `Borrowed` (its launch has let go of it), and the
// pointers inside it point into its own heap data; only the receiving thread touches it.
unsafe impl Send for HandedOver {}

impl Launch {
    /// The launch of child `pid`, cloned on `kit` (its index and generation) whose busy word is
    /// `busy`, reading `args`, which point into `plan`.
    #[cfg(not(portable_spawn))]
    pub(super) fn new(
        pid: i32,
        report: OwnedFd,
        (kit, generation): (usize, u64),
        busy: Arc<AtomicI32>,
        args: Box<ChildArgs>,
        plan: ExecPlan,
    ) -> Launch {
        Launch {
            pid,
            report,
            kit,
            generation,
            busy,
            released: false,
            got: Vec::new(),
            done: false,
            borrowed: Some(Borrowed {
                _args: args,
                _plan: plan,
            }),
        }
    }

    /// The launch of child `pid`, forked for `plan`: it borrows no kit, so there is nothing to
    /// release (the kit's index and generation are unused), and only its report pipe tells its exec.
    #[cfg(portable_spawn)]
    pub(super) fn forked(pid: i32, report: OwnedFd, plan: ExecPlan) -> Launch {
        Launch {
            pid,
            report,
            kit: 0,
            generation: 0,
            released: true,
            got: Vec::new(),
            done: false,
            borrowed: Some(Borrowed { _plan: plan }),
        }
    }

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
    ///
    /// The answer comes from the kit's busy word, which the kernel clears at the child's exec or
    /// exit, or from the pipe's end of file, whichever is seen first. The pipe alone is not enough:
    /// another child, cloned while this one's report slot was still in the shared table, holds a
    /// copy of its write end until its own second `close_range`, and may be stopped before it. The
    /// kernel wakes nobody when the word clears, so call this again now and then, not only when the
    /// pipe is readable.
    pub fn progress(&mut self) -> Option<Result<i32, SpawnFailure>> {
        if self.done {
            return None;
        }
        // Read before the pipe: whatever the child wrote before its exec or exit is in it then.
        let gone = self.child_gone();
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
        if gone {
            self.release();
        }
        if let [step, e0, e1, e2, e3, ..] = self.got[..] {
            let step = ChildStep::from_raw(u32::from(step));
            let errno = i32::from_ne_bytes([e0, e1, e2, e3]);
            self.finish_kit();
            reap(self.pid);
            return Some(Err(SpawnFailure::Child(ChildFailure { step, errno })));
        }
        if eof || gone {
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

    /// Whether the child has exec'd or exited, as its kit tells: its busy word is clear, or the kit
    /// has been lent again since (which needs the word clear first, and sets it again for the next
    /// child). The second is asked without waiting for the spawner's lock: if another thread holds
    /// it, the next call asks again.
    #[cfg(not(portable_spawn))]
    fn child_gone(&self) -> bool {
        if self.busy.load(Ordering::Acquire) == 0 {
            return true;
        }
        let Ok(spawner) = spawner() else {
            return false;
        };
        let sp = match spawner.try_lock() {
            Ok(sp) => sp,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        sp.kits
            .get(self.kit)
            .is_some_and(|kit| kit.generation != self.generation)
    }

    /// Whether the child has exec'd or exited, as its kit tells: a forked child has none, so only
    /// its report pipe tells.
    #[cfg(portable_spawn)]
    fn child_gone(&self) -> bool {
        false
    }

    /// The child has its own table (or is gone): the kit's slots go back to /dev/null.
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            release_slots(self.kit, self.generation);
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
    ///
    /// A child still alive just after the SIGKILL (it dies in the kernel, which can take long: an exec
    /// from a hung file system) is reaped by a thread of its own, which keeps what the child reads
    /// until then and frees the kit after, so that no actor's thread waits in `waitpid`.
    fn abandon(&mut self) {
        self.kill();
        if self.try_reap() {
            return;
        }
        self.done = true;
        self.released = true;
        let (pid, kit, generation) = (self.pid, self.kit, self.generation);
        let borrowed = self
            .borrowed
            .take()
            .map(|b| HandedOver(Box::into_raw(Box::new(b))));
        let reaper = std::thread::Builder::new()
            .name("pm-give-up".into())
            .spawn(move || {
                reap(pid);
                if let Some(HandedOver(b)) = borrowed {
                    // SAFETY: made by Box::into_raw above and handed only here; the child that read
                    // it has been reaped.
                    drop(unsafe { Box::from_raw(b) });
                }
                release_kit(kit, generation);
            });
        if reaper.is_err() {
            // No thread to be had: the borrowed memory stays leaked, and this thread reaps.
            reap(pid);
            release_kit(kit, generation);
        }
    }

    /// Sends the child SIGKILL, to give it up (then [`Launch::try_reap`] until it answers true). A
    /// stopped child dies of it too.
    pub fn kill(&mut self) {
        if !self.done {
            // SAFETY: our own child, not yet reaped (`done` is set when it is), so the pid is still its.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Reaps the child if it has exited, without waiting: true once it is reaped (or was answered
    /// for already). For a child given up with [`Launch::kill`], polled from the reactor, so that no
    /// actor's thread blocks in `waitpid`.
    pub fn try_reap(&mut self) -> bool {
        if self.done {
            return true;
        }
        let mut status = 0;
        // SAFETY: our own child, not yet reaped; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
        if r != self.pid
            && !(r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        {
            return false;
        }
        crate::process::orphans::forget(self.pid);
        // Reaped, so it has exited: its kit's busy word is clear and its arguments unused.
        self.finish_kit();
        true
    }
}

impl Drop for Launch {
    /// A launch given up before its answer (its actor stopped).
    fn drop(&mut self) {
        self.abandon();
    }
}

/// Points kit `kit`'s slots back at /dev/null if it still serves the launch of `generation`.
#[cfg(not(portable_spawn))]
fn release_slots(kit: usize, generation: u64) {
    if let Ok(s) = spawner() {
        let mut sp = s.lock().unwrap_or_else(|p| p.into_inner());
        sp.release(kit, generation);
    }
}

/// A forked child borrows no slots.
#[cfg(portable_spawn)]
fn release_slots(_kit: usize, _generation: u64) {}

/// Frees kit `kit` of a child that has exited, for whoever waits for a kit.
fn release_kit(kit: usize, generation: u64) {
    release_slots(kit, generation);
    KIT_FREED.notify_waiters();
}

/// Starts the plan's program and waits for its exec; answers the child's pid. The child has been
/// reaped when it fails.
#[cfg(test)]
pub fn spawn(plan: ExecPlan) -> Result<i32, SpawnFailure> {
    super::launch(plan)?.wait()
}

/// Waits for a child that failed before its exec (it exits at once).
pub(super) fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: our own child, which has already called _exit.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    crate::process::orphans::forget(pid);
}
