"""What every benchmarked supervisor provides, and the teardown that leaves nothing behind."""

import os
import signal
import time

from . import procfs


# The environment every daemon under test runs in, whatever the shell that started the bench: the
# managed `sleep`s inherit it, and it decides what each of them does before it sleeps. A caller's
# LANG=C.UTF-8 made every `sleep` load a dozen locale files (the bare floor of 1,000 starts, bench/floor.c,
# took 0.41-0.52 s with it and 0.32-0.42 s without), and a long PATH made every system search more
# directories for `sleep`.
DAEMON_PATH = "/usr/local/bin:/usr/bin:/bin"


def daemon_env(**extra):
    """The fixed environment of a daemon under test (see DAEMON_PATH), plus `extra`."""
    env = {"PATH": DAEMON_PATH, "LANG": "C", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def describe_env():
    """The fixed environment, as the table's header shows it."""
    return ", ".join(f"{k}={v}" for k, v in daemon_env().items())


class Skip(Exception):
    """The system cannot be installed or run here; the message says why."""


class System:
    """One supervisor under test. Subclasses drive it through its fastest native interface."""

    name = "?"
    version = "?"

    def install(self):
        """Installs (or finds) the system and sets `version`; raises Skip when it cannot."""

    def launch(self, workdir, n, restart_names):
        """Starts the daemon in `workdir`, knowing the N process names and the restartable ones."""
        raise NotImplementedError

    def roots(self):
        """Pids of the daemon's own top processes (its descendants are found from them)."""
        raise NotImplementedError

    def start_all(self, names):
        """Asks the daemon to start every process in `names` (`sleep 3600`, no restarts). It may
        return before the answers are in; `start_answers` checks them once the clock has stopped."""
        raise NotImplementedError

    def start_answers(self):
        """Reads and checks what `start_all` left unread (after the figure is taken)."""

    def start_restartable(self, names):
        """Asks the daemon to start each of `names` with automatic restarts on."""
        raise NotImplementedError

    def pid_of(self, name):
        """The pid the daemon reports for one process."""
        raise NotImplementedError

    def status_latencies(self, name, count, deadline_s):
        """Sequential status queries of one process on one connection: a list of seconds each."""
        raise NotImplementedError

    def throughput(self, name, clients, total, deadline_s):
        """`clients` parallel connections querying status; returns (queries done, seconds)."""
        raise NotImplementedError

    def stop_names(self, names):
        """Asks the daemon to stop `names` (used to take the restartable ones away before stop-all)."""
        raise NotImplementedError

    def stop_all(self, names):
        """Asks the daemon to stop all N benchmark processes."""
        raise NotImplementedError

    def shutdown(self):
        """Closes connections and helper processes of the driver (not the daemon)."""


def kill_tree(roots, timeout=10.0):
    """Freezes the roots so nothing respawns, SIGKILLs them and every descendant, waits until gone."""
    roots = [r for r in roots if r]
    if not roots:
        return
    for r in roots:
        try:
            os.kill(r, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    tree = procfs.ProcTree()
    tree.refresh()
    victims = tree.descendants(roots) | set(roots)
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Our own children must be reaped by us; others go to their new parent (init or a subreaper).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        alive = {p for p in victims if (procfs.read_stat(p) or (0, "", "Z"))[2] != "Z"}
        if not alive:
            return
        time.sleep(0.02)
