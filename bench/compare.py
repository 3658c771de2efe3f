#!/usr/bin/env python3
"""Side-by-side benchmark of processmanager, supervisord and pm2 (run it through bench/run)."""

import argparse
import atexit
import datetime
import json
import os
import re
import platform
import shutil
import signal
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

from pmbench import measure, report  # noqa: E402
from pmbench.base import Skip, describe_env  # noqa: E402
from pmbench.ours import Ours  # noqa: E402
from pmbench.pm2 import Pm2  # noqa: E402
from pmbench.supervisord import Supervisord  # noqa: E402

ALL = ["ours", "supervisord", "pm2"]


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Linux {platform.release()}"


def build_ours():
    say("building processmanager and pmclient (cargo build --release)...")
    r = subprocess.run(["cargo", "build", "--release", "--bin", "processmanager", "--bin", "pmclient"],
                       cwd=ROOT, timeout=3600)
    if r.returncode:
        raise Skip("cargo build --release failed")
    r = subprocess.run(["cargo", "build", "--release", "-p", "pm-actors", "--example", "inproc_status"],
                       cwd=ROOT, timeout=3600)
    if r.returncode:
        raise Skip("cargo build --release --example inproc_status failed")


def inproc_status_us(n):
    """The in-process Rust API's GetStatus median at n processes (µs), from the example program that
    embeds a Registry; None when the example is not built."""
    exe = os.path.join(ROOT, "target", "release", "examples", "inproc_status")
    if not os.path.exists(exe):
        say(f"   ours: {exe} is missing: no in-process figure")
        return None
    out = subprocess.run([exe, str(n)], capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"GetStatus median ([0-9.]+) us", out)
    return float(m.group(1)) if m else None


def build_floor():
    """bench/floor.c compiled to a temporary file; None (with a note) when there is no C compiler."""
    folder = tempfile.mkdtemp(prefix="pmbench-floor-")
    atexit.register(shutil.rmtree, folder, True)
    exe = os.path.join(folder, "floor")
    r = subprocess.run(["cc", "-O2", "-o", exe, os.path.join(BENCH, "floor.c")], capture_output=True,
                       text=True)
    if r.returncode:
        say(f"   no floor figure: cc failed: {r.stderr.strip()}")
        return None
    return exe


def floor_s(exe, n, mode=1):
    """The bare floor at n: seconds until n `sleep 3600` started by clone(CLONE_VM) (mode 1), or each
    born in a new cgroup (mode 3), have all exec'd; None where the mode cannot run here."""
    r = subprocess.run([exe, str(n), str(mode)], capture_output=True, text=True, timeout=600)
    m = re.search(r"all exec'd ([0-9.]+) s", r.stdout)
    if not m:
        say(f"   no floor figure for mode {mode}: {r.stderr.strip()}")
    return float(m.group(1)) if m else None


def ours_groups(args):
    """Ours again, without cgroups (`--cgroups off`), installed: the scaling run times its start too."""
    ours = Ours(ROOT, shell=args.ours_shell, cgroups=False)
    ours.install()
    return ours


