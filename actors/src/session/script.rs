//! Running a session's scripts: each command becomes a registry request, the answers one framed result.

use std::rc::Rc;

use actix::prelude::*;
use pm_protocol::command::{Command, Format, Selector};
use pm_protocol::response::{self, frame, Operation};
use pm_protocol::{PmError, ProcessEvent};
use tokio::sync::mpsc;

use super::registry_link::RegistryLink;
use super::replies::{Replies, Reply, Wait};
use crate::process::EventSink;
use crate::registry::{
    Applied, AttachProcess, DeleteProcess, Durable, GetLogPage, GetStatus, KillProcess,
    ListProcesses, RestartProcess, SignalProcess, StartProcess, StopAll, StopProcess,
    SubscribeEvents, TemplateOption,
};

/// Events a watch may hold for a client before the registry drops them (it never waits on a watcher).
const WATCH_QUEUE: usize = 1024;

/// One thing a line asks for, in order.
pub(super) enum Step {
    /// Commands that answer one frame together.
    Script {
        commands: Vec<Command>,
        jobid: String,
    },
    /// Bytes to send as they are (a framed error, the help).
    Reply(String),
    /// End the session.
    Quit,
}

/// What the session does once the steps are done.
pub(super) enum After {
    Continue,
    /// Close once what is queued is written (a quit).
    Close,
    /// The client does not read (or is gone): close now, dropping what is queued.
    Abandon,
    /// Stream events until the client sends a line.
    Watch(WatchStream),
}

/// A subscription's events, on their way to the client.
pub(super) struct WatchStream {
    events: mpsc::Receiver<ProcessEvent>,
    format: Format,
}

impl WatchStream {
    /// Sends one frame per event; returns when the client cannot keep up (`limit` replies wait for it)
    /// or is gone.
    pub(super) async fn forward(mut self, replies: Replies, limit: usize) {
        while let Some(event) = self.events.recv().await {
            if replies.backlog() >= limit {
                return;
            }
            let body = match self.format {
                Format::Text => response::event_text(&event),
                Format::Json => response::event_json(&event),
            };
            if replies.push(frame("", &body)).is_err() {
                return;
            }
        }
    }
}

/// Runs the steps in order, queueing each answer as soon as it is known; the answer to a script that
/// changed something goes out once the registry has it on disk.
pub(super) async fn run_steps(
    steps: Vec<Step>,
    registry: Rc<RegistryLink>,
    replies: Replies,
) -> After {
    for step in steps {
        let (reply, after) = match step {
            Step::Reply(text) => (Some(now(text)), After::Continue),
            Step::Quit => return After::Close,
            Step::Script { commands, jobid } => answer_script(commands, jobid, &registry).await,
        };
        if let Some(reply) = reply {
            let queued = match reply.durable {
                None => replies.push(reply.bytes),
                Some(durable) => replies.push_when(reply.bytes, durable),
            };
            if queued.is_err() {
                return After::Abandon;
            }
        }
        if !matches!(after, After::Continue) {
            return after;
        }
    }
    After::Continue
}

/// Runs steps that neither quit nor watch ([`runs_beside_others`]) and answers their replies, in order.
pub(super) async fn collect_steps(steps: Vec<Step>, registry: Rc<RegistryLink>) -> Vec<Reply> {
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        let reply = match step {
            Step::Reply(text) => Some(now(text)),
            Step::Quit => None,
            Step::Script { commands, jobid } => answer_script(commands, jobid, &registry).await.0,
        };
        out.extend(reply);
    }
    out
}

fn now(text: String) -> Reply {
    Reply {
        bytes: text.into_bytes(),
        durable: None,
    }
}

