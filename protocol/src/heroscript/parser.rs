//! The line-by-line heroscript parser; the session feeds it one line at a time to know whether a quote is open.

use super::{Action, Param, ParseError, ParseErrorKind};

/// The most `!` an action line may start with.
const MAX_BANGS: usize = 4;

/// Parses a whole script into its actions, in order.
///
/// ```
/// use pm_protocol::heroscript::parse;
/// let err = parse("!!!!!process.list").unwrap_err();
/// assert_eq!(err.to_string(), "line 1, col 1: too many '!' (5): an action starts with one to four '!'");
/// ```
pub fn parse(script: &str) -> Result<Vec<Action>, ParseError> {
    let mut parser = Parser::new();
    for line in script.split('\n') {
        parser.feed_line(line);
    }
    parser.finish()
}

/// Whether `line` starts an action: its first non-blank character is `!`.
pub fn is_action_line(line: &str) -> bool {
    line.trim_start().starts_with('!')
}

/// A quoted value still open at the end of a line.
#[derive(Debug, Clone)]
struct OpenQuote {
    quote: char,
    value: String,
    key: String,
    key_pos: (usize, usize),
    value_pos: (usize, usize),
}

/// An incremental parser: feed lines, then [`Parser::finish`]. It keeps the first error and goes on
/// reading (so [`Parser::in_quote`] stays meaningful after an error).
#[derive(Debug, Clone, Default)]
pub struct Parser {
    line_no: usize,
    actions: Vec<Action>,
    open: Option<OpenQuote>,
    error: Option<ParseError>,
}

impl Parser {
    /// A parser at line 1 of an empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the lines so far end inside a quoted value (the next line is data).
    pub fn in_quote(&self) -> bool {
        self.open.is_some()
    }

    /// Where the quoted value still open at the end of the lines so far began (its line, from 1),
    /// and its quote character.
    pub fn open_quote(&self) -> Option<(usize, char)> {
        self.open.as_ref().map(|o| (o.value_pos.0, o.quote))
    }

