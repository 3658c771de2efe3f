//! `GET /metrics`: the page passes `promtool check metrics`, and its figures are right (a started
//! process is up, its restarts count after a SIGKILL, requests from both front doors and connections
//! are counted); it needs the secret unless pm.conf says `metrics-public: true`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{ok, wait_for};
use crate::{answer, HttpDaemon};

const LIMIT: Duration = Duration::from_secs(20);

/// The page, read with the secret; it must answer 200.
fn metrics(d: &HttpDaemon) -> String {
    let (status, body) = answer(d.authed("GET", "/metrics").call());
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the series `series` (a name and its labels as written) on the page.
fn value(page: &str, series: &str) -> Option<f64> {
    let prefix = format!("{series} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().expect("a number"))
}

/// `pmclient start --name <name> --command <command> <extra...>`, which must succeed.
fn start(d: &HttpDaemon, name: &str, command: &str, extra: &[&str]) {
    let mut args = vec!["start", "--name", name, "--command", command];
    args.extend_from_slice(extra);
    ok(&d.daemon, &args);
}

/// Waits until the page's `series` has a value that `ok` accepts.
fn wait_series(d: &HttpDaemon, series: &str, ok: impl Fn(f64) -> bool) {
    wait_for(series, LIMIT, || {
        value(&metrics(d), series).is_some_and(&ok)
    });
}

#[test]
fn the_page_passes_promtool_and_counts_what_happened() {
    let d = HttpDaemon::start();
    // With a readiness check, so that the page promtool reads has health series too.
    start(&d, "web", "sleep 60", &["--ready", "exec:true"]);
    start(&d, "done", "true", &[]);
    wait_for("'done' to complete", LIMIT, || {
        d.daemon.status_json("done")["status"] == "completed"
    });
    // One request over HTTP too.
    let (status, _) = answer(d.authed("GET", "/api/v1/processes/web").call());
    assert_eq!(status, 200);
    let reply = d.authed("GET", "/metrics").call().unwrap();
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let page = reply.into_string().unwrap();
    assert!(page.contains(r#"process_health{name="web","#), "{page}");
    let expected = [
        (r#"process_up{name="web"}"#, 1.0),
        (r#"process_up{name="done"}"#, 0.0),
        (r#"process_restarts_total{name="web"}"#, 0.0),
        (r#"processes{status="running"}"#, 1.0),
        (r#"processes{status="completed"}"#, 1.0),
        (r#"processes{status="failed"}"#, 0.0),
        // The two starts came over the socket.
        (r#"requests_total{command="process.start"}"#, 2.0),
    ];
    for (series, want) in expected {
        let series = format!("processmanager_{series}");
        assert_eq!(value(&page, &series), Some(want), "{series} in\n{page}");
    }
    let at_least = [
        // The status polls above (socket) and the GET of one process (HTTP).
        (
            r#"request_duration_seconds_count{command="process.status"}"#,
            2.0,
        ),
        (r#"connections_accepted_total{transport="socket"}"#, 3.0),
        (r#"connections_accepted_total{transport="http"}"#, 2.0),
        // This scrape's own connection is open while the page is written.
        (r#"connections{transport="http"}"#, 1.0),
        ("state_writes_total", 1.0),
        ("host_memory_total_bytes", 1.0),
        ("host_cpus", 1.0),
    ];
    for (series, least) in at_least {
        let series = format!("processmanager_{series}");
        let v = value(&page, &series);
        assert!(v.is_some_and(|v| v >= least), "{series} {v:?} in\n{page}");
    }
    let started = value(
        &page,
        r#"processmanager_process_start_time_seconds{name="web"}"#,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started.is_some_and(|t| (now - 60.0..=now + 1.0).contains(&t)),
        "{started:?}"
    );
    // The monitor's readings come in with its ticks.
    let rss = r#"processmanager_process_memory_rss_bytes{name="web"}"#;
    wait_series(&d, rss, |rss| rss > 0.0);

    promtool_accepts(&page);
}

#[test]
fn restarts_count_after_a_sigkill() {
    let d = HttpDaemon::start();
    start(&d, "crashy", "sleep 60", &["--restarts", "-1"]);
    let up = r#"processmanager_process_up{name="crashy"}"#;
    wait_series(&d, up, |v| v == 1.0);
    let first = d.daemon.status_json("crashy")["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let restarts = r#"processmanager_process_restarts_total{name="crashy"}"#;
    wait_series(&d, restarts, |v| v == 1.0);
    wait_series(&d, up, |v| v == 1.0);
    let again = d.daemon.status_json("crashy")["pid"].as_i64().unwrap() as i32;
    assert_ne!(again, first, "a new run");
}

#[test]
fn health_shows_for_a_process_with_checks_only() {
    let d = HttpDaemon::start();
    start(&d, "checked", "sleep 60", &["--ready", "exec:true"]);
    start(&d, "plain", "sleep 60", &[]);
    let ready = r#"processmanager_process_health{name="checked",state="ready"}"#;
    wait_series(&d, ready, |v| v == 1.0);
    let page = metrics(&d);
    let starting = r#"processmanager_process_health{name="checked",state="starting"}"#;
    assert_eq!(value(&page, starting), Some(0.0), "{page}");
    assert!(!page.contains(r#"process_health{name="plain""#), "{page}");
}

#[test]
fn the_page_needs_the_secret_unless_metrics_are_public() {
    let d = HttpDaemon::start();
    assert_eq!(answer(d.bare("GET", "/metrics").call()).0, 401);
    let wrong = d
        .bare("GET", "/metrics")
        .set("Authorization", "Bearer wrong");
    assert_eq!(answer(wrong.call()).0, 401);
    assert_eq!(answer(d.authed("GET", "/metrics").call()).0, 200);

    let conf = d.daemon.dir.path().join("public.conf");
    std::fs::write(&conf, "metrics-public: true\n").unwrap();
    let public = HttpDaemon::start_with(&["--config", conf.to_str().unwrap()]);
    let (status, page) = answer(public.bare("GET", "/metrics").call());
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("processmanager_host_cpus "), "{page}");
    // Only the page: the API still needs the secret.
    assert_eq!(
        answer(public.bare("GET", "/api/v1/processes").call()).0,
        401
    );
}

/// Runs `promtool check metrics` on `page`; skips with a reason when promtool is not installed.
fn promtool_accepts(page: &str) {
    let Some((ok, said)) = promtool(&["check", "metrics"], page) else {
        return;
    };
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{page}"
    );
}

#[test]
fn promtool_accepts_the_documented_alert_rules() {
    let docs = include_str!("../../docs/metrics.md");
    let start = docs
        .find("```yaml\n# processmanager-rules.yml")
        .expect("the rules block");
    let block = &docs[start + "```yaml\n".len()..];
    let rules = &block[..block.find("```").expect("the block's end")];
    // Read from a file: promtool before 2.44 takes no rules on its standard input.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    if let Some((ok, said)) = promtool(&["check", "rules", file.to_str().unwrap()], "") {
        assert!(ok, "promtool check rules:\n{said}\n{rules}");
    }
}

/// Runs promtool with `args`, `input` on its standard input: whether it succeeded, and what it said.
/// `None`, with the reason printed, when promtool is not installed.
fn promtool(args: &[&str], input: &str) -> Option<(bool, String)> {
    let child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipped: promtool is not installed ({e}); apt-get install prometheus");
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}