/// A script's framed answer (none for an empty body), waiting for the disk when the script changed
/// something, and what comes after it.
async fn answer_script(
    commands: Vec<Command>,
    jobid: String,
    registry: &RegistryLink,
) -> (Option<Reply>, After) {
    let mutates = commands.iter().any(mutates);
    let (body, after) = run_script(commands, registry).await;
    if body.is_empty() {
        return (None, after);
    }
    let durable: Option<Wait> = mutates.then(|| {
        // Asked now, so that it covers exactly the changes made so far.
        let durable = registry.durable.send(Durable);
        Box::pin(async move {
            let _ = durable.await;
        }) as Wait
    });
    let reply = Reply {
        bytes: frame(&jobid, &body).into_bytes(),
        durable,
    };
    (Some(reply), after)
}

/// Whether a line's steps may run beside other lines: no quit and no watch, which end or take over
/// the session, and nothing that concerns every process (stop all, list) or no process by name.
pub(super) fn runs_beside_others(steps: &[Step]) -> bool {
    steps.iter().all(|step| match step {
        Step::Reply(_) => true,
        Step::Quit => false,
        Step::Script { commands, .. } => commands.iter().all(|c| named(c).is_some()),
    })
}

/// The names a line's steps concern (each command of a line that [`runs_beside_others`] names one).
pub(super) fn names(steps: &[Step]) -> Vec<String> {
    let mut names: Vec<String> = steps
        .iter()
        .flat_map(|step| match step {
            Step::Script { commands, .. } => commands.iter().filter_map(named).collect(),
            _ => Vec::new(),
        })
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The one process a command concerns; `None` for one that concerns every process or none.
fn named(command: &Command) -> Option<&str> {
    match command {
        Command::Start(c) => Some(&c.name),
        Command::Stop(c) => match &c.target {
            Selector::Name(name) => Some(name),
            Selector::All => None,
        },
        Command::Restart(c) => Some(&c.name),
        Command::Delete(c) => Some(&c.name),
        Command::Kill(c) => Some(&c.name),
        Command::Signal(c) => Some(&c.name),
        Command::Attach(c) => Some(&c.name),
        Command::Status(c) => Some(&c.name),
        Command::Logs(c) => Some(&c.name),
        Command::List(_) | Command::Help(_) | Command::Watch(_) | Command::Quit(_) => None,
    }
}

/// Whether a command changes what the state file holds (its answer then waits for the disk).
fn mutates(command: &Command) -> bool {
    matches!(
        command,
        Command::Start(_)
            | Command::Stop(_)
            | Command::Restart(_)
            | Command::Delete(_)
            | Command::Kill(_)
            | Command::Attach(_)
    )
}

/// The body answering a script's commands, and what comes after (a quit or a watch ends the script).
async fn run_script(commands: Vec<Command>, registry: &RegistryLink) -> (String, After) {
    let mut body = String::new();
    let mut commands = commands.into_iter();
    while let Some(command) = commands.next() {
        let after = match command {
            Command::Quit(_) => After::Close,
            Command::Watch(w) => match subscribe(registry, w.filter()).await {
                Ok(events) => {
                    body.push_str(&watch_started(&w.names));
                    After::Watch(WatchStream {
                        events,
                        format: w.format,
                    })
                }
                Err(e) => {
                    body.push_str(&response::failure(Operation::Watch, &e));
                    continue;
                }
            },
            other => {
                body.push_str(&run_command(other, registry).await);
                continue;
            }
        };
        if commands.len() > 0 {
            body.push_str(
                "Error: the commands after a watch or quit in the same script were not run\n",
            );
        }
        return (body, after);
    }
    (body, After::Continue)
}

fn watch_started(names: &[String]) -> String {
    let what = if names.is_empty() {
        "every process".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("Watching {what}; send any line to stop\n")
}

async fn subscribe(
    registry: &RegistryLink,
    names: Option<Vec<String>>,
) -> Result<mpsc::Receiver<ProcessEvent>, PmError> {
    let (tx, rx) = mpsc::channel(WATCH_QUEUE);
    let sink = EventSink::Channel(tx);
    flatten(
        registry
            .subscribe
            .send(SubscribeEvents { names, sink })
            .await,
    )?;
    Ok(rx)
}

/// A registry answer, with a registry that is gone counted as shutting down.
fn flatten<T>(answer: Result<Result<T, PmError>, actix::MailboxError>) -> Result<T, PmError> {
    answer.unwrap_or(Err(PmError::ShuttingDown))
}

/// A request about one process, answered with its sentence (`Process 'x' stopped successfully`).
async fn act<M, T>(op: Operation, to: &Recipient<M>, msg: M) -> String
where
    M: Message<Result = Result<T, PmError>> + Named + Send + 'static,
    T: Send + 'static,
{
    let name = msg.name().to_string();
    response::outcome(op, &name, &flatten(to.send(msg).await))
}

/// The process a request is about.
trait Named {
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($msg:ty),*) => {
        $(impl Named for $msg {
            fn name(&self) -> &str {
                &self.name
            }
        })*
    };
}
impl<M: Named> Named for Applied<M> {
    fn name(&self) -> &str {
        self.0.name()
    }
}

named!(
    StopProcess,
    RestartProcess,
    DeleteProcess,
    KillProcess,
    SignalProcess,
    AttachProcess
);

/// One command's body.
async fn run_command(command: Command, registry: &RegistryLink) -> String {
    match command {
        Command::Start(s) => {
            let name = s.name.clone();
            let template = s.template.then_some(TemplateOption {
                run_on_startup: s.run_on_startup,
            });
            let answer = match s.to_spec() {
                Ok(spec) => flatten(
                    registry
                        .start
                        .send(Applied(StartProcess { spec, template }))
                        .await,
                ),
                Err(e) => Err(e),
            };
            response::outcome(Operation::Start, &name, &answer)
        }
        Command::Stop(c) => match c.target {
            Selector::Name(name) => {
                act(
                    Operation::Stop,
                    &registry.stop,
                    Applied(StopProcess { name }),
                )
                .await
            }
            Selector::All => match flatten(registry.stop_all.send(StopAll).await) {
                Ok(all) => response::stopped_all(all.stopped.len(), &all.failed),
                Err(e) => response::failure(Operation::StopAll, &e),
            },
        },
        Command::Restart(c) => {
            act(
                Operation::Restart,
                &registry.restart,
                Applied(RestartProcess { name: c.name }),
            )
            .await
        }
        Command::Delete(c) => {
            act(
                Operation::Delete,
                &registry.delete,
                Applied(DeleteProcess { name: c.name }),
            )
            .await
        }
        Command::Kill(c) => {
            act(
                Operation::Kill,
                &registry.kill,
                Applied(KillProcess { name: c.name }),
            )
            .await
        }
        Command::Signal(c) => {
            let msg = SignalProcess {
                name: c.name,
                signal: c.signal,
                group: c.group,
            };
            act(Operation::Signal, &registry.signal, msg).await
        }
        Command::Attach(c) => {
            let msg = Applied(AttachProcess {
                pid: c.pid,
                name: c.name,
            });
            act(Operation::Attach, &registry.attach, msg).await
        }
        Command::Status(c) => match flatten(registry.status.send(GetStatus { name: c.name }).await)
        {
            Ok(info) => match c.format {
                Format::Text => response::status_text(&info),
                Format::Json => response::status_json(&info),
            },
            Err(e) => response::failure(Operation::Status, &e),
        },
        Command::List(c) => match flatten(registry.list.send(ListProcesses).await) {
            Ok(all) => match c.format {
                Format::Text => response::list_text(&all),
                Format::Json => response::list_json(&all),
            },
            Err(e) => response::failure(Operation::List, &e),
        },
        Command::Logs(c) => {
            let msg = GetLogPage {
                name: c.name,
                after: c.after,
                lines: c.lines,
            };
            match flatten(registry.logs.send(msg).await) {
                Ok(page) => match c.format {
                    Format::Text => response::logs_text(&page.lines),
                    Format::Json => response::logs_json(&page),
                },
                Err(e) => response::failure(Operation::Logs, &e),
            }
        }
        Command::Help(_) => response::HELP.to_string(),
        // Handled by `run_script` before a command gets here.
        Command::Watch(_) | Command::Quit(_) => String::new(),
    }
}
