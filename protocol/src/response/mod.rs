//! The wire text: greeting and authentication lines, `**RESULT**` framing, sentences, status, list,
//! JSON, logs, events and help, plus the reader the client uses to take framed results back apart.

use std::fmt::Write as _;
use std::time::Duration;

use crate::heroscript::{format_duration, ParseError};
use crate::{LogLine, PmError, ProcessEvent, ProcessInfo};

/// Sent on connect (with its leading space, as the original).
pub const GREETING: &str = " ** Welcome: you are not authenticated, provide secret.\n";
/// Sent after the right secret.
pub const AUTHENTICATED: &str = " ** Welcome: you are authenticated.\n";
/// Sent after a wrong secret.
pub const INVALID_SECRET: &str = "Invalid secret. Try again or disconnect.\n";
/// The first line of a frame, followed by a space and the job id.
pub const RESULT_MARK: &str = "**RESULT**";
/// The last line of a frame.
pub const END_MARK: &str = "**ENDRESULT**";

/// Frames a body: `**RESULT** <jobid>`, the body (a newline is added when it lacks one), `**ENDRESULT**`.
/// An empty `jobid` gives `**RESULT** ` with a trailing space, as the original. [`FrameReader`] takes the
/// result back apart. A body line that is `**ENDRESULT**` after any number of spaces is sent with one more
/// leading space, so no body can end its frame early; `FrameReader` removes that space.
///
/// ```
/// use pm_protocol::response::frame;
/// assert_eq!(frame("e42", "Process 'web' started successfully"),
///            "**RESULT** e42\nProcess 'web' started successfully\n**ENDRESULT**\n");
/// ```
pub fn frame(jobid: &str, body: impl Into<String>) -> String {
    let mut body = body.into();
    if body.contains('\r') || body.contains(END_MARK) {
        return frame_line_by_line(jobid, &body);
    }
    // Nothing to stuff and no CR to drop: the body goes out unchanged (a long `list` is megabytes),
    // so the head is moved in front of it within its own buffer instead of copying the body into a
    // fresh one, whose every page would fault in.
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    let head = format!("{RESULT_MARK} {jobid}\n");
    body.reserve(head.len() + END_MARK.len() + 1);
    body.insert_str(0, &head);
    body.push_str(END_MARK);
    body.push('\n');
    body
}

/// [`frame`] for a body with a CR or a line that reads as the end mark: line by line.
fn frame_line_by_line(jobid: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + jobid.len() + 32);
    out.push_str(RESULT_MARK);
    out.push(' ');
    out.push_str(jobid);
    out.push('\n');
    for line in body.lines() {
        // A body line that reads as the end mark would end the frame early (a child can print
        // anything into its logs): like SMTP's dot-stuffing, it gets one more leading space, which
        // `FrameReader` takes off again.
        if looks_like_end_mark(line) {
            out.push(' ');
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(END_MARK);
    out.push('\n');
    out
}

/// Whether a body line would read as the end mark once stuffed lines lose a space: spaces, then the mark.
fn looks_like_end_mark(line: &str) -> bool {
    line.trim_end_matches('\r').trim_start_matches(' ') == END_MARK
}

/// The body answering a script that does not parse: `Error: line 2, col 17: ...`.
pub fn parse_error(err: &ParseError) -> String {
    format!("Error: {err}\n")
}

/// What a command did, for its sentence: `Process 'x' started successfully`, `Error starting process: ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `process.start`: `started`, `Error starting process`.
    Start,
    /// `process.stop`: `stopped`, `Error stopping process`.
    Stop,
    /// `process.restart`: `restarted`, `Error restarting process`.
    Restart,
    /// `process.delete`: `deleted`, `Error deleting process`.
    Delete,
    /// `process.kill`: `killed`, `Error killing process`.
    Kill,
    /// `process.signal`: `signalled`, `Error signalling process`.
    Signal,
    /// `process.attach`: `attached`, `Error attaching process`.
    Attach,
    /// `process.status`: `Error getting process status` (success answers the status itself).
    Status,
    /// `process.list`: `Error listing processes` (success answers the list itself).
    List,
    /// `process.logs`: `Error reading process logs` (success answers the lines themselves).
    Logs,
    /// `process.watch`: `Error watching processes` (success answers the events themselves).
    Watch,
    /// `process.stop all:true`: `Error stopping processes` (success is [`stopped_all`]'s sentence).
    StopAll,
}

