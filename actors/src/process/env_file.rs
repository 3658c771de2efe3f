//! Env files: the dotenv files of a spec, read at each start and laid under the spec's own `env`.
//!
//! Read on the process actor's thread, just before the spawn, where the spec becomes what is
//! spawned: they are small local files, and reading them at each start is what lets a restart pick
//! up a changed file. The syntax is dotenvy's (`KEY=value`, quotes, `#` comments, an `export `
//! prefix, `${VAR}` from earlier lines or the daemon's environment).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use pm_protocol::{PmError, ProcessSpec};

/// The spec with its env files' variables added (a later file wins over an earlier one, `env` over
/// every file); the spec itself when it names none. A file that cannot be read or parsed is an error
/// naming it. A relative path is taken from the spec's working directory.
pub(crate) fn with_env_files(spec: &ProcessSpec) -> Result<Cow<'_, ProcessSpec>, PmError> {
    if spec.env_files.is_empty() {
        return Ok(Cow::Borrowed(spec));
    }
    let mut merged = std::collections::BTreeMap::new();
    for file in &spec.env_files {
        let path = resolve(file, spec.cwd.as_deref());
        let fail = |e: dotenvy::Error| {
            PmError::Invalid(format!("env file {}: {}", path.display(), reason(&e)))
        };
        for item in dotenvy::from_path_iter(&path).map_err(fail)? {
            let (key, value) = item.map_err(fail)?;
            merged.insert(key, value);
        }
    }
    let mut spec = spec.clone();
    merged.extend(std::mem::take(&mut spec.env));
    spec.env = merged;
    Ok(Cow::Owned(spec))
}

fn resolve(file: &Path, cwd: Option<&Path>) -> PathBuf {
    match cwd {
        Some(cwd) if file.is_relative() => cwd.join(file),
        _ => file.to_path_buf(),
    }
}

fn reason(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::LineParse(line, at) => format!("cannot parse '{line}' at index {at}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_in_order_under_the_spec_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.env"), "A=1\nB=from-a\n").unwrap();
        std::fs::write(
            dir.path().join("b.env"),
            "export B=\"from b\"\nD=4\nC=${D}x # note\n",
        )
        .unwrap();
        let mut spec = ProcessSpec::shell("x", "true");
        spec.cwd = Some(dir.path().to_path_buf());
        spec.env_files = vec!["a.env".into(), dir.path().join("b.env")];
        spec.env.insert("A".into(), "own".into());
        let spec = with_env_files(&spec).unwrap();
        assert_eq!(spec.env["A"], "own");
        assert_eq!(spec.env["B"], "from b");
        assert_eq!(spec.env["C"], "4x");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let mut spec = ProcessSpec::shell("x", "true");
        spec.env_files = vec!["/nonexistent/pm.env".into()];
        let err = with_env_files(&spec).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/pm.env"), "{err}");
    }
}
