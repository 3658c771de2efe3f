//! A headless Chromium driven over WebDriver for the dashboard's tests: chromedriver started and
//! always killed by a guard, a browser session, and polling helpers with deadlines.
#![allow(dead_code)]

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// The browser's flags: headless, and nothing that reaches out to the network on its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Where chromedriver and chromium are, or why a test cannot run (printed, then the test returns).
pub fn browser_programs() -> Result<(PathBuf, PathBuf), String> {
    let driver = find_program(&["chromedriver"]).ok_or(
        "skipping: chromedriver is not installed (apt-get install chromium chromium-driver)",
    )?;
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
        .ok_or("skipping: chromium is not installed (apt-get install chromium)")?;
    Ok((driver, chromium))
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// A free TCP port on the loopback (bound, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `cond` until the TCP port accepts a connection.
pub fn wait_for_port(what: &str, port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls an async condition every 50 ms until it yields `Some`; panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// chromedriver in its own process group; dropping it kills the group (and so the browser) and
/// any process left that uses this guard's browser profile.
pub struct Chromedriver {
    child: Child,
    pub port: u16,
    pub profile: tempfile::TempDir,
    pub chromium: PathBuf,
    pub log: PathBuf,
}

impl Chromedriver {
    pub fn start(driver: &Path, chromium: &Path) -> Chromedriver {
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let mut cmd = Command::new(driver);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().unwrap();
        let guard = Chromedriver {
            child,
            port,
            profile,
            chromium: chromium.to_path_buf(),
            log,
        };
        wait_for_port("chromedriver", port, Duration::from_secs(20));
        guard
    }

    /// A new browser session with a fresh profile, at a desktop window size.
    pub async fn browser(&self) -> Client {
        let user_data = self.profile.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", user_data.display()));
        args.push("--window-size=1280,900".to_string());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let caps = match caps {
            Value::Object(map) => map,
            _ => unreachable!("capabilities are an object"),
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "starting the browser: {e}\nchromedriver log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            })
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
        // A browser process that left the group still names this guard's profile on its command line.
        let marker = self.profile.path().to_string_lossy().into_owned();
        for pid in pids_whose_cmdline_contains(&marker) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn pids_whose_cmdline_contains(marker: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .collect()
}

/// Runs a script in the page and returns its value (null when the script failed).
pub async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap_or(Value::Null)
}

/// The text of the first element matching `selector`, if there is one and it is shown.
pub async fn visible_text(client: &Client, selector: &str) -> Option<String> {
    let script = format!(
        "const e = document.querySelector({sel}); \
         if (!e || e.closest('[hidden]')) return null; return e.textContent;",
        sel = serde_json::to_string(selector).unwrap()
    );
    js(client, &script).await.as_str().map(str::to_string)
}

/// Clicks the first element matching `selector` (it must exist).
pub async fn click(client: &Client, selector: &str) {
    client
        .find(fantoccini::Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("finding {selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {selector}: {e}"));
}

/// Where this build's `target/` folder is (the test binaries live under it).
pub fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_processmanager"));
    exe.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Waits until the shown element `selector` holds `needle`; returns its whole text.
pub async fn wait_for_text(
    client: &Client,
    selector: &str,
    needle: &str,
    limit: Duration,
) -> String {
    let what = format!("{needle:?} in {selector}");
    eventually(&what, limit, || async {
        visible_text(client, selector)
            .await
            .filter(|t| t.contains(needle))
    })
    .await
}
