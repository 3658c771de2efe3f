//! Every metric family of the metrics page, written from one [`Scrape`]: its name, help, type and
//! series. docs/metrics.md lists the same names; a test keeps the two in step.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use pm_actors::counters::{ConnectionReading, LATENCY_BUCKETS};
use pm_protocol::{Health, ProcessInfo, Status};

use super::Scrape;

type Written = Result<(), std::fmt::Error>;

/// One series' label: its name and value.
type Label<'a> = [(&'static str, &'a str); 1];

/// The names (after the `processmanager_` prefix, counters without their `_total`) of every family
/// written, in order.
pub const FAMILIES: &[&str] = &[
    "process_up",
    "process_restarts",
    "process_cpu_seconds",
    "process_memory_rss_bytes",
    "process_start_time_seconds",
    "process_health",
    "processes",
    "requests",
    "request_duration_seconds",
    "connections",
    "connections_accepted",
    "connections_refused",
    "state_writes",
    "host_memory_total_bytes",
    "host_memory_available_bytes",
    "host_load1",
    "host_load5",
    "host_load15",
    "host_cpus",
];

impl Collector for Scrape {
    fn encode(&self, mut out: DescriptorEncoder) -> Written {
        self.processes(&mut out)?;
        self.requests(&mut out)?;
        self.daemon(&mut out)?;
        self.host(&mut out)
    }
}

impl Scrape {
    fn processes(&self, out: &mut DescriptorEncoder) -> Written {
        use MetricType::{Counter, Gauge};
        let each = &self.processes;
        per_process(
            out,
            "process_up",
            "1 while the process runs, else 0.",
            Gauge,
            each,
            |p| {
                Some(if p.status == Status::Running {
                    1.0
                } else {
                    0.0
                })
            },
        )?;
        let help = "Automatic restarts of the process so far.";
        per_process(out, "process_restarts", help, Counter, each, |p| {
            Some(p.restarts as f64)
        })?;
        let help =
            "CPU time of the current run, summed over its process tree (0 when not running).";
        per_process(out, "process_cpu_seconds", help, Counter, each, |p| {
            Some(p.cpu_seconds)
        })?;
        let help = "Resident memory summed over the process tree (0 when not running).";
        per_process(out, "process_memory_rss_bytes", help, Gauge, each, |p| {
            Some((p.memory_mb * 1_048_576.0).round())
        })?;
        let help = "Unix time of the last start; absent for a process never started.";
        per_process(out, "process_start_time_seconds", help, Gauge, each, |p| {
            start_time_seconds(&p.start_time)
        })?;
        self.health(out)?;
        let by_status = Status::ALL.map(|status| {
            let count = each.iter().filter(|p| p.status == status).count();
            (status.as_str(), count as f64)
        });
        let help = "Processes by lifecycle status.";
        family(out, "processes", help, Gauge, "status", by_status)
    }

