//! `!!quit` (or `!!exit`): end the session.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError};

/// End the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quit;

impl Verb for Quit {
    const ACTION: &'static str = "quit";
    const ALIASES: &'static [&'static str] = &["exit"];
    const PARAMS: &'static [&'static str] = &[];

    fn from_action(_: &Action) -> Result<Self, ParseError> {
        Ok(Quit)
    }

    fn write(&self, _: &mut ActionWriter) {}
}
