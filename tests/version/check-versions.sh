#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# meson's project(version:) is the one version source.  The C header's
# NETELECT_VERSION_* and the library's netelect_version() are generated from
# it (tests/core/test_seed.c checks them); the files below cannot be
# generated (packaging metadata read before meson runs), so each must say
# the same version:
#   check-versions.sh SOURCE_ROOT MESON_VERSION
set -euo pipefail
src=$1 want=$2
fail=0
check() { # file, version found there
    if [[ $2 != "$want" ]]; then
        echo "$1: version '$2', meson.build says '$want'"
        fail=1
    fi
}
check bindings/python/pyproject.toml \
    "$(sed -n 's/^version = "\(.*\)"$/\1/p' "$src/bindings/python/pyproject.toml")"
check bindings/python/netelect/__init__.py \
    "$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$src/bindings/python/netelect/__init__.py")"
for c in netelect netelect-sys; do
    check "bindings/rust/$c/Cargo.toml" \
        "$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$src/bindings/rust/$c/Cargo.toml")"
done
# The Debian version's upstream part (native: no revision, maybe a +suffix).
check debian/changelog "$(sed -n '1s/^netelect (\([^)+~-]*\).*/\1/p' "$src/debian/changelog")"
((fail == 0)) && echo "every version is $want"
exit "$fail"
