//! Output capture: pipes read line by line into an in-memory ring, a rotated log file and/or a channel.
//!
//! Readers are tokio tasks on the actor's arbiter (non-blocking pipe reads, so a fast child never blocks
//! on a full pipe); file writes go to one shared writer thread through a bounded channel, so no actor
//! thread ever waits on the disk. A line longer than [`MAX_LINE`] is split; invalid UTF-8 is kept lossily.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Local};
use pm_protocol::logs::LogPage;
use pm_protocol::{LogLine, LogSettings, Stream};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Lines longer than this are split into several lines.
pub const MAX_LINE: usize = 64 * 1024;

/// The last lines of output, shared by the readers and the actor.
#[derive(Debug)]
pub struct LogRing {
    lines: VecDeque<LogLine>,
    capacity: usize,
    /// Lines taken since the ring was made: the number of the newest line (see [`LogPage`]).
    taken: u64,
}

impl LogRing {
    /// A ring that keeps the last `capacity` lines; memory is taken only as lines arrive.
    pub fn new(capacity: usize) -> Self {
        LogRing {
            // Grown as lines come: a quiet process (most of a thousand) costs nothing, where a ring
            // allocated whole up front costs 48 bytes a line (48 KB at the default 1,000 lines).
            lines: VecDeque::new(),
            capacity,
            taken: 0,
        }
    }

    /// Adds a line, dropping the oldest once the ring is full.
    pub fn push(&mut self, line: LogLine) {
        if self.capacity == 0 {
            return;
        }
        let len = self.lines.len();
        if len == self.capacity {
            self.lines.pop_front();
        } else if len == self.lines.capacity() {
            // Doubling, but never past the ring's size.
            self.lines
                .reserve_exact(len.max(8).min(self.capacity - len));
        }
        self.lines.push_back(line);
        self.taken += 1;
    }

    /// The lines after line `after` (every line kept when `None`), the last `n` of them when given.
    /// A number past the newest line belongs to a ring before this one (the process was deleted and
    /// started again under its name): every line kept is after it.
    pub fn page(&self, after: Option<u64>, n: Option<usize>) -> LogPage {
        let next = self.taken;
        let after = after.filter(|&a| a <= next).unwrap_or(0);
        let held = self.lines.len() as u64;
        // Lines after `after` that the ring still holds: those newer than both.
        let first_held = next - held + 1;
        let available = next - after.max(first_held - 1);
        let take = n.map_or(available, |n| available.min(n as u64));
        let lines = self
            .lines
            .iter()
            .skip((held - take) as usize)
            .cloned()
            .collect();
        LogPage {
            next,
            skipped: next - after - take,
            lines,
        }
    }
}

/// A log file rotated by size: `name.log`, then `name.log.1` ... `name.log.<keep>`.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_bytes: u64,
    keep: u32,
    /// The last write error (disk full, ...), cleared by the next successful write.
    pub error: Option<String>,
    /// The user and group the file is given to when it is created (a process run as another user).
    pub owner: Option<(u32, u32)>,
}

