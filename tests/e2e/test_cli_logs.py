"""`skiff logs TASK` against a real server running real tasks: the busybox test image is pushed to the
server's registry with skopeo, tasks print on stdout and stderr, and `skiff logs` (run on the server's host
with the server's --data-dir) prints their lines: stream names as the awslogs driver names them with
several containers, `--container`, `--timestamps`, `--output json`, `--follow` on a running task until it
stops, and the errors for an unknown task, an unknown container, a container that never started and a wrong
data directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import harness
from harness import ACCOUNT_ID, REGION, SKIFF_BIN, aws_bin, aws_env, eventually, fargate_task_definition, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole"
TASK_TIMEOUT = 60

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
]


# ---------------------------------------------------------------------------------------------------------
# fixtures: the image in the server's registry, a cluster, a subnet


@pytest.fixture(scope="module")
def image(server):
    """`HOST:PORT/REPO:latest` of the single-layer busybox image, pushed to the shared server."""
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-logs-"))
    repo = uniq("logs")
    ecr = server.client("ecr")
    ecr.create_repository(repositoryName=repo)
    try:
        built = oci_image.build_busybox(root / "busybox", "single", "latest")
        harness.skopeo_push(server, built.ref, repo, "latest")
        yield f"{server.address}/{repo}:latest"
    finally:
        shutil.rmtree(root, ignore_errors=True)
        try:
            ecr.delete_repository(repositoryName=repo, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass


@pytest.fixture(scope="module")
def cluster(ecs):
    name = uniq("logs")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture(scope="module")
def subnet(server):
    ec2 = server.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]


@pytest.fixture
def started(ecs, cluster):
    """run(family) -> task ARN; every task started is stopped at the end, even when the test fails."""
    arns: list[str] = []
    yield arns
    for arn in arns:
        try:
            ecs.stop_task(cluster=cluster, task=arn, reason="test over")
        except Exception:  # noqa: BLE001 - best effort
            pass


def run_task(ecs, cluster, subnet, family, started) -> str:
    resp = ecs.run_task(cluster=cluster, taskDefinition=family,
                        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet]}})
    assert resp["failures"] == [], resp["failures"]
    arn = resp["tasks"][0]["taskArn"]
    started.append(arn)
    return arn


def describe(ecs, cluster, arn) -> dict:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def wait_status(ecs, cluster, arn, status, timeout=TASK_TIMEOUT) -> dict:
    return eventually(timeout, lambda: (t := describe(ecs, cluster, arn))["lastStatus"] == status and t,
                      f"task {arn} never became {status}", interval=0.1)


def register(ecs, family, containers) -> None:
    ecs.register_task_definition(**fargate_task_definition(family, executionRoleArn=EXECUTION_ROLE,
                                                           containerDefinitions=containers))


def awslogs(prefix: str) -> dict:
    return {"logDriver": "awslogs",
            "options": {"awslogs-group": "/skiff/e2e", "awslogs-region": REGION, "awslogs-stream-prefix": prefix}}


def skiff_logs(server, *args, data_dir=None, check=True, timeout=60) -> subprocess.CompletedProcess:
    proc = subprocess.run(logs_argv(server, *args, data_dir=data_dir), capture_output=True, text=True,
                          timeout=timeout, env=logs_env(server), stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"skiff logs {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
                             f"stderr: {proc.stderr}")
    return proc


def logs_argv(server, *args, data_dir=None) -> list[str]:
    return [str(SKIFF_BIN), "logs", *args, "--endpoint", server.endpoint,
            "--data-dir", str(data_dir or server.data_dir)]


def logs_env(server) -> dict:
    ak, sk = server.credentials()
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


# ---------------------------------------------------------------------------------------------------------
# a finished task with two containers


@pytest.fixture(scope="module")
def finished(server, ecs, cluster, subnet, image):
    """A STOPPED task: `app` (awslogs prefix `web`) prints on stdout and stderr, ends without a newline;
    `side` (no awslogs) prints two lines."""
    family = uniq("logs-two")
    register(ecs, family, [
        {"name": "app", "image": image, "essential": True, "logConfiguration": awslogs("web"),
         "command": ["sh", "-c", "echo app-out-1; echo app-err-1 >&2; sleep 1; echo app-out-2; printf app-last"]},
        {"name": "side", "image": image, "essential": False,
         "command": ["sh", "-c", "echo side-1; echo side-2"]},
    ])
    arns: list[str] = []
    arn = run_task(ecs, cluster, subnet, family, arns)
    task = wait_status(ecs, cluster, arn, "STOPPED")
    assert {c["name"]: c.get("exitCode") for c in task["containers"]} == {"app": 0, "side": 0}, task
    return arn


def test_logs_of_a_stopped_task_name_the_awslogs_streams(server, cluster, finished):
    tid = task_id(finished)
    out = skiff_logs(server, tid, "--cluster", cluster).stdout
    lines = [line.split(" ", 1) for line in out.splitlines()]
    app, side = f"web/app/{tid}", f"side/{tid}"
    assert sorted(lines) == sorted([[app, "app-out-1"], [app, "app-err-1"], [app, "app-out-2"], [app, "app-last"],
                                    [side, "side-1"], [side, "side-2"]]), out
    # Each stream's stdout lines keep their order.
    assert [m for s, m in lines if s == app and "out" in m or m == "app-last"] == ["app-out-1", "app-out-2", "app-last"]
    assert [m for s, m in lines if s == side] == ["side-1", "side-2"]

    # By ARN the cluster comes from the ARN.
    assert skiff_logs(server, finished).stdout == out


def test_one_container_timestamps_and_json(server, cluster, finished):
    tid = task_id(finished)
    app = skiff_logs(server, tid, "--cluster", cluster, "--container", "app").stdout.splitlines()
    assert sorted(app) == ["app-err-1", "app-last", "app-out-1", "app-out-2"], app
    assert [m for m in app if m != "app-err-1"] == ["app-out-1", "app-out-2", "app-last"]
    assert skiff_logs(server, tid, "--cluster", cluster, "--container", "side").stdout == "side-1\nside-2\n"

    stamped = skiff_logs(server, tid, "--cluster", cluster, "--timestamps").stdout.splitlines()
    assert len(stamped) == 6
    stamps = [line.split(" ", 1)[0] for line in stamped]
    parsed = [time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S") for s in stamps]
    assert parsed == sorted(parsed), stamped
    assert all(len(line.split(" ")) == 3 for line in stamped), stamped

    records = [json.loads(line) for line in
               skiff_logs(server, tid, "--cluster", cluster, "--output", "json").stdout.splitlines()]
    by_message = {r["message"]: r for r in records}
    assert by_message["app-err-1"]["source"] == "stderr"
    assert by_message["app-out-1"]["source"] == "stdout"
    assert by_message["app-out-1"]["logStreamName"] == f"web/app/{tid}"
    assert by_message["side-1"]["logStreamName"] == f"side/{tid}"
    assert all(r["timestamp"] for r in records)


def test_errors_say_what_to_do(server, cluster, finished):
    missing = "0123456789abcdef0123456789abcdef"
    proc = skiff_logs(server, missing, "--cluster", cluster, check=False)
    assert proc.returncode == 1
    assert f"task {missing} not found in cluster {cluster}: check `aws ecs list-tasks --cluster {cluster}`" \
        in proc.stderr, proc.stderr

    proc = skiff_logs(server, task_id(finished), "--cluster", cluster, "--container", "nope", check=False)
    assert proc.returncode == 1
    assert "has no container nope (its containers: app, side)" in proc.stderr, proc.stderr

    proc = skiff_logs(server, task_id(finished), "--cluster", "no-such-cluster-logs", check=False)
    assert proc.returncode == 1 and "cluster no-such-cluster-logs not found" in proc.stderr, proc.stderr

    elsewhere = Path(tempfile.mkdtemp(prefix="skiff-e2e-logs-nodata-"))
    try:
        proc = skiff_logs(server, task_id(finished), "--cluster", cluster, data_dir=elsewhere, check=False)
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    assert proc.returncode == 1
    assert "server's host" in proc.stderr and "--data-dir" in proc.stderr, proc.stderr


def test_a_container_that_never_started(server, ecs, cluster, subnet, started):
    family = uniq("logs-nopull")
    register(ecs, family, [{"name": "app", "image": f"{server.address}/no-such-repo-logs:latest", "essential": True,
                            "command": ["true"]}])
    arn = run_task(ecs, cluster, subnet, family, started)
    wait_status(ecs, cluster, arn, "STOPPED")
    proc = skiff_logs(server, arn, check=False)
    assert proc.returncode == 1
    assert f"container app of task {task_id(arn)} never started" in proc.stderr, proc.stderr
    assert "CannotPullContainerError" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------------------
# --follow


def test_follow_streams_a_running_task_until_it_stops(server, ecs, cluster, subnet, image, started):
    """`ticker` prints a line every 0.5 s for ~3 s; `later` starts only when it has completed (dependsOn), so
    until then `skiff logs --container later` says it has not started, and `-f` picks it up when it does."""
    family = uniq("logs-follow")
    register(ecs, family, [
        {"name": "ticker", "image": image, "essential": False,
         "command": ["sh", "-c", "for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done"]},
        {"name": "later", "image": image, "essential": True, "logConfiguration": awslogs("job"),
         "dependsOn": [{"containerName": "ticker", "condition": "COMPLETE"}],
         "command": ["sh", "-c", "echo later-1; echo later-2 >&2"]},
    ])
    arn = run_task(ecs, cluster, subnet, family, started)
    tid = task_id(arn)
    follower = subprocess.Popen(logs_argv(server, "-f", arn), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=logs_env(server), stdin=subprocess.DEVNULL)
    got: list[tuple[float, str]] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            got.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Lines arrive while the task still runs (it stays PENDING until `later` starts).
        eventually(TASK_TIMEOUT, lambda: any(line.endswith(" tick-1") for _, line in got), "no tick-1 from skiff logs -f")
        assert describe(ecs, cluster, arn)["lastStatus"] != "STOPPED", "the task was over before a line came"
        not_yet = skiff_logs(server, arn, "--container", "later", check=False)
        assert not_yet.returncode == 1
        assert f"container later of task {tid} has not started yet" in not_yet.stderr, not_yet.stderr
        assert "skiff logs -f" in not_yet.stderr, not_yet.stderr

        follower.wait(timeout=TASK_TIMEOUT)
        stopped_at = time.monotonic()
        reader.join(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, follower.stderr.read() if follower.stderr else ""
    assert describe(ecs, cluster, arn)["lastStatus"] == "STOPPED"
    lines = [line for _, line in got]
    ticker, later = f"ticker/{tid}", f"job/later/{tid}"
    assert [line for line in lines if line.startswith(ticker + " ")] == \
        [f"{ticker} tick-{i}" for i in range(1, 7)], lines
    assert sorted(line for line in lines if line.startswith(later + " ")) == \
        [f"{later} later-1", f"{later} later-2"], lines
    # The ticks came as they were printed, not all at the end.
    first_tick = next(t for t, line in got if line.endswith(" tick-1"))
    last_tick = next(t for t, line in got if line.endswith(" tick-6"))
    assert last_tick - first_tick > 1.5, got
    assert stopped_at - first_tick > 1.5
