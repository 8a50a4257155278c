#!/usr/bin/env bash
# Services: Skiff's rolling deployments and task replacement against podman, measured side by side in one
# run (bench/service_bench.py measures; this script sets up and cleans up). Prints markdown tables and ratios.
#
#   1. deploy   UpdateService to the other task definition revision (v1 <-> v2, alternating) of a 10-task
#               service (deploymentConfiguration minimumHealthyPercent 100, maximumPercent 200) -> the new
#               deployment's rolloutState COMPLETED with 10 running tasks and the old deployment gone,
#               observed with DescribeServices every ~20 ms; p50/p90 over ROUNDS (default 5) rounds after
#               WARMUP (default 1). Peer, interleaved round by round: a rolling restart by hand of 10 podman
#               containers, 10 x (`podman run -d` of the new version, then `podman rm -f` of an old one),
#               sequential; the containers run the same command (exits at once on SIGTERM).
#   2. replace  in a steady 10-task service, SIGKILL from outside to the init process of the oldest task's
#               container (its pid from `crun --root DATA/agent/runtime/crun state <task-id>-0`) -> the
#               service has 10 RUNNING tasks again, one of them new (ListTasks + DescribeTasks every ~10 ms);
#               REPLACE_ROUNDS (default 10) rounds. Only tasks that have run for REPLACE_MIN_AGE (default
#               11 s) are killed: a long-running task is what a service replaces. The records break the time
#               down (the killed task's stoppingAt and stoppedAt, the new task's createdAt and startedAt).
#               Peer: `podman run -d --restart=always`, SIGKILL to its process -> `podman inspect` reports
#               it running with a new pid (and its State.StartedAt); and, for scale, one plain
#               `crun run -d` of the same busybox bundle.
#
# The image is the reproducible busybox OCI layout (tests/images/oci_image.py), pushed with skopeo to the
# server's registry, loaded into a private podman store and extracted into the crun bundle's rootfs. podman
# runs with --network none (Skiff's tasks each get a network namespace with a veth and an address).
#
# Cleanup, also after a failure: every service the benchmark made is scaled to 0 and deleted, every task it
# saw is stopped by id and waited for, every podman container removed by id, every crun container deleted by
# id, the server stopped, then `skiff node reset --data-dir` of its data directory, the private podman store
# reset and the work directory removed.
#
# Aim: p50 replacement of a killed task (SIGKILL -> a new task RUNNING) under 1 s.
#
# Environment: ROUNDS, WARMUP, REPLACE_ROUNDS, REPLACE_MIN_AGE, SERVICE_TASKS (default 10), PARTS (default
# "deploy,replace"), POLL (seconds between the replace client's polls, default 0.01), SKIP_BUILD=1 to use
# target/release/skiff as it is, BENCH_TMP (default $TMPDIR or /tmp) for the work dir, BENCH_VPC_CIDR (default
# 10.251.0.0/16: the server's default VPC, away from the e2e servers' 10.100-10.249 and run-task.sh's
# 10.250). Needs root, crun, podman, skopeo and the venv (make deps).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ROUNDS=${ROUNDS:-5}
WARMUP=${WARMUP:-1}
REPLACE_ROUNDS=${REPLACE_ROUNDS:-10}
REPLACE_MIN_AGE=${REPLACE_MIN_AGE:-11}
SERVICE_TASKS=${SERVICE_TASKS:-10}
PARTS=${PARTS:-deploy,replace}
POLL=${POLL:-0.01}
SKIFF="$ROOT/target/release/skiff"
PY="$ROOT/.venv/bin/python"
AWS="$ROOT/.venv/bin/aws"

die() { echo "service-deploy: $*" >&2; exit 1; }
for tool in crun podman skopeo curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (make deps installs it)"
done
[[ -x "$PY" && -x "$AWS" ]] || die "the venv is missing: run make deps"
[[ "$(id -u)" == 0 ]] || die "run as root: tasks and containers need namespaces and cgroups"
for n in "$ROUNDS" "$REPLACE_ROUNDS" "$SERVICE_TASKS"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS, REPLACE_ROUNDS and SERVICE_TASKS must be positive integers"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "WARMUP must be a non-negative integer"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p skiff >&2
fi
[[ -x "$SKIFF" ]] || die "$SKIFF does not exist: build it (make build-release)"

