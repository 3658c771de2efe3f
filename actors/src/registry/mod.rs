//! The registry: names to process actors, restart policies, cron schedules, templates, shutdown.
//!
//! One [`Registry`] actor owns every [`ProcessActor`] by name and talks to each through its
//! [`ProcessHandle`]; what it intends for each process (to run, to restart after a backoff, held by a
//! user, given up) is that entry's lifecycle, in `lifecycle.rs`. It is the in-process Rust API: start
//! it in any actix system and send it the messages of [`messages`].
//!
//! ```
//! use pm_actors::registry::{GetStatus, Registry, RegistryConfig, StartProcess, StopProcess};
//! use pm_protocol::{ProcessSpec, Status};
//!
//! actix::System::new().block_on(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
//!     let spec = ProcessSpec::shell("nap", "sleep 30");
//!     let info = registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
//!     assert_eq!(info.status, Status::Running);
//!     let info = registry.send(StopProcess { name: "nap".into() }).await.unwrap().unwrap();
//!     assert_eq!(info.status, Status::Stopped);
//!     let status = registry.send(GetStatus { name: "nap".into() }).await.unwrap().unwrap();
//!     assert_eq!(status.pid, info.pid);
//! });
//! ```
//!
//! How an exit becomes a restart: every process actor sends its events into one unbounded channel the
//! registry reads as a stream; a self-exit (`completed` or `failed`) is decided at once by [`backoff`],
//! and the first restart is a `Start` sent in the same turn. Nothing polls on that path.

mod applied;
mod apply;
pub mod atomic_file;
mod attach;
pub mod backoff;
mod dependencies;
mod events;
mod lifecycle;
mod logs;
pub mod messages;
mod readiness;
mod ready;
mod reload;
mod restart;
mod schedule;
mod shutdown;
mod signal;
mod start;
mod state;
mod status;
mod stop;
mod stop_all;
mod subscribe;
pub mod template_store;
mod templates;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use pm_protocol::cron::CronSchedule;
use pm_protocol::spec::validate_name;
use pm_protocol::state::SavedRun;
use pm_protocol::status::time_text;
use pm_protocol::{LogSettings, PmError, ProcessEvent, ProcessInfo, ProcessSpec, RestartSettings};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::process::record::RecordReader;
use crate::process::{EventSink, ProcessActor, ProcessHandle, ProcessOptions};
use lifecycle::{Lifecycle, Timer};

pub use applied::{Applied, Durable};
pub use backoff::{Backoff, Decision};
pub use messages::*;
pub use ready::IsReady;
pub use reload::{ConfigReloader, ReloadedConfig};
pub use schedule::CronClock;
pub use state::{detached_children, StateWrites, ENV_NAME, ENV_STATE};

/// How a [`Registry`] runs: its folders and the defaults for processes that set none.
///
/// ```
/// use pm_actors::registry::RegistryConfig;
/// let config = RegistryConfig::in_dir("/tmp/pm-example.d");
/// assert!(config.paths.template_dir.ends_with("templates"));
/// assert_eq!(config.stop_grace.as_secs(), 10);
/// ```
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The log folder, the template folder and the state file.
    pub paths: RegistryPaths,
    /// The status tick of every process actor.
    pub status_interval: Duration,
    /// The grace of specs that keep the built-in default (10 s).
    pub stop_grace: Duration,
    /// The backoff timings of specs that keep the built-in defaults (policy and count stay per spec).
    pub restart_defaults: RestartSettings,
    /// The rotation and ring sizes of specs that keep the built-in defaults.
    pub log_defaults: LogSettings,
    /// Read the template folder when the registry starts, and start those with `run_on_startup`.
    pub load_templates: bool,
    /// Keep the state file (`paths.state_file`): read it when the registry starts, write every change.
    pub persist_state: bool,
    /// The wall clock cron schedules follow (the system's; tests move a shifted one).
    pub cron_clock: CronClock,
    /// The longest a cron timer sleeps before it looks at the wall clock again (30 s).
    pub cron_recheck: Duration,
    /// Reads pm.conf again on a reload (`ReloadDaemon`); `None` re-reads only the templates.
    pub reloader: Option<ConfigReloader>,
    /// Every captured line also goes here, prefixed with its process's name (`--log-stdout`).
    pub echo: Option<crate::process::echo::LineEcho>,
}

