//! The escape suite: programs that try to outlive their process's end (a `setsid` child, a double fork, a
//! self-daemonizing program, a child that ignores SIGTERM, a grandchild in a process group of its own,
//! a burst of forks during the stop), and the four ways a process ends (`stop`, `delete`, the daemon's
//! SIGTERM, its SIGKILL followed by its next start). After each, no process of the test may be left.
//!
//! Every test runs once per containment mode the machine offers ([`modes`]). Each program's processes
//! are marked with a number no other test uses (`sleep 4242xxxxx`), found by their command line, and
//! killed when the test ends, whether it passed or not.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{ok, skip_cgroup_mode, wait_for, Daemon};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long the survivors of a teardown have to go (a stop answers once they are gone; the deadline
/// only bounds a failure).
const GONE_WITHIN: Duration = Duration::from_secs(20);

/// The daemon flags of each containment mode this machine offers.
fn modes() -> Vec<(&'static str, Vec<&'static str>)> {
    // Group mode: always available, and the only mode of a daemon without cgroups. Cgroup mode
    // where the daemon finds a writable cgroup v2 ([`runs_in`] skips it, saying why, elsewhere).
    vec![
        ("group", vec!["--cgroups", "off"]),
        ("cgroup", vec!["--cgroups", "auto"]),
    ]
}

/// Whether daemon `d` runs in containment `mode`: cgroup mode needs a writable cgroup v2, and the
/// daemon's log says which it found; where it fell back to groups, the cgroup round is skipped.
fn runs_in(d: &Daemon, mode: &str) -> bool {
    if mode != "cgroup" {
        return true;
    }
    let mut line = String::new();
    wait_for(
        "the daemon's containment line",
        Duration::from_secs(10),
        || {
            line = d
                .stderr()
                .lines()
                .find(|l| l.contains("containment:"))
                .unwrap_or_default()
                .to_string();
            !line.is_empty()
        },
    );
    let cgroups = line.contains("one cgroup per process");
    if !cgroups {
        skip_cgroup_mode(&line);
    }
    cgroups
}

/// A number for a `sleep` no other test (in this run or a parallel one) uses.
fn tag() -> u64 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) as u64;
    4_242_000_000 + (std::process::id() as u64 % 10_000) * 100 + n
}

/// The processes whose command line is `sleep <tag>` for one of `tags`, and the shells that run them.
fn marked(tags: &BTreeSet<u64>) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if !common::alive(pid) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if tags.iter().any(|t| text.contains(&t.to_string())) {
            found.push(pid);
        }
    }
    found
}

/// How many `sleep <tag>` processes there are for `tags` (the shells that run them not counted).
fn sleeps(tags: &BTreeSet<u64>) -> usize {
    marked(tags)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        })
        .count()
}

/// The start time of `pid` in clock ticks after boot.
fn started(pid: i32) -> Option<u64> {
    pm_actors::process::procfs::read_stat(pid)
        .ok()
        .map(|s| s.start_time)
}

/// The marked processes of one test: whatever is left is SIGKILLed when it drops, pass or fail.
struct Marks {
    tags: BTreeSet<u64>,
}

