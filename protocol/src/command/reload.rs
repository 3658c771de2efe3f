//! `!!daemon.reload`: re-read pm.conf and the template folder, and apply the templates as a diff.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Re-read the configuration and the templates (what SIGHUP does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload;

impl Verb for Reload {
    const ACTION: &'static str = "daemon.reload";
    const PARAMS: &'static [&'static str] = &[];

    fn from_action(_: &Action) -> Result<Self, ParseError> {
        Ok(Reload)
    }

    fn write(&self, _: &mut ActionWriter) {}
}
