//! The daemon's own directory `S.d/` (mode 0700) and its secret file; `pm.conf` may move logs and state.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use crate::config::DEFAULT_SOCKET;

/// The files of one daemon, derived from its socket path (see the README, "Files the daemon uses").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    /// The socket `S`.
    pub socket: PathBuf,
    /// The daemon's directory `S.d/` (mode 0700).
    pub dir: PathBuf,
}

impl DaemonPaths {
    /// The paths of the daemon listening on `socket`.
    pub fn for_socket(socket: impl Into<PathBuf>) -> Self {
        let socket = socket.into();
        DaemonPaths {
            dir: crate::config::daemon_dir(&socket),
            socket,
        }
    }

    /// `S.d/secret`: the generated secret, which `pmclient` reads by default.
    pub fn secret_file(&self) -> PathBuf {
        self.dir.join("secret")
    }

    /// Creates `S.d/` (mode 0700) if needed, and tightens its mode if it exists.
    pub fn create_dir(&self) -> io::Result<()> {
        create_private_dir(&self.dir)
    }
}

/// Creates `dir` and its parents; the last component gets mode 0700 even if it already existed.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hang_off_the_socket_path() {
        let p = DaemonPaths::for_socket("/run/x/pm.sock");
        assert_eq!(p.dir, PathBuf::from("/run/x/pm.sock.d"));
        assert_eq!(p.secret_file(), PathBuf::from("/run/x/pm.sock.d/secret"));
    }

    #[test]
    fn the_directory_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let p = DaemonPaths::for_socket(tmp.path().join("s.sock"));
        fs::create_dir(&p.dir).unwrap();
        fs::set_permissions(&p.dir, fs::Permissions::from_mode(0o755)).unwrap();
        p.create_dir().unwrap();
        let mode = fs::metadata(&p.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
