//! `!!process.attach pid:123 name:x`: adopt a process the daemon did not start.

use super::Verb;
use crate::heroscript::{Action, ActionWriter, ParseError, ParseErrorKind};

/// Adopt a running process by pid, under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    /// The pid to adopt (`pid:`); above 0.
    pub pid: i32,
    /// The name to manage it under (`name:`).
    pub name: String,
}

impl Verb for Attach {
    const ACTION: &'static str = "process.attach";
    const PARAMS: &'static [&'static str] = &["pid", "name"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        let pid = a
            .typed("pid", "a process id (a whole number above 0)", |v| {
                v.parse::<i32>().ok().filter(|p| *p > 0)
            })?
            .ok_or_else(|| {
                a.error(ParseErrorKind::MissingParameter {
                    key: "pid".into(),
                    action: Self::ACTION.into(),
                })
            })?;
        Ok(Attach {
            pid,
            name: a.required("name")?.to_string(),
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        w.num("pid", Some(self.pid)).param("name", &self.name);
    }
}
