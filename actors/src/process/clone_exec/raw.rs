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
