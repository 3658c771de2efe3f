"""The results table: one row per N and figure, a column per system, and our ratio to each peer."""

import statistics

# (key, label, unit, scale, higher_is_better)
FIGURES = [
    ("start_s", "start: request to all running", "s", 1, False),
    ("floor_s", "bare clone+exec floor, same run (bench/floor.c)", "s", 1, False),
    ("floor_cgroup_s", "floor of a cgroup each: mkdir, clone3 into it, exec (bench/floor.c 3)", "s", 1, False),
    ("start_groups_s", "start without cgroups (--cgroups off), same run", "s", 1, False),
    ("stop_s", "stop: request to all gone", "s", 1, False),
    ("idle_rss_mb", "daemon memory, idle (RSS)", "MB", 1, False),
    ("idle_cpu_pct", "daemon CPU, idle (% of one core)", "%", 1, False),
    ("restart_median_ms", "restart after SIGKILL, median", "ms", 1, False),
    ("restart_p99_ms", "restart after SIGKILL, p99 (of 100 kills)", "ms", 1, False),
    ("status_median_ms", "status of one process over the socket, median", "ms", 1, False),
    ("status_p99_ms", "status of one process over the socket, p99", "ms", 1, False),
    ("throughput_qps", "status throughput, 16 clients in parallel", "/s", 1, True),
    ("list_json_ms", "list of every process as JSON over the socket, median", "ms", 1, False),
    ("status_rust_api_us", "status through the in-process Rust API, median", "µs", 1, False),
]


def fmt(value, unit):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "%":
        return f"{value:.2f}%"
    for digits, limit in ((0, 100), (1, 10), (2, 1), (3, 0.1)):
        if abs(value) >= limit:
            return f"{value:.{digits}f} {unit}"
    return f"{value:.4f} {unit}"


def ratio(ours, peer, higher_is_better):
    """How many times better ours is (above 1: ours better; below 1: ours worse)."""
    if not isinstance(ours, (int, float)) or not isinstance(peer, (int, float)):
        return "—"
    if ours <= 0 or peer <= 0:
        return "—"
    r = ours / peer if higher_is_better else peer / ours
    return f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def table(results, systems, versions, notes):
    """Markdown: results is {system: {n: {figure: value}}}."""
    peers = [s for s in systems if s != "ours"]
    head = ["N", "figure"] + [f"{s} {versions.get(s, '')}".strip() for s in systems]
    if "ours" in systems:
        head += [f"ours vs {p}" for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ns = sorted({n for s in systems for n in results.get(s, {})})
    for n in ns:
        for key, label, unit, _, hib in FIGURES:
            vals = {s: results.get(s, {}).get(n, {}).get(key) for s in systems}
            if all(v is None for v in vals.values()):
                continue
            row = [f"{n:,}", label] + [fmt(vals[s], unit) for s in systems]
            if "ours" in systems:
                row += [ratio(vals["ours"], vals[p], hib) for p in peers]
            lines.append("| " + " | ".join(row) + " |")
    out = "\n".join(lines) + "\n"
    if "ours" in systems and peers:
        out += "\n`ours vs X` is how many times better ours is (peer ÷ ours for times, memory and CPU; " \
               "ours ÷ peer for throughput): above 1× ours is better, below 1× it is worse.\n"
    out += start_over_floor(results.get("ours", {}))
    for s in systems:
        for n, r in sorted(results.get(s, {}).items()):
            if r.get("error"):
                out += f"\n- {s} at N={n:,} stopped early: {r['error']}"
            elif r.get("status_count") is not None and r["status_count"] < notes.get("status_count", 0):
                out += (f"\n- {s} at N={n:,}: only {r['status_count']} sequential status queries fit "
                        f"in the {notes['status_deadline_s']:.0f} s bound")
    return out.rstrip() + "\n"


def start_over_floor(per_n):
    """Lines of ours's start over the floors of the same run, where the run has them."""
    out = ""
    for n, r in sorted(per_n.items()):
        pairs = [("start_s", "floor_s", "ours ÷ clone+exec floor"),
                 ("start_s", "floor_cgroup_s", "ours ÷ floor of a cgroup each"),
                 ("start_groups_s", "floor_s", "ours --cgroups off ÷ clone+exec floor")]
        parts = [f"{label} {r[a] / r[b]:.2f}" for a, b, label in pairs
                 if isinstance(r.get(a), (int, float)) and isinstance(r.get(b), (int, float)) and r[b] > 0]
        if parts:
            out += f"\n- start at N={n:,}: " + "; ".join(parts)
    return out + ("\n" if out else "")


def median_of_runs(runs):
    """{system: {n: {figure: value}}} of several runs -> one, each number the median across runs
    (of two, their mean) of the runs that have it; an error in any run is kept."""
    if len(runs) == 1:
        return runs[0]
    out = {}
    for run in runs:
        for s, per in run.items():
            for n in per:
                out.setdefault(s, {}).setdefault(n, {})
    for s, per in out.items():
        for n, merged in per.items():
            all_res = [run[s][n] for run in runs if n in run.get(s, {})]
            for res in all_res:
                for key, value in res.items():
                    if key in merged:
                        continue
                    values = [r[key] for r in all_res if key in r]
                    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
                    if key == "error":
                        merged[key] = "; ".join(str(v) for v in values)
                    elif nums and len(nums) == len(values):
                        m = statistics.median(nums)
                        # A count stays a whole number.
                        merged[key] = round(m) if all(isinstance(v, int) for v in nums) else m
                    else:
                        merged[key] = values[0]
    return out


def start_per_run(runs, systems):
    """One line per N: each run's start time per system and, for ours, its ratio to each peer in that
    same run."""
    lines = []
    ns = sorted({n for run in runs for s in systems for n in run.get(s, {})})
    for n in ns:
        parts = []
        for s in systems:
            vals = [run.get(s, {}).get(n, {}).get("start_s") for run in runs]
            parts.append(f"{s} " + " / ".join(fmt(v, "s") for v in vals))
        for p in (s for s in systems if s != "ours"):
            rs = [ratio(run.get("ours", {}).get(n, {}).get("start_s"),
                        run.get(p, {}).get(n, {}).get("start_s"), False) for run in runs]
            parts.append(f"ours vs {p} in each run " + " / ".join(rs))
        lines.append(f"Start at N={n:,}, run by run: " + "; ".join(parts) + ".\n")
    return "".join(lines)