    /// One series per health state (`state`) of each process that has readiness or health checks,
    /// 1 for the state it is in: the usual way to write an enumeration for Prometheus.
    fn health(&self, out: &mut DescriptorEncoder) -> Written {
        const STATES: [Health; 3] = [Health::Starting, Health::Ready, Health::Unhealthy];
        let mut family = out.encode_descriptor(
            "process_health",
            "1 for the health state the process is in (starting, ready, unhealthy); only processes \
             with readiness or health checks.",
            None,
            MetricType::Gauge,
        )?;
        for p in &self.processes {
            let Some(health) = p.health else { continue };
            for state in STATES {
                let labels = [("name", p.name.as_str()), ("state", state.as_str())];
                let value = i64::from(health == state);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn requests(&self, out: &mut DescriptorEncoder) -> Written {
        let commands = &self.requests.commands;
        let help = "Requests by command, from the socket and over HTTP.";
        let counts = commands.iter().map(|c| (c.action, c.count as f64));
        family(
            out,
            "requests",
            help,
            MetricType::Counter,
            "command",
            counts,
        )?;
        let mut histogram = out.encode_descriptor(
            "request_duration_seconds",
            "Time from a command's start to its answer, by command.",
            None,
            MetricType::Histogram,
        )?;
        for c in commands {
            let label = [("command", c.action)];
            // The last reading is past every bound: the encoder writes it as the +Inf bucket.
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(c.buckets.iter().copied())
                .collect();
            histogram
                .encode_family(&label)?
                .encode_histogram::<Label<'_>>(c.seconds, c.count, &buckets, None)?;
        }
        Ok(())
    }

    fn daemon(&self, out: &mut DescriptorEncoder) -> Written {
        use MetricType::{Counter, Gauge};
        let each = &self.connections;
        let by = |figure: fn(&ConnectionReading) -> u64| {
            each.iter()
                .map(move |(t, c)| (t.as_str(), figure(c) as f64))
        };
        type Figure = fn(&ConnectionReading) -> u64;
        let figures: [(&str, &str, MetricType, Figure); 3] = [
            (
                "connections",
                "Connections open now, by transport.",
                Gauge,
                |c| c.open,
            ),
            (
                "connections_accepted",
                "Connections accepted so far, by transport.",
                Counter,
                |c| c.accepted,
            ),
            (
                "connections_refused",
                "Connections refused because too many were open, by transport.",
                Counter,
                |c| c.refused,
            ),
        ];
        for (name, help, kind, figure) in figures {
            family(out, name, help, kind, "transport", by(figure))?;
        }
        let writes = out.encode_descriptor(
            "state_writes",
            "Completed writes of the state file.",
            None,
            Counter,
        )?;
        ConstCounter::new(self.state_writes).encode(writes)
    }

    fn host(&self, out: &mut DescriptorEncoder) -> Written {
        let h = &self.host;
        let gauges = [
            (
                "host_memory_total_bytes",
                "Physical memory of the host.",
                h.memory_total_bytes as f64,
            ),
            (
                "host_memory_available_bytes",
                "Memory of the host available to new work without swapping.",
                h.memory_available_bytes as f64,
            ),
            (
                "host_load1",
                "Load average of the host over 1 minute.",
                h.load[0],
            ),
            (
                "host_load5",
                "Load average of the host over 5 minutes.",
                h.load[1],
            ),
            (
                "host_load15",
                "Load average of the host over 15 minutes.",
                h.load[2],
            ),
            ("host_cpus", "Logical CPUs of the host.", h.cpus as f64),
        ];
        for (name, help, value) in gauges {
            let family = out.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(family)?;
        }
        Ok(())
    }
}

/// Writes one family of type `kind` (a gauge or a counter) with a series per process (label `name`);
/// `value` answers `None` to leave a process out.
fn per_process(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    processes: &[ProcessInfo],
    value: impl Fn(&ProcessInfo) -> Option<f64>,
) -> Written {
    let series = processes
        .iter()
        .filter_map(|p| Some((p.name.as_str(), value(p)?)));
    family(out, name, help, kind, "name", series)
}

/// Writes one family of type `kind` (a gauge or a counter) with one series per `(label value, value)`,
/// all under the label `key`.
fn family<'a>(
    out: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    key: &'static str,
    series: impl IntoIterator<Item = (&'a str, f64)>,
) -> Written {
    let mut family = out.encode_descriptor(name, help, None, kind)?;
    for (label_value, v) in series {
        let label: Label<'_> = [(key, label_value)];
        let encoder = family.encode_family(&label)?;
        if kind == MetricType::Counter {
            ConstCounter::new(v).encode(encoder)?;
        } else {
            ConstGauge::new(v).encode(encoder)?;
        }
    }
    Ok(())
}

/// The Unix time of an RFC 3339 time (`start_time`), or `None` for an empty or unreadable one.
fn start_time_seconds(text: &str) -> Option<f64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(time.timestamp_millis() as f64 / 1000.0)
}
