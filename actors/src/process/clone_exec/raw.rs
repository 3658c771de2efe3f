//! System calls that touch nothing but registers: for a child that runs beside the daemon's thread.
//!
//! A child made with `clone(CLONE_VM)` and no `CLONE_VFORK` runs at the same time as the thread that
//! made it, in the same memory and with the same thread pointer. Every libc wrapper writes `errno`
//! on failure, and `errno` lives in that thread's TLS: a failed call in the child (a missing PATH
//! entry, say) would change the daemon thread's `errno` under its feet. These make the call with one
//! instruction and answer the kernel's own result: `>= 0`, or `-errno`. Each takes a fixed number of
//! arguments, so that nothing here can index out of bounds or panic.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "processmanager starts children with raw system calls written for x86_64 and aarch64"
);

/// The kernel's answer: the result, or `Err(errno)`.
#[inline(always)]
pub fn check(r: isize) -> Result<isize, i32> {
    if (-4095..0).contains(&r) {
        Err(r.wrapping_neg() as i32)
    } else {
        Ok(r)
    }
}

/// A system call with six arguments.
///
/// # Safety
/// As the call `nr` itself: every pointer argument must be valid for what the kernel does with it.
#[inline(always)]
pub unsafe fn syscall6(
    nr: libc::c_long,
    a0: usize,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
) -> isize {
    let r: isize;
    // SAFETY: the x86_64 Linux system call convention; rcx and r11 are clobbered by `syscall`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => r,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            in("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    // SAFETY: the aarch64 Linux system call convention: number in x8, arguments and result in x0-x5.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr as usize,
            inlateout("x0") a0 => r,
            in("x1") a1,
            in("x2") a2,
            in("x3") a3,
            in("x4") a4,
            in("x5") a5,
            options(nostack),
        );
    }
    r
}

/// A system call with no argument.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall0(nr: libc::c_long) -> isize {
    // SAFETY: as the caller's; the kernel ignores the unused argument registers.
    unsafe { syscall6(nr, 0, 0, 0, 0, 0, 0) }
}

/// A system call with one argument.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall1(nr: libc::c_long, a0: usize) -> isize {
    // SAFETY: as the caller's; the kernel ignores the unused argument registers.
    unsafe { syscall6(nr, a0, 0, 0, 0, 0, 0) }
}

/// A system call with two arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall2(nr: libc::c_long, a0: usize, a1: usize) -> isize {
    // SAFETY: as the caller's; the kernel ignores the unused argument registers.
    unsafe { syscall6(nr, a0, a1, 0, 0, 0, 0) }
}

/// A system call with three arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall3(nr: libc::c_long, a0: usize, a1: usize, a2: usize) -> isize {
    // SAFETY: as the caller's; the kernel ignores the unused argument registers.
    unsafe { syscall6(nr, a0, a1, a2, 0, 0, 0) }
}

/// A system call with four arguments.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall4(nr: libc::c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    // SAFETY: as the caller's; the kernel ignores the unused argument registers.
    unsafe { syscall6(nr, a0, a1, a2, a3, 0, 0) }
}

/// The kernel's `struct clone_args` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, Linux 5.7).
#[repr(C)]
#[derive(Debug, Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    /// The lowest address of the child's stack; the kernel starts it at `stack + stack_size`.
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    /// A descriptor of the cgroup the child is born in (with `CLONE_INTO_CGROUP`).
    pub cgroup: u64,
}

/// The child is born in the cgroup of `CloneArgs::cgroup` (Linux 5.7).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(args)`, whose child runs `func(arg)` on the stack `args` gives and exits with what it
/// answers: the child's pid in the parent, or `-errno`. Written out because the child comes back
/// from the system call on its new stack, where no Rust frame of the caller exists (glibc's own
/// `clone3` wrapper is not exported); the child's path never returns into Rust.
///
/// # Safety
/// As `clone(2)` with the same flags: `args.stack` must be a stack of `args.stack_size` bytes that
/// nothing else uses until the child execs or exits, and `func` must be safe to run there with `arg`.
#[inline(never)]
pub unsafe fn clone3(
    args: &CloneArgs,
    func: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> isize {
    let r: isize;
    // SAFETY: the x86_64 convention as for `syscall6`. In the parent the call returns the pid in rax,
    // and r8 and r9 are kept by the kernel. The child (rax 0) starts on its own stack, 16-byte
    // aligned by the kernel, clears the frame pointer, calls `func(arg)` and exits with its answer.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r8",
            "call r9",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 as isize => r,
            in("rdi") args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r8") arg,
            in("r9") func,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    // SAFETY: the aarch64 convention as for `syscall6`; the kernel keeps x2 and x3. The child (x0
    // 0) clears the frame pointer, calls `func(arg)` and exits with its answer.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x29, #0",
            "mov x0, x3",
            "blr x2",
            "mov x8, #{exit}",
            "svc 0",
            "brk #0",
            "2:",
            exit = const libc::SYS_exit,
            in("x8") libc::SYS_clone3 as usize,
            inlateout("x0") args as *const CloneArgs as usize => r,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x2") func,
            in("x3") arg,
            options(nostack),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_results_and_errors_without_touching_errno() {
        // SAFETY: getpid takes nothing; close of an fd beyond any table only fails.
        let pid = check(unsafe { syscall0(libc::SYS_getpid) });
        assert_eq!(pid, Ok(std::process::id() as isize));
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: as above.
        let closed = check(unsafe { syscall1(libc::SYS_close, i32::MAX as usize) });
        assert_eq!(closed, Err(libc::EBADF));
        // SAFETY: reads this thread's errno.
        assert_eq!(unsafe { *libc::__errno_location() }, 0);
    }
}
