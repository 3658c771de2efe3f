"""pm2, driven through its programmatic API by bench/pm2_driver.js, with a private PM2_HOME."""

import json
import os
import select
import shutil
import subprocess
import time

from .base import Skip, System, daemon_env, kill_tree

PIN = "7.0.4"


class Pm2(System):
    name = "pm2"

    def __init__(self, bench_dir):
        self.bench_dir = os.path.abspath(bench_dir)
        self.driver = None
        self.god = None

    def install(self):
        # Found on the caller's PATH: the daemon's own environment has a fixed one (base.daemon_env).
        self.node = shutil.which("node")
        if not self.node or not shutil.which("npm"):
            raise Skip("node or npm is not on PATH")
        if self._version() != PIN:
            # package.json pins pm2; `npm ci` installs exactly the locked tree into bench/node_modules.
            cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
            r = subprocess.run(cmd, cwd=self.bench_dir, capture_output=True, text=True, timeout=600)
            if r.returncode:
                r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                                    "--no-save", "pm2"], cwd=self.bench_dir, capture_output=True,
                                   text=True, timeout=600)
                if r.returncode:
                    raise Skip(f"npm cannot install pm2: {r.stderr.strip()[-300:]}")
        self.version = self._version()
        if not self.version:
            raise Skip("pm2 installed but its version cannot be read")
        if self.version != PIN:
            self.version += f" (pin {PIN} not available)"

    def _version(self):
        pkg = os.path.join(self.bench_dir, "node_modules", "pm2", "package.json")
        try:
            with open(pkg) as f:
                return json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            return ""

    def launch(self, workdir, n_names, restart_names):
        self.env = daemon_env(PM2_HOME=os.path.join(workdir, "pm2home"),
                              PM2_DISABLE_VERSION_CHECK="true", PM2_PROGRAMMATIC="true")
        self.workdir = workdir
        self.stderr = open(os.path.join(workdir, "pm2_driver.err"), "wb")
        self.driver = subprocess.Popen(
            [self.node, os.path.join(self.bench_dir, "pm2_driver.js")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
            env=self.env, cwd=self.bench_dir, text=True, bufsize=1, start_new_session=True,
        )
        self._ask("connect", timeout=60)
        self.god = self._ask("daemon_pid")["pid"]

    def _ask(self, cmd, timeout=300, **kw):
        self.driver.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.driver.stdin.flush()
        ready, _, _ = select.select([self.driver.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"pm2 {cmd}: no answer within {timeout} s")
        line = self.driver.stdout.readline()
        if not line:
            raise RuntimeError(f"pm2 driver died during {cmd}; see {self.stderr.name}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"pm2 {cmd}: {reply.get('error')}")
        return reply

    def roots(self):
        return [self.god] if self.god else []

    def start_all(self, names):
        self._ask("start", names=list(names), autorestart=False)

    def start_restartable(self, names):
        self._ask("start", names=list(names), autorestart=True)

    def pid_of(self, name):
        return int(self._ask("pid", name=name)["pid"])

    def status_latencies(self, name, count, deadline_s):
        return self._ask("status", name=name, count=count, deadline_s=deadline_s)["latencies"]

    def throughput(self, name, clients, total, deadline_s):
        per = total // clients
        procs = [subprocess.Popen(
            [self.node, os.path.join(self.bench_dir, "pm2_driver.js"), "loop", name, str(per),
             str(deadline_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=self.env,
            cwd=self.bench_dir, text=True, start_new_session=True) for _ in range(clients)]
        try:
            for p in procs:
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a pm2 throughput client failed; see {self.stderr.name}")
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            results = [json.loads(p.stdout.readline()) for p in procs]
        finally:
            for p in procs:
                try:
                    p.wait(timeout=deadline_s + 60)
                except subprocess.TimeoutExpired:
                    kill_tree([p.pid])
        done = sum(r["done"] for r in results)
        return done, max(r["t1"] for r in results) - min(r["t0"] for r in results)

    def stop_names(self, names):
        self._ask("delete", names=list(names))

    def stop_all(self, names):
        self._ask("stop", names="all")

    def shutdown(self):
        if self.driver and self.driver.poll() is None:
            self.driver.stdin.close()
            try:
                self.driver.wait(timeout=3)
            except subprocess.TimeoutExpired:
                kill_tree([self.driver.pid])
        self.driver = None
