//! The typed error shared by the library API and the socket.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every way a request to the supervisor can fail. Serializable, so the same value can cross the socket.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
pub enum PmError {
    #[error("process with name '{0}' already exists")]
    AlreadyExists(String),
    #[error("process '{0}' not found")]
    NotFound(String),
    #[error("invalid process name '{0}': use 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName(String),
    #[error("process '{0}' is already running")]
    AlreadyRunning(String),
    #[error("process '{0}' is not running")]
    NotRunning(String),
    #[error("cannot spawn '{name}': {cause}")]
    Spawn { name: String, cause: String },
    #[error("invalid cron expression '{expr}': {reason}")]
    InvalidCron { expr: String, reason: String },
    #[error("invalid signal '{0}'")]
    InvalidSignal(String),
    #[error("process {pid} does not exist")]
    NoSuchPid { pid: i32 },
    #[error("unknown user or group '{0}'")]
    UnknownUser(String),
    #[error("template error: {0}")]
    Template(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<std::io::Error> for PmError {
    fn from(e: std::io::Error) -> Self {
        PmError::Io(e.to_string())
    }
}
