//! The dashboard in a real headless Chromium: login, live updates, actions, the log panel, and a
//! daemon restart, against the real daemon with its HTTP server on.

mod browser;
mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use browser::{click, eventually, js, visible_text, wait_for_text, Chromedriver};
use common::{Daemon, SECRET};
use fantoccini::Client;

/// One browser at a time: the machine's cores are few and a browser is heavy.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// Everything a test needs: the daemon with `--http`, chromedriver, and a browser on the page.
struct Setup {
    client: Client,
    daemon: Daemon,
    url: String,
    http_args: Vec<String>,
    // Dropped last: killing chromedriver takes the browser with it.
    _driver: Chromedriver,
}

impl Setup {
    /// None (after printing why) when this machine has no browser.
    async fn start() -> Option<Setup> {
        let (driver_path, chromium) = match browser::browser_programs() {
            Ok(found) => found,
            Err(why) => {
                eprintln!("{why}");
                return None;
            }
        };
        let port = browser::free_port();
        let http_args = vec!["--http".to_string(), format!("127.0.0.1:{port}")];
        let args: Vec<&str> = http_args.iter().map(String::as_str).collect();
        let daemon = Daemon::start_with(&args, true);
        browser::wait_for_port("the daemon's HTTP server", port, Duration::from_secs(20));
        let driver = Chromedriver::start(&driver_path, &chromium);
        let client = driver.browser().await;
        let url = format!("http://127.0.0.1:{port}/");
        client.goto(&url).await.unwrap();
        Some(Setup {
            client,
            daemon,
            url,
            http_args,
            _driver: driver,
        })
    }

    /// Logs in with `secret` through the form.
    async fn submit_secret(&self, secret: &str) {
        let c = &self.client;
        eventually("the login form", Duration::from_secs(10), || async {
            visible_text(c, "#login-form button").await
        })
        .await;
        js(
            c,
            "const s = document.getElementById('secret'); s.value = ''; s.focus();",
        )
        .await;
        c.find(fantoccini::Locator::Id("secret"))
            .await
            .unwrap()
            .send_keys(secret)
            .await
            .unwrap();
        click(c, "#login-form button[type=submit]").await;
    }

    async fn log_in(&self) {
        self.submit_secret(SECRET).await;
        self.wait_for_table().await;
    }

    async fn wait_for_table(&self) {
        let c = &self.client;
        eventually("the process table", Duration::from_secs(10), || async {
            visible_text(c, "#processes-title").await
        })
        .await;
    }

    /// The status the page shows for `name`, if it has a row.
    async fn shown_status(&self, name: &str) -> Option<String> {
        visible_text(&self.client, &status_cell(name)).await
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Runs `test` with a fresh setup on its own runtime, one browser at a time; without a browser on
/// this machine it prints why and returns.
fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Setup) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if let Some(setup) = Setup::start().await {
            test(setup).await;
        }
    });
}

/// The selector of the status cell of `name`'s row.
fn status_cell(name: &str) -> String {
    format!("#processes tr[data-name='{name}'] td.col-status")
}

fn start_over_socket(daemon: &Daemon, name: &str, command: &str) {
    let out = daemon.pmclient(&["start", "--name", name, "--log", "--command", command]);
    assert!(
        out.status.success(),
        "pmclient start {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_secret_is_refused_and_the_right_one_accepted() {
    with_browser(|setup| async move {
        let c = &setup.client;
        setup.submit_secret("not-the-secret").await;
        let error = eventually("the login error", Duration::from_secs(10), || async {
            visible_text(c, "#login-error")
                .await
                .filter(|t| !t.is_empty())
        })
        .await;
        assert!(error.contains("not right"), "{error}");
        assert!(visible_text(c, "#processes-title").await.is_none());

        setup.log_in().await;
        // The session is a cookie: a reload goes straight to the table.
        c.goto(&setup.url).await.unwrap();
        setup.wait_for_table().await;
        setup.close().await;
    });
}

#[test]
fn the_table_follows_the_socket_and_stop_stops() {
    with_browser(|setup| async move {
        let c = &setup.client;
        setup.log_in().await;
        start_over_socket(
            &setup.daemon,
            "api",
            "while :; do echo \"GET /health 200 $(date +%T)\"; sleep 1; done",
        );
        start_over_socket(&setup.daemon, "db", "exec sleep 300");

        let started = Instant::now();
        start_over_socket(&setup.daemon, "web", "echo serving; exec sleep 300");
        wait_for_text(c, &status_cell("web"), "running", Duration::from_secs(5)).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "web showed after {took:?}");

        click(
            c,
            "#processes tr[data-name='web'] button[data-action='stop']",
        )
        .await;
        wait_for_text(c, &status_cell("web"), "stopped", Duration::from_secs(10)).await;
        let status = setup.daemon.status_json("web");
        assert_eq!(status["status"], "stopped", "{status}");

        // A few readings for the sparklines, then the picture for the README.
        eventually(
            "readings and samples for the picture",
            Duration::from_secs(20),
            || async {
                let ready = js(
                    c,
                    "const row = document.querySelector(\"tr[data-name='api']\"); \
             const points = row?.querySelector('polyline.mem')?.getAttribute('points') ?? ''; \
             return points.split(' ').length >= 5 \
               && row.querySelector('td.col-memory').textContent !== '0.0 MB' \
               && parseInt(row.querySelector('td.col-uptime').textContent) >= 8;",
                )
                .await;
                ready.as_bool().filter(|r| *r)
            },
        )
        .await;
        click(
            c,
            "#processes tr[data-name='api'] button[data-action='logs']",
        )
        .await;
        wait_for_text(c, "#log-lines", "GET /health", Duration::from_secs(10)).await;
        let png = c.screenshot().await.unwrap();
        let path = browser::target_dir().join("dashboard.png");
        std::fs::write(&path, png).unwrap();
        eprintln!("saved {}", path.display());

        // At phone width the page fits without sideways scrolling.
        c.set_window_size(390, 844).await.unwrap();
        eventually(
            "the page at phone width",
            Duration::from_secs(5),
            || async {
                let fits = js(
                    c,
                    "return document.documentElement.scrollWidth <= window.innerWidth",
                )
                .await;
                fits.as_bool().filter(|f| *f)
            },
        )
        .await;
        setup.close().await;
    });
}

