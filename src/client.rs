//! The client library: connect to a daemon's socket, authenticate, send heroscript, read framed results.
//!
//! It is async, on tokio. From blocking code, run it on a runtime of your own:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use processmanager::client::Client;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let reply = rt.block_on(async {
//!     let mut client = Client::connect("/tmp/processmanager.sock", "mysecret").await?;
//!     client.run("!!process.list format:json").await
//! })?;
//! println!("{}", reply.body);
//! # Ok(()) }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use pm_protocol::response::{self, Frame, FrameReader};

/// How long the daemon may take to greet and to answer the secret (a wrong one is answered after ~1 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a client could not talk to the daemon. Every variant names the socket.
#[derive(Debug, Error)]
// Each variant's `#[error]` message is its documentation.
#[allow(missing_docs)]
pub enum ClientError {
    #[error("cannot connect to {socket}: the daemon is not running ({cause})")]
    NotRunning { socket: PathBuf, cause: io::Error },
    #[error("cannot connect to {socket}: {cause}")]
    Unreachable { socket: PathBuf, cause: io::Error },
    #[error("the daemon on {socket} refused the secret: the secret is wrong")]
    WrongSecret { socket: PathBuf },
    #[error("the daemon on {socket} refused the connection: {message}")]
    Refused { socket: PathBuf, message: String },
    #[error("no secret for {socket}: {reason}")]
    NoSecret { socket: PathBuf, reason: String },
    #[error("the daemon on {socket} closed the connection")]
    Closed { socket: PathBuf },
    #[error("the daemon on {socket} did not answer in time")]
    Timeout { socket: PathBuf },
    #[error("talking to {socket}: {cause}")]
    Io { socket: PathBuf, cause: io::Error },
}

/// One framed result (`**RESULT** <jobid>`, the body, `**ENDRESULT**`); `is_error()` when the daemon
/// answered an error.
pub type Reply = Frame;

/// An authenticated connection to a daemon.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    socket: PathBuf,
    /// The bytes of a line not yet ended and the frame not yet ended, kept here rather than in
    /// `read_reply` so that a `read_reply` given up in a `select!` loses nothing.
    partial_line: Vec<u8>,
    frames: FrameReader,
}

