//! Splits a connection's bytes into lines, capping their length without ever failing the stream.

use std::io;

use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// One unit read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A line, without its `\n` (any bytes: the session machine deals with `\r`, telnet and UTF-8).
    Line(Vec<u8>),
    /// A line grew past the cap: reported once, as soon as it does; its rest is skipped up to its `\n`.
    TooLong,
}

/// A line decoder with a length cap. Unlike `LinesCodec`, an over-long line is an item, not an error,
/// so the session goes on after it.
#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    /// Skipping the rest of an over-long line.
    discarding: bool,
    /// How far the buffer was searched for `\n` already.
    scanned: usize,
}

impl LineCodec {
    /// A decoder for lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        LineCodec {
            max,
            discarding: false,
            scanned: 0,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Incoming;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, io::Error> {
        loop {
            let newline = buf[self.scanned..].iter().position(|b| *b == b'\n');
            match newline {
                Some(pos) => {
                    let end = self.scanned + pos;
                    self.scanned = 0;
                    if self.discarding {
                        buf.advance(end + 1);
                        self.discarding = false;
                        continue;
                    }
                    let line = buf.split_to(end + 1);
                    if end > self.max {
                        return Ok(Some(Incoming::TooLong));
                    }
                    return Ok(Some(Incoming::Line(line[..end].to_vec())));
                }
                None if self.discarding => {
                    buf.clear();
                    self.scanned = 0;
                    return Ok(None);
                }
                None if buf.len() > self.max => {
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Ok(Some(Incoming::TooLong));
                }
                None => {
                    self.scanned = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, io::Error> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        let rest = buf.split_to(buf.len());
        self.scanned = 0;
        Ok(Some(Incoming::Line(rest.to_vec())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(max: usize, chunks: &[&[u8]]) -> Vec<Incoming> {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                out.push(item);
            }
        }
        while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    fn line(s: &str) -> Incoming {
        Incoming::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_split_across_reads() {
        assert_eq!(
            decode_all(10, &[b"ab", b"c\n\nd", b"e\r\nlast"]),
            [line("abc"), line(""), line("de\r"), line("last")]
        );
    }

    #[test]
    fn a_long_line_is_reported_once_and_the_next_line_survives() {
        let long = [b'x'; 25];
        assert_eq!(
            decode_all(10, &[b"ok\n", &long[..12], &long[12..], b"\nnext\n"]),
            [line("ok"), Incoming::TooLong, line("next")]
        );
        assert_eq!(
            decode_all(3, &[b"abcd\nabc\n"]),
            [Incoming::TooLong, line("abc")]
        );
        assert_eq!(decode_all(3, &[b"abcdefgh"]), [Incoming::TooLong]);
    }

    #[test]
    fn any_bytes_pass_through() {
        let bytes: Vec<u8> = (0..=255u8).filter(|b| *b != b'\n').collect();
        assert_eq!(
            decode_all(1000, &[&bytes, b"\n"]),
            [Incoming::Line(bytes.clone())]
        );
    }
}
