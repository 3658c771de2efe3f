//! The last lines of a log file, read back into the in-memory ring when a process is adopted again.
//!
//! Captured output is written as `<RFC 3339 time> [stdout|stderr] <text>`; a detached process writes
//! its output raw. Both read back: a line without the prefix is a stdout line at the file's mtime.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, Local};
use pm_protocol::{LogLine, Stream};

/// At most this much of the end of the file is read (bounds the time and memory of a refill).
pub const MAX_TAIL_BYTES: u64 = 1024 * 1024;

/// The last `max_lines` lines of `path` (fewer when the file is shorter or its last
/// [`MAX_TAIL_BYTES`] hold fewer). A missing or unreadable file has no lines. Blocks on the disk.
///
/// ```
/// use pm_actors::process::log_tail::read_tail;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("web.log");
/// std::fs::write(&path, "2024-05-01T10:00:00.000+00:00 stderr oops\nraw line\n").unwrap();
/// let lines = read_tail(&path, 10);
/// assert_eq!(lines.len(), 2);
/// assert_eq!((lines[0].text.as_str(), lines[0].stream), ("oops", pm_protocol::Stream::Stderr));
/// assert_eq!(lines[1].text, "raw line");
/// assert!(read_tail(&dir.path().join("absent.log"), 10).is_empty());
/// ```
pub fn read_tail(path: &Path, max_lines: usize) -> Vec<LogLine> {
    if max_lines == 0 {
        return Vec::new();
    }
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    let mtime: DateTime<Local> = meta
        .modified()
        .map(Into::into)
        .unwrap_or_else(|_| Local::now());
    let start = meta.len().saturating_sub(MAX_TAIL_BYTES);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file.take(MAX_TAIL_BYTES).read_to_end(&mut buf).is_err()
    {
        return Vec::new();
    }
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if start > 0 {
        // The first line was cut by the window: drop it.
        text = text
            .split_once('\n')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..]
        .iter()
        .map(|l| parse_line(l, mtime))
        .collect()
}

fn parse_line(line: &str, fallback: DateTime<Local>) -> LogLine {
    let prefixed = line.split_once(' ').and_then(|(time, rest)| {
        let time = DateTime::parse_from_rfc3339(time).ok()?;
        let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
        // `[stdout]`; files written before the format was one with the wire's have `stdout`.
        let stream = match stream.trim_start_matches('[').trim_end_matches(']') {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => return None,
        };
        Some(LogLine {
            time: time.with_timezone(&Local),
            stream,
            text: text.to_string(),
        })
    });
    prefixed.unwrap_or_else(|| LogLine {
        time: fallback,
        stream: Stream::Stdout,
        text: line.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_lines_of_a_long_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let body: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, body).unwrap();
        let lines = read_tail(&path, 3);
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["line 199997", "line 199998", "line 199999"]);
        // More lines asked than the window holds: whole lines only, none cut.
        let all = read_tail(&path, usize::MAX);
        assert!(all.len() < 200_000 && all[0].text.starts_with("line "));
        assert!(all.iter().all(|l| l.text.split(' ').count() == 2));
    }

    #[test]
    fn reads_both_stream_tags_and_raw_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.log");
        let body = "2024-05-01T10:00:00.123+00:00 [stdout] new form\n\
                    2024-05-01T10:00:01.000+00:00 stderr old form\n\
                    raw line\n";
        std::fs::write(&path, body).unwrap();
        let lines = read_tail(&path, 10);
        let got: Vec<_> = lines.iter().map(|l| (l.stream, l.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (Stream::Stdout, "new form"),
                (Stream::Stderr, "old form"),
                (Stream::Stdout, "raw line")
            ]
        );
        assert_eq!(lines[0].time.timestamp_subsec_millis(), 123);
    }
}
