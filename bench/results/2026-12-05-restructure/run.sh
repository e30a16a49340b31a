#!/bin/sh
# SPDX-License-Identifier: MIT
# Before/after in one sitting: the two binaries alternate (ABBA order) for
# ROUNDS rounds, each invocation pinned to CPU 1 with 5 repetitions in
# random interleaving, so load that comes and goes hits both sides alike.
#   run.sh BEFORE_BIN AFTER_BIN OUTDIR [ROUNDS]
set -eu
old=$1 new=$2 out=$3 rounds=${4:-4}
filter='^(elect/public/rand/a64/(3|10000)|shm/view_elect(_nocache)?/(3|10000)|shm/publish/(1000|10000|100000))$'
mkdir -p "$out"
r=1
while [ "$r" -le "$rounds" ]; do
    if [ $((r % 2)) -eq 1 ]; then order="before after"; else order="after before"; fi
    for side in $order; do
        if [ "$side" = before ]; then bin=$old; else bin=$new; fi
        echo "$(date -u +%H:%M:%S) round $r $side loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/log.txt"
        taskset -c 1 "$bin" --ne_groups=core,shm --ne_sizes=3,10000 \
            --benchmark_filter="$filter" --benchmark_min_time=0.2 \
            --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
            --benchmark_display_aggregates_only=true \
            --benchmark_out_format=json --benchmark_out="$out/$side-$r.json" >/dev/null
    done
    r=$((r + 1))
done
echo "$(date -u +%H:%M:%S) done loadavg $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/log.txt"
