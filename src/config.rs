//! `pm.conf`: the daemon's YAML configuration, and the defaults that derive from the socket path.
//!
//! Every key is optional. Paths that are not given belong to the socket `S`: `S.d/logs`,
//! `S.d/templates`, `S.d/state.json` (see README, "Files the daemon uses"). Relative paths in the
//! file are taken relative to the file's own directory. An unknown key is an error that names it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pm_actors::registry::{RegistryConfig, RegistryPaths};
use pm_actors::session::DEFAULT_REPLY_BACKLOG_BYTES;
use pm_protocol::{LogSettings, RestartSettings};
use serde::Deserialize;
use thiserror::Error;

/// The socket used when neither the command line nor `pm.conf` names one.
pub const DEFAULT_SOCKET: &str = "/tmp/processmanager.sock";

/// Why `pm.conf` could not be used.
#[derive(Debug, Error)]
// Each variant's `#[error]` message is its documentation.
#[allow(missing_docs)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

/// The keys of `pm.conf` as written (all optional). See [`ConfigFile::resolve`] for the defaults.
///
/// ```
/// use processmanager::config::ConfigFile;
/// let conf = ConfigFile::parse("template-path: /etc/pm/templates\nstatus-interval-ms: 500\n", None).unwrap();
/// let config = conf.resolve(None);
/// assert_eq!(config.template_dir, std::path::Path::new("/etc/pm/templates"));
/// assert_eq!(config.status_interval.as_millis(), 500);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigFile {
    /// The Unix socket the daemon listens on.
    pub socket: Option<PathBuf>,
    /// Ligato's key: the folder of the template files.
    pub template_path: Option<PathBuf>,
    /// The folder of the per-process log files.
    pub log_dir: Option<PathBuf>,
    /// The folder of `state.json`.
    pub state_dir: Option<PathBuf>,
    /// How often each process's kernel state, CPU and memory are read.
    pub status_interval_ms: Option<u64>,
    /// Default grace between the stop signal and SIGKILL.
    pub stop_grace_ms: Option<u64>,
    /// Default delay before the second automatic restart (it then doubles).
    pub restart_backoff_initial_ms: Option<u64>,
    /// Default cap of the restart delay.
    pub restart_backoff_max_ms: Option<u64>,
    /// Default time up after which the restart delay resets.
    pub restart_reset_after_ms: Option<u64>,
    /// Default size at which a log file is rotated.
    pub log_max_bytes: Option<u64>,
    /// Default number of rotated log files kept.
    pub log_keep_files: Option<u32>,
    /// Default number of lines kept in memory per process.
    pub log_ring_lines: Option<usize>,
    /// On a reload, delete the processes whose template file was removed.
    pub prune_templates: Option<bool>,
    /// Bytes of answers a connection may have waiting before the daemon stops reading its lines.
    pub reply_backlog_bytes: Option<usize>,
    /// The address of the HTTP server (`127.0.0.1:9100`); no HTTP server when not given.
    pub http: Option<SocketAddr>,
    /// Let `GET /metrics` be read without the secret.
    pub metrics_public: Option<bool>,
    /// Every process's captured lines also to the daemon's stdout, as `name | line`.
    pub log_stdout: Option<bool>,
    /// `auto` (one cgroup per process where a writable cgroup v2 exists) or `off`.
    pub cgroups: Option<String>,
}

/// The daemon's settings with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The socket the daemon listens on.
    pub socket: PathBuf,
    /// The folder of `<name>.json` templates.
    pub template_dir: PathBuf,
    /// The folder of `<name>.log` files.
    pub log_dir: PathBuf,
    /// The folder of `state.json`.
    pub state_dir: PathBuf,
    /// How often each process's state, CPU and memory are read.
    pub status_interval: Duration,
    /// The default grace between the stop signal and SIGKILL.
    pub stop_grace: Duration,
    /// Backoff defaults for specs that do not set their own (policy and count stay per process).
    pub restart: RestartSettings,
    /// Log defaults for specs that do not set their own (`enabled` stays per process).
    pub log: LogSettings,
    /// On a reload, delete the processes whose template file was removed.
    pub prune_templates: bool,
    /// Bytes of answers a connection may have waiting before the daemon stops reading its lines.
    pub reply_backlog_bytes: usize,
    /// The address of the HTTP server, when there is one (`--http` wins over `http:`).
    pub http: Option<SocketAddr>,
    /// Whether `GET /metrics` may be read without the secret.
    pub metrics_public: bool,
    /// Whether captured lines also go to the daemon's stdout (`--log-stdout` or `log-stdout: true`).
    pub log_stdout: bool,
    /// `auto` or `off` as pm.conf says (`--cgroups` wins); checked when the daemon starts.
    pub cgroups: Option<String>,
}

