#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The generated netelectd.service: names this build's prefix,
# passes `systemd-analyze verify` as installed (its ExecStart/ExecReload
# binaries and Documentation= man pages present), and `systemd-analyze
# security --offline=yes` rates it at most MAX_EXPOSURE.
# usage: unit_check.sh BUILD_DIR PREFIX SBINDIR BINDIR [MAX_EXPOSURE]
# Exit 0 pass, 1 fail, 77 skip (no systemd-analyze).
set -uo pipefail
build=$(cd "$1" && pwd) prefix=$2 sbindir=$3 bindir=$4 max=${5:-3.0}
unit=$build/agent/netelectd.service
command -v systemd-analyze >/dev/null ||
    { echo "SKIP: systemd-analyze (package systemd) is missing"; exit 77; }
fail=0
grep -qx "ExecStart=$prefix/$sbindir/netelectd \$NETELECTD_ARGS" "$unit" ||
    { echo "FAIL: ExecStart does not name $prefix/$sbindir/netelectd:"; grep ^Exec "$unit"; fail=1; }
grep -qx "ExecReload=$prefix/$bindir/netelect reload" "$unit" ||
    { echo "FAIL: ExecReload does not name $prefix/$bindir/netelect"; fail=1; }
grep -q "^Documentation=.*file://$prefix/" "$unit" ||
    { echo "FAIL: Documentation= does not point into $prefix"; fail=1; }
grep -q '@[A-Z]*@' "$unit" && { echo "FAIL: unsubstituted @VAR@ in $unit"; fail=1; }

# Security: the overall exposure level, a number 0.0 (best) .. 10.0.
out=$(systemd-analyze security --offline=yes "$unit" 2>&1)
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [[ -z $level ]]; then
    echo "FAIL: no exposure level in the output of systemd-analyze security:"; echo "$out"; fail=1
elif awk -v l="$level" -v m="$max" 'BEGIN { exit !(l > m) }'; then
    echo "FAIL: exposure level $level > $max:"; grep '✗' <<<"$out"; fail=1
else
    echo "ok   systemd-analyze security: exposure level $level (limit $max)"
fi

# verify: the unit as installed.  Its paths are absolute under the prefix,
# so the check runs on a copy pointing into a DESTDIR install (the one
# thing changed), with MANPATH there so that Documentation=man: is checked.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! meson install -C "$build" --destdir "$tmp/root" --quiet --no-rebuild >"$tmp/log" 2>&1; then
    echo "FAIL: meson install"; cat "$tmp/log"; exit 1
fi
inst=$tmp/root$prefix/lib/systemd/system/netelectd.service
[[ -f $inst ]] || { echo "FAIL: the unit is not installed in $prefix/lib/systemd/system"; exit 1; }
cmp -s "$inst" "$unit" || { echo "FAIL: the installed unit differs from $unit"; fail=1; }
sed "s|=$prefix/|=$tmp/root$prefix/|" "$inst" >"$tmp/netelectd.service"
man_opt=--man=no
if [[ -d $tmp/root$prefix/share/man/man8 ]] && command -v man >/dev/null; then
    export MANPATH=$tmp/root$prefix/share/man MAN_DISABLE_SECCOMP=1
    man_opt=--man=yes
fi
if out=$(systemd-analyze verify "$man_opt" "$tmp/netelectd.service" 2>&1) && [[ -z $out ]]; then
    echo "ok   systemd-analyze verify ($man_opt)"
else
    echo "FAIL: systemd-analyze verify $man_opt:"; echo "$out"; fail=1
fi
exit $fail
