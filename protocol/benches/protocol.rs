//! Criterion benches of the protocol: parsing heroscript and rendering a list of 1,000 processes.
//!
//! `cargo bench -p pm-protocol`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pm_protocol::command::parse_script;
use pm_protocol::heroscript::parse;
use pm_protocol::response::{list_json, list_text};
use pm_protocol::{KernelState, ProcessInfo, Status};

const START: &str =
    "!!process.start name:'web' command:'python3 -m http.server 8080' log:true jobid:'e42'";

/// Twenty actions of the kinds a client sends: starts with options, status, list, stop, logs, signal.
fn script_of_20() -> String {
    let mut s = String::new();
    for i in 0..5 {
        s.push_str(&format!(
            "!!process.start name:'worker{i}' command:'python3 worker.py --id {i}' log:true restarts:3 deadline:3600 env:'RUST_LOG=debug' cwd:'/srv/app'\n"
        ));
        s.push_str(&format!("!!process.status name:'worker{i}' format:json\n"));
        s.push_str(&format!("!!process.signal name:'worker{i}' signal:'HUP'\n"));
        s.push_str(&format!("!!process.logs name:'worker{i}' lines:50\n"));
    }
    s
}

fn infos(n: usize) -> Vec<ProcessInfo> {
    (0..n)
        .map(|i| {
            let mut p = ProcessInfo::initial(format!("p{i:04}"), "sleep 3600");
            p.pid = 100_000 + i as i32;
            p.status = Status::Running;
            p.state = KernelState::Sleeping;
            p.cpu_percent = 0.25;
            p.memory_mb = 1.5;
            p.start_time = "2025-01-01T12:00:00.000+00:00".into();
            p.uptime_secs = Some(3_725.5);
            p.restarts = 2;
            p.args = vec!["3600".into()];
            p
        })
        .collect()
}

fn parser(c: &mut Criterion) {
    let script = script_of_20();
    assert_eq!(parse(&script).map(|a| a.len()).ok(), Some(20));
    c.bench_function("heroscript parse: a start command", |b| {
        b.iter(|| parse(black_box(START)))
    });
    c.bench_function("heroscript parse: 20 actions", |b| {
        b.iter(|| parse(black_box(&script)))
    });
    c.bench_function("typed commands: 20 actions", |b| {
        b.iter(|| parse_script(black_box(&script)))
    });
}

fn rendering(c: &mut Criterion) {
    let list = infos(1000);
    c.bench_function("list of 1,000 as text", |b| {
        b.iter(|| list_text(black_box(&list)))
    });
    c.bench_function("list of 1,000 as JSON", |b| {
        b.iter(|| list_json(black_box(&list)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parser, rendering
}
criterion_main!(benches);
