//! The registry requests a session sends, as recipients, so a session works with any actor that answers
//! them (the real `Registry`, or a stand-in in tests).

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::registry::{
    Applied, ApplyStack, AttachProcess, DeleteProcess, Durable, GetProcessLogPage, GetStatus,
    KillProcess, ListJson, ListProcesses, ReloadDaemon, RestartProcess, SignalProcess,
    StartProcess, StateWrites, StopAll, StopProcess, SubscribeEvents,
};

/// Where a session sends each kind of request. Those of the commands that change state
/// ([`pm_protocol::Command::changes_state`]) are [`Applied`]: the session waits for the disk itself,
/// with one [`Durable`] per script, so pipelined scripts share state writes.
#[derive(Clone)]
pub struct RegistryLink {
    /// Starts a process (answers once applied).
    pub start: Recipient<Applied<StartProcess>>,
    /// Stops one process (answers once applied).
    pub stop: Recipient<Applied<StopProcess>>,
    /// Stops every live process (answers once all are gone and on disk).
    pub stop_all: Recipient<StopAll>,
    /// Restarts a process (answers once applied).
    pub restart: Recipient<Applied<RestartProcess>>,
    /// Deletes a process (answers once applied).
    pub delete: Recipient<Applied<DeleteProcess>>,
    /// Kills a process (answers once applied).
    pub kill: Recipient<Applied<KillProcess>>,
    /// Signals a process or its group.
    pub signal: Recipient<SignalProcess>,
    /// Answers one status record.
    pub status: Recipient<GetStatus>,
    /// Answers every status record.
    pub list: Recipient<ListProcesses>,
    /// Answers every status record as `list format:json` writes them.
    pub list_json: Recipient<ListJson>,
    /// Adopts a process the daemon did not start (answers once applied).
    pub attach: Recipient<Applied<AttachProcess>>,
    /// Answers captured lines and their numbers.
    pub logs: Recipient<GetProcessLogPage>,
    /// Subscribes to events (for `process.watch`).
    pub subscribe: Recipient<SubscribeEvents>,
    /// Answers once every change made before it is on disk.
    pub durable: Recipient<Durable>,
    /// Applies a stack as a diff (answers once on disk).
    pub apply: Recipient<ApplyStack>,
    /// Re-reads pm.conf and the templates.
    pub reload: Recipient<ReloadDaemon>,
    /// Answers the count of completed state-file writes (for the metrics).
    pub state_writes: Recipient<StateWrites>,
}

impl RegistryLink {
    /// Links to an actor that answers every registry request.
    pub fn new<A>(addr: &Addr<A>) -> Self
    where
        A: Actor
            + Handler<Applied<StartProcess>>
            + Handler<Applied<StopProcess>>
            + Handler<StopAll>
            + Handler<Applied<RestartProcess>>
            + Handler<Applied<DeleteProcess>>
            + Handler<Applied<KillProcess>>
            + Handler<SignalProcess>
            + Handler<GetStatus>
            + Handler<ListProcesses>
            + Handler<ListJson>
            + Handler<Applied<AttachProcess>>
            + Handler<GetProcessLogPage>
            + Handler<SubscribeEvents>
            + Handler<Durable>
            + Handler<ApplyStack>
            + Handler<ReloadDaemon>
            + Handler<StateWrites>,
        A::Context: ToEnvelope<A, Applied<StartProcess>>
            + ToEnvelope<A, Applied<StopProcess>>
            + ToEnvelope<A, StopAll>
            + ToEnvelope<A, Applied<RestartProcess>>
            + ToEnvelope<A, Applied<DeleteProcess>>
            + ToEnvelope<A, Applied<KillProcess>>
            + ToEnvelope<A, SignalProcess>
            + ToEnvelope<A, GetStatus>
            + ToEnvelope<A, ListProcesses>
            + ToEnvelope<A, ListJson>
            + ToEnvelope<A, Applied<AttachProcess>>
            + ToEnvelope<A, GetProcessLogPage>
            + ToEnvelope<A, SubscribeEvents>
            + ToEnvelope<A, Durable>
            + ToEnvelope<A, ApplyStack>
            + ToEnvelope<A, ReloadDaemon>
            + ToEnvelope<A, StateWrites>,
    {
        RegistryLink {
            start: addr.clone().recipient(),
            stop: addr.clone().recipient(),
            stop_all: addr.clone().recipient(),
            restart: addr.clone().recipient(),
            delete: addr.clone().recipient(),
            kill: addr.clone().recipient(),
            signal: addr.clone().recipient(),
            status: addr.clone().recipient(),
            list: addr.clone().recipient(),
            list_json: addr.clone().recipient(),
            attach: addr.clone().recipient(),
            logs: addr.clone().recipient(),
            subscribe: addr.clone().recipient(),
            durable: addr.clone().recipient(),
            apply: addr.clone().recipient(),
            reload: addr.clone().recipient(),
            state_writes: addr.clone().recipient(),
        }
    }
}
