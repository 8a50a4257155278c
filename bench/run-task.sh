#!/usr/bin/env bash
# Running tasks: Skiff's RunTask against bare crun and podman, measured side by side in one run
# (bench/run_task_bench.py measures; this script sets up and cleans up). Prints markdown tables and ratios.
#
#   1. RunTask -> RUNNING of one task (image cached, own network namespace), p50/p99 over ROUNDS (default 30)
#      interleaved rounds, against `crun run` of a prepared busybox bundle (`true`, start to exit) and
#      `podman run --rm --network none busybox true`. Skiff is timed by the client (RunTask sent -> the first
#      DescribeTasks showing RUNNING, polled every ~2 ms) and from the record (startedAt - createdAt).
#   2. Tasks started per second: CONCURRENCY (default 100) RunTask calls (count=1) from as many threads at
#      once -> all RUNNING, against PODMAN_CONCURRENCY (default 100) `podman run -d` started in parallel.
#   3. Memory per idle task at MEM_TASKS (default 200) `sleep 3600` tasks: host MemAvailable before/after and
#      what is accounted (the tasks' cgroups, conmon PSS, the server's PSS growth), against as many bare
#      `crun run -d` containers of the same bundle.
#
# The image is the reproducible busybox OCI layout (tests/images/oci_image.py): pushed with skopeo to the
# server's registry (the first task pulls it; warm-up rounds are not counted), extracted once into the crun
# bundle's rootfs (config from `crun spec`: terminal off, nofile 1024, its own cgroupsPath per container) and
# loaded into a private podman store (`podman load` of the layout as an oci-archive, no internet; run with
# --ulimit nofile=1024:1024 and nproc=4096:4096, as CAP_SYS_RESOURCE is missing here: DESIGN.md §5).
#
# Cleanup, also after a failure: every task is stopped by id and waited for, every crun container deleted by
# id, every podman container removed by id, the server stopped, then `skiff node reset --data-dir` of its
# data directory, the private podman store reset and the work directory removed.
#
# Aims (DESIGN.md §6): p50 RunTask -> RUNNING <= 1.5x bare `crun run`; >= 50 tasks/s at 100 concurrent
# RunTask on 2 cores; <= 1 MiB per idle task beyond the workload.
#
# Environment: LATENCY_POLL (seconds between the latency client's DescribeTasks, default 0.002: a tight
# poller takes CPU from the server on 2 cores; 0.025 leaves the record's startedAt - createdAt undisturbed),
# ROUNDS, WARMUP (default 3), CONCURRENCY, PODMAN_CONCURRENCY, MEM_TASKS, PARTS (default
# "latency,concurrency,memory"), SKIP_BUILD=1 to use target/release/skiff as it is, BENCH_TMP (default $TMPDIR
# or /tmp) for the work dir, BENCH_VPC_CIDR (default 10.250.0.0/16: the server's default VPC, away from the
# e2e servers' 10.100-10.249). Needs root, crun, podman, skopeo and the venv (make deps).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ROUNDS=${ROUNDS:-30}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-100}
PODMAN_CONCURRENCY=${PODMAN_CONCURRENCY:-100}
MEM_TASKS=${MEM_TASKS:-200}
PARTS=${PARTS:-latency,concurrency,memory}
SKIFF="$ROOT/target/release/skiff"
PY="$ROOT/.venv/bin/python"
AWS="$ROOT/.venv/bin/aws"