impl ConfigFile {
    /// Reads and parses a `pm.conf`. A missing or unreadable file, bad YAML, a wrong type or an unknown
    /// key is an error naming the file and the problem.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ConfigFile::parse(&text, Some(path))
    }

    /// Parses the text of a `pm.conf`; relative paths are made relative to `path`'s folder.
    pub fn parse(text: &str, path: Option<&Path>) -> Result<ConfigFile, ConfigError> {
        let shown = path.unwrap_or(Path::new("pm.conf")).to_path_buf();
        // An empty file (or one with only comments) is an empty config, not an error.
        let mut conf: ConfigFile = if text.trim().lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            ConfigFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
                path: shown,
                reason: e.to_string(),
            })?
        };
        if let Some(base) = path.and_then(Path::parent) {
            for p in [
                &mut conf.socket,
                &mut conf.template_path,
                &mut conf.log_dir,
                &mut conf.state_dir,
            ]
            .into_iter()
            .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
        Ok(conf)
    }

    /// Fills in the defaults. `socket` (from the command line) wins over the file's `socket`; the
    /// paths not given derive from the socket `S`: `S.d/templates`, `S.d/logs`, and `S.d` for the state.
    pub fn resolve(&self, socket: Option<&Path>) -> Config {
        let socket = socket
            .map(Path::to_path_buf)
            .or_else(|| self.socket.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        let dir = daemon_dir(&socket);
        let restart = RestartSettings::default();
        let log = LogSettings::default();
        Config {
            template_dir: self
                .template_path
                .clone()
                .unwrap_or_else(|| dir.join("templates")),
            log_dir: self.log_dir.clone().unwrap_or_else(|| dir.join("logs")),
            state_dir: self.state_dir.clone().unwrap_or_else(|| dir.clone()),
            socket,
            status_interval: Duration::from_millis(self.status_interval_ms.unwrap_or(1000)),
            stop_grace: Duration::from_millis(self.stop_grace_ms.unwrap_or(10_000)),
            restart: RestartSettings {
                backoff_initial_ms: self
                    .restart_backoff_initial_ms
                    .unwrap_or(restart.backoff_initial_ms),
                backoff_max_ms: self
                    .restart_backoff_max_ms
                    .unwrap_or(restart.backoff_max_ms),
                reset_after_ms: self
                    .restart_reset_after_ms
                    .unwrap_or(restart.reset_after_ms),
                ..restart
            },
            log: LogSettings {
                max_bytes: self.log_max_bytes.unwrap_or(log.max_bytes),
                keep_files: self.log_keep_files.unwrap_or(log.keep_files),
                ring_lines: self.log_ring_lines.unwrap_or(log.ring_lines),
                ..log
            },
            prune_templates: self.prune_templates.unwrap_or(false),
            reply_backlog_bytes: self
                .reply_backlog_bytes
                .unwrap_or(DEFAULT_REPLY_BACKLOG_BYTES),
            http: self.http,
            metrics_public: self.metrics_public.unwrap_or(false),
            log_stdout: self.log_stdout.unwrap_or(false),
            cgroups: self.cgroups.clone(),
        }
    }
}

/// The daemon's own folder for the socket `S`: `S.d`.
pub fn daemon_dir(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".d");
    PathBuf::from(s)
}

