//! The messages the `Registry` answers: the in-process Rust API and what the socket session sends.
//!
//! Every request answers with `Result<_, PmError>`; a request about a name answers
//! `PmError::NotFound` when the name is unknown and `PmError::InvalidName` when it is malformed.

use std::path::PathBuf;

use actix::prelude::*;
use pm_protocol::logs::LogPage;
use pm_protocol::{ExitInfo, LogLine, PmError, ProcessInfo, ProcessSpec};

use crate::process::EventSink;

/// Write a template for the new process (the Template option of the original API).
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("saved", "sleep 30");
/// let template = Some(TemplateOption { run_on_startup: true });
/// registry.send(StartProcess { spec, template }).await.unwrap().unwrap();
/// assert!(dir.path().join("templates/saved.json").exists());
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOption {
    /// Start the process from its template when the daemon starts.
    pub run_on_startup: bool,
}

/// Define a process and start it (or schedule it, when the spec has a cron expression).
/// A name already in use, in any state, is `PmError::AlreadyExists`, with the status of the process
/// that has it and whether this spec defines it otherwise.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let mut spec = ProcessSpec::shell("web", "sleep 30");
/// spec.restart.max_restarts = -1; // unlimited restarts, on failure by default
/// spec.restart.policy = RestartPolicy::OnFailure;
/// let info = registry.send(StartProcess { spec: spec.clone(), template: None }).await.unwrap().unwrap();
/// assert_eq!(info.status, Status::Running);
/// let again = registry.send(StartProcess { spec, template: None }).await.unwrap();
/// let existing = Some(pm_protocol::error::Existing { status: Status::Running, differs: false });
/// assert_eq!(again.unwrap_err(), PmError::AlreadyExists { name: "web".into(), existing });
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StartProcess {
    /// What to run.
    pub spec: ProcessSpec,
    /// Also write `<template-dir>/<name>.json` (before the start; a failed write defines nothing).
    pub template: Option<TemplateOption>,
}

/// Stop gracefully (stop signal, grace, SIGKILL); answers when the group is gone. Never restarts.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let info = registry.send(StopProcess { name: "web".into() }).await.unwrap().unwrap();
/// assert_eq!(info.status, Status::Stopped);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StopProcess {
    /// The process to stop.
    pub name: String,
}

/// Stop every live process at once, each with its own stop signal and grace, as a user's stop: none is
/// restarted, and the state file records them as not wanted. Answers when every one is gone, with the
/// names stopped. Processes that are not alive are left as they are (a schedule stays armed); one that
/// waits out a restart backoff counts as live and is held, so it does not come back. The registry keeps
/// answering other requests meanwhile.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// for name in ["web", "worker"] {
///     let spec = ProcessSpec::shell(name, "sleep 30");
///     registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// }
/// let done = ProcessSpec::shell("done", "true");
/// registry.send(StartProcess { spec: done, template: None }).await.unwrap().unwrap();
/// # let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
/// # while registry.send(GetStatus { name: "done".into() }).await.unwrap().unwrap().status != Status::Completed {
/// #     assert!(std::time::Instant::now() < deadline);
/// #     actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
/// # }
/// let all = registry.send(StopAll).await.unwrap().unwrap();
/// assert_eq!(all.stopped, ["web", "worker"]); // `done` had already ended: skipped
/// assert!(all.failed.is_empty());
/// let web = registry.send(GetStatus { name: "web".into() }).await.unwrap().unwrap();
/// assert_eq!((web.status, web.pid), (Status::Stopped, 0));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "Result<StoppedAll, PmError>")]
pub struct StopAll;

/// What a [`StopAll`] did, by name (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoppedAll {
    /// The processes stopped (each is gone, and held: no restart, no cron fire).
    pub stopped: Vec<String>,
    /// The processes whose stop failed, with the reason.
    pub failed: Vec<(String, PmError)>,
}

/// Stop (if alive) and start again; resets nothing but the pid and start time.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let info = registry.send(RestartProcess { name: "web".into() }).await.unwrap().unwrap();
/// assert_eq!(info.status, Status::Running);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct RestartProcess {
    /// The process to restart.
    pub name: String,
}

/// Stop the process (if alive), then forget it. Its log file stays.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// registry.send(DeleteProcess { name: "web".into() }).await.unwrap().unwrap();
/// let gone = registry.send(GetStatus { name: "web".into() }).await.unwrap();
/// assert_eq!(gone.unwrap_err(), PmError::NotFound("web".into()));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct DeleteProcess {
    /// The process to delete.
    pub name: String,
}

