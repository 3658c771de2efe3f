//! Measures the cost of one status tick: `TreeSampler::tick` over N running processes, as on a kernel
//! without usable schedstat (`stat` read every tick) and as here (`schedstat` kept open).
//!
//! `cargo run --release -p pm-actors --example tick_cost -- 200` starts 200 `sleep 3600` (and as many
//! `sh -c 'sleep 3600; true'`, a two-process tree), ticks every tree `REFRESH_TICKS` times (after one
//! full sample that opens the kept files, so each tree has one periodic refresh, as in the steady state),
//! prints the CPU time per tick (getrusage, user + system), and kills what it started.
//!
//! It first prints what one `pread` of a kept-open `/proc/<pid>/stat` and of `/proc/<pid>/schedstat`
//! costs over the same sleeps: the floor under any tick that reads one of them per process.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use pm_actors::process::monitor::{TreeSampler, REFRESH_TICKS};

fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(ru) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(ru.user_time()) + tv(ru.system_time())
}

fn measure(label: &str, children: &[Child], sampler: fn(i32) -> TreeSampler) {
    let mut samplers: Vec<TreeSampler> = children.iter().map(|c| sampler(c.id() as i32)).collect();
    for s in &mut samplers {
        let _ = s.sample(); // opens the kept files
    }
    // One periodic refresh per tree, as in the steady state.
    let rounds = REFRESH_TICKS;
    let before = cpu_time();
    for _ in 0..rounds {
        for s in &mut samplers {
            let _ = s.tick();
        }
    }
    let per = (cpu_time() - before) / (rounds * samplers.len() as u32);
    println!(
        "{label}: {:.1} us CPU per process per tick; 1,000 processes at 1 s: {:.2}% of one core",
        per.as_secs_f64() * 1e6,
        per.as_secs_f64() * 1000.0 * 100.0
    );
}

/// CPU per `pread` of `/proc/<pid>/<file>`, kept open, over every child, 20 rounds.
fn pread_cost(file: &str, children: &[Child]) {
    let files: Vec<File> = children
        .iter()
        .filter_map(|c| File::open(format!("/proc/{}/{file}", c.id())).ok())
        .collect();
    let mut buf = [0u8; 1024];
    let rounds = 20;
    let before = cpu_time();
    let mut bytes = 0;
    for _ in 0..rounds {
        for f in &files {
            bytes += f.read_at(&mut buf, 0).unwrap_or(0);
        }
    }
    let reads = rounds * files.len().max(1) as u32;
    let per = (cpu_time() - before) / reads;
    println!(
        "pread of a kept {file}: {:.2} us CPU ({} bytes); 1,000 processes at 1 s: {:.2}% of one core",
        per.as_secs_f64() * 1e6,
        bytes / reads as usize,
        per.as_secs_f64() * 1000.0 * 100.0
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let spawn = |cmd: &mut Command| cmd.process_group(0).spawn().expect("spawn");
    let single: Vec<Child> = (0..n)
        .map(|_| spawn(Command::new("sleep").arg("3600")))
        .collect();
    let shells: Vec<Child> = (0..n)
        .map(|_| spawn(Command::new("sh").args(["-c", "sleep 3600; true"])))
        .collect();
    std::thread::sleep(Duration::from_millis(500)); // let them exec
    pread_cost("stat", &single);
    pread_cost("schedstat", &single);
    for (how, sampler) in [
        (
            "stat every tick",
            TreeSampler::without_schedstat as fn(i32) -> TreeSampler,
        ),
        ("schedstat", TreeSampler::new),
    ] {
        measure(&format!("{how}, sleep (1 process)"), &single, sampler);
        measure(
            &format!("{how}, sh -c 'sleep' (2 processes)"),
            &shells,
            sampler,
        );
    }
    for mut c in single.into_iter().chain(shells) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-(c.id() as i32)),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = c.wait();
    }
}
