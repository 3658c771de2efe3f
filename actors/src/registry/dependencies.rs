//! Dependencies (`after:`): the graph, the cycle check at definition, the milestones each process
//! reaches, and how a milestone starts a waiting process (or a failure fails it).
//!
//! Every process carries its [`Reached`] milestones: its current run is alive (`started`), is ready,
//! or its last run exited 0 (`completed`). They change only from the process actor's events (and
//! the answer of a start), so a waiting process is woken by the event that makes its dependency
//! hold, in the same turn: nothing polls. A start whose dependencies do not hold makes the entry
//! [`Lifecycle::Waiting`](super::lifecycle::Lifecycle) and answers at once.

use std::collections::BTreeMap;
use std::time::Instant;

use actix::prelude::*;
use pm_protocol::depend::{find_cycle, Condition, Dependency};
use pm_protocol::{EventKind, PmError, ProcessSpec, Status};

use super::{Entry, Registry};

/// The milestones of one process's runs, as its events told them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Reached {
    /// The pid of the run these are about (0: none yet).
    pid: i32,
    /// The run is alive.
    started: bool,
    /// The run is ready (its `ready:` condition holds).
    ready: bool,
    /// The last run exited 0 by itself.
    completed: bool,
    /// The last run exited 0 and no restart follows: it did start, and it was ready if
    /// `last_ready` says so, for good (until a new run).
    finished: bool,
    /// The last run was ready when it ended (a `ready:exited` job by completing).
    last_ready: bool,
    /// When the registry saw the run start (what `restart_with` compares).
    since: Option<Instant>,
    /// The start of the dependency run that last restarted this one (`restart_with`), so that
    /// each dependency restart restarts it once.
    restarted_for: Option<Instant>,
}

impl Reached {
    /// Whether the last run exited 0 (the state file keeps it).
    pub(crate) fn completed(&self) -> bool {
        self.completed
    }

    /// What the state file says of the last run: exited 0 (and so ready, with `ready:exited`).
    pub(crate) fn restore_completed(&mut self, completed: bool, spec: &ProcessSpec) {
        self.completed = completed;
        self.ready = completed && spec.probes.ready == pm_protocol::Readiness::Exited;
    }

    /// Whether `condition` holds now. A run that completed for good did start, and was ready if
    /// it was so before its end: as with systemd's `After=` on a finished oneshot, what waits for
    /// it is not held back by its having ended.
    fn holds(&self, condition: Condition) -> bool {
        match condition {
            Condition::Started => self.started || self.finished,
            Condition::Ready => self.ready || (self.finished && self.last_ready),
            Condition::Completed => self.completed,
        }
    }
}

impl Registry {
    /// Refuses a definition that closes a cycle through the processes already defined.
    pub(crate) fn check_cycle(&self, spec: &ProcessSpec) -> Result<(), PmError> {
        if spec.after.is_empty() {
            return Ok(());
        }
        let edges = |n: &str| -> Vec<String> {
            let after = if n == spec.name {
                &spec.after
            } else {
                match self.entries.get(n) {
                    Some(e) => &e.spec.after,
                    None => return Vec::new(),
                }
            };
            after.iter().map(|d| d.name.clone()).collect()
        };
        match find_cycle(&spec.name, edges) {
            Some(cycle) => Err(PmError::Invalid(format!("dependency cycle: {cycle}"))),
            None => Ok(()),
        }
    }

    /// Whether `dep` holds now (a process not defined yet holds nothing).
    fn holds(&self, dep: &Dependency) -> bool {
        self.entries
            .get(&dep.name)
            .is_some_and(|e| e.reached.holds(dep.condition))
    }

    /// The dependencies of `name` that do not hold, in the order of its `after:`, as status shows
    /// them.
    fn unmet(&self, name: &str) -> Vec<String> {
        let Some(entry) = self.entries.get(name) else {
            return Vec::new();
        };
        entry
            .spec
            .after
            .iter()
            .filter(|d| !self.holds(d))
            .map(Dependency::describe)
            .collect()
    }

