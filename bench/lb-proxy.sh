#!/usr/bin/env bash
# Load balancer data plane throughput: wrk through Skiff's proxy (crates/skiff-lb, its `lb` example), nginx as
# a reverse proxy (upstream keepalive) and haproxy (http mode, keep-alive), each spreading round robin over the
# same two backends (one nginx answering a small fixed body on two ports), on loopback. Runs are interleaved
# round by round (direct backend, skiff, nginx, haproxy); prints every run, then medians and Skiff's ratios.
#
# Aim (DESIGN.md §6): requests/s >= nginx and >= haproxy, p99 no worse.
#
# Environment: DURATION (seconds per run, default 10), ROUNDS (default 3), CONNECTIONS (default 64),
# THREADS (wrk threads, default 2), PROXY_THREADS (worker threads/processes of every proxy, default 2),
# SKIP_BUILD=1 to use target/release/examples/lb as it is, LB=PATH to measure another build of the `lb`
# example instead, BASELINE=PATH to also measure another build (say, a copy made before a change) in the same
# rounds, as target "baseline".
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
die() { echo "lb-proxy: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PROXY_THREADS=${PROXY_THREADS:-2}
LB=${LB:-"$ROOT/target/release/examples/lb"}

for tool in wrk nginx haproxy curl python3; do
    command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || die "$tool is missing (make bench-deps)"
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff-lb --example lb >&2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Six free loopback ports: two backend ports, then skiff, nginx, haproxy, baseline.
read -r B1 B2 P_SKIFF P_NGINX P_HAPROXY P_BASE < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)

mkdir -p "$WORK/backend" "$WORK/nginx"
cat >"$WORK/backend/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/backend/body;
    proxy_temp_path $WORK/backend/proxy;
    fastcgi_temp_path $WORK/backend/fastcgi;
    uwsgi_temp_path $WORK/backend/uwsgi;
    scgi_temp_path $WORK/backend/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$B1;
        listen 127.0.0.1:$B2;
        location / { default_type text/plain; return 200 "hello from the backend\n"; }
    }
}
CONF

cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $PROXY_THREADS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    upstream backends {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 256;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Port \$server_port;
        }
    }
}
CONF

cat >"$WORK/haproxy.cfg" <<CONF
global
    nbthread $PROXY_THREADS
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    option forwardfor
frontend fe
    bind 127.0.0.1:$P_HAPROXY
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    server s1 127.0.0.1:$B1
    server s2 127.0.0.1:$B2
CONF

"$NGINX" -p "$WORK/backend" -c "$WORK/backend/nginx.conf" -g 'daemon off;' >"$WORK/backend.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$B1/" 200 "${PIDS[-1]}" "backend nginx" "$WORK/backend.out"
wait_http "http://127.0.0.1:$B2/" 200 "${PIDS[-1]}" "backend nginx" "$WORK/backend.out"

"$LB" --listen "127.0.0.1:$P_SKIFF" --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" \
    --threads "$PROXY_THREADS" >"$WORK/skiff.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_SKIFF/" 200 "${PIDS[-1]}" "skiff lb" "$WORK/skiff.out"

names=(skiff nginx haproxy)
ports=("$P_SKIFF" "$P_NGINX" "$P_HAPROXY")
if [[ -n "${BASELINE:-}" ]]; then
    [[ -x "$BASELINE" ]] || die "BASELINE=$BASELINE is not an executable"
    "$BASELINE" --listen "127.0.0.1:$P_BASE" --target "127.0.0.1:$B1" --target "127.0.0.1:$B2" \
        --threads "$PROXY_THREADS" >"$WORK/baseline.out" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$P_BASE/" 200 "${PIDS[-1]}" "baseline lb" "$WORK/baseline.out"
    names+=(baseline)
    ports+=("$P_BASE")
fi

"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_NGINX/" 200 "${PIDS[-1]}" "nginx proxy" "$WORK/nginx.out"

"$HAPROXY" -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.out" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_HAPROXY/" 200 "${PIDS[-1]}" "haproxy" "$WORK/haproxy.out"

# run NAME PORT ROUND: one wrk run; appends "NAME RPS P99_MS" to $WORK/results.
run() {
    local out="$WORK/wrk-$1-$3.txt"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/" >"$out"
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$out")
    [[ -n "$rps" && -n "$p99" ]] || { cat "$out" >&2; die "could not read wrk's output for $1"; }
    if grep -q "Non-2xx" "$out"; then grep "Non-2xx\|Socket errors" "$out" >&2; die "$1 answered errors"; fi
    echo "$1 $rps $p99" >>"$WORK/results"
    printf '| %d | %-8s | %10.0f | %8.2f |\n' "$3" "$1" "$rps" "$p99"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, 2 backends round robin, proxies with $PROXY_THREADS workers, $(nproc) cores"
echo
echo "| round | target   |      req/s |  p99 ms |"
echo "|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
    # Rotate the order so no proxy always runs first or last in a round.
    run direct "$B1" "$round"
    for i in "${!names[@]}"; do
        j=$(((i + round - 1) % ${#names[@]}))
        run "${names[$j]}" "${ports[$j]}" "$round"
    done
done

python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, rps, p99 = line.split()
    rows.setdefault(name, ([], []))
    rows[name][0].append(float(rps))
    rows[name][1].append(float(p99))
med = {n: (statistics.median(r), statistics.median(p)) for n, (r, p) in rows.items()}
print()
print("| target | median req/s | median p99 ms |")
print("|---|---|---|")
for n in ("direct", "skiff", "nginx", "haproxy", "baseline"):
    if n not in med:
        continue
    print(f"| {n} | {med[n][0]:.0f} | {med[n][1]:.2f} |")
print()
s = med["skiff"]
for peer in ("nginx", "haproxy", "baseline"):
    if peer not in med:
        continue
    p = med[peer]
    print(f"skiff / {peer}: req/s x{s[0] / p[0]:.2f}, p99 x{s[1] / p[1]:.2f} (aim: req/s >= 1.00, p99 <= 1.00)")
PY