#[test]
fn the_log_panel_shows_a_line_printed_after_the_page_opened() {
    with_browser(|setup| async move {
        let c = &setup.client;
        let go = setup.daemon.dir.path().join("go");
        let script = format!(
        "echo before; while [ ! -e {go} ]; do sleep 0.05; done; echo printed-after-open; exec sleep 300",
        go = go.display()
    );
        start_over_socket(&setup.daemon, "talker", &script);
        setup.log_in().await;
        eventually("talker in the table", Duration::from_secs(5), || async {
            setup.shown_status("talker").await
        })
        .await;
        click(
            c,
            "#processes tr[data-name='talker'] button[data-action='logs']",
        )
        .await;
        wait_for_text(c, "#log-lines", "before", Duration::from_secs(10)).await;
        std::fs::write(&go, b"").unwrap();
        wait_for_text(
            c,
            "#log-lines",
            "printed-after-open",
            Duration::from_secs(5),
        )
        .await;
        setup.close().await;
    });
}

#[test]
fn the_page_shows_a_banner_while_the_daemon_is_away_and_reconnects() {
    with_browser(|mut setup| async move {
        setup.log_in().await;
        setup.daemon.terminate(Duration::from_secs(20));
        let c = setup.client.clone();
        eventually("the banner", Duration::from_secs(10), || async {
            visible_text(&c, "#banner").await
        })
        .await;

        let mut args = vec![
            "--socket".to_string(),
            setup.daemon.socket.display().to_string(),
        ];
        args.extend(setup.http_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        setup.daemon.launch_with_args(&args, true);
        start_over_socket(&setup.daemon, "back", "exec sleep 300");

        eventually("the banner gone", Duration::from_secs(15), || async {
            visible_text(&c, "#banner").await.is_none().then_some(())
        })
        .await;
        // A session kept in the daemon's memory ends with it: then the page asks for the secret again.
        if visible_text(&c, "#login-form button").await.is_some() {
            setup.log_in().await;
        }
        eventually(
            "the table after the restart",
            Duration::from_secs(10),
            || async { setup.shown_status("back").await },
        )
        .await;
        setup.close().await;
    });
}

#[test]
fn the_form_starts_and_kill_and_delete_ask_first() {
    with_browser(|setup| async move {
        let c = &setup.client;
        setup.log_in().await;
        // Defined with the page's own form (a POST with the session's CSRF token).
        press(c, "#new-name", "victim").await;
        press(c, "#new-command", "exec sleep 300").await;
        press(c, "#new-command", ENTER).await;
        wait_for_text(c, &status_cell("victim"), "running", Duration::from_secs(5)).await;
        let pid = setup.daemon.status_json("victim")["pid"].clone();

        // Enter on the focused Kill button asks; Escape answers no, and nothing happens.
        let kill = "#processes tr[data-name='victim'] button[data-action='kill']";
        press(c, kill, ENTER).await;
        wait_dialog(c, true).await;
        press(c, "#confirm button[value='cancel']", ESCAPE).await;
        wait_dialog(c, false).await;
        assert_eq!(setup.daemon.status_json("victim")["pid"], pid);

        // Kill, confirmed from the keyboard: the process is gone and restarted or down, not the same pid.
        press(c, kill, ENTER).await;
        wait_dialog(c, true).await;
        press(c, "#confirm-ok", ENTER).await;
        wait_dialog(c, false).await;
        let daemon = &setup.daemon;
        common::wait_for("the kill", Duration::from_secs(10), || {
            daemon.status_json("victim")["pid"] != pid
        });

        // Delete, confirmed: the row goes and the socket no longer knows the name.
        click(
            c,
            "#processes tr[data-name='victim'] button[data-action='delete']",
        )
        .await;
        wait_dialog(c, true).await;
        click(c, "#confirm-ok").await;
        eventually("the row removed", Duration::from_secs(10), || async {
            let gone = js(
                c,
                "return !document.querySelector(\"#processes tr[data-name='victim']\")",
            )
            .await;
            gone.as_bool().filter(|g| *g)
        })
        .await;
        let out = setup.daemon.pmclient(&["status", "--name", "victim"]);
        assert!(!out.status.success(), "victim is still defined");
        setup.close().await;
    });
}

const ENTER: &str = "\u{E007}";
const ESCAPE: &str = "\u{E00C}";

/// Focuses the element and types `key` (text or a key such as [`ENTER`]), as a keyboard user would.
async fn press(client: &Client, selector: &str, key: &str) {
    let element = client
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("finding {selector}: {e}"));
    element.send_keys(key).await.unwrap();
}

async fn wait_dialog(client: &Client, open: bool) {
    eventually(
        "the confirmation dialog",
        Duration::from_secs(5),
        || async {
            let shown = js(client, "return document.getElementById('confirm').open").await;
            (shown.as_bool() == Some(open)).then_some(())
        },
    )
    .await;
}