impl Operation {
    /// The action name of the command that asks for it (`process.start`; `process.stop` for
    /// [`Operation::StopAll`]), as in [`Command::ACTIONS`](crate::command::Command::ACTIONS).
    pub fn action(self) -> &'static str {
        match self {
            Operation::Start => "process.start",
            Operation::Stop | Operation::StopAll => "process.stop",
            Operation::Restart => "process.restart",
            Operation::Delete => "process.delete",
            Operation::Kill => "process.kill",
            Operation::Signal => "process.signal",
            Operation::Attach => "process.attach",
            Operation::Status => "process.status",
            Operation::List => "process.list",
            Operation::Logs => "process.logs",
            Operation::Watch => "process.watch",
        }
    }

    /// The words after `Error` in a failure sentence.
    fn doing(self) -> &'static str {
        match self {
            Operation::Start => "starting process",
            Operation::Stop => "stopping process",
            Operation::Restart => "restarting process",
            Operation::Delete => "deleting process",
            Operation::Kill => "killing process",
            Operation::Signal => "signalling process",
            Operation::Attach => "attaching process",
            Operation::Status => "getting process status",
            Operation::List => "listing processes",
            Operation::Logs => "reading process logs",
            Operation::Watch => "watching processes",
            Operation::StopAll => "stopping processes",
        }
    }

    /// The word in a success sentence.
    fn done(self) -> &'static str {
        match self {
            Operation::Start => "started",
            Operation::Stop | Operation::StopAll => "stopped",
            Operation::Restart => "restarted",
            Operation::Delete => "deleted",
            Operation::Kill => "killed",
            Operation::Signal => "signalled",
            Operation::Attach => "attached",
            Operation::Status | Operation::List | Operation::Logs | Operation::Watch => "read",
        }
    }
}

/// `Process 'x' started successfully` (with its newline).
pub fn success(op: Operation, name: &str) -> String {
    format!("Process '{name}' {} successfully\n", op.done())
}

/// `Error starting process: process with name 'x' already exists` (with its newline).
pub fn failure(op: Operation, err: &PmError) -> String {
    format!("Error {}: {err}\n", op.doing())
}

/// [`success`] or [`failure`] for the outcome of `op` on `name`.
pub fn outcome<T>(op: Operation, name: &str, result: &Result<T, PmError>) -> String {
    match result {
        Ok(_) => success(op, name),
        Err(e) => failure(op, e),
    }
}

/// The answer to a stop of every process: `Stopped 3 processes` when each stop succeeded; otherwise
/// `Error stopping processes: 2 stopped, 1 failed` and one `'<name>': <error>` line per failure.
///
/// ```
/// use pm_protocol::response::stopped_all;
/// use pm_protocol::PmError;
/// assert_eq!(stopped_all(3, &[]), "Stopped 3 processes\n");
/// assert_eq!(stopped_all(1, &[]), "Stopped 1 process\n");
/// let failed = [("db".to_string(), PmError::Internal("mailbox closed".into()))];
/// assert_eq!(stopped_all(2, &failed),
///            "Error stopping processes: 2 stopped, 1 failed\n'db': internal error: mailbox closed\n");
/// ```
pub fn stopped_all(stopped: usize, failed: &[(String, PmError)]) -> String {
    if failed.is_empty() {
        let noun = if stopped == 1 { "process" } else { "processes" };
        return format!("Stopped {stopped} {noun}\n");
    }
    let mut out = format!(
        "Error {}: {stopped} stopped, {} failed\n",
        Operation::StopAll.doing(),
        failed.len()
    );
    for (name, err) in failed {
        let _ = writeln!(out, "'{name}': {err}");
    }
    out
}

