//! The registry requests a session sends, as recipients, so a session works with any actor that answers
//! them (the real `Registry`, or a stand-in in tests).

use actix::dev::ToEnvelope;
use actix::prelude::*;

use crate::registry::{
    AttachProcess, DeleteProcess, GetLogs, GetStatus, KillProcess, ListProcesses, RestartProcess,
    SignalProcess, StartProcess, StopAll, StopProcess, SubscribeEvents,
};

/// Where a session sends each kind of request.
#[derive(Clone)]
pub struct RegistryLink {
    pub start: Recipient<StartProcess>,
    pub stop: Recipient<StopProcess>,
    pub stop_all: Recipient<StopAll>,
    pub restart: Recipient<RestartProcess>,
    pub delete: Recipient<DeleteProcess>,
    pub kill: Recipient<KillProcess>,
    pub signal: Recipient<SignalProcess>,
    pub status: Recipient<GetStatus>,
    pub list: Recipient<ListProcesses>,
    pub attach: Recipient<AttachProcess>,
    pub logs: Recipient<GetLogs>,
    pub subscribe: Recipient<SubscribeEvents>,
}

impl RegistryLink {
    /// Links to an actor that answers every registry request.
    pub fn new<A>(addr: &Addr<A>) -> Self
    where
        A: Actor
            + Handler<StartProcess>
            + Handler<StopProcess>
            + Handler<StopAll>
            + Handler<RestartProcess>
            + Handler<DeleteProcess>
            + Handler<KillProcess>
            + Handler<SignalProcess>
            + Handler<GetStatus>
            + Handler<ListProcesses>
            + Handler<AttachProcess>
            + Handler<GetLogs>
            + Handler<SubscribeEvents>,
        A::Context: ToEnvelope<A, StartProcess>
            + ToEnvelope<A, StopProcess>
            + ToEnvelope<A, StopAll>
            + ToEnvelope<A, RestartProcess>
            + ToEnvelope<A, DeleteProcess>
            + ToEnvelope<A, KillProcess>
            + ToEnvelope<A, SignalProcess>
            + ToEnvelope<A, GetStatus>
            + ToEnvelope<A, ListProcesses>
            + ToEnvelope<A, AttachProcess>
            + ToEnvelope<A, GetLogs>
            + ToEnvelope<A, SubscribeEvents>,
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
        }
    }
}