impl RotatingFile {
    /// A log file at `path`, rotated by `settings` (opened on the first write).
    pub fn new(path: PathBuf, settings: &LogSettings) -> Self {
        RotatingFile {
            path,
            file: None,
            size: 0,
            max_bytes: settings.max_bytes.max(1),
            keep: settings.keep_files,
            error: None,
            owner: None,
        }
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            for i in (1..self.keep).rev() {
                let from = numbered(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
        }
        self.open()
    }

    /// Appends `bytes` (whole lines), rotating first when they would not fit.
    pub fn write(&mut self, bytes: &[u8]) {
        let result = (|| {
            if self.file.is_none() {
                self.open()?;
            }
            let mut rest = bytes;
            while !rest.is_empty() {
                // Whole lines that still fit; a single line longer than the limit gets a file of its own.
                let room = self.max_bytes.saturating_sub(self.size) as usize;
                let take = if rest.len() <= room {
                    rest.len()
                } else {
                    match rest[..room].iter().rposition(|&b| b == b'\n') {
                        Some(nl) => nl + 1,
                        None if self.size > 0 => {
                            self.rotate()?;
                            continue;
                        }
                        None => rest
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(rest.len(), |n| n + 1),
                    }
                };
                if let Some(f) = self.file.as_mut() {
                    f.write_all(&rest[..take])?;
                    self.size += take as u64;
                }
                rest = &rest[take..];
            }
            Ok::<(), std::io::Error>(())
        })();
        match result {
            Ok(()) => self.error = None,
            Err(e) => {
                // Drop the handle: the next write reopens (the disk may have room again).
                self.file = None;
                self.error = Some(format!(
                    "cannot write log file {}: {e}",
                    self.path.display()
                ));
            }
        }
    }
}

fn numbered(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

type WriteJob = (Arc<Mutex<RotatingFile>>, Vec<u8>);

/// The one thread that writes every process's log file.
fn writer() -> &'static mpsc::Sender<WriteJob> {
    static WRITER: OnceLock<mpsc::Sender<WriteJob>> = OnceLock::new();
    WRITER.get_or_init(|| {
        let (tx, mut rx) = mpsc::channel::<WriteJob>(4096);
        let spawned = std::thread::Builder::new()
            .name("pm-log-writer".into())
            .spawn(move || {
                while let Some((file, bytes)) = rx.blocking_recv() {
                    if let Ok(mut f) = file.lock() {
                        f.write(&bytes);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the log writer thread: {e}");
        }
        tx
    })
}

/// Where one process's captured lines go.
#[derive(Clone)]
pub struct Capture {
    /// The in-memory ring `process.logs` reads.
    pub ring: Arc<Mutex<LogRing>>,
    /// The rotated log file, when logging to a file.
    pub file: Option<Arc<Mutex<RotatingFile>>>,
    /// The caller's channel of lines (the Rust API's Writer option).
    pub channel: Option<mpsc::Sender<LogLine>>,
    /// With `ready:'log:...'`: the line that makes the run ready.
    pub ready_line: Option<ReadyLine>,
    /// `--log-stdout`: every line also to the daemon's stdout, with the process's name.
    pub echo: Option<(super::echo::LineEcho, Arc<str>)>,
}

/// What a `ready:'log:<regex>'` run waits for in its output: the first matching line fires `matched`.
#[derive(Clone)]
pub struct ReadyLine {
    /// The regex, compiled once per process.
    pub regex: Arc<regex::Regex>,
    /// Taken by the first match (shared by the stdout and stderr readers).
    pub matched: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl ReadyLine {
    fn look_at(&self, lines: &[String]) {
        let Ok(mut matched) = self.matched.lock() else {
            return;
        };
        if matched.is_some() && lines.iter().any(|l| self.regex.is_match(l)) {
            if let Some(tx) = matched.take() {
                let _ = tx.send(());
            }
        }
    }
}

impl Capture {
    /// Reads `pipe` until EOF, splitting lines. Runs as a task on the actor's arbiter.
    pub async fn run(self, mut pipe: tokio::net::unix::pipe::Receiver, stream: Stream) {
        let mut splitter = LineSplitter::default();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match pipe.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let lines = splitter.push(&chunk[..n]);
            self.emit(lines, Local::now(), stream).await;
        }
        self.emit(splitter.finish(), Local::now(), stream).await;
    }

    async fn emit(&self, lines: Vec<String>, time: DateTime<Local>, stream: Stream) {
        if lines.is_empty() {
            return;
        }
        if let Some(ready) = &self.ready_line {
            ready.look_at(&lines);
        }
        if let Some((echo, name)) = &self.echo {
            echo.send(name, &lines);
        }
        if let Some(file) = &self.file {
            let stamp = pm_protocol::status::time_text(&time);
            let mut out = Vec::with_capacity(lines.iter().map(|l| l.len() + 40).sum());
            for l in &lines {
                out.extend_from_slice(stamp.as_bytes());
                out.extend_from_slice(b" [");
                out.extend_from_slice(stream.as_str().as_bytes());
                out.extend_from_slice(b"] ");
                out.extend_from_slice(l.as_bytes());
                out.push(b'\n');
            }
            // Waits only when the writer thread is 4,096 batches behind (the disk is the limit).
            let _ = writer().send((file.clone(), out)).await;
        }
        let records: Vec<LogLine> = lines
            .into_iter()
            .map(|text| LogLine { time, stream, text })
            .collect();
        if let Ok(mut ring) = self.ring.lock() {
            for r in &records {
                ring.push(r.clone());
            }
        }
        if let Some(ch) = &self.channel {
            for r in records {
                if ch.send(r).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes. The lines do not depend on how the stream
/// was cut into reads: a partial line is cut only once it is longer than [`MAX_LINE`], so a line of
/// exactly that length whose newline comes in the next read is still one line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Takes the next bytes read; answers the lines they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.partial[start..].iter().position(|&b| b == b'\n') {
            split_long(&self.partial[start..start + pos], &mut lines);
            start += pos + 1;
        }
        self.partial.drain(..start);
        // A partial line that is already too long is cut now rather than grown without bound.
        while self.partial.len() > MAX_LINE {
            let cut = char_boundary(&self.partial, MAX_LINE);
            lines.push(String::from_utf8_lossy(&self.partial[..cut]).into_owned());
            self.partial.drain(..cut);
        }
        lines
    }

    /// The end of the stream: the last line, if it had no newline.
    pub fn finish(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.partial.is_empty() {
            split_long(&std::mem::take(&mut self.partial), &mut lines);
        }
        lines
    }
}

/// Pushes `line` (without newline) as one or more lines of at most [`MAX_LINE`] bytes.
fn split_long(mut line: &[u8], out: &mut Vec<String>) {
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    loop {
        if line.len() <= MAX_LINE {
            out.push(String::from_utf8_lossy(line).into_owned());
            return;
        }
        let cut = char_boundary(line, MAX_LINE);
        out.push(String::from_utf8_lossy(&line[..cut]).into_owned());
        line = &line[cut..];
    }
}

/// A cut at or before `at` that does not split a UTF-8 sequence (when the bytes are UTF-8 at all).
fn char_boundary(bytes: &[u8], at: usize) -> usize {
    let mut cut = at.min(bytes.len());
    for _ in 0..3 {
        if cut > 0 && cut < bytes.len() && (bytes[cut] & 0xC0) == 0x80 {
            cut -= 1;
        } else {
            break;
        }
    }
    if cut == 0 {
        at
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_in_reads(stream: &[u8], cuts: &[usize]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        let mut at = 0;
        for &cut in cuts {
            let end = (at + cut).min(stream.len());
            lines.extend(splitter.push(&stream[at..end]));
            at = end;
        }
        lines.extend(splitter.push(&stream[at..]));
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_one_line_even_when_its_newline_comes_later() {
        let mut stream = vec![b'x'; MAX_LINE];
        stream.push(b'\n');
        assert_eq!(
            split_in_reads(&stream, &[MAX_LINE]),
            vec!["x".repeat(MAX_LINE)]
        );
        assert_eq!(split_in_reads(&stream, &[]), vec!["x".repeat(MAX_LINE)]);
    }

    proptest! {
        /// However the stream is cut into reads, the same lines come out.
        #[test]
        fn lines_do_not_depend_on_read_boundaries(
            pieces in proptest::collection::vec((1usize..3, 0usize..(MAX_LINE + 3)), 0..4),
            cuts in proptest::collection::vec(1usize..(2 * MAX_LINE), 0..6),
        ) {
            let mut stream = Vec::new();
            for (newlines, len) in pieces {
                stream.extend(std::iter::repeat_n(b'y', len));
                stream.extend(std::iter::repeat_n(b'\n', newlines));
            }
            prop_assert_eq!(split_in_reads(&stream, &cuts), split_in_reads(&stream, &[]));
        }
    }

    #[test]
    fn long_lines_are_split_on_char_boundaries() {
        let mut line = vec![b'a'; MAX_LINE - 1];
        line.extend_from_slice("é".as_bytes()); // straddles the cut
        line.extend_from_slice(b"tail");
        let mut out = Vec::new();
        split_long(&line, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE - 1);
        assert_eq!(out[1], "étail");
    }

    #[test]
    fn ring_keeps_the_last_lines() {
        let mut r = LogRing::new(2);
        for t in ["a", "b", "c"] {
            r.push(LogLine {
                time: Local::now(),
                stream: Stream::Stdout,
                text: t.into(),
            });
        }
        let texts = texts(&r.page(None, None));
        assert_eq!(texts, ["b", "c"]);
        assert_eq!(r.page(None, Some(1)).lines[0].text, "c");
    }

    fn ring_of(capacity: usize, count: usize) -> LogRing {
        let mut r = LogRing::new(capacity);
        for i in 1..=count {
            r.push(LogLine {
                time: Local::now(),
                stream: Stream::Stdout,
                text: i.to_string(),
            });
        }
        r
    }

    fn texts(page: &LogPage) -> Vec<String> {
        page.lines.iter().map(|l| l.text.clone()).collect()
    }

    #[test]
    fn a_page_after_a_line_holds_each_later_line_once_and_counts_what_the_ring_lost() {
        // Line i's text is i: ten lines taken, the last four held.
        let r = ring_of(4, 10);
        let all = r.page(None, None);
        assert_eq!(
            (all.next, all.skipped, texts(&all)),
            (10, 6, vec!["7".into(), "8".into(), "9".into(), "10".into()])
        );
        let after_8 = r.page(Some(8), None);
        assert_eq!(
            (after_8.skipped, texts(&after_8)),
            (0, vec!["9".into(), "10".into()])
        );
        let after_10 = r.page(Some(10), None);
        assert_eq!(
            (after_10.next, after_10.skipped, after_10.lines.len()),
            (10, 0, 0)
        );
        // Lines 3 to 6 came and went before they were asked for.
        let after_2 = r.page(Some(2), None);
        assert_eq!((after_2.skipped, texts(&after_2).len()), (4, 4));
        // `lines` keeps the newest and counts the rest as skipped.
        let last_one = r.page(Some(8), Some(1));
        assert_eq!((last_one.skipped, texts(&last_one)), (1, vec!["10".into()]));
        // A number from an earlier ring (past the newest) starts over.
        let stale = r.page(Some(99), None);
        assert_eq!((stale.skipped, texts(&stale).len()), (6, 4));
        let empty = ring_of(4, 0).page(Some(3), None);
        assert_eq!((empty.next, empty.skipped, empty.lines.len()), (0, 0, 0));
        let off = ring_of(0, 5).page(None, None);
        assert_eq!((off.next, off.skipped, off.lines.len()), (0, 0, 0));
    }

    proptest::proptest! {
        /// Reading page after page, whatever the ring's size, the reads' sizes and the lines taken in
        /// between, gives every line once, in order, except those counted as skipped.
        #[test]
        fn following_pages_sees_each_line_at_most_once_and_counts_the_rest(
            capacity in 1usize..20,
            bursts in proptest::collection::vec((0usize..30, proptest::option::of(1usize..10)), 1..20),
        ) {
            let mut r = LogRing::new(capacity);
            let (mut after, mut seen, mut skipped, mut taken) = (0u64, Vec::new(), 0u64, 0u64);
            for (count, n) in bursts {
                for _ in 0..count {
                    taken += 1;
                    r.push(LogLine { time: Local::now(), stream: Stream::Stdout, text: taken.to_string() });
                }
                let page = r.page(Some(after), n);
                proptest::prop_assert_eq!(page.next, taken);
                skipped += page.skipped;
                seen.extend(page.lines.iter().map(|l| l.text.parse::<u64>().unwrap()));
                after = page.next;
            }
            proptest::prop_assert!(seen.windows(2).all(|w| w[0] < w[1]), "out of order or twice: {:?}", seen);
            proptest::prop_assert_eq!(seen.len() as u64 + skipped, taken);
            // Each page ends at the newest line, so the last line seen is the last taken.
            proptest::prop_assert_eq!(seen.last().copied().unwrap_or(0), taken);
        }
    }

    #[test]
    fn ring_takes_memory_only_for_lines_it_holds() {
        let mut r = LogRing::new(1000);
        assert_eq!(r.lines.capacity(), 0, "a quiet process holds no ring");
        for i in 0..2500 {
            r.push(LogLine {
                time: Local::now(),
                stream: Stream::Stdout,
                text: i.to_string(),
            });
            assert!(r.lines.capacity() <= 1000, "grown past the ring's size");
        }
        let texts = texts(&r.page(None, None));
        assert_eq!(texts.len(), 1000);
        assert_eq!(texts[0], "1500");
        assert_eq!(texts[999], "2499");
    }
}
