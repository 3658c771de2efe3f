//! GetTemplate, GetAllTemplates, and the templates started when the registry starts.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessSpec};

use super::messages::{GetAllTemplates, GetTemplate};
use super::{template_store, Registry};

impl Handler<GetTemplate> for Registry {
    type Result = ResponseFuture<Result<ProcessSpec, PmError>>;

    fn handle(&mut self, msg: GetTemplate, _ctx: &mut Context<Self>) -> Self::Result {
        let dir = self.config.paths.template_dir.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || template_store::read_one(&dir, &msg.name))
                .await
                .map_err(|e| PmError::Internal(e.to_string()))?
                .and_then(|t| t.to_spec())
        })
    }
}

impl Handler<GetAllTemplates> for Registry {
    type Result = ResponseFuture<Result<Vec<ProcessSpec>, PmError>>;

    fn handle(&mut self, _msg: GetAllTemplates, _ctx: &mut Context<Self>) -> Self::Result {
        let dir = self.config.paths.template_dir.clone();
        Box::pin(async move {
            let (good, bad) = tokio::task::spawn_blocking(move || template_store::read_all(&dir))
                .await
                .map_err(|e| PmError::Internal(e.to_string()))?;
            report(&bad);
            good.iter().map(|t| t.to_spec()).collect()
        })
    }
}

fn report(bad: &[template_store::BadTemplate]) {
    for b in bad {
        tracing::warn!(path = %b.path.display(), reason = %b.reason, "skipping bad template");
    }
}

impl Registry {
    /// Reads the template folder and starts the templates with `run_on_startup`.
    pub(crate) fn load_templates_at_startup(&mut self, ctx: &mut Context<Self>) {
        let dir = self.config.paths.template_dir.clone();
        let read = tokio::task::spawn_blocking(move || template_store::read_all(&dir));
        ctx.spawn(read.into_actor(self).map(|res, act, ctx| {
            let (good, bad) = match res {
                Ok(found) => found,
                Err(e) => {
                    act.startup.done = true;
                    return tracing::error!("reading templates: {e}");
                }
            };
            report(&bad);
            let read = good.len();
            act.template_names = good.iter().map(|t| t.name.clone()).collect();
            // A process the state file brought back is already defined: its state wins.
            let wanted: Vec<_> = good
                .into_iter()
                .filter(|t| t.p_options.run_on_startup && !act.entries.contains_key(&t.name))
                .collect();
            let names: Vec<&str> = wanted.iter().map(|t| t.name.as_str()).collect();
            tracing::info!(
                "templates: {read} read from {}, {} skipped, {} to start on startup{}{}",
                act.config.paths.template_dir.display(),
                bad.len(),
                names.len(),
                if names.is_empty() { "" } else { ": " },
                names.join(", ")
            );
            // Counted before any start is answered; the last answer ends the startup.
            act.startup.pending_starts = wanted.len() + 1;
            for t in wanted {
                let started = t.to_spec().and_then(|spec| act.define(spec));
                match started {
                    Ok(()) => {
                        let name = t.name.clone();
                        let launch = act.launch(t.name, ctx);
                        ctx.spawn(launch.map(move |res, act, _| {
                            if let Err(e) = res {
                                tracing::warn!(process = %name, "template start failed: {e}");
                            }
                            act.startup_start_answered();
                        }));
                        continue;
                    }
                    Err(e) => tracing::warn!(process = %t.name, "template not started: {e}"),
                }
                act.startup_start_answered();
            }
            act.startup_start_answered();
        }));
    }
}
