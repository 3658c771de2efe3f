//! Finding, at startup, a cgroup v2 hierarchy the daemon may write to, and making its subtree there.

use std::path::{Path, PathBuf};

use super::Tree;

/// Whether the daemon uses cgroups (`--cgroups`, `cgroups:` in pm.conf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One cgroup per process where a writable cgroup v2 exists, process groups otherwise.
    #[default]
    Auto,
    /// Process groups only.
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "auto" | "on" => Ok(Mode::Auto),
            "off" => Ok(Mode::Off),
            other => Err(format!("cgroups must be 'auto' or 'off', not '{other}'")),
        }
    }
}

/// The controllers a limit may need, enabled for the subtree wherever the hierarchy offers them.
const WANTED: [&str; 3] = ["memory", "cpu", "pids"];

/// Where this process (and a daemon it starts, which shares its cgroup) may make cgroups: its own
/// cgroup in the first cgroup v2 mount, when that is writable. Only reads.
pub struct Place {
    /// The cgroup v2 mount point.
    pub mount: PathBuf,
    /// This process's own cgroup under it, writable.
    pub parent: PathBuf,
    /// Whether v1 hierarchies hold controllers beside it.
    pub hybrid: bool,
}

/// The [`Place`] of this process's cgroups, or why there is none (the sentence the daemon logs).
pub fn place() -> Result<Place, String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let hybrid = own
        .lines()
        .any(|l| !l.starts_with("0::") && l.split(':').nth(1).is_some_and(|c| !c.is_empty()));
    let own_path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim();
    let mount = cgroup2_mount(&mounts).ok_or("no cgroup v2 hierarchy is mounted")?;
    let parent = mount.join(own_path.trim_start_matches('/'));
    if !writable(&parent) {
        return Err(format!(
            "the daemon's cgroup {} is not writable (not delegated)",
            parent.display()
        ));
    }
    Ok(Place {
        mount,
        parent,
        hybrid,
    })
}

/// The daemon's subtree for `socket` (a name derived from the socket's path, so that two daemons do
/// not share one), or why there is none: the sentence the daemon logs before it runs in group mode.
pub fn discover(socket: &Path, mode: Mode) -> Result<Tree, String> {
    if mode == Mode::Off {
        return Err("cgroups are off (--cgroups off)".into());
    }
    let Place {
        mount,
        parent,
        hybrid,
    } = place()?;
    let root = parent.join(subtree_name(socket));
    match std::fs::create_dir(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create cgroup {}: {e}", root.display())),
    }
    enable_controllers(&parent);
    enable_controllers(&root);
    let mut tree = Tree {
        root,
        controllers: Vec::new(),
        mount,
        hybrid,
    };
    for detached in [false, true] {
        let branch = tree.branch(detached);
        match std::fs::create_dir(&branch) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(format!("cannot create cgroup {}: {e}", branch.display()));
            }
            _ => enable_controllers(&branch),
        }
    }
    tree.controllers = std::fs::read_to_string(tree.branch(false).join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    tree.remove_empty();
    Ok(tree)
}

/// `processmanager-` and 16 hex digits of a hash of the socket's path (FNV-1a: the same in every
/// build, so that a restarted daemon finds its subtree again).
pub fn subtree_name(socket: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in socket.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("processmanager-{hash:016x}")
}

/// The first cgroup2 mount point in a mountinfo text.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, after) = line.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        fields.split_whitespace().nth(4).map(PathBuf::from)
    })
}

fn writable(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: access reads a valid, nul-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Enables each wanted controller that `dir` has for its children, one at a time (one refused, as
/// by a cgroup that holds processes itself, leaves the others be).
fn enable_controllers(dir: &Path) {
    let have = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for c in WANTED {
        if have.split_whitespace().any(|h| h == c) {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}
