#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every section and key agent/config.c accepts is documented in
netelectd.conf(5), in its own section, and the page documents no key the
parser does not accept.

usage: conf_keys.py agent/config.c man/netelectd.conf.5.scd

The parser's keys are read from its source: each IS("section", "key") test
in handler(), and the free-form sections compared by name (strcmp(s, "peers")).
Adding a key to the parser without a `*key* =` entry under `# [section]` in
the page fails this test.  Exit 0 pass, 1 fail.
"""
import re
import sys

src = open(sys.argv[1]).read()
page = open(sys.argv[2]).read()

handler = src[src.index("static int handler("):]
handler = handler[:handler.index("\n}\n")]
handler = re.sub(r'"\s*\n\s*"', "", handler)  # join adjacent string literals
keys = set(re.findall(r'IS\("([a-z_]+)",\s*"([a-z_0-9]+)"\)', handler))
# sections whose keys are names (peer ids, channel names), not fixed keys
free = set(re.findall(r'if \(!strcmp\(s, "([a-z_]+)"\)\)', handler))
sections = {s for s, _ in keys} | free
# the sections named in the "unknown section" message must be the same set
known = re.search(r'known: ([a-z, ]+)\)', handler)
if len(keys) < 30 or not free or not known:
    sys.exit(f"FAIL: could not read the parser's keys from {sys.argv[1]} "
             f"({len(keys)} keys, free sections {free}, known-list {bool(known)})")

# the page: "# [section]" headings, "*key* =" entries under them
documented = set()
page_sections = set()
cur = None
for line in page.splitlines():
    m = re.match(r'# \[([a-z_]+)\]\s*$', line)
    if m:
        cur = m.group(1)
        page_sections.add(cur)
        continue
    if line.startswith("# "):
        cur = None
        continue
    m = re.match(r'\*([a-z_0-9]+)\* =', line)
    if m and cur:
        documented.add((cur, m.group(1)))

fail = []
for s in sorted(sections - page_sections):
    fail.append(f"section [{s}] is accepted by the parser but has no '# [{s}]' in the man page")
for s, k in sorted(keys - documented):
    fail.append(f"[{s}] {k} is accepted by the parser but not documented in the man page")
for s, k in sorted(documented - keys):
    fail.append(f"[{s}] {k} is documented in the man page but the parser does not accept it")
for s in sorted(page_sections - sections):
    fail.append(f"the man page documents a section [{s}] the parser does not accept")
named = {x.strip() for x in known.group(1).split(",")}
if named != sections:
    fail.append(f"the parser's 'known:' list {sorted(named)} differs from its sections {sorted(sections)}")
for f in fail:
    print("FAIL " + f)
if not fail:
    print(f"ok   {len(keys)} keys in {len(sections)} sections documented in {sys.argv[2]}")
sys.exit(1 if fail else 0)