impl RegistryConfig {
    /// Built-in defaults with the given folders.
    ///
    /// ```
    /// use pm_actors::registry::{RegistryConfig, RegistryPaths};
    /// let config = RegistryConfig::new(RegistryPaths {
    ///     log_dir: "/tmp/pm/logs".into(),
    ///     template_dir: "/tmp/pm/templates".into(),
    ///     state_file: "/tmp/pm/state.json".into(),
    /// });
    /// assert_eq!(config.restart_defaults.backoff_max_ms, 30_000);
    /// ```
    pub fn new(paths: RegistryPaths) -> Self {
        RegistryConfig {
            paths,
            status_interval: Duration::from_secs(1),
            stop_grace: Duration::from_millis(ProcessSpec::shell("-", "").grace_ms),
            restart_defaults: RestartSettings::default(),
            log_defaults: LogSettings::default(),
            load_templates: true,
            persist_state: true,
            cron_clock: CronClock::default(),
            cron_recheck: Duration::from_secs(30),
            reloader: None,
            echo: None,
        }
    }

    /// Built-in defaults with everything under `dir`: `logs/`, `templates/`, `state.json`.
    ///
    /// ```
    /// use pm_actors::registry::RegistryConfig;
    /// let config = RegistryConfig::in_dir("/tmp/pm");
    /// assert_eq!(config.paths.state_file, std::path::Path::new("/tmp/pm/state.json"));
    /// ```
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        RegistryConfig::new(RegistryPaths {
            log_dir: dir.join("logs"),
            template_dir: dir.join("templates"),
            state_file: dir.join("state.json"),
        })
    }
}

/// One named process as the registry knows it.
pub(crate) struct Entry {
    /// Distinguishes this definition from an earlier one of the same name.
    id: u64,
    spec: Arc<ProcessSpec>,
    /// Every message to the process actor goes through its handle.
    process: ProcessHandle,
    /// The actor's status record, read in place by a list.
    record: RecordReader,
    attached: bool,
    backoff: Backoff,
    /// When the current run started (for the backoff reset).
    started_at: Option<Instant>,
    /// What the registry intends for the process (see [`lifecycle`]).
    lifecycle: Lifecycle,
    cron: Option<CronSchedule>,
    /// The next fire of the schedule, while one is armed.
    next_fire: Option<Timer>,
    skipped_runs: u64,
    /// The live run as the state file records it (pid and kernel start time).
    run: Option<SavedRun>,
    /// The milestones its runs reached, which its dependents wait for (see [`dependencies`]).
    reached: dependencies::Reached,
}

impl Entry {
    /// The actor's status record with what only the registry knows: restarts, backoff, schedule.
    fn compose(&self, mut info: ProcessInfo) -> ProcessInfo {
        self.compose_in_place(&mut info);
        info
    }

    /// The status record now, read in place from the actor's cell and composed.
    fn status_now(&self) -> ProcessInfo {
        let mut info = self.record.now();
        self.compose_in_place(&mut info);
        info
    }

    /// [`status_now`](Self::status_now) into `out`, reusing what it holds.
    fn status_into(&self, out: &mut ProcessInfo) {
        self.record.copy_into(out);
        self.compose_in_place(out);
    }

    /// [`compose`](Self::compose) on a record where it lies.
    fn compose_in_place(&self, info: &mut ProcessInfo) {
        info.restarts = self.backoff.restarts;
        info.skipped_runs = self.skipped_runs;
        info.next_run = self.next_fire.map(|t| time_text(&t.at));
        info.next_restart = self.lifecycle.restart_pending().map(|t| time_text(&t.at));
        info.attached |= self.attached;
        info.detached |= self.spec.detach;
        if let Some(cron) = &self.spec.cron {
            info.cron.clone_from(cron);
        }
        self.overlay_status(info);
    }
}