die() { echo "run-task: $*" >&2; exit 1; }
for tool in crun podman skopeo curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (make deps installs it)"
done
[[ -x "$PY" && -x "$AWS" ]] || die "the venv is missing: run make deps"
[[ "$(id -u)" == 0 ]] || die "run as root: tasks and containers need namespaces and cgroups"
for n in "$ROUNDS" "$CONCURRENCY" "$PODMAN_CONCURRENCY" "$MEM_TASKS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS, CONCURRENCY, PODMAN_CONCURRENCY and MEM_TASKS must be positive integers"
done

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff >&2
fi
[[ -x "$SKIFF" ]] || die "$SKIFF does not exist: build it (make build-release)"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/skiff-bench-tasks.XXXXXX")
DATA="$WORK/data"
IDS="$WORK/ids"
CRUN_ROOT="$WORK/crun"
CRUN_CGROUP="/skiff-bench-$$"
PODMAN_GLOBAL="--root $WORK/podman/root --runroot $WORK/podman/run --cgroup-manager cgroupfs --events-backend file --tmpdir $WORK/podman/tmp"
PODMAN_RUN_ARGS="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
PODMAN_IMAGE=localhost/skiff-bench/busybox:latest
SKIFF_PID=
BENCH_ARGS=()
mkdir -p "$IDS" "$CRUN_ROOT" "$WORK/podman/tmp"

