//! ApplyStack: make the processes match a list of definitions, as a diff, and answer the plan.
//!
//! The plan is made once the previous apply (or reload) has finished, so that two applies never
//! interleave: each waits for [`ApplyGate`]. A dry run only answers the plan. Otherwise the plan is
//! carried out in order: pruned processes are deleted first, then each new one is started and each
//! changed one deleted and started with its new definition, in the order the definitions came (the
//! stack's dependency order). The answer comes once the state file holds the result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use actix::prelude::*;
use pm_protocol::cron::CronSchedule;
use pm_protocol::plan::{spec_changes, ApplyPlan, Change, PlanEntry};
use pm_protocol::spec::validate_name;
use pm_protocol::{PmError, ProcessSpec};

use super::applied::Apply;
use super::messages::{ApplyStack, DeleteProcess, StartProcess};
use super::Registry;

/// Lets one apply run at a time; a lock that can be held across the awaits of an actor future.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApplyGate(Arc<tokio::sync::Mutex<()>>);

/// What may be pruned: every process, or only those among some names (a reload's templates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PruneScope {
    /// Nothing is pruned.
    Nothing,
    /// Any process the definitions leave out.
    All,
    /// Only these names, when the definitions leave them out.
    Among(BTreeSet<String>),
}

impl Handler<ApplyStack> for Registry {
    type Result = ResponseActFuture<Self, Result<ApplyPlan, PmError>>;

    fn handle(&mut self, msg: ApplyStack, _ctx: &mut Context<Self>) -> Self::Result {
        let scope = if msg.prune {
            PruneScope::All
        } else {
            PruneScope::Nothing
        };
        self.apply_specs(msg.specs, scope, msg.dry_run)
    }
}

impl Registry {
    /// Waits for the gate, plans, and (unless a dry run) carries the plan out and waits for the disk.
    pub(crate) fn apply_specs(
        &mut self,
        specs: Vec<ProcessSpec>,
        prune: PruneScope,
        dry_run: bool,
    ) -> ResponseActFuture<Self, Result<ApplyPlan, PmError>> {
        let gate = self.apply_gate.0.clone();
        let locked = async move { gate.lock_owned().await };
        Box::pin(locked.into_actor(self).then(move |guard, act, ctx| {
            let plan = match act.plan(&specs, &prune, dry_run) {
                Ok(plan) => plan,
                Err(e) => return Box::pin(fut::ready(Err(e))) as ResponseActFuture<_, _>,
            };
            if dry_run || !plan.changes_anything() {
                return Box::pin(fut::ready(Ok(plan)));
            }
            let specs: BTreeMap<String, ProcessSpec> =
                specs.into_iter().map(|s| (s.name.clone(), s)).collect();
            let done = act.carry_out(plan, Arc::new(specs), 0, ctx);
            Box::pin(done.then(move |plan, act, _| {
                act.durable().into_actor(act).map(move |(), _, _| {
                    drop(guard);
                    Ok(plan)
                })
            }))
        }))
    }

    /// The plan: pruned processes first, then each definition in the order given. Checks every
    /// definition first, so that a bad one changes nothing.
    fn plan(
        &self,
        specs: &[ProcessSpec],
        prune: &PruneScope,
        dry_run: bool,
    ) -> Result<ApplyPlan, PmError> {
        if self.shutting_down {
            return Err(PmError::ShuttingDown);
        }
        let mut named = BTreeSet::new();
        for spec in specs {
            validate_name(&spec.name)?;
            if !named.insert(spec.name.as_str()) {
                return Err(PmError::Invalid(format!(
                    "'{}' is defined twice",
                    spec.name
                )));
            }
            if let Some(expr) = &spec.cron {
                CronSchedule::parse(expr)?;
            }
        }
        let mut entries: Vec<PlanEntry> = self
            .entries
            .keys()
            .filter(|name| !named.contains(name.as_str()))
            .filter(|name| match prune {
                PruneScope::Nothing => false,
                PruneScope::All => true,
                PruneScope::Among(names) => names.contains(*name),
            })
            .map(|name| PlanEntry::new(name.clone(), Change::Pruned))
            .collect();
        for spec in specs {
            let change = match self.entries.get(&spec.name) {
                None => Change::New,
                Some(entry) => {
                    let wanted = Self::unmarked(self.apply_defaults(spec.clone()));
                    let fields = spec_changes(&entry.spec, &wanted);
                    if fields.is_empty() {
                        Change::Unchanged
                    } else {
                        Change::Changed(fields)
                    }
                }
            };
            entries.push(PlanEntry::new(spec.name.clone(), change));
        }
        Ok(ApplyPlan { dry_run, entries })
    }

    /// Carries out the plan from entry `at` on, one entry after the other; a failed entry records
    /// its error and the rest go on.
    fn carry_out(
        &mut self,
        mut plan: ApplyPlan,
        specs: Arc<BTreeMap<String, ProcessSpec>>,
        at: usize,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, ApplyPlan> {
        let Some(entry) = plan.entries.get(at) else {
            return Box::pin(fut::ready(plan));
        };
        let name = entry.name.clone();
        let spec = specs.get(&name).cloned();
        let step: ResponseActFuture<Self, Result<(), PmError>> = match (&entry.change, spec) {
            (Change::Unchanged, _) => Box::pin(fut::ready(Ok(()))),
            (Change::Pruned, _) => self.delete_step(name, ctx),
            (Change::New, Some(spec)) => self.start_step(spec, ctx),
            (Change::Changed(_), Some(spec)) => {
                self.replacing.insert(name.clone());
                Box::pin(self.delete_step(name, ctx).then(move |res, act, ctx| {
                    act.replacing.remove(&spec.name);
                    let next: ResponseActFuture<Self, Result<(), PmError>> = match res {
                        Ok(()) => act.start_step(spec, ctx),
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    };
                    next
                }))
            }
            (_, None) => Box::pin(fut::ready(Err(PmError::Internal(format!(
                "apply: no definition for '{name}'"
            ))))),
        };
        Box::pin(step.then(move |res, act, ctx| {
            if let (Err(e), Some(entry)) = (res, plan.entries.get_mut(at)) {
                entry.error = Some(e.to_string());
            }
            act.carry_out(plan, specs, at + 1, ctx)
        }))
    }

    fn delete_step(
        &mut self,
        name: String,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), PmError>> {
        Apply::<DeleteProcess>::apply(self, DeleteProcess { name }, ctx)
    }

    fn start_step(
        &mut self,
        spec: ProcessSpec,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<(), PmError>> {
        let start = StartProcess {
            spec,
            template: None,
        };
        Box::pin(Apply::<StartProcess>::apply(self, start, ctx).map(|res, _, _| res.map(|_| ())))
    }
}
