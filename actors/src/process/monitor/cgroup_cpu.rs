//! A tree's CPU from its cgroup's `cpu.stat` (cgroup mode): the time of every process in the
//! cgroup, those that left the tree (a `setsid` or double-forked child, reparented to the daemon) and
//! those that have exited included, which a walk of the tree from its root cannot see. And a gate: a
//! `usage_usec` that has not moved since the previous tick means no process of the cgroup ran, so
//! none changed its state, its threads or its children, and the tick reads nothing else.

use std::path::Path;

use super::kept::ProcFile;
use crate::process::procfs::pread_all;

/// A cgroup's `cpu.stat`, kept open while the monitor's share of descriptors allows.
#[derive(Debug)]
pub(super) struct CgroupCpu {
    file: ProcFile,
    /// `usage_usec` at the last read; `None` before the first.
    usage_usec: Option<u64>,
    /// What a read since the last sample found and the sample has not used yet, in microseconds.
    pending_usec: Option<u64>,
    /// The last read was the first (no figure to compare): the sample counts from the tree.
    fresh: bool,
}

impl CgroupCpu {
    /// The CPU of the cgroup at `dir`; nothing is read before the first tick.
    pub(super) fn new(dir: &Path) -> CgroupCpu {
        CgroupCpu {
            file: ProcFile::at(&dir.join("cpu.stat")),
            usage_usec: None,
            pending_usec: None,
            fresh: false,
        }
    }

    /// Whether the cgroup has used no CPU since the last read (`false` when that is not known: the
    /// first read, or a file that cannot be read). What it used is kept for [`CgroupCpu::used_usec`].
    pub(super) fn quiet(&mut self, buf: &mut Vec<u8>) -> bool {
        match self.read(buf) {
            Some(0) => true,
            used => {
                self.fresh = used.is_none();
                self.pending_usec = used;
                false
            }
        }
    }

    /// Microseconds of CPU the cgroup used since the previous sample; `None` when the cgroup has no
    /// earlier reading (or cannot be read), so that the caller counts from the tree instead.
    pub(super) fn used_usec(&mut self, buf: &mut Vec<u8>) -> Option<u64> {
        if std::mem::take(&mut self.fresh) {
            return None;
        }
        self.pending_usec.take().or_else(|| self.read(buf))
    }

    /// Forgets the last reading: the next one starts anew (the sampler stopped reading the file for
    /// a while, and what the cgroup used meanwhile was counted from the tree).
    pub(super) fn forget(&mut self) {
        self.usage_usec = None;
        self.pending_usec = None;
        self.fresh = false;
    }

    /// Reads `usage_usec`; answers how far it moved since the last read.
    fn read(&mut self, buf: &mut Vec<u8>) -> Option<u64> {
        self.file.read(|f| pread_all(f, buf)).ok()?;
        let now = usage_usec(buf)?;
        let before = self.usage_usec.replace(now)?;
        Some(now.saturating_sub(before))
    }
}

/// The `usage_usec` line of a `cpu.stat`.
pub(super) fn usage_usec(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_usec_of_a_cpu_stat() {
        let text = b"usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n";
        assert_eq!(usage_usec(text), Some(1_234_567));
        assert_eq!(usage_usec(b"user_usec 5\n"), None);
    }

    #[test]
    fn quiet_until_the_usage_moves_and_the_move_is_kept_for_the_sample() {
        let dir = std::env::temp_dir().join(format!("pm-cgroup-cpu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |usec: u64| {
            std::fs::write(
                dir.join("cpu.stat"),
                format!("usage_usec {usec}\nuser_usec 0\n"),
            )
            .unwrap()
        };
        let mut buf = Vec::new();
        write(100);
        let mut cpu = CgroupCpu::new(&dir);
        assert!(!cpu.quiet(&mut buf), "no earlier reading: not known");
        assert_eq!(cpu.used_usec(&mut buf), None, "counted from the tree");
        assert_eq!(cpu.used_usec(&mut buf), Some(0));
        assert!(cpu.quiet(&mut buf));
        write(350);
        assert!(!cpu.quiet(&mut buf));
        assert_eq!(cpu.used_usec(&mut buf), Some(250), "the move the gate saw");
        assert_eq!(cpu.used_usec(&mut buf), Some(0), "read anew");
        cpu.forget();
        write(1000);
        assert_eq!(cpu.used_usec(&mut buf), None, "no figure after a forget");
        assert!(cpu.quiet(&mut buf));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A child of the test's own in its own group, moved into `cgroup`, killed and reaped when dropped.
    struct InCgroup(std::process::Child);

    impl InCgroup {
        fn new(cgroup: &Path, script: &str) -> InCgroup {
            use std::os::unix::process::CommandExt;
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap();
            let child = InCgroup(child);
            std::fs::write(cgroup.join("cgroup.procs"), child.0.id().to_string()).unwrap();
            child
        }
    }

    impl Drop for InCgroup {
        fn drop(&mut self) {
            // SAFETY: our own child's group.
            unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
            let _ = self.0.wait();
        }
    }

    /// The CPU of a process that is in the cgroup but not in the tree (one that left it) counts, and
    /// once nothing in the cgroup runs, ticks show none and the tree as it was.
    #[test]
    fn the_trees_cpu_is_its_cgroups_and_a_quiet_cgroup_reads_as_before() {
        let place = match crate::process::cgroup::place() {
            Ok(place) => place,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        };
        let dir = place
            .parent
            .join(format!("pm-monitor-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // A tree of three: the cgroup's file stands in for trees of that size. Its root asleep in
        // `wait`, as it stays: the repeated reading at the end must show the state it has then.
        let root = InCgroup::new(&dir, "sleep 60 & sleep 60 & wait");
        let mut sampler = super::super::TreeSampler::new(root.0.id() as i32).in_cgroup(&dir);
        let mut first = sampler.sample().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while first.processes < super::super::tree::CGROUP_PAYS_FROM
            || first.state != pm_protocol::KernelState::Sleeping
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no tree of three: {first:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
            first = sampler.sample().unwrap();
        }
        let burner = InCgroup::new(&dir, "while :; do :; done");
        let mut busy = sampler.tick().unwrap();
        while busy.cpu_seconds < 0.05 {
            assert!(
                std::time::Instant::now() < deadline,
                "no CPU seen: {busy:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            busy = sampler.tick().unwrap();
        }
        assert_eq!(
            busy.processes, 3,
            "the burner is in the cgroup, not in the tree"
        );
        assert!(busy.cpu_percent > 0.0, "{busy:?}");
        drop(burner);
        let mut quiet = sampler.tick().unwrap();
        while quiet.cpu_percent != 0.0 {
            assert!(
                std::time::Instant::now() < deadline,
                "never quiet: {quiet:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
            quiet = sampler.tick().unwrap();
        }
        let again = sampler.tick().unwrap();
        assert_eq!(again.cpu_percent, 0.0);
        assert_eq!((again.processes, again.state), (3, first.state));
        assert_eq!(again.cpu_seconds, quiet.cpu_seconds, "nothing ran");
        drop(root);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::remove_dir(&dir).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the cgroup never emptied"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
