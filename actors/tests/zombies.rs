//! Every child is reaped: after 200 start-and-exit cycles no child of this test process is a zombie.
//! (Its own test binary, so that no other test's children are counted.)

mod common;

use common::*;
use pm_protocol::ProcessSpec;

fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = pm_actors::process::procfs::read_stat(pid) else {
            continue;
        };
        if stat.ppid == me && stat.state == 'Z' {
            out.push(pid);
        }
    }
    out
}

#[actix_rt::test]
async fn two_hundred_cycles_leave_no_zombie() {
    let (_dir, opts) = options();
    let mut cleanup = Cleanup::default();
    let p = actor(ProcessSpec::shell("cycle", "exit 0"), opts);
    for _ in 0..200 {
        cleanup.group(p.start().await.unwrap());
        assert_eq!(p.wait().await.unwrap().code, Some(0));
    }
    assert_eq!(zombie_children(), Vec::<i32>::new());
}
