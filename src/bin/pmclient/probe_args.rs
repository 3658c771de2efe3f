//! The readiness and health flags of `pmclient start` (`--ready`, `--health`, their periods and
//! timeouts, `--watchdog`), checked as the daemon checks them.

use std::time::Duration;

use clap::Args;
use pm_protocol::command::ProbeOptions;
use pm_protocol::{Probe, Readiness};

fn duration(text: &str) -> Result<Duration, String> {
    pm_protocol::heroscript::parse_duration(text)
        .ok_or_else(|| format!("'{text}' is not a duration (500ms, 1s, 30s, 5m)"))
}

/// Readiness and health of a started process.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// How readiness is known: started, notify, exited, log:<regex>, http:<url>,
    /// tcp:<host>:<port> or exec:<command>.
    #[arg(long, value_parser = Readiness::parse)]
    ready: Option<Readiness>,
    /// Time between readiness checks (default 1s).
    #[arg(long, value_parser = duration)]
    ready_period: Option<Duration>,
    /// Timeout of each readiness check (default 1s).
    #[arg(long, value_parser = duration)]
    ready_timeout: Option<Duration>,
    /// A start not ready this long after it began fails (default: no limit).
    #[arg(long, value_parser = duration)]
    ready_within: Option<Duration>,
    /// The health check, run once ready: http:<url>, tcp:<host>:<port> or exec:<command>.
    #[arg(long, value_parser = Probe::parse)]
    health: Option<Probe>,
    /// Time between health checks (default 10s).
    #[arg(long, value_parser = duration)]
    health_period: Option<Duration>,
    /// Timeout of each health check (default 1s).
    #[arg(long, value_parser = duration)]
    health_timeout: Option<Duration>,
    /// Failed checks in a row that make the process unhealthy (default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    health_failures: Option<u32>,
    /// With --ready notify: no WATCHDOG=1 for this long is a failed check.
    #[arg(long, value_parser = duration)]
    watchdog: Option<Duration>,
}

impl ProbeArgs {
    /// The start's readiness and health options.
    pub fn to_options(&self) -> ProbeOptions {
        ProbeOptions {
            ready: self.ready.clone(),
            ready_period: self.ready_period,
            ready_timeout: self.ready_timeout,
            ready_within: self.ready_within,
            health: self.health.clone(),
            health_period: self.health_period,
            health_timeout: self.health_timeout,
            health_failures: self.health_failures,
            watchdog: self.watchdog,
        }
    }
}