    /// A start of `name` is asked: answers whether it waits (its dependencies do not all hold), in
    /// which case it is now `waiting` and its subscribers are told; or fails at once, if it would
    /// wait for the readiness of a run that ended for good without it.
    pub(crate) fn wait_for_dependencies(&mut self, name: &str, ctx: &mut Context<Self>) -> bool {
        let unmet = self.unmet(name);
        if unmet.is_empty() {
            return false;
        }
        let never = self.entries.get(name).and_then(|e| {
            e.spec
                .after
                .iter()
                .find(|d| d.condition == Condition::Ready && self.never_ready(&d.name))
                .map(|d| d.name.clone())
        });
        let Some(entry) = self.entries.get_mut(name) else {
            return true;
        };
        tracing::debug!(process = name, ?unmet, "waiting");
        entry.process.announce(EventKind::Waiting {
            waiting_for: unmet.clone(),
        });
        entry.on_wait(unmet);
        if let Some(dependency) = never {
            let why = format!("dependency '{dependency}' exited before it was ready");
            self.fail_dependent(name, &why, ctx);
        }
        true
    }

    /// A cron fire of `name` is due: answers whether it waits for its dependencies (it is then
    /// `waiting` and starts when they hold, as a start does). A fire while the last one still
    /// waits is skipped and counted, as one during a run; a fire during a run is left to the start
    /// to skip.
    pub(crate) fn cron_fire_waits(&mut self, name: &str, ctx: &mut Context<Self>) -> bool {
        let Some(entry) = self.entries.get_mut(name) else {
            return false;
        };
        if entry.reached.started {
            return false;
        }
        if entry.lifecycle.waiting_for().is_some() {
            entry.skipped_runs += 1;
            tracing::info!(
                process = name,
                skipped = entry.skipped_runs,
                "cron fire skipped: still waiting"
            );
            return true;
        }
        self.wait_for_dependencies(name, ctx)
    }