WORK=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/skiff-bench-services.XXXXXX")
DATA="$WORK/data"
IDS="$WORK/ids"
CRUN_ROOT="$WORK/crun"
CRUN_CGROUP="/skiff-bench-svc-$$"
PODMAN_GLOBAL="--root $WORK/podman/root --runroot $WORK/podman/run --cgroup-manager cgroupfs --events-backend file --tmpdir $WORK/podman/tmp"
PODMAN_RUN_ARGS="--network none --stop-timeout 2 --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
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
        "$PY" "$ROOT/bench/service_bench.py" "${BENCH_ARGS[@]}" --cleanup
    fi
    if [[ -s "$IDS/podman" ]]; then
        # shellcheck disable=SC2086
        sort -u "$IDS/podman" | xargs -r -n 50 podman $PODMAN_GLOBAL rm -f -t 0 >/dev/null 2>&1
    fi
    if [[ -d "$WORK/podman/root" ]]; then
        # shellcheck disable=SC2086
        podman $PODMAN_GLOBAL system reset --force >/dev/null 2>&1
    fi
    if [[ -s "$IDS/crun" ]]; then
        while read -r id; do crun --root "$CRUN_ROOT" delete -f "$id" >/dev/null 2>&1; done < <(sort -u "$IDS/crun")
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
# the server, the image, the two revisions of the task definition

export SKIFF_ROOT_ACCESS_KEY_ID=AKIABENCHMARK0000000
export SKIFF_ROOT_SECRET_ACCESS_KEY=benchmarkSecretKey0000000000000000000000
export RUST_LOG=${RUST_LOG:-warn}
export SKIFF_VPC_CIDR=${BENCH_VPC_CIDR:-10.251.0.0/16}
unset SKIFF_LISTEN SKIFF_REGISTRY_HOST
start_skiff "$SKIFF" "$DATA" "$WORK/skiff.out" "$WORK/skiff.err"
ENDPOINT=$SKIFF_ENDPOINT HOST=$SKIFF_HOST

export AWS_ACCESS_KEY_ID=$SKIFF_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SKIFF_ROOT_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE="$WORK/home/no-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/home/no-creds"
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
unset AWS_PROFILE AWS_SESSION_TOKEN
aws_skiff() { "$AWS" --endpoint-url "$ENDPOINT" --output json "$@"; }

echo "service-deploy: building the busybox image and pushing it to $HOST" >&2
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
# The same shell as podman's peer containers: idles, exits 0 at once on SIGTERM (so a deployment does not
# wait out stopTimeout for each old task), and says which version it is.
IDLE='trap "exit 0" TERM; sleep 3600 & wait'
IDLE_JSON=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$IDLE")
register() { # VERSION -> prints the task definition ARN
    aws_skiff ecs register-task-definition --query 'taskDefinition.taskDefinitionArn' --output text \
        --cli-input-json "$(cat <<JSON
{"family": "bench-svc", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
 "containerDefinitions": [{"name": "app", "image": "$IMAGE", "essential": true, "stopTimeout": 2,
   "command": ["sh", "-c", $IDLE_JSON], "environment": [{"name": "VERSION", "value": "$1"}]}]}
JSON
)"
}
TD_V1=$(register v1)
TD_V2=$(register v2)

# ---------------------------------------------------------------------------------------------------------
# the peers: a private podman store with the same image, a prepared crun bundle

echo "service-deploy: preparing the podman image and the crun bundle" >&2
# `podman load` of the layout as an oci-archive (the oci: transport would name the image after WORK's path).
tar -cf "$WORK/image.tar" -C "$WORK/image" .
# shellcheck disable=SC2086
LOADED=$(podman $PODMAN_GLOBAL load -q -i "$WORK/image.tar" | sed -n 's/^Loaded image[^:]*: *//p' | head -n1)
[[ -n "$LOADED" ]] || die "podman load printed no image name"
# shellcheck disable=SC2086
podman $PODMAN_GLOBAL tag "$LOADED" "$PODMAN_IMAGE"

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
python3 - "$BUNDLE/config.json" "$CRUN_CGROUP" <<'PY'
import json, sys
path, cgroup = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["sleep", "3600"]
c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
c["root"]["readonly"] = True
c["linux"]["cgroupsPath"] = f"{cgroup}/plain"
json.dump(c, open(path, "w"), indent=1)
PY

echo "service-deploy: crun $(crun --version | head -n1 | awk '{print $3}'), $(podman --version), $("$SKIFF" --version) (release), $(nproc) CPUs" >&2

# ---------------------------------------------------------------------------------------------------------
# measure

BENCH_ARGS=(--endpoint "$ENDPOINT" --cluster "$CLUSTER" --subnet "$SUBNET" --td "$TD_V1" --td "$TD_V2"
    --crun-root-skiff "$DATA/agent/runtime/crun" --bundle "$BUNDLE" --crun-root "$CRUN_ROOT"
    --podman-global "$PODMAN_GLOBAL" --podman-run-args "$PODMAN_RUN_ARGS" --podman-image "$PODMAN_IMAGE"
    --idle "$IDLE" --ids-dir "$IDS")
"$PY" "$ROOT/bench/service_bench.py" "${BENCH_ARGS[@]}" --rounds "$ROUNDS" --warmup "$WARMUP" \
    --replace-rounds "$REPLACE_ROUNDS" --replace-min-age "$REPLACE_MIN_AGE" --tasks "$SERVICE_TASKS" \
    --poll "$POLL" --parts "$PARTS" --results "$WORK/results.json"
echo "$("$SKIFF" --version) (release); $(crun --version | head -n1); $(podman --version)"
