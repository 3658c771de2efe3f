//! Processes run as another user: ids, supplementary groups, log file ownership, unknown users.
//! Run as root (as here); as another user the daemon must refuse with a clear error instead.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::start_in;
use pm_actors::registry::*;
use pm_protocol::{PmError, ProcessSpec, Status};

fn nobody() -> nix::unistd::User {
    nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the nobody user exists")
}

#[actix_rt::test]
async fn a_process_runs_with_its_users_ids_and_owns_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let mut spec = ProcessSpec::shell("as-nobody", "id -u; id -g; id -G; sleep 300");
    spec.user = Some("nobody".into());
    spec.log.enabled = true;
    let started = start_in(&registry, spec).await;
    if !nix::unistd::Uid::effective().is_root() {
        let e = started.unwrap_err().to_string();
        assert!(e.contains("needs a daemon running as root"), "{e}");
        return;
    }
    let info = started.unwrap();
    let _kill = KillOnDrop(info.pid);
    let who = nobody();
    let end = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let ask = GetProcessLogs {
            name: "as-nobody".into(),
            lines: None,
        };
        let lines = registry.send(ask).await.unwrap().unwrap();
        if lines.len() >= 3 {
            break lines;
        }
        assert!(
            Instant::now() < end,
            "the child never printed its ids: {lines:?}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines[0].text, who.uid.to_string());
    assert_eq!(lines[1].text, who.gid.to_string());
    // Supplementary groups are the user's own, not the daemon's (root's).
    let groups: Vec<u32> = lines[2]
        .text
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    assert!(
        groups.contains(&who.gid.as_raw()) && !groups.contains(&0),
        "{groups:?}"
    );
    let stat = std::fs::read_to_string(format!("/proc/{}/status", info.pid)).unwrap();
    let uid_line = stat.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == who.uid.to_string()),
        "{uid_line}"
    );
    let log = dir.path().join("logs/as-nobody.log");
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (who.uid.as_raw(), who.gid.as_raw())
    );
    registry.send(Shutdown).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn a_detached_process_as_another_user_owns_its_log_file() {
    if !nix::unistd::Uid::effective().is_root() {
        return; // covered by the refusal in the test above
    }
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let mut spec = ProcessSpec::shell("bg-nobody", "id -u; sleep 300");
    spec.user = Some("nobody".into());
    spec.detach = true;
    spec.log.enabled = true;
    let info = start_in(&registry, spec).await.unwrap();
    let _kill = KillOnDrop(info.pid);
    let log = dir.path().join("logs/bg-nobody.log");
    let who = nobody();
    let end = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&log).unwrap_or_default().trim() != who.uid.to_string() {
        assert!(Instant::now() < end, "the child never wrote its uid");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::metadata(&log).unwrap().uid(), who.uid.as_raw());
    registry
        .send(KillProcess {
            name: "bg-nobody".into(),
        })
        .await
        .unwrap()
        .unwrap();
}

#[actix_rt::test]
async fn an_unknown_user_or_group_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(RegistryConfig::in_dir(dir.path())).start();
    let mut spec = ProcessSpec::shell("ghost", "sleep 300");
    spec.user = Some("no-such-user-pm".into());
    let e = start_in(&registry, spec).await.unwrap_err();
    assert_eq!(e, PmError::UnknownUser("no-such-user-pm".into()));
    let mut spec = ProcessSpec::shell("ghost-group", "sleep 300");
    spec.group = Some("no-such-group-pm".into());
    let e = start_in(&registry, spec).await.unwrap_err();
    assert_eq!(e, PmError::UnknownUser("no-such-group-pm".into()));
    let status = registry
        .send(GetStatus {
            name: "ghost".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.status, Status::Failed);
    assert!(status.error.contains("no-such-user-pm"), "{}", status.error);
    registry.send(Shutdown).await.unwrap().unwrap();
}

struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signals a group this test started; harmless when it is gone.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}
