#!/usr/bin/env bash
# Image pull + unpack: Skiff's image store against skopeo + umoci, from Skiff's own registry on loopback,
# measured in the same run, round by round interleaved. Prints a markdown table of medians and ratios.
#
# The image: SIZE_MIB (default 200) MiB of seeded random data in LAYERS (default 4) gzip layers, built once by
# tests/images/oci_image.py and pushed once with skopeo to a fresh `skiff server`. Each round:
#   skiff cold   `skiff images pull` into a new, empty data directory (download, verify, unpack, commit)
#   peer         `skopeo copy docker://… oci:NEW` then `umoci unpack --image NEW:TAG NEW-bundle`
#   skiff warm   `skiff images pull` again into that data directory (the tag is re-resolved, no layer moves)
#   rootfs       bench/image-rootfs on that warm cache: cache lookup + overlayfs mount (a ready rootfs) and
#                unmount, ITERATIONS (default 100) times
# Odd rounds run Skiff first, even rounds the peer. Every run writes into a new directory and nothing is
# deleted until the end (DESIGN.md §6: unpacking right after deleting a large tree is slow on this disk).
#
# Aim (DESIGN.md §6): pull + unpack >= 2x skopeo + umoci; warm cache -> rootfs <= 5 ms.
#
# Environment: ROUNDS (default 3), SIZE_MIB, LAYERS, ITERATIONS, STEP_TIMEOUT (seconds per step, default
# 300), SKIP_BUILD=1 to use target/release as it is, BENCH_TMP (default $TMPDIR or /tmp; /dev/shm for tmpfs).
# Needs root (overlayfs mounts), skopeo, umoci, python3 and the venv's AWS CLI (make deps).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-200}
LAYERS=${LAYERS:-4}
ITERATIONS=${ITERATIONS:-100}
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
SKIFF="$ROOT/target/release/skiff"
ROOTFS_BENCH="$ROOT/target/release/skiff-image-rootfs-bench"
PY=python3
AWS="$ROOT/.venv/bin/aws"
TAG=bench

