//! `!!process.watch name:a name:b format:json`: stream status events until the client sends a line.

use super::{Format, Verb};
use crate::heroscript::{Action, ActionWriter, ParseError};

/// Stream the status events of some processes (every process when `names` is empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watch {
    /// The processes to watch, from repeated `name:` keys; empty means every process, present and future.
    pub names: Vec<String>,
    /// One text line or one JSON object per event (`format:`).
    pub format: Format,
}

impl Watch {
    /// The names as the registry's subscription filter: `None` for every process.
    pub fn filter(&self) -> Option<Vec<String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
}

impl Verb for Watch {
    const ACTION: &'static str = "process.watch";
    const PARAMS: &'static [&'static str] = &["name", "format"];
    const REPEATABLE: &'static [&'static str] = &["name"];

    fn from_action(a: &Action) -> Result<Self, ParseError> {
        Ok(Watch {
            names: a
                .all("name")
                .filter(|p| !p.value.is_empty())
                .map(|p| p.value.clone())
                .collect(),
            format: Format::from_action(a)?,
        })
    }

    fn write(&self, w: &mut ActionWriter) {
        for name in &self.names {
            w.param("name", name);
        }
        self.format.write(w);
    }
}
