//! `GET /metrics`: the daemon's figures in the Prometheus text format, gathered when scraped.
//!
//! Nothing is kept for metrics between scrapes: a scrape asks the registry for its status records
//! (the monitor's latest readings of every process, as `list` answers them) and its count of state
//! writes, reads the request and connection counters ([`pm_actors::counters`]) and the host's figures
//! ([`host`]), and writes them all out with `prometheus-client` ([`families`]). A daemon nobody
//! scrapes pays nothing for them. docs/metrics.md describes every family.

mod families;
pub mod host;

use actix_web::{web, HttpResponse};
use pm_actors::counters::{self, ConnectionReading, RequestsReading, Transport};
use pm_actors::registry::{ListProcesses, StateWrites};
use pm_actors::session::RegistryLink;
use pm_protocol::response::Operation;
use pm_protocol::{PmError, ProcessInfo};

use super::error::ApiError;
use super::HttpState;

pub use families::FAMILIES;
pub use host::HostReading;

/// The `Content-Type` of the metrics page (the Prometheus text format, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The prefix of every metric name.
pub const PREFIX: &str = "processmanager";

/// Mounts `GET /metrics` (the server's auth lets it through without the secret when pm.conf says
/// `metrics-public: true`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(page));
}

/// `GET /metrics`: the page, gathered now; 503 once the registry is gone.
async fn page(state: web::Data<HttpState>) -> Result<HttpResponse, ApiError> {
    let scrape = Scrape::gather(&state.registry)
        .await
        .map_err(|e| ApiError::from_pm(Operation::List, &e))?;
    Ok(HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(scrape.render()))
}

/// Everything one scrape reports, as read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Every process's status record, sorted by name.
    pub processes: Vec<ProcessInfo>,
    /// Completed writes of the state file.
    pub state_writes: u64,
    /// Requests by command.
    pub requests: RequestsReading,
    /// Connections by transport.
    pub connections: Vec<(Transport, ConnectionReading)>,
    /// The host's memory, load and CPUs.
    pub host: HostReading,
}

impl Scrape {
    /// Gathers the figures now: two requests to the registry (asked at once), the counters and the
    /// host. A registry that is gone answers [`PmError::ShuttingDown`].
    pub async fn gather(registry: &RegistryLink) -> Result<Scrape, PmError> {
        let list = registry.list.send(ListProcesses);
        let writes = registry.state_writes.send(StateWrites);
        let gone = |_| PmError::ShuttingDown;
        let processes = list.await.map_err(gone)??;
        let state_writes = writes.await.map_err(gone)?;
        Ok(Scrape {
            processes,
            state_writes,
            ..Scrape::daemon_now()
        })
    }

    /// The daemon-wide figures now (counters and host), with no process and no state write.
    pub fn daemon_now() -> Scrape {
        let daemon = counters::daemon();
        Scrape {
            processes: Vec::new(),
            state_writes: 0,
            requests: daemon.requests.read(),
            connections: Transport::ALL
                .iter()
                .map(|&t| (t, daemon.connections(t).read()))
                .collect(),
            host: HostReading::now(),
        }
    }

    /// The page: every family in the Prometheus text format.
    pub fn render(self) -> String {
        let mut registry = prometheus_client::registry::Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail, and the collector writes only what it was given.
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
            tracing::error!("cannot write the metrics page: {e}");
        }
        out
    }
}

#[cfg(test)]
mod tests;
