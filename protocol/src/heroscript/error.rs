//! Parse errors with a line and column, worded like a compiler's.

use thiserror::Error;

/// Longest piece of user text quoted back in an error message.
const MAX_QUOTED: usize = 60;

/// A heroscript error at a place in the script (1-based line and column, columns counted in characters).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}, col {col}: {kind}")]
pub struct ParseError {
    /// The line, counted from 1 from the start of the script.
    pub line: usize,
    /// The column, counted from 1 in characters (not bytes).
    pub col: usize,
    /// What went wrong there.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error of `kind` at `line`, `col`.
    pub fn new(line: usize, col: usize, kind: ParseErrorKind) -> Self {
        ParseError { line, col, kind }
    }
}

/// What went wrong. The `Display` text is the message after `line L, col C: `; user text quoted in it is
/// cut to 60 characters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// An action line starts with five or more `!` (how many).
    #[error("too many '!' ({0}): an action starts with one to four '!'")]
    TooManyBangs(usize),
    /// The word after the `!`s is not `actor.action` or a single word (the text found).
    #[error("invalid action name '{}': expected '!!actor.action'", clip(.0))]
    BadActionName(String),
    #[error("unknown action '{}'{}; known actions: {known}", clip(.name), did_you_mean(.suggestion))]
    /// A well-formed action name that no command has.
    UnknownAction {
        /// The name as written, lower-cased.
        name: String,
        /// The closest known name, when one is close enough to be a likely typo.
        suggestion: Option<String>,
        /// Every known action name, comma-separated.
        known: String,
    },
    /// A line with text before the first action line.
    #[error(
        "text outside an action: a script starts with an action line such as '!!process.list'"
    )]
    TextOutsideAction,
    /// A continuation line (parameters after the action line) indented by fewer than two spaces.
    #[error("parameters on a continuation line must be indented by at least two spaces or a tab")]
    NotIndented,
    /// Something that is not a `key:value` where a parameter should be (the text found).
    #[error("expected a parameter (key:value), found '{}'", clip(.0))]
    ExpectedKey(String),
    /// A key not followed by `:` (the key).
    #[error("expected ':' after '{}' (parameters are written key:value)", clip(.0))]
    ExpectedColon(String),
    /// A closing quote directly followed by more text (`name:'a'b`). When the value it closed holds
    /// what reads as the next parameter (`name:'web command:'sleep 10'`), the message says that an
    /// opening quote may be missing.
    #[error("expected white space after the closing quote{}", missing_quote_hint(.value))]
    ExpectedSpaceAfterQuote {
        /// The quoted value that quote closed.
        value: String,
    },
    /// A quoted value still open at the end of the script.
    #[error("unterminated quote: the value opened on line {opened_line} never closes")]
    UnterminatedQuote {
        /// The line (from 1) where the quote opened.
        opened_line: usize,
    },
    /// A key the action does not accept.
    #[error("unknown parameter '{}' for {action}{}", clip(.key), did_you_mean(.suggestion))]
    UnknownParameter {
        /// The key as written, lower-cased.
        key: String,
        /// The action's full name (`process.start`).
        action: String,
        /// The closest key the action accepts, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// A required key that is absent or empty.
    #[error("missing required parameter '{key}' for {action}")]
    MissingParameter {
        /// The key that must be given.
        key: String,
        /// The action's full name (`process.stop`).
        action: String,
    },
    /// A key that may appear once, given again (the key).
    #[error("parameter '{}' is given more than once", clip(.0))]
    DuplicateParameter(String),
    /// A value that does not read as its key's type.
    #[error("invalid value '{}' for '{key}': expected {expected}", clip(.value))]
    InvalidValue {
        /// The key whose value is wrong.
        key: String,
        /// The value as given (quotes removed).
        value: String,
        /// What a valid value looks like (`a whole number`, `KEY=VALUE`, ...).
        expected: String,
    },
    /// Any other mistake in an action's parameters (`command` and `program` both given, ...); the text
    /// is the whole message.
    #[error("{0}")]
    Invalid(String),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// When a quoted value ends with what reads as a key (`web command:`), its closing quote was most
/// likely meant to open the next value: one opening quote is missing before.
fn missing_quote_hint(value: &str) -> String {
    let last_word = value.rsplit(char::is_whitespace).next().unwrap_or("");
    let key = last_word.strip_suffix(':').unwrap_or("");
    let reads_as_key = value.contains(char::is_whitespace)
        && !key.is_empty()
        && key.chars().all(|c| c.is_alphanumeric() || c == '_');
    if reads_as_key {
        format!(
            "; a quote may be missing: the quoted value read is '{}', so the quote after \
             '{key}:' closed it instead of opening the value of '{key}'",
            clip(value)
        )
    } else {
        String::new()
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
