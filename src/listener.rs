//! The daemon's Unix socket: replacing a stale socket, refusing a live one, mode 0600, the connection cap.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::stat::{umask, Mode};
use pm_actors::counters::{self, Transport};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many connections a daemon serves at once; the next one is told so and closed.
pub const MAX_CONNECTIONS: usize = 256;

/// The line a connection over the cap gets before it is closed.
pub fn too_many_connections_line(max: usize) -> String {
    format!("Error: too many connections ({max} at once), try again later\n")
}

/// Why the socket could not be bound.
#[derive(Debug, Error)]
// Each variant's `#[error]` message is its documentation.
#[allow(missing_docs)]
pub enum BindError {
    #[error("another processmanager is listening on {0}")]
    AnotherDaemon(PathBuf),
    #[error("{0} exists and is not a socket; not replacing it")]
    NotASocket(PathBuf),
    #[error("cannot listen on {path}: {cause}")]
    Io { path: PathBuf, cause: io::Error },
}

/// A bound socket, and whether a stale socket file had to be replaced for it.
#[derive(Debug)]
pub struct Bound {
    /// The bound socket, ready to accept.
    pub listener: StdUnixListener,
    /// Whether a socket file left by a dead daemon was replaced.
    pub replaced_stale: bool,
}

/// Binds the socket at `path` with mode 0600.
///
/// A socket file nobody answers (left by a daemon that died) is replaced; one that a live daemon answers is
/// [`BindError::AnotherDaemon`]; any other file at `path` is left alone and is [`BindError::NotASocket`].
pub fn bind(path: &Path) -> Result<Bound, BindError> {
    let io_err = |cause| BindError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let replaced_stale = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match StdUnixStream::connect(path) {
            Ok(_) => return Err(BindError::AnotherDaemon(path.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(io_err)?;
                true
            }
            Err(e) => return Err(io_err(e)),
        },
        Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_err(e)),
    };
    // The umask makes the socket 0600 from its first moment; the chmod makes sure of it.
    let old_mask = umask(Mode::from_bits_truncate(0o177));
    let bound = StdUnixListener::bind(path);
    umask(old_mask);
    let listener = bound.map_err(|e| match e.kind() {
        // Another daemon bound it between our check and our bind.
        io::ErrorKind::AddrInUse => BindError::AnotherDaemon(path.to_path_buf()),
        _ => io_err(e),
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    listener.set_nonblocking(true).map_err(io_err)?;
    Ok(Bound {
        listener,
        replaced_stale,
    })
}

/// Accepts connections forever, handing each one to `on_connection` with a permit that counts it against
/// `max` until dropped. A connection over the cap is told so and closed, without delaying the others.
/// Must run on an actix (or tokio `LocalSet`) runtime.
pub async fn accept_loop<F>(listener: UnixListener, max: usize, mut on_connection: F)
where
    F: FnMut(UnixStream, OwnedSemaphorePermit),
{
    let slots = Arc::new(Semaphore::new(max));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                Ok(permit) => on_connection(stream, permit),
                Err(_) => {
                    tracing::warn!(max, "connection refused: too many connections");
                    counters::daemon().connections(Transport::Socket).refused();
                    actix_rt::spawn(refuse(stream, max));
                }
            },
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn refuse(mut stream: UnixStream, max: usize) {
    let line = too_many_connections_line(max);
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pm.sock");
        drop(StdUnixListener::bind(&path).unwrap()); // the file stays, nobody listens
        let live = bind(&path).unwrap();
        assert!(live.replaced_stale);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("another processmanager is listening on {}", path.display())
        );
        drop(live);
    }

    #[test]
    fn a_regular_file_is_never_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("not-a-socket");
        std::fs::write(&path, "data").unwrap();
        assert!(matches!(bind(&path), Err(BindError::NotASocket(_))));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "data");
    }
}
