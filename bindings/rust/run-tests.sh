#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# meson test 'rust' (suite 'bindings'): `cargo test` of the Rust bindings
# against this build's libnetelect.so and agent binaries.
#   run-tests.sh BUILD_DIR
# Debian's own /usr/bin/cargo, rustc and rustdoc (1.63) on purpose: a rustup
# toolchain may come first on PATH (its rustdoc cannot read 1.63's
# metadata), and the offline registry holds Debian's crates
# (NETELECT_CARGO, NETELECT_RUSTC and NETELECT_RUSTDOC override them).  Exit 77 (skip)
# when cargo is missing.  Everything cargo writes stays in BUILD_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
cargo=${NETELECT_CARGO:-/usr/bin/cargo}
if ! [[ -x $cargo ]]; then
    echo "SKIP: $cargo is missing (apt-get install cargo)"
    exit 77
fi
export RUSTC=${NETELECT_RUSTC:-/usr/bin/rustc}
export RUSTDOC=${NETELECT_RUSTDOC:-/usr/bin/rustdoc}
export CARGO_HOME=$build/bindings/rust/cargo-home
export CARGO_TARGET_DIR=$build/bindings/rust/target
# netelect-uninstalled.pc: this build's library and the tree's headers.
export PKG_CONFIG_PATH=$build/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export LD_LIBRARY_PATH=$build${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NETELECT_BUILD=$build
cd "$here"
exec "$cargo" test --offline --workspace