/// SIGKILL to the group, and reap. Never restarts.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let exit = registry.send(KillProcess { name: "web".into() }).await.unwrap().unwrap();
/// assert_eq!(exit.signal.as_deref(), Some("SIGKILL"));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ExitInfo, PmError>")]
pub struct KillProcess {
    /// The process to kill.
    pub name: String,
}

/// Send a signal (`HUP`, `SIGHUP` or a number) to the process, or its whole group.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let hup = SignalProcess { name: "web".into(), signal: "HUP".into(), group: true };
/// registry.send(hup).await.unwrap().unwrap();
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct SignalProcess {
    /// The process to signal.
    pub name: String,
    /// `HUP`, `SIGHUP` or a number.
    pub signal: String,
    /// To the whole process group rather than the process alone.
    pub group: bool,
}

/// The status record of one process.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let info = registry.send(GetStatus { name: "web".into() }).await.unwrap().unwrap();
/// assert!(info.pid > 0 && info.restarts == 0);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct GetStatus {
    /// The process whose status is wanted.
    pub name: String,
}

/// Every process, sorted by name.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("b", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let spec = ProcessSpec::shell("a", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let all = registry.send(ListProcesses).await.unwrap().unwrap();
/// assert_eq!(all.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<ProcessInfo>, PmError>")]
pub struct ListProcesses;

/// Every process's status record as `list format:json` writes them (the bytes of
/// [`pm_protocol::response::list_json`] of [`ListProcesses`]' answer), written straight from the
/// records: at 10,000 processes the vector of copies was most of what is left of a list's cost.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("a", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let json = registry.send(ListJson).await.unwrap().unwrap();
/// assert!(json.contains(r#""name": "a""#));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<String, PmError>")]
pub struct ListJson;

/// Adopt a process the daemon did not start.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let mut outside = std::process::Command::new("sleep").arg("30").spawn().unwrap();
/// let pid = outside.id() as i32;
/// let info = registry.send(AttachProcess { pid, name: "adopted".into() }).await.unwrap().unwrap();
/// assert_eq!(info.pid, pid);
/// registry.send(KillProcess { name: "adopted".into() }).await.unwrap().ok();
/// # let _ = outside.kill();
/// # let _ = outside.wait();
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct AttachProcess {
    /// A process the daemon did not start.
    pub pid: i32,
    /// The name the adopted process gets.
    pub name: String,
}

/// The last `lines` captured lines of a process (all kept lines when `None`).
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let mut spec = ProcessSpec::shell("hello", "echo hi; sleep 30");
/// spec.log.enabled = true;
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let lines = loop {
///     let ask = GetProcessLogs { name: "hello".into(), lines: Some(10) };
///     let lines = registry.send(ask).await.unwrap().unwrap();
///     if !lines.is_empty() { break lines; }
///     actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
/// };
/// assert_eq!(lines[0].text, "hi");
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<LogLine>, PmError>")]
pub struct GetProcessLogs {
    /// The process whose lines are wanted.
    pub name: String,
    /// How many of the newest lines; every kept line when `None`.
    pub lines: Option<usize>,
}

/// The captured lines of a process after line `after` (every kept line when `None`), the last `lines`
/// of those when given, with the number to ask after next time: how `pmclient logs -f` follows a
/// process without losing or repeating a line.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<LogPage, PmError>")]
pub struct GetProcessLogPage {
    /// The process whose lines are wanted.
    pub name: String,
    /// The `next` of an earlier page: only the lines after it.
    pub after: Option<u64>,
    /// How many of the newest lines; every line after `after` when `None`.
    pub lines: Option<usize>,
}

/// Subscribe to the events of the named processes (every process, present and future, when `None`).
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let sink = pm_actors::process::EventSink::Unbounded(tx);
/// registry.send(SubscribeEvents { names: None, sink }).await.unwrap().unwrap();
/// let spec = ProcessSpec::shell("brief", "exit 2");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let exit = loop {
///     if let Some(exit) = rx.recv().await.unwrap().exit { break exit; }
/// };
/// assert_eq!(exit.code, Some(2));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct SubscribeEvents {
    /// The processes to watch; `None` is every process, present and future.
    pub names: Option<Vec<String>>,
    /// Where the events go (an actix recipient or a channel).
    pub sink: EventSink,
}