die() { echo "image-pull: $*" >&2; exit 1; }
for tool in skopeo umoci curl "$PY"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (make bench-images installs what is missing)"
done
[[ -x "$AWS" ]] || die "$AWS is missing: run make deps"
[[ "$(id -u)" == 0 ]] || die "run as root: the rootfs benchmark mounts overlayfs"
for n in "$ROUNDS" "$ITERATIONS"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS and ITERATIONS must be positive integers"; done

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff -p skiff-image-rootfs-bench >&2
fi
[[ -x "$SKIFF" && -x "$ROOTFS_BENCH" ]] || die "build first: cargo build --release -p skiff -p skiff-image-rootfs-bench"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/skiff-bench-images.XXXXXX")
SKIFF_PID=
unmount_all() { # every mount under WORK, deepest first
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v w="$WORK" 'index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
cleanup() {
    stop_pid "$SKIFF_PID"
    unmount_all
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# skopeo, umoci and the AWS CLI see nothing of the user's configuration.
mkdir -p "$WORK/home" "$WORK/run"
chmod 700 "$WORK/run"
export HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run"
unset XDG_CONFIG_HOME XDG_DATA_HOME DOCKER_CONFIG REGISTRY_AUTH_FILE SKIFF_DATA_DIR
AUTHFILE="$WORK/auth.json"

# ---------------------------------------------------------------------------------------------------------
# the server and the image

export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
export RUST_LOG=${RUST_LOG:-warn}
unset SKIFF_LISTEN SKIFF_REGISTRY_HOST
start_skiff "$SKIFF" "$WORK/server-data" "$WORK/skiff.out" "$WORK/skiff.err"
ENDPOINT=$SKIFF_ENDPOINT HOST=$SKIFF_HOST

export AWS_ACCESS_KEY_ID=$SKIFF_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SKIFF_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE="$WORK/home/no-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/home/no-creds"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN
aws_skiff() { "$AWS" --endpoint-url "$ENDPOINT" --output json "$@"; }

echo "building the image: $SIZE_MIB MiB in $LAYERS gzip layers" >&2
"$PY" tests/images/oci_image.py random "$WORK/image" --size-mib "$SIZE_MIB" --layers "$LAYERS" --tag "$TAG" >/dev/null
BLOB_BYTES=$(du -sb --apparent-size "$WORK/image/blobs" | cut -f1)
REPO=bench-images
aws_skiff ecr create-repository --repository-name "$REPO" >/dev/null
PASSWORD=$(aws_skiff ecr get-login-password)
skopeo login --tls-verify=false --authfile "$AUTHFILE" -u AWS --password-stdin "$HOST" <<<"$PASSWORD" >/dev/null
timeout "$STEP_TIMEOUT" skopeo --insecure-policy copy --quiet --authfile "$AUTHFILE" --dest-tls-verify=false \
    "oci:$WORK/image:$TAG" "docker://$HOST/$REPO:$TAG" >&2 || die "skopeo could not push the image"
REF="$HOST/$REPO:$TAG"

# ---------------------------------------------------------------------------------------------------------
# rounds

echo "skopeo: $(skopeo --version); umoci: $(umoci --version)" >&2
echo "skiff: $("$SKIFF" --version) (release), $(nproc) CPUs; work dir on $(df --output=fstype "$WORK" | tail -n1)" >&2

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { echo "$1	$2	$3" >>"$RESULTS"; } # WHAT ROUND SECONDS
now() { echo "${EPOCHREALTIME/./}"; } # microseconds, no subprocess
since() { local us=$(( ${EPOCHREALTIME/./} - $1 )); printf '%d.%06d' $(( us / 1000000 )) $(( us % 1000000 )); }

skiff_pull() { # DATA-DIR
    timeout "$STEP_TIMEOUT" "$SKIFF" images pull --data-dir "$1" --username AWS --password-stdin "$REF" \
        <<<"$PASSWORD" >"$WORK/pull.log" 2>&1 || { cat "$WORK/pull.log" >&2; die "skiff images pull $REF failed"; }
}

for round in $(seq "$ROUNDS"); do
    order="skiff peer"
    (( round % 2 == 0 )) && order="peer skiff"
    for which in $order; do
        if [[ $which == skiff ]]; then
            data="$WORK/skiff-$round"
            mkdir -p "$data"
            echo "round $round/$ROUNDS: skiff cold pull" >&2
            t0=$(now); skiff_pull "$data"; record skiff_cold "$round" "$(since "$t0")"
            echo "round $round/$ROUNDS: skiff warm pull" >&2
            t0=$(now); skiff_pull "$data"; record skiff_warm "$round" "$(since "$t0")"
            echo "round $round/$ROUNDS: rootfs x $ITERATIONS" >&2
            SKIFF_BENCH_REGISTRY_PASSWORD=$PASSWORD timeout "$STEP_TIMEOUT" "$ROOTFS_BENCH" --data-dir "$data" \
                --reference "$REF" --task-root "$WORK/tasks-$round" --iterations "$ITERATIONS" --username AWS \
                >"$WORK/rootfs-$round.json" 2>"$WORK/rootfs.err" || { cat "$WORK/rootfs.err" >&2; die "the rootfs benchmark failed"; }
            unmount_all
        else
            out="$WORK/peer-$round"
            echo "round $round/$ROUNDS: skopeo copy + umoci unpack" >&2
            t0=$(now)
            timeout "$STEP_TIMEOUT" skopeo --insecure-policy copy --quiet --authfile "$AUTHFILE" \
                --src-tls-verify=false "docker://$REF" "oci:$out:$TAG" >"$WORK/peer.log" 2>&1 ||
                { cat "$WORK/peer.log" >&2; die "skopeo copy failed"; }
            record peer_copy "$round" "$(since "$t0")"
            t1=$(now)
            timeout "$STEP_TIMEOUT" umoci unpack --image "$out:$TAG" "$out-bundle" >"$WORK/peer.log" 2>&1 ||
                { cat "$WORK/peer.log" >&2; die "umoci unpack failed"; }
            record peer_unpack "$round" "$(since "$t1")"
            record peer "$round" "$(since "$t0")"
        fi
    done
    # Both trees hold the same files (a spot check: the last layer's last blob).
    last="data/layer$LAYERS/blob4.bin"
    cmp -s "$WORK/peer-$round-bundle/rootfs/$last" \
        "$(ls -d "$WORK"/skiff-"$round"/agent/images/layers/*/fs/"$last" | head -n1)" ||
        die "round $round: Skiff's and umoci's $last differ"
done

# ---------------------------------------------------------------------------------------------------------
# report

"$PY" - "$RESULTS" "$WORK" "$ROUNDS" "$BLOB_BYTES" "$SIZE_MIB" "$LAYERS" "$ITERATIONS" \
    "$(skopeo --version)" "$(umoci --version)" "$("$SKIFF" --version)" "$(df --output=fstype "$WORK" | tail -n1)" <<'PY'
import json, os, statistics, sys
path, work, rounds, nbytes, size_mib, layers, iterations, skopeo_v, umoci_v, skiff_v, fstype = sys.argv[1:12]
rounds, mib = int(rounds), int(nbytes) / (1 << 20)
runs = {}
for line in open(path):
    what, _round, secs = line.split()
    runs.setdefault(what, []).append(float(secs))
rootfs = [json.load(open(os.path.join(work, f"rootfs-{r}.json"))) for r in range(1, rounds + 1)]
med = {k: statistics.median(v) for k, v in runs.items()}
each = lambda k: " / ".join(f"{x:.3f}" for x in runs[k])
print(f"\nImage pull + unpack, {mib:.1f} MiB image ({layers} gzip layers of random data) from Skiff's registry "
      f"on loopback, median of {rounds} interleaved rounds, work dir on {fstype}:\n")
print("| what | median s | MiB/s | each round (s) |")
print("|---|---:|---:|---|")
for key, label in [("skiff_cold", "Skiff `skiff images pull`, cold cache"),
                   ("peer", "skopeo copy + umoci unpack"),
                   ("peer_copy", "&nbsp;&nbsp;of which skopeo copy"),
                   ("peer_unpack", "&nbsp;&nbsp;of which umoci unpack"),
                   ("skiff_warm", "Skiff `skiff images pull`, warm cache")]:
    print(f"| {label} | {med[key]:.3f} | {mib / med[key]:.0f} | {each(key)} |")
ratio = med["peer"] / med["skiff_cold"]
print(f"| **Skiff cold / (skopeo + umoci)** | | **{ratio:.2f}×** | |")
p = lambda k, q: statistics.median(r[k][q] for r in rootfs)
print(f"\nWarm cache → ready rootfs (cache lookup + overlayfs mount), {iterations} mounts per round, median over "
      f"rounds of each round's percentile:\n")
print("| what | p50 ms | p99 ms |")
print("|---|---:|---:|")
print(f"| ready rootfs (lookup + mount) | {p('ready_rootfs_ms', 'p50'):.2f} | {p('ready_rootfs_ms', 'p99'):.2f} |")
print(f"| unmount + remove upper/work | {p('unmount_ms', 'p50'):.2f} | {p('unmount_ms', 'p99'):.2f} |")
print(f"| warm pull in-process (tag re-resolved) | {p('warm_pull_ms', 'p50'):.2f} | {p('warm_pull_ms', 'p99'):.2f} |")
print(f"\naim: pull + unpack >= 2x skopeo + umoci (got {ratio:.2f}x); warm cache -> rootfs <= 5 ms "
      f"(got p50 {p('ready_rootfs_ms', 'p50'):.2f} ms)")
print(f"{skopeo_v}; {umoci_v}; {skiff_v} (release); {os.cpu_count()} CPUs")
PY
