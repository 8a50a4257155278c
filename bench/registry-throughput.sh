#!/usr/bin/env bash
# Registry push and pull throughput with skopeo: Skiff's built-in registry against Debian's docker-registry
# (distribution 2.8, the reference implementation), both started here on loopback, measured in the same run,
# round by round interleaved. Prints a markdown table of medians (MiB/s) and the ratios Skiff / peer.
#
# The image: SIZE_MIB (default 200) MiB of seeded random data in LAYERS (default 4) gzip layers, built by
# tests/images/oci_image.py. Every round uses a new image (a new seed), pushed to a new repository of each
# registry: skopeo remembers where it has seen a blob (its blob-info cache, shared by all runs of the machine)
# and would mount it from an earlier repository instead of uploading it again. Pulls go to a new directory.
# Nothing is deleted until the end (DESIGN.md §6: writing right after deleting a large tree is slow here).
#
# Aim (DESIGN.md §6): push and pull >= 1.2x docker-registry.
#
# Environment: ROUNDS (default 3), SIZE_MIB, LAYERS, STEP_TIMEOUT (seconds per skopeo copy, default 300),
# SKIP_BUILD=1 to use target/release/skiff as it is, BENCH_TMP (default $TMPDIR or /tmp) for the work dir.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-200}
LAYERS=${LAYERS:-4}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
SKIFF="$ROOT/target/release/skiff"
PY=python3
AWS="$ROOT/.venv/bin/aws"

die() { echo "registry-throughput: $*" >&2; exit 1; }
for tool in skopeo docker-registry curl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (make bench-registry installs what is missing)"
done
[[ -x "$AWS" ]] || die "$AWS is missing: run make deps"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not $ROUNDS"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff >&2
fi
[[ -x "$SKIFF" ]] || die "$SKIFF does not exist: build it (cargo build --release -p skiff)"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/skiff-bench-registry.XXXXXX")
SKIFF_PID=
PEER_PID=
cleanup() {
    stop_pid "$SKIFF_PID"
    stop_pid "$PEER_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# skopeo and the AWS CLI see nothing of the user's configuration.
mkdir -p "$WORK/home" "$WORK/run"
chmod 700 "$WORK/run"
export HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run"
unset XDG_CONFIG_HOME XDG_DATA_HOME DOCKER_CONFIG REGISTRY_AUTH_FILE
AUTHFILE="$WORK/auth.json"  # every skopeo command is given it

# ---------------------------------------------------------------------------------------------------------
# servers

export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
export RUST_LOG=${RUST_LOG:-warn}
unset SKIFF_LISTEN SKIFF_DATA_DIR SKIFF_REGISTRY_HOST
start_skiff "$SKIFF" "$WORK/skiff-data" "$WORK/skiff.out" "$WORK/skiff.err"

# docker-registry on a free loopback port (picked by binding port 0), filesystem storage in a new directory.
PEER_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/peer-data"
cat >"$WORK/peer.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/peer-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PEER_PORT
YAML
# A clean environment: docker-registry reads any REGISTRY_* variable as configuration.
env -i PATH="$PATH" HOME="$WORK/home" docker-registry serve "$WORK/peer.yml" >"$WORK/peer.log" 2>&1 </dev/null &
PEER_PID=$!

PEER_HOST=127.0.0.1:$PEER_PORT

wait_http "http://$PEER_HOST/v2/" 200 "$PEER_PID" docker-registry "$WORK/peer.log"

export AWS_ACCESS_KEY_ID=$SKIFF_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SKIFF_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE="$WORK/home/no-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/home/no-creds"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN
aws_skiff() { "$AWS" --endpoint-url "$SKIFF_ENDPOINT" --output json "$@"; }

aws_skiff ecr get-login-password |
    skopeo login --tls-verify=false --authfile "$AUTHFILE" -u AWS --password-stdin "$SKIFF_HOST" >/dev/null

# ---------------------------------------------------------------------------------------------------------
# rounds

echo "skopeo: $(skopeo --version)" >&2
echo "docker-registry: $(docker-registry --version)" >&2
echo "skiff: $("$SKIFF" --version) (release), $(nproc) CPUs" >&2
echo "image: $SIZE_MIB MiB in $LAYERS gzip layers of random data, a new one per round; $ROUNDS rounds" >&2

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

# copy KIND REGISTRY ROUND SRC DST: one timed skopeo copy; appends "REGISTRY KIND ROUND SECONDS" to RESULTS.
copy() {
    local kind=$1 registry=$2 round=$3 src=$4 dst=$5 t0 t1
    t0=$EPOCHREALTIME
    if ! timeout "$STEP_TIMEOUT" skopeo --insecure-policy copy --quiet --authfile "$AUTHFILE" \
        --src-tls-verify=false --dest-tls-verify=false "$src" "$dst" >"$WORK/copy.log" 2>&1; then
        cat "$WORK/copy.log" >&2
        die "$kind to/from $registry failed (round $round): skopeo copy $src $dst"
    fi
    t1=$EPOCHREALTIME
    echo "$registry $kind $round $("$PY" -c "print(f'{$t1 - $t0:.4f}')")" >>"$RESULTS"
}

manifest_digest() { # LAYOUT TAG
    "$PY" - "$1" "$2" <<'PY'
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
print([m["digest"] for m in index["manifests"]
       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]][0])
PY
}

