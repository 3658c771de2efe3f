//! The typed error shared by the library API and the socket.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::status::Status;

/// Every way a request to the supervisor can fail. Serializable, so the same value can cross the socket.
///
/// `Display` is the sentence the socket shows after `Error <doing>: `. As JSON the variant is the
/// snake_case `error` key and its data the `detail` key:
///
/// ```
/// use pm_protocol::PmError;
/// let e = PmError::NotFound("web".into());
/// assert_eq!(e.to_string(), "process 'web' not found");
/// assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"error":"not_found","detail":"web"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum PmError {
    /// A process of this name is already defined (a `start` must use a new name, or `delete` first).
    /// The sentence begins `process with name '<name>' already exists` whatever follows (the
    /// original Go client matches on it); when the registry knows the existing process's status, it
    /// goes on with that status and how to go on ([`Existing`]).
    #[error("process with name '{name}' already exists{}", existing_hint(.existing))]
    AlreadyExists {
        /// The name asked for.
        name: String,
        /// What is known of the process that has the name.
        existing: Option<Existing>,
    },
    /// No process of this name is defined.
    #[error("process '{0}' not found")]
    NotFound(String),
    /// The name breaks the rules of [`validate_name`](crate::spec::validate_name).
    #[error("invalid process name '{0}': use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName(String),
    /// The process already has a live pid, so it cannot be started again.
    #[error("process '{0}' is already running")]
    AlreadyRunning(String),
    /// The process has no live pid, so it cannot be stopped, killed or signalled.
    #[error("process '{0}' is not running")]
    NotRunning(String),
    /// The child could not be started (program not found, not executable, bad `cwd`, ...).
    #[error("cannot spawn '{name}': {cause}")]
    Spawn {
        /// The process name.
        name: String,
        /// The operating system's reason, as text.
        cause: String,
    },
    /// A cron expression that does not parse or can never fire.
    #[error("invalid cron expression '{expr}': {reason}")]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What is wrong with it (`expected 5 or 6 fields or one of @hourly, ..., got 3 fields`, `it can never fire`, ...).
        reason: String,
    },
    /// A signal name or number that is not a known signal (the text as given); the message lists the
    /// valid names.
    #[error(
        "invalid signal '{0}': use a number from 1 to 31 or one of {names} (with or without SIG)",
        names = crate::signal::valid_signal_names()
    )]
    InvalidSignal(String),
    /// `attach` named a pid that is not a live process (or whose pid was recycled meanwhile).
    #[error("process {pid} does not exist")]
    NoSuchPid {
        /// The pid asked for.
        pid: i32,
    },
    /// The `user` or `group` of a spec does not exist on this system (the name as given).
    #[error("unknown user or group '{0}'")]
    UnknownUser(String),
    /// A template file that cannot be read, parsed or turned into a spec; the text says which and why.
    #[error("template error: {0}")]
    Template(String),
    /// A request that is well-formed but makes no sense (an empty command, ...); the text says why.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A failed system call or file operation, as the OS worded it (also what `From<std::io::Error>` gives).
    #[error("{0}")]
    Io(String),
    /// `logs` of a process whose spec does not capture its output (no `log:true`): there is nothing to show.
    #[error("process '{0}' does not capture its output: start it with log:true")]
    NoLogCapture(String),
    /// The daemon is stopping and takes no new work.
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    /// A bug or a lost actor (a mailbox closed, an answer dropped); the text says where.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The process that already has a name a `start` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Existing {
    /// Its status when the start was refused.
    pub status: Status,
    /// Whether the refused start defined it otherwise (another command, other options).
    pub differs: bool,
}

impl PmError {
    /// [`PmError::AlreadyExists`] for `name`, nothing known of the process that has it.
    pub fn already_exists(name: impl Into<String>) -> Self {
        PmError::AlreadyExists {
            name: name.into(),
            existing: None,
        }
    }
}

/// What follows `process with name 'x' already exists`: the existing process's status and how to go
/// on, in parentheses (nothing when its status is not known).
///
/// ```
/// use pm_protocol::error::Existing;
/// use pm_protocol::{PmError, Status};
/// let e = PmError::AlreadyExists {
///     name: "now".into(),
///     existing: Some(Existing { status: Status::Failed, differs: false }),
/// };
/// assert_eq!(
///     e.to_string(),
///     "process with name 'now' already exists (it is failed: delete it first, or restart it)"
/// );
/// ```
fn existing_hint(existing: &Option<Existing>) -> String {
    let Some(Existing { status, differs }) = *existing else {
        return String::new();
    };
    if status.is_alive() {
        format!(
            " (it is {status}: delete it first, or apply a stack that defines it, to replace it)"
        )
    } else if differs {
        format!(
            " (it is {status}, defined otherwise than this start: delete it, \
             then start it again, or apply a stack that defines it, to replace it)"
        )
    } else {
        format!(" (it is {status}: delete it first, or restart it)")
    }
}

impl From<std::io::Error> for PmError {
    fn from(e: std::io::Error) -> Self {
        PmError::Io(e.to_string())
    }
}
