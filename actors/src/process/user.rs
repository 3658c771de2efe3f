//! Running a child as another user: the ids of `spec.user` / `spec.group`, and the switch in the child.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};
use pm_protocol::{PmError, ProcessSpec};

/// The identity a child switches to before it runs its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user id the child switches to.
    pub uid: u32,
    /// The primary group id the child switches to.
    pub gid: u32,
    /// Supplementary groups, as `initgroups` would set them (the user's groups from the group database).
    pub groups: Vec<u32>,
}

/// The identity `spec` asks for, or `None` when it names no user and no group. An unknown user or
/// group is `PmError::UnknownUser`. Reads the user and group databases (NSS): call it where blocking
/// briefly is acceptable (the spawn itself).
///
/// ```
/// use pm_actors::process::user::run_as;
/// use pm_protocol::{PmError, ProcessSpec};
/// let mut spec = ProcessSpec::shell("web", "id");
/// assert_eq!(run_as(&spec).unwrap(), None);
/// spec.user = Some("no-such-user-here".into());
/// assert_eq!(run_as(&spec).unwrap_err(), PmError::UnknownUser("no-such-user-here".into()));
/// spec.user = Some("root".into());
/// assert_eq!(run_as(&spec).unwrap().unwrap().uid, 0);
/// ```
pub fn run_as(spec: &ProcessSpec) -> Result<Option<RunAs>, PmError> {
    if spec.user.is_none() && spec.group.is_none() {
        return Ok(None);
    }
    let unknown = |n: &str| PmError::UnknownUser(n.to_string());
    let user = match &spec.user {
        Some(name) => Some(lookup_user(name).ok_or_else(|| unknown(name))?),
        None => None,
    };
    let gid = match (&spec.group, &user) {
        (Some(name), _) => lookup_group(name).ok_or_else(|| unknown(name))?,
        (None, Some(u)) => u.gid,
        (None, None) => Gid::current(),
    };
    let (uid, groups) = match &user {
        Some(u) => {
            let cname = CString::new(u.name.as_str()).map_err(|_| unknown(&u.name))?;
            let mut groups: Vec<u32> = nix::unistd::getgrouplist(&cname, gid)
                .map(|g| g.into_iter().map(Gid::as_raw).collect())
                .unwrap_or_else(|_| vec![gid.as_raw()]);
            if !groups.contains(&gid.as_raw()) {
                groups.push(gid.as_raw());
            }
            (u.uid, groups)
        }
        None => (Uid::current(), vec![gid.as_raw()]),
    };
    let me = Uid::effective();
    if !me.is_root() && (uid != me || gid != Gid::effective()) {
        return Err(PmError::Spawn {
            name: spec.name.clone(),
            cause: "running a process as another user or group needs a daemon running as root"
                .into(),
        });
    }
    Ok(Some(RunAs {
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups,
    }))
}

/// A user by name, or by number when the name is all digits.
fn lookup_user(name: &str) -> Option<User> {
    match name.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)).ok().flatten(),
        Err(_) => User::from_name(name).ok().flatten(),
    }
}

fn lookup_group(name: &str) -> Option<Gid> {
    match name.parse::<u32>() {
        Ok(n) => Some(Gid::from_raw(n)),
        Err(_) => Group::from_name(name).ok().flatten().map(|g| g.gid),
    }
}

/// Gives `path` to `who` (a log file the child's output goes to). Errors are the caller's to report.
pub fn give(path: &std::path::Path, who: &RunAs) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(who.uid), Some(who.gid))
}
