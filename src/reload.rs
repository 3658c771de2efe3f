//! The daemon's reload of pm.conf: what may change while it runs, and what needs a restart.
//!
//! The registry re-reads the templates itself; it asks this module's [`reloader`] for the settings of
//! pm.conf, read again from the same file with the same command line.

use std::path::PathBuf;
use std::sync::Arc;

use pm_actors::registry::{ConfigReloader, ReloadedConfig};

use crate::config::{Config, ConfigFile};

/// The keys whose change takes effect only after a restart of the daemon, between two configurations.
///
/// ```
/// use processmanager::config::ConfigFile;
/// use processmanager::reload::needs_restart;
/// let running = ConfigFile::default().resolve(None);
/// let mut read = running.clone();
/// read.state_dir = "/elsewhere".into();
/// read.stop_grace = std::time::Duration::from_secs(1);
/// assert_eq!(needs_restart(&running, &read), ["state-dir"]);
/// ```
pub fn needs_restart(running: &Config, read: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    if running.socket != read.socket {
        keys.push("socket");
    }
    if running.state_dir != read.state_dir {
        keys.push("state-dir");
    }
    if running.log_dir != read.log_dir {
        keys.push("log-dir");
    }
    if running.status_interval != read.status_interval {
        keys.push("status-interval-ms");
    }
    keys.into_iter().map(str::to_string).collect()
}

/// Reads `path` (none: every key at its default) again as the daemon started with `socket` would,
/// and compares it with the configuration the daemon runs with.
pub fn reloader(path: Option<PathBuf>, socket: Option<PathBuf>, running: Config) -> ConfigReloader {
    ConfigReloader(Arc::new(move || {
        let file = match &path {
            Some(p) => ConfigFile::load(p).map_err(|e| e.to_string())?,
            None => ConfigFile::default(),
        };
        let read = file.resolve(socket.as_deref().or(Some(running.socket.as_path())));
        Ok(reloaded(&running, &read))
    }))
}

fn reloaded(running: &Config, read: &Config) -> ReloadedConfig {
    ReloadedConfig {
        template_dir: read.template_dir.clone(),
        stop_grace: read.stop_grace,
        restart_defaults: read.restart.clone(),
        log_defaults: read.log.clone(),
        prune_templates: read.prune_templates,
        needs_restart: needs_restart(running, read),
    }
}
