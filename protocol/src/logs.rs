//! Captured output lines, as kept in the in-memory ring and served by `process.logs`.

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};

/// Which output stream a line came from.
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
