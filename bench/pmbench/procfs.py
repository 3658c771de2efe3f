"""/proc readers: which processes belong to a supervisor, what they cost, and when pids come and go."""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MANAGED_COMM = "sleep"


def read_stat(pid):
    """(ppid, comm, state, utime+stime ticks) of a pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm may hold spaces and parentheses: it runs to the last ')'.
    lpar, rpar = raw.index(b"("), raw.rindex(b")")
    comm = raw[lpar + 1 : rpar].decode(errors="replace")
    rest = raw[rpar + 2 :].split()
    state, ppid = rest[0].decode(), int(rest[1])
    ticks = int(rest[11]) + int(rest[12])
    return ppid, comm, state, ticks


def daemon_cpu(pid):
    """CPU time of all the daemon's threads, in seconds, to the nanosecond (schedstat)."""
    return sum(thread_cpu(pid).values())


def thread_cpu(pid):
    """CPU time of each of the daemon's threads in seconds, by thread name (threads of one name
    summed; a thread that ended is not counted)."""
    by_name = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended between the listing and the read
        by_name[name] = by_name.get(name, 0) + ns / 1e9
    return by_name


def rss_kb(pid):
    """VmRSS of a pid in KiB (0 when gone or a kernel thread)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def pids_now():
    """The set of pids in /proc right now (zombies included until they are reaped)."""
    return {int(d) for d in os.listdir("/proc") if d.isdigit()}


def last_pid():
    """The last pid the kernel handed out in this pid namespace."""
    with open("/proc/sys/kernel/ns_last_pid") as f:
        return int(f.read())


class ProcTree:
    """An incrementally refreshed view of /proc: reads the stat of new pids only, so a scan of a
    machine with a thousand managed processes costs a directory listing, not a thousand reads."""

    def __init__(self):
        self.info = {}  # pid -> (ppid, comm)

    def refresh(self):
        now = pids_now()
        for gone in self.info.keys() - now:
            del self.info[gone]
        for pid in now:
            known = self.info.get(pid)
            # A child between fork and exec still has its parent's name: look at it again.
            if known is None or known[1] != MANAGED_COMM:
                st = read_stat(pid)
                if st is not None:
                    self.info[pid] = (st[0], st[1])
        return now

    def descends_from(self, pid, root):
        seen = 0
        while pid in self.info and seen < 64:
            pid = self.info[pid][0]
            if pid == root:
                return True
            seen += 1
        return False

    def descendants(self, roots):
        return {p for p in self.info if any(self.descends_from(p, r) for r in roots)}

    def managed(self, roots):
        """Running managed processes (exec'd `sleep`) below the supervisor's processes."""
        return {p for p in self.descendants(roots) if self.info[p][1] == MANAGED_COMM}

    def helpers(self, roots):
        """The supervisor's own processes: its roots and every descendant that is neither a managed
        process nor a wrapper (such as `sh -c`) standing above one."""
        desc = self.descendants(roots)
        managed = {p for p in desc if self.info[p][1] == MANAGED_COMM}
        wrappers = set()
        for m in managed:
            p = self.info[m][0]
            while p in desc and p not in roots:
                wrappers.add(p)
                p = self.info[p][0]
        return (set(roots) | desc) - managed - wrappers


def machine_busy(window):
    """The share of the whole machine's CPU time that was busy over `window` seconds (0 to 1)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], sum(v)
    b0, t0 = sample()
    time.sleep(window)
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0)


def wait_quiet(max_busy=0.10, window=0.5, timeout=30.0):
    """Waits until the machine is quiet (less than `max_busy` of its CPU busy over `window`), so that
    a system's start is not measured against the teardown of the one before; gives up after `timeout`.
    Returns the last busy share seen."""
    t0 = time.monotonic()
    while True:
        busy = machine_busy(window)
        if busy < max_busy or time.monotonic() - t0 > timeout:
            return busy


def wait_until(cond, timeout, what, interval=0.001):
    """Polls cond() until it is true; returns the time it took. Raises TimeoutError at the deadline."""
    t0 = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def cpu_and_rss(tree, roots, seconds):
    """CPU (% of one core) of the supervisor's own processes over `seconds`, and their summed RSS (MB)."""
    tree.refresh()
    helpers = tree.helpers(roots)
    t0 = time.monotonic()
    before = {p: (read_stat(p) or (0, "", "", 0))[3] for p in helpers}
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    tree.refresh()
    helpers_after = tree.helpers(roots)
    used = 0
    for p in helpers_after:
        st = read_stat(p)
        if st is not None:
            used += st[3] - before.get(p, 0)
    rss = sum(rss_kb(p) for p in helpers_after)
    return 100.0 * used / CLK_TCK / elapsed, rss / 1024.0, len(helpers_after)


class NewPids:
    """The managed processes that start below `roots` after it is made, found by watching the kernel's
    last-pid counter: each poll reads only the pids handed out since the last one (and those still
    between fork and exec), never a /proc listing or every process's ancestry. At 1,000 processes a
    full poll (listing /proc and walking each process's parents) costs about 4 ms of Python; a poll
    every millisecond would take most of a core from the system being measured."""

    MISSING_GRACE_S = 0.5

    def __init__(self, tree, roots, known):
        self.tree, self.roots, self.known = tree, roots, known
        self.last = last_pid()
        self.pending = set()
        self.missing = {}
        self.found = set()

    def _ours(self, pid):
        return any(self.tree.descends_from(pid, r) for r in self.roots)

    def poll(self):
        """Reads what is new; returns the set of new managed pids seen running so far."""
        now_last = last_pid()
        if now_last != self.last:
            if now_last > self.last:
                self.pending.update(range(self.last + 1, now_last + 1))
            else:  # pid numbers wrapped: fall back to a full listing
                self.pending.update(pids_now() - self.known - self.found)
            self.last = now_last
        # In pid order, so that a parent is known before its children.
        now = time.monotonic()
        for pid in sorted(self.pending):
            st = read_stat(pid)
            if st is None:
                # Handed out but not in /proc yet (a clone in progress), or gone: given up on only
                # once it has stayed missing for a while.
                since = self.missing.setdefault(pid, now)
                if now - since > self.MISSING_GRACE_S:
                    self.pending.discard(pid)
                    del self.missing[pid]
                continue
            self.missing.pop(pid, None)
            self.tree.info[pid] = (st[0], st[1])
            if not self._ours(pid):
                self.pending.discard(pid)
            elif st[1] == MANAGED_COMM and st[2] != "Z":
                self.pending.discard(pid)
                if pid not in self.known:
                    self.found.add(pid)
        return self.found


class NewPidWatcher:
    """Waits for a managed process that is not in `known` to be running. Made before the kill, so a
    replacement forked at once is not missed."""

    def __init__(self, tree, roots, known):
        self.new = NewPids(tree, roots, known)

    def wait(self, timeout):
        """Returns (monotonic time the replacement was first seen running, its pid)."""
        t0 = time.monotonic()
        while True:
            found = self.new.poll()
            if found:
                return time.monotonic(), min(found)
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"no replacement process within {timeout:.0f} s")
            time.sleep(0.0001)


class AllGone:
    """Whether every pid of a set has left /proc. Each poll looks at the pids not yet seen gone, one
    at a time, and stops at the first that is still there: the whole wait reads each pid about once."""

    def __init__(self, pids):
        self.left = sorted(pids)

    def __call__(self):
        while self.left and not os.path.exists(f"/proc/{self.left[-1]}"):
            self.left.pop()
        return not self.left
