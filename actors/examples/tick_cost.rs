//! Measures the cost of one status tick: `TreeSampler::sample` over N running processes.
//!
//! `cargo run --release -p pm-actors --example tick_cost -- 200` starts 200 `sleep 3600` (and as many
//! `sh -c 'sleep 3600; true'`, a two-process tree), samples every tree 20 times, prints the CPU time
//! per sample (getrusage, user + system), and kills what it started.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use pm_actors::process::procfs::TreeSampler;

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn measure(label: &str, children: &[Child]) {
    let mut samplers: Vec<TreeSampler> = children
        .iter()
        .map(|c| TreeSampler::new(c.id() as i32))
        .collect();
    for s in &mut samplers {
        let _ = s.sample(); // opens the kept files
    }
    let rounds = 20;
    let before = cpu_time();
    for _ in 0..rounds {
        for s in &mut samplers {
            let _ = s.sample();
        }
    }
    let per = (cpu_time() - before) / (rounds * samplers.len() as u32);
    println!(
        "{label}: {:.1} us CPU per process per tick; 1,000 processes at 1 s: {:.2}% of one core",
        per.as_secs_f64() * 1e6,
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
    measure("sleep (1 process)", &single);
    measure("sh -c 'sleep' (2 processes)", &shells);
    for mut c in single.into_iter().chain(shells) {
        // SAFETY: kill the group this example started.
        unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
        let _ = c.wait();
    }
}