/// Stop every process that is not detached, all in parallel; answers when they are all gone.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// registry.send(StartProcess { spec, template: None }).await.unwrap().unwrap();
/// let mut keeper = ProcessSpec::shell("keeper", "sleep 30");
/// keeper.detach = true; // keeps running after the shutdown
/// let kept = registry.send(StartProcess { spec: keeper, template: None }).await.unwrap().unwrap();
/// registry.send(Shutdown).await.unwrap().unwrap();
/// let web = registry.send(GetStatus { name: "web".into() }).await.unwrap().unwrap();
/// assert_eq!(web.status, Status::Stopped);
/// # unsafe { libc::kill(-kept.pid, libc::SIGKILL) };
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<(), PmError>")]
pub struct Shutdown;

/// The template of one process, read from the template folder.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let template = Some(TemplateOption { run_on_startup: false });
/// let spec = ProcessSpec::exec("saved", "sleep", ["30"]);
/// registry.send(StartProcess { spec: spec.clone(), template }).await.unwrap().unwrap();
/// let back = registry.send(GetTemplate { name: "saved".into() }).await.unwrap().unwrap();
/// assert_eq!(back, spec);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessSpec, PmError>")]
pub struct GetTemplate {
    /// The template's (and the process's) name.
    pub name: String,
}

/// Every template in the template folder (bad files are reported in the log and skipped).
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let template = Some(TemplateOption { run_on_startup: false });
/// let spec = ProcessSpec::exec("saved", "sleep", ["30"]);
/// registry.send(StartProcess { spec, template }).await.unwrap().unwrap();
/// let all = registry.send(GetAllTemplates).await.unwrap().unwrap();
/// assert_eq!(all.len(), 1);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<ProcessSpec>, PmError>")]
pub struct GetAllTemplates;

/// Define and start a process from its template.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// std::fs::create_dir_all(dir.path().join("templates")).unwrap();
/// std::fs::write(
///     dir.path().join("templates/nap.json"),
///     r#"{"name": "nap", "cmd": "sleep", "p_options": {"args": ["30"]}}"#,
/// ).unwrap();
/// let info = registry.send(StartFromTemplate { name: "nap".into() }).await.unwrap().unwrap();
/// assert_eq!(info.command, "sleep 30");
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StartFromTemplate {
    /// The template to start from.
    pub name: String,
}

/// Where the registry keeps its files (filled from `pm.conf` and the socket path by the daemon).
///
/// ```
/// use pm_actors::registry::{RegistryConfig, RegistryPaths};
/// let paths = RegistryPaths {
///     log_dir: "/var/log/pm".into(),
///     template_dir: "/etc/pm/templates".into(),
///     state_file: "/var/lib/pm/state.json".into(),
/// };
/// let config = RegistryConfig::new(paths);
/// assert!(config.load_templates);
/// ```
#[derive(Debug, Clone)]
pub struct RegistryPaths {
    /// `<name>.log` of each process with logging on.
    pub log_dir: PathBuf,
    /// `<name>.json` templates.
    pub template_dir: PathBuf,
    /// The state that survives a daemon restart.
    pub state_file: PathBuf,
}

/// Make the processes match `specs` as a diff (see `registry/apply.rs`): new ones start, changed
/// ones restart with their new definition, unchanged ones are not touched, and with `prune` the
/// processes not in `specs` are deleted. Every definition is checked before the first change; the
/// answer comes once the state file holds the result. Two applies never interleave.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # use pm_protocol::plan::Change;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let specs = vec![ProcessSpec::shell("web", "sleep 30")];
/// let apply = ApplyStack { specs: specs.clone(), prune: false, dry_run: false };
/// let plan = registry.send(apply.clone()).await.unwrap().unwrap();
/// assert_eq!(plan.entries[0].change, Change::New);
/// let plan = registry.send(apply).await.unwrap().unwrap();
/// assert_eq!(plan.entries[0].change, Change::Unchanged);
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<pm_protocol::plan::ApplyPlan, PmError>")]
pub struct ApplyStack {
    /// The definitions, in the order they are started (dependencies first).
    pub specs: Vec<ProcessSpec>,
    /// Delete the processes `specs` leaves out.
    pub prune: bool,
    /// Only answer the plan.
    pub dry_run: bool,
}

/// Re-read pm.conf (through [`RegistryConfig::reloader`](super::RegistryConfig)) and the template
/// folder, and apply the templates as a diff: new ones with `run_on_startup` start, changed ones
/// restart, removed ones are deleted only with `prune-templates: true`. A broken file changes nothing.
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "Result<ReloadReport, PmError>")]
pub struct ReloadDaemon;

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The pm.conf keys that changed but take effect only after a restart of the daemon.
    pub needs_restart: Vec<String>,
    /// What the templates changed.
    pub plan: pm_protocol::plan::ApplyPlan,
}
