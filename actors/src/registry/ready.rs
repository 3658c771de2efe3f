//! IsReady: whether the registry has loaded the state file and started the startup templates (what
//! a readiness probe asks).

use actix::prelude::*;

use super::Registry;

/// Answers whether the state file is loaded and every template with `run_on_startup` has been
/// started (each start answered, well or not).
///
/// ```
/// # use pm_actors::registry::*;
/// actix::System::new().block_on(async {
///     let dir = tempfile::tempdir().unwrap();
///     let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
///     let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
///     while !registry.send(IsReady).await.unwrap() {
///         assert!(std::time::Instant::now() < deadline);
///         actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
///     }
/// });
/// ```
#[derive(Message, Debug, Clone, Copy, Default)]
#[rtype(result = "bool")]
pub struct IsReady;

/// Where the startup stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Startup {
    /// Startup is over: the state is loaded and the startup templates are started.
    pub(crate) done: bool,
    /// Startup template starts not answered yet.
    pub(crate) pending_starts: usize,
}

impl Registry {
    /// Marks one startup template start answered; the last one ends the startup.
    pub(crate) fn startup_start_answered(&mut self) {
        self.startup.pending_starts = self.startup.pending_starts.saturating_sub(1);
        if self.startup.pending_starts == 0 {
            self.startup.done = true;
        }
    }
}

impl Handler<IsReady> for Registry {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Context<Self>) -> bool {
        self.startup.done
    }
}
