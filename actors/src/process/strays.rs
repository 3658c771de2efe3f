//! Strays: processes that left their run's process group (a `setsid` child, a program that daemonizes
//! itself) but still carry the run's marker in their environment; found by scans of /proc and
//! signalled with the group.
//!
//! The marker is two variables every child of a registry gets ([`ENV_NAME`] and [`ENV_STATE`]): the
//! process's name and the state file of the daemon that started it. The state file names the daemon,
//! so two daemons (two sockets, two state folders) never touch each other's processes. A child
//! inherits its parent's environment, so a process that escapes the group keeps the marker unless it
//! clears or replaces its environment; such a process (and one whose environ this daemon may not read,
//! a setuid program) is not found: the README says so.
//!
//! One thread per state file does the scans ([`StrayScanner`]): reading every `/proc/<pid>/environ` is
//! blocking I/O that must stay off the actors' threads. Requests that arrive while a scan runs are
//! served together by the next one, so a shutdown of a thousand processes costs a few scans, not a
//! thousand. Each candidate is opened as a pidfd *before* its environ is read and signalled through
//! that pidfd, so a pid recycled between the read and the signal is never reached.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, OnceLock};

use tokio::sync::oneshot;

use super::pidfd;
use crate::registry::{ENV_NAME, ENV_STATE};

/// The most rounds a [`Sweep::Kill`] makes: each round finds the children forked during the last one,
/// so a fork loop is caught within a few; the cap only bounds a pathological one.
const MAX_KILL_ROUNDS: usize = 100;

/// What a request does to the processes carrying a name's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Send `sig` (then SIGCONT, so a stopped process acts on it, as a group stop does), except to
    /// the members of `skip_pgid`, which the group signal already reached.
    Signal {
        /// The signal number.
        sig: i32,
        /// The group the signal already reached.
        skip_pgid: Option<i32>,
    },
    /// Only count them (zombies carry no environment and do not count).
    Count,
    /// SIGKILL them, scan again and kill what was forked meanwhile, until a scan finds none new.
    Kill,
}

struct Request {
    name: String,
    sweep: Sweep,
    /// Killed so far (a [`Sweep::Kill`] runs over several scans).
    killed: HashSet<i32>,
    rounds: usize,
    reply: Option<oneshot::Sender<usize>>,
}

/// Finds and signals the strays of one daemon (one state file). Cheap to clone.
#[derive(Clone, Debug)]
pub struct StrayScanner {
    tx: mpsc::Sender<Request>,
}

impl StrayScanner {
    /// The scanner of the daemon whose state file is `state_file`, its thread started on first use
    /// and shared by every actor of that daemon.
    pub fn shared(state_file: &Path) -> Option<StrayScanner> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, StrayScanner>>> = OnceLock::new();
        let mut all = ALL
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get(state_file) {
            return Some(s.clone());
        }
        let (tx, rx) = mpsc::channel();
        let var = state_var(state_file);
        let spawned = std::thread::Builder::new()
            .name("pm-strays".into())
            .spawn(move || serve(&var, rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the stray scanner: {e}");
            return None;
        }
        let scanner = StrayScanner { tx };
        all.insert(state_file.to_path_buf(), scanner.clone());
        Some(scanner)
    }

    /// Runs `sweep` over the marker-holders of `name`; answers how many it found (killed, for a
    /// [`Sweep::Kill`]). Never blocks: the scan runs on the scanner's thread.
    pub fn sweep(&self, name: &str, sweep: Sweep) -> impl std::future::Future<Output = usize> {
        let (tx, rx) = oneshot::channel();
        self.send(name, sweep, Some(tx));
        async move { rx.await.unwrap_or(0) }
    }

    /// [`StrayScanner::sweep`] without waiting for its answer.
    pub fn sweep_and_forget(&self, name: &str, sweep: Sweep) {
        self.send(name, sweep, None);
    }

    fn send(&self, name: &str, sweep: Sweep, reply: Option<oneshot::Sender<usize>>) {
        let _ = self.tx.send(Request {
            name: name.to_string(),
            sweep,
            killed: HashSet::new(),
            rounds: 0,
            reply,
        });
    }
}

/// `PROCESSMANAGER_STATE=<file>`, as it stands in a child's environment.
fn state_var(state_file: &Path) -> Vec<u8> {
    format!("{ENV_STATE}={}", state_file.display()).into_bytes()
}

/// The process name in an `environ` image (NUL-separated) that holds `state_var`, if it does.
fn marked_name<'a>(environ: &'a [u8], state_var: &[u8]) -> Option<&'a str> {
    let mut vars = environ.split(|&b| b == 0);
    if !vars.clone().any(|v| v == state_var) {
        return None;
    }
    vars.find_map(|v| {
        let v = std::str::from_utf8(v).ok()?;
        v.strip_prefix(ENV_NAME)?.strip_prefix('=')
    })
}