    /// The actions read so far (complete parameters only).
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Whether nothing but blanks and comments has been read.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.error.is_none() && self.open.is_none()
    }

    /// Reads one line (without its `\n`).
    pub fn feed_line(&mut self, line: &str) {
        self.line_no += 1;
        let chars: Vec<char> = line.chars().collect();
        if let Err(e) = self.read_line(&chars) {
            self.open = None;
            self.error.get_or_insert(e);
        }
    }

    /// The actions of the script, or its first error (an unterminated quote included).
    pub fn finish(self) -> Result<Vec<Action>, ParseError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(open) = self.open {
            return Err(ParseError::new(
                open.value_pos.0,
                open.value_pos.1,
                ParseErrorKind::UnterminatedQuote {
                    opened_line: open.value_pos.0,
                },
            ));
        }
        Ok(self.actions)
    }

    fn err(&self, index: usize, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.line_no, index + 1, kind)
    }

    fn read_line(&mut self, chars: &[char]) -> Result<(), ParseError> {
        let mut i = 0;
        if let Some(open) = self.open.take() {
            match self.read_quoted(chars, 0, open)? {
                Some(next) => i = next,
                None => return Ok(()),
            }
        } else {
            let indent = chars.iter().take_while(|c| c.is_whitespace()).count();
            let rest = &chars[indent..];
            if rest.is_empty() || rest[0] == '#' || rest.starts_with(&['/', '/']) {
                return Ok(());
            }
            if rest[0] == '!' {
                i = self.read_action_name(chars, indent)?;
            } else if self.actions.is_empty() {
                return Err(self.err(indent, ParseErrorKind::TextOutsideAction));
            } else if indent < 2 && !chars[..indent].contains(&'\t') {
                return Err(self.err(indent, ParseErrorKind::NotIndented));
            }
        }
        self.read_params(chars, i)
    }

    /// Reads `!!actor.action` starting at `start`; returns the index after it.
    fn read_action_name(&mut self, chars: &[char], start: usize) -> Result<usize, ParseError> {
        let bangs = chars[start..].iter().take_while(|&&c| c == '!').count();
        if bangs > MAX_BANGS {
            return Err(self.err(start, ParseErrorKind::TooManyBangs(bangs)));
        }
        let name_start = start + bangs;
        let name_end = name_start
            + chars[name_start..]
                .iter()
                .take_while(|c| !c.is_whitespace())
                .count();
        let name: String = chars[name_start..name_end].iter().collect();
        let (actor, action) = match name.split_once('.') {
            Some((actor, action)) => (actor, action),
            None => ("", name.as_str()),
        };
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !valid_part(action) || (name.contains('.') && !valid_part(actor)) {
            return Err(self.err(name_start, ParseErrorKind::BadActionName(name)));
        }
        let (actor, action) = (actor.to_ascii_lowercase(), action.to_ascii_lowercase());
        self.actions.push(Action {
            actor,
            name: action,
            line: self.line_no,
            col: start + 1,
            params: Vec::new(),
        });
        Ok(name_end)
    }

    /// Reads `key:value` pairs from `i` to the end of the line.
    fn read_params(&mut self, chars: &[char], mut i: usize) -> Result<(), ParseError> {
        loop {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i >= chars.len() || chars[i] == '#' || chars[i..].starts_with(&['/', '/']) {
                return Ok(());
            }
            let key_start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-')) {
                i += 1;
            }
            if i == key_start {
                let found: String = chars[i..]
                    .iter()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return Err(self.err(key_start, ParseErrorKind::ExpectedKey(found)));
            }
            let key: String = chars[key_start..i]
                .iter()
                .collect::<String>()
                .to_lowercase();
            if i >= chars.len() || chars[i] != ':' {
                let word: String = chars[key_start..]
                    .iter()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                return Err(self.err(key_start, ParseErrorKind::ExpectedColon(word)));
            }
            i += 1;
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            let key_pos = (self.line_no, key_start + 1);
            let value_pos = (self.line_no, i + 1);
            if i < chars.len() && matches!(chars[i], '\'' | '"') {
                let open = OpenQuote {
                    quote: chars[i],
                    value: String::new(),
                    key,
                    key_pos,
                    value_pos,
                };
                match self.read_quoted(chars, i + 1, open)? {
                    Some(next) => i = next,
                    None => return Ok(()),
                }
            } else {
                let value_start = i;
                while i < chars.len() && !chars[i].is_whitespace() {
                    i += 1;
                }
                let value = chars[value_start..i].iter().collect();
                self.push_param(key, value, key_pos, value_pos);
            }
        }
    }

    /// Reads a quoted value from `i`; returns the index after the closing quote, or `None` when the
    /// line ends inside the quote (which then stays open).
    fn read_quoted(
        &mut self,
        chars: &[char],
        mut i: usize,
        mut open: OpenQuote,
    ) -> Result<Option<usize>, ParseError> {
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' && i + 1 < chars.len() && matches!(chars[i + 1], '\'' | '"' | '\\') {
                open.value.push(chars[i + 1]);
                i += 2;
            } else if c == open.quote {
                i += 1;
                if i < chars.len() && !chars[i].is_whitespace() {
                    let kind = ParseErrorKind::ExpectedSpaceAfterQuote { value: open.value };
                    return Err(self.err(i, kind));
                }
                self.push_param(open.key, open.value, open.key_pos, open.value_pos);
                return Ok(Some(i));
            } else {
                open.value.push(c);
                i += 1;
            }
        }
        open.value.push('\n');
        self.open = Some(open);
        Ok(None)
    }

    fn push_param(
        &mut self,
        key: String,
        value: String,
        key_pos: (usize, usize),
        value_pos: (usize, usize),
    ) {
        if let Some(action) = self.actions.last_mut() {
            action.params.push(Param {
                key,
                value,
                line: key_pos.0,
                col: key_pos.1,
                value_line: value_pos.0,
                value_col: value_pos.1,
            });
        }
    }
}
