//! Criterion bench of one status tick: `TreeSampler::tick` (and the full `sample`) of a real `sleep` child, and of a
//! two-process tree (`sh -c 'sleep 3600; true'`).
//!
//! `cargo bench -p pm-actors`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pm_actors::process::monitor::TreeSampler;

/// Kills the child's process group when the bench ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-(self.0.id() as i32)),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &mut Command) -> Reaped {
    let child = Reaped(cmd.process_group(0).spawn().expect("spawn"));
    // Until it has exec'd (and, for the shell, forked its sleep).
    std::thread::sleep(Duration::from_millis(200));
    child
}

fn tick(c: &mut Criterion) {
    let single = spawn(Command::new("sleep").arg("3600"));
    let mut sampler = TreeSampler::new(single.0.id() as i32);
    sampler.sample().expect("first sample");
    c.bench_function("full sample: sleep (1 process)", |b| {
        b.iter(|| sampler.sample().expect("sample"))
    });
    c.bench_function("status tick: sleep (1 process)", |b| {
        b.iter(|| sampler.tick().expect("tick"))
    });

    let shell = spawn(Command::new("sh").args(["-c", "sleep 3600; true"]));
    let mut sampler = TreeSampler::new(shell.0.id() as i32);
    assert_eq!(sampler.sample().expect("first sample").processes, 2);
    c.bench_function("full sample: sh -c sleep (2 processes)", |b| {
        b.iter(|| sampler.sample().expect("sample"))
    });
    c.bench_function("status tick: sh -c sleep (2 processes)", |b| {
        b.iter(|| sampler.tick().expect("tick"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = tick
}
criterion_main!(benches);
