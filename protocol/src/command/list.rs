//! `!!process.list format:json`: every process, as a table or JSON.

use super::{Format, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError};

/// List every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct List {
    /// Table or JSON array (`format:`).
    pub format: Format,
}

impl Verb for List {
    const ACTION: &'static str = "process.list";
    const PARAMS: &'static [&'static str] = &["format"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(List {
            format: Format::from_action(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        self.format.write(w);
    }
}
