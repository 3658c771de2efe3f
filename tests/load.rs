//! Load: 1,000 managed processes and 50 clients sending 100,000 commands in all (status, list, logs,
//! stop and start again, and a few that must fail). Every command is answered, no error but the
//! expected ones; afterwards the daemon's open files, threads and memory are back where they started
//! and no zombie is left. Slow (minutes on 2 cores), so ignored; run it with
//!
//! ```sh
//! cargo test --release -p processmanager --test load -- --ignored --nocapture
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{wait_for, Daemon, SECRET};
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
