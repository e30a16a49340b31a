#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""netelect(1) and `netelect --help` list the same verbs, each under the same
heading (reading the view / driving the agent), and `netelect VERB --help`
gives each verb's own synopsis.

usage: cli_verbs.py NETELECT man/netelect.1.scd
"""
import re
import subprocess
import sys

cli, page = sys.argv[1], sys.argv[2]
fail = []


def man_verbs(text):
    """{heading: [verb...]} from the READING / DRIVING sections: the first
    bold word of each |-separated alternative of a term line."""
    out, sec = {}, None
    for line in text.splitlines():
        if line.startswith("# "):
            sec = {"# READING THE VIEW": "read", "# DRIVING THE AGENT": "drive"}.get(line)
            continue
        if sec and line.startswith("*"):
            for alt in line.split(" | "):
                m = re.match(r"\*([a-z-]+)", alt.strip())
                if m:
                    out.setdefault(sec, []).append(m.group(1))
    return out


def help_verbs(text):
    out, sec = {}, None
    for line in text.splitlines():
        if line.startswith("Reading the view"):
            sec = "read"
        elif line.startswith("Driving the agent"):
            sec = "drive"
        elif not line.startswith("  "):
            sec = None
        elif sec and re.match(r"  [a-z]", line):
            out.setdefault(sec, []).append(line.split()[0])
    return out


h = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=10)
if h.returncode != 0:
    fail.append(f"netelect --help exited {h.returncode}")
hv = help_verbs(h.stdout)
mv = man_verbs(open(page, encoding="utf-8").read())
for sec in ("read", "drive"):
    a, b = set(hv.get(sec, [])), set(mv.get(sec, []))
    if not a:
        fail.append(f"--help lists no verb under '{sec}'")
    if a != b:
        fail.append(f"'{sec}' verbs differ: only in --help {sorted(a - b)}, only in the man page {sorted(b - a)}")
for verb in sorted(set(sum(hv.values(), []))):
    r = subprocess.run([cli, verb, "--help"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0 or not r.stdout.startswith(f"usage: netelect {verb}"):
        fail.append(f"`netelect {verb} --help` does not give its synopsis: {r.stdout[:60]!r}")
for f in fail:
    print("FAIL", f)
if not fail:
    print("ok", {k: len(v) for k, v in hv.items()}, "verbs")
sys.exit(1 if fail else 0)
