"""supervisord, driven through its XML-RPC interface on a Unix socket (keep-alive HTTP)."""

import http.client
import os
import socket
import subprocess
import sys
import time
import xmlrpc.client

from . import procfs
from .base import Skip, System, daemon_env
from .ours import run_workers

PIN = "4.2.5"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=120)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """xmlrpc.client keeps one connection per transport alive between calls; this makes it a Unix one."""

    def __init__(self, path):
        super().__init__()
        self.unix_path = path

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        conn = _UnixHTTPConnection(self.unix_path)
        self._connection = host, conn
        return conn


def rpc(path):
    return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_UnixTransport(path))


def _throughput_worker(path, name, count, deadline_s, ready, go, out):
    proxy = rpc(path)
    proxy.supervisor.getProcessInfo(name)
    ready.release()
    go.wait()
    t0 = time.monotonic()
    done = 0
    while done < count and time.monotonic() - t0 < deadline_s:
        proxy.supervisor.getProcessInfo(name)
        done += 1
    out.put((t0, time.monotonic(), done))


def _program(name, autorestart):
    return (f"[program:{name}]\ncommand=sleep 3600\nautostart=false\n"
            f"autorestart={'true' if autorestart else 'false'}\n"
            "stdout_logfile=NONE\nstderr_logfile=NONE\n")


class Supervisord(System):
    name = "supervisord"

    def __init__(self, bench_dir):
        self.bench_dir = os.path.abspath(bench_dir)
        self.proc = None

    def install(self):
        venv = os.path.join(self.bench_dir, ".venv")
        self.python = os.path.join(venv, "bin", "python")
        if not os.access(self.python, os.X_OK):
            r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
            if r.returncode:
                raise Skip(f"cannot make a venv: {r.stderr.strip()[-300:]}")
        have = self._version()
        if have != PIN:
            r = subprocess.run([self.python, "-m", "pip", "install", "-q", f"supervisor=={PIN}"],
                               capture_output=True, text=True, timeout=600)
            if r.returncode:
                # Not the pinned one: take the newest PyPI has, and say so in the version.
                r = subprocess.run([self.python, "-m", "pip", "install", "-q", "supervisor"],
                                   capture_output=True, text=True, timeout=600)
                if r.returncode:
                    raise Skip(f"pip cannot install supervisor: {r.stderr.strip()[-300:]}")
        self.version = self._version()
        if not self.version:
            raise Skip("supervisor installed but its version cannot be read")
        if self.version != PIN:
            self.version += f" (pin {PIN} not available)"

    def _version(self):
        r = subprocess.run([self.python, "-c", "import supervisor.options as o; print(o.VERSION)"],
                           capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    def launch(self, workdir, n_names, restart_names):
        self.path = os.path.join(workdir, "supervisor.sock")
        conf = os.path.join(workdir, "supervisord.conf")
        parts = [
            f"[unix_http_server]\nfile={self.path}\nchmod=0700\n",
            f"[supervisord]\nnodaemon=true\nlogfile={workdir}/supervisord.log\n"
            f"pidfile={workdir}/supervisord.pid\nchildlogdir={workdir}\n"
            f"minfds={minfds(len(n_names))}\nloglevel=warn\n",
            "[rpcinterface:supervisor]\n"
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n",
            f"[supervisorctl]\nserverurl=unix://{self.path}\n",
            f"[group:bench]\nprograms={','.join(n_names)}\n",
            f"[group:restart]\nprograms={','.join(restart_names)}\n",
        ]
        parts += [_program(n, False) for n in n_names]
        parts += [_program(n, True) for n in restart_names]
        with open(conf, "w") as f:
            f.write("\n".join(parts))
        self.log = open(os.path.join(workdir, "supervisord.out"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(os.path.dirname(self.python), "supervisord"), "-c", conf],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=workdir, env=daemon_env(),
        )
        self.group = {n: "bench" for n in n_names} | {n: "restart" for n in restart_names}

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisord exited with {self.proc.returncode}; see {self.log.name}")
            try:
                self.proxy = rpc(self.path)
                return self.proxy.supervisor.getState()["statename"] == "RUNNING"
            except OSError:
                return False

        procfs.wait_until(ready, 60, "supervisord to answer XML-RPC", interval=0.05)

    def roots(self):
        return [self.proc.pid] if self.proc else []

    def _full(self, name):
        return f"{self.group[name]}:{name}"

    def start_all(self, names):
        # One call starts the group; wait=False returns once every process is spawned, not after
        # startsecs, so the clock stops when the pids exist, as for the others.
        self.proxy.supervisor.startProcessGroup("bench", False)

    def start_restartable(self, names):
        self.proxy.supervisor.startProcessGroup("restart", False)

    def pid_of(self, name):
        return int(self.proxy.supervisor.getProcessInfo(self._full(name))["pid"])

    def status_latencies(self, name, count, deadline_s):
        full = self._full(name)
        self.proxy.supervisor.getProcessInfo(full)
        out = []
        t_end = time.monotonic() + deadline_s
        for _ in range(count):
            t0 = time.perf_counter()
            self.proxy.supervisor.getProcessInfo(full)
            out.append(time.perf_counter() - t0)
            if time.monotonic() > t_end:
                break
        return out

    def throughput(self, name, clients, total, deadline_s):
        return run_workers(_throughput_worker, (self.path, self._full(name)), clients, total, deadline_s)

    def stop_names(self, names):
        if set(names) <= {n for n, g in self.group.items() if g == "restart"}:
            self.proxy.supervisor.stopProcessGroup("restart", True)
        else:
            for n in names:
                self.proxy.supervisor.stopProcess(self._full(n), True)

    def stop_all(self, names):
        self.proxy.supervisor.stopProcessGroup("bench", False)


def minfds(n):
    """supervisord's `minfds` for n programs: four descriptors each (its pipes) and some room, but never
    past the hard limit, which it refuses to start above. Past it, supervisord starts and runs out of
    descriptors part way (`too many open files to spawn`): the bench then reports how far it got."""
    import resource
    wanted = max(1024, 4 * n + 256)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)

