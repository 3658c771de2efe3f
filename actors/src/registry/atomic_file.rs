//! Atomic file replacement: a crash at any moment leaves the old file or the new one, never a torn one.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `bytes`: a temporary file in the same folder, fsync, rename over `path`, then
/// fsync of the folder so that the rename itself is durable. The file gets `mode` whatever the umask.
/// Creates the folder (0755, or as the umask allows) if needed. Blocks on the disk: call it from
/// `spawn_blocking` or a thread of its own.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// use pm_actors::registry::atomic_file::write_atomic;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("sub/state.json");
/// write_atomic(&path, b"{}", 0o600).unwrap();
/// write_atomic(&path, b"{\"version\":1}", 0o600).unwrap();
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"version\":1}");
/// assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    fs::create_dir_all(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let write = || -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode given at creation.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
