//! Mutating requests answered once applied ([`Applied`]) or once on disk (the plain message), and [`Durable`].
//!
//! A mutating request is split in two: the change itself (`Apply`), and the wait for the state file
//! to hold it. The plain message (`StartProcess`, ...) does both; `Applied<M>` does only the first,
//! so a caller that sends many changes (a socket connection pipelining scripts) can wait for the disk
//! once, with [`Durable`], for all of them (group commit).

use actix::prelude::*;

use super::messages::{
    AttachProcess, DeleteProcess, KillProcess, RestartProcess, StartProcess, StopProcess,
};
use super::Registry;

/// `M` answered as soon as its change is made in the registry, without waiting for the state file.
///
/// Follow it with [`Durable`] before telling anyone the change is kept. Exists for the requests of the
/// commands that change state ([`pm_protocol::Command::changes_state`]), the ones the session sends:
/// start, stop, restart, delete, kill, attach.
///
/// ```
/// # use pm_actors::registry::*;
/// # use pm_protocol::*;
/// # actix::System::new().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
/// let spec = ProcessSpec::shell("web", "sleep 30");
/// let start = StartProcess { spec, template: None };
/// let info = registry.send(Applied(start)).await.unwrap().unwrap();
/// assert_eq!(info.status, Status::Running);
/// registry.send(Durable).await.unwrap();
/// let saved = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
/// assert!(saved.contains("\"web\""));
/// # registry.send(Shutdown).await.unwrap().unwrap();
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Applied<M>(pub M);

/// Answers once every change the registry made before it is in the state file (at once when none
/// is pending, or when the state is not kept).
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "()")]
pub struct Durable;

impl Handler<Durable> for Registry {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Durable, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.durable())
    }
}

/// The change a mutating request makes, answered once made (the handlers add the wait for the disk).
pub(crate) trait Apply<M: Message>: Actor<Context = Context<Self>> {
    fn apply(&mut self, msg: M, ctx: &mut Context<Self>) -> ResponseActFuture<Self, M::Result>;
}

/// The plain handler (answers once durable) and the `Applied` one, for each mutating request.
macro_rules! mutating {
    ($($msg:ty),* $(,)?) => {$(
        impl Message for Applied<$msg> {
            type Result = <$msg as Message>::Result;
        }

        impl Handler<$msg> for Registry {
            type Result = ResponseActFuture<Self, <$msg as Message>::Result>;

            fn handle(&mut self, msg: $msg, ctx: &mut Context<Self>) -> Self::Result {
                Registry::when_durable(Apply::<$msg>::apply(self, msg, ctx))
            }
        }

        impl Handler<Applied<$msg>> for Registry {
            type Result = ResponseActFuture<Self, <$msg as Message>::Result>;

            fn handle(&mut self, msg: Applied<$msg>, ctx: &mut Context<Self>) -> Self::Result {
                Apply::<$msg>::apply(self, msg.0, ctx)
            }
        }
    )*};
}

mutating!(
    StartProcess,
    StopProcess,
    RestartProcess,
    DeleteProcess,
    KillProcess,
    AttachProcess,
);
