#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Merges the rounds of one side into one Google Benchmark JSON holding
every timed repetition: the per-round aggregates are dropped (compare.py
and report.py compute from the repetitions), and so are repetitions that
reported an error (their time is 0, not a measurement).
  merge.py OUT.json ROUND.json...
"""
import json
import sys

out, files = sys.argv[1], sys.argv[2:]
merged = None
for f in files:
    with open(f) as fh:
        d = json.load(fh)
    if merged is None:
        merged = {"context": d["context"], "benchmarks": []}
    merged["benchmarks"] += [b for b in d["benchmarks"] if b.get("run_type") != "aggregate" and not b.get("error_occurred")]
with open(out, "w") as fh:
    json.dump(merged, fh, indent=1)