def make(name, args):
    return {"ours": lambda: Ours(ROOT, shell=args.ours_shell), "supervisord": lambda: Supervisord(BENCH),
            "pm2": lambda: Pm2(BENCH)}[name]()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--systems", default=",".join(ALL), help="comma list of " + ",".join(ALL))
    ap.add_argument("--n", default=None, help="comma list of process counts (default 100,1000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: N=20, fewer tries, short waits")
    ap.add_argument("--no-build", action="store_true", help="use the existing target/release binary")
    ap.add_argument("--ours-shell", action="store_true",
                    help="start ours with command:'sleep 3600' (through sh -c) instead of program:/args:")
    ap.add_argument("--runs", type=int, default=1,
                    help="whole runs, one after the other; the table shows each figure's median")
    ap.add_argument("--scale", action="store_true",
                    help="the scaling run: N=100,1000,5000,10000 (unless --n), the bare clone+exec floor and "
                         "the floor of a cgroup each (bench/floor.c) and ours's start without cgroups "
                         "beside ours at each N, peers only up to --peer-max-n")
    ap.add_argument("--peer-max-n", type=int, default=None,
                    help="measure supervisord and pm2 only up to this N (default with --scale: 5000)")
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "latest.md"))
    args = ap.parse_args()

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - set(ALL)
    if unknown:
        ap.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.n is None:
        args.n = "100,1000,5000,10000" if args.scale else "100,1000"
    ns = [20] if args.quick else [int(x.replace("_", "")) for x in args.n.split(",")]
    peer_max_n = args.peer_max_n or (5000 if args.scale else None)
    floor = build_floor() if args.scale else None
    cfg = measure.Settings(quick=args.quick)

    # SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` tears its daemon down. SIGINT is set
    # too: a shell starts background jobs with it ignored, and `kill -INT` should still stop a run.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    ready, versions, skipped = [], {}, {}
    for name in systems:
        sysobj = make(name, args)
        try:
            if name == "ours" and not args.no_build:
                build_ours()
            sysobj.install()
            versions[name] = sysobj.version
            ready.append(sysobj)
            say(f"{name}: {sysobj.version}")
        except (Skip, subprocess.TimeoutExpired, OSError) as e:
            skipped[name] = str(e)
            say(f"SKIPPING {name}: {e}")

    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    for k in range(max(1, args.runs)):
        per_run = {}
        for n in ns:
            for sysobj in ready:
                if sysobj.name != "ours" and peer_max_n and n > peer_max_n:
                    continue
                say(f"== run {k + 1}, {sysobj.name}, N={n} (load {os.getloadavg()[0]:.2f})")
                res = measure.measure(sysobj, n, cfg, lambda m, s=sysobj.name: say(f"   {s}: {m}"))
                if sysobj.name == "ours":
                    res["status_rust_api_us"] = inproc_status_us(n)
                    if floor:
                        res["floor_s"] = floor_s(floor, n)
                        res["floor_cgroup_s"] = floor_s(floor, n, mode=3)
                        res["start_groups_s"] = measure.measure_start(ours_groups(args), n, cfg)
                        say(f"   floor: {res['floor_s']} s; a cgroup each: {res['floor_cgroup_s']} s; "
                            f"ours without cgroups: {res['start_groups_s']:.3f} s")
                per_run.setdefault(sysobj.name, {})[n] = res
        runs.append(per_run)
    results = report.median_of_runs(runs)

    shown = [s.name for s in ready]
    notes = {"status_count": cfg.status_count, "status_deadline_s": cfg.status_deadline_s}
    body = report.table(results, shown, versions, notes)
    loads = "; ".join(f"{s} N={n:,}: {r['load_before']}→{r['load_after']}"
                      for s, per in runs[0].items() for n, r in sorted(per.items()))
    quiet = "; ".join(f"{s} N={n:,}: {100 * r['busy_before_start']:.0f}%"
                      for s, per in runs[0].items() for n, r in sorted(per.items())
                      if "busy_before_start" in r)
    header = (f"Run {started:%Y-%m-%d %H:%M} UTC on {machine()}; command `bench/run "
              f"{' '.join(sys.argv[1:])}`.\nEvery daemon's environment, whatever the caller's: "
              f"{describe_env()}.\n1-minute load average before→after each system: {loads}.\n"
              f"Machine CPU busy in the half second before each start (each start waits, up to 30 s, "
              f"for under 10%): {quiet}.\n")
    if len(runs) > 1:
        header += (f"\nEach figure is the median of {len(runs)} whole runs, one after the other (of two, "
                   f"their mean); load and quiet above are the first run's.\n"
                   + report.start_per_run(runs, shown))
    for name, why in skipped.items():
        header += f"\nSkipped {name}: {why}\n"
    text = header + "\n" + body
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"started": started.isoformat(), "machine": machine(), "argv": sys.argv[1:],
                   "versions": versions, "skipped": skipped,
                   "results": {s: {str(n): r for n, r in per.items()} for s, per in results.items()},
                   "runs": [{s: {str(n): r for n, r in per.items()} for s, per in run.items()}
                            for run in runs]},
                  f, indent=1)
    say(f"wrote {args.out}")
    failed = any(r.get("error") for per in results.values() for r in per.values())
    return 1 if failed or not ready else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted: everything started was stopped")
        sys.exit(130)
