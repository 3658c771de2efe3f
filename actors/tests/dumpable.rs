//! The daemon's dumpable flag: off after `hardening::no_core_dumps`, and still off once a child has
//! switched to another user with `fs.suid_dumpable` at 1. Alone in its own test binary: it changes
//! that system-wide setting for a while, and the flag of the whole test process.

mod common;

use std::os::unix::fs::MetadataExt;

use common::start_in;
use pm_actors::process::hardening::{is_dumpable, no_core_dumps};
use pm_actors::registry::*;
use pm_protocol::ProcessSpec;

const SUID_DUMPABLE: &str = "/proc/sys/fs/suid_dumpable";

/// Sets `fs.suid_dumpable` for the test and puts the old value back when dropped, pass or fail.
struct SuidDumpable {
    old: String,
}

impl SuidDumpable {
    fn set(value: &str) -> SuidDumpable {
        let old = std::fs::read_to_string(SUID_DUMPABLE).unwrap();
        std::fs::write(SUID_DUMPABLE, value).unwrap();
        SuidDumpable { old }
    }
}

impl Drop for SuidDumpable {
    fn drop(&mut self) {
        let _ = std::fs::write(SUID_DUMPABLE, self.old.trim());
    }
}

/// Kills the process group a test started when dropped.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    }
}

#[actix_rt::test]
async fn a_user_switch_leaves_the_daemon_undumpable_and_the_program_dumpable() {
    no_core_dumps().unwrap();
    assert!(!is_dumpable().unwrap(), "no_core_dumps left the flag on");
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped the user switch: it needs root, as a daemon running as another user");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the nobody user exists");
    let _sysctl = SuidDumpable::set("1");
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let mut spec = ProcessSpec::shell("as-nobody", "sleep 300");
    spec.user = Some("nobody".into());
    let info = start_in(&registry, spec).await.unwrap();
    let _kill = KillOnDrop(info.pid);
    assert!(
        !is_dumpable().unwrap(),
        "the child's setuid made the daemon dumpable"
    );
    // The program itself is dumpable again after its exec: its /proc files are its user's.
    let owner = std::fs::metadata(format!("/proc/{}/environ", info.pid))
        .unwrap()
        .uid();
    assert_eq!(owner, nobody.uid.as_raw());
    registry.send(Shutdown).await.unwrap().unwrap();
}
