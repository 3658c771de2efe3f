//! The notify socket of a `ready:notify` process: a unix datagram socket of its own in the daemon's
//! run folder, given to it as `NOTIFY_SOCKET`, speaking the systemd protocol (`READY=1`, `STATUS=`,
//! `WATCHDOG=1`, `STOPPING=1`, `RELOADING=1`). Every datagram carries the sender's credentials
//! (`SO_PASSCRED`), checked against the current run's tree where the datagram is read: a sender
//! that exits right after its datagram is gone from `/proc` by the time the actor would look, and
//! the main pid needs no look at all. Descriptors that come with a datagram (`BARRIER=1` sends
//! one, and waits until it is closed) are closed once the actor has handled it.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use actix::Message;
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use tokio::io::Interest;
use tokio::sync::mpsc;

/// The most a datagram may hold; systemd's own limit is of this order.
const DATAGRAM_MAX: usize = 4096;

/// One datagram from a process's notify socket.
#[derive(Message)]
#[rtype(result = "()")]
pub struct NotifyDatagram {
    /// The sender's pid from its credentials (`None` when none came).
    pub pid: Option<i32>,
    /// The main pid of the run whose tree the sender was found in when the datagram was read
    /// (`None`: of no run's tree, or no run then).
    pub tree_of: Option<i32>,
    /// The text, `KEY=VALUE` lines.
    pub text: String,
    /// Descriptors that came with it, closed when the datagram is dropped.
    pub fds: Vec<OwnedFd>,
}

impl NotifyDatagram {
    /// The `KEY=VALUE` assignments, in order.
    pub fn assignments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text.lines().filter_map(|l| l.split_once('='))
    }
}

/// A bound notify socket: the file goes away with it, and so does its reading task.
pub struct NotifySocket {
    path: PathBuf,
    /// The main pid of the run that may speak (0: none), shared with the reading task.
    leader: Arc<AtomicI32>,
}

impl NotifySocket {
    /// Binds `path` (replacing a stale file) and reads it from a task on the calling thread's
    /// reactor; datagrams arrive on the returned channel.
    pub fn bind(
        path: &Path,
    ) -> io::Result<(NotifySocket, mpsc::UnboundedReceiver<NotifyDatagram>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let std_socket = std::os::unix::net::UnixDatagram::bind(path)?;
        let socket = NotifySocket {
            path: path.to_path_buf(),
            leader: Arc::new(AtomicI32::new(0)),
        };
        // A process run as another user must be able to send; its credentials decide, not the mode.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        setsockopt(&std_socket, sockopt::PassCred, &true).map_err(io::Error::from)?;
        std_socket.set_nonblocking(true)?;
        let socket_io = tokio::net::UnixDatagram::from_std(std_socket)?;
        let (tx, rx) = mpsc::unbounded_channel();
        actix::spawn(read_datagrams(socket_io, Arc::clone(&socket.leader), tx));
        Ok((socket, rx))
    }

    /// The run led by `pid` may speak from now on (0: none may).
    pub fn set_leader(&self, pid: i32) {
        self.leader.store(pid, Ordering::Relaxed);
    }

    /// The socket's path, for `NOTIFY_SOCKET`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads until the actor drops its receiver, checking each sender against the tree of `leader`
/// as it reads.
async fn read_datagrams(
    socket: tokio::net::UnixDatagram,
    leader: Arc<AtomicI32>,
    tx: mpsc::UnboundedSender<NotifyDatagram>,
) {
    loop {
        tokio::select! {
            () = tx.closed() => return,
            ready = socket.readable() => {
                if ready.is_err() {
                    return;
                }
            }
        }
        match socket.try_io(Interest::READABLE, || receive(socket.as_raw_fd())) {
            Ok(mut d) => {
                let leader = leader.load(Ordering::Relaxed);
                d.tree_of = d
                    .pid
                    .filter(|&p| leader > 0 && belongs_to(p, leader))
                    .map(|_| leader);
                if tx.send(d).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => tracing::debug!("notify socket: {e}"),
        }
    }
}

fn receive(fd: std::os::fd::RawFd) -> io::Result<NotifyDatagram> {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    let mut space = nix::cmsg_space!(libc::ucred, [std::os::fd::RawFd; 16]);
    let (bytes, pid, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_TRUNC,
        )
        .map_err(io::Error::from)?;
        let mut pid = None;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(io::Error::from)? {
            match c {
                ControlMessageOwned::ScmCredentials(cred) => pid = Some(cred.pid()),
                ControlMessageOwned::ScmRights(raw) => {
                    // SAFETY: the kernel just installed these descriptors for us; nobody else owns them.
                    fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
                }
                _ => {}
            }
        }
        (msg.bytes.min(DATAGRAM_MAX), pid, fds)
    };
    buf.truncate(bytes);
    Ok(NotifyDatagram {
        pid,
        tree_of: None,
        text: String::from_utf8_lossy(&buf).into_owned(),
        fds,
    })
}

/// Whether `pid` belongs to the tree of the run led by `leader` (it, in its process group, or one
/// of its descendants). The leader itself is known without a look at `/proc`.
fn belongs_to(pid: i32, leader: i32) -> bool {
    if pid == leader {
        return true;
    }
    if nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
        .is_ok_and(|g| g.as_raw() == leader)
    {
        return true;
    }
    let mut at = pid;
    for _ in 0..64 {
        match super::super::procfs::read_stat(at) {
            Ok(st) if st.ppid == leader => return true,
            Ok(st) if st.ppid > 1 => at = st.ppid,
            _ => return false,
        }
    }
    false
}