/// The registry actor. See the [module documentation](self).
///
/// Its process actors run on the arbiter the registry was started on, and the processes that are not
/// detached die with that arbiter's thread (`PR_SET_PDEATHSIG` is tied to the thread that cloned
/// them, not to the program): start the registry on an arbiter that lives as long as its processes
/// should, never on a short-lived one.
pub struct Registry {
    config: RegistryConfig,
    entries: BTreeMap<String, Entry>,
    next_id: u64,
    /// What every process actor is given (see [`Registry::process_options`]).
    shared_options: Option<Arc<ProcessOptions>>,
    /// Every process actor sends its events here; the registry reads them as a stream.
    events_tx: mpsc::UnboundedSender<ProcessEvent>,
    events_rx: Option<mpsc::UnboundedReceiver<ProcessEvent>>,
    /// Subscribers to every process, present and future.
    global_sinks: Vec<EventSink>,
    shutting_down: bool,
    state: state::StateBook,
    /// One apply (or reload) at a time.
    apply_gate: apply::ApplyGate,
    /// The templates read at startup or by the last reload (what a reload may prune).
    template_names: std::collections::BTreeSet<String>,
    /// Whether the state is loaded and the startup templates started (for [`IsReady`]).
    startup: ready::Startup,
    /// Names an apply deletes to define again with a changed definition: what waits for them
    /// keeps waiting (their delete is not a failure for good).
    replacing: std::collections::BTreeSet<String>,
    /// Who names whom in `after:`: a dependency's name to the processes that wait on it (see
    /// [`Registry::insert_entry`]). Kept so that a milestone or a stop of thousands of processes
    /// finds the dependents of each without a walk of every entry.
    dependents: std::collections::HashMap<String, std::collections::BTreeSet<String>>,
}

impl Registry {
    /// A registry that has not started yet; `.start()` it in an actix system.
    ///
    /// ```
    /// use pm_actors::registry::{ListProcesses, Registry, RegistryConfig};
    /// actix::System::new().block_on(async {
    ///     let dir = tempfile::tempdir().unwrap();
    ///     let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    ///     assert!(registry.send(ListProcesses).await.unwrap().unwrap().is_empty());
    /// });
    /// ```
    pub fn new(config: RegistryConfig) -> Self {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Registry {
            config,
            entries: BTreeMap::new(),
            next_id: 0,
            shared_options: None,
            events_tx,
            events_rx: Some(events_rx),
            global_sinks: Vec::new(),
            shutting_down: false,
            state: state::StateBook::default(),
            apply_gate: apply::ApplyGate::default(),
            template_names: std::collections::BTreeSet::new(),
            startup: ready::Startup::default(),
            replacing: std::collections::BTreeSet::new(),
            dependents: std::collections::HashMap::new(),
        }
    }

    /// Starts the actor in the current arbiter and answers its address.
    ///
    /// ```
    /// use pm_actors::registry::{Registry, RegistryConfig, Shutdown};
    /// actix::System::new().block_on(async {
    ///     let dir = tempfile::tempdir().unwrap();
    ///     let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    ///     registry.send(Shutdown).await.unwrap().unwrap();
    /// });
    /// ```
    pub fn start(self) -> Addr<Registry> {
        Actor::start(self)
    }

    /// The options every process actor of this registry shares, made at the first call.
    fn process_options(&mut self) -> Arc<ProcessOptions> {
        let made = self
            .shared_options
            .get_or_insert_with(|| Arc::new(Self::options_of(&self.config)));
        Arc::clone(made)
    }

    fn options_of(config: &RegistryConfig) -> ProcessOptions {
        let mut opts =
            ProcessOptions::new(config.paths.log_dir.clone()).with_tick(config.status_interval);
        // The notify sockets live in the daemon's run folder, beside its state file.
        opts.notify_dir = config
            .paths
            .state_file
            .parent()
            .map(|dir| dir.join("notify"));
        opts.strays = crate::process::strays::StrayScanner::shared(&config.paths.state_file);
        opts.echo = config.echo.clone();
        opts.marker = Some(config.paths.state_file.clone());
        opts
    }

