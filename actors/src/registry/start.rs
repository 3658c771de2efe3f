//! StartProcess and StartFromTemplate: define a process, write its template if asked, start it. A
//! start of a name already taken says what has it and how to go on.

use actix::prelude::*;
use pm_protocol::error::Existing;
use pm_protocol::template::Template;
use pm_protocol::{PmError, ProcessInfo, ProcessSpec};

use super::applied::Apply;
use super::messages::{StartFromTemplate, StartProcess};
use super::{template_store, Registry};

impl Apply<StartProcess> for Registry {
    fn apply(
        &mut self,
        msg: StartProcess,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let name = msg.spec.name.clone();
        if self.entries.contains_key(&name) && !self.shutting_down {
            return self.refuse_taken_name(msg.spec);
        }
        let template = msg
            .template
            .map(|opt| Template::from_spec(&msg.spec, opt.run_on_startup));
        if let Err(e) = self.define(msg.spec) {
            return Box::pin(fut::ready(Err(e)));
        }
        let Some(template) = template else {
            return self.launch(name, ctx);
        };
        // The template is written before the start; if it cannot be, the process is not defined.
        let dir = self.config.paths.template_dir.clone();
        let write =
            tokio::task::spawn_blocking(move || template_store::write_atomic(&dir, &template));
        Box::pin(write.into_actor(self).then(move |res, act, ctx| {
            let res = res.unwrap_or_else(|e| Err(PmError::Internal(e.to_string())));
            let next: ResponseActFuture<Self, Result<ProcessInfo, PmError>> = match res {
                Ok(_) => act.launch(name, ctx),
                Err(e) => {
                    act.remove_entry(&name);
                    act.state_changed(ctx);
                    Box::pin(fut::ready(Err(e)))
                }
            };
            next
        }))
    }
}

impl Registry {
    /// Answers [`PmError::AlreadyExists`] for a start of a name that is defined, with the existing
    /// process's status and whether `spec` defines it otherwise: a user who fixes a command that
    /// failed to spawn learns that the old definition holds the name, and how to replace it.
    fn refuse_taken_name(
        &mut self,
        spec: ProcessSpec,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let name = spec.name.clone();
        let asked = Self::unmarked(self.apply_defaults(spec));
        let differs = self.entries.get(&name).is_some_and(|e| *e.spec != asked);
        Box::pin(self.info_of(name.clone()).map(move |info, _, _| {
            Err(PmError::AlreadyExists {
                name,
                existing: info.ok().map(|info| Existing {
                    status: info.status,
                    differs,
                }),
            })
        }))
    }
}

impl Handler<StartFromTemplate> for Registry {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;

    fn handle(&mut self, msg: StartFromTemplate, _ctx: &mut Context<Self>) -> Self::Result {
        let dir = self.config.paths.template_dir.clone();
        let name = msg.name;
        let read = tokio::task::spawn_blocking(move || template_store::read_one(&dir, &name));
        Registry::when_durable(Box::pin(read.into_actor(self).then(
            move |res, act, ctx| {
                let spec = res
                    .unwrap_or_else(|e| Err(PmError::Internal(e.to_string())))
                    .and_then(|t| t.to_spec());
                let next: ResponseActFuture<Self, Result<ProcessInfo, PmError>> = match spec
                    .and_then(|spec| {
                        let name = spec.name.clone();
                        act.define(spec).map(|()| name)
                    }) {
                    Ok(name) => act.launch(name, ctx),
                    Err(e) => Box::pin(fut::ready(Err(e))),
                };
                next
            },
        )))
    }
}
