use pm_actors::counters::{CommandReading, LATENCY_BUCKETS};
use pm_protocol::Status;

use super::*;

fn process(name: &str) -> ProcessInfo {
    ProcessInfo::initial(name, "sleep 100")
}

fn scrape() -> Scrape {
    let mut web = process("web");
    web.status = Status::Running;
    web.pid = 4242;
    web.restarts = 3;
    web.cpu_seconds = 12.5;
    web.memory_mb = 1.5;
    web.start_time = "2026-12-04T10:00:00.250+01:00".into();
    web.health = Some(pm_protocol::Health::Unhealthy);
    let mut worker = process("worker");
    worker.status = Status::Stopped;
    worker.start_time = "2026-12-04T09:00:00.000+00:00".into();
    let fresh = process("fresh");
    let mut buckets = vec![0; LATENCY_BUCKETS.len() + 1];
    buckets[0] = 2;
    buckets[3] = 1;
    buckets[LATENCY_BUCKETS.len()] = 1;
    let mut scrape = Scrape {
        processes: vec![fresh, web, worker],
        state_writes: 7,
        ..Scrape::daemon_now()
    };
    scrape.requests.commands[0] = CommandReading {
        action: "process.start",
        count: 4,
        seconds: 30.5,
        buckets,
    };
    scrape
}

/// The value of the one line that starts with `series ` (a name and its labels).
fn value(page: &str, series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    let mut found = page.lines().filter_map(|l| l.strip_prefix(&prefix));
    let v = found.next()?.parse().ok();
    assert!(found.next().is_none(), "{series} twice in\n{page}");
    v
}

