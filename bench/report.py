#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run netelect-bench and/or turn its JSON into a markdown report with plots.

  report.py --run [--quick|--full] [--bin PATH] [--out DIR] [--reps N]
  report.py --json FILE [--json FILE ...] [--out DIR]
  report.py --compare OLD.json NEW.json [--filter REGEX]

--compare hands two runs' JSON (--benchmark_out of netelect-bench, or a
report's bench.json) to Google Benchmark's own compare.py (Debian's
libbenchmark-tools, with python3-scipy): per-row time change and, for rows
with repetitions (run both with --benchmark_repetitions=N and without
--benchmark_report_aggregates_only), its Mann-Whitney U-test p-value.  For a
before/after measurement run both binaries in one sitting, pinned, e.g.
  taskset -c 1 OLD/netelect-bench --ne_groups=core --benchmark_repetitions=9 \
      --benchmark_filter='^elect/public/rand/a64/3$' --benchmark_out=old.json

--run runs the suite twice: the single-thread rows (groups core, shm, agent)
pinned to one CPU with taskset (CPU 1 by default, when taskset and that CPU
exist), and the two-thread shm rows (group shm_mt: publish-to-visible and the
reader-throughput rows need two CPUs) unpinned.  Both write Google Benchmark
JSON (--benchmark_out); the two files are merged into DIR/bench.json.

Quick mode (CI smoke test, well under a minute): sizes 3, 256 and 10k, one
repetition, short minimum time.  Full mode: every size, --reps repetitions
(default 5) with random interleaving; the console shows only the aggregates
(--benchmark_display_aggregates_only), the JSON keeps every repetition.  Each
row's figure is "median [min, p90]" over all its repetitions (of all --runs),
with the repetition count; every ratio is taken between the medians of rows
of the same run.  A target counts as met only if the whole spread meets it:
the p90 for a time, the least favourable pairing of min and p90 for a ratio.

