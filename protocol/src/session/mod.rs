//! The socket session's line state machine: lines in, events out, no I/O.
//!
//! Before authentication every non-blank line is a secret attempt. After it, lines are buffered and the
//! buffer runs on a blank line, on a new action line, or at the end of input, each only outside an open
//! quote. `q`, `!!quit`, `!!exit` quit and `h`, `?`, `!!help` ask for help, also only outside a quote.
//! A quote left open swallows every line, so the machine says when to point it out
//! ([`SessionEvent::OpenQuoteNotice`]): at the second blank line inside it, or when the caller's timer
//! finds the session idle inside it ([`SessionMachine::idle_in_quote`]); once per open quote.
//!
//! ```
//! use pm_protocol::session::{SessionEvent, SessionMachine};
//! let mut s = SessionMachine::new();
//! assert_eq!(s.feed_line(b"secret\r"), vec![SessionEvent::SecretAttempt("secret".into())]);
//! s.set_authenticated(true);
//! assert!(s.feed_line(b"!!process.list").is_empty());
//! let events = s.feed_line(b"");
//! assert!(matches!(&events[0], SessionEvent::Run { result: Ok(cmds), .. } if cmds.len() == 1));
//! ```

use crate::command::{commands_from_actions, Command};
use crate::heroscript::{is_action_line, ParseError, Parser};

/// Telnet "interpret as command" byte.
const IAC: u8 = 0xFF;
/// Telnet subnegotiation begin and end.
const SB: u8 = 0xFA;
const SE: u8 = 0xF0;
/// Telnet WILL, WONT, DO, DONT (each followed by one option byte).
const OPTION_VERBS: std::ops::RangeInclusive<u8> = 0xFB..=0xFE;

/// What the session must do after a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// Compare this (trimmed) line with the secret, then call [`SessionMachine::set_authenticated`].
    SecretAttempt(String),
    /// Run a script and answer one framed result carrying `jobid`.
    Run {
        /// The script as received (CR and telnet bytes removed), lines joined with `\n`.
        script_text: String,
        /// The commands, or the script's first error (answered as a frame whose body starts with `Error`).
        result: Result<Vec<Command>, ParseError>,
        /// The first action's `jobid`, empty when none.
        jobid: String,
    },
    /// Answer the help text.
    Help,
    /// End the session.
    Quit,
    /// Send this line as it is, outside any frame: the session is inside a quote that swallows
    /// every line (`q` included) until it closes.
    OpenQuoteNotice(String),
}

/// Blank lines inside an open quote that are still data without a word: a value may hold one
/// blank line on purpose, a person at a terminal who presses enter twice waits for an answer.
const BLANKS_BEFORE_NOTICE: usize = 2;

/// The line telling a person that the lines go into a quoted value opened on `line` with `quote`.
///
/// ```
/// use pm_protocol::session::open_quote_notice;
/// assert_eq!(
///     open_quote_notice(3, '\''),
///     " ** Note: still inside the quote opened on line 3; close it with ' \
///      (until then every line, q included, is part of the value)\n"
/// );
/// ```
pub fn open_quote_notice(line: usize, quote: char) -> String {
    format!(
        " ** Note: still inside the quote opened on line {line}; close it with {quote} \
         (until then every line, q included, is part of the value)\n"
    )
}

/// The pure state of one session. Feed it lines (without their `\n`); it never panics, whatever the bytes.
///
/// The caller owns the socket: it checks [`SessionEvent::SecretAttempt`]s, runs
/// [`SessionEvent::Run`]s and answers each with one frame, and closes on [`SessionEvent::Quit`].
///
/// ```
/// use pm_protocol::session::{SessionEvent, SessionMachine};
/// use pm_protocol::Command;
///
/// let mut s = SessionMachine::new();
/// s.set_authenticated(true);
/// // A quoted value may span lines: the blank line inside it is data, not "run".
/// assert!(s.feed_line(b"!!process.start name:job jobid:j7 command:'echo one").is_empty());
/// assert!(s.feed_line(b"").is_empty());
/// assert!(s.in_quote());
/// assert!(s.feed_line(b"echo two'").is_empty());
/// // `q` runs what is pending, then quits.
/// let events = s.feed_line(b"q");
/// match &events[..] {
///     [SessionEvent::Run { result: Ok(cmds), jobid, .. }, SessionEvent::Quit] => {
///         assert_eq!(jobid, "j7");
///         assert!(matches!(&cmds[0], Command::Start(st) if st.command.display() == "echo one\n\necho two"));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionMachine {
    authenticated: bool,
    script: String,
    parser: Parser,
    /// Blank lines read inside the open quote.
    blanks_in_quote: usize,
    /// Whether the open quote was pointed out already.
    quote_noticed: bool,
}

impl SessionMachine {
    /// A session that waits for its secret.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the session authenticated (after a right secret) or not.
    pub fn set_authenticated(&mut self, authenticated: bool) {
        self.authenticated = authenticated;
    }

    /// Whether the secret was accepted.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether lines are waiting to run.
    pub fn has_pending(&self) -> bool {
        !self.script.is_empty()
    }

