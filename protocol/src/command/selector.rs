//! `name:x` or `all:true`: which processes a command that can act on every process is about.

use crate::heroscript::{Action, ActionWriter, ParseError, ParseErrorKind};

/// One process by name, or every process (`all:true`). Exactly one of the two is given.
///
/// ```
/// use pm_protocol::command::{parse_script, Command, Selector};
/// let cmds = parse_script("!!process.stop all:true").unwrap();
/// assert!(matches!(&cmds[0], Command::Stop(s) if s.target == Selector::All));
/// let err = parse_script("!!process.stop name:web all:true").unwrap_err();
/// assert!(err.to_string().ends_with("give either 'name' or 'all:true', not both"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The process of this name (`name:`).
    Name(String),
    /// Every process (`all:true`).
    All,
}

impl Selector {
    /// The keys a selector reads.
    pub const PARAMS: &'static [&'static str] = &["name", "all"];

    /// Reads `name` or `all:true`; both, or neither, is an error at the action.
    pub fn from_action(a: &Action) -> Result<Self, ParseError> {
        let invalid = |msg: String| a.error(ParseErrorKind::Invalid(msg));
        match (a.non_empty("name"), a.flag("all")?) {
            (Some(_), true) => Err(invalid(
                "give either 'name' or 'all:true', not both".to_string(),
            )),
            (Some(name), false) => Ok(Selector::Name(name.to_string())),
            (None, true) => Ok(Selector::All),
            (None, false) => Err(invalid(format!(
                "missing required parameter 'name' for {} (or all:true for every process)",
                a.full_name()
            ))),
        }
    }

    /// Writes `name:x` or `all:true`.
    pub fn write(&self, w: &mut ActionWriter) {
        match self {
            Selector::Name(name) => w.param("name", name),
            Selector::All => w.flag("all", true),
        };
    }
}
