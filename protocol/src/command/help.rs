//! `!!help`: the help text.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Ask for the help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Help;

impl Verb for Help {
    const ACTION: &'static str = "help";
    const PARAMS: &'static [&'static str] = &[];

    fn from_action(_: &Action) -> Result<Self, ParseError> {
        Ok(Help)
    }

    fn write(&self, _: &mut ActionWriter) {}
}