impl Client {
    /// Connects to `socket`, reads the greeting, and authenticates with `secret`.
    pub async fn connect(socket: impl AsRef<Path>, secret: &str) -> Result<Client, ClientError> {
        let socket = socket.as_ref().to_path_buf();
        let stream = UnixStream::connect(&socket)
            .await
            .map_err(|cause| match cause.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    ClientError::NotRunning {
                        socket: socket.clone(),
                        cause,
                    }
                }
                _ => ClientError::Unreachable {
                    socket: socket.clone(),
                    cause,
                },
            })?;
        let (r, w) = stream.into_split();
        let mut client = Client {
            reader: BufReader::new(r),
            writer: w,
            socket,
            partial_line: Vec::new(),
            frames: FrameReader::new(),
        };
        let sock = client.socket.clone();
        tokio::time::timeout(HANDSHAKE_TIMEOUT, client.handshake(secret))
            .await
            .map_err(|_| ClientError::Timeout { socket: sock })??;
        Ok(client)
    }

    async fn handshake(&mut self, secret: &str) -> Result<(), ClientError> {
        let greeting = self.read_line().await?.ok_or_else(|| self.closed())?;
        if greeting.trim_end() != response::GREETING.trim_end() {
            return Err(ClientError::Refused {
                socket: self.socket.clone(),
                message: greeting.trim().to_string(),
            });
        }
        self.write(format!("{secret}\n").as_bytes()).await?;
        let answer = self.read_line().await?.ok_or_else(|| self.closed())?;
        let answer = answer.trim_end();
        if answer == response::AUTHENTICATED.trim_end() {
            Ok(())
        } else if answer == response::INVALID_SECRET.trim_end() {
            Err(ClientError::WrongSecret {
                socket: self.socket.clone(),
            })
        } else {
            Err(ClientError::Refused {
                socket: self.socket.clone(),
                message: answer.trim().to_string(),
            })
        }
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one script (one action; a blank line after it makes the daemon run it) and reads its result.
    pub async fn run(&mut self, script: &str) -> Result<Reply, ClientError> {
        self.send(script).await?;
        self.read_reply().await?.ok_or_else(|| self.closed())
    }

    /// Sends a script followed by the blank line that runs it, without waiting for the result.
    pub async fn send(&mut self, script: &str) -> Result<(), ClientError> {
        let mut text = script.trim_end_matches('\n').to_string();
        text.push_str("\n\n");
        self.write(text.as_bytes()).await
    }

    /// Sends one raw line (for instance any line to end a `watch`).
    pub async fn send_line(&mut self, line: &str) -> Result<(), ClientError> {
        self.write(format!("{line}\n").as_bytes()).await
    }

    /// Reads the next framed result; `None` when the daemon closed the connection between results.
    /// Lines outside a frame are skipped.
    ///
    /// Cancel safe: dropped before it answers (a branch of `tokio::select!` that lost), it keeps what
    /// it had read, and the next call goes on from there.
    pub async fn read_reply(&mut self) -> Result<Option<Reply>, ClientError> {
        loop {
            match self.read_line().await? {
                Some(line) => {
                    if let Some(frame) = self.frames.push_line(&line) {
                        return Ok(Some(frame));
                    }
                }
                None if self.frames.in_frame() => return Err(self.closed()),
                None => return Ok(None),
            }
        }
    }

    /// The next line; cancel safe, as `read_until` appends what it read to `partial_line` as it goes.
    async fn read_line(&mut self) -> Result<Option<String>, ClientError> {
        let read = self.reader.read_until(b'\n', &mut self.partial_line).await;
        read.map_err(|cause| self.io(cause))?;
        let line = std::mem::take(&mut self.partial_line);
        Ok((!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()))
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let r = self.writer.write_all(bytes).await;
        r.map_err(|cause| self.io(cause))
    }

    fn closed(&self) -> ClientError {
        ClientError::Closed {
            socket: self.socket.clone(),
        }
    }

    fn io(&self, cause: io::Error) -> ClientError {
        ClientError::Io {
            socket: self.socket.clone(),
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    /// A one-connection fake daemon: greets, checks the secret, answers each script with a canned frame.
    async fn fake_daemon(listener: UnixListener, secret: &'static str, frame: &'static str) {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(format!("{}\n", response::GREETING.trim_end()).as_bytes())
            .await
            .unwrap();
        let mut r = BufReader::new(&mut s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        let ok = line.trim_end() == secret;
        let answer = if ok {
            response::AUTHENTICATED.trim_end()
        } else {
            response::INVALID_SECRET.trim_end()
        };
        drop(r);
        s.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
        if !ok {
            return;
        }
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"\n\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(frame.as_bytes()).await.unwrap();
    }

    #[tokio::test]
    async fn reads_a_framed_result() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake_daemon(
            l,
            "s3",
            "noise\n**RESULT** e42\nError: x\n\ny\n**ENDRESULT**\n",
        ));
        let mut c = Client::connect(&path, "s3").await.unwrap();
        let reply = c.run("!!process.list").await.unwrap();
        assert_eq!(
            reply,
            Reply {
                jobid: "e42".into(),
                body: "Error: x\n\ny\n".into()
            }
        );
        assert!(reply.is_error());
        assert!(c.read_reply().await.unwrap().is_none());
        server.await.unwrap();
    }

    #[tokio::test]
    async fn tells_a_wrong_secret_from_a_missing_daemon() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        let err = Client::connect(&path, "x").await.err().unwrap();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        let l = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(fake_daemon(l, "right", ""));
        let err = Client::connect(&path, "wrong").await.err().unwrap();
        assert!(matches!(err, ClientError::WrongSecret { .. }), "{err}");
        assert!(err.to_string().contains("secret is wrong"));
        server.await.unwrap();
    }
}
