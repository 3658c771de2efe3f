"""The workload: start N, idle, restart after SIGKILL, status queries, stop N; the same for every system."""

import os
import shutil
import signal
import statistics
import tempfile
import time

from . import procfs
from .base import kill_tree


class Settings:
    """How much of each figure to measure and how long any wait may take."""

    def __init__(self, quick=False):
        # 100: the p99 of 20 tries would be their worst, one unlucky kill.
        self.restart_tries = 5 if quick else 100
        self.idle_s = 5.0 if quick else 20.0
        self.settle_s = 1.0 if quick else 3.0
        self.status_count = 100 if quick else 1000
        self.status_deadline_s = 10.0 if quick else 60.0
        self.clients = 16
        self.tp_total = 2000 if quick else 20000
        self.tp_deadline_s = 10.0 if quick else 30.0
        self.start_timeout_s = 300.0
        self.stop_timeout_s = 300.0
        self.restart_timeout_s = 10.0
        # Restartable processes run this long before the first kill: past supervisord's startsecs (1 s)
        # and pm2's min_uptime (1 s), so each kill is a crash of a process that was up, not a crash loop.
        self.restart_warmup_s = 1.5


def percentile(values, p):
    """Nearest-rank percentile (p99 of 20 values is the largest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def load():
    return os.getloadavg()[0]


class Progress:
    """How far a start got: the most processes seen running, and when the last of them appeared."""

    def __init__(self, t0):
        self.t0, self.most, self.last_at = t0, 0, t0

    def saw(self, count):
        if count > self.most:
            self.most, self.last_at = count, time.monotonic()
        return count

    def __str__(self):
        return (f"{self.most:,} were running, the last of them {self.last_at - self.t0:.1f} s after the "
                f"first request")


def timed_start(system, names, tree, roots, before, cfg):
    """Seconds from the first start request until every one of `names` runs (an exec'd `sleep`)."""
    n = len(names)
    new = procfs.NewPids(tree, roots, before)
    t0 = time.monotonic()
    system.start_all(names)
    # Every 5 ms: each poll reads the pids new since the last one, and those still between fork and
    # exec, again; every millisecond that took a fifth of a core from the system being measured.
    progress = Progress(t0)
    try:
        procfs.wait_until(lambda: progress.saw(len(new.poll())) >= n, cfg.start_timeout_s,
                          f"{n} processes to run", interval=0.005)
    except TimeoutError as e:
        raise TimeoutError(f"{e}: {progress}") from None
    took = time.monotonic() - t0
    system.start_answers()
    return took


def measure_start(system, n, cfg):
    """Only the start of N, as `measure` times it, on a fresh daemon; then everything is torn down."""
    workdir = tempfile.mkdtemp(prefix=f"pmbench-{system.name}-start-{n}-")
    tree = procfs.ProcTree()
    names = [f"s{i}" for i in range(1, n + 1)]
    try:
        system.launch(workdir, names, [])
        roots = system.roots()
        tree.refresh()
        before = tree.managed(roots)
        procfs.wait_quiet()
        return timed_start(system, names, tree, roots, before, cfg)
    finally:
        try:
            system.shutdown()
        finally:
            kill_tree(system.roots())
            shutil.rmtree(workdir, ignore_errors=True)


def measure(system, n, cfg, say):
    """Runs the whole workload on one system at one N; returns {figure: value} (missing = not reached)."""
    workdir = tempfile.mkdtemp(prefix=f"pmbench-{system.name}-{n}-")
    names = [f"s{i}" for i in range(1, n + 1)]
    rnames = [f"r{i}" for i in range(1, cfg.restart_tries + 1)]
    res = {"load_before": round(load(), 2)}
    tree = procfs.ProcTree()
    try:
        system.launch(workdir, names, rnames)
        roots = system.roots()
        tree.refresh()
        before = tree.managed(roots)

        # 1. start: first request until every pid exists (a running, exec'd `sleep`).
        res["busy_before_start"] = round(procfs.wait_quiet(), 3)
        res["start_s"] = timed_start(system, names, tree, roots, before, cfg)
        say(f"start {res['start_s']:.3f} s")
        tree.refresh()
        started = tree.managed(roots) - before

        def all_running():
            tree.refresh()
            return len(tree.managed(roots) - before) >= n

        # 2. idle: the supervisor's own processes, N running, nobody asking anything.
        time.sleep(cfg.settle_s)
        cpu, rss, helpers = procfs.cpu_and_rss(tree, roots, cfg.idle_s)
        res["idle_cpu_pct"], res["idle_rss_mb"], res["helper_procs"] = cpu, rss, helpers
        say(f"idle cpu {cpu:.2f}% rss {rss:.1f} MB ({helpers} processes)")

        # 3. restart latency: SIGKILL a child with restarts on; time until its replacement runs.
        # Each try kills a different child, so every kill is the first crash of a long-running
        # process (repeated kills of one child would measure each tool's crash-loop backoff instead).
        system.start_restartable(rnames)
        procfs.wait_until(lambda: all_running() and len(tree.managed(roots)) >= n + len(rnames),
                          60, "the restartable processes to run")
        time.sleep(cfg.restart_warmup_s)
        lat = []
        for r in rnames:
            pid = system.pid_of(r)
            tree.refresh()
            known = tree.managed(roots)
            if pid not in tree.descendants(roots):
                raise RuntimeError(f"{system.name} reports pid {pid} for {r}, which is not running")
            watcher = procfs.NewPidWatcher(tree, roots, known)
            t_kill = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            t_new, new_pid = watcher.wait(cfg.restart_timeout_s)
            lat.append(t_new - t_kill)

            # Not timed: the daemon must own the replacement (it reports it, or a wrapper above it).
            def reports_replacement():
                now = system.pid_of(r)
                tree.refresh()
                return now not in (0, pid) and (now == new_pid or tree.descends_from(new_pid, now))

            procfs.wait_until(reports_replacement, 10, f"{system.name} to report {r}'s new pid")
        res["restart_median_ms"] = 1000 * statistics.median(lat)
        res["restart_p99_ms"] = 1000 * percentile(lat, 99)
        res["restart_tries"] = len(lat)
        say(f"restart median {res['restart_median_ms']:.2f} ms, p99 {res['restart_p99_ms']:.2f} ms")
        tree.refresh()
        rpids = tree.managed(roots) - started
        system.stop_names(rnames)
        procfs.wait_until(lambda: not (rpids & procfs.pids_now()), 60, "restartable ones to stop")

        # 4. control: sequential status queries on one connection, then 16 parallel clients.
        lats = system.status_latencies(names[0], cfg.status_count, cfg.status_deadline_s)
        res["status_median_ms"] = 1000 * statistics.median(lats)
        res["status_p99_ms"] = 1000 * percentile(lats, 99)
        res["status_count"] = len(lats)
        say(f"status median {res['status_median_ms']:.3f} ms, p99 {res['status_p99_ms']:.3f} ms "
            f"({len(lats)} queries)")
        done, secs = system.throughput(names[0], cfg.clients, cfg.tp_total, cfg.tp_deadline_s)
        res["throughput_qps"] = done / secs
        res["throughput_queries"] = done
        say(f"throughput {done / secs:.0f}/s ({done} queries in {secs:.2f} s, {cfg.clients} clients)")

        if hasattr(system, "list_json_latencies"):
            lats = system.list_json_latencies(5)
            res["list_json_ms"] = 1000 * statistics.median(lats)
            say(f"list as JSON median {res['list_json_ms']:.2f} ms")

        # 5. stop: request until every pid is gone (reaped: absent from /proc).
        tree.refresh()
        pids = tree.managed(roots) & started
        t0 = time.monotonic()
        system.stop_all(names)
        procfs.wait_until(procfs.AllGone(pids), cfg.stop_timeout_s, f"{n} processes to be gone")
        res["stop_s"] = time.monotonic() - t0
        say(f"stop {res['stop_s']:.3f} s")
    except (RuntimeError, TimeoutError, OSError, ValueError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
        say(f"FAILED: {res['error']} (workdir {workdir} kept)")
    finally:
        try:
            system.shutdown()
        finally:
            kill_tree(system.roots())
    res["load_after"] = round(load(), 2)
    if "error" not in res:
        shutil.rmtree(workdir, ignore_errors=True)
    return res
