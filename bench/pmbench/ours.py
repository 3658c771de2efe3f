"""processmanager, driven through its Unix socket with raw heroscript on persistent connections."""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import threading
import time

from . import procfs
from .base import Skip, System, daemon_env

AUTHENTICATED = b" ** Welcome: you are authenticated."
END = b"**ENDRESULT**\n"
SECRET = "bench-secret"


class Conn:
    """One authenticated connection: send a script, read its framed answer."""

    def __init__(self, path, secret=SECRET, timeout=60.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        # Grown in place: a `list` answer of megabytes arrives in many chunks.
        self.buf = bytearray()
        self.sock.sendall(secret.encode() + b"\n")
        while True:
            line = self._line()
            if line.startswith(AUTHENTICATED):
                return
            if line.startswith(b"Invalid secret"):
                raise RuntimeError("processmanager refused the secret")

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("processmanager closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def send(self, script):
        self.sock.sendall(script.encode() + b"\n\n")

    def read_result(self):
        """The body of the next `**RESULT** ... **ENDRESULT**` frame."""
        searched = 0  # the end mark is not before here: each chunk is searched once, not the whole
        while True:
            start = self.buf.find(b"**RESULT**")
            end = self.buf.find(END, max(start, searched - len(END))) if start >= 0 else -1
            if end >= 0:
                frame = self.buf[start:end]
                self.buf = self.buf[end + len(END) :]
                body = frame.split(b"\n", 1)[1] if b"\n" in frame else b""
                return body.decode(errors="replace")
            searched = len(self.buf)
            self._fill()

    def call(self, script):
        self.send(script)
        return self.read_result()

    def send_all(self, scripts):
        """Sends every script at once."""
        self.sock.sendall("".join(s + "\n\n" for s in scripts).encode())

    def pipeline(self, scripts):
        """Sends every script at once, then reads every answer: one round trip for many commands."""
        self.send_all(scripts)
        return [self.read_result() for _ in scripts]

    def close(self):
        self.sock.close()


def check_ok(bodies, what):
    bad = [b for b in bodies if b.startswith("Error")]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} errors, first: {bad[0].strip()}")


def _throughput_worker(path, name, count, deadline_s, ready, go, out):
    conn = Conn(path)
    script = f"!!process.status name:'{name}' format:json"
    ready.release()
    go.wait()
    t0 = time.monotonic()
    done = 0
    while done < count and time.monotonic() - t0 < deadline_s:
        conn.call(script)
        done += 1
    out.put((t0, time.monotonic(), done))
    conn.close()


class Ours(System):
    name = "ours"

    def __init__(self, root, shell=False, cgroups=True):
        self.root = root
        # Without cgroups (`--cgroups off`) each process is contained by its process group only.
        self.cgroup_flags = [] if cgroups else ["--cgroups", "off"]
        # `program:` execs sleep itself, as supervisord and pm2 do; `command:` goes through `sh -c`.
        self.what = "command:'sleep 3600'" if shell else "program:'sleep' args:'3600'"
        self.proc = None
        self.conn = None
        self.answers = []
        self.reader = None

    def install(self):
        # Built by `bench/run` (cargo build --release); here we only check the binary is there.
        self.binary = os.path.join(self.root, "target", "release", "processmanager")
        if not os.access(self.binary, os.X_OK):
            raise Skip(f"{self.binary} is missing (cargo build --release failed or was skipped)")
        out = subprocess.run(["git", "-C", self.root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True)
        self.version = "git " + (out.stdout.strip() or "?")

    def launch(self, workdir, n, restart_names):
        self.path = os.path.join(workdir, "pm.sock")
        self.log = open(os.path.join(workdir, "processmanager.log"), "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--socket", self.path, "--secret", SECRET, "--log-level", "warn",
             *self.cgroup_flags],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=daemon_env(),
        )

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"processmanager exited with {self.proc.returncode}; "
                                   f"see {self.log.name}")
            try:
                self.conn = Conn(self.path)
                return True
            except OSError:
                return False

        procfs.wait_until(ready, 30, "processmanager to answer on its socket", interval=0.02)

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def start_all(self, names):
        # The answers are read on a thread of their own (a client that reads only after writing
        # everything is served only while the answers fit the daemon's reply-backlog-bytes) and
        # checked once the clock has stopped: the figure is "until every pid runs", as for the
        # others, not "until every answer" (each also waits for the state file).
        scripts = [f"!!process.start name:'{n}' {self.what}" for n in names]
        self.answers = []
        self.expected = len(scripts)
        self.reader = threading.Thread(
            target=lambda: self.answers.extend(self.conn.read_result() for _ in scripts))
        self.conn.send_all(scripts)
        self.reader.start()

    def start_answers(self):
        self.reader.join()
        if len(self.answers) != self.expected:
            raise RuntimeError(f"start: {len(self.answers)} answers of {self.expected}")
        check_ok(self.answers, "start")

    def start_restartable(self, names):
        scripts = [f"!!process.start name:'{n}' {self.what} restarts:-1" for n in names]
        check_ok(self.conn.pipeline(scripts), "start with restarts")

    def pid_of(self, name):
        body = self.conn.call(f"!!process.status name:'{name}' format:json")
        if body.startswith("Error"):
            raise RuntimeError(f"status {name}: {body.strip()}")
        doc = json.loads(body)
        if isinstance(doc, list):  # a list of one, should status answer like list does
            doc = doc[0]
        return int(doc.get("pid") or 0)

    def status_latencies(self, name, count, deadline_s):
        script = f"!!process.status name:'{name}' format:json"
        check_ok([self.conn.call(script)], "status")
        out = []
        t_end = time.monotonic() + deadline_s
        for _ in range(count):
            t0 = time.perf_counter()
            self.conn.call(script)
            out.append(time.perf_counter() - t0)
            if time.monotonic() > t_end:
                break
        return out

    def list_json_latencies(self, count):
        """Seconds per `list format:json` of every process, `count` times on one connection."""
        out = []
        for _ in range(count):
            t0 = time.perf_counter()
            body = self.conn.call("!!process.list format:json")
            out.append(time.perf_counter() - t0)
            if not isinstance(json.loads(body), list):
                raise RuntimeError(f"list: not a JSON list: {body[:200]}")
        return out

    def throughput(self, name, clients, total, deadline_s):
        return run_workers(_throughput_worker, (self.path, name), clients, total, deadline_s)

    def stop_names(self, names):
        check_ok(self.conn.pipeline([f"!!process.stop name:'{n}'" for n in names]), "stop")

    def stop_all(self, names):
        # One request, as supervisord's stopProcessGroup and pm2's stop('all'): every process at once.
        body = self.conn.call("!!process.stop all:true")
        check_ok([body], "stop all")

    def shutdown(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def _quiet(target, *args):
    # Ctrl-C is the parent's to handle: it ends the workers itself after tearing the daemons down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    target(*args)


def run_workers(target, args, clients, total, deadline_s):
    """Runs `clients` worker processes, each doing total/clients queries; all start together.
    Returns (queries done, seconds from the first start to the last finish)."""
    ctx = multiprocessing.get_context("fork")
    ready, go, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    per = total // clients
    workers = [ctx.Process(target=_quiet, args=(target,) + args + (per, deadline_s, ready, go, out),
                           daemon=True) for _ in range(clients)]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            if not ready.acquire(timeout=60):
                raise TimeoutError("throughput clients did not connect within 60 s")
        go.set()
        results = [out.get(timeout=deadline_s + 60) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()
    starts, ends, done = zip(*results)
    return sum(done), max(ends) - min(starts)
