//! The messages the `Registry` answers: the in-process Rust API and what the socket session sends.
//!
//! Every request answers with `Result<_, PmError>`; a request about a name answers
//! `PmError::NotFound` when the name is unknown and `PmError::InvalidName` when it is malformed.

use std::path::PathBuf;

use actix::prelude::*;
use pm_protocol::{ExitInfo, LogLine, PmError, ProcessInfo, ProcessSpec};

use crate::process::EventSink;

/// Write a template for the new process (the Template option of the original API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOption {
    pub run_on_startup: bool,
}

/// Define a process and start it (or schedule it, when the spec has a cron expression).
/// A name already in use, in any state, is `PmError::AlreadyExists`.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StartProcess {
    pub spec: ProcessSpec,
    pub template: Option<TemplateOption>,
}

/// Stop gracefully (stop signal, grace, SIGKILL); answers when the group is gone. Never restarts.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StopProcess {
    pub name: String,
}

/// Stop (if alive) and start again; resets nothing but the pid and start time.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct RestartProcess {
    pub name: String,
}

/// Stop the process (if alive), then forget it. Its log file stays.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct DeleteProcess {
    pub name: String,
}

/// SIGKILL to the group, and reap. Never restarts.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ExitInfo, PmError>")]
pub struct KillProcess {
    pub name: String,
}

/// Send a signal (`HUP`, `SIGHUP` or a number) to the process, or its whole group.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct SignalProcess {
    pub name: String,
    pub signal: String,
    pub group: bool,
}

/// The status record of one process.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct GetStatus {
    pub name: String,
}

/// Every process, sorted by name.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<ProcessInfo>, PmError>")]
pub struct ListProcesses;

/// Adopt a process the daemon did not start.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct AttachProcess {
    pub pid: i32,
    pub name: String,
}

/// The last `lines` captured lines of a process (all kept lines when `None`).
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<Vec<LogLine>, PmError>")]
pub struct GetLogs {
    pub name: String,
    pub lines: Option<usize>,
}

/// Subscribe to the events of the named processes (every process, present and future, when `None`).
#[derive(Message, Clone)]
#[rtype(result = "Result<(), PmError>")]
pub struct SubscribeEvents {
    pub names: Option<Vec<String>>,
    pub sink: EventSink,
}

/// Stop every process that is not detached, all in parallel; answers when they are all gone.
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<(), PmError>")]
pub struct Shutdown;

/// The template of one process, read from the template folder.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessSpec, PmError>")]
pub struct GetTemplate {
    pub name: String,
}

/// Every template in the template folder (bad files are reported in the log and skipped).
#[derive(Message, Debug, Clone, Default)]
#[rtype(result = "Result<Vec<ProcessSpec>, PmError>")]
pub struct GetAllTemplates;

/// Define and start a process from its template.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<ProcessInfo, PmError>")]
pub struct StartFromTemplate {
    pub name: String,
}

/// Where the registry keeps its files (filled from `pm.conf` and the socket path by the daemon).
#[derive(Debug, Clone)]
pub struct RegistryPaths {
    pub log_dir: PathBuf,
    pub template_dir: PathBuf,
    pub state_file: PathBuf,
}
