//! The template folder on disk: read one, read all (skipping bad files), write one atomically.
//!
//! These functions block on file I/O: the registry calls them on `spawn_blocking`.

use std::fs;
use std::path::{Path, PathBuf};

use pm_protocol::spec::validate_name;
use pm_protocol::template::{file_name, Template};
use pm_protocol::PmError;

use super::atomic_file;

/// Templates larger than this are refused (a template is a few hundred bytes).
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// A template file that could not be used, and why.
///
/// ```
/// use pm_actors::registry::template_store::read_all;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("bad.json"), "{").unwrap();
/// let (good, bad) = read_all(dir.path());
/// assert!(good.is_empty());
/// assert!(bad[0].path.ends_with("bad.json") && bad[0].reason.contains("EOF"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTemplate {
    /// The file (or the folder, when it cannot be listed).
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn read_file(path: &Path) -> Result<Template, String> {
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("larger than {MAX_TEMPLATE_BYTES} bytes"));
    }
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut t = Template::from_json(&text).map_err(|e| e.to_string())?;
    // An env file named relative to the template is the template's neighbour.
    if let Some(dir) = path.parent() {
        for file in &mut t.p_options.env_file {
            if file.is_relative() {
                *file = dir.join(&*file);
            }
        }
    }
    // The spec must be usable, and the file must be named after it (`<name>.json`).
    t.to_spec().map_err(|e| e.to_string())?;
    let expected = t.file_name();
    if path.file_name().and_then(|n| n.to_str()) != Some(expected.as_str()) {
        return Err(format!(
            "holds process '{}', so it must be named {expected}",
            t.name
        ));
    }
    Ok(t)
}

/// Reads `<dir>/<name>.json`.
///
/// ```
/// use pm_actors::registry::template_store::{read_one, write_atomic};
/// use pm_protocol::{template::Template, ProcessSpec};
/// let dir = tempfile::tempdir().unwrap();
/// let t = Template::from_spec(&ProcessSpec::shell("job", "date"), false);
/// write_atomic(dir.path(), &t).unwrap();
/// assert_eq!(read_one(dir.path(), "job").unwrap(), t);
/// assert!(read_one(dir.path(), "other").is_err());
/// ```
pub fn read_one(dir: &Path, name: &str) -> Result<Template, PmError> {
    validate_name(name)?;
    let path = dir.join(file_name(name));
    if !path.exists() {
        return Err(PmError::Template(format!(
            "no template for '{name}' in {}",
            dir.display()
        )));
    }
    read_file(&path).map_err(|reason| PmError::Template(format!("{}: {reason}", path.display())))
}

/// Reads every `*.json` in `dir`, sorted by name. A missing folder holds no templates.
///
/// ```
/// use pm_actors::registry::template_store::{read_all, write_atomic};
/// use pm_protocol::{template::Template, ProcessSpec};
/// let dir = tempfile::tempdir().unwrap();
/// for name in ["b", "a"] {
///     write_atomic(dir.path(), &Template::from_spec(&ProcessSpec::shell(name, "date"), true)).unwrap();
/// }
/// let (good, bad) = read_all(dir.path());
/// assert_eq!(good.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
/// assert!(bad.is_empty());
/// ```
pub fn read_all(dir: &Path) -> (Vec<Template>, Vec<BadTemplate>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (good, bad),
        Err(e) => {
            bad.push(BadTemplate {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            });
            return (good, bad);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        match read_file(&path) {
            Ok(t) => good.push(t),
            Err(reason) => bad.push(BadTemplate { path, reason }),
        }
    }
    (good, bad)
}

/// Writes `<dir>/<name>.json` atomically: a temporary file in the same folder, fsync, rename, then
/// fsync of the folder. Mode 0644. Creates the folder (0755) if needed.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// use pm_actors::registry::template_store::write_atomic;
/// use pm_protocol::{template::Template, ProcessSpec};
/// let dir = tempfile::tempdir().unwrap();
/// let path = write_atomic(dir.path(), &Template::from_spec(&ProcessSpec::shell("job", "date"), false)).unwrap();
/// assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o644);
/// ```
pub fn write_atomic(dir: &Path, template: &Template) -> Result<PathBuf, PmError> {
    validate_name(&template.name)?;
    let path = dir.join(template.file_name());
    atomic_file::write_atomic(&path, template.to_json().as_bytes(), 0o644).map_err(|e| {
        PmError::Template(format!(
            "cannot write the template in {}: {e}",
            dir.display()
        ))
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm_protocol::ProcessSpec;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = ProcessSpec::shell("job.1", "echo hi; sleep 1");
        spec.cron = Some("*/5 * * * *".into());
        let t = Template::from_spec(&spec, true);
        let path = write_atomic(dir.path(), &t).unwrap();
        assert_eq!(path, dir.path().join("job.1.json"));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let back = read_one(dir.path(), "job.1").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.to_spec().unwrap(), spec);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["job.1.json"]);
    }

    #[test]
    fn bad_files_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = Template::from_spec(&ProcessSpec::shell("good", "true"), false);
        write_atomic(dir.path(), &good).unwrap();
        fs::write(dir.path().join("broken.json"), "{ nope").unwrap();
        fs::write(
            dir.path().join("other.json"),
            r#"{"name":"misnamed","cmd":"true"}"#,
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), "not a template").unwrap();
        let (ok, bad) = read_all(dir.path());
        assert_eq!(ok, [good]);
        assert_eq!(bad.len(), 2);
        assert!(
            bad[0].path.ends_with("broken.json") && bad[0].reason.contains("line 1"),
            "{bad:?}"
        );
        assert!(bad[1].reason.contains("misnamed.json"), "{bad:?}");
    }

    #[test]
    fn missing_things_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_one(dir.path(), "ghost").unwrap_err().to_string();
        assert!(e.contains("no template for 'ghost'"), "{e}");
        assert!(matches!(
            read_one(dir.path(), "../x"),
            Err(PmError::InvalidName(_))
        ));
        let (ok, bad) = read_all(&dir.path().join("absent"));
        assert!(ok.is_empty() && bad.is_empty());
    }
}
