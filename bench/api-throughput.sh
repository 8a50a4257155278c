#!/usr/bin/env bash
# Signed API throughput: DescribeTaskDefinition against a fresh `skiff server` on loopback, from 1, 8 and 64
# concurrent SigV4-signing clients (bench/api-load), ~10 s each. Prints a markdown table.
#
# Aim (DESIGN.md §6): >= 20,000 req/s on 2 cores with p99 < 5 ms.
#
# Environment: DURATION (seconds per level, default 10), WARMUP (default 2), LEVELS (default "1 8 64"),
# LOAD_THREADS (worker threads of the load generator, default one per CPU), SKIP_BUILD=1 to use the
# binaries already in target/release.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
die() { echo "api-throughput: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
LEVELS=${LEVELS:-"1 8 64"}
LOAD_ARGS=()
if [[ -n "${LOAD_THREADS:-}" ]]; then LOAD_ARGS+=(--threads "$LOAD_THREADS"); fi
SKIFF="$ROOT/target/release/skiff"
LOAD="$ROOT/target/release/skiff-api-load"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff -p skiff-api-load >&2
fi

WORK=$(mktemp -d)
SKIFF_PID=
cleanup() {
    stop_pid "$SKIFF_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

# Fixed credentials: the server takes them as its root keys, the CLI and the load generator sign with them.
export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export RUST_LOG=${RUST_LOG:-warn}

start_skiff "$SKIFF" "$WORK/data" "$WORK/server.out" "$WORK/server.err"
ENDPOINT=$SKIFF_ENDPOINT

cat >"$WORK/bench-td.json" <<'JSON'
{
  "family": "bench",
  "requiresCompatibilities": ["FARGATE"],
  "networkMode": "awsvpc",
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [
    {"name": "app", "image": "busybox:latest", "essential": true, "command": ["sleep", "3600"]}
  ]
}
JSON
"$SKIFF" task-definitions register "$WORK/bench-td.json" --endpoint "$ENDPOINT" --output json >/dev/null

echo "| concurrency | req/s | p50 ms | p99 ms | errors |"
echo "|---:|---:|---:|---:|---:|"
for c in $LEVELS; do
    line=$("$LOAD" --endpoint "$ENDPOINT" \
        --access-key-id "$SKIFF_ROOT_ACCESS_KEY_ID" --secret-access-key "$SKIFF_ROOT_SECRET_ACCESS_KEY" \
        --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
        --target AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition \
        --body '{"taskDefinition":"bench"}' "${LOAD_ARGS[@]}")
    echo "$line" >>"$WORK/results.jsonl"
    echo "$line" | jq -r '"| \(.concurrency) | \(.rps) | \(.p50_ms) | \(.p99_ms) | \(.errors) |"'
done
echo
echo "aim: >= 20000 req/s on 2 cores, p99 < 5 ms ($(nproc) CPUs here; load generator and server share them)"
