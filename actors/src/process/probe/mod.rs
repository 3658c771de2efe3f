//! Probes: one readiness or health check of a running process, as a future that never blocks its
//! thread and ends within its timeout. An http or tcp check is an async request on the calling
//! actor's reactor; an exec check is a child of the daemon started by the same spawn path as the
//! process itself (see `exec`). The notify socket a `ready:notify` process speaks to is `notify`.

mod exec;
mod http;
pub mod notify;

use std::time::{Duration, Instant};

use pm_protocol::{Probe, ProcessSpec};

use super::guard::GroupGuard;

pub(crate) use exec::ExecProbe;
use http::HttpCheck;

/// A check's failure, as the status shows it (`GET http://...: 503 after 12 ms`).
pub(crate) type Failure = String;

/// A duration as a person reads it: `1 s`, `1.5 s`, `250 ms`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{ms} ms")
    }
}

/// The coarsest grain [`coalesced`] rounds a check's time to.
const MAX_GRAIN: Duration = Duration::from_millis(50);

/// How long to wait for a check due after `delay`, rounded up to a grain of a twentieth of the delay
/// (at most [`MAX_GRAIN`]) counted from one instant for the whole daemon, so that the checks of all
/// processes fall on the same few instants. A thousand processes started at different moments, each
/// checked every second, would otherwise wake the daemon a thousand times a second, and on a VM each
/// wake-up costs more than the check's own work: the daemon wakes twenty times a second instead,
/// each check at most a twentieth of its period late.
pub(crate) fn coalesced(delay: Duration) -> Duration {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let now = Instant::now();
    let grain = (delay / 20)
        .clamp(Duration::from_millis(1), MAX_GRAIN)
        .as_nanos();
    let due = (now + delay).saturating_duration_since(epoch).as_nanos();
    let rounded = due.div_ceil(grain) * grain;
    let rounded = epoch + Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX));
    rounded.saturating_duration_since(now)
}

/// What one check loop keeps between its checks: an http check made once for its target.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    http: Option<std::sync::Arc<HttpCheck>>,
}

/// Runs `probe` once for the process of `spec`, with `timeout`. An exec check must be started on
/// the process actor's thread (its child dies with that thread), which is why this is not `async`:
/// the spawn happens now, the waiting in the returned future. `prepared` is the check loop's own.
pub(crate) fn check(
    probe: &Probe,
    prepared: &mut Prepared,
    spec: &ProcessSpec,
    timeout: Duration,
    guard: Option<GroupGuard>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Failure>>>> {
    match probe {
        Probe::Http(target) => {
            let check = match prepared.http.as_ref().filter(|c| c.is_for(target)) {
                Some(c) => std::sync::Arc::clone(c),
                None => prepared.http.insert(HttpCheck::new(target)).clone(),
            };
            Box::pin(http::get(check, timeout))
        }
        Probe::Tcp { host, port } => Box::pin(tcp(host.clone(), *port, timeout)),
        Probe::Exec(command) => match ExecProbe::start(spec, command, guard) {
            Ok(child) => Box::pin(child.finish(timeout)),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        },
    }
}

/// A TCP connect to `host:port` within `timeout`.
async fn tcp(host: String, port: u16, timeout: Duration) -> Result<(), Failure> {
    let began = Instant::now();
    let what = format!("connect to {host}:{port}");
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{what}: {e} after {}", human(began.elapsed()))),
        Err(_) => Err(format!("{what}: timed out after {}", human(timeout))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(1)), "1 s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::from_millis(12)), "12 ms");
    }

    #[actix_rt::test]
    async fn a_tcp_check_passes_on_a_listener_and_fails_without() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(tcp("127.0.0.1".into(), port, Duration::from_secs(1))
            .await
            .is_ok());
        drop(listener);
        let e = tcp("127.0.0.1".into(), port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            e.starts_with(&format!("connect to 127.0.0.1:{port}: ")),
            "{e}"
        );
    }

    #[test]
    fn checks_are_due_on_a_shared_grid_no_earlier_than_asked_and_at_most_a_grain_later() {
        for delay_ms in [1, 7, 100, 999, 1000, 1003, 10_000] {
            let delay = Duration::from_millis(delay_ms);
            let before = Instant::now();
            let got = coalesced(delay);
            let grain = (delay / 20).clamp(Duration::from_millis(1), MAX_GRAIN);
            // Not earlier than asked (allowing for the time between the two clock reads)...
            assert!(got + before.elapsed() >= delay, "{delay:?} -> {got:?}");
            // ... and at most one grain later.
            assert!(got <= delay + grain, "{delay:?} -> {got:?}");
        }
    }
}