    /// Whether `name` ended for good without being ready (a cron job may yet be, at its next fire).
    fn never_ready(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|e| {
            let r = &e.reached;
            r.finished && !r.last_ready && !r.ready && e.cron.is_none()
        })
    }

    /// Run `pid` of `name` is alive (its `running` event, or the answer of its start).
    pub(crate) fn run_started(&mut self, name: &str, pid: i32, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if pid <= 0 || entry.reached.pid == pid {
            return;
        }
        let r = &mut entry.reached;
        r.pid = pid;
        r.started = true;
        // Without a `ready:` option a run is ready when it runs (and sends no `ready` event).
        r.ready = !entry.spec.probes.ready.is_explicit();
        r.completed = false;
        r.finished = false;
        r.since = Some(Instant::now());
        self.milestone(name, ctx);
    }

    /// Run `pid` of `name` became ready.
    pub(crate) fn run_ready(&mut self, name: &str, pid: i32, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if entry.reached.pid != pid && entry.spec.probes.ready != pm_protocol::Readiness::Exited {
            return;
        }
        entry.reached.ready = true;
        self.milestone(name, ctx);
    }

    /// A run of `name` ended in `status`.
    pub(crate) fn run_ended(&mut self, name: &str, status: Status, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        let r = &mut entry.reached;
        let completed = status == Status::Completed;
        // `ready:exited` is ready once the run has exited 0: it stays so.
        let exited_ready = completed && entry.spec.probes.ready == pm_protocol::Readiness::Exited;
        let changed = r.started || r.completed != completed;
        r.started = false;
        r.last_ready = r.ready || exited_ready;
        r.ready = r.ready && exited_ready;
        r.completed = completed;
        if changed {
            self.milestone(name, ctx);
        }
    }

    /// The run of `name` that exited 0 is its last (no restart follows): what waits for it to
    /// start or be ready now starts if that run was so; what waits for it to be ready when that run
    /// never was fails, rather than wait for a run that is not coming. A cron job's next fire may
    /// yet be ready, so what waits for one keeps waiting.
    pub(crate) fn run_finished(&mut self, name: &str, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(name) else {
            return;
        };
        if !entry.reached.completed {
            return;
        }
        entry.reached.finished = true;
        self.milestone(name, ctx);
        if self.never_ready(name) {
            let why = format!("dependency '{name}' exited before it was ready");
            self.fail_waiting(name, &why, ctx);
        }
    }

    /// A process adopted after a daemon restart runs, and ran before: it counts as started and ready.
    pub(crate) fn run_adopted(&mut self, name: &str, pid: i32, ctx: &mut Context<Self>) {
        if let Some(entry) = self.entries.get_mut(name) {
            let r = &mut entry.reached;
            (r.pid, r.started, r.ready, r.since) = (pid, true, true, Some(Instant::now()));
            self.milestone(name, ctx);
        }
    }

    /// `name` reached a milestone: every process waiting for it that now may start starts, in the
    /// order of definition; those still waiting show what is left; a running one with
    /// `restart_with` is restarted after a new run of it.
    fn milestone(&mut self, name: &str, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let mut dependents: Vec<(u64, String)> = self
            .dependents_of(name)
            .filter_map(|n| self.entries.get(n).map(|e| (e.id, n.to_string())))
            .collect();
        dependents.sort();
        let mut changed = false;
        for (_, dependent) in dependents {
            let Some(entry) = self.entries.get(&dependent) else {
                continue;
            };
            if let Some(before) = entry.lifecycle.waiting_for() {
                let unmet = self.unmet(&dependent);
                if unmet.is_empty() {
                    tracing::debug!(process = %dependent, "dependencies hold: starting");
                    changed = true;
                    self.spawn_start(dependent, ctx);
                } else if unmet != before {
                    self.wait_for_dependencies(&dependent, ctx);
                }
            } else if entry.spec.restart_with {
                self.restart_with(name, &dependent, ctx);
            }
        }
        if changed {
            self.state_changed(ctx);
        }
    }

    /// Restarts `dependent` if it runs, its dependency `name` holds again, and that holding run of
    /// `name` began after `dependent`'s own run.
    fn restart_with(&mut self, name: &str, dependent: &str, ctx: &mut Context<Self>) {
        let Some(dep) = self.entries.get(name) else {
            return;
        };
        let Some(condition) = self
            .entries
            .get(dependent)
            .and_then(|e| e.spec.after.iter().find(|d| d.name == name))
            .map(|d| d.condition)
        else {
            return;
        };
        let (holds, dep_since) = (dep.reached.holds(condition), dep.reached.since);
        let Some(entry) = self.entries.get_mut(dependent) else {
            return;
        };
        let r = &mut entry.reached;
        let newer = matches!((dep_since, r.since), (Some(d), Some(own)) if d > own);
        if !(holds && r.started && newer) || r.restarted_for >= dep_since {
            return;
        }
        r.restarted_for = dep_since;
        tracing::info!(
            process = dependent,
            dependency = name,
            "restarting with its dependency"
        );
        let (process, owned) = (entry.process.clone(), dependent.to_string());
        ctx.spawn(
            process
                .restart_info()
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if let Ok(info) = res {
                        if let Some(entry) = act.entries.get_mut(&owned) {
                            entry.started_at = Some(Instant::now());
                        }
                        act.run_started(&owned, info.pid, ctx);
                    }
                }),
        );
    }

    /// `name` failed for good (its policy gave up, it failed with no restart left, or it was
    /// deleted, `why`): every start waiting for it fails, and so on down the graph.
    pub(crate) fn dependency_failed(&mut self, name: &str, why: &str, ctx: &mut Context<Self>) {
        self.fail_waiting(name, &format!("dependency '{name}' failed: {why}"), ctx);
    }

    /// Fails with `why` every start waiting for `name` that cannot hold now (those whose
    /// dependencies already hold have started), and so on down the graph.
    fn fail_waiting(&mut self, name: &str, why: &str, ctx: &mut Context<Self>) {
        let waiting: Vec<String> = self
            .dependents_of(name)
            .filter(|n| {
                self.entries.get(*n).is_some_and(|e| {
                    e.lifecycle.waiting_for().is_some()
                        && e.spec
                            .after
                            .iter()
                            .any(|d| d.name == name && !self.holds(d))
                })
            })
            .map(str::to_string)
            .collect();
        for dependent in waiting {
            self.fail_dependent(&dependent, why, ctx);
        }
    }

    /// Fails the waiting start of `dependent` with `why`, and what waits for it in turn.
    fn fail_dependent(&mut self, dependent: &str, why: &str, ctx: &mut Context<Self>) {
        let Some(entry) = self.entries.get_mut(dependent) else {
            return;
        };
        tracing::warn!(process = %dependent, "{why}");
        entry.on_dependency_failed(why.to_string());
        entry.process.announce(EventKind::Status {
            old: Status::Waiting,
            new: Status::Failed,
        });
        self.state_changed(ctx);
        self.dependency_failed(dependent, why, ctx);
    }

    /// `names` in the order a stop of them all goes: dependents before what they depend on, level
    /// by level (each level may stop in parallel). Levels follow the whole graph, so a process that
    /// is not stopped (a completed migration) still orders those on either side of it.
    pub(crate) fn stop_levels(&self, names: Vec<String>) -> Vec<Vec<String>> {
        // A process's level is one more than the highest level of the processes that depend on it;
        // the graph has no cycle, so this ends, and each level is computed once.
        fn level(reg: &Registry, name: &str, memo: &mut BTreeMap<String, usize>) -> usize {
            if let Some(l) = memo.get(name) {
                return *l;
            }
            let dependents: Vec<&str> = reg
                .dependents_of(name)
                .filter(|n| reg.entries.contains_key(*n))
                .collect();
            let l = dependents
                .into_iter()
                .map(|d| level(reg, d, memo) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(name.to_string(), l);
            l
        }
        let mut memo = BTreeMap::new();
        let mut levels: Vec<Vec<String>> = Vec::new();
        for name in names {
            let at = level(self, &name, &mut memo);
            if levels.len() <= at {
                levels.resize_with(at + 1, Vec::new);
            }
            levels[at].push(name);
        }
        levels.retain(|l| !l.is_empty());
        levels
    }

    /// Stops `names` level by level ([`Registry::stop_levels`]): the stops of a level are all
    /// queued at once, and the next level begins when they are all over. The future answers each
    /// stop's outcome.
    pub(crate) fn stop_by_level(
        &self,
        names: Vec<String>,
    ) -> impl std::future::Future<Output = Vec<(String, Result<(), PmError>)>> + 'static {
        let levels: Vec<Vec<(String, crate::process::ProcessHandle)>> = self
            .stop_levels(names)
            .into_iter()
            .map(|level| {
                level
                    .into_iter()
                    .filter_map(|n| self.entries.get(&n).map(|e| (n, e.process.clone())))
                    .collect()
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for level in levels {
                let stops: Vec<_> = level
                    .into_iter()
                    .map(|(name, p)| (name, p.stop_and_wait(None)))
                    .collect();
                // Every stop of the level is queued: awaiting them in turn waits for the slowest.
                for (name, stop) in stops {
                    out.push((name, super::stop::stopped(stop.await)));
                }
            }
            out
        }
    }
}

