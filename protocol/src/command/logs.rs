//! `!!process.logs name:x lines:100 after:41 format:json`: captured output lines, the last ones or those
//! after a line already seen.

use super::{Format, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Captured output lines of a process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Logs {
    /// The process name (`name:`).
    pub name: String,
    /// How many lines, from the end (`lines:`); every line kept in memory when `None`.
    pub lines: Option<usize>,
    /// Only the lines after the one with this number (`after:`, the `next` of an earlier JSON answer),
    /// so that a follower sees each line once.
    pub after: Option<u64>,
    /// The lines as text, or one JSON object with the lines and the numbers to follow them (`format:`).
    pub format: Format,
}

impl Verb for Logs {
    const ACTION: &'static str = "process.logs";
    const PARAMS: &'static [&'static str] = &["name", "lines", "after", "format"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(Logs {
            name: a.required("name")?.to_string(),
            lines: a.int("lines")?,
            after: a.int("after")?,
            format: Format::from_action(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.param("name", &self.name)
            .num("lines", self.lines)
            .num("after", self.after);
        self.format.write(w);
    }
}
