//! Tests of starting children with clone and exec: real children, checked through /proc.

use super::*;
use std::io::Read;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A plan to run `program` with `args`, its stdio on /dev/null, in its own group.
pub(in crate::process) fn plan(program: &str, args: &[&str]) -> ExecPlan {
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
        open_files: None,
        cgroup_dir: None,
        cgroup_procs: None,
        stop_before_exec: false,
    }
}

/// Kills and reaps the child's group when the test ends, however it ends.
pub(in crate::process) struct Reaped(pub(in crate::process) i32);
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

/// What `read` answers once it answers `want`, or at the deadline. For what an exec sets up after the
/// new name that [`exec_done`] waits for: the new environment, and the closing of the close-on-exec
/// descriptors (a forked child holds a copy of every one of ours until then).
fn once_settled<T: PartialEq>(want: &T, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = read();
    while got != *want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        got = read();
    }
    got
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
    let want = b"PATH=/usr/bin:/bin\0KEEP=kept\0MARK=own\0NEW=1\0".to_vec();
    let environ = once_settled(&want, || {
        std::fs::read(format!("/proc/{pid}/environ")).unwrap()
    });
    assert_eq!(environ, want);
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
    let fds_of_child = || {
        let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
            .collect();
        fds.sort_unstable();
        fds
    };
    let fds = once_settled(&vec![0, 1, 2], fds_of_child);
    assert_eq!(fds, vec![0, 1, 2]);
    // Ours are all still open and still ours, from this thread and from another one.
    for f in &held {
        assert!(f.try_clone().is_ok());
    }
    let raw: Vec<RawFd> = held.iter().map(|f| f.as_raw_fd()).collect();
    std::thread::spawn(move || {
        for fd in raw {
            // SAFETY: F_GETFD only reads the flags of a descriptor.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert!(flags >= 0, "fd {fd} lost");
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
        // SAFETY: as above.
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
    assert_eq!(missing.step(), Some(ChildStep::Exec));
    assert_eq!(missing.io_error().kind(), io::ErrorKind::NotFound);

    let mut p = plan("/bin/true", &[]);
    p.cwd = Some(c("/no/such/dir"));
    let bad_cwd = spawn(p).unwrap_err();
    assert_eq!(bad_cwd.step(), Some(ChildStep::Cwd));

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

/// The soft and hard "Max open files" of `pid`, from its /proc limits.
fn open_files_of(pid: i32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .unwrap();
    let mut words = line.split_whitespace();
    (
        words.next().unwrap().to_string(),
        words.next().unwrap().to_string(),
    )
}

#[test]
fn the_child_gets_the_open_files_limit_of_the_plan_and_ours_stays() {
    let ours = open_files_of(std::process::id() as i32);
    let hard: u64 = ours.1.parse().unwrap();
    let soft = 256.min(hard);
    let mut p = plan("/bin/sleep", &["30"]);
    p.open_files = Some((soft, hard));
    let pid = spawn(p).unwrap();
    let _g = Reaped(pid);
    exec_done(pid, "sleep");
    assert_eq!(open_files_of(pid), (soft.to_string(), hard.to_string()));
    // Limits are per process (no CLONE_THREAD): the child's own copy changed, not ours.
    assert_eq!(open_files_of(std::process::id() as i32), ours);
}

/// A copy of the report pipe's write end held elsewhere (by a child of another kit stopped before
/// its second `close_range`, say) keeps the pipe from its end of file: the start answers anyway, at
/// the exec, from the kit's busy word. Not on the fork path: a forked child borrows no kit.
#[cfg(not(portable_spawn))]
#[test]
fn a_start_answers_at_the_exec_though_the_report_pipe_stays_open() {
    let mut launched = launch(plan("/bin/sleep", &["30"])).unwrap();
    let report_slot = spawner().unwrap().lock().unwrap().kits[launched.kit].slots[3];
    // SAFETY: duplicates the slot, which holds the report pipe's write end until the child reports.
    let held = unsafe { libc::fcntl(report_slot, libc::F_DUPFD_CLOEXEC, 3) };
    assert!(held >= 0);
    // SAFETY: a new descriptor owned by nothing else.
    let _held = unsafe { OwnedFd::from_raw_fd(held) };
    let pid = launched.pid();
    let _g = Reaped(pid);
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        if let Some(answer) = launched.progress() {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no answer though the child exec'd"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(answer.unwrap(), pid);
    exec_done(pid, "sleep");
}

#[test]
fn a_child_stopped_before_its_exec_is_killed_and_reaped_when_given_up() {
    let mut p = plan("/bin/sleep", &["30"]);
    p.stop_before_exec = true;
    let mut launched = launch(p).unwrap();
    let pid = launched.pid();
    poll("the child to stop", || {
        status_field(pid, "State").starts_with('T')
    });
    assert!(launched.progress().is_none(), "a stopped child answered");
    launched.kill();
    poll("the child to be reaped", || launched.try_reap());
    // SAFETY: a query of a pid that is no longer our child.
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1, "child {pid} left behind");
}

/// A launch dropped before its answer (its actor stopped) kills its child, and the child is reaped
/// without the dropping thread waiting for it.
#[test]
fn a_launch_dropped_before_its_answer_leaves_no_child() {
    let mut p = plan("/bin/sleep", &["30"]);
    p.stop_before_exec = true;
    let launched = launch(p).unwrap();
    let pid = launched.pid();
    poll("the child to stop", || {
        status_field(pid, "State").starts_with('T')
    });
    drop(launched);
    // SAFETY: a query of a pid, which fails once the child is reaped.
    poll(
        "the child to be reaped",
        || unsafe { libc::kill(pid, 0) } == -1,
    );
}

/// A cgroup of the test's own beside this process's, removed once empty when dropped.
struct TestCgroup(std::path::PathBuf);
impl Drop for TestCgroup {
    fn drop(&mut self) {
        poll("the test's cgroup to empty", || {
            std::fs::remove_dir(&self.0).is_ok() || !self.0.exists()
        });
    }
}

/// A new cgroup for a test, or `None` with the reason printed where no cgroup v2 is writable.
fn test_cgroup(tag: &str) -> Option<TestCgroup> {
    let place = match crate::process::cgroup::place() {
        Ok(place) => place,
        Err(why) => {
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let dir = place
        .parent
        .join(format!("pm-clone-test-{}-{tag}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    Some(TestCgroup(dir))
}

/// Both ways into a cgroup put the child there before its program runs: born in it (`clone3`), or
/// moved by its own write to `cgroup.procs` (the way where the kernel refuses `clone3`).
#[test]
fn the_child_runs_in_the_cgroup_of_its_plan_born_there_or_moved() {
    for born in [true, false] {
        let Some(cg) = test_cgroup(if born { "born" } else { "moved" }) else {
            return;
        };
        let mut p = plan("/bin/sleep", &["30"]);
        p.cgroup_procs = Some(c(cg.0.join("cgroup.procs").to_str().unwrap()));
        if born {
            p.cgroup_dir = Some(c(cg.0.to_str().unwrap()));
        }
        let pid = spawn(p).unwrap();
        let reaped = Reaped(pid);
        exec_done(pid, "sleep");
        let procs = std::fs::read_to_string(cg.0.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "born: {born}");
        // Linux 5.7 and later have it, and a refusal would be remembered for every child (the fork
        // path has no clone3: its child moves itself, as the assertion above shows).
        #[cfg(not(portable_spawn))]
        if born {
            assert!(clone3_usable(), "clone3 with CLONE_INTO_CGROUP was refused");
        }
        drop(reaped);
    }
}
