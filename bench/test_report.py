#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Checks that report.py shows each row's spread and judges targets by it.

  test_report.py REPORT_PY [NETELECT_BENCH]

1. Two runs' Google Benchmark JSON with known repetitions (written here):
   the report must pool them (n = 10), print "median [min, p90]", and mark
   a target met only when the whole spread meets it.
2. With NETELECT_BENCH: a --full run of one row must keep every repetition
   in its JSON (not only the aggregates), and its report shows the spread.
Exit 0 when every check holds, 1 otherwise.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

FAILS = []


def check(cond, what):
    print(("ok     " if cond else "FAILED ") + what)
    if not cond:
        FAILS.append(what)


def entries(name, values, unit="ns", field="cpu_time", counters=None):
    """Per-repetition entries plus the median aggregate Google Benchmark
    appends (report.py must use the repetitions, not the aggregate)."""
    out = []
    for i, v in enumerate(values):
        e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": len(values),
             "repetition_index": i, "threads": 1, "iterations": 1000, "real_time": v,
             "cpu_time": v, "time_unit": unit}
        e[field] = v
        out.append(e)
    mid = sorted(values)[len(values) // 2]
    out.append({"name": name + "_median", "run_name": name, "run_type": "aggregate",
                "repetitions": len(values), "threads": 1, "aggregate_name": "median",
                "aggregate_unit": "time", "iterations": len(values), "real_time": mid,
                "cpu_time": mid, "time_unit": unit})
    return out


def fixture(run):
    """Run `run` (0 or 1) of a two-run suite."""
    elect3 = [[4.0, 4.2, 4.4, 4.7, 9.0], [4.1, 4.3, 4.6, 4.8, 8.0]][run]
    rank16 = [90.0, 95.0, 100.0, 105.0, 140.0]
    pdq16 = [110.0, 112.0, 115.0, 118.0, 120.0]
    gen = [1.0, 1.1, 1.2, 1.3, 1.4]
    nocache = [20.0, 21.0, 22.0, 23.0, 24.0]
    b = (entries("elect/public/rand/a64/3", elect3) + entries("rank/public/rand/a64/16", rank16)
         + entries("rank/pdqsort/rand/a64/16", pdq16) + entries("shm/generation/1", gen)
         + entries("shm/view_elect_nocache/3", nocache))
    ctx = {"date": "2026-12-05T00:00:00+00:00", "num_cpus": 2, "load_avg": [0.5, 0.5, 0.5],
           "cpu_model": "test fixture", "ne_groups": "core,shm"}
    return {"context": ctx, "benchmarks": b}


def figure(report, what):
    """The key-figures row whose first cell is `what`: (measured, status)."""
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] == what:
            return cells[1], cells[3]
    return None, None


def case_fixture(report_py, tmp):
    files = []
    for run in (0, 1):
        f = os.path.join(tmp, f"run{run}.json")
        with open(f, "w") as fh:
            json.dump(fixture(run), fh)
        files.append(f)
    out = os.path.join(tmp, "fixture")
    cmd = [sys.executable, report_py, "--out", out] + [a for f in files for a in ("--json", f)]
    rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
    check(rc == 0, f"report.py --json x2 exits 0 (got {rc})")
    with open(os.path.join(out, "REPORT.md")) as fh:
        rep = fh.read()
    # Pooled: 4.0 4.1 4.2 4.3 4.4 4.6 4.7 4.8 8.0 9.0 -> median 4.5, p90 8.1.
    m, st = figure(rep, "elect n=3 (rand), public")
    check(m == "4.50 ns [4.00, 8.10]", f"elect n=3 shows median [min, p90] of 10 repetitions (got {m!r})")
    check(st == "**spread overlaps**", f"elect n=3: median 4.5 <= 5 ns but p90 8.1 is not met (got {st!r})")
    check("10 repetitions per row" in rep, "the method notes give the repetition count")
    m, st = figure(rep, "shm generation check")
    check(st == "meets", f"generation check: p90 1.36 <= 2 ns meets (got {st!r}, {m!r})")
    m, st = figure(rep, "shm view_elect, 3-replica channel (cache defeated: full validated read)")
    check(st == "**misses**", f"view_elect nocache: median 22 ns > 15 ns misses (got {st!r})")
    # 115/100 = 1.15 between medians; 110 (pdqsort min) / 140 (rank p90) < 1.
    m, st = figure(rep, "rank n=16 vs pdqsort (peer/netelect)")
    check(m is not None and m.startswith("1.15×") and "0.786×" in m,
          f"rank vs pdqsort: ratio of medians and least favourable pairing (got {m!r})")
    check(st == "**spread overlaps**", f"rank vs pdqsort judged by the spread (got {st!r})")
    check(re.search(r"\| public \| 4\.50 ns \[4\.00, 8\.10\] \|", rep) is not None,
          "the time table shows median [min, p90]")


def case_run(report_py, binary, tmp):
    out = os.path.join(tmp, "run")
    name = "elect/public/rand/a64/3"
    cmd = [sys.executable, report_py, "--run", "--full", "--reps", "3", "--sizes", "3",
           "--min-time", "0.01", "--filter", "^" + name + "$", "--bin", binary, "--out", out,
           "--quiet-run"]
    rc = subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    check(rc == 0, f"report.py --run --full exits 0 (got {rc})")
    with open(os.path.join(out, "bench.json")) as fh:
        data = json.load(fh)
    reps = [b for b in data["benchmarks"]
            if b.get("run_name") == name and b.get("run_type") == "iteration"]
    check(len(reps) == 3, f"bench.json keeps each of the 3 repetitions (got {len(reps)})")
    with open(os.path.join(out, "REPORT.md")) as fh:
        rep = fh.read()
    m, _ = figure(rep, "elect n=3 (rand), public")
    check(m is not None and re.fullmatch(r"\S+ \S+ \[\S+, \S+\]", m) is not None,
          f"the report shows the run's spread (got {m!r})")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    report_py = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        case_fixture(report_py, tmp)
        if len(sys.argv) > 2:
            case_run(report_py, sys.argv[2], tmp)
    print(f"{len(FAILS)} check(s) failed" if FAILS else "all checks passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
