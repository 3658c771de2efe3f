//! `!!process.status name:x format:json`: one process, as text or JSON.

use super::{Format, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError};

/// The status of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The process name (`name:`).
    pub name: String,
    /// `Key: value` lines or a JSON object (`format:`).
    pub format: Format,
}

impl Verb for Status {
    const ACTION: &'static str = "process.status";
    const PARAMS: &'static [&'static str] = &["name", "format"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(Status {
            name: a.required("name")?.to_string(),
            format: Format::from_action(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("name", &self.name);
        self.format.write(w);
    }
}