    /// The spec with the configured defaults where it kept the built-in ones.
    fn apply_defaults(&self, mut spec: ProcessSpec) -> ProcessSpec {
        let builtin = ProcessSpec::shell("-", "");
        let grace = self.config.stop_grace.as_millis() as u64;
        default_to(&mut spec.grace_ms, builtin.grace_ms, grace);
        let (r, d) = (&mut spec.restart, RestartSettings::default());
        let cfg = &self.config.restart_defaults;
        default_to(
            &mut r.backoff_initial_ms,
            d.backoff_initial_ms,
            cfg.backoff_initial_ms,
        );
        default_to(&mut r.backoff_max_ms, d.backoff_max_ms, cfg.backoff_max_ms);
        default_to(&mut r.reset_after_ms, d.reset_after_ms, cfg.reset_after_ms);
        let (l, d) = (&mut spec.log, LogSettings::default());
        let cfg = &self.config.log_defaults;
        default_to(&mut l.max_bytes, d.max_bytes, cfg.max_bytes);
        default_to(&mut l.keep_files, d.keep_files, cfg.keep_files);
        default_to(&mut l.ring_lines, d.ring_lines, cfg.ring_lines);
        spec
    }

    /// The entry of a name, or the error a request about it answers.
    fn entry(&self, name: &str) -> Result<&Entry, PmError> {
        validate_name(name)?;
        self.entries
            .get(name)
            .ok_or_else(|| PmError::NotFound(name.to_string()))
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut Entry, PmError> {
        validate_name(name)?;
        self.entries
            .get_mut(name)
            .ok_or_else(|| PmError::NotFound(name.to_string()))
    }

    /// Checks that a new process may take `name`.
    fn check_new_name(&self, name: &str) -> Result<(), PmError> {
        validate_name(name)?;
        if self.shutting_down {
            return Err(PmError::ShuttingDown);
        }
        if self.entries.contains_key(name) {
            return Err(PmError::already_exists(name));
        }
        Ok(())
    }

    /// Starts a new process actor and wires it: the registry's own event stream and every global
    /// subscriber.
    fn register(
        &mut self,
        name: String,
        spec: impl Into<Arc<ProcessSpec>>,
        actor: ProcessActor,
        attached: bool,
    ) {
        let spec = spec.into();
        // Read by a list in place; the actor runs on this arbiter (see `super::process::record`).
        let record = actor.record_reader();
        let addr = actor.start();
        let cron = spec
            .cron
            .as_deref()
            .and_then(|c| CronSchedule::parse(c).ok());
        let process = ProcessHandle::new(addr, name.clone());
        process.add_subscriber(EventSink::Unbounded(self.events_tx.clone()));
        self.global_sinks.retain(subscribe::sink_open);
        for sink in &self.global_sinks {
            process.add_subscriber(sink.clone());
        }
        self.next_id += 1;
        let entry = Entry {
            id: self.next_id,
            spec,
            process,
            record,
            attached,
            backoff: Backoff::default(),
            started_at: None,
            lifecycle: Lifecycle::Defined,
            cron,
            next_fire: None,
            skipped_runs: 0,
            run: None,
            reached: dependencies::Reached::default(),
        };
        self.insert_entry(name, entry);
    }

    /// Defines a process (not yet started): checks the name and the cron expression.
    fn define(&mut self, spec: ProcessSpec) -> Result<(), PmError> {
        self.check_new_name(&spec.name)?;
        if let Some(expr) = &spec.cron {
            CronSchedule::parse(expr)?;
        }
        self.check_cycle(&spec)?;
        let spec = Arc::new(Self::unmarked(self.apply_defaults(spec)));
        let actor = ProcessActor::new(Arc::clone(&spec), self.process_options());
        self.register(spec.name.clone(), spec, actor, false);
        Ok(())
    }

    /// Starts a defined process now, or arms its schedule if it has one; answers its status (not
    /// waiting for the state file, except for a detached child, whose definition is written first).
    fn launch(
        &mut self,
        name: String,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let (scheduled, detached) = match self.entries.get_mut(&name) {
            Some(e) => {
                e.on_start();
                (e.cron.is_some(), e.spec.detach)
            }
            None => (false, false),
        };
        self.state_changed(ctx);
        if scheduled {
            self.arm_cron(&name, ctx);
            return self.info_of(name);
        }
        // Answered at once: it starts from its dependencies' events when they hold.
        if self.wait_for_dependencies(&name, ctx) {
            return self.info_of(name);
        }
        // A detached child outlives a crash of the daemon: its definition is on disk before the child
        // exists, so that a restarted daemon always knows (and adopts) it.
        let defined: ResponseActFuture<Self, ()> = if detached {
            Box::pin(self.durable().into_actor(self))
        } else {
            Box::pin(fut::ready(()))
        };
        Box::pin(defined.then(move |(), act, _| act.start_run(name)))
    }

    /// Sends `Start` to the process and keeps the books: the start time, and on a spawn failure the
    /// restart decision (a spawn failure counts as a failed run). Answers the composed status record.
    fn start_run(&mut self, name: String) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let Some(entry) = self.entries.get_mut(&name) else {
            return Box::pin(fut::ready(Err(PmError::NotFound(name))));
        };
        // A user's stop (or the shutdown) that came after this start was asked for, and before it
        // got here (a restore's start, a detached child's definition on its way to disk), wins:
        // the start is dropped, as it would be had it come after the stop.
        if entry.lifecycle.is_held() {
            return self.info_of(name);
        }
        let id = entry.id;
        entry.on_start();
        let req = entry.process.start_info();
        self.start_sent();
        Box::pin(req.into_actor(self).map(move |res, act, ctx| {
            if let (Ok(info), Some(entry)) = (&res, act.entries.get_mut(&name)) {
                entry.started_at = Some(Instant::now());
                // Recorded with the answer, so that the write that answers the start holds its run.
                act.track_run(&name, info.pid, true, ctx);
                // And its milestone, so that a dependent started next finds it (its event may
                // come after that start).
                if info.status.is_alive() {
                    act.run_started(&name, info.pid, ctx);
                }
            }
            act.start_answered(ctx);
            if let Err(PmError::Spawn { cause, .. }) = &res {
                let last = format!("cannot spawn: {cause}");
                act.after_run(&name, id, false, &last, ctx);
            }
            res.map(|info| act.composed(&name, info))
        }))
    }