The report goes to DIR/REPORT.md (default bench/out/), plots to DIR/*.png.
The exit status is non-zero if the binary failed or any row reported an
error (a verification mismatch, a failed shm call); timings never fail it.
"""
import argparse
import datetime
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

QUICK_SIZES = "3,256,10000"
FULL_SIZES = "3,16,64,256,1000,10000,100000,1000000"

NETELECT_METHODS = ("ref", "scalar", "avx2", "avx512", "public")
METHOD_ORDER = NETELECT_METHODS + ("seed", "qsort", "std_sort", "pdqsort", "vqsort",
                                   "partial_sort_copy", "memcpy", "floor_keys", "floor_base",
                                   "floor_avx2", "floor_avx512")


def method_key(m):
    return (METHOD_ORDER.index(m) if m in METHOD_ORDER else len(METHOD_ORDER), m)
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


# ---------------------------------------------------------------- running

def source_state():
    """The commit measured, and whether the tree it was built from differed."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no",
                                "--", "core", "shm", "include", "agent", "bench"],
                               capture_output=True, text=True, check=True).stdout.split("\n")
        dirty = [d[3:] for d in dirty if d.strip()]
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + (f" plus uncommitted changes in {', '.join(dirty)}" if dirty else " (clean)")


def run_suite(args, out_dir):
    binary = args.bin or os.path.join(ROOT, "build-bench", "bench", "netelect-bench")
    if not os.path.exists(binary):
        sys.exit(f"report.py: no benchmark binary at {binary} (build it or pass --bin)")
    quick = not args.full
    sizes = args.sizes or (QUICK_SIZES if quick else FULL_SIZES)
    reps = 1 if quick else args.reps
    min_time = args.min_time if args.min_time is not None else (0.01 if quick else 0.05)
    common = [f"--ne_sizes={sizes}", f"--benchmark_min_time={min_time}",
              "--benchmark_format=console"] + (["--ne_quick"] if quick else [])
    if reps > 1:
        # display_, not report_aggregates_only: the JSON keeps each
        # repetition, which the spread (min, p90) is computed from.
        common += [f"--benchmark_repetitions={reps}",
                   "--benchmark_display_aggregates_only=true",
                   "--benchmark_enable_random_interleaving=true"]
    pin = []
    taskset = shutil.which("taskset")
    if taskset and not args.no_pin and os.path.exists(f"/sys/devices/system/cpu/cpu{args.cpu}"):
        pin = [taskset, "-c", str(args.cpu)]
    runs = []
    for i in range(1, args.runs + 1):
        sfx = f"-run{i}" if args.runs > 1 else ""
        runs += [("pinned" + sfx, pin, "core,shm,agent"), ("shm_mt" + sfx, [], "shm_mt")]
    if args.filter:
        common.append(f"--benchmark_filter={args.filter}")
    files, cmds, failed = [], [], False
    src = source_state()
    if src:
        cmds.append(f"# source: git {src}")
    for tag, prefix, groups in runs:
        jf = os.path.join(out_dir, f"bench-{tag}.json")
        cmd = prefix + [binary, f"--ne_groups={groups}", f"--benchmark_out={jf}",
                        "--benchmark_out_format=json"] + common
        cmds.append(" ".join(cmd))
        print("+ " + " ".join(cmd), flush=True)
        rc = subprocess.call(cmd, stdout=sys.stderr if args.quiet_run else None)
        if rc != 0:
            print(f"report.py: {binary} exited with status {rc}", file=sys.stderr)
            failed = True
        # A run whose groups registered nothing (e.g. shm_mt before the shm
        # layer exists) leaves an empty file: not an error.
        if os.path.exists(jf) and os.path.getsize(jf) > 0:
            files.append(jf)
    clean_stale_segments()
    return files, cmds, failed


def clean_stale_segments():
    """Removes /dev/shm/netelect-bench-<pid>-* left by a bench process that
    died before its own clean-up (only ours: the pid must be gone)."""
    try:
        names = os.listdir("/dev/shm")
    except OSError:
        return
    for n in names:
        if not n.startswith("netelect-bench-"):
            continue
        pid = n[len("netelect-bench-"):].split("-")[0].split(".")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            print(f"report.py: removing stale /dev/shm/{n}", file=sys.stderr)
            try:
                os.unlink(os.path.join("/dev/shm", n))
            except OSError:
                pass


def load(files):
    merged = {"context": {}, "benchmarks": [], "contexts": []}
    for f in files:
        with open(f) as fh:
            d = json.load(fh)  # raises on invalid JSON: the smoke test fails then
        if not merged["context"]:
            merged["context"] = d.get("context", {})
        # A merged bench.json carries each run's context: keep them all
        # (the load average at the start of each run).
        merged["contexts"] += d.get("contexts") or [d.get("context", {})]
        merged["benchmarks"] += d.get("benchmarks", [])
    return merged


# ---------------------------------------------------------------- parsing

def parse_name(run_name):
    """Returns (parts, threads): the row's own path segments and its thread count."""
    parts, threads = [], 1
    for p in run_name.split("/"):
        if p.startswith("threads:"):
            threads = int(p.split(":")[1])
        elif p in ("real_time", "manual_time") or ":" in p:
            continue
        else:
            parts.append(p)
    return parts, threads


class Spread:
    """A row's distribution over its repetitions: min, median, p90 and the
    repetition count n.  Built from medians alone (a JSON written with
    --benchmark_report_aggregates_only), min and p90 are None: no spread."""

    def __init__(self, values=None, medians=None):
        if values:
            v = sorted(values)
            self.n = len(v)
            self.min = v[0]
            self.median = statistics.median(v)
            self.p90 = p90(v)
        else:
            self.n = None
            self.min = self.p90 = None
            self.median = statistics.median(medians)

    def worst(self, higher_is_better=False):
        """The least favourable end of the spread (p90 for a time, min for a
        rate); the median when there is no spread."""
        end = self.min if higher_is_better else self.p90
        return self.median if end is None else end

    def best(self, higher_is_better=False):
        end = self.p90 if higher_is_better else self.min
        return self.median if end is None else end


def p90(sorted_values):
    """The 90th percentile, interpolated between the closest ranks (numpy's
    default): of 10 repetitions, 0.9 of the way from the 9th to the 10th."""
    v = sorted_values
    pos = 0.9 * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


class Row:
    """One benchmark row.  Its time is the CPU time per call for the
    single-thread rows (the process is alone on its pinned CPU only when the
    machine is quiet: CPU time leaves out the time other jobs held that CPU,
    which real time would count), and the real (or manual) time for the rows
    that declare it: the multi-thread shm rows.

    Every figure comes from the per-repetition entries, pooled over all runs
    (files); a JSON that holds only aggregates falls back to the median of
    its runs' medians, with no spread."""

    def __init__(self, name):
        self.name = name
        self.parts, self.threads = parse_name(name)
        self.field = "real_time" if ("/real_time" in name or "/manual_time" in name) else "cpu_time"
        self.wall_over_cpu = None
        self.reps = []               # time per call (ns), one per repetition
        self.rep_cpu = []            # CPU time per call (ns), one per repetition
        self.counters = {}           # name -> list, one per repetition
        self.run_medians = []        # one per run (file) that had a median aggregate
        self.run_median_cpu = []
        self.run_median_counters = []
        self.error = None

    def stats(self):
        """The row's Spread, or None when it has no timing."""
        if self.reps:
            return Spread(self.reps)
        if self.run_medians:
            return Spread(medians=self.run_medians)
        return None

    def time(self):
        """The median over repetitions."""
        s = self.stats()
        return s.median if s else None

    def cpu_stats(self):
        if self.rep_cpu:
            return Spread(self.rep_cpu)
        return Spread(medians=self.run_median_cpu) if self.run_median_cpu else None

    def counter_stats(self, key):
        v = self.counters.get(key)
        if v:
            return Spread(v)
        v = [c[key] for c in self.run_median_counters if key in c]
        return Spread(medians=v) if v else None

    def counter(self, key):
        s = self.counter_stats(key)
        return s.median if s else None


STD_KEYS = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads",
            "iterations", "real_time", "cpu_time", "time_unit", "family_index",
            "per_family_instance_index", "aggregate_name", "aggregate_unit",
            "error_occurred", "error_message"}


def rows_of(data):
    rows = {}
    for b in data["benchmarks"]:
        rn = b.get("run_name", b["name"])
        r = rows.setdefault(rn, Row(rn))
        if b.get("error_occurred"):
            r.error = b.get("error_message", "error")
            continue
        scale = UNIT_NS.get(b.get("time_unit", "ns"), 1.0)
        extra = {k: v for k, v in b.items() if k not in STD_KEYS and isinstance(v, (int, float))}
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                r.run_medians.append(b[r.field] * scale)
                r.run_median_cpu.append(b["cpu_time"] * scale)
                r.run_median_counters.append(extra)
                if b.get("cpu_time"):
                    r.wall_over_cpu = b["real_time"] / b["cpu_time"]
        else:
            r.reps.append(b[r.field] * scale)
            r.rep_cpu.append(b["cpu_time"] * scale)
            if b.get("cpu_time"):
                r.wall_over_cpu = b["real_time"] / b["cpu_time"]
            for k, v in extra.items():
                r.counters.setdefault(k, []).append(v)
    return rows


# ---------------------------------------------------------------- formatting

def ns_unit(ns):
    for unit, scale in (("ns", 1.0), ("µs", 1e3), ("ms", 1e6)):
        if ns < scale * 1e3:
            return unit, scale
    return "s", 1e9


def fmt_num(x):
    if x >= 1000:  # a p90 above the median's unit: "1090", not "1.09e+03"
        return f"{x:.0f}"
    return f"{x:.3g}" if x >= 10 else f"{x:.2f}"


# The repetition count most rows of the report have; set by build_report.
# A cell whose row has another count says so ("n=3"), the others do not.
COMMON_N = None


def fmt_spread(s, fmt=None):
    """ "median [min, p90]" in the median's unit (or fmt applied to each);
    only the median when there is no spread (one repetition, or a JSON of
    aggregates)."""
    if s is None:
        return "–"
    if fmt is None:
        unit, scale = ns_unit(s.median)
        text = f"{fmt_num(s.median / scale)} {unit}"
        if s.min is not None and s.n and s.n > 1:
            text += f" [{fmt_num(s.min / scale)}, {fmt_num(s.p90 / scale)}]"
    else:
        text = fmt(s.median)
        if s.min is not None and s.n and s.n > 1:
            text += f" [{fmt(s.min)}, {fmt(s.p90)}]"
    if s.n != COMMON_N:
        text += " (medians only)" if s.n is None else f" ({s.n} reps)"
    return text


def fmt_ratio(x):
    if x is None:
        return "–"
    return f"{x:.3g}×" if x < 1000 else f"{x:.0f}×"


def fmt_n(n):
    n = int(n)
    if n >= 1000000 and n % 1000000 == 0:
        return f"{n // 1000000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def table(header, body):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


# ---------------------------------------------------------------- the core ops

class Core:
    """elect/rank/topk rows: op/method/input/align/n."""

    def __init__(self, rows):
        self.t = {}  # (op, input, align) -> method -> n -> ns (median)
        self.s = {}  # (op, input, align) -> method -> n -> Spread
        self.order = {}
        for r in rows.values():
            p = r.parts
            if len(p) != 5 or not (p[0] in ("elect", "rank") or p[0].startswith("topk")):
                continue
            op, method, inp, align, n = p
            if r.error or r.time() is None:
                continue
            key = (op, inp, align)
            self.t.setdefault(key, {}).setdefault(method, {})[int(n)] = r.time()
            self.s.setdefault(key, {}).setdefault(method, {})[int(n)] = r.stats()
            self.order.setdefault(key, [])
            if method not in self.order[key]:
                self.order[key].append(method)

    def get(self, op, inp, align, method, n):
        return self.t.get((op, inp, align), {}).get(method, {}).get(n)

    def spread(self, op, inp, align, method, n):
        return self.s.get((op, inp, align), {}).get(method, {}).get(n)

    def sizes(self, key):
        s = set()
        for m in self.t.get(key, {}).values():
            s |= set(m)
        return sorted(s)

    def methods(self, key):
        return sorted(self.order.get(key, []), key=method_key)

    def kernels(self, key):
        return [m for m in self.methods(key) if m in NETELECT_METHODS]

    def floor(self, inp, align, n):
        vals = [v.get(n) for m, v in self.t.get(("elect", inp, align), {}).items()
                if m.startswith("floor_") and v.get(n) is not None]
        return min(vals) if vals else None


def time_table(core, key):
    sizes = core.sizes(key)
    body = []
    for m in core.methods(key):
        body.append([m] + [fmt_spread(core.spread(*key, m, n)) for n in sizes])
    return table(["method"] + [f"n={fmt_n(n)}" for n in sizes], body)


def ratio_table(core, key, peers, note):
    """Rows: netelect method x peer; cells: peer time / method time (> 1: netelect faster)."""
    sizes = core.sizes(key)
    body = []
    for m in core.kernels(key):
        for peer in peers:
            label, fn = peer
            cells = []
            for n in sizes:
                mine = core.get(*key, m, n)
                other = fn(n)
                cells.append(fmt_ratio(other / mine) if mine and other else "–")
            if any(c != "–" for c in cells):
                body.append([f"{m} vs {label}"] + cells)
    if not body:
        return ""
    return note + "\n\n" + table(["ratio"] + [f"n={fmt_n(n)}" for n in sizes], body)


def plot(path, title, series, xlabel="replicas (n)", ylabel="ns per replica (median)"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=100)
    markers = "osv^D<>xP*h+"
    for i, (label, pts) in enumerate(series):
        pts = sorted((x, y) for x, y in pts if y is not None and y > 0)
        if not pts:
            continue
        # netelect's own rows solid and thick, floors dotted, peers dashed.
        base = label.split(" ")[0]
        ls, lw = ("-", 2.0) if base in NETELECT_METHODS or label.startswith("view_") else \
                 (":", 1.2) if base.startswith("floor") or base == "memcpy" else ("--", 1.2)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle=ls, marker=markers[i % len(markers)],
                label=label, markersize=4, linewidth=lw)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best", framealpha=0.8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def core_plot(core, key, path, title):
    series = []
    for m in core.methods(key):
        pts = [(n, t / n) for n, t in core.t[key][m].items()]
        series.append((m, pts))
    plot(path, title, series)


# ---------------------------------------------------------------- report

def build_report(data, out_dir, cmds, argv):
    global COMMON_N
    rows = rows_of(data)
    ctx = data["context"]
    core = Core(rows)
    counts = [r.stats().n for r in rows.values() if not r.error and r.stats()]
    COMMON_N = statistics.mode(counts) if counts else None
    md = []
    errors = sorted((r.name, r.error) for r in rows.values() if r.error)
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")

    md.append("# netelect benchmark report\n")
    md.append(f"Generated {now} by `bench/report.py {' '.join(argv)}`.\n")
    md.append("## Machine and build\n")
    hv = "virtual machine (cpuinfo flag: hypervisor)" if "hypervisor" in ctx.get("cpu_flags", "") else "no hypervisor flag"
    caches = ctx.get("cpu_caches") or ", ".join(
        f"L{c['level']} {c['type']} {c['size'] // 1024} KiB" for c in ctx.get("caches", []))
    items = [
        ("CPU", f"{ctx.get('cpu_model', '?')} ({ctx.get('cpu_family_model', '?')}), "
                f"{ctx.get('num_cpus', '?')} CPUs, {hv}"),
        ("caches", caches or "?"),
        ("CPU flags (SIMD)", ctx.get("cpu_flags", "?")),
        ("compiler", ctx.get("compiler", "?")),
        ("build", ctx.get("build_flags", "?")),
        ("netelect", f"{ctx.get('netelect_version', '?')}, dispatched ISA `{ctx.get('netelect_isa', '?')}`, "
                     f"CPU levels up to `{ctx.get('netelect_cpu_levels', '?')}`"),
        ("kernel tables", ctx.get("netelect_kernel_tables", "?")),
        ("Highway", f"best target {ctx.get('hwy_best_target', '?')}; {ctx.get('vqsort_mode', '')}"),
        ("input copies rotated (n:copies)", ctx.get("input_copies", "?")),
        ("1-min load average at the start of each run (2 CPUs)",
         ", ".join(f"{c.get('ne_groups', c.get('executable', '').split('/')[-1])}: {c['load_avg'][0]:.2f}"
                   for c in data.get("contexts", [ctx]) if c.get("load_avg")) or "?"),
        ("shm", ctx.get("shm", "?")),
        ("agent", ctx.get("agent", "?")),
        ("benchmark library", f"Debian's Google Benchmark 1.7.1 (reports itself as a "
                              f"`{ctx.get('library_build_type', '?')}` build: the timing loop is "
                              f"inline in the header, so this costs no time per iteration), "
                              f"run {ctx.get('date', '?')}"),
    ]
    md += [f"- **{k}:** {v}" for k, v in items]
    if cmds:
        md.append("\nCommands run:\n")
        md += ["```sh"] + cmds + ["```"]
    wc = [r.wall_over_cpu for r in rows.values() if r.field == "cpu_time" and r.wall_over_cpu]
    if wc:
        md.append(f"\nContention: for the single-thread rows, real time / CPU time has median "
                  f"{statistics.median(wc):.2f} and maximum {max(wc):.2f} over {len(wc)} rows "
                  f"(1.00 means the pinned CPU was ours alone).\n")
    md.append("""
Method notes: each figure is "median [min, p90]" over the row's
repetitions (with several runs: all repetitions of all runs pooled;
{spread_note}) of the CPU time per call for single-thread rows (CPU
time leaves out the time other jobs held the pinned CPU; real time is in
the JSON too) and of the real time for the multi-thread shm rows.  p90 is
interpolated between the closest ranks.  Ratios are between medians.
Inputs rotate through many copies
(see above), so n <= 10k is L2-resident, not L1-hot; timed inputs omit self
(the worst case).  `a64`: arrays 64-byte aligned, `o16`: 16 bytes past.
Every method was verified against the scalar reference inside the binary
before it was timed.  Sort rows (`memcpy`, `std_sort`, `pdqsort`, `vqsort`,
`qsort`) sort precomputed 128-bit keys `rtt<<64|id` of the healthy
candidates and include copying them into a scratch buffer each iteration
(the `memcpy` row is that copy alone); they do not filter or write ids, so
they are favoured against `rank`, which does both.  `vqsort` sorts
`hwy::uint128_t {lo=id, hi=rtt}` (128-bit mode: Highway 1.0.3's K64V64
mode corrupts entries whose key is UINT64_MAX, netelect's unknown RTT).
`floor_<isa>` streams the same 17 bytes per replica (id, RTT, health)
auto-vectorised for that ISA: nothing can read the input faster.
""".replace("{spread_note}", "one repetition: no spread" if COMMON_N == 1 else
            "only medians in the JSON: no spread" if COMMON_N is None else
            f"{COMMON_N} repetitions per row unless a cell says otherwise"))
    if errors:
        md.append("## Errors\n")
        md += [f"- `{n}`: {e}" for n, e in errors]
        md.append("")

    # --- key figures
    md.append("## Key figures against the targets\n")
    kf = key_figures(core, rows)
    md += kf

    summ = summary(core, rows)
    if summ:
        md.append("## Summary\n")
        md.append(summ)
        # summary.md: what README.md's Performance section shows.
        with open(os.path.join(out_dir, "summary.md"), "w") as fh:
            fh.write(f"Machine: {items[0][1]}; {items[1][1]}.  Compiler: {items[3][1]}; "
                     f"{items[4][1]}.  netelect: {items[5][1]}.\n\n")
            fh.write(summ + "\n")
            fh.write("\n".join(kf) + "\n")

    # --- core tables
    titles = {"elect": "elect", "rank": "rank (the whole failover order)"}
    ops = ["elect", "rank", "topk1", "topk3", "topk8", "topk64"]
    for op in ops:
        rank_in = {"rand": 0, "q1ms": 1, "desc": 2}
        keys = sorted((k for k in core.t if k[0] == op),
                      key=lambda k: (k[2] != "a64", rank_in.get(k[1], 9), k[1]))
        if not keys:
            continue
        md.append(f"## {titles.get(op, 'top-k, k = ' + op[4:])}\n")
        for key in keys:
            md.append(f"### {op}, input `{key[1]}`, `{key[2]}`\n")
            md.append(time_table(core, key) + "\n")
            _, inp, align = key
            if op == "elect":
                peers = [("seed", lambda n, k=key: core.get(*k, "seed", n)),
                         ("qsort seed", lambda n, k=key: core.get(*k, "qsort", n))]
                note = "Speed-up (peer time / netelect time, same run):"
                r = ratio_table(core, key, peers, note)
                if r:
                    md.append(r + "\n")
                body = []
                sizes = core.sizes(key)
                for m in core.kernels(key):
                    cells = []
                    for n in sizes:
                        mine, fl = core.get(*key, m, n), core.floor(inp, align, n)
                        cells.append(fmt_ratio(mine / fl) if mine and fl else "–")
                    body.append([f"{m} / floor"] + cells)
                if body and any(c != "–" for b in body for c in b[1:]):
                    md.append("Time over the read floor (the fastest `floor_*` row; 1× is the floor):\n")
                    md.append(table(["ratio"] + [f"n={fmt_n(n)}" for n in sizes], body) + "\n")
            elif op == "rank":
                peers = [(p, lambda n, k=key, p=p: core.get(*k, p, n))
                         for p in ("seed", "std_sort", "pdqsort", "vqsort", "qsort")]
                r = ratio_table(core, key, peers, "Speed-up (peer time / netelect time, same run):")
                if r:
                    md.append(r + "\n")
            else:
                peers = [(p, lambda n, k=key, p=p: core.get(*k, p, n))
                         for p in ("seed", "partial_sort_copy")]
                r = ratio_table(core, key, peers, "Speed-up (peer time / netelect time, same run):")
                if r:
                    md.append(r + "\n")
                sizes = core.sizes(key)
                body = []
                for m in core.kernels(key):
                    cells = []
                    for n in sizes:
                        mine = core.get(*key, m, n)
                        el = core.get("elect", inp, align, m, n)
                        cells.append(fmt_ratio(mine / el) if mine and el else "–")
                    body.append([f"{m} / elect {m}"] + cells)
                if body:
                    md.append("Cost relative to elect with the same kernel, same input (target for k <= 8: <= 1.3×):\n")
                    md.append(table(["ratio"] + [f"n={fmt_n(n)}" for n in sizes], body) + "\n")

    # --- shm and agent
    md += shm_section(rows)
    md += agent_section(rows)

    # --- plots
    pngs = []
    for key, fname, title in [
            (("elect", "rand", "a64"), "elect.png", "elect, rand, 64-byte aligned"),
            (("elect", "desc", "a64"), "elect_desc.png", "elect, RTT-descending (adversarial order)"),
            (("rank", "rand", "a64"), "rank.png", "rank (full order) vs peer sorts, rand"),
            (("topk8", "rand", "a64"), "topk8.png", "top-k, k = 8, rand")]:
        if key in core.t:
            core_plot(core, key, os.path.join(out_dir, fname), title)
            pngs.append((fname, title))
    if shm_plot(rows, os.path.join(out_dir, "shm.png")):
        pngs.append(("shm.png", "shm: view elect vs in-memory, publish cost"))
    if pngs:
        md.append("## Plots\n")
        md += [f"![{t}]({f})\n" for f, t in pngs]
    with open(os.path.join(out_dir, "REPORT.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")
    return errors


def summary(core, rows):
    """The compact table README.md shows: a few sizes, the main rows."""
    want = [3, 256, 10000, 1000000]
    sizes = [n for n in want if any(n in core.sizes(k) for k in core.t)]
    if not sizes:
        return ""
    body = []
    plan = [("elect", "rand", ["public"] + [m for m in ("scalar", "avx2", "avx512") if m != "public"]
             + ["ref", "seed", "qsort", "floor_avx512", "floor_avx2", "floor_base"]),
            ("elect", "desc", ["public", "seed"]),
            ("rank", "rand", ["public", "seed", "std_sort", "pdqsort", "vqsort"]),
            ("topk8", "rand", ["public", "seed", "partial_sort_copy"])]
    for op, inp, methods in plan:
        key = (op, inp, "a64")
        if key not in core.t:
            continue
        for m in methods:
            if m not in core.t[key]:
                continue
            body.append([f"{op} `{inp}`", m] + [fmt_spread(core.spread(*key, m, n)) for n in sizes])
    out = table(["op (input)", "method"] + [f"n={fmt_n(n)}" for n in sizes], body) + "\n"
    sh = shm_figures(rows)
    items = []
    mps = (lambda v: f"{v / 1e6:.1f}")
    if sh.get("view3"):
        items.append(f"view_elect 3-replica channel {fmt_spread(sh['view3'])} "
                     f"(repeated question, per-thread cache)"
                     + (f", {fmt_spread(sh['view3nc'])} with the cache defeated" if sh.get("view3nc") else ""))
    if sh.get("gen"):
        items.append(f"generation check {fmt_spread(sh['gen'])}")
    if sh.get("view10k") and sh.get("mem10k"):
        items.append(f"view_elect 10k (cache defeated) {fmt_spread(sh['view10k'])} vs in-memory "
                     f"{fmt_spread(sh['mem10k'])} ({sh['view10k'].median / sh['mem10k'].median:.2f}×)")
    if sh.get("pub10k"):
        items.append(f"publish 10k-node view {fmt_spread(sh['pub10k'])}")
    if sh.get("delta1M1"):
        items.append(f"publish of 1 changed node in a 1M-node view {fmt_spread(sh['delta1M1'])} as a delta"
                     + (f", {fmt_spread(sh['full1M1'])} as a full publish" if sh.get("full1M1") else ""))
    if sh.get("ptv"):
        items.append(f"publish-to-visible median {fmt_spread(sh['ptv'])}")
    if sh.get("r1") and sh.get("r2"):
        items.append(f"readers under a 1 kHz writer: 1 thread {fmt_spread(sh['r1'], mps)} M/s, "
                     f"2 threads {fmt_spread(sh['r2'], mps)} M/s "
                     f"({sh['r2'].median / sh['r1'].median:.2f}×)")
    if items:
        out += "\nshm: " + "; ".join(items) + ".\n"
    return out


def pick(core, op, inp, n):
    """The dispatched public entry point's Spread (method "public", 64-byte
    aligned input) for op/inp at n, or None when the run has no such row;
    no per-kernel row stands in for it."""
    return core.spread(op, inp, "a64", "public", n)


def ratio_of(num, den, higher_is_better):
    """num/den between two Spreads: (ratio of the medians, the least
    favourable pairing of their spreads).  Both are times (lower is better)
    unless the rows are rates; higher_is_better says which way the ratio
    itself should go for the target."""
    med = num.median / den.median
    if higher_is_better:
        worst = num.best() / den.worst()
    else:
        worst = num.worst() / den.best()
    return med, worst


def status(median, worst, ok):
    """ "meets" only if the least favourable end of the spread meets the
    target; "misses" if the median does not."""
    if median is None:
        return None
    if not ok(median):
        return "**misses**"
    if not ok(worst):
        return "**spread overlaps**"
    return "meets"


def key_figures(core, rows):
    out = []
    body = []

    def add(what, value, target, st):
        body.append([what, value, target, "–" if st is None else st])

    def add_time(what, sp, target, limit):
        add(what, fmt_spread(sp), target,
            status(sp.median, sp.worst(), lambda v: v <= limit) if sp else None)

    def add_ratio(what, num, den, target, ok, higher_is_better, judged=True):
        med, worst = ratio_of(num, den, higher_is_better)
        value = fmt_ratio(med)
        if abs(worst - med) > 1e-9 * med:
            value += f" (least favourable {fmt_ratio(worst)})"
        add(what, value, target, status(med, worst, ok) if judged else None)

    for inp in ("rand", "q1ms", "desc"):
        e = pick(core, "elect", inp, 10000)
        s = core.spread("elect", inp, "a64", "seed", 10000)
        add_time(f"elect n=10k ({inp}), public", e, "≤ 2.0 µs", 2000)
        if e and s and inp == "desc":
            # Reported, not judged: the seed's std::sort is near its best case
            # on reverse-sorted input, so this ratio says more about introsort.
            add_ratio(f"elect n=10k ({inp}) vs seed, same run (info: the seed sorts reversed input fast)",
                      s, e, "–", None, True, judged=False)
        elif e and s:
            add_ratio(f"elect n=10k ({inp}) vs seed, same run", s, e, "≥ 150×",
                      lambda r: r >= 150, True)
    add_time("elect n=3 (rand), public", pick(core, "elect", "rand", 3), "≤ 5 ns", 5)
    rk = pick(core, "rank", "rand", 10000)
    add_time("rank n=10k (rand), public", rk, "≤ 80 µs", 80000)
    for n in (16, 64, 256, 10000):
        rk = pick(core, "rank", "rand", n)
        for p in ("std_sort", "pdqsort", "vqsort"):
            pv = core.spread("rank", "rand", "a64", p, n)
            if rk and pv and (n == 10000 or p != "vqsort"):
                add_ratio(f"rank n={fmt_n(n)} vs {p} (peer/netelect)", pv, rk, "> 1×",
                          lambda r: r > 1, True)
    e = pick(core, "elect", "rand", 10000)
    for k in (1, 3, 8):
        t = pick(core, f"topk{k}", "rand", 10000)
        if t and e:
            add_ratio(f"top-k k={k} n=10k / elect n=10k", t, e, "≤ 1.2×", lambda r: r <= 1.2, False)
    sh = shm_figures(rows)
    if sh.get("view3"):
        add_time("shm view_elect, 3-replica channel (repeated question: per-thread cache)",
                 sh["view3"], "≤ 15 ns", 15)
    if sh.get("view3nc"):
        add_time("shm view_elect, 3-replica channel (cache defeated: full validated read)",
                 sh["view3nc"], "≤ 15 ns", 15)
    if sh.get("gen"):
        add_time("shm generation check", sh["gen"], "≤ 2 ns", 2)
    if sh.get("view10k") and sh.get("mem10k"):
        add_ratio("shm view_elect 10k (cache defeated) / in-memory elect 10k", sh["view10k"],
                  sh["mem10k"], "≤ 1.2×", lambda r: r <= 1.2, False)
    if sh.get("pub10k"):
        add_time("shm publish, 10k-node view", sh["pub10k"], "≤ 100 µs", 100000)
    if sh.get("delta1M1"):
        add_time("shm publish of 1 changed node in a 1M-node view (delta)", sh["delta1M1"],
                 "≤ 1 ms", 1e6)
    if sh.get("ptv"):
        add_time("shm publish-to-visible, median from the publish call", sh["ptv"], "≤ 5 µs", 5000)
    if sh.get("r1") and sh.get("r2"):
        med, worst = sh["r2"].median / sh["r1"].median, sh["r2"].worst(True) / sh["r1"].best(True)
        add("shm 2 readers / 1 reader (elections/s, writer at 1 kHz)",
            fmt_ratio(med) + (f" (least favourable {fmt_ratio(worst)})" if worst != med else ""),
            "≥ 1.8×", status(med, worst, lambda r: r >= 1.8))
    if sh.get("c1") and sh.get("c2"):
        add("shm 2 readers / 1 reader by thread CPU time per election (info: 2 × c1/c2, "
            "what two uncontended CPUs would give)",
            fmt_ratio(2 * sh["c1"].median / sh["c2"].median), "–", None)
    if not body:
        return ["(no rows)\n"]
    out.append("`public` is the dispatched `netelect_elect`/`_rank`/`_topk`.  Times are "
               "median [min, p90] over the repetitions; ratios are between medians, with the "
               "least favourable pairing of the two rows' min and p90 beside them.  "
               "\"meets\": the whole spread meets the target (p90 for a time, the least "
               "favourable pairing for a ratio); \"spread overlaps\": the median meets it, "
               "that end does not; \"misses\": the median misses it.\n")
    out.append(table(["figure", "measured", "target", "status"], body) + "\n")
    return out


def shm_figures(rows):
    """The shm figures the summary and the key figures use, each a Spread."""
    f = {}
    for r in rows.values():
        p = r.parts
        if r.error or r.stats() is None or len(p) < 3:
            continue
        if p[0] == "shm":
            if p[1] == "generation":
                f["gen"] = r.stats()
            elif p[1] == "view_elect" and p[2] == "3":
                f["view3"] = r.stats()
            elif p[1] == "view_elect_nocache" and p[2] == "3":
                f["view3nc"] = r.stats()
            elif p[1] == "view_elect_nocache" and p[2] == "10000":
                f["view10k"] = r.stats()
            elif p[1] == "mem_elect" and p[2] == "10000":
                f["mem10k"] = r.stats()
            elif p[1] == "publish" and p[2] == "10000":
                f["pub10k"] = r.stats()
            elif p[1] in ("publish_delta", "publish_full") and p[2:4] == ["1000000", "1"]:
                f[p[1][8:] + "1M1"] = r.stats()
        elif p[0] == "shm_mt":
            if p[1] == "publish_to_visible":
                f["ptv"] = r.counter_stats("p50_from_call_ns")
            elif p[1] == "readers_1khz":
                f["r%d" % r.threads] = r.counter_stats("items_per_second")
                f["c%d" % r.threads] = r.cpu_stats()
    return {k: v for k, v in f.items() if v is not None}


def shm_section(rows):
    sh = [r for r in rows.values() if r.parts and r.parts[0] in ("shm", "shm_mt")]
    if not sh:
        return []
    out = ["## Shared-memory view\n",
           "Pinned rows run on one CPU; `shm_mt` rows run unpinned on both CPUs (a reader "
           "thread needs its own CPU).\n"]
    body = []
    def num(x):
        return int(x) if x.isdigit() else 0
    for r in sorted(sh, key=lambda r: (r.parts[0], r.parts[1], num(r.parts[2]),
                                       [num(x) for x in r.parts[3:]], r.threads)):
        if r.error:
            body.append([r.name, "error: " + r.error, ""])
            continue
        p = r.parts
        if p[1] == "publish_to_visible":
            extra = (f"p50 from call {fmt_spread(r.counter_stats('p50_from_call_ns'))}, "
                     f"p50 from return {fmt_spread(r.counter_stats('p50_from_return_ns'))}, "
                     f"p99 from call {fmt_spread(r.counter_stats('p99_from_call_ns'))}")
            body.append([f"{p[0]}/{p[1]}", fmt_spread(r.stats()) + " (mean per repetition)", extra])
        elif p[1] == "readers_1khz":
            tot = r.counter_stats("items_per_second")
            per = (lambda v, t=r.threads: f"{v / 1e6 / t:.1f}")
            body.append([f"{p[0]}/{p[1]} threads={r.threads}", fmt_spread(r.stats()) + " real time per election, all threads",
                         (f"{fmt_spread(tot, lambda v: f'{v / 1e6:.1f}')} M elections/s total, "
                          f"{fmt_spread(tot, per)} M per thread; "
                          f"{fmt_spread(r.cpu_stats())} of thread CPU time per election" if tot else "")])
        else:
            npr = r.counter("ns_per_replica")
            changed = f", {p[3]} changed" if p[1].startswith("publish_") and len(p) > 3 else ""
            body.append([f"{p[0]}/{p[1]} n={fmt_n(p[2])}{changed}",
                         fmt_spread(r.stats()), f"{npr:.3g} ns/replica (median)" if npr else ""])
    out.append(table(["row", "median [min, p90]", "notes"], body) + "\n")
    f = shm_figures(rows)
    if f.get("r1") and f.get("r2"):
        out.append(f"Two readers / one reader: {f['r2'].median / f['r1'].median:.2f}× (elections/s, medians, same run). "
                   "The rate needs a whole CPU per reader: with other jobs on the machine (see the "
                   "load average) a reader gets less, which the thread CPU time per election "
                   "leaves out; equal CPU time per election at 1 and 2 threads means the readers "
                   "do not slow each other down.\n")
    if f.get("view10k") and f.get("mem10k"):
        out.append(f"view_elect 10k with the answer cache defeated / in-memory netelect_elect 10k: "
                   f"{f['view10k'].median / f['mem10k'].median:.2f}× (medians).\n")
    return out


def shm_plot(rows, path):
    series = {}
    for r in rows.values():
        p = r.parts
        if not p or p[0] != "shm" or r.error or r.time() is None or len(p) < 3 or not p[2].isdigit():
            continue
        labels = {"view_elect": "view_elect (same question: cached answer)",
                  "view_elect_nocache": "view_elect (cache defeated)",
                  "mem_elect": "in-memory netelect_elect",
                  "publish": "publish (nodes in view)"}
        if p[1] in labels:
            n = int(p[2])
            series.setdefault(labels[p[1]], []).append((n, r.time() / n))
    if not series:
        return False
    plot(path, "shm: view_elect vs in-memory elect; publish cost", sorted(series.items()),
         xlabel="replicas in channel / nodes in view")
    return True


def agent_section(rows):
    ag = [r for r in rows.values() if r.parts and r.parts[0] == "agent"]
    if not ag:
        return []
    body = [[r.name, "error: " + r.error if r.error else fmt_spread(r.stats())] for r in sorted(ag, key=lambda r: r.name)]
    return ["## Agent: one probe packet\n",
            "`agent/pong`: token bucket + decode with HMAC-SHA512-256 verify + replay window + "
            "probe update; `agent/auth_verify`: libsodium crypto_auth_verify alone (lower bound).\n",
            table(["row", "median [min, p90]"], body) + "\n"]


COMPARE_PY = "/usr/share/benchmark/compare.py"


def compare(old, new, flt):
    """Google Benchmark's compare.py with its U-test; its exit status."""
    if not os.path.exists(COMPARE_PY):
        sys.exit(f"report.py: {COMPARE_PY} missing (apt-get install libbenchmark-tools)")
    # Debian's interpreter: compare.py needs its python3-scipy.
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    cmd = [py, COMPARE_PY] + ([] if sys.stdout.isatty() else ["--no-color"])
    if flt:
        cmd += ["filters", old, flt, new, flt]
    else:
        cmd += ["benchmarks", old, new]
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="store_true", help="run the suite")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke-test mode (default with --run)")
    mode.add_argument("--full", action="store_true", help="every size, repetitions")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                    help="before/after comparison with Google Benchmark's compare.py (U-test)")
    ap.add_argument("--json", action="append", default=[], help="read this Google Benchmark JSON")
    ap.add_argument("--bin", help="netelect-bench binary (default build-bench/bench/netelect-bench)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="output directory")
    ap.add_argument("--reps", type=int, default=5, help="repetitions in full mode")
    ap.add_argument("--runs", type=int, default=1,
                    help="run the whole suite this many times; each row's spread pools the repetitions of all runs")
    ap.add_argument("--min-time", type=float, help="--benchmark_min_time in seconds")
    ap.add_argument("--sizes", help="override the replica counts, e.g. 3,10000")
    ap.add_argument("--filter", help="--benchmark_filter regex")
    ap.add_argument("--cpu", type=int, default=1, help="CPU to pin the single-thread rows to")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--quiet-run", action="store_true", help="send the console table to stderr")
    args = ap.parse_args()
    if args.compare:
        return compare(args.compare[0], args.compare[1], args.filter)
    if not args.run and not args.json:
        ap.error("give --run, --json FILE or --compare OLD NEW")
    os.makedirs(args.out, exist_ok=True)
    cmds, failed = [], False
    files = list(args.json)
    if args.run:
        got, cmds, failed = run_suite(args, args.out)
        files += got
    data = load(files)
    if args.run or len(files) > 1:
        with open(os.path.join(args.out, "bench.json"), "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
    if not data["benchmarks"]:
        print("report.py: no benchmark rows", file=sys.stderr)
        failed = True
    errors = build_report(data, args.out, cmds, sys.argv[1:])
    print(f"report: {os.path.join(args.out, 'REPORT.md')}")
    for n, e in errors:
        print(f"report.py: error in {n}: {e}", file=sys.stderr)
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