impl Config {
    /// `state-dir/state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir.join("state.json")
    }

    /// The folders the registry uses.
    pub fn registry_paths(&self) -> RegistryPaths {
        RegistryPaths {
            log_dir: self.log_dir.clone(),
            template_dir: self.template_dir.clone(),
            state_file: self.state_file(),
        }
    }

    /// The registry's configuration: folders, status tick and the per-process defaults.
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig {
            status_interval: self.status_interval,
            stop_grace: self.stop_grace,
            restart_defaults: self.restart.clone(),
            log_defaults: self.log.clone(),
            ..RegistryConfig::new(self.registry_paths())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_derive_from_the_socket() {
        let c = ConfigFile::default().resolve(Some(Path::new("/run/a.sock")));
        assert_eq!(c.socket, Path::new("/run/a.sock"));
        assert_eq!(c.template_dir, Path::new("/run/a.sock.d/templates"));
        assert_eq!(c.log_dir, Path::new("/run/a.sock.d/logs"));
        assert_eq!(c.state_file(), Path::new("/run/a.sock.d/state.json"));
        assert_eq!(c.status_interval, Duration::from_secs(1));
        assert_eq!(c.stop_grace, Duration::from_secs(10));
        assert_eq!(c.restart, RestartSettings::default());
        assert_eq!(c.log, LogSettings::default());
        let d = ConfigFile::default().resolve(None);
        assert_eq!(d.socket, Path::new(DEFAULT_SOCKET));
        assert_eq!(d.log_dir, Path::new("/tmp/processmanager.sock.d/logs"));
    }

    #[test]
    fn every_key_parses() {
        let text = "\
# comment
socket: /run/pm.sock
template-path: /etc/pm/templates
log-dir: /var/log/pm
state-dir: /var/lib/pm
status-interval-ms: 250
stop-grace-ms: 3000
restart-backoff-initial-ms: 50
restart-backoff-max-ms: 5000
restart-reset-after-ms: 2000
log-max-bytes: 1048576
log-keep-files: 2
log-ring-lines: 10
reply-backlog-bytes: 65536
http: 127.0.0.1:9100
metrics-public: true
";
        let c = ConfigFile::parse(text, None).unwrap().resolve(None);
        assert_eq!(c.socket, Path::new("/run/pm.sock"));
        assert_eq!(c.template_dir, Path::new("/etc/pm/templates"));
        assert_eq!(c.log_dir, Path::new("/var/log/pm"));
        assert_eq!(c.state_file(), Path::new("/var/lib/pm/state.json"));
        assert_eq!(c.status_interval, Duration::from_millis(250));
        assert_eq!(c.stop_grace, Duration::from_secs(3));
        assert_eq!(
            (
                c.restart.backoff_initial_ms,
                c.restart.backoff_max_ms,
                c.restart.reset_after_ms
            ),
            (50, 5000, 2000)
        );
        assert_eq!(
            (c.log.max_bytes, c.log.keep_files, c.log.ring_lines),
            (1048576, 2, 10)
        );
        assert_eq!(c.reply_backlog_bytes, 65536);
        assert_eq!(c.http, Some("127.0.0.1:9100".parse().unwrap()));
        assert!(c.metrics_public);
        let r = c.registry_config();
        assert_eq!(r.paths.template_dir, Path::new("/etc/pm/templates"));
        assert_eq!(
            (r.stop_grace, r.status_interval),
            (c.stop_grace, c.status_interval)
        );
        assert_eq!(r.restart_defaults.backoff_max_ms, 5000);
        assert!(r.load_templates);
        // The command line's socket wins, but explicit paths stay.
        let c = ConfigFile::parse(text, None)
            .unwrap()
            .resolve(Some(Path::new("/tmp/x.sock")));
        assert_eq!(c.socket, Path::new("/tmp/x.sock"));
        assert_eq!(c.log_dir, Path::new("/var/log/pm"));
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let c = ConfigFile::parse(
            "template-path: ./templates\n",
            Some(Path::new("/etc/pm/pm.conf")),
        )
        .unwrap()
        .resolve(None);
        assert_eq!(c.template_dir, Path::new("/etc/pm/./templates"));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(ConfigFile::parse("", None).unwrap(), ConfigFile::default());
        assert_eq!(
            ConfigFile::parse("# nothing\n\n", None).unwrap(),
            ConfigFile::default()
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = ConfigFile::parse("template-path: /x\nsockett: /y\n", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sockett") && e.contains("pm.conf"), "{e}");
        let e = ConfigFile::parse("status-interval-ms: soon\n", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("status-interval-ms"), "{e}");
        let e = ConfigFile::parse("[1, 2", None).unwrap_err().to_string();
        assert!(e.starts_with("invalid config file"), "{e}");
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.conf");
        let e = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("cannot read config file") && e.contains("nope.conf"),
            "{e}"
        );
    }

    #[test]
    fn shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pm.conf");
        let conf = ConfigFile::load(&path).unwrap();
        assert!(conf.template_path.is_some());
    }

    #[test]
    fn shipped_templates_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let t = pm_protocol::template::Template::from_json(&text).unwrap();
            let spec = t.to_spec().unwrap();
            assert_eq!(path.file_name().unwrap().to_str().unwrap(), t.file_name());
            if let Some(cron) = &spec.cron {
                pm_protocol::cron::CronSchedule::parse(cron).unwrap();
            }
            names.push(spec.name);
        }
        names.sort();
        assert_eq!(names, ["backup", "clock", "ping", "web"]);
    }
}
