//! Captured output lines, as kept in the in-memory ring and served by `process.logs`.

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// Which output stream a line came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The process's standard output (`stdout` on the wire).
    Stdout,
    /// The process's standard error (`stderr` on the wire).
    Stderr,
}

impl Stream {
    /// The wire name: `stdout` or `stderr` (as in `[stdout]` of a log line).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One captured line of output (without its newline).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the supervisor read the line (local time), not when the process wrote it.
    pub time: DateTime<Local>,
    /// The stream it came from.
    pub stream: Stream,
    /// The text, without its `\n` or `\r\n`; invalid UTF-8 is replaced with U+FFFD, and an overlong line
    /// arrives as several lines.
    pub text: String,
}

/// Captured lines with what a follower needs to ask for the next ones. Every line a process's ring
/// takes gets the next number, from 1.
///
/// ```
/// use pm_protocol::logs::LogPage;
/// let page: LogPage = serde_json::from_str(r#"{"next":42,"skipped":0,"lines":[]}"#).unwrap();
/// assert_eq!(page.next, 42); // ask `after:42` next time
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogPage {
    /// The number of the newest line captured (0 before the first): given back as `after`, it asks
    /// for what comes next.
    pub next: u64,
    /// Lines after `after` (after none when absent) that this page does not hold: gone from the ring
    /// before they were asked for, or left out by `lines`.
    pub skipped: u64,
    /// The lines, oldest first; the last is line `next`.
    pub lines: Vec<LogLine>,
}
