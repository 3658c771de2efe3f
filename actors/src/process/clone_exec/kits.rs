//! What children between clone and exec borrow: kits of a stack and four reserved descriptor slots,
//! and the spawner that lends them out and takes them back.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A child's stack size: it runs a few small frames between clone and exec.
pub(super) const STACK_BYTES: usize = 32 * 1024;

/// How many children may be between clone and exec at once; one more waits for the first to exec
/// (a wait of an exec at most). Each kit holds four descriptors for the life of the daemon; 8, 16
/// and 32 measured the same for 1,000 starts pipelined on one connection (BENCHMARKS.md).
const KITS: usize = 8;

/// What one child between clone and exec borrows: four reserved low descriptors (its 0, 1 and 2 and
/// its report pipe, each /dev/null while idle) and a stack.
pub(super) struct Kit {
    /// Sorted; the last is the report pipe's write end. Reserved when the table was small, so that
    /// the child's private table (everything up to the last slot) is small too.
    pub(super) slots: [RawFd; 4],
    pub(super) stack: Option<Stack>,
    /// 1 from clone until the child execs or exits: the kernel zeroes it then (`CLONE_CHILD_CLEARTID`),
    /// and only then are the stack and the child's arguments free.
    pub(super) busy: Arc<AtomicI32>,
    /// The slots still hold some child's descriptors.
    pub(super) dirty: bool,
    /// Counts the kit's uses, so that a late release by an old launch cannot touch a new child's slots.
    pub(super) generation: u64,
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
pub(super) struct Spawner {
    pub(super) kits: Vec<Kit>,
    pub(super) devnull: OwnedFd,
    /// `close_range(CLOSE_RANGE_UNSHARE)` works here (Linux 5.9+): the child shares the daemon's
    /// descriptor table until it makes its own small one. Without it the child gets a full copy and
    /// the exec closes the close-on-exec ones, as std does.
    pub(super) unshare: bool,
}

pub(super) fn spawner() -> io::Result<&'static Mutex<Spawner>> {
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
    pub(super) fn acquire(&mut self) -> io::Result<usize> {
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
    pub(super) fn free_kit(&self) -> Option<usize> {
        self.kits
            .iter()
            .position(|k| k.busy.load(Ordering::Acquire) == 0)
    }

    /// Points a kit's slots back at /dev/null, so that the daemon holds no extra end of a child's pipe.
    pub(super) fn reset(&mut self, i: usize) {
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
    pub(super) fn release(&mut self, i: usize, generation: u64) {
        if self.kits[i].generation == generation {
            self.reset(i);
        }
    }
}

/// A child's stack: its own mapping, so that only the pages a child touches take memory (a few, not
/// all 32 KiB), with an inaccessible page below it, so that an overflow faults instead of writing
/// over the daemon's heap.
pub(super) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: a plain mapping, used by one child at a time under the spawner's lock.
unsafe impl Send for Stack {}

impl Stack {
    fn new() -> io::Result<Stack> {
        let guard = crate::process::procfs::page_size();
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
    pub(super) fn top(&self) -> *mut libc::c_void {
        (self.base as usize + self.len) as *mut libc::c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no child uses it (kits are dropped only with the spawner).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Points `slot` at `fd`'s file.
pub(super) fn set_slot(slot: RawFd, fd: RawFd) -> io::Result<()> {
    // SAFETY: both are open descriptors; dup3 atomically replaces what `slot` refers to.
    if unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
