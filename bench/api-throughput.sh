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
SERVER_PID=
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Fixed credentials: the server takes them as its root keys, the CLI and the load generator sign with them.
export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export RUST_LOG=${RUST_LOG:-warn}

mkdir -p "$WORK/data"
"$SKIFF" server --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

# The server prints `skiff server listening on http://ADDR` once it accepts connections.
ENDPOINT=
for _ in $(seq 100); do
    ENDPOINT=$(sed -n 's/^skiff server listening on \(http:\/\/[^ ]*\).*$/\1/p' "$WORK/server.out" | head -n1)
    [[ -n "$ENDPOINT" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "skiff server exited early; its stderr:" >&2
        cat "$WORK/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$ENDPOINT" ]]; then
    echo "skiff server printed no 'listening on' line within 10 s; stdout:" >&2
    cat "$WORK/server.out" >&2
    exit 1
fi

healthy=
for _ in $(seq 100); do
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/healthz")" == 200 ]]; then healthy=1; break; fi
    sleep 0.1
done
if [[ -z "$healthy" ]]; then
    echo "GET $ENDPOINT/healthz did not answer 200 within 10 s" >&2
    exit 1
fi

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
