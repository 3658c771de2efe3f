//! Reaping orphans: processes the kernel hands to this subreaper when their parent dies (a managed
//! program's daemonized or `setsid` children), which nobody here would otherwise wait for.
//!
//! Every child this crate starts itself is listed from its clone until its owner has reaped it; the
//! list is taken around the clone, so a look never sees one of ours unlisted. On SIGCHLD (a burst of
//! exits is one look) the reaper first peeks at the exited children one at a time (`waitid` with
//! `WNOWAIT`) and reaps those not listed, until none is left: when the exit was one of ours, reaped
//! by its owner meanwhile, that costs one `waitid`. Only when an exited child of ours stays in front
//! (its owner has not reaped it yet) does it list every child (`/proc/self/task/*/children`, or a
//! /proc scan where the kernel lacks that file) and reap those not listed. Such a scan costs in
//! proportion to the daemon's children, and holds back its clones, so the next one waits
//! [`SCAN_SPACING`] times as long as the last took. Only a program whose children all come from
//! this crate may turn the reaper on ([`reap_orphans`]): the daemon does. A program that starts
//! children of its own elsewhere must not, or the reaper would take their exit statuses.
//!
//! The list also keeps each child's start time when its clone pinned it down ([`start_ticks`]): the
//! registry records a run by pid and start time, and a /proc read of it cost a tenth of the daemon's
//! CPU in a burst of starts.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::procfs;

/// Children this crate started and reaps itself, with their start times in clock ticks where known.
static OWN: Mutex<Option<HashMap<i32, Option<u64>>>> = Mutex::new(None);

/// How long the reaper lets further SIGCHLDs gather before it scans again, at least.
const GATHER: Duration = Duration::from_millis(20);
/// The reaper waits at least this many times as long as its last scan took before the next one.
const SCAN_SPACING: u32 = 4;

/// The list of our own children, held across a spawn so that its pid is listed before any scan.
pub(crate) struct OwnChildren(MutexGuard<'static, Option<HashMap<i32, Option<u64>>>>);

/// Takes the list of our own children (a poisoned lock only means a panic elsewhere: the set is whole).
pub(crate) fn own_children() -> OwnChildren {
    OwnChildren(OWN.lock().unwrap_or_else(|p| p.into_inner()))
}

impl OwnChildren {
    /// `pid` is a child of ours, reaped by its owner; `start_ticks` is field 22 of its stat, if known.
    pub(crate) fn add(&mut self, pid: i32, start_ticks: Option<u64>) {
        self.0
            .get_or_insert_with(HashMap::new)
            .insert(pid, start_ticks);
    }
}

/// The start time of `pid` (field 22 of its stat) if it is a child of ours, not yet reaped, whose
/// clone pinned it down.
pub(crate) fn start_ticks(pid: i32) -> Option<u64> {
    own_children().0.as_ref()?.get(&pid).copied().flatten()
}

/// `pid` has been reaped by its owner.
pub(crate) fn forget(pid: i32) {
    if let Some(own) = own_children().0.as_mut() {
        own.remove(&pid);
    }
}

/// Makes this process a child subreaper, once: orphaned grandchildren come to us and are reaped, rather
/// than to an init that may never reap them (leaving zombies that keep a stopped group "alive").
pub(crate) fn become_subreaper() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        // SAFETY: prctl with an integer argument.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if r != 0 {
            tracing::warn!(
                "cannot become a child subreaper: {}",
                std::io::Error::last_os_error()
            );
        }
    });
}

/// Turns on the orphan reaper for this process (once; later calls answer the first one's result).
/// For programs whose only children are the ones this crate starts; see the module docs.
pub fn reap_orphans() -> Result<(), String> {
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    STARTED.get_or_init(start_reaper).clone()
}

fn start_reaper() -> Result<(), String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("pm-orphans".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let rt = match runtime {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            rt.block_on(async move {
                let mut sigchld =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) {
                        Ok(s) => s,
                        Err(e) => return drop(ready_tx.send(Err(e))),
                    };
                let _ = ready_tx.send(Ok(()));
                reap_unlisted();
                let mut next_scan = Instant::now();
                loop {
                    if sigchld.recv().await.is_none() {
                        return;
                    }
                    tokio::time::sleep(GATHER).await;
                    if reap_by_peeking() {
                        continue;
                    }
                    // One of ours in front: its owner reaps it within a moment; look once more
                    // before listing every child.
                    tokio::time::sleep(GATHER).await;
                    if reap_by_peeking() {
                        continue;
                    }
                    tokio::time::sleep_until(next_scan.into()).await;
                    let began = Instant::now();
                    reap_unlisted();
                    next_scan = Instant::now() + began.elapsed() * SCAN_SPACING;
                }
            })
        })
        .map_err(|e| format!("cannot start the orphan reaper: {e}"))?;
    // The handler is in place before this returns: no exit after it goes unnoticed.
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot start the orphan reaper: {e}")),
        Err(_) => Err("the orphan reaper ended before it started".into()),
    }
}

/// Reaps exited children that are not our own, as long as the first exited child is one: answers
/// `true` when none is left, `false` when an exited child of ours is in front of any others.
fn reap_by_peeking() -> bool {
    // Held throughout: a pid seen here cannot become a new child of ours before it is reaped.
    let own = own_children();
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: WNOWAIT leaves the child waitable; WNOHANG never blocks.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: filled in by a successful waitid (0 when no child has exited).
        let pid = if r == 0 { unsafe { info.si_pid() } } else { 0 };
        if pid <= 0 {
            return true;
        }
        if own.0.as_ref().is_some_and(|own| own.contains_key(&pid)) {
            return false;
        }
        let mut status = 0;
        // SAFETY: an exited child of this process that nobody here owns; WNOHANG never blocks.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } <= 0 {
            return false;
        }
    }
}

/// Reaps every exited child of this process that is not one of our own; answers how many.
fn reap_unlisted() -> usize {
    let children = children_of_self();
    // Taken after the listing: a child of ours already cloned is listed once the lock is ours.
    let own = own_children();
    let mut reaped = 0;
    for pid in children {
        if own.0.as_ref().is_some_and(|own| own.contains_key(&pid)) {
            continue;
        }
        let mut status = 0;
        // SAFETY: a child of this process; WNOHANG never blocks.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } > 0 {
            reaped += 1;
        }
    }
    reaped
}

/// The pids of this process's children: every thread's `children` list, or a scan of /proc where the
/// kernel has no such file.
fn children_of_self() -> Vec<i32> {
    let me = std::process::id() as i32;
    procfs::children_of(me).unwrap_or_else(|| {
        procfs::scan_all()
            .filter(|(_, stat)| stat.ppid == me)
            .map(|(pid, _)| pid)
            .collect()
    })
}
