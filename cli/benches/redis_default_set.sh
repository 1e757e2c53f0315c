#!/usr/bin/env bash
# redis-benchmark's default test set against the leader of a durable
# three-node `kontiki node` cluster on loopback, and against redis-server
# with `appendfsync always` on the same disk, alternating, RUNS times.
# Prints a table of medians (requests/s and p50 latency). Needs
# redis-server and redis-benchmark (apt install redis-server). TESTS, if
# given, is redis-benchmark's `-t` list (say `set`) instead of the whole
# default set.
#
#   cli/benches/redis_default_set.sh [RUNS] [REQUESTS] [CLIENTS] [TESTS]
set -euo pipefail
runs=${1:-3}
requests=${2:-20000}
clients=${3:-50}
only=()
[ -z "${4:-}" ] || only=(-t "$4")
cd "$(dirname "$0")/../.."
cargo build --release -q -p kontiki-cli
kontiki=target/release/kontiki
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for i in 1 2 3; do
    peers=()
    for j in 1 2 3; do
        [ "$i" = "$j" ] || peers+=(--peer "$j=127.0.0.1:1710$j,127.0.0.1:1610$j")
    done
    "$kontiki" node --id "$i" --listen "127.0.0.1:1710$i" --client "127.0.0.1:1610$i" \
        --data-dir "$work/node$i" "${peers[@]}" >"$work/node$i.log" 2>&1 &
done
mkdir "$work/redis"
redis-server --port 16999 --appendonly yes --appendfsync always --save "" \
    --dir "$work/redis" >"$work/redis.log" 2>&1 &
sleep 3
leader=$("$kontiki" status --json 127.0.0.1:16101 127.0.0.1:16102 127.0.0.1:16103 |
    grep '"role":"leader"' | sed 's/.*"address":"127.0.0.1:\([0-9]*\)".*/\1/')
for run in $(seq "$runs"); do
    redis-benchmark -p "$leader" -n "$requests" -c "$clients" "${only[@]}" --csv \
        >"$work/kontiki-$run.csv"
    redis-benchmark -p 16999 -n "$requests" -c "$clients" "${only[@]}" --csv \
        >"$work/redis-$run.csv"
done
python3 - "$work" "$runs" <<'PY'
import csv, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def load(name):
    return [{row["test"]: (float(row["rps"]), float(row["p50_latency_ms"]))
             for row in csv.DictReader(open(f"{work}/{name}-{run}.csv"))}
            for run in range(1, runs + 1)]
kontiki, redis = load("kontiki"), load("redis")
print("| test | kontiki, 3 nodes | redis-server, appendfsync always | ratio |")
print("|---|---|---|---|")
for test in kontiki[0]:
    median = lambda runs, i: statistics.median(run[test][i] for run in runs)
    k, r = median(kontiki, 0), median(redis, 0)
    print(f"| {test} | {k:,.0f} ({median(kontiki, 1):.2f} ms) "
          f"| {r:,.0f} ({median(redis, 1):.2f} ms) | {k / r:.2f}x |")
PY
