//! The host's figures for the metrics page, read with `sysinfo` at scrape time: memory, load averages
//! and the number of CPUs.

use std::sync::OnceLock;

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The host as one scrape saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostReading {
    /// Physical memory, in bytes.
    pub memory_total_bytes: u64,
    /// Memory available to new work without swapping (`MemAvailable`), in bytes.
    pub memory_available_bytes: u64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Logical CPUs.
    pub cpus: usize,
}

impl HostReading {
    /// Reads the host now: memory and load each time (two small /proc files); the CPU list once per
    /// process, since it only changes when CPUs are plugged in and reading it takes a file per CPU.
    pub fn now() -> HostReading {
        let mut system = System::new();
        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let load = System::load_average();
        HostReading {
            memory_total_bytes: system.total_memory(),
            memory_available_bytes: system.available_memory(),
            load: [load.one, load.five, load.fifteen],
            cpus: cpu_count(),
        }
    }
}

fn cpu_count() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        let system =
            System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
        system.cpus().len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_has_memory_and_cpus() {
        let host = HostReading::now();
        assert!(host.memory_total_bytes > 0);
        assert!(host.memory_available_bytes <= host.memory_total_bytes);
        assert!(host.load.iter().all(|l| *l >= 0.0));
        let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(host.cpus >= parallelism, "{} CPUs", host.cpus);
    }
}