unmount_all() { # every mount under WORK, deepest first
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
        awk -v w="$WORK" 'index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
cleanup() {
    set +e
    if [[ -n "$SKIFF_PID" ]] && kill -0 "$SKIFF_PID" 2>/dev/null && ((${#BENCH_ARGS[@]})); then
        "$PY" "$ROOT/bench/run_task_bench.py" "${BENCH_ARGS[@]}" --cleanup
    fi
    if [[ -s "$IDS/crun" ]]; then
        while read -r id; do crun --root "$CRUN_ROOT" delete -f "$id" >/dev/null 2>&1; done < <(sort -u "$IDS/crun")
    fi
    if [[ -s "$IDS/podman" ]]; then
        # shellcheck disable=SC2086
        sort -u "$IDS/podman" | xargs -r -n 50 podman $PODMAN_GLOBAL rm -f -t 0 >/dev/null 2>&1
    fi
    if [[ -d "$WORK/podman/root" ]]; then
        # shellcheck disable=SC2086
        podman $PODMAN_GLOBAL system reset --force >/dev/null 2>&1
    fi
    stop_pid "$SKIFF_PID"
    if [[ -d "$DATA/agent" ]]; then
        "$SKIFF" node reset --data-dir "$DATA" >&2
    fi
    local c
    for c in /sys/fs/cgroup/*"$CRUN_CGROUP" /sys/fs/cgroup/"$CRUN_CGROUP"; do
        [[ -d "$c" ]] || continue
        find "$c" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
        rmdir "$c" 2>/dev/null
    done
    unmount_all
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# skopeo, podman and the AWS CLI see nothing of the user's configuration.
mkdir -p "$WORK/home" "$WORK/run"
chmod 700 "$WORK/run"
export HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run"
unset XDG_CONFIG_HOME XDG_DATA_HOME DOCKER_CONFIG REGISTRY_AUTH_FILE SKIFF_DATA_DIR CONTAINERS_STORAGE_CONF

# ---------------------------------------------------------------------------------------------------------
# the server, the image, the task definitions

export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
export RUST_LOG=${RUST_LOG:-warn}
export SKIFF_VPC_CIDR=${BENCH_VPC_CIDR:-10.250.0.0/16}
unset SKIFF_LISTEN SKIFF_REGISTRY_HOST
start_skiff "$SKIFF" "$DATA" "$WORK/skiff.out" "$WORK/skiff.err"
ENDPOINT=$SKIFF_ENDPOINT HOST=$SKIFF_HOST

export AWS_ACCESS_KEY_ID=$SKIFF_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SKIFF_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE="$WORK/home/no-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/home/no-creds"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN
aws_skiff() { "$AWS" --endpoint-url "$ENDPOINT" --output json "$@"; }

echo "run-task: building the busybox image and pushing it to $HOST" >&2
python3 tests/images/oci_image.py busybox "$WORK/image" --tag latest >/dev/null
aws_skiff ecr create-repository --repository-name busybox >/dev/null
skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    --dest-creds "AWS:$(aws_skiff ecr get-login-password)" \
    "oci:$WORK/image:latest" "docker://$HOST/busybox:latest" >&2 || die "skopeo could not push the image"
IMAGE="$HOST/busybox:latest"

CLUSTER=bench
aws_skiff ecs create-cluster --cluster-name "$CLUSTER" >/dev/null
VPC=$(aws_skiff ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId' --output text)
SUBNET=$(aws_skiff ec2 describe-subnets --filters "Name=vpc-id,Values=$VPC" --query 'Subnets[0].SubnetId' --output text)
register() { # FAMILY COMMAND-JSON
    aws_skiff ecs register-task-definition --cli-input-json "$(cat <<JSON
{"family": "$1", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
 "containerDefinitions": [{"name": "app", "image": "$IMAGE", "essential": true, "command": $2, "stopTimeout": 2}]}
JSON
)" >/dev/null
}
# Exits at once on StopTask (so a round does not wait out stopTimeout); idle tasks are plain `sleep 3600`.
register bench-latency '["sh", "-c", "trap \"exit 0\" TERM; sleep 3600 & wait"]'
register bench-idle '["sleep", "3600"]'

# ---------------------------------------------------------------------------------------------------------
# the peers: a prepared crun bundle and a private podman store with the same image

echo "run-task: preparing the crun bundle and the podman image" >&2
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE/rootfs"
LAYER=$(python3 - "$WORK/image" <<'PY'
import json, sys
root = sys.argv[1]
manifest = json.load(open(f"{root}/index.json"))["manifests"][0]["digest"].split(":")[1]
print(json.load(open(f"{root}/blobs/sha256/{manifest}"))["layers"][0]["digest"].split(":")[1])
PY
)
tar -xzf "$WORK/image/blobs/sha256/$LAYER" -C "$BUNDLE/rootfs"
(cd "$BUNDLE" && crun spec)
python3 - "$BUNDLE/config.json" <<'PY'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
json.dump(c, open(path, "w"), indent=1)
PY
# `podman load` of the layout as an oci-archive (the oci: transport would name the image after WORK's path).
tar -cf "$WORK/image.tar" -C "$WORK/image" .
# shellcheck disable=SC2086
LOADED=$(podman $PODMAN_GLOBAL load -q -i "$WORK/image.tar" | sed -n 's/^Loaded image[^:]*: *//p' | head -n1)
[[ -n "$LOADED" ]] || die "podman load printed no image name"
# shellcheck disable=SC2086
podman $PODMAN_GLOBAL tag "$LOADED" "$PODMAN_IMAGE"

echo "run-task: crun $(crun --version | head -n1 | awk '{print $3}'), $(podman --version), $("$SKIFF" --version) (release), $(nproc) CPUs" >&2

# ---------------------------------------------------------------------------------------------------------
# measure

BENCH_ARGS=(--endpoint "$ENDPOINT" --cluster "$CLUSTER" --subnet "$SUBNET"
    --family-latency bench-latency --family-idle bench-idle --data-dir "$DATA" --server-pid "$SKIFF_PID"
    --bundle "$BUNDLE" --bundles-dir "$WORK/bundles" --crun-root "$CRUN_ROOT" --crun-cgroup "$CRUN_CGROUP"
    --podman-global "$PODMAN_GLOBAL" --podman-run-args "$PODMAN_RUN_ARGS" --podman-image "$PODMAN_IMAGE"
    --ids-dir "$IDS")
"$PY" "$ROOT/bench/run_task_bench.py" "${BENCH_ARGS[@]}" --rounds "$ROUNDS" --warmup "$WARMUP" \
    --concurrency "$CONCURRENCY" --podman-concurrency "$PODMAN_CONCURRENCY" --mem-tasks "$MEM_TASKS" \
    --parts "$PARTS" --results "$WORK/results.json"
echo "$("$SKIFF" --version) (release); $(crun --version | head -n1); $(podman --version)"