BYTES=
for round in $(seq "$ROUNDS"); do
    image="$WORK/image-$round"
    echo "round $round/$ROUNDS: building the image" >&2
    "$PY" tests/images/oci_image.py random "$image" --size-mib "$SIZE_MIB" --layers "$LAYERS" \
        --seed "$((1000 + round))" --tag bench >/dev/null
    want=$(manifest_digest "$image" bench)
    BYTES=$(du -sb --apparent-size "$image/blobs" | cut -f1)
    repo="bench-$round-$("$PY" -c 'import uuid; print(uuid.uuid4().hex[:8])')"
    aws_skiff ecr create-repository --repository-name "$repo" >/dev/null

    # Interleaved: odd rounds start with Skiff, even rounds with the peer.
    order="skiff peer"
    (( round % 2 == 0 )) && order="peer skiff"
    for which in $order; do
        host=$SKIFF_HOST
        [[ $which == peer ]] && host=$PEER_HOST
        echo "round $round/$ROUNDS: $which push" >&2
        copy push "$which" "$round" "oci:$image:bench" "docker://$host/$repo:bench"
        echo "round $round/$ROUNDS: $which pull" >&2
        out="$WORK/pull-$which-$round"
        copy pull "$which" "$round" "docker://$host/$repo:bench" "oci:$out:bench"
        got=$(manifest_digest "$out" bench)
        [[ "$got" == "$want" ]] || die "$which returned manifest $got for $repo:bench, pushed $want"
    done
done

# ---------------------------------------------------------------------------------------------------------
# report

"$PY" - "$RESULTS" "$BYTES" "$ROUNDS" "$SIZE_MIB" "$LAYERS" "$(docker-registry --version | awk '{print $NF}')" \
    "$(skopeo --version)" "$(docker-registry --version)" "$("$SKIFF" --version)" <<'PY'
import os, statistics, sys
path, nbytes, rounds, size_mib, layers, peer_version, skopeo_v, peer_v, skiff_v = sys.argv[1:10]
mib = int(nbytes) / (1024 * 1024)
runs = {}
for line in open(path):
    registry, kind, _round, secs = line.split()
    runs.setdefault((registry, kind), []).append(mib / float(secs))
med = {k: statistics.median(v) for k, v in runs.items()}
def cell(registry, kind):
    return f"{med[(registry, kind)]:.0f}"
def each(registry, kind):
    return " / ".join(f"{x:.0f}" for x in runs[(registry, kind)])
print(f"\nRegistry throughput, skopeo copy, {mib:.1f} MiB image ({layers} gzip layers), median of {rounds} "
      f"interleaved rounds, loopback:\n")
print("| registry | push MiB/s | pull MiB/s | push, each round | pull, each round |")
print("|---|---:|---:|---|---|")
print(f"| Skiff | {cell('skiff', 'push')} | {cell('skiff', 'pull')} | {each('skiff', 'push')} | {each('skiff', 'pull')} |")
print(f"| docker-registry {peer_version} | {cell('peer', 'push')} | {cell('peer', 'pull')} | "
      f"{each('peer', 'push')} | {each('peer', 'pull')} |")
push_ratio = med[("skiff", "push")] / med[("peer", "push")]
pull_ratio = med[("skiff", "pull")] / med[("peer", "pull")]
print(f"| **Skiff / docker-registry** | **{push_ratio:.2f}×** | **{pull_ratio:.2f}×** | | |")
print("\naim: >= 1.2x docker-registry for push and pull")
print(f"{skopeo_v}; {peer_v}; {skiff_v} (release); {os.cpu_count()} CPUs")
PY
