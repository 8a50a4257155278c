# Shared by the benchmark scripts (sourced, never run): a skiff server on a free loopback port, waiting for
# HTTP endpoints, and stopping a process by its PID. The sourcing script defines die().

# start_skiff SKIFF DATA_DIR STDOUT STDERR: starts `skiff server` on 127.0.0.1:0 with the environment's
# SKIFF_ROOT_* credentials, sets SKIFF_PID at once (for the caller's cleanup trap), then waits for the
# `skiff server listening on http://ADDR` line and /healthz; sets SKIFF_ENDPOINT (http://ADDR) and SKIFF_HOST.
start_skiff() {
    local skiff=$1 data=$2 out=$3 err=$4
    mkdir -p "$data"
    "$skiff" server --listen 127.0.0.1:0 --data-dir "$data" --region us-east-1 >"$out" 2>"$err" </dev/null &
    SKIFF_PID=$!
    SKIFF_ENDPOINT=
    for _ in $(seq 300); do
        SKIFF_ENDPOINT=$(sed -n 's/^skiff server listening on \(http:\/\/[^ ]*\).*$/\1/p' "$out" | head -n1)
        [[ -n "$SKIFF_ENDPOINT" ]] && break
        kill -0 "$SKIFF_PID" 2>/dev/null || { cat "$err" >&2; die "skiff server exited early"; }
        sleep 0.1
    done
    [[ -n "$SKIFF_ENDPOINT" ]] || die "skiff server printed no 'listening on' line within 30 s"
    SKIFF_HOST=${SKIFF_ENDPOINT#http://}
    wait_http "$SKIFF_ENDPOINT/healthz" 200 "$SKIFF_PID" "skiff server" "$err"
}

# wait_http URL EXPECTED-STATUS PID NAME LOG: polls URL for up to 30 s while PID lives.
wait_http() {
    for _ in $(seq 300); do
        [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" == "$2" ]] && return 0
        kill -0 "$3" 2>/dev/null || { cat "$5" >&2; die "$4 exited early"; }
        sleep 0.1
    done
    cat "$5" >&2
    die "$1 did not answer $2 within 30 s"
}

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; reaps it. An empty PID is fine.
stop_pid() {
    local pid=$1
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