    /// Starts a run in the background (automatic restarts and cron fires).
    fn spawn_start(&mut self, name: String, ctx: &mut Context<Self>) {
        ctx.spawn(self.start_run(name).map(|_, _, _| ()));
    }

    /// The composed status record of a process, asked of its actor.
    fn info_of(&self, name: String) -> ResponseActFuture<Self, Result<ProcessInfo, PmError>> {
        let info = match self.entry(&name) {
            Ok(e) => e.process.info(),
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        Box::pin(
            info.into_actor(self)
                .map(move |res, act, _| Ok(act.composed(&name, res?))),
        )
    }

    /// A process actor's record with the registry's part (schedule, restarts, lifecycle) laid over it.
    fn composed(&self, name: &str, info: ProcessInfo) -> ProcessInfo {
        match self.entries.get(name) {
            Some(entry) => entry.compose(info),
            None => info,
        }
    }
}

impl Actor for Registry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Events are never dropped on the way in: the channel is unbounded.
        if let Some(rx) = self.events_rx.take() {
            ctx.add_stream(events::EventStream(rx));
        }
        if self.config.persist_state {
            // Also loads the templates, once the state's processes are known.
            self.restore_at_startup(ctx);
        } else if self.config.load_templates {
            self.load_templates_at_startup(ctx);
        } else {
            self.startup.done = true;
        }
    }
}

/// Replaces a value a spec left at the built-in default with the daemon's configured default (`pm.conf`).
fn default_to<T: PartialEq>(value: &mut T, builtin: T, configured: T) {
    if *value == builtin {
        *value = configured;
    }
}
