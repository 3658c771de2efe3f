//! Kernels without pidfds (before 5.3): exits are found by polling and signals go by pid, checked
//! against the process's start time, and nothing is lost or left as a zombie.
//!
//! `old_kernel_helper` runs in a process of its own (re-run from this test binary) under a seccomp
//! filter that answers `pidfd_open` and `pidfd_send_signal` with ENOSYS, as such a kernel does; the
//! test runs it and checks that it passed.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use common::*;
use pm_actors::process::{ProcessActor, ProcessHandle};
use pm_protocol::{ProcessSpec, Status};

/// Makes `pidfd_open` and `pidfd_send_signal` fail with ENOSYS in this process and its children.
/// Every thread is switched (TSYNC), and threads started later inherit the filter. `Err` when the
/// sandbox refuses seccomp filters altogether.
fn deny_pidfds() -> std::io::Result<()> {
    let errno = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let nr = |n: libc::c_long| n as u32;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    // The filter only turns calls into errors, never allows more, so it needs no architecture check:
    // this is a test process of the architecture it was built for.
    let mut prog = [
        // A = seccomp_data.nr (offset 0)
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jeq(nr(libc::SYS_pidfd_open), 2),
        jeq(nr(libc::SYS_pidfd_send_signal), 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_RET | libc::BPF_K, errno),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: plain prctl/seccomp calls with a valid, live filter program.
    let r = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_TSYNC,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn reaped(pid: i32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[actix_rt::test]
#[ignore = "run by without_pidfds_exits_stops_and_attach_still_work in a process of its own"]
async fn old_kernel_helper() {
    if let Err(e) = deny_pidfds() {
        println!("SECCOMP-REFUSED: {e}");
        return;
    }
    // The filter is in force: otherwise this test would prove nothing.
    // SAFETY: a plain syscall on our own pid.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
    let err = std::io::Error::last_os_error().raw_os_error();
    assert!(r < 0 && err == Some(libc::ENOSYS), "pidfd_open still works");

    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let limit = Duration::from_secs(10);

    // A child that exits by itself is seen (by polling), reaped, and its exit code kept.
    let p = actor(
        ProcessSpec::shell("quick", "sleep 0.2; exit 3"),
        opts.clone(),
    );
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    let info = poll("the exit, found by polling", limit, || async {
        let i = p.info().await.ok()?;
        (i.status == Status::Failed).then_some(i)
    })
    .await;
    assert_eq!(info.exit_code, Some(3));
    poll("the exited child reaped", limit, || async {
        reaped(pid).then_some(())
    })
    .await;

    // A stop signals by pid and learns of the end by polling.
    let p = actor(ProcessSpec::shell("long", "sleep 60"), opts.clone());
    let pid = p.start().await.unwrap();
    cleanup.group(pid);
    p.stop_and_wait(Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(p.info().await.unwrap().status, Status::Stopped);
    poll("the stopped child reaped", limit, || async {
        reaped(pid).then_some(())
    })
    .await;

    // An attached process (not our child) is signalled by pid after its start time is checked.
    let mut outside = Command::new("sleep")
        .arg("60")
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = outside.id() as i32;
    cleanup.group(pid);
    let p = ProcessHandle::spawn(
        ProcessActor::attach(pid, "adopted".into(), opts).unwrap(),
        "adopted",
    );
    p.stop_and_wait(Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(p.info().await.unwrap().status, Status::Terminated);
    assert!(
        !outside.wait().unwrap().success(),
        "ended by the stop signal"
    );
    println!("OLD-KERNEL-HELPER-PASSED");
}

#[test]
fn without_pidfds_exits_stops_and_attach_still_work() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "old_kernel_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if let Some(why) = stdout.split("SECCOMP-REFUSED: ").nth(1) {
        // Only a sandbox that forbids seccomp filters gets here; this machine's kind allows them.
        eprintln!(
            "skipped: cannot install a seccomp filter here ({})",
            why.lines().next().unwrap_or("")
        );
        return;
    }
    assert!(
        out.status.success() && stdout.contains("OLD-KERNEL-HELPER-PASSED"),
        "the helper failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
