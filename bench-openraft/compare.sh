#!/usr/bin/env bash
# Same-run ratios of kontiki to openraft 0.9.25 on the T1 workload of docs/benchmarks.md,
# as docs/benchmarks.md describes for comparisons between systems: RUNS rounds (default 5),
# each running kontiki's T1 bench and then this harness, on tokio
# current_thread and multi_thread; then the median writes/s of each and
# their ratio, with every run listed.
#
# Usage: bench-openraft/compare.sh [RUNS]  (KONTIKI_BENCH_WRITERS and
# KONTIKI_BENCH_WRITES reach both benches.)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

kontiki=$(cargo bench -p kontiki-tests --bench t1 --no-run 2>&1 |
    sed -n 's/.*Executable benches\/t1.rs (\(.*\))/\1/p')
(cd bench-openraft && cargo build --release --quiet)
openraft=bench-openraft/target/release/kontiki-bench-openraft

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for run in $(seq "$runs"); do
    echo "round $run of $runs" >&2
    "$kontiki" tokio-ct tokio-mt | grep '^| tokio-' | grep -v 'round trip' >>"$log"
    "$openraft" tokio-ct tokio-mt | grep '^| openraft-' >>"$log"
done

# "runtime writers writes/s" per run, sorted so that each key's runs are in
# increasing order: the middle one is the median.
runs_by_key=$(awk -F'|' '{ gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); print $2, $3, $4 }' "$log" |
    sort -k1,1 -k2,2n -k3,3n)
median() { # runtime writers
    echo "$runs_by_key" | awk -v key="$1 $2" '$1" "$2 == key { v[++n] = $3 } END { if (n) print v[int((n + 1) / 2)] }'
}
all_runs() { # runtime writers
    echo "$runs_by_key" | awk -v key="$1 $2" '$1" "$2 == key { printf "%s%d", sep, $3 / 1000; sep = ", " }'
}

echo
echo "| runtime | writers | kontiki writes/s | openraft writes/s | ratio | kontiki runs (k) | openraft runs (k) |"
echo "|---|---|---|---|---|---|---|"
for runtime in tokio-ct tokio-mt; do
    for writers in $(echo "$runs_by_key" | awk -v r="$runtime" '$1 == r { print $2 }' | sort -nu); do
        ours=$(median "$runtime" "$writers")
        theirs=$(median "openraft-$runtime" "$writers")
        ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.2fx", a / b }')
        echo "| $runtime | $writers | $ours | $theirs | $ratio | $(all_runs "$runtime" "$writers") | $(all_runs "openraft-$runtime" "$writers") |"
    done
done
