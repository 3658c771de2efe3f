//! `ProcessHandle`: a cloneable handle on a `ProcessActor` with one async method per message.

use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::{ExitInfo, LogLine, PmError, ProcessInfo, ProcessSpec};

use super::actor::ProcessActor;
use super::messages::*;

/// A handle on one process actor. Every method sends a message and awaits the answer; a handle whose
/// actor is gone answers `PmError::Internal`.
#[derive(Clone)]
pub struct ProcessHandle {
    addr: Addr<ProcessActor>,
    name: String,
}

fn gone(e: MailboxError) -> PmError {
    PmError::Internal(format!("process actor unreachable: {e}"))
}

impl ProcessHandle {
    /// Wraps the address of a running actor; `name` is the process name (it never changes).
    pub fn new(addr: Addr<ProcessActor>, name: impl Into<String>) -> Self {
        ProcessHandle {
            addr,
            name: name.into(),
        }
    }

    /// Starts `actor` on the current arbiter and returns its handle. Must run inside an actix system.
    pub fn spawn(actor: ProcessActor, name: impl Into<String>) -> Self {
        Self::new(actor.start(), name)
    }

    /// The actor's address, to send messages directly.
    pub fn addr(&self) -> &Addr<ProcessActor> {
        &self.addr
    }

    /// The process name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts the process; answers its pid.
    pub async fn start(&self) -> Result<i32, PmError> {
        self.addr.send(Start).await.map_err(gone)?
    }

    /// Sends the stop signal (SIGKILL after `grace`, or the spec's grace time); does not wait.
    pub async fn stop(&self, grace: Option<Duration>) -> Result<(), PmError> {
        self.addr.send(Stop { grace }).await.map_err(gone)?
    }

    /// Stops and answers once the whole process group is gone.
    pub async fn stop_and_wait(&self, grace: Option<Duration>) -> Result<ExitInfo, PmError> {
        self.addr.send(StopAndWait { grace }).await.map_err(gone)?
    }

    /// SIGKILL to the group; answers once it is gone.
    pub async fn kill(&self) -> Result<ExitInfo, PmError> {
        self.addr.send(Kill).await.map_err(gone)?
    }

    /// Waits for the process to end.
    pub async fn wait(&self) -> Result<ExitInfo, PmError> {
        self.addr.send(Wait).await.map_err(gone)?
    }

    /// Sends `signal` (`HUP`, `SIGHUP` or a number) to the process, or to its whole group.
    pub async fn signal(&self, signal: &str, group: bool) -> Result<(), PmError> {
        let msg = Signal {
            signal: signal.to_string(),
            group,
        };
        self.addr.send(msg).await.map_err(gone)?
    }

    /// Stops (gracefully, forcing after the grace time) and starts again; answers the new pid.
    pub async fn restart(&self) -> Result<i32, PmError> {
        self.addr.send(Restart).await.map_err(gone)?
    }

    /// Whether the process is alive.
    pub async fn is_alive(&self) -> Result<bool, PmError> {
        self.addr.send(IsAlive).await.map_err(gone)
    }

    /// The status record as of the last tick.
    pub async fn info(&self) -> Result<ProcessInfo, PmError> {
        self.addr.send(GetInfo).await.map_err(gone)
    }

    /// Reads /proc now and answers the fresh status record.
    pub async fn update_status(&self) -> Result<ProcessInfo, PmError> {
        self.addr.send(UpdateStatus).await.map_err(gone)
    }

    /// The last `lines` captured lines (all kept lines when `None`).
    pub async fn logs(&self, lines: Option<usize>) -> Result<Vec<LogLine>, PmError> {
        self.addr.send(GetLogs { lines }).await.map_err(gone)
    }

    /// Adds a subscriber to every status and kernel-state change.
    pub async fn subscribe(&self, sink: EventSink) -> Result<(), PmError> {
        self.addr.send(Subscribe(sink)).await.map_err(gone)
    }

    /// The spec the actor runs.
    pub async fn spec(&self) -> Result<ProcessSpec, PmError> {
        self.addr.send(GetSpec).await.map_err(gone)
    }

    /// The pid, 0 when not alive.
    pub async fn pid(&self) -> Result<i32, PmError> {
        Ok(self.info().await?.pid)
    }

    /// The command as shown by status (`sh -c` line, or program and arguments).
    pub async fn command(&self) -> Result<String, PmError> {
        Ok(self.info().await?.command)
    }

    /// The arguments (empty for a `sh -c` command line).
    pub async fn arguments(&self) -> Result<Vec<String>, PmError> {
        Ok(self.info().await?.args)
    }

    /// When the process was last started; `None` when never.
    pub async fn start_time(&self) -> Result<Option<DateTime<Local>>, PmError> {
        let info = self.info().await?;
        Ok(DateTime::parse_from_rfc3339(&info.start_time)
            .ok()
            .map(|t| t.with_timezone(&Local)))
    }

    /// How long the process has been up; `None` when not alive.
    pub async fn uptime(&self) -> Result<Option<Duration>, PmError> {
        Ok(self.info().await?.uptime_secs.map(Duration::from_secs_f64))
    }
}
