//! Load: 1,000 managed processes and 50 clients sending 100,000 commands in all (status, list, logs,
//! stop and start again, and a few that must fail). Every command is answered, no error but the
//! expected ones; afterwards the daemon's open files, threads and memory are back where they started
//! and no zombie is left. And 10,000 processes started by one client that writes every start before
//! it reads an answer, then restarted after SIGKILL, listed and stopped, with the figures printed.
//! Slow (minutes on 2 cores), so ignored; run them with
//!
//! ```sh
//! cargo test --release -p processmanager --test load -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{wait_for, Daemon, SECRET};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use processmanager::client::Client;

const PROCESSES: usize = 1000;
const CLIENTS: usize = 50;
const COMMANDS: usize = 100_000;
/// RSS may settle higher than the baseline (allocator caches); a leak grows with the commands.
const RSS_TOLERANCE_KB: u64 = 16 * 1024;

/// The daemon's open files, threads, resident memory (KiB) and zombie children.
#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    threads: u64,
    rss_kb: u64,
    zombies: usize,
}

fn usage(pid: i32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let zombies = pm_actors::process::procfs::scan_all()
        .filter(|(_, st)| st.state == 'Z' && st.ppid == pid)
        .count();
    Usage {
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        threads: field("Threads:"),
        rss_kb: field("VmRSS:"),
        zombies,
    }
}

#[test]
#[ignore = "load: 1,000 processes, 100,000 commands; run with --ignored --release"]
fn a_thousand_processes_and_fifty_clients() {
    let d = Daemon::start();
    let pid = d.pid();
    let socket = d.socket.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The processes: every tenth one prints a line (so `logs` has something to read).
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..10 {
            let socket = socket.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(&socket, SECRET).await.unwrap();
                for i in (c..PROCESSES).step_by(10) {
                    let (cmd, log) = if i % 10 == 0 {
                        ("echo ready; exec sleep 3600", " log:true")
                    } else {
                        ("exec sleep 3600", "")
                    };
                    let reply = client
                        .run(&format!(
                            "!!process.start name:'l{i}' command:'{cmd}'{log}\n\n"
                        ))
                        .await
                        .unwrap();
                    assert!(!reply.is_error(), "l{i}: {}", reply.body);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    wait_for("1,000 running", Duration::from_secs(120), || {
        let out = d.pmclient(&["list", "--format", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array()
            .is_some_and(|a| a.len() == PROCESSES && a.iter().all(|p| p["status"] == "running"))
    });
    // A warm-up round first: what the daemon allocates once (buffers, allocator arenas, the largest
    // state file) is then in the baseline, and what grows with the commands shows.
    let warm = run_round(&rt, &socket, COMMANDS / 5);
    eprintln!("warm-up: {warm:?}");
    let before = settle(pid, None);
    eprintln!("before: {before:?}");
    let started = Instant::now();
    let (answered, expected_errors, slowest) = run_round(&rt, &socket, COMMANDS);
    let elapsed = started.elapsed();
    assert_eq!(answered, COMMANDS);
    eprintln!(
        "{answered} commands answered in {:.1} s ({:.0}/s), {expected_errors} expected errors, slowest {:.0} ms",
        elapsed.as_secs_f64(),
        answered as f64 / elapsed.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    let after = settle(pid, Some(before));
    eprintln!("after: {after:?}");
    assert_eq!(after.fds, before.fds, "open files");
    assert!(
        after.threads <= before.threads,
        "threads {before:?} -> {after:?}"
    );
    assert!(
        after.rss_kb <= before.rss_kb + RSS_TOLERANCE_KB,
        "memory {before:?} -> {after:?}"
    );
    assert_eq!(after.zombies, 0);
    drop(rt);
}

/// `commands` commands from [`CLIENTS`] clients at once; answers (commands answered, expected errors
/// seen, slowest answer). Panics on any unexpected error.
fn run_round(
    rt: &tokio::runtime::Runtime,
    socket: &std::path::Path,
    commands: usize,
) -> (usize, usize, Duration) {
    let per_client = commands / CLIENTS;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let socket = socket.to_path_buf();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(&socket, SECRET).await.unwrap();
                let (mut answered, mut expected_errors, mut slowest) =
                    (0usize, 0usize, Duration::ZERO);
                // Each client stops and starts again only its own processes: no two clients race.
                let own: Vec<usize> = (c..PROCESSES).step_by(CLIENTS).collect();
                for k in 0..per_client {
                    let any = (c * 7919 + k * 104_729) % PROCESSES;
                    let mine = own[k % own.len()];
                    let (script, must_fail) = match k % 100 {
                        0 => ("!!process.list\n\n".to_string(), false),
                        1..=9 => (format!("!!process.stop name:'l{mine}'\n\n"), false),
                        10..=18 => (format!("!!process.restart name:'l{mine}'\n\n"), false),
                        19 => (format!("!!process.status name:'nope{k}'\n\n"), true),
                        20..=39 => (
                            format!("!!process.logs name:'l{}' lines:10\n\n", any / 10 * 10),
                            false,
                        ),
                        _ => (format!("!!process.status name:'l{any}'\n\n"), false),
                    };
                    let t = Instant::now();
                    let reply = client
                        .run(&script)
                        .await
                        .unwrap_or_else(|e| panic!("{script}: {e}"));
                    slowest = slowest.max(t.elapsed());
                    answered += 1;
                    if must_fail {
                        assert!(
                            reply.is_error() && reply.body.contains("not found"),
                            "{}",
                            reply.body
                        );
                        expected_errors += 1;
                    } else {
                        assert!(!reply.is_error(), "{script}: {}", reply.body);
                    }
                }
                // Leave every own process running, as it was.
                for i in own {
                    let r = client
                        .run(&format!("!!process.restart name:'l{i}'\n\n"))
                        .await
                        .unwrap();
                    assert!(!r.is_error(), "{}", r.body);
                }
                (answered, expected_errors, slowest)
            }));
        }
        let mut total = (0, 0, Duration::ZERO);
        for t in tasks {
            let (a, e, s) = t.await.unwrap();
            total = (total.0 + a, total.1 + e, total.2.max(s));
        }
        total
    })
}

