//! GetStatus and ListProcesses: the actors' records with the registry's restart and schedule fields.

use actix::prelude::*;
use pm_protocol::{PmError, ProcessInfo};

use super::messages::{GetStatus, ListProcesses};
use super::Registry;

impl Handler<GetStatus> for Registry {
    type Result = ResponseActFuture<Self, Result<ProcessInfo, PmError>>;

    fn handle(&mut self, msg: GetStatus, _ctx: &mut Context<Self>) -> Self::Result {
        self.info_of(msg.name)
    }
}

impl Handler<ListProcesses> for Registry {
    type Result = ResponseActFuture<Self, Result<Vec<ProcessInfo>, PmError>>;

    fn handle(&mut self, _msg: ListProcesses, _ctx: &mut Context<Self>) -> Self::Result {
        // Every request is queued now, so the actors answer in parallel; the map is sorted by name.
        let asks: Vec<_> = self
            .entries
            .iter()
            .map(|(name, e)| (name.clone(), e.id, e.process.info()))
            .collect();
        let collect = async move {
            let mut out = Vec::with_capacity(asks.len());
            for (name, id, ask) in asks {
                if let Ok(info) = ask.await {
                    out.push((name, id, info));
                }
            }
            out
        };
        Box::pin(collect.into_actor(self).map(|found, act, _| {
            Ok(found
                .into_iter()
                .map(|(name, id, info)| match act.entries.get(&name) {
                    Some(e) if e.id == id => e.compose(info),
                    _ => info,
                })
                .collect())
        }))
    }
}
