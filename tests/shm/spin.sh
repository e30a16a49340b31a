#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model-checks a SPIN model of the segment protocol: the protocol (K=2 and
# K=3) must verify with 0 errors, and each negative control (a variant with
# a known bug) must be caught.
#   shm/model/publish.pml  full publishes, crash, restart; control: no re-check
#   shm/model/delta.pml    delta publishes (catch-up, copy); controls: no
#                          re-check, payload stored before seq odd, no catch-up
# Exit 77 (skip) without spin/cc.
set -u
model=${1:?usage: spin.sh path/to/publish.pml|delta.pml}
command -v spin >/dev/null && command -v cc >/dev/null || exit 77
kind=$(basename "$model" .pml)
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/publish.pml"
cd "$work" || exit 1

check() { # name, expected errors, spin -D flags...
    local name=$1 want=$2
    shift 2
    rm -f pan pan.*
    spin "$@" -a publish.pml >spin.log 2>&1 || { cat spin.log; return 1; }
    cc -O2 -DSAFETY -o pan pan.c 2>cc.log || { cat cc.log; return 1; }
    ./pan -m200000 >pan.log 2>&1
    local got
    got=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.log | head -1)
    echo "spin $name: errors ${got:-?} (want $want): $(grep -E 'states, stored' pan.log)"
    if [[ $want == 0 && $got != 0 ]] || [[ $want != 0 && ${got:-0} == 0 ]]; then
        cat pan.log
        return 1
    fi
}
rc=0
check "$kind K=2" 0 -DK=2 || rc=1
check "$kind K=3" 0 -DK=3 || rc=1
check "$kind K=2, no validation (negative control)" 1 -DK=2 -DNOVALIDATE || rc=1
if [[ $kind == delta ]]; then
    check "$kind K=2, change stored before seq odd (negative control)" 1 -DK=2 -DEARLYSTORE || rc=1
    check "$kind K=3, no catch-up of a reused slot (negative control)" 1 -DK=3 -DNOCATCHUP || rc=1
fi
exit $rc