/// A process of this daemon's marker, found by one scan.
pub(crate) struct Marked {
    pub pid: i32,
    pub name: String,
    /// Signals exactly this process (`None` on kernels without pidfds: then by pid).
    fd: Option<std::os::fd::OwnedFd>,
}

impl Marked {
    /// Sends `sig`; a process gone meanwhile is not an error worth a word.
    fn signal(&self, sig: i32) {
        let _ = match &self.fd {
            Some(fd) => pidfd::send_signal(fd, sig).map_err(|_| ()),
            // SAFETY: kill takes a pid and a signal number; no memory is involved.
            None => match unsafe { libc::kill(self.pid, sig) } {
                0 => Ok(()),
                _ => Err(()),
            },
        };
    }
}

/// One scan of /proc: every process (not this one) whose environment holds `state_var`, with its name.
/// Blocking: call it on a thread of its own or `spawn_blocking`.
pub(crate) fn scan(state_var: &[u8]) -> Vec<Marked> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        if pid == me {
            continue;
        }
        // Opened first: whatever the environ read says is then about this very process.
        let fd = match pidfd::open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(_) => continue,
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if let Some(name) = marked_name(&environ, state_var) {
            let name = name.to_string();
            found.push(Marked { pid, name, fd });
        }
    }
    found
}

/// The processes carrying the marker of the daemon whose state file is `state_file`, as (pid, name).
pub fn marked_processes(state_file: &Path) -> Vec<(i32, String)> {
    scan(&state_var(state_file))
        .into_iter()
        .map(|m| (m.pid, m.name))
        .collect()
}

/// At a daemon's start: SIGKILLs every process of its marker whose name is not in `keep` (the
/// processes it adopts, and the detached ones, whose descendants may outlive a daemon). These are
/// what a daemon killed by SIGKILL leaves behind: its group guard killed the groups, not the
/// processes that had left them. Answers how many it killed. Blocking.
pub fn kill_left_behind(state_file: &Path, keep: &HashSet<String>) -> usize {
    let var = state_var(state_file);
    let mut killed = HashSet::new();
    for _ in 0..MAX_KILL_ROUNDS {
        let mut new = 0;
        for m in scan(&var) {
            if !keep.contains(&m.name) && killed.insert(m.pid) {
                m.signal(libc::SIGKILL);
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
    }
    killed.len()
}

/// The scanner's thread: serves every pending request with one scan, until every sender is gone.
fn serve(state_var: &[u8], rx: mpsc::Receiver<Request>) {
    let mut pending: Vec<Request> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv() {
                Ok(r) => pending.push(r),
                Err(_) => return,
            }
        }
        pending.extend(rx.try_iter());
        let mut found = vec![0usize; pending.len()];
        let mut new = vec![0usize; pending.len()];
        // The requests by name: a stop of every process asks for thousands of names at once, and
        // each marked process must find its own without a walk of all of them.
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, req) in pending.iter().enumerate() {
            by_name.entry(req.name.clone()).or_default().push(i);
        }
        for m in scan(state_var) {
            let Some(asking) = by_name.get(&m.name) else {
                continue;
            };
            // The group is only read when a request skips one.
            let mut pgid = None;
            for &i in asking {
                let req = &mut pending[i];
                found[i] += 1;
                match req.sweep {
                    Sweep::Count => {}
                    Sweep::Signal { sig, skip_pgid } => {
                        let group = *pgid.get_or_insert_with(|| {
                            // SAFETY: getpgid takes a pid and touches no memory.
                            unsafe { libc::getpgid(m.pid) }
                        });
                        if skip_pgid != Some(group) {
                            m.signal(sig);
                            m.signal(libc::SIGCONT);
                        }
                    }
                    Sweep::Kill => {
                        if req.killed.insert(m.pid) {
                            m.signal(libc::SIGKILL);
                            new[i] += 1;
                        }
                    }
                }
            }
        }
        let mut again = Vec::new();
        for (i, mut req) in pending.drain(..).enumerate() {
            req.rounds += 1;
            if req.sweep == Sweep::Kill && new[i] > 0 && req.rounds < MAX_KILL_ROUNDS {
                again.push(req);
                continue;
            }
            let n = match req.sweep {
                Sweep::Kill => req.killed.len(),
                _ => found[i],
            };
            if let Some(reply) = req.reply.take() {
                let _ = reply.send(n);
            }
        }
        pending = again;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_needs_both_variables() {
        let var = b"PROCESSMANAGER_STATE=/run/pm/state.json";
        let env = b"A=1\0PROCESSMANAGER_NAME=web\0PROCESSMANAGER_STATE=/run/pm/state.json\0";
        assert_eq!(marked_name(env, var), Some("web"));
        let other = b"PROCESSMANAGER_NAME=web\0PROCESSMANAGER_STATE=/other/state.json\0";
        assert_eq!(marked_name(other, var), None);
        assert_eq!(
            marked_name(b"PROCESSMANAGER_STATE=/run/pm/state.json", var),
            None
        );
        assert_eq!(marked_name(b"", var), None);
    }
}
