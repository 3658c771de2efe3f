//! The two commands that go on printing: `watch` (until a line on stdin) and `logs -f`.

use std::io::Write;
use std::time::Duration;

use pm_protocol::command::{self as cmd, Command, Format};
use pm_protocol::logs::{LogLine, LogPage};
use pm_protocol::response;

use processmanager::client::Client;

use crate::{Failure, EXIT_DAEMON_ERROR};

/// How often `logs -f` asks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
/// The body of the frame that ends a watch (after the client sent a line).
const WATCH_ENDED: &str = "Watch ended";

/// Prints every event frame until a line comes on stdin (then asks the daemon to end the watch, and
/// prints its last frame), or the daemon closes the connection, or the user interrupts.
pub async fn watch_until_a_line(client: &mut Client) -> Result<u8, Failure> {
    let mut line_on_stdin = stdin_line();
    let mut stop_sent = false;
    let mut stdin_open = true;
    loop {
        let frame = tokio::select! {
            // `read_reply` is cancel safe: a frame half read when the line comes is finished next time.
            frame = client.read_reply() => frame?,
            got = &mut line_on_stdin, if stdin_open => {
                stdin_open = false;
                if got.is_ok() {
                    client.send_line("").await?;
                    stop_sent = true;
                }
                continue;
            }
        };
        let Some(frame) = frame else {
            return Ok(0);
        };
        print!("{}", frame.body);
        if stop_sent && frame.body.trim_end() == WATCH_ENDED {
            return Ok(0);
        }
    }
}

/// Resolves when a line (or the last unended one) comes on stdin; dropped unresolved at its end, so an
/// empty stdin (`</dev/null`, a closed pipe) never stops a watch. The read blocks, so it has a thread
/// of its own, which the process's exit ends.
fn stdin_line() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
            let _ = tx.send(());
        }
    });
    rx
}

/// Prints the last lines, then every new line once, in order: each read asks for the lines after the
/// newest one the last read saw (`after:`, in JSON, which carries the lines' numbers), and prints them
/// as the daemon's text would. Lines that came and went between two reads (more than the daemon keeps
/// in memory) are counted on stderr, never printed twice or silently lost.
pub async fn follow_logs(client: &mut Client, mut logs: cmd::Logs) -> Result<u8, Failure> {
    let as_json = logs.format == Format::Json;
    logs.format = Format::Json;
    loop {
        let reply = client
            .run(&Command::Logs(logs.clone()).to_heroscript())
            .await?;
        if reply.is_error() {
            // As any command's error at first; once lines are flowing, apart from them.
            if logs.after.is_none() {
                print!("{}", reply.body);
            } else {
                eprint!("{}", reply.body);
            }
            return Ok(EXIT_DAEMON_ERROR);
        }
        let page: LogPage = serde_json::from_str(&reply.body).map_err(|e| {
            Failure::Answer(format!(
                "the daemon's logs answer is not the JSON expected: {e}"
            ))
        })?;
        if logs.after.is_some() && page.skipped > 0 {
            eprintln!(
                "pmclient: {} lines came and went between two reads (the daemon keeps the last \
                 ones in memory); the log file has them",
                page.skipped
            );
        }
        let text = if as_json {
            json_lines(&page.lines)?
        } else {
            response::logs_text(&page.lines)
        };
        let mut out = std::io::stdout().lock();
        let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        if written.is_err() {
            // The reader is gone (a closed pipe): following is over.
            return Ok(0);
        }
        logs.after = Some(page.next);
        logs.lines = None;
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

/// One JSON object per line, as `logs -f --format json` prints them.
fn json_lines(lines: &[LogLine]) -> Result<String, Failure> {
    let mut text = String::new();
    for line in lines {
        let json = serde_json::to_string(line)
            .map_err(|e| Failure::Answer(format!("cannot write a log line as JSON: {e}")))?;
        text.push_str(&json);
        text.push('\n');
    }
    Ok(text)
}
