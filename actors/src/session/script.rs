//! Running a session's scripts: each command becomes a registry request, the answers one framed result.

use std::rc::Rc;

use actix::prelude::*;
use pm_protocol::command::{Command, Format, Selector};
use pm_protocol::plan;
use pm_protocol::response::{self, frame, Operation};
use pm_protocol::{PmError, ProcessEvent};
use tokio::sync::mpsc;

use super::registry_link::RegistryLink;
use super::replies::{Replies, Reply, Wait};
use crate::counters;
use crate::process::EventSink;
use crate::registry::{
    Applied, ApplyStack, AttachProcess, DeleteProcess, Durable, GetProcessLogPage, GetStatus,
    KillProcess, ListJson, ListProcesses, ReloadDaemon, RestartProcess, SignalProcess,
    StartProcess, StopAll, StopProcess, SubscribeEvents, TemplateOption,
};

/// Events a watch may hold for a client before the registry drops them (it never waits on a watcher).
const WATCH_QUEUE: usize = 1024;

/// One part of what a line asks for: a script to run, a ready reply, or a quit; a line's parts run
/// in order.
pub(super) enum LinePart {
    /// Commands that answer one frame together.
    Script {
        commands: Vec<Command>,
        jobid: String,
    },
    /// Bytes to send as they are (a framed error, the help, an open-quote notice).
    Reply(String),
    /// End the session.
    Quit,
}

/// What the session does once the parts are done.
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

/// Why a watch's forwarding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WatchEnd {
    /// Every watched process is gone (deleted): no event will come, but the watch lasts until the
    /// client's line ends it, as for any watch.
    SourcesGone,
    /// The client cannot keep up (`limit` replies wait for it) or is gone.
    ClientLost,
}

impl WatchStream {
    /// Sends one frame per event until the events end or the client is lost.
    pub(super) async fn forward(mut self, replies: Replies, limit: usize) -> WatchEnd {
        while let Some(event) = self.events.recv().await {
            if replies.backlog() >= limit {
                return WatchEnd::ClientLost;
            }
            let body = match self.format {
                Format::Text => response::event_text(&event),
                Format::Json => response::event_json(&event),
            };
            if replies.push(frame("", body)).is_err() {
                return WatchEnd::ClientLost;
            }
        }
        WatchEnd::SourcesGone
    }
}

