//! `!!process.signal name:x signal:HUP group:true`: send a signal to a process or its group.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Send a signal to a process (or its whole process group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The process name (`name:`).
    pub name: String,
    /// `HUP`, `SIGHUP` or a number; checked by the supervisor.
    pub signal: String,
    /// Signal the whole process group rather than the process alone.
    pub group: bool,
}

impl Verb for Signal {
    const ACTION: &'static str = "process.signal";
    const PARAMS: &'static [&'static str] = &["name", "signal", "group"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(Signal {
            name: a.required("name")?.to_string(),
            signal: a.required("signal")?.to_string(),
            group: a.flag("group")?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("name", &self.name)
            .param("signal", &self.signal)
            .flag("group", self.group);
    }
}
