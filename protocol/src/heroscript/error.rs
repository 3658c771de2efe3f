//! Parse errors with a line and column, worded like a compiler's.

use thiserror::Error;

/// Longest piece of user text quoted back in an error message.
const MAX_QUOTED: usize = 60;

/// A heroscript error at a place in the script (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, col {col}: {kind}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error of `kind` at `line`, `col`.
    pub fn new(line: usize, col: usize, kind: ParseErrorKind) -> Self {
        ParseError { line, col, kind }
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("too many '!' ({0}): an action starts with one to four '!'")]
    TooManyBangs(usize),
    #[error("invalid action name '{}': expected '!!actor.action'", clip(.0))]
    BadActionName(String),
    #[error("unknown action '{}'{}; known actions: {known}", clip(.name), did_you_mean(.suggestion))]
    UnknownAction {
        name: String,
        suggestion: Option<String>,
        known: String,
    },
    #[error(
        "text outside an action: a script starts with an action line such as '!!process.list'"
    )]
    TextOutsideAction,
    #[error("parameters on a continuation line must be indented by at least two spaces or a tab")]
    NotIndented,
    #[error("expected a parameter (key:value), found '{}'", clip(.0))]
    ExpectedKey(String),
    #[error("expected ':' after '{}' (parameters are written key:value)", clip(.0))]
    ExpectedColon(String),
    #[error("expected white space after the closing quote")]
    ExpectedSpaceAfterQuote,
    #[error("unterminated quote: the value opened on line {opened_line} never closes")]
    UnterminatedQuote { opened_line: usize },
    #[error("unknown parameter '{}' for {action}{}", clip(.key), did_you_mean(.suggestion))]
    UnknownParameter {
        key: String,
        action: String,
        suggestion: Option<String>,
    },
    #[error("missing required parameter '{key}' for {action}")]
    MissingParameter { key: String, action: String },
    #[error("parameter '{}' is given more than once", clip(.0))]
    DuplicateParameter(String),
    #[error("invalid value '{}' for '{key}': expected {expected}", clip(.value))]
    InvalidValue {
        key: String,
        value: String,
        expected: String,
    },
    #[error("{0}")]
    Invalid(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// Cuts user text to a readable length for an error message.
fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX_QUOTED).collect();
        format!("{head}...")
    }
}
