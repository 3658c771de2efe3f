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
        // Records are composed where they lie in the answer's vector: at ten thousand processes a
        // second vector of records is megabytes more to fault in and copy.
        let asks: Vec<_> = self
            .entries
            .values()
            .map(|e| (e.id, e.process.info()))
            .collect();
        let collect = async move {
            let mut ids = Vec::with_capacity(asks.len());
            let mut infos = Vec::with_capacity(asks.len());
            for (id, ask) in asks {
                if let Ok(info) = ask.await {
                    ids.push(id);
                    infos.push(info);
                }
            }
            (ids, infos)
        };
        Box::pin(collect.into_actor(self).map(|(ids, mut infos), act, _| {
            // An actor's record carries its entry's name.
            for (info, id) in infos.iter_mut().zip(ids) {
                match act.entries.get(&info.name) {
                    Some(e) if e.id == id => e.compose_in_place(info),
                    _ => {}
                }
            }
            Ok(infos)
        }))
    }
}