/// Runs the parts in order, queueing each answer as soon as it is known; the answer to a script that
/// changed something goes out once the registry has it on disk.
pub(super) async fn run_parts(
    parts: Vec<LinePart>,
    registry: Rc<RegistryLink>,
    replies: Replies,
) -> After {
    for part in parts {
        let (reply, after) = match part {
            LinePart::Reply(text) => (Some(now(text)), After::Continue),
            LinePart::Quit => return After::Close,
            LinePart::Script { commands, jobid } => answer_script(commands, jobid, &registry).await,
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

/// Runs parts that neither quit nor watch ([`runs_beside_others`]) and answers their replies, in order.
pub(super) async fn collect_parts(parts: Vec<LinePart>, registry: Rc<RegistryLink>) -> Vec<Reply> {
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let reply = match part {
            LinePart::Reply(text) => Some(now(text)),
            LinePart::Quit => None,
            LinePart::Script { commands, jobid } => {
                answer_script(commands, jobid, &registry).await.0
            }
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

/// A script's framed answer, waiting for the disk when the script changed something, and what comes
/// after it. Every script is answered, an empty body included (a client waits for one frame per
/// script), except one that only quits: the session ends instead.
async fn answer_script(
    commands: Vec<Command>,
    jobid: String,
    registry: &RegistryLink,
) -> (Option<Reply>, After) {
    let changes_state = commands.iter().any(Command::changes_state);
    let (body, after) = run_script(commands, registry).await;
    if body.is_empty() && matches!(after, After::Close) {
        return (None, after);
    }
    let durable: Option<Wait> = changes_state.then(|| {
        // Asked now, so that it covers exactly the changes made so far.
        let durable = registry.durable.send(Durable);
        Box::pin(async move {
            let _ = durable.await;
        }) as Wait
    });
    let reply = Reply {
        bytes: frame(&jobid, body).into_bytes(),
        durable,
    };
    (Some(reply), after)
}

/// Whether a line's parts may run beside other lines: no quit and no watch, which end or take over
/// the session, and nothing that concerns every process (stop all, list) or no process by name.
pub(super) fn runs_beside_others(parts: &[LinePart]) -> bool {
    parts.iter().all(|part| match part {
        LinePart::Reply(_) => true,
        LinePart::Quit => false,
        LinePart::Script { commands, .. } => commands.iter().all(|c| c.process_name().is_some()),
    })
}

/// The names a line's parts concern (each command of a line that [`runs_beside_others`] names one).
pub(super) fn names(parts: &[LinePart]) -> Vec<String> {
    let mut names: Vec<String> = parts
        .iter()
        .flat_map(|part| match part {
            LinePart::Script { commands, .. } => {
                commands.iter().filter_map(Command::process_name).collect()
            }
            _ => Vec::new(),
        })
        .map(str::to_string)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The body answering a script's commands, and what comes after (a quit or a watch ends the script).
async fn run_script(commands: Vec<Command>, registry: &RegistryLink) -> (String, After) {
    let mut body = String::new();
    let mut commands = commands.into_iter();
    while let Some(command) = commands.next() {
        // Counted when this turn of the loop ends, however it ends.
        let _timed = counters::daemon().requests.time(&command);
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
    registry_answer(
        registry
            .subscribe
            .send(SubscribeEvents { names, sink })
            .await,
    )?;
    Ok(rx)
}

/// A registry answer, with a registry that is gone counted as shutting down: the one fallback for a
/// request the registry did not answer.
fn registry_answer<T>(
    answer: Result<Result<T, PmError>, actix::MailboxError>,
) -> Result<T, PmError> {
    answer.unwrap_or(Err(PmError::ShuttingDown))
}

/// Sends a request about process `name` and answers the sentence that reports its outcome
/// (`Process 'x' stopped successfully`).
async fn request_outcome<M, T>(op: Operation, name: &str, to: &Recipient<M>, msg: M) -> String
where
    M: Message<Result = Result<T, PmError>> + Send + 'static,
    T: Send + 'static,
{
    response::outcome(op, name, &registry_answer(to.send(msg).await))
}

/// One command's body.
async fn run_command(command: Command, registry: &RegistryLink) -> String {
    // Empty for the commands about every process or none, which do not report a name.
    let name = command.process_name().unwrap_or_default().to_string();
    match command {
        Command::Start(s) => {
            let template = s.template.then_some(TemplateOption {
                run_on_startup: s.run_on_startup,
            });
            let answer = match s.to_spec() {
                Ok(spec) => registry_answer(
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
            Selector::Name(target) => {
                let msg = Applied(StopProcess { name: target });
                request_outcome(Operation::Stop, &name, &registry.stop, msg).await
            }
            Selector::All => match registry_answer(registry.stop_all.send(StopAll).await) {
                Ok(all) => response::stopped_all(all.stopped.len(), &all.failed),
                Err(e) => response::failure(Operation::StopAll, &e),
            },
        },
        Command::Restart(c) => {
            let msg = Applied(RestartProcess { name: c.name });
            request_outcome(Operation::Restart, &name, &registry.restart, msg).await
        }
        Command::Delete(c) => {
            let msg = Applied(DeleteProcess { name: c.name });
            request_outcome(Operation::Delete, &name, &registry.delete, msg).await
        }
        Command::Kill(c) => {
            let msg = Applied(KillProcess { name: c.name });
            request_outcome(Operation::Kill, &name, &registry.kill, msg).await
        }
        Command::Signal(c) => {
            let msg = SignalProcess {
                name: c.name,
                signal: c.signal,
                group: c.group,
            };
            request_outcome(Operation::Signal, &name, &registry.signal, msg).await
        }
        Command::Attach(c) => {
            let msg = Applied(AttachProcess {
                pid: c.pid,
                name: c.name,
            });
            request_outcome(Operation::Attach, &name, &registry.attach, msg).await
        }
        Command::Status(c) => {
            match registry_answer(registry.status.send(GetStatus { name: c.name }).await) {
                Ok(info) => match c.format {
                    Format::Text => response::status_text(&info),
                    Format::Json => response::status_json(&info),
                },
                Err(e) => response::failure(Operation::Status, &e),
            }
        }
        Command::List(c) => {
            let answer = match c.format {
                Format::Text => registry_answer(registry.list.send(ListProcesses).await)
                    .map(|all| response::list_text(&all)),
                Format::Json => registry_answer(registry.list_json.send(ListJson).await),
            };
            answer.unwrap_or_else(|e| response::failure(Operation::List, &e))
        }
        Command::Logs(c) => {
            let msg = GetProcessLogPage {
                name: c.name,
                after: c.after,
                lines: c.lines,
            };
            match registry_answer(registry.logs.send(msg).await) {
                Ok(page) => match c.format {
                    Format::Text => response::logs_text(&page.lines),
                    Format::Json => response::logs_json(&page),
                },
                Err(e) => response::failure(Operation::Logs, &e),
            }
        }
        Command::Apply(c) => apply_stack(c, registry).await,
        Command::Reload(_) => match registry_answer(registry.reload.send(ReloadDaemon).await) {
            Ok(report) => plan::reload_text(&report.needs_restart, &report.plan),
            Err(e) => format!("Error reloading: {e}\n"),
        },
        Command::Help(_) => response::HELP.to_string(),
        // Handled by `run_script` before a command gets here.
        Command::Watch(_) | Command::Quit(_) => String::new(),
    }
}

/// The plan of `process.apply`, as text or JSON; a stack that cannot be read is an error.
async fn apply_stack(c: pm_protocol::command::Apply, registry: &RegistryLink) -> String {
    let specs = match c.stack.to_specs() {
        Ok(all) => all.into_iter().map(|p| p.spec).collect(),
        Err(e) => return format!("Error applying the stack: {e}\n"),
    };
    let msg = ApplyStack {
        specs,
        prune: c.prune,
        dry_run: c.dry_run,
    };
    match registry_answer(registry.apply.send(msg).await) {
        Ok(plan) => match c.format {
            Format::Text => plan.text(),
            Format::Json => plan.json(),
        },
        Err(e) => format!("Error applying the stack: {e}\n"),
    }
}
