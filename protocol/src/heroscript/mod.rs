//! Heroscript, the text people type: `!!actor.action key:value ...`, parsed into [`Action`]s.
//!
//! The grammar (see `docs/protocol.md`):
//! - an action line starts (after blanks) with one to four `!` and `actor.action` (or a single word such
//!   as `help`); names are case-insensitive;
//! - parameters are `key:value` (or `key: value`), on the action line and on continuation lines indented
//!   by at least two spaces or a tab;
//! - values are bare (up to white space), `'single'` or `"double"` quoted; quoted values may span lines and
//!   keep every character; `\'`, `\"` and `\\` are escapes inside quotes;
//! - lines starting with `#` or `//` are comments.
//!
//! ```
//! let actions = pm_protocol::heroscript::parse("!!Process.Start name:web command: 'echo hi'").unwrap();
//! assert_eq!(actions[0].full_name(), "process.start");
//! assert_eq!(actions[0].str("command"), Some("echo hi"));
//! ```

mod action;
mod error;
mod parser;
mod render;
mod values;

pub use action::{Action, Param};
pub use error::{ParseError, ParseErrorKind};
pub use parser::{is_action_line, parse, Parser};
pub use render::{quote, ActionWriter};
pub use values::{format_duration, parse_bool, parse_duration, suggest};

#[cfg(test)]
mod tests;
