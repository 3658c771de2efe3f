//! `ProcessHandle`: a cloneable handle on a `ProcessActor` with one method per message.

use std::future::Future;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use chrono::{DateTime, Local};
use pm_protocol::logs::LogPage;
use pm_protocol::{ExitInfo, LogLine, PmError, ProcessInfo, ProcessSpec};

use super::actor::ProcessActor;
use super::messages::*;

/// A handle on one process actor: how the registry and the tests talk to it.
///
/// Every asking method queues its message when it is called, not when its future is first polled,
/// so that asks made one after another (a stop of every process, a status of each) are all in the
/// mailboxes at once and the actors answer side by side; the future then awaits the answer. A
/// handle whose actor is gone answers `PmError::Internal`.
#[derive(Clone)]
pub struct ProcessHandle {
    addr: Addr<ProcessActor>,
    name: String,
}

/// The error of an ask the actor did not answer (its mailbox is closed): the one fallback for every
/// message sent through a handle.
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

    /// Queues `msg` now and answers a future of the actor's answer.
    fn ask<M>(&self, msg: M) -> impl Future<Output = Result<M::Result, PmError>> + 'static
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ProcessActor: Handler<M>,
        <ProcessActor as Actor>::Context: ToEnvelope<ProcessActor, M>,
    {
        let request = self.addr.send(msg);
        async move { request.await.map_err(gone) }
    }

    /// [`ask`](Self::ask) for a message whose answer is itself a `Result`: one error either way.
    fn ask_fallible<M, T>(&self, msg: M) -> impl Future<Output = Result<T, PmError>> + 'static
    where
        M: Message<Result = Result<T, PmError>> + Send + 'static,
        T: Send + 'static,
        ProcessActor: Handler<M>,
        <ProcessActor as Actor>::Context: ToEnvelope<ProcessActor, M>,
    {
        let answer = self.ask(msg);
        async move { answer.await? }
    }

    /// Starts the process; answers its pid.
    pub fn start(&self) -> impl Future<Output = Result<i32, PmError>> + 'static {
        let answer = self.start_info();
        async move { answer.await.map(|info| info.pid) }
    }

    /// Starts the process; answers its status record once it runs.
    pub fn start_info(&self) -> impl Future<Output = Result<ProcessInfo, PmError>> + 'static {
        self.ask_fallible(Start)
    }

    /// Sends the stop signal (SIGKILL after `grace`, or the spec's grace time); does not wait.
    pub fn stop(
        &self,
        grace: Option<Duration>,
    ) -> impl Future<Output = Result<(), PmError>> + 'static {
        self.ask_fallible(Stop { grace })
    }

    /// Sends the stop signal as [`ProcessHandle::stop`] does, without awaiting the answer; the
    /// message is queued even when the mailbox is full.
    pub fn request_stop(&self, grace: Option<Duration>) {
        self.addr.do_send(Stop { grace });
    }

    /// Stops and answers once the whole process group is gone.
    pub fn stop_and_wait(
        &self,
        grace: Option<Duration>,
    ) -> impl Future<Output = Result<ExitInfo, PmError>> + 'static {
        self.ask_fallible(StopAndWait { grace })
    }

    /// SIGKILL to the group; answers once it is gone.
    pub fn kill(&self) -> impl Future<Output = Result<ExitInfo, PmError>> + 'static {
        self.ask_fallible(Kill)
    }

    /// Waits for the process to end.
    pub fn wait(&self) -> impl Future<Output = Result<ExitInfo, PmError>> + 'static {
        self.ask_fallible(Wait)
    }

    /// Sends `signal` (`HUP`, `SIGHUP` or a number) to the process, or to its whole group.
    pub fn signal(
        &self,
        signal: &str,
        group: bool,
    ) -> impl Future<Output = Result<(), PmError>> + 'static {
        self.ask_fallible(Signal {
            signal: signal.to_string(),
            group,
        })
    }

    /// Stops (gracefully, forcing after the grace time) and starts again; answers the new pid.
    pub fn restart(&self) -> impl Future<Output = Result<i32, PmError>> + 'static {
        let answer = self.restart_info();
        async move { answer.await.map(|info| info.pid) }
    }

    /// Restarts the process; answers the status record of the new run.
    pub fn restart_info(&self) -> impl Future<Output = Result<ProcessInfo, PmError>> + 'static {
        self.ask_fallible(Restart)
    }

    /// Whether the process is alive.
    pub fn is_alive(&self) -> impl Future<Output = Result<bool, PmError>> + 'static {
        self.ask(IsAlive)
    }

    /// The status record as of the last tick.
    pub fn info(&self) -> impl Future<Output = Result<ProcessInfo, PmError>> + 'static {
        self.ask(GetInfo)
    }

    /// Reads /proc now and answers the fresh status record.
    pub fn update_status(&self) -> impl Future<Output = Result<ProcessInfo, PmError>> + 'static {
        self.ask(UpdateStatus)
    }

    /// The last `lines` captured lines (all kept lines when `None`).
    pub fn logs(
        &self,
        lines: Option<usize>,
    ) -> impl Future<Output = Result<Vec<LogLine>, PmError>> + 'static {
        self.ask(GetLogs { lines })
    }

    /// The captured lines after line `after`, the last `lines` of those when given ([`LogPage`]).
    pub fn log_page(
        &self,
        after: Option<u64>,
        lines: Option<usize>,
    ) -> impl Future<Output = Result<LogPage, PmError>> + 'static {
        self.ask(GetLogPage { after, lines })
    }

    /// Adds a subscriber to every status and kernel-state change.
    pub fn subscribe(
        &self,
        sink: EventSink,
    ) -> impl Future<Output = Result<(), PmError>> + 'static {
        self.ask(Subscribe(sink))
    }

    /// Adds a subscriber as [`ProcessHandle::subscribe`] does, without awaiting the answer; the
    /// message is queued even when the mailbox is full, so no event after this call is missed.
    pub fn add_subscriber(&self, sink: EventSink) {
        self.addr.do_send(Subscribe(sink));
    }

    /// Sends `kind` to every subscriber of the process (see [`Announce`]); never waits.
    pub fn announce(&self, kind: pm_protocol::EventKind) {
        self.addr.do_send(Announce(kind));
    }

    /// The spec the actor runs.
    pub fn spec(&self) -> impl Future<Output = Result<ProcessSpec, PmError>> + 'static {
        self.ask(GetSpec)
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