impl Registry {
    /// Defines `entry` under `name` (replacing one of that name), and indexes whom it waits on.
    pub(crate) fn insert_entry(&mut self, name: String, entry: Entry) {
        let after: Vec<String> = entry.spec.after.iter().map(|d| d.name.clone()).collect();
        if let Some(old) = self.entries.insert(name.clone(), entry) {
            self.unlink_dependencies(&name, &old);
        }
        for dependency in after {
            self.dependents
                .entry(dependency)
                .or_default()
                .insert(name.clone());
        }
    }

    /// Forgets the definition of `name` and its place in the index of dependents.
    pub(crate) fn remove_entry(&mut self, name: &str) -> Option<Entry> {
        let old = self.entries.remove(name)?;
        self.unlink_dependencies(name, &old);
        Some(old)
    }

    fn unlink_dependencies(&mut self, name: &str, old: &Entry) {
        for d in &old.spec.after {
            if let Some(set) = self.dependents.get_mut(&d.name) {
                set.remove(name);
                if set.is_empty() {
                    self.dependents.remove(&d.name);
                }
            }
        }
    }

    /// The names of the processes whose `after:` names `name`, in name order.
    pub(crate) fn dependents_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.dependents
            .get(name)
            .into_iter()
            .flat_map(|set| set.iter().map(String::as_str))
    }
}