/// `status` as text: `Name:`, `Command:`, `Status:`, `PID:`, `CPU:`, `Memory:`, `Started:`, then the lines
/// that apply (`State:`, `Restarts:`, `Uptime:`, `Exit:`, ...).
pub fn status_text(p: &ProcessInfo) -> String {
    let mut out = String::new();
    // One `Key: value` per line: a multi-line command shows its newlines as `\n` (JSON has it exactly).
    let mut line = |key: &str, value: &dyn std::fmt::Display| {
        let value = value.to_string();
        let _ = writeln!(out, "{key}: {}", value.replace('\n', "\\n"));
    };
    line("Name", &p.name);
    line("Command", &p.command);
    line("Status", &p.status);
    line("PID", &p.pid);
    line("CPU", &format_args!("{:.2}%", p.cpu_percent));
    line("Memory", &format_args!("{:.2} MB", p.memory_mb));
    let started = if p.start_time.is_empty() {
        "never started"
    } else {
        &p.start_time
    };
    line("Started", &started);
    line("State", &p.state);
    line("Restarts", &p.restarts);
    if let Some(uptime) = p.uptime_secs {
        line("Uptime", &uptime_text(uptime));
    }
    if p.exit_code.is_some() || p.exit_signal.is_some() {
        let how = match (&p.exit_signal, p.exit_code) {
            (Some(sig), _) => format!("killed by signal {sig}"),
            (None, Some(code)) => format!("exited with code {code}"),
            (None, None) => String::new(),
        };
        line("Exit", &how);
    }
    if !p.end_time.is_empty() {
        line("Ended", &p.end_time);
    }
    line("Log", &if p.log_enabled { "enabled" } else { "disabled" });
    let optional: [(&str, Option<&str>); 5] = [
        ("Cron", Some(p.cron.as_str())),
        ("Next run", p.next_run.as_deref()),
        ("Next restart", p.next_restart.as_deref()),
        ("Job ID", Some(p.job_id.as_str())),
        ("Error", Some(p.error.as_str())),
    ];
    for (key, value) in optional {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            line(key, &v);
        }
    }
    if p.skipped_runs > 0 {
        line("Skipped runs", &p.skipped_runs);
    }
    if p.deadline > 0 {
        line("Deadline", &format_args!("{}s", p.deadline));
    }
    if p.detached {
        line("Detached", &"yes");
    }
    if p.attached {
        line("Attached", &"yes");
    }
    if !p.env_files.is_empty() {
        line("Env files", &p.env_files.join(", "));
    }
    // Readiness and health (issue 14, part D).
    if let Some(health) = p.health {
        line("Health", &health);
    }
    if let Some(since) = &p.ready_since {
        line("Ready since", since);
    }
    if !p.health_detail.is_empty() {
        line("Health detail", &p.health_detail);
    }
    if !p.waiting_for.is_empty() {
        line("Waiting for", &p.waiting_for.join(", "));
    }
    // Containment and limits (issue 18). Group mode, the default, shows in the JSON only.
    if !p.cgroup.is_empty() {
        line("Containment", &p.containment);
        line("Cgroup", &p.cgroup);
    }
    if let Some(max) = p.memory_max {
        line("Memory max", &crate::status::bytes_text(max));
    }
    if let Some(current) = p.memory_current {
        line("Memory current", &crate::status::bytes_text(current));
    }
    if p.oom_kills > 0 {
        line("OOM kills", &p.oom_kills);
    }
    out
}

