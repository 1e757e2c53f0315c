#!/usr/bin/env bash
# Same-run ratios of kontiki to raft-rs 0.7 on T0's replication workloads
# (docs/benchmarks.md), at 16 B, 1 KiB and 64 KiB payloads: RUNS rounds
# (default 5), each running every workload once in a fresh process on
# kontiki's T0 bench and then on this harness, alternating; then the median
# entries/s of each, their ratio, and the allocations per entry of each
# (the whole process: three nodes, the queue, the stores and the payloads).
#
# Usage: bench-raftrs/compare.sh [RUNS] [PAYLOAD...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
payloads=${*:-16 1024 65536}

kontiki=$(cargo bench -p kontiki-tests --bench t0 --no-run 2>&1 |
    sed -n 's/.*Executable benches\/t0.rs (\(.*\))/\1/p')
(cd bench-raftrs && cargo build --release --quiet)
raftrs=bench-raftrs/target/release/kontiki-bench-raftrs

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for payload in $payloads; do
    for run in $(seq "$runs"); do
        echo "payload $payload, round $run of $runs" >&2
        for workload in single batch100 batch100-codec; do
            # kontiki's child prints: entries/s p50 p99 msgs trial v50 v99 rss allocations
            line=$(KONTIKI_BENCH_PAYLOAD=$payload KONTIKI_T0_WORKLOAD=$workload "$kontiki")
            echo "$payload $workload kontiki $(echo "$line" | awk '{ printf "%.0f %.2f %d", $1, $9, $8 }')" >>"$log"
            echo "$payload $workload raftrs $(KONTIKI_BENCH_PAYLOAD=$payload "$raftrs" "$workload")" >>"$log"
        done
    done
done

median() { # payload workload system column
    awk -v p="$1" -v w="$2" -v s="$3" -v c="$4" '$1 == p && $2 == w && $3 == s { print $c }' "$log" |
        sort -g | awk '{ v[++n] = $1 } END { if (n) print v[int((n + 1) / 2)] }'
}
all_runs() { # payload workload system
    awk -v p="$1" -v w="$2" -v s="$3" '$1 == p && $2 == w && $3 == s { printf "%s%d", sep, $4 / 1000; sep = ", " }' "$log"
}

echo
echo "| payload | workload | kontiki entries/s | raft-rs entries/s | ratio | allocations/entry kontiki / raft-rs | peak RSS MB kontiki / raft-rs | kontiki runs (k) | raft-rs runs (k) |"
echo "|---|---|---|---|---|---|---|---|---|"
for payload in $payloads; do
    for workload in single batch100 batch100-codec; do
        ours=$(median "$payload" "$workload" kontiki 4)
        theirs=$(median "$payload" "$workload" raftrs 4)
        ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2fx", a / b }')
        allocations="$(median "$payload" "$workload" kontiki 5) / $(median "$payload" "$workload" raftrs 5)"
        rss=$(awk -v a="$(median "$payload" "$workload" kontiki 6)" -v b="$(median "$payload" "$workload" raftrs 6)" 'BEGIN { printf "%.0f / %.0f", a / 1024, b / 1024 }')
        echo "| $payload B | $workload | $ours | $theirs | $ratio | $allocations | $rss | $(all_runs "$payload" "$workload" kontiki) | $(all_runs "$payload" "$workload" raftrs) |"
    done
done