impl Drop for Marks {
    fn drop(&mut self) {
        // Repeated: a forking loop may make a new one while the last is killed.
        for _ in 0..50 {
            let left = marked(&self.tags);
            if left.is_empty() {
                return;
            }
            for pid in left {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One escaping program: its name, its command, and the tags of the processes that must come up.
struct Escape {
    name: &'static str,
    command: String,
    /// Present while it runs: the test waits for them before the teardown.
    expect: Vec<u64>,
}

/// The escaping programs; their tags are added to `marks`.
fn escapes(marks: &mut Marks) -> Vec<Escape> {
    let mut t = || {
        let t = tag();
        marks.tags.insert(t);
        t
    };
    let (a, b) = (t(), t());
    let setsid = Escape {
        name: "setsid",
        command: format!("setsid sleep {a} & sleep {b}"),
        expect: vec![a, b],
    };
    let (a, b) = (t(), t());
    let double_fork = Escape {
        name: "double-fork",
        command: format!("(sleep {a} &); sleep {b}"),
        expect: vec![a, b],
    };
    // fork, setsid, fork, close its descriptors, as a classic daemon does.
    let (a, b) = (t(), t());
    let daemonize = Escape {
        name: "daemonize",
        command: format!(
            "(setsid sh -c 'exec </dev/null >/dev/null 2>&1; sleep {a} & exit 0' &); sleep {b}"
        ),
        expect: vec![a, b],
    };
    // Ignored dispositions survive an exec: the sleeps ignore SIGTERM too.
    let (a, b, c) = (t(), t(), t());
    let ignores_term = Escape {
        name: "ignores-term",
        command: format!(
            "setsid sh -c \"trap '' TERM; sleep {a}; true\" & \
             sh -c \"trap '' TERM; sleep {b}; true\" & sleep {c}"
        ),
        expect: vec![a, b, c],
    };
    // `set -m`: bash puts each background job in a process group of its own.
    let (a, b) = (t(), t());
    let own_group = Escape {
        name: "own-group",
        command: format!("bash -c 'set -m; sleep {a} & wait' & sleep {b}"),
        expect: vec![a, b],
    };
    // Forks all the time, also while it is being stopped, out of the group and deaf to SIGTERM.
    let (a, b) = (t(), t());
    let fork_burst = Escape {
        name: "fork-burst",
        command: format!(
            "setsid sh -c \"trap '' TERM; while :; do sleep {a} & sleep 0.01; done\" & sleep {b}"
        ),
        expect: vec![a, b],
    };
    vec![
        setsid,
        double_fork,
        daemonize,
        ignores_term,
        own_group,
        fork_burst,
    ]
}

/// Starts every escaping program in `d` and waits until each has its processes up.
fn start_escapes(d: &Daemon, marks: &mut Marks) -> Vec<&'static str> {
    let escapes = escapes(marks);
    for e in &escapes {
        ok(
            d,
            &[
                "start",
                "--name",
                e.name,
                "--command",
                &e.command,
                "--grace",
                "1s",
            ],
        );
    }
    for e in &escapes {
        for t in &e.expect {
            let one: BTreeSet<u64> = [*t].into();
            wait_for(
                &format!("{}: sleep {t} running", e.name),
                Duration::from_secs(20),
                || !marked(&one).is_empty(),
            );
        }
    }
    escapes.iter().map(|e| e.name).collect()
}

/// Waits until no process of `marks` is left; fails naming the survivors.
fn assert_none_left(marks: &Marks, mode: &str, after: &str) {
    assert_none_left_from_before(marks, mode, after, u64::MAX);
}

/// Waits until no process of `marks` that started before `ticks` (field 22 of a stat) is left.
fn assert_none_left_from_before(marks: &Marks, mode: &str, after: &str, ticks: u64) {
    let deadline = std::time::Instant::now() + GONE_WITHIN;
    loop {
        let mut left = marked(&marks.tags);
        left.retain(|&pid| started(pid).is_some_and(|t| t < ticks));
        if left.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            let lines: Vec<String> = left
                .iter()
                .map(|pid| {
                    let c = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    format!("{pid}: {}", String::from_utf8_lossy(&c).replace('\0', " "))
                })
                .collect();
            panic!("{mode} mode, after {after}: survivors {lines:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `test` against a new daemon in each containment mode this machine offers, with the marks of
/// the processes it must leave none of.
fn in_each_mode(test: impl Fn(&Daemon, &str, &mut Marks)) {
    for (mode, flags) in modes() {
        let d = Daemon::start_with(&flags, true);
        if !runs_in(&d, mode) {
            continue;
        }
        let mut marks = Marks {
            tags: BTreeSet::new(),
        };
        test(&d, mode, &mut marks);
    }
}

/// In every mode: starts the escaping programs, ends each with `pmclient <command>`, and finds none left.
fn nothing_outlives(command: &str) {
    in_each_mode(|d, mode, marks| {
        for name in start_escapes(d, marks) {
            ok(d, &[command, "--name", name]);
        }
        assert_none_left(marks, mode, command);
    });
}

#[test]
fn nothing_outlives_a_stop() {
    nothing_outlives("stop");
}

#[test]
fn nothing_outlives_a_delete() {
    nothing_outlives("delete");
}

#[test]
fn nothing_outlives_the_daemons_sigterm() {
    for (mode, flags) in modes() {
        let mut d = Daemon::start_with(&flags, true);
        if !runs_in(&d, mode) {
            continue;
        }
        let mut marks = Marks {
            tags: BTreeSet::new(),
        };
        start_escapes(&d, &mut marks);
        let status = d.terminate(Duration::from_secs(30));
        assert_eq!(status.code(), Some(0), "{mode} mode: {}", d.stderr());
        assert_none_left(&marks, mode, "the daemon's SIGTERM");
    }
}

/// The group guard kills the groups at once; what left them is killed by the daemon's next start
/// (group mode), or with its cgroup by the guard (cgroup mode).
#[test]
fn nothing_outlives_the_daemons_sigkill_and_next_start() {
    for (mode, flags) in modes() {
        let mut d = Daemon::start_with(&flags, true);
        if !runs_in(&d, mode) {
            continue;
        }
        let mut marks = Marks {
            tags: BTreeSet::new(),
        };
        let names = start_escapes(&d, &mut marks);
        let mut child = d.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        d.launch(&flags, true);
        // The next daemon starts the processes again (with the same tags): only what the first one
        // started, before the second daemon existed, must be gone.
        let second = started(d.pid()).unwrap();
        assert_none_left_from_before(&marks, mode, "the daemon's SIGKILL and next start", second);
        for name in names {
            ok(&d, &["stop", "--name", name]);
        }
        assert_none_left(&marks, mode, "the stops after the next start");
    }
}

/// The marker names the daemon (its state file): a stop in one daemon leaves alone the processes of the
/// same name in another.
#[test]
fn a_stop_leaves_another_daemons_processes_of_the_same_name_alone() {
    let group = ["--cgroups", "off"];
    let (one, two) = (
        Daemon::start_with(&group, true),
        Daemon::start_with(&group, true),
    );
    let mut marks = Marks {
        tags: BTreeSet::new(),
    };
    let (a, b) = (tag(), tag());
    marks.tags.extend([a, b]);
    for (d, t) in [(&one, a), (&two, b)] {
        let command = format!("setsid sleep {t} & sleep {t}");
        ok(d, &["start", "--name", "twin", "--command", &command]);
        let mine: BTreeSet<u64> = [t].into();
        wait_for("both sleeps", Duration::from_secs(20), || {
            sleeps(&mine) == 2
        });
    }
    ok(&one, &["stop", "--name", "twin"]);
    let theirs: BTreeSet<u64> = [b].into();
    assert_eq!(
        sleeps(&theirs),
        2,
        "the other daemon's processes were touched"
    );
    ok(&two, &["stop", "--name", "twin"]);
    assert_none_left(&marks, "group", "both stops");
}

/// What group mode cannot catch, as the README says: a program that clears its environment and leaves
/// its session is not found by its marker.
#[test]
fn group_mode_misses_a_program_that_clears_its_environment_and_leaves_its_session() {
    let d = Daemon::start_with(&["--cgroups", "off"], true);
    let mut marks = Marks {
        tags: BTreeSet::new(),
    };
    let (a, b) = (tag(), tag());
    marks.tags.extend([a, b]);
    let command = format!("setsid env -i sleep {a} & sleep {b}");
    ok(&d, &["start", "--name", "clean-env", "--command", &command]);
    let both: BTreeSet<u64> = [a, b].into();
    wait_for("both sleeps", Duration::from_secs(20), || {
        sleeps(&both) == 2
    });
    ok(&d, &["stop", "--name", "clean-env"]);
    let escaped: BTreeSet<u64> = [a].into();
    assert_eq!(sleeps(&escaped), 1, "expected the documented escape");
    // `marks` kills it when the test ends.
}

/// Starts `left` running `program` (given the tag of the `sleep` it leaves behind) and waits until the
/// `sleep` runs and the run has ended by itself. Answers the tag, recorded in `marks`.
fn ended_run_leaving(d: &Daemon, marks: &mut Marks, program: impl Fn(u64) -> String) -> u64 {
    let a = tag();
    marks.tags.insert(a);
    ok(d, &["start", "--name", "left", "--command", &program(a)]);
    let one: BTreeSet<u64> = [a].into();
    wait_for("the child left behind", Duration::from_secs(20), || {
        sleeps(&one) == 1
    });
    wait_for("the run's end", Duration::from_secs(20), || {
        d.status_json("left")["status"].as_str() != Some("running")
    });
    a
}

/// A run that exited by itself left a `setsid` child: the delete of the process (not running) kills it.
#[test]
fn a_delete_kills_what_an_ended_run_left_outside_its_group() {
    in_each_mode(|d, mode, marks| {
        ended_run_leaving(d, marks, |a| format!("setsid sleep {a} & exit 0"));
        ok(d, &["delete", "--name", "left"]);
        assert_none_left(marks, mode, "the delete of an ended run");
    });
}

/// A run that exited by itself left a child in its group (and cgroup): `stop` of the ended process
/// ends the child before it answers, in every mode.
#[test]
fn a_stop_ends_what_an_ended_run_left_in_its_group() {
    in_each_mode(|d, mode, marks| {
        let a = ended_run_leaving(d, marks, |a| format!("sleep {a} & exit 0"));
        ok(d, &["stop", "--name", "left"]);
        // The stop answered once the child was gone: no wait here.
        let one: BTreeSet<u64> = [a].into();
        assert_eq!(sleeps(&one), 0, "{mode} mode: the child outlived the stop");
    });
}

/// A restart waits for the stop of the run before it: a stray that ignores the stop signal lives until
/// the grace, and the new run starts only once it is gone. Started earlier, the new run would be hit by
/// that stop's kill at the grace (its processes carry the same marker and enter the same cgroup).
#[test]
fn a_restart_waits_for_the_stop_of_the_run_before() {
    in_each_mode(|d, mode, marks| {
        let a = tag();
        marks.tags.insert(a);
        let dir = tempfile::tempdir().unwrap();
        let (first, ready) = (dir.path().join("first"), dir.path().join("ready"));
        // The first run leaves a stray deaf to SIGTERM and is never ready; the second is ready at once.
        // Wide margins (2 s to be ready, 3 s of grace): the suite also runs in an emulated machine.
        let command = format!(
            "if [ -e {f} ]; then touch {r}; exec sleep 3606; fi; touch {f}; \
         setsid sh -c \"trap '' TERM; sleep {a}\" & exec sleep 3606",
            f = first.display(),
            r = ready.display()
        );
        let probe = format!("exec:test -e {}", ready.display());
        ok(
            d,
            &[
                "start",
                "--name",
                "again",
                "--command",
                &command,
                "--ready",
                &probe,
                "--ready-period",
                "50ms",
                "--ready-within",
                "2s",
                "--restart-policy",
                "on-failure",
                "--restarts",
                "1",
                "--grace",
                "3s",
            ],
        );
        let one: BTreeSet<u64> = [a].into();
        wait_for("the stray", Duration::from_secs(20), || sleeps(&one) == 1);
        wait_for("the second run, ready", Duration::from_secs(20), || {
            let v = d.status_json("again");
            v["restarts"] == 1 && v["status"] == "running" && v["health"] == "ready"
        });
        assert_eq!(
            sleeps(&one),
            0,
            "{mode} mode: the second run started before the first run's stop was over"
        );
        let v = d.status_json("again");
        assert_eq!(v["status"], "running", "{mode} mode: {v}");
        ok(d, &["delete", "--name", "again"]);
        assert_none_left(marks, mode, "the delete");
    });
}
