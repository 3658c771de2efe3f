//! System calls that touch nothing but registers: for a child that runs beside the daemon's thread.
//!
//! A child made with `clone(CLONE_VM)` and no `CLONE_VFORK` runs at the same time as the thread that
//! made it, in the same memory and with the same thread pointer. Every libc wrapper writes `errno`
//! on failure, and `errno` lives in that thread's TLS: a failed call in the child (a missing PATH
//! entry, say) would change the daemon thread's `errno` under its feet. These make the call with one
//! instruction and answer the kernel's own result: `>= 0`, or `-errno`.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "processmanager starts children with raw system calls written for x86_64 and aarch64"
);

/// The kernel's answer: the result, or `Err(errno)`.
pub fn check(r: isize) -> Result<isize, i32> {
    if (-4095..0).contains(&r) {
        Err(-r as i32)
    } else {
        Ok(r)
    }
}

/// A system call with up to six arguments.
///
/// # Safety
/// As the call `nr` itself: every pointer argument must be valid for what the kernel does with it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> isize {
    let r: isize;
    // SAFETY: the x86_64 Linux system call convention; rcx and r11 are clobbered by `syscall`.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => r,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    r
}

/// A system call with up to six arguments.
///
/// # Safety
/// As the call `nr` itself: every pointer argument must be valid for what the kernel does with it.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> isize {
    let r: isize;
    // SAFETY: the aarch64 Linux system call convention: number in x8, arguments and result in x0-x5.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr as usize,
            inlateout("x0") a[0] => r,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            options(nostack),
        );
    }
    r
}

/// `syscall6` with the arguments it is given and zeros for the rest.
///
/// # Safety
/// As [`syscall6`].
#[inline(always)]
pub unsafe fn syscall(nr: libc::c_long, args: &[usize]) -> isize {
    let mut a = [0usize; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: as the caller's.
    unsafe { syscall6(nr, a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_results_and_errors_without_touching_errno() {
        // SAFETY: getpid takes nothing; close of an fd beyond any table only fails.
        let pid = check(unsafe { syscall(libc::SYS_getpid, &[]) });
        assert_eq!(pid, Ok(std::process::id() as isize));
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: as above.
        let closed = check(unsafe { syscall(libc::SYS_close, &[i32::MAX as usize]) });
        assert_eq!(closed, Err(libc::EBADF));
        // SAFETY: reads this thread's errno.
        assert_eq!(unsafe { *libc::__errno_location() }, 0);
    }
}
