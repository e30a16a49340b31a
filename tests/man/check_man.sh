#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Each generated man page renders without a single warning, through groff
# (-ww: all warnings) and through man-db's own check (man --warnings -l).
# usage: check_man.sh PAGE...   Exit 0 clean, 1 a warning, 77 no groff/man.
set -uo pipefail
command -v groff >/dev/null || { echo "SKIP: groff (groff-base) is missing"; exit 77; }
command -v man >/dev/null || { echo "SKIP: man (man-db) is missing"; exit 77; }
# MAN_DISABLE_SECCOMP: man-db's sandbox for groff may be refused in a container
export LC_ALL=C.UTF-8 MANWIDTH=80 MAN_DISABLE_SECCOMP=1
fail=0
for page in "$@"; do
    [[ -s $page ]] || { echo "FAIL $page: missing or empty"; fail=1; continue; }
    out=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
    if [[ -n $out ]]; then echo "FAIL $page: groff -ww:"; echo "$out"; fail=1; fi
    out=$(man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    if [[ -n $out ]]; then echo "FAIL $page: man --warnings:"; echo "$out"; fail=1; fi
    # a page that renders to nearly nothing is broken, however quietly
    lines=$(man -E UTF-8 -l "$page" 2>/dev/null | wc -l)
    if ((lines < 40)); then echo "FAIL $page: renders to only $lines lines"; fail=1; fi
    ((fail)) || echo "ok   $page ($lines lines)"
done
exit $fail
