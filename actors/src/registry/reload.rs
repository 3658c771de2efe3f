//! ReloadDaemon: re-read the configuration and the template folder, and apply the templates as a diff.
//!
//! The registry cannot read pm.conf itself (the daemon's binary owns that format), so the daemon
//! gives it a [`ConfigReloader`] in [`RegistryConfig`](super::RegistryConfig); without one, a reload
//! re-reads only the templates. Everything is read (off the actor's thread) and checked before the
//! first change: a broken pm.conf or template file changes nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use pm_protocol::{LogSettings, PmError, RestartSettings};

use super::apply::PruneScope;
use super::messages::{ReloadDaemon, ReloadReport};
use super::{template_store, Registry};

/// The settings a reload may change while the daemon runs, as read from pm.conf again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadedConfig {
    /// The template folder.
    pub template_dir: PathBuf,
    /// The default grace.
    pub stop_grace: Duration,
    /// The default backoff timings.
    pub restart_defaults: RestartSettings,
    /// The default log rotation and ring sizes.
    pub log_defaults: LogSettings,
    /// Delete the processes whose template was removed.
    pub prune_templates: bool,
    /// The keys that changed but need a restart of the daemon (the socket, the state folder, ...).
    pub needs_restart: Vec<String>,
}

/// Reads pm.conf again; the error says which file and why.
#[derive(Clone)]
pub struct ConfigReloader(pub Arc<dyn Fn() -> Result<ReloadedConfig, String> + Send + Sync>);

impl fmt::Debug for ConfigReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigReloader")
    }
}

impl Handler<ReloadDaemon> for Registry {
    type Result = ResponseActFuture<Self, Result<ReloadReport, PmError>>;

    fn handle(&mut self, _: ReloadDaemon, _ctx: &mut Context<Self>) -> Self::Result {
        let reloader = self.config.reloader.clone();
        let current_dir = self.config.paths.template_dir.clone();
        let read = tokio::task::spawn_blocking(move || {
            let conf = reloader.map(|r| (r.0)()).transpose()?;
            let dir = conf
                .as_ref()
                .map_or(current_dir, |c| c.template_dir.clone());
            let (good, bad) = template_store::read_all(&dir);
            if let Some(b) = bad.first() {
                return Err(format!("{}: {}", b.path.display(), b.reason));
            }
            Ok((conf, good))
        });
        Box::pin(read.into_actor(self).then(|res, act, _| {
            let read = res.unwrap_or_else(|e| Err(e.to_string()));
            let (conf, templates) = match read {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!("reload: nothing changed: {e}");
                    let failed = Err(PmError::Invalid(format!("reload: {e}")));
                    return Box::pin(fut::ready(failed)) as ResponseActFuture<_, _>;
                }
            };
            let mut specs = Vec::new();
            for t in &templates {
                // A template that was not started is left alone unless it asks to run on startup.
                if !(t.p_options.run_on_startup || act.entries.contains_key(&t.name)) {
                    continue;
                }
                match t.to_spec() {
                    Ok(spec) => specs.push(spec),
                    Err(e) => return Box::pin(fut::ready(Err(e))),
                }
            }
            let needs_restart = conf
                .as_ref()
                .map(|c| c.needs_restart.clone())
                .unwrap_or_default();
            let prune = if conf.as_ref().is_some_and(|c| c.prune_templates) {
                let present: BTreeSet<String> = templates.iter().map(|t| t.name.clone()).collect();
                PruneScope::Among(act.template_names.difference(&present).cloned().collect())
            } else {
                PruneScope::Nothing
            };
            if let Some(c) = conf {
                act.config.paths.template_dir = c.template_dir;
                act.config.stop_grace = c.stop_grace;
                act.config.restart_defaults = c.restart_defaults;
                act.config.log_defaults = c.log_defaults;
            }
            // A removed template stays known, so that a later reload with prune-templates prunes it.
            act.template_names
                .extend(templates.into_iter().map(|t| t.name));
            Box::pin(act.apply_specs(specs, prune, false).map(move |plan, _, _| {
                let plan = plan?;
                for key in &needs_restart {
                    tracing::warn!("reload: '{key}' changed and needs a restart");
                }
                tracing::info!("reload: {}", plan.text().trim_end().replace('\n', "; "));
                Ok(ReloadReport {
                    needs_restart,
                    plan,
                })
            }))
        }))
    }
}
