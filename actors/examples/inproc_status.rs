//! Times the in-process status query: `GetStatus` sent to a `Registry` managing N `sleep 3600`.
//!
//! `cargo run --release -p pm-actors --example inproc_status -- 100 1000` starts a registry in an actix
//! system, for each N starts N `sleep 3600`, times 1,000 `GetStatus` requests one after the other
//! (median and p99, after 100 warm-up requests), then shuts the registry down, which stops every child.

use std::time::{Duration, Instant};

use pm_actors::registry::{GetStatus, Registry, RegistryConfig, Shutdown, StartProcess};
use pm_protocol::ProcessSpec;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = RegistryConfig::in_dir(dir.path());
    config.load_templates = false;
    let registry = Registry::new(config).start();
    let t = Instant::now();
    for i in 0..n {
        let spec = ProcessSpec::exec(format!("p{i}"), "sleep", ["3600"]);
        registry
            .send(StartProcess {
                spec,
                template: None,
            })
            .await
            .expect("registry")
            .expect("start");
    }
    let started = t.elapsed();
    let name = format!("p{}", n / 2);
    let mut times = Vec::with_capacity(1100);
    for _ in 0..1100 {
        let t = Instant::now();
        let info = registry
            .send(GetStatus { name: name.clone() })
            .await
            .expect("registry")
            .expect("status");
        times.push(t.elapsed());
        assert!(info.pid > 0);
    }
    let mut times = times.split_off(100);
    times.sort();
    println!(
        "N = {n}: started in {:.1} ms; GetStatus median {:.1} us, p99 {:.1} us",
        started.as_secs_f64() * 1e3,
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    registry
        .send(Shutdown)
        .await
        .expect("registry")
        .expect("shutdown");
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000]
    } else {
        sizes
    };
    actix::System::new().block_on(async move {
        for n in sizes {
            measure(n).await;
        }
    });
}