#[test]
fn every_process_has_its_series() {
    let page = scrape().render();
    let expected = [
        (r#"process_up{name="web"}"#, Some(1.0)),
        (r#"process_up{name="worker"}"#, Some(0.0)),
        (r#"process_up{name="fresh"}"#, Some(0.0)),
        (r#"process_restarts_total{name="web"}"#, Some(3.0)),
        (r#"process_cpu_seconds_total{name="web"}"#, Some(12.5)),
        (r#"process_memory_rss_bytes{name="web"}"#, Some(1_572_864.0)),
        (
            r#"process_start_time_seconds{name="web"}"#,
            Some(1_796_374_800.25),
        ),
        // Never started: no start time.
        (r#"process_start_time_seconds{name="fresh"}"#, None),
        (r#"process_health{name="web",state="unhealthy"}"#, Some(1.0)),
        (r#"process_health{name="web",state="ready"}"#, Some(0.0)),
        (r#"process_health{name="web",state="starting"}"#, Some(0.0)),
        // No checks: no health.
        (r#"process_health{name="worker",state="ready"}"#, None),
        (r#"processes{status="running"}"#, Some(1.0)),
        (r#"processes{status="stopped"}"#, Some(1.0)),
        (r#"processes{status="initial"}"#, Some(1.0)),
        (r#"processes{status="failed"}"#, Some(0.0)),
        ("state_writes_total", Some(7.0)),
    ];
    for (series, want) in expected {
        let series = format!("{PREFIX}_{series}");
        assert_eq!(value(&page, &series), want, "{series} in\n{page}");
    }
    assert!(page.contains("# TYPE processmanager_process_restarts_total counter\n"));
    assert!(page.contains("# TYPE processmanager_process_up gauge\n"));
}

#[test]
fn the_latency_histogram_is_cumulative_and_ends_at_its_count() {
    let page = scrape().render();
    let bucket = |le: &str| {
        let series = format!(
            r#"processmanager_request_duration_seconds_bucket{{command="process.start",le="{le}"}}"#
        );
        value(&page, &series)
    };
    assert_eq!(bucket("0.0001"), Some(2.0));
    assert_eq!(bucket("0.0005"), Some(2.0));
    assert_eq!(bucket("0.001"), Some(3.0));
    assert_eq!(bucket("10"), Some(3.0));
    assert_eq!(bucket("+Inf"), Some(4.0));
    let start = r#"{command="process.start"}"#;
    assert_eq!(
        value(
            &page,
            &format!("processmanager_request_duration_seconds_count{start}")
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &page,
            &format!("processmanager_request_duration_seconds_sum{start}")
        ),
        Some(30.5)
    );
    assert_eq!(
        value(&page, &format!("processmanager_requests_total{start}")),
        Some(4.0)
    );
    for action in pm_protocol::command::Command::ACTIONS {
        let series = format!(r#"processmanager_requests_total{{command="{action}"}}"#);
        assert!(value(&page, &series).is_some(), "{series}");
    }
}

#[test]
fn the_daemon_and_the_host_have_their_series() {
    let page = scrape().render();
    for transport in ["socket", "http"] {
        for name in [
            "connections",
            "connections_accepted_total",
            "connections_refused_total",
        ] {
            let series = format!(r#"processmanager_{name}{{transport="{transport}"}}"#);
            assert!(value(&page, &series).is_some(), "{series} in\n{page}");
        }
    }
    assert!(value(&page, "processmanager_host_memory_total_bytes").unwrap() > 0.0);
    assert!(value(&page, "processmanager_host_memory_available_bytes").is_some());
    assert!(value(&page, "processmanager_host_cpus").unwrap() >= 1.0);
    for load in ["load1", "load5", "load15"] {
        assert!(value(&page, &format!("processmanager_host_{load}")).is_some());
    }
}

#[test]
fn every_family_is_written_and_documented() {
    let page = Scrape::daemon_now().render();
    let docs = include_str!("../../../docs/metrics.md");
    for family in FAMILIES {
        let help = format!("# HELP {PREFIX}_{family}");
        assert!(page.contains(&help), "{help} in\n{page}");
        let counter = format!("{PREFIX}_{family}_total");
        let name = if page.contains(&format!("# TYPE {counter} counter")) {
            counter
        } else {
            format!("{PREFIX}_{family}")
        };
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/metrics.md lists `{name}`"
        );
    }
}

#[actix_rt::test]
async fn the_route_answers_the_page_of_a_live_registry() {
    use actix_web::{test, App};
    use pm_actors::registry::{Registry, RegistryConfig, Shutdown, StartProcess};
    use pm_actors::session::SessionSettings;
    use pm_protocol::ProcessSpec;

    use crate::http::auth::Auth;
    use crate::http::events::EventHub;
    use crate::http::HttpSettings;

    let dir = tempfile::tempdir().unwrap();
    let mut config = RegistryConfig::in_dir(dir.path());
    config.persist_state = false;
    let registry = Registry::new(config).start();
    let spec = ProcessSpec::shell("nap", "sleep 30");
    let started = registry.send(StartProcess {
        spec,
        template: None,
    });
    started.await.unwrap().unwrap();
    let settings = HttpSettings::new("127.0.0.1:0".parse().unwrap());
    let state = HttpState {
        registry: RegistryLink::new(&registry),
        ready: registry.clone().recipient(),
        auth: Auth::new("s", SessionSettings::new("s").throttle(), true),
        events: EventHub::new(settings.events_backlog),
        settings,
    };
    let app = App::new().app_data(web::Data::new(state)).configure(routes);
    let app = test::init_service(app).await;
    let scrape = || test::TestRequest::get().uri("/metrics").to_request();
    let answer = test::call_service(&app, scrape()).await;
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers().get("content-type").unwrap();
    assert_eq!(content_type.to_str().unwrap(), CONTENT_TYPE);
    let page = String::from_utf8(test::read_body(answer).await.to_vec()).unwrap();
    let nap_up = r#"processmanager_process_up{name="nap"}"#;
    assert_eq!(value(&page, nap_up), Some(1.0));

    registry.send(Shutdown).await.unwrap().unwrap();
    let page = test::read_body(test::call_service(&app, scrape()).await).await;
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert_eq!(value(&page, nap_up), Some(0.0), "stopped by the shutdown");
}
