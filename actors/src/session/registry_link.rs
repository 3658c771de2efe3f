//! The registry requests a session sends, as recipients, so a session works with any actor that answers
//! them (the real `Registry`, or a stand-in in tests).

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::registry::{
    Applied, AttachProcess, DeleteProcess, Durable, GetLogs, GetStatus, KillProcess, ListProcesses,
    RestartProcess, SignalProcess, StartProcess, StopAll, StopProcess, SubscribeEvents,
};

/// Where a session sends each kind of request. The mutating ones are [`Applied`]: the session waits
/// for the disk itself, with one [`Durable`] per script, so pipelined scripts share state writes.
#[derive(Clone)]
pub struct RegistryLink {
    pub start: Recipient<Applied<StartProcess>>,
    pub stop: Recipient<Applied<StopProcess>>,
    pub stop_all: Recipient<StopAll>,
    pub restart: Recipient<Applied<RestartProcess>>,
    pub delete: Recipient<Applied<DeleteProcess>>,
    pub kill: Recipient<Applied<KillProcess>>,
    pub signal: Recipient<SignalProcess>,
    pub status: Recipient<GetStatus>,
    pub list: Recipient<ListProcesses>,
    pub attach: Recipient<Applied<AttachProcess>>,
    pub logs: Recipient<GetLogs>,
    pub subscribe: Recipient<SubscribeEvents>,
    /// Answers once every change made before it is on disk.
    pub durable: Recipient<Durable>,
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
            + Handler<Applied<AttachProcess>>
            + Handler<GetLogs>
            + Handler<SubscribeEvents>
            + Handler<Durable>,
        A::Context: ToEnvelope<A, Applied<StartProcess>>
            + ToEnvelope<A, Applied<StopProcess>>
            + ToEnvelope<A, StopAll>
            + ToEnvelope<A, Applied<RestartProcess>>
            + ToEnvelope<A, Applied<DeleteProcess>>
            + ToEnvelope<A, Applied<KillProcess>>
            + ToEnvelope<A, SignalProcess>
            + ToEnvelope<A, GetStatus>
            + ToEnvelope<A, ListProcesses>
            + ToEnvelope<A, Applied<AttachProcess>>
            + ToEnvelope<A, GetLogs>
            + ToEnvelope<A, SubscribeEvents>
            + ToEnvelope<A, Durable>,
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
            attach: addr.clone().recipient(),
            logs: addr.clone().recipient(),
            subscribe: addr.clone().recipient(),
            durable: addr.clone().recipient(),
        }
    }
}
