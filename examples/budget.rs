//! Measures the release daemon against the performance budget over its socket: start of N, idle CPU and
//! memory with the status tick on, open fds, status latency, 16-client throughput, restart after SIGKILL,
//! stop of all with one `!!process.stop all:true` (until every process group is gone), and stop of all one name
//! per request.
//!
//! `cargo build --release && cargo run --release --example budget -- 1000` starts
//! `target/release/processmanager` on a private socket with a known secret, runs the workload with N
//! `sleep 3600`, prints one line per figure, then stops the daemon (SIGTERM stops every child) and kills
//! whatever is left. `BUDGET_IDLE_SECS` sets the idle window (20 s by default).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::{sysconf, Pid, SysconfVar};
use processmanager::client::Client;

const SECRET: &str = "budget-secret";
const CLIENTS: usize = 16;

/// Kills the daemon's process group (the daemon and any child left) when the program ends.
struct DaemonGuard(Child);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The daemon leads its own group here.
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

fn status_field(pid: u32, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l[key.len()..].trim().to_string())
        .unwrap_or_default()
}

fn pid_of(body: &str) -> i32 {
    body.lines()
        .find_map(|l| l.strip_prefix("PID: "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0)
}

async fn connect(socket: &Path) -> Client {
    Client::connect(socket, SECRET).await.expect("connect")
}

/// Sends the scripts on one connection with up to `WINDOW` requests in flight (a client that does not
/// read its answers is disconnected), and reads every answer.
async fn pipelined(socket: &Path, scripts: Vec<String>) -> Duration {
    const WINDOW: usize = 32;
    let mut c = connect(socket).await;
    let t = Instant::now();
    let mut in_flight = 0;
    for s in &scripts {
        if in_flight == WINDOW {
            let reply = c.read_reply().await.expect("reply").expect("frame");
            assert!(!reply.is_error(), "{}", reply.body);
            in_flight -= 1;
        }
        c.send(s).await.expect("send");
        in_flight += 1;
    }
    for _ in 0..in_flight {
        let reply = c.read_reply().await.expect("reply").expect("frame");
        assert!(!reply.is_error(), "{}", reply.body);
    }
    t.elapsed()
}

/// Sends the scripts from `CLIENTS` connections in parallel, each request waiting for its answer.
async fn parallel(socket: &Path, scripts: Vec<String>) -> Duration {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(socket).await);
    }
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    for (i, s) in scripts.into_iter().enumerate() {
        shares[i % CLIENTS].push(s);
    }
    let t = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(shares)
        .map(|(mut c, share)| {
            tokio::spawn(async move {
                for s in share {
                    let reply = c.run(&s).await.expect("reply");
                    assert!(!reply.is_error(), "{}", reply.body);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
    t.elapsed()
}

/// Whether anything of the process group `pgid` still exists (each child leads its own group; a zombie
/// counts: it is not gone until the daemon reaps it).
fn group_exists(pgid: i32) -> bool {
    // Signal 0 only checks for existence.
    kill(Pid::from_raw(-pgid), None).is_ok()
}

/// The pids of every running process, from `list format:json`.
async fn live_pids(c: &mut Client) -> Vec<i32> {
    let reply = c.run("!!process.list format:json").await.expect("list");
    let list: serde_json::Value = serde_json::from_str(&reply.body).expect("list JSON");
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["pid"].as_i64())
                .filter(|&p| p > 0)
                .map(|p| p as i32)
                .collect()
        })
        .unwrap_or_default()
}

fn children_of(pid: u32) -> usize {
    let mut n = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            n += kids.split_whitespace().count();
        }
    }
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let idle_secs: u64 = std::env::var("BUDGET_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let binary = std::env::var_os("PM_DAEMON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/processmanager"));
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("pm.sock");
    let daemon = {
        use std::os::unix::process::CommandExt;
        Command::new(&binary)
            .arg("--socket")
            .arg(&socket)
            .args(["--log-level", "warn"])
            .env("PM_SECRET", SECRET)
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the daemon")
    };
    let daemon = DaemonGuard(daemon);
    let dpid = daemon.0.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Client::connect(&socket, SECRET).await.is_err() {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("daemon pid {dpid}, N = {n}");
    println!(
        "fds at start: {}",
        std::fs::read_dir(format!("/proc/{dpid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    );

    // Start: restarts on, so that the restart figure can use any of them.
    let starts: Vec<String> = (0..n)
        .map(|i| format!("!!process.start name:'p{i}' command:'sleep 3600' restart_policy:always"))
        .collect();
    let took = pipelined(&socket, starts).await;
    println!(
        "start {n} (one connection, pipelined): {} ({} children)",
        ms(took),
        children_of(dpid)
    );

    // Idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hz = sysconf(SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100) as f64;
    let (c0, t0) = (cpu_ticks(dpid), Instant::now());
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let (c1, t1) = (cpu_ticks(dpid), Instant::now());
    let cpu = (c1 - c0) as f64 / hz / (t1 - t0).as_secs_f64() * 100.0;
    println!(
        "idle over {idle_secs} s: CPU {cpu:.2}% of one core; VmRSS {}; VmHWM {}; threads {}; fds {}",
        status_field(dpid, "VmRSS:"),
        status_field(dpid, "VmHWM:"),
        status_field(dpid, "Threads:"),
        std::fs::read_dir(format!("/proc/{dpid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    );

    // Status latency, one client, one request at a time.
    let mut c = connect(&socket).await;
    let name = format!("p{}", n / 2);
    let query = format!("!!process.status name:'{name}'");
    let mut times = Vec::with_capacity(1000);
    for _ in 0..1100 {
        let t = Instant::now();
        let reply = c.run(&query).await.expect("status");
        times.push(t.elapsed());
        assert!(!reply.is_error(), "{}", reply.body);
    }
    let mut times = times.split_off(100); // warm-up dropped
    times.sort();
    println!(
        "status over the socket (1,000 queries): median {}, p99 {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99))
    );

    // Throughput of 16 clients.
    let total = 40_000;
    let took = parallel(&socket, vec![query.clone(); total]).await;
    println!(
        "status throughput, {CLIENTS} clients: {:.0} per second ({total} queries in {})",
        total as f64 / took.as_secs_f64(),
        ms(took)
    );

    // Restart after SIGKILL: one process each try, so that no try waits out a backoff.
    let mut restarts = Vec::new();
    for i in 0..20.min(n) {
        let q = format!("!!process.status name:'p{i}'");
        let old = pid_of(&c.run(&q).await.expect("status").body);
        let _ = kill(Pid::from_raw(old), Signal::SIGKILL);
        let t = Instant::now();
        loop {
            let pid = pid_of(&c.run(&q).await.expect("status").body);
            if pid != 0 && pid != old {
                restarts.push(t.elapsed());
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "p{i} was not restarted"
            );
        }
    }
    restarts.sort();
    if !restarts.is_empty() {
        println!(
            "restart after SIGKILL ({} tries): median {}, worst {}",
            restarts.len(),
            ms(percentile(&restarts, 0.5)),
            ms(*restarts.last().unwrap_or(&Duration::ZERO))
        );
    }

    // Stop all with one request: from the request until every process group is gone.
    let pids = live_pids(&mut c).await;
    let t = Instant::now();
    c.send("!!process.stop all:true").await.expect("stop all");
    // Polled while the request runs: the daemon answers only once its state file says so.
    while pids.iter().any(|&pid| group_exists(pid)) {
        assert!(t.elapsed() < Duration::from_secs(60), "stop all left pids");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let gone = t.elapsed();
    let reply = c.read_reply().await.expect("reply").expect("frame");
    let answered = t.elapsed();
    assert!(!reply.is_error(), "{}", reply.body);
    println!(
        "stop all {n} (one request, !!process.stop all:true): {} until every group is gone, answered after {} ({})",
        ms(gone),
        ms(answered),
        reply.body.trim_end()
    );

    // The same stop one name at a time, for comparison: restart all, then sixteen connections.
    let restarts: Vec<String> = (0..n)
        .map(|i| format!("!!process.restart name:'p{i}'"))
        .collect();
    pipelined(&socket, restarts).await;
    let stops: Vec<String> = (0..n)
        .map(|i| format!("!!process.stop name:'p{i}'"))
        .collect();
    let took = parallel(&socket, stops).await;
    println!(
        "stop {n} ({CLIENTS} connections, one name per request): {} ({} children left)",
        ms(took),
        children_of(dpid)
    );
    drop(c);
    drop(daemon);
}
