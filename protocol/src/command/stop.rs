//! `!!process.stop name:x` or `all:true`: stop gracefully (stop signal, grace time, SIGKILL).

use super::{Selector, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Stop a process, or every live process at once, gracefully; a stopped process is not restarted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// The process (`name:`), or every process (`all:true`).
    pub target: Selector,
}

impl Stop {
    /// A stop of the process `name`.
    ///
    /// ```
    /// use pm_protocol::command::{Command, Stop};
    /// assert_eq!(Command::from(Stop::named("web")).to_heroscript(), "!!process.stop name:web");
    /// assert_eq!(Command::from(Stop::all()).to_heroscript(), "!!process.stop all:true");
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Stop {
            target: Selector::Name(name.into()),
        }
    }

    /// A stop of every live process.
    pub fn all() -> Self {
        Stop {
            target: Selector::All,
        }
    }
}

impl Verb for Stop {
    const ACTION: &'static str = "process.stop";
    const PARAMS: &'static [&'static str] = Selector::PARAMS;

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Selector::from_action(a).map(|target| Stop { target })
    }

    fn write(&self, w: &mut ActionWriter) {
        self.target.write(w);
    }
}