/// `list` as text: an aligned table NAME STATUS PID CPU MEM UPTIME RESTARTS, sorted by name, with a
/// HEALTH column after STATUS when a process listed has readiness or health checks.
pub fn list_text(processes: &[ProcessInfo]) -> String {
    let mut sorted: Vec<&ProcessInfo> = processes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let with_health = sorted.iter().any(|p| p.health.is_some());
    let mut header: Vec<String> = ["NAME", "STATUS", "PID", "CPU", "MEM", "UPTIME", "RESTARTS"]
        .map(String::from)
        .into();
    if with_health {
        header.insert(2, "HEALTH".into());
    }
    let mut rows = vec![header];
    for p in sorted {
        let mut row = vec![
            p.name.clone(),
            p.status.to_string(),
            if p.pid > 0 {
                p.pid.to_string()
            } else {
                "-".into()
            },
            format!("{:.1}%", p.cpu_percent),
            format!("{:.1} MB", p.memory_mb),
            p.uptime_secs.map_or_else(|| "-".into(), uptime_text),
            p.restarts.to_string(),
        ];
        if with_health {
            row.insert(2, p.health.map_or_else(|| "-".into(), |h| h.to_string()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One process as pretty JSON (the original's fields first, then ours), ending with a newline.
pub fn status_json(p: &ProcessInfo) -> String {
    pretty_json(p)
}

/// Every process as a pretty JSON array sorted by name, ending with a newline.
pub fn list_json(processes: &[ProcessInfo]) -> String {
    let mut sorted: Vec<&ProcessInfo> = processes.iter().collect();
    // The registry already answers in name order; a sorted slice costs one pass here.
    if !sorted.is_sorted_by(|a, b| a.name <= b.name) {
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
    }
    list_json_streamed(&sorted, processes.len())
}

/// Captured lines: `<RFC 3339 time, milliseconds> [stdout] text`, one per line, as the log file has them.
pub fn logs_text(lines: &[LogLine]) -> String {
    let mut out = String::new();
    for l in lines {
        let _ = writeln!(
            out,
            "{} [{}] {}",
            crate::status::time_text(&l.time),
            l.stream.as_str(),
            l.text
        );
    }
    out
}

/// Captured lines and their numbers as pretty JSON (`process.logs format:json`), ending with a newline.
pub fn logs_json(page: &crate::logs::LogPage) -> String {
    pretty_json(page)
}

/// One watched event as text: `<time> web (pid 12): status running -> stopped (exited with code 0)`.
pub fn event_text(e: &ProcessEvent) -> String {
    let change = match &e.kind {
        crate::EventKind::Status { old, new } => format!("status {old} -> {new}"),
        crate::EventKind::State { old, new } => format!("state {old} -> {new}"),
        crate::EventKind::Ready => "ready".to_string(),
        crate::EventKind::Unready { detail } => format!("unready: {detail}"),
        crate::EventKind::Unhealthy { detail } => format!("unhealthy: {detail}"),
        crate::EventKind::Waiting { waiting_for } => {
            format!("waiting for {}", waiting_for.join(", "))
        }
    };
    let exit = e
        .exit
        .as_ref()
        .map_or_else(String::new, |x| format!(" ({})", x.describe()));
    format!(
        "{} {} (pid {}): {change}{exit}\n",
        crate::status::time_text(&e.time),
        e.name,
        e.pid
    )
}

/// One watched event as pretty JSON, ending with a newline.
pub fn event_json(e: &ProcessEvent) -> String {
    pretty_json(e)
}

fn pretty_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    pretty_json_sized(value, 128)
}

/// `list format:json` of records that come one at a time (the registry's, copied through one
/// record): `records` serializes as the array [`list_json`] would write, in name order. The bytes are
/// [`list_json`]'s.
pub fn list_json_streamed<T: serde::Serialize>(records: &T, count: usize) -> String {
    // Sized for the whole array up front, so a long list is not copied again at every doubling,
    // nor at the end by `frame`'s head and end mark: over what a record takes (about 730 bytes for
    // a `sleep` in cgroup mode; a guess just short of it copied megabytes once more). Pages the
    // body does not reach are never touched.
    pretty_json_sized(records, 1024 * count + 256)
}

/// [`pretty_json`] into a buffer of `capacity` bytes to begin with.
fn pretty_json_sized<T: serde::Serialize + ?Sized>(value: &T, capacity: usize) -> String {
    let mut out = Vec::with_capacity(capacity + 1);
    match serde_json::to_writer_pretty(&mut out, value) {
        Ok(()) => {
            out.push(b'\n');
            // serde_json writes only UTF-8, so this cannot fail.
            String::from_utf8(out).unwrap_or_else(|e| format!("Error encoding JSON: {e}\n"))
        }
        Err(e) => format!("Error encoding JSON: {e}\n"),
    }
}

/// Whole seconds as `1h2m3s`.
fn uptime_text(secs: f64) -> String {
    format_duration(Duration::from_secs(secs.max(0.0) as u64))
}

/// The help text (the body of the frame answering `h`, `?` or `!!help`).
pub const HELP: &str = "\
Available commands:

Process management commands:
  !!process.start name:'<name>' command:'<command>' [log:true|false] [deadline:<duration>] [cron:'<schedule>'] [jobid:'<id>']
      [program:'<program>' args:'<arg>' ...] [env:'KEY=VALUE' ...] [env_file:'<path>' ...] [cwd:'<dir>'] [restarts:<n>|-1]
      [restart_policy:always|on-failure|never] [detach:true] [template:true [run_on_startup:true]]
      [stop_signal:'<signal>'] [grace:<duration>] [user:'<user>'] [group:'<group>']
  !!process.list [format:'json']
  !!process.status name:'<name>' [format:'json']
  !!process.stop name:'<name>' | all:true
  !!process.restart name:'<name>'
  !!process.delete name:'<name>'
  !!process.kill name:'<name>'
  !!process.signal name:'<name>' signal:'<HUP|TERM|...|number>' [group:true]
  !!process.logs name:'<name>' [lines:<n>] [after:<n>] [format:'json']
  !!process.attach pid:<pid> name:'<name>'
  !!process.watch [name:'<name>' ...] [format:'json']
  !!process.apply stack:'<stack as JSON>' [prune:true] [dry_run:true] [format:'json']
  !!daemon.reload

Special commands:
  !!help, ? or h - Show this help text
  !!exit or !!quit or q - Close the connection
  <empty line> - Run the pending command

Durations: 30 (seconds), 30s, 5m, 1h30m, 500ms.
";

/// One framed result read back: its job id and its body (each line with its newline).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The text after `**RESULT** `, trimmed; empty when the command carried no `jobid`.
    pub jobid: String,
    /// Every line between the marks, each ending with `\n`; empty for an empty body.
    pub body: String,
}

impl Frame {
    /// Whether the daemon answered with an error (the body starts with `Error`).
    pub fn is_error(&self) -> bool {
        self.body.starts_with("Error")
    }
}

/// Reads frames back from lines, for the client; lines outside a frame (the greeting) are skipped.
///
/// ```
/// use pm_protocol::response::FrameReader;
/// let mut r = FrameReader::new();
/// assert_eq!(r.push_line("**RESULT** e42"), None);
/// assert_eq!(r.push_line("Process 'web' started successfully"), None);
/// let frame = r.push_line("**ENDRESULT**").unwrap();
/// assert_eq!((frame.jobid.as_str(), frame.body.as_str()), ("e42", "Process 'web' started successfully\n"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct FrameReader {
    current: Option<Frame>,
}

impl FrameReader {
    /// A reader outside any frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a frame has started and not ended.
    pub fn in_frame(&self) -> bool {
        self.current.is_some()
    }

    /// Reads one line (with or without its `\r\n`); returns the frame it completes.
    pub fn push_line(&mut self, line: &str) -> Option<Frame> {
        let line = line.trim_end_matches(['\n', '\r']);
        match &mut self.current {
            None => {
                if let Some(rest) = line.strip_prefix(RESULT_MARK) {
                    self.current = Some(Frame {
                        jobid: rest.trim().to_string(),
                        body: String::new(),
                    });
                }
                None
            }
            Some(_) if line == END_MARK => self.current.take(),
            Some(frame) => {
                let line = match line.strip_prefix(' ') {
                    Some(unstuffed) if looks_like_end_mark(line) => unstuffed,
                    _ => line,
                };
                frame.body.push_str(line);
                frame.body.push('\n');
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
