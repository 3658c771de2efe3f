//! `!!process.logs name:x lines:100`: the last captured output lines.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError};

/// The last captured output lines of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logs {
    /// The process name (`name:`).
    pub name: String,
    /// How many lines, from the end (`lines:`); every line kept in memory when `None`.
    pub lines: Option<usize>,
}

impl Verb for Logs {
    const ACTION: &'static str = "process.logs";
    const PARAMS: &'static [&'static str] = &["name", "lines"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(Logs {
            name: a.required("name")?.to_string(),
            lines: a.int("lines")?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("name", &self.name).num("lines", self.lines);
    }
}