/// Without a baseline: waits until fds and threads have not moved for 12 s (idle blocking threads
/// expire after 10 s). With one: waits until they are back to it. Either way at most 60 s; the caller
/// asserts.
fn settle(pid: i32, baseline: Option<Usage>) -> Usage {
    let end = Instant::now() + Duration::from_secs(60);
    let mut last = usage(pid);
    let mut quiet_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = usage(pid);
        if now.fds != last.fds || now.threads != last.threads {
            quiet_since = Instant::now();
        }
        let done = match baseline {
            Some(b) => now.fds <= b.fds && now.threads <= b.threads && now.zombies == 0,
            None => quiet_since.elapsed() >= Duration::from_secs(12),
        };
        if done || Instant::now() > end {
            return now;
        }
        last = now;
    }
}

/// Processes of the scale test.
const MANY: usize = 10_000;

/// The daemon's CPU time so far (user and system), in seconds.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .unwrap()
            .unwrap() as f64
}

/// The pid in a status or list record.
fn pid_in(body: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let v = v.as_array().and_then(|a| a.first().cloned()).unwrap_or(v);
    v["pid"].as_i64().unwrap_or(0)
}

/// The median and the worst of `values`.
fn median_and_worst(mut values: Vec<Duration>) -> (Duration, Duration) {
    values.sort();
    (values[values.len() / 2], values[values.len() - 1])
}

#[test]
#[ignore = "load: 10,000 processes; run with --ignored --release"]
fn ten_thousand_processes_from_a_client_that_writes_everything_first() {
    let mut d = Daemon::start();
    let pid = d.pid();
    let mut s = d.session();
    // Every start written before a byte is read, as `cat batch.hs | socat - UNIX-CONNECT:...` does.
    let batch: String = (0..MANY)
        .map(|i| format!("!!process.start name:'t{i}' program:'sleep' args:'3600'\n\n"))
        .collect();
    let t0 = Instant::now();
    s.send(&batch);
    let written = t0.elapsed();
    for i in 0..MANY {
        let body = s.body();
        assert!(
            body.contains(&format!("'t{i}'")) && body.contains("started successfully"),
            "answer {i}: {body}"
        );
    }
    eprintln!(
        "{MANY} starts written in {:.2} s, every answer read after {:.2} s",
        written.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    // Idle: the daemon's CPU over 10 s once the burst has settled, and its memory.
    std::thread::sleep(Duration::from_secs(5));
    let (cpu0, at0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let idle_cpu = (cpu_seconds(pid) - cpu0) / at0.elapsed().as_secs_f64() * 100.0;
    let idle = usage(pid);
    eprintln!(
        "idle: {idle_cpu:.2}% of a core, {:.1} MB, {} fds",
        idle.rss_kb as f64 / 1024.0,
        idle.fds
    );
    // One status, and the list of every process as JSON.
    let mut status = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        s.send("!!process.status name:'t0' format:json\n\n");
        assert!(pid_in(&s.body()) > 0);
        status.push(t.elapsed());
    }
    let mut lists = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        s.send("!!process.list format:json\n\n");
        let body = s.body();
        lists.push(t.elapsed());
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list.as_array().map(Vec::len), Some(MANY));
    }
    eprintln!(
        "status median {:?}, list of {MANY} as JSON median {:?}",
        median_and_worst(status).0,
        median_and_worst(lists).0
    );
    // Restart after SIGKILL: 20 processes that restart, each killed once, timed until a new pid runs.
    for i in 0..20 {
        s.send(&format!(
            "!!process.start name:'r{i}' program:'sleep' args:'3600' restarts:-1\n\n"
        ));
        assert!(s.body().contains("started successfully"));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let mut restarts = Vec::new();
    for i in 0..20 {
        let ask = |s: &mut common::Raw| {
            s.send(&format!("!!process.status name:'r{i}' format:json\n\n"));
            pid_in(&s.body())
        };
        let old = ask(&mut s);
        assert!(old > 0);
        let t = Instant::now();
        kill(Pid::from_raw(old as i32), Signal::SIGKILL).unwrap();
        loop {
            let new = ask(&mut s);
            if new > 0 && new != old {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "r{i} not restarted");
        }
        restarts.push(t.elapsed());
    }
    let (median, worst) = median_and_worst(restarts);
    eprintln!("restart after SIGKILL: median {median:?}, worst of 20 {worst:?}");
    // Stop every process: one request, then every pid gone.
    let pids = d.pids();
    assert_eq!(pids.len(), MANY + 20);
    let t = Instant::now();
    s.send("!!process.stop all:true\n\n");
    let body = s.body();
    assert!(!body.starts_with("Error"), "{body}");
    wait_for("every process gone", Duration::from_secs(120), || {
        pids.iter().all(|&p| !common::alive(p))
    });
    eprintln!("stop all: {:.2} s", t.elapsed().as_secs_f64());
    assert_eq!(usage(pid).zombies, 0);
    assert!(d.terminate(Duration::from_secs(60)).success());
}
