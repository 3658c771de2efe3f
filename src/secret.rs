//! The shared secret: given on the command line, read from a file or `PM_SECRET`, or generated.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The name of the environment variable that may hold the secret.
pub const SECRET_ENV: &str = "PM_SECRET";

/// Why a secret could not be had.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("cannot read the secret file {path}: {cause}")]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot write the secret file {path}: {cause}")]
    Write { path: PathBuf, cause: io::Error },
    #[error("the secret in {0} is empty")]
    EmptyFile(PathBuf),
    #[error("the secret is empty")]
    Empty,
    #[error("cannot generate a secret from /dev/urandom: {0}")]
    Random(io::Error),
}

/// A secret. Its `Debug` never prints it, so it cannot leak into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret from text; leading and trailing white space (a newline from `echo`) is not part of it.
    pub fn new(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        if t.is_empty() {
            Err(SecretError::Empty)
        } else {
            Ok(Secret(t.to_string()))
        }
    }

    /// 32 random bytes from /dev/urandom, as 64 hex digits.
    pub fn generate() -> Result<Self, SecretError> {
        let mut bytes = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(SecretError::Random)?;
        Ok(Secret(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// Reads a secret file (one line; surrounding white space ignored).
    pub fn read_file(path: &Path) -> Result<Self, SecretError> {
        let text = fs::read_to_string(path).map_err(|cause| SecretError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        Secret::new(&text).map_err(|_| SecretError::EmptyFile(path.to_path_buf()))
    }

    /// Writes the secret to `path`, readable by its owner only (mode 0600), replacing any old file.
    pub fn write_file(&self, path: &Path) -> Result<(), SecretError> {
        let err = |cause| SecretError::Write {
            path: path.to_path_buf(),
            cause,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(self.0.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.set_permissions(fs::Permissions::from_mode(0o600)))
            .map_err(err)?;
        fs::rename(&tmp, path).map_err(err)
    }

    /// The secret's text, to compare or to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the daemon's secret came from (what its first log line says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// `--secret` on the command line (visible to every user in /proc).
    CommandLine,
    /// `--secret-file`.
    File(PathBuf),
    /// The `PM_SECRET` environment variable.
    Env,
    /// Generated at start and written to this file.
    Generated(PathBuf),
}

/// The daemon's choice, in order: `--secret`, `--secret-file`, `PM_SECRET`, else a new random secret
/// written to `generated_file` (mode 0600).
pub fn resolve_daemon_secret(
    flag: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
    generated_file: &Path,
) -> Result<(Secret, SecretOrigin), SecretError> {
    if let Some(s) = flag {
        return Ok((Secret::new(s)?, SecretOrigin::CommandLine));
    }
    if let Some(p) = file {
        return Ok((Secret::read_file(p)?, SecretOrigin::File(p.to_path_buf())));
    }
    if let Some(s) = env {
        return Ok((Secret::new(s)?, SecretOrigin::Env));
    }
    let secret = Secret::generate()?;
    secret.write_file(generated_file)?;
    Ok((
        secret,
        SecretOrigin::Generated(generated_file.to_path_buf()),
    ))
}

/// The client's choice, in order: `--secret`, `--secret-file`, `PM_SECRET`, else the daemon's generated
/// secret file `default_file` (`S.d/secret`).
pub fn resolve_client_secret(
    flag: Option<&str>,
    file: Option<&Path>,
    env: Option<&str>,
    default_file: &Path,
) -> Result<Secret, SecretError> {
    match (flag, file, env) {
        (Some(s), _, _) => Secret::new(s),
        (None, Some(p), _) => Secret::read_file(p),
        (None, None, Some(s)) => Secret::new(s),
        (None, None, None) => Secret::read_file(default_file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_random_hex_in_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("secret");
        let (a, origin) = resolve_daemon_secret(None, None, None, &file).unwrap();
        assert_eq!(origin, SecretOrigin::Generated(file.clone()));
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(Secret::read_file(&file).unwrap(), a);
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, _) = resolve_daemon_secret(None, None, None, &file).unwrap();
        assert_ne!(a, b);
        assert_eq!(Secret::read_file(&file).unwrap(), b);
    }

    #[test]
    fn precedence_is_flag_then_file_then_env() {
        let tmp = tempfile::tempdir().unwrap();
        let given = tmp.path().join("given");
        fs::write(&given, "from-file\n").unwrap();
        let gen = tmp.path().join("gen");
        let pick = |flag, file, env| resolve_daemon_secret(flag, file, env, &gen).unwrap();
        assert_eq!(pick(Some("f"), Some(&given), Some("e")).0.expose(), "f");
        assert_eq!(pick(None, Some(&given), Some("e")).0.expose(), "from-file");
        assert_eq!(pick(None, None, Some("e")).0.expose(), "e");
        assert!(!gen.exists());
    }

    #[test]
    fn empty_and_missing_secrets_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        fs::write(&empty, " \n").unwrap();
        assert!(matches!(
            Secret::read_file(&empty),
            Err(SecretError::EmptyFile(_))
        ));
        assert!(matches!(
            Secret::read_file(&tmp.path().join("nope")),
            Err(SecretError::Read { .. })
        ));
        assert!(matches!(Secret::new(""), Err(SecretError::Empty)));
        assert_eq!(
            format!("{:?}", Secret::new("hunter2").unwrap()),
            "Secret(<redacted>)"
        );
    }
}