    /// Bytes of script buffered so far (for the caller's size limit).
    pub fn pending_len(&self) -> usize {
        self.script.len()
    }

    /// Whether the buffered lines end inside a quoted value.
    pub fn in_quote(&self) -> bool {
        self.parser.in_quote()
    }

    /// Forgets the buffered lines (after the caller refused an oversized script).
    pub fn discard_pending(&mut self) {
        self.script.clear();
        self.parser = Parser::new();
        self.quote_closed();
    }

    /// Whether the caller should time the session's silence: it is inside a quote not yet pointed out.
    pub fn awaits_quote_notice(&self) -> bool {
        self.authenticated && self.in_quote() && !self.quote_noticed
    }

    /// The caller's timer found no line for a while: the notice, when the session is inside a quote
    /// not yet pointed out.
    pub fn idle_in_quote(&mut self) -> Option<SessionEvent> {
        if !self.awaits_quote_notice() {
            return None;
        }
        self.quote_notice()
    }

    /// The notice for the open quote; it is not given again for the same quote.
    fn quote_notice(&mut self) -> Option<SessionEvent> {
        let (line, quote) = self.parser.open_quote()?;
        self.quote_noticed = true;
        Some(SessionEvent::OpenQuoteNotice(open_quote_notice(
            line, quote,
        )))
    }

    fn quote_closed(&mut self) {
        self.blanks_in_quote = 0;
        self.quote_noticed = false;
    }

    /// Reads one line (its `\n` removed); CR and telnet negotiation bytes are dropped here.
    pub fn feed_line(&mut self, line: &[u8]) -> Vec<SessionEvent> {
        let cleaned = clean_line(line);
        let text = String::from_utf8_lossy(&cleaned);
        if !self.authenticated {
            let secret = text.trim();
            return if secret.is_empty() {
                Vec::new()
            } else {
                vec![SessionEvent::SecretAttempt(secret.to_string())]
            };
        }
        if let Some(open) = self.parser.open_quote() {
            self.append(&text);
            if self.parser.open_quote() != Some(open) {
                // Closed (and maybe another opened): a new quote is pointed out afresh.
                self.quote_closed();
                return Vec::new();
            }
            if text.trim().is_empty() {
                self.blanks_in_quote += 1;
            }
            if self.blanks_in_quote >= BLANKS_BEFORE_NOTICE && !self.quote_noticed {
                return self.quote_notice().into_iter().collect();
            }
            return Vec::new();
        }
        let word = text.trim().to_ascii_lowercase();
        let mut events = Vec::new();
        match word.as_str() {
            "" => return self.run_pending().into_iter().collect(),
            "q" | "!!quit" | "!!exit" => {
                events.extend(self.run_pending());
                events.push(SessionEvent::Quit);
            }
            "h" | "?" | "!!help" => {
                events.extend(self.run_pending());
                events.push(SessionEvent::Help);
            }
            _ => {
                // Comments before the first action stay with it.
                if is_action_line(&text) && !self.parser.is_empty() {
                    events.extend(self.run_pending());
                }
                self.append(&text);
            }
        }
        events
    }

    /// End of input: runs what is buffered (an open quote is then an error).
    pub fn finish(&mut self) -> Vec<SessionEvent> {
        if !self.authenticated {
            return Vec::new();
        }
        self.run_pending().into_iter().collect()
    }

    fn append(&mut self, line: &str) {
        if !self.script.is_empty() {
            self.script.push('\n');
        }
        self.script.push_str(line);
        self.parser.feed_line(line);
    }

    /// Takes the buffered script; `None` when it holds nothing but blanks and comments.
    fn run_pending(&mut self) -> Option<SessionEvent> {
        self.quote_closed();
        let parser = std::mem::take(&mut self.parser);
        let script_text = std::mem::take(&mut self.script);
        if parser.is_empty() {
            return None;
        }
        let jobid = parser
            .actions()
            .first()
            .and_then(|a| a.non_empty("jobid"))
            .unwrap_or("")
            .to_string();
        let result = parser
            .finish()
            .and_then(|actions| commands_from_actions(&actions));
        Some(SessionEvent::Run {
            script_text,
            result,
            jobid,
        })
    }
}

/// Removes telnet IAC sequences and carriage returns (with the NUL telnet may send after a CR).
pub fn clean_line(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            IAC => {
                i += match line.get(i + 1) {
                    Some(verb) if OPTION_VERBS.contains(verb) => 3,
                    Some(&SB) => subnegotiation_len(&line[i..]),
                    Some(_) => 2,
                    None => 1,
                };
            }
            b'\r' => {
                i += if line.get(i + 1) == Some(&0) { 2 } else { 1 };
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Length of `IAC SB ... IAC SE` at the start of `bytes` (to the end when it never closes).
fn subnegotiation_len(bytes: &[u8]) -> usize {
    bytes
        .windows(2)
        .skip(2)
        .position(|w| w == [IAC, SE])
        .map_or(bytes.len(), |p| p + 4)
}

#[cfg(test)]
mod tests;
