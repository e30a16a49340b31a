#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs one libFuzzer target for a fixed time over its committed seed corpus,
# writing new inputs to a scratch directory (the committed corpus is never
# modified).  Usage: run-fuzz.sh TARGET CORPUS_DIR SECONDS
set -euo pipefail
target=$(realpath "$1") corpus=$(realpath "$2") secs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
exec "$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$scratch" "$corpus"
