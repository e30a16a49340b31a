#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `meson install --destdir` works and what it installs is usable: the header,
# the pkg-config file and the shared and static libraries build a program
# that links and runs.  Usage: check-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --quiet --no-rebuild >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/root" -name netelect.pc | head -n1)
[[ -n $pc ]] || { echo "netelect.pc not installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
export PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH=$(dirname "$pc")
cat >"$tmp/use.c" <<'C'
#include <netelect.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    const uint64_t ids[] = {30, 20, 10};
    const uint64_t rtt[] = {5, 5, NETELECT_RTT_UNKNOWN};
    const uint8_t ok[] = {1, 1, 1};
    struct netelect_result r = netelect_elect(ids, rtt, ok, 3, 99);
    printf("%s %d %llu\n", netelect_version(), r.outcome, (unsigned long long)r.winner);
    return !(r.outcome == NETELECT_PEER_WINS && r.winner == 20);
}
C
cc -std=c17 -Wall -Werror $(pkg-config --cflags netelect) "$tmp/use.c" -o "$tmp/use-shared" \
    $(pkg-config --libs netelect)
LD_LIBRARY_PATH="$tmp/root$prefix/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo .):$tmp/root$prefix/lib" \
    "$tmp/use-shared"
cc -std=c17 -Wall -Werror $(pkg-config --cflags netelect) "$tmp/use.c" -o "$tmp/use-static" \
    $(pkg-config --libs --static netelect | sed 's/-lnetelect/-l:libnetelect.a/')
"$tmp/use-static"
# Only the public API is exported.
so=$(find "$tmp/root" -name 'libnetelect.so.*.*' | head -n1)
nm -D --defined-only "$so" | awk '{print $3}' >"$tmp/dynsym"
bad=$(grep -v '^netelect_' "$tmp/dynsym" | grep -v '^_' | grep -v '^NETELECT_[0-9.]*$' || true)
[[ -z $bad ]] || { echo "unexpected exported symbols: $bad"; exit 1; }
# ... and exactly it, each symbol with its version node (libnetelect.map): a
# function declared NETELECT_API in include/ but left out of the version
# script is hidden, one in the script but not in a header is exported by
# mistake, and an unversioned one means the script was not applied.
src=$(cd "$(dirname "$0")/../.." && pwd)
grep -ohE 'NETELECT_API[^(;]*\bnetelect_[a-z0-9_]+ *\(' "$src"/include/netelect.h \
    "$src"/include/netelect/*.h | grep -oE 'netelect_[a-z0-9_]+ *\($' | tr -d ' (' |
    sort -u >"$tmp/api"
[[ -s $tmp/api ]] || { echo "no NETELECT_API function found in $src/include"; exit 1; }
# The default versions (name@@NODE) are what a program links against now;
# a compatibility version (name@NODE, for programs linked earlier) needs a
# default of the same name beside it.
grep '^netelect_' "$tmp/dynsym" | grep '@@NETELECT_[0-9.]*$' | sed 's/@@NETELECT_[0-9.]*$//' |
    sort >"$tmp/exported"
diff -u --label 'include/ (NETELECT_API)' --label 'exported' "$tmp/api" "$tmp/exported" ||
    { echo "the exported symbols differ from the public API: see libnetelect.map"; exit 1; }
compat=$(grep '^netelect_' "$tmp/dynsym" | grep -v '@@' | grep '@NETELECT_[0-9.]*$' |
         sed 's/@NETELECT_[0-9.]*$//' | sort -u | comm -23 - "$tmp/api")
[[ -z $compat ]] || { echo "compatibility symbols without a default version: $compat"; exit 1; }
unversioned=$(grep '^netelect_' "$tmp/dynsym" | grep -v '@@\?NETELECT_[0-9.]*$' || true)
[[ -z $unversioned ]] || { echo "symbols without a version node: $unversioned"; exit 1; }
echo "install check ok"
