//! How a `ProcessActor` runs its process: log directory, status tick, where output goes, the group guard.

use std::path::PathBuf;
use std::time::Duration;

use pm_protocol::LogLine;

use super::guard::GroupGuard;
use super::strays::StrayScanner;

/// Where the output of a (non-detached) child goes.
#[derive(Clone, Debug, Default)]
pub enum OutputTarget {
    /// As the spec says: captured to the log file and ring with `log.enabled`, discarded otherwise.
    #[default]
    Spec,
    /// The daemon's own stdout and stderr (inherited).
    DaemonStdio,
    /// Each captured line to this channel (and to the ring), for a caller of the Rust API.
    /// A full channel holds back the reader (and so, at worst, the child): the caller sizes it.
    Channel(tokio::sync::mpsc::Sender<LogLine>),
}

/// How long a start may take from the clone to the exec before it is abandoned, unless
/// [`ProcessOptions::start_deadline`] says otherwise. A child gets there at once; one still short of
/// its exec long after is stuck (stopped, or in an exec from a hung file system).
pub const START_DEADLINE: Duration = Duration::from_secs(10);

/// Options of one `ProcessActor`, set by whoever creates it (the Registry, or a library user).
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// Where `<name>.log` goes (never the daemon's current directory).
    pub log_dir: PathBuf,
    /// The status tick: kernel state, CPU and memory of the process tree.
    pub tick: Duration,
    /// Where stdout and stderr go (the spec's log setting by default).
    pub output: OutputTarget,
    /// Kills non-detached children's groups when the daemon dies; `None` leaves them unguarded.
    pub guard: Option<GroupGuard>,
    /// How long a start may take from the clone to the exec: a child still short of its exec then
    /// is killed, and the start fails.
    pub start_deadline: Duration,
    /// Where the notify sockets of `ready:notify` processes go (`<name>.notify`); `None`: a
    /// `notify` folder in `log_dir`.
    pub notify_dir: Option<PathBuf>,
    /// Finds the processes that left the group but carry its marker, at a stop (see
    /// [`super::strays`]); `None` (the default outside a registry, whose children carry no marker):
    /// a stop reaches the group only.
    pub strays: Option<StrayScanner>,
    /// Every captured line also goes here, prefixed with the process's name (`--log-stdout`).
    pub echo: Option<super::echo::LineEcho>,
    /// The state file a registry's children name in their marker ([`crate::registry::ENV_STATE`],
    /// beside [`crate::registry::ENV_NAME`]), added to the environment at each spawn rather than
    /// kept in every spec; `None` (outside a registry): no marker.
    pub marker: Option<PathBuf>,
}

impl ProcessOptions {
    /// Defaults: a 1 s tick, output as the spec says, the shared group guard, and a start deadline
    /// of [`START_DEADLINE`].
    ///
    /// The first call also makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that
    /// the orphaned members of a managed group are reaped here rather than left as zombies.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        super::orphans::become_subreaper();
        let guard = match GroupGuard::shared() {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        };
        ProcessOptions {
            log_dir: log_dir.into(),
            tick: Duration::from_secs(1),
            output: OutputTarget::Spec,
            guard,
            start_deadline: START_DEADLINE,
            notify_dir: None,
            strays: None,
            echo: None,
            marker: None,
        }
    }

    /// The same options with another status tick.
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// The folder of the notify sockets (see [`ProcessOptions::notify_dir`]).
    pub fn notify_dir(&self) -> PathBuf {
        self.notify_dir
            .clone()
            .unwrap_or_else(|| self.log_dir.join("notify"))
    }

    /// The same options with another start deadline.
    pub fn with_start_deadline(mut self, deadline: Duration) -> Self {
        self.start_deadline = deadline;
        self
    }

    /// The same options with another output target.
    pub fn with_output(mut self, output: OutputTarget) -> Self {
        self.output = output;
        self
    }
}
