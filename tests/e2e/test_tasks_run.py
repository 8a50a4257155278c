"""Tasks that really run: RunTask/StopTask/DescribeTasks through boto3 (and the AWS CLI) against a real
`skiff server`, whose agent runs every container with crun in the task's own network namespace.

The busybox test image (tests/images/oci_image.py) is pushed once per module with skopeo to the server's
registry (credentials from `aws ecr get-login-password`) and named in task definitions by its ECR-style
reference. What the tests look at is what a user (or an operator on the node) can see: DescribeTasks,
the containers' logs (DATA_DIR/agent/runtime/logs/<runtimeId>.log, conmon's k8s-file format), cgroup
accounting under /skiff/<task-id>, /run/netns, /sys/class/net and /proc/self/mountinfo.

Expected behaviour comes from ECS/Fargate (and Docker's defaults, which Fargate's containers get), never
from what the server happens to do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Optional

import pytest

import harness
from harness import ACCOUNT_ID, REGION, SkiffServer, aws_bin, aws_env, destroy, eventually, new_server, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
REPO_NAME = "busybox-run"
ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
IMAGE = f"{ECR_HOST}/{REPO_NAME}:latest"

# Docker's default capability set (what Fargate containers get): CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
# SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
DOCKER_DEFAULT_CAPS = "00000000a80425fb"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"

# Generous: CI has two cores and every test here starts real containers.
START_TIMEOUT = 90
STOP_TIMEOUT = 90

# A shell that idles until SIGTERM and then exits 0 at once (`wait` is interrupted by a trapped signal; a
# plain `sleep` in the foreground would delay the trap, and without a trap PID 1 ignores SIGTERM).
IDLE = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root"),
]


# ---------------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def busybox():
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-run-image-"))
    try:
        yield oci_image.build_busybox(root / "single", "single", "latest")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def push_busybox(server: SkiffServer, image: oci_image.Image) -> None:
    server.client("ecr").create_repository(repositoryName=REPO_NAME)
    harness.skopeo_push(server, image.ref, REPO_NAME, "latest")


class Env:
    """A started server with the busybox image pushed, a cluster and the subnet tasks run in."""

    def __init__(self, server: SkiffServer, image: oci_image.Image):
        self.server = server
        self.image = image
        self.refresh()
        self.cluster = uniq("run")
        self.ecs.create_cluster(clusterName=self.cluster)
        ec2 = server.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        self.subnet = sorted(subnets, key=lambda s: s["SubnetId"])[0]
        self.subnet_id = self.subnet["SubnetId"]
        self.cidr = ipaddress.ip_network(self.subnet["CidrBlock"])

    def refresh(self) -> None:
        """New clients (after a restart the server listens on another port)."""
        self.ecs = self.server.client("ecs")

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    # -- task definitions and tasks

    def register(self, containers: list[dict], **kw: Any) -> str:
        defs = []
        for c in containers:
            c = dict(c)
            c.setdefault("image", IMAGE)
            defs.append(c)
        td = {
            "family": uniq("run"),
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "containerDefinitions": defs,
        }
        td.update(kw)
        return self.ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]

    def run(self, td_arn: str, count: int = 1, **kw: Any) -> list[str]:
        resp = self.ecs.run_task(
            cluster=self.cluster,
            taskDefinition=td_arn,
            count=count,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet_id]}},
            **kw,
        )
        assert resp["failures"] == [], resp["failures"]
        assert len(resp["tasks"]) == count
        return [t["taskArn"] for t in resp["tasks"]]

    def run1(self, containers: list[dict], td_kw: Optional[dict] = None, **kw: Any) -> str:
        return self.run(self.register(containers, **(td_kw or {})), **kw)[0]

    def describe(self, arns: list[str]) -> list[dict]:
        out = []
        for i in range(0, len(arns), 100):
            resp = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + 100])
            assert resp["failures"] == [], resp["failures"]
            out.extend(resp["tasks"])
        return out

    def task(self, arn: str) -> dict:
        return self.describe([arn])[0]

    def wait(self, arn: str, pred, msg: str, timeout: float = START_TIMEOUT) -> dict:
        def check():
            t = self.task(arn)
            return t if pred(t) else None
        return eventually(timeout, check, f"{msg}: task {arn}", interval=0.25)

    def wait_running(self, arn: str, timeout: float = START_TIMEOUT) -> dict:
        def check():
            t = self.task(arn)
            assert t["lastStatus"] != "STOPPED", f"task stopped before RUNNING: {brief(t)}"
            return t if t["lastStatus"] == "RUNNING" else None
        return eventually(timeout, check, f"task {arn} never RUNNING", interval=0.25)

    def wait_stopped(self, arn: str, timeout: float = STOP_TIMEOUT) -> dict:
        return self.wait(arn, lambda t: t["lastStatus"] == "STOPPED", "never STOPPED", timeout)

    def wait_all_stopped(self, arns: list[str], timeout: float) -> list[dict]:
        def check():
            tasks = self.describe(arns)
            left = [t["taskArn"] for t in tasks if t["lastStatus"] != "STOPPED"]
            assert not left, f"{len(left)} of {len(arns)} not STOPPED yet"
            return tasks
        return eventually(timeout, check, "tasks never all STOPPED", interval=0.5)

    # -- what the node shows

    def log(self, task: dict, container: str) -> list[str]:
        c = container_of(task, container)
        assert c.get("runtimeId"), f"container {container} has no runtimeId: {c}"
        return read_log(self.data_dir / "agent" / "runtime" / "logs" / f"{c['runtimeId']}.log")

    def log_entries(self, task: dict, container: str) -> list[tuple[dt.datetime, str]]:
        c = container_of(task, container)
        return read_log(self.data_dir / "agent" / "runtime" / "logs" / f"{c['runtimeId']}.log", with_ts=True)


@pytest.fixture(scope="module")
def env(busybox):
    srv = new_server("tasks-run")
    try:
        srv.start()
        push_busybox(srv, busybox)
        yield Env(srv, busybox)
    finally:
        destroy(srv)


# ---------------------------------------------------------------------------------------------------------
# helpers


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def container_of(task: dict, name: str) -> dict:
    found = [c for c in task["containers"] if c["name"] == name]
    assert len(found) == 1, f"no container {name} in {task['containers']}"
    return found[0]


def brief(task: dict) -> dict:
    """The parts of a task worth printing in a failure."""
    keys = ["taskArn", "lastStatus", "desiredStatus", "stopCode", "stoppedReason", "healthStatus"]
    return {
        **{k: task.get(k) for k in keys},
        "containers": [{k: c.get(k) for k in ["name", "lastStatus", "exitCode", "reason", "healthStatus", "runtimeId"]}
                       for c in task.get("containers", [])],
    }


_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$")


def parse_ts(ts: str) -> dt.datetime:
    m = _TS.match(ts)
    assert m, f"bad log timestamp {ts!r}"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def read_log(path: Path, with_ts: bool = False) -> list:
    """The complete lines of a k8s-file log ("TIMESTAMP STREAM P|F TEXT"; P records continue)."""
    assert path.exists(), f"no log file {path}"
    out: list = []
    partial: dict[str, str] = {}
    for record in path.read_text(errors="replace").splitlines():
        parts = record.split(" ", 3)
        assert len(parts) >= 3 and parts[1] in ("stdout", "stderr") and parts[2] in ("P", "F"), \
            f"not a k8s-file record in {path}: {record!r}"
        ts, stream, tag = parts[:3]
        text = parts[3] if len(parts) == 4 else ""
        text = partial.pop(stream, "") + text
        if tag == "P":
            partial[stream] = text
            continue
        out.append((parse_ts(ts), text) if with_ts else text)
    return out


def ts(task: dict, key: str) -> dt.datetime:
    assert task.get(key) is not None, f"task has no {key}: {brief(task)}"
    return task[key]


def eni_details(task: dict) -> dict:
    [eni] = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    return {d["name"]: d["value"] for d in eni["details"]}


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def host_veth_name(tid: str, prefix: str = "skb") -> str:
    """The agent's host veth name for a task (crates/skiff-agent/src/network/names.rs)."""
    h = hashlib.sha256()
    for part in ("veth", prefix, tid):
        h.update(part.encode() + b"\0")
    return "sk" + h.hexdigest()[:13]


def task_cpu_usage_ns(tid: str) -> int:
    """CPU time the task's cgroup has used, from cgroup v1 cpuacct or v2 cpu.stat."""
    for d in ("cpu,cpuacct", "cpuacct,cpu", "cpuacct"):
        p = Path("/sys/fs/cgroup") / d / "skiff" / tid / "cpuacct.usage"
        if p.exists():
            return int(p.read_text().strip())
    p = Path("/sys/fs/cgroup/skiff") / tid / "cpu.stat"
    if p.exists():
        for line in p.read_text().splitlines():
            k, v = line.split()
            if k == "usage_usec":
                return int(v) * 1000
    raise AssertionError(f"no cpu accounting found for cgroup /skiff/{tid}")


def task_cgroup_dirs(tid: str) -> list[Path]:
    root = Path("/sys/fs/cgroup")
    found = []
    for d in [root, *[p for p in root.iterdir() if p.is_dir()]]:
        p = d / "skiff" / tid
        if p.exists():
            found.append(p)
    return found


# ---------------------------------------------------------------------------------------------------------
# 1. output, exit code, stop code, timestamps, the ENI


def test_task_runs_logs_and_stops_with_its_exit_code(env):
    td = env.register([{
        "name": "app",
        "command": sh("echo hello from skiff; echo second line; echo to stderr >&2"),
    }])
    # The AWS CLI, the way people start tasks.
    out = env.server.aws(
        "ecs", "run-task", "--cluster", env.cluster, "--task-definition", td, "--launch-type", "FARGATE",
        "--network-configuration", f"awsvpcConfiguration={{subnets=[{env.subnet_id}],assignPublicIp=DISABLED}}",
    )
    assert out["failures"] == []
    arn = out["tasks"][0]["taskArn"]
    t = env.wait_stopped(arn)

    assert t["lastStatus"] == "STOPPED" and t["desiredStatus"] == "STOPPED", brief(t)
    assert t["stopCode"] == "EssentialContainerExited", brief(t)
    assert t["stoppedReason"] == "Essential container in task exited", brief(t)
    [c] = t["containers"]
    assert c["lastStatus"] == "STOPPED" and c["exitCode"] == 0, brief(t)
    assert "reason" not in c, brief(t)
    assert c["imageDigest"] == env.image.manifest_digest, c
    assert c["runtimeId"], c
    lines = env.log(t, "app")
    assert lines == ["hello from skiff", "second line", "to stderr"], lines
    raw = (env.data_dir / "agent" / "runtime" / "logs" / f"{c['runtimeId']}.log").read_text().splitlines()
    assert any(" stdout F hello from skiff" in r for r in raw) and any(" stderr F to stderr" in r for r in raw), raw

    # Timestamps in ECS's order.
    order = ["createdAt", "connectivityAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt",
             "executionStoppedAt", "stoppedAt"]
    stamps = [ts(t, k) for k in order]
    for (a, ta), (b, tb) in zip(zip(order, stamps), list(zip(order, stamps))[1:]):
        assert ta <= tb, f"{a} {ta} is after {b} {tb}"
    assert t["connectivity"] == "CONNECTED"

    # The ENI: its details, inside the subnet, and the containers' view of it.
    [eni] = t["attachments"]
    assert eni["type"] == "ElasticNetworkInterface"
    assert eni["status"] == "DELETED", eni
    d = eni_details(t)
    assert d["subnetId"] == env.subnet_id
    assert re.fullmatch(r"eni-[0-9a-f]{17}", d.get("networkInterfaceId", "")), d
    ip = ipaddress.ip_address(d["privateIPv4Address"])
    assert ip in env.cidr, f"{ip} not in {env.cidr}"
    assert ip not in (env.cidr.network_address, env.cidr.broadcast_address, env.cidr.network_address + 1), ip
    assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", d.get("macAddress", "")), d
    assert d["privateDnsName"] == f"ip-{str(ip).replace('.', '-')}.ec2.internal", d
    assert c["networkInterfaces"] == [{"attachmentId": eni["id"], "privateIpv4Address": str(ip)}], c

    # The CLI renders the same task.
    cli = env.server.aws("ecs", "describe-tasks", "--cluster", env.cluster, "--tasks", arn)["tasks"][0]
    assert cli["lastStatus"] == "STOPPED" and cli["containers"][0]["exitCode"] == 0


# ---------------------------------------------------------------------------------------------------------
# 2. OOM


@pytest.mark.parametrize("limit", ["container", "task"])
def test_memory_hog_is_oom_killed(env, limit):
    hog = "echo allocating; x=a; while true; do x=$x$x; done"
    if limit == "container":
        arn = env.run1([{"name": "hog", "command": sh(hog), "memory": 16}])
    else:
        # Only the task's 512 MiB bound it.
        arn = env.run1([{"name": "hog", "command": sh("echo allocating; tail /dev/zero")}])
    t = env.wait_stopped(arn, timeout=120)
    c = container_of(t, "hog")
    assert c["exitCode"] == 137, brief(t)
    assert c.get("reason") == OOM_REASON, brief(t)
    assert t["stopCode"] == "EssentialContainerExited", brief(t)
    assert env.log(t, "hog")[0] == "allocating"


# ---------------------------------------------------------------------------------------------------------
# 3. CPU


def test_busy_loop_gets_at_most_a_quarter_core(env):
    arn = env.run1([{"name": "spin", "command": sh("while :; do :; done"), "stopTimeout": 2}])
    tid = task_id(arn)
    try:
        env.wait_running(arn)
        time.sleep(1.0)  # past the start
        u0, t0 = task_cpu_usage_ns(tid), time.monotonic()
        time.sleep(3.0)
        u1, t1 = task_cpu_usage_ns(tid), time.monotonic()
        share = (u1 - u0) / 1e9 / (t1 - t0)
        print(f"busy loop in a 256-cpu task used {share:.3f} of a core")
        assert env.task(arn)["lastStatus"] == "RUNNING"
        assert share <= 0.25 + 0.03, f"a 256-cpu task used {share:.3f} of a core (limit 0.25)"
        assert share > 0.15, f"the busy loop barely ran: {share:.3f} of a core"
    finally:
        env.ecs.stop_task(cluster=env.cluster, task=arn, reason="cpu test done")
    t = env.wait_stopped(arn)
    assert t["stopCode"] == "UserInitiated", brief(t)


# ---------------------------------------------------------------------------------------------------------
# 4. StopTask: SIGTERM, then SIGKILL after stopTimeout


def test_stop_task_sigterm_trap_then_sigkill_after_stop_timeout(env):
    script = "trap 'echo got SIGTERM; sleep 60' TERM; echo ready; while :; do sleep 1 & wait $!; done"
    arn = env.run1([{"name": "stubborn", "command": sh(script), "stopTimeout": 2}])
    t = env.wait_running(arn)
    eventually(30, lambda: "ready" in env.log(t, "stubborn"), "the container never printed ready")
    before = time.monotonic()
    resp = env.ecs.stop_task(cluster=env.cluster, task=arn, reason="stopping the stubborn one")
    assert resp["task"]["desiredStatus"] == "STOPPED"
    t = env.wait_stopped(arn)
    took = time.monotonic() - before
    c = container_of(t, "stubborn")
    assert c["exitCode"] == 137, brief(t)
    assert c.get("reason") != OOM_REASON, brief(t)
    assert t["stopCode"] == "UserInitiated", brief(t)
    assert t["stoppedReason"] == "stopping the stubborn one", brief(t)
    assert env.log(t, "stubborn") == ["ready", "got SIGTERM"]
    # SIGKILL came about stopTimeout (2 s) after the SIGTERM, not at once and not after the 30 s default.
    grace = (ts(t, "executionStoppedAt") - ts(t, "stoppingAt")).total_seconds()
    assert 1.8 <= grace <= 8, f"SIGKILL {grace:.2f} s after stopping began (stopTimeout 2)"
    assert took >= 1.8, took


def test_stop_task_trap_that_exits_promptly_gives_exit_code_0(env):
    script = "trap 'echo cleaning up; exit 0' TERM; echo ready; while :; do sleep 1 & wait $!; done"
    arn = env.run1([{"name": "polite", "command": sh(script)}])  # default stopTimeout: 30 s
    t = env.wait_running(arn)
    eventually(30, lambda: "ready" in env.log(t, "polite"), "the container never printed ready")
    env.ecs.stop_task(cluster=env.cluster, task=arn)
    t = env.wait_stopped(arn)
    c = container_of(t, "polite")
    assert c["exitCode"] == 0, brief(t)
    assert t["stopCode"] == "UserInitiated", brief(t)
    assert t["stoppedReason"] == "Task stopped by user", brief(t)
    assert env.log(t, "polite") == ["ready", "cleaning up"]
    grace = (ts(t, "executionStoppedAt") - ts(t, "stoppingAt")).total_seconds()
    assert grace < 5, f"a container that exits on SIGTERM took {grace:.2f} s to stop"


# ---------------------------------------------------------------------------------------------------------
# 5, 6. networking


def test_containers_of_a_task_share_localhost(env):
    serve = "mkdir -p /www && echo hello over localhost > /www/index.html && exec httpd -f -p 8080 -h /www"
    fetch = ("for i in $(seq 1 100); do wget -q -O - http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; "
             "echo never reached the server; exit 1")
    arn = env.run1([
        {"name": "server", "command": sh(serve), "essential": False, "stopTimeout": 2},
        {"name": "client", "command": sh(fetch), "dependsOn": [{"containerName": "server", "condition": "START"}]},
    ])
    t = env.wait_stopped(arn)
    assert container_of(t, "client")["exitCode"] == 0, brief(t)
    assert env.log(t, "client") == ["hello over localhost"]
    # The non-essential server was stopped with the task.
    assert container_of(t, "server")["lastStatus"] == "STOPPED", brief(t)


def test_task_reaches_another_task_by_ip_and_the_host_reaches_it(env):
    marker = uniq("served-by-b")
    serve = f"mkdir -p /www && echo {marker} > /www/index.html && exec httpd -f -p 8080 -h /www"
    b = env.run1([{"name": "web", "command": sh(serve), "stopTimeout": 2}])
    try:
        tb = env.wait_running(b)
        # While running, the attachment is ATTACHED with its details.
        [eni] = tb["attachments"]
        assert eni["status"] == "ATTACHED", eni
        ip = eni_details(tb)["privateIPv4Address"]
        assert ipaddress.ip_address(ip) in env.cidr

        # The host reaches it.
        def fetch():
            with urllib.request.urlopen(f"http://{ip}:8080/", timeout=3) as r:
                return r.read().decode()
        body = eventually(30, fetch, f"the host never got an answer from {ip}:8080")
        assert body == f"{marker}\n"

        # Another task reaches it.
        get = (f"for i in $(seq 1 50); do wget -q -O - http://{ip}:8080/ && exit 0; sleep 0.2; done; "
               "echo no answer; exit 1")
        a = env.run1([{"name": "client", "command": sh(get)}])
        ta = env.wait_stopped(a)
        assert container_of(ta, "client")["exitCode"] == 0, brief(ta)
        assert env.log(ta, "client") == [marker]
        assert eni_details(ta)["privateIPv4Address"] != ip
    finally:
        env.ecs.stop_task(cluster=env.cluster, task=b)
    env.wait_stopped(b)


# ---------------------------------------------------------------------------------------------------------
# 7. dependsOn


def test_depends_on_success_complete_and_start(env):
    vol = {"volumes": [{"name": "scratch"}]}
    mount = [{"sourceVolume": "scratch", "containerPath": "/shared"}]
    # SUCCESS: b reads what a wrote before exiting 0.
    success = env.run1([
        {"name": "a", "essential": False, "mountPoints": mount,
         "command": sh("sleep 1; echo payload-from-a > /shared/f")},
        {"name": "b", "mountPoints": mount, "command": sh("cat /shared/f"),
         "dependsOn": [{"containerName": "a", "condition": "SUCCESS"}]},
    ], td_kw=vol)
    # COMPLETE: a exits 3; b still starts, after it (the file exists only once a is done).
    complete = env.run1([
        {"name": "a", "essential": False, "mountPoints": mount,
         "command": sh("sleep 1; echo a-completed > /shared/g; exit 3")},
        {"name": "b", "mountPoints": mount, "command": sh("cat /shared/g"),
         "dependsOn": [{"containerName": "a", "condition": "COMPLETE"}]},
    ], td_kw=vol)
    # START: b starts while a still runs (a writes its file first thing; b waits for it and finds a alive).
    start = env.run1([
        {"name": "a", "essential": False, "mountPoints": mount, "stopTimeout": 2,
         "command": sh("echo a-running > /shared/h; " + IDLE)},
        {"name": "b", "mountPoints": mount,
         "command": sh("for i in $(seq 1 100); do test -f /shared/h && break; sleep 0.1; done; cat /shared/h"),
         "dependsOn": [{"containerName": "a", "condition": "START"}]},
    ], td_kw=vol)
    # SUCCESS that fails: the task stops, b never starts.
    failed = env.run1([
        {"name": "a", "essential": False, "command": sh("echo failing; exit 1")},
        {"name": "b", "command": sh("echo must not run"),
         "dependsOn": [{"containerName": "a", "condition": "SUCCESS"}]},
    ])

    t = env.wait_stopped(success)
    assert container_of(t, "a")["exitCode"] == 0 and container_of(t, "b")["exitCode"] == 0, brief(t)
    assert env.log(t, "b") == ["payload-from-a"]
    assert t["stopCode"] == "EssentialContainerExited", brief(t)

    t = env.wait_stopped(complete)
    assert container_of(t, "a")["exitCode"] == 3 and container_of(t, "b")["exitCode"] == 0, brief(t)
    assert env.log(t, "b") == ["a-completed"]
    assert t["stopCode"] == "EssentialContainerExited", brief(t)

    t = env.wait_stopped(start)
    assert container_of(t, "b")["exitCode"] == 0, brief(t)
    assert env.log(t, "b") == ["a-running"]
    ca = container_of(t, "a")
    assert ca["lastStatus"] == "STOPPED" and ca["exitCode"] == 0, brief(t)  # stopped with the task (trap: exit 0)

    t = env.wait_stopped(failed)
    assert t["stopCode"] == "TaskFailedToStart", brief(t)
    assert container_of(t, "a")["exitCode"] == 1, brief(t)
    cb = container_of(t, "b")
    assert cb["lastStatus"] == "STOPPED" and "exitCode" not in cb and not cb.get("runtimeId"), brief(t)
    assert env.log(t, "a") == ["failing"]


# ---------------------------------------------------------------------------------------------------------
# 8. health checks


def health(cmd: str) -> dict:
    return {"command": ["CMD-SHELL", cmd], "interval": 5, "timeout": 2, "retries": 1}


def test_health_checks_and_depends_on_healthy(env):
    healthy = env.run1([{"name": "ok", "stopTimeout": 2, "command": sh("touch /tmp/ok; " + IDLE),
                         "healthCheck": health("test -f /tmp/ok")}])
    unhealthy = env.run1([{"name": "bad", "stopTimeout": 2, "command": sh(IDLE),
                           "healthCheck": health("test -f /tmp/missing")}])
    ordered = env.run1([
        {"name": "a", "stopTimeout": 2, "command": sh("echo a-started; touch /tmp/ok; " + IDLE),
         "healthCheck": health("test -f /tmp/ok")},
        {"name": "b", "command": sh("echo b-started"),
         "dependsOn": [{"containerName": "a", "condition": "HEALTHY"}]},
    ])
    try:
        t = env.wait_running(healthy)
        assert t.get("healthStatus") in (None, "UNKNOWN"), brief(t)
        t = env.wait(healthy, lambda t: t.get("healthStatus") == "HEALTHY", "never HEALTHY", timeout=60)
        assert container_of(t, "ok")["healthStatus"] == "HEALTHY", brief(t)
        assert t["lastStatus"] == "RUNNING"

        t = env.wait(unhealthy, lambda t: t.get("healthStatus") == "UNHEALTHY", "never UNHEALTHY", timeout=60)
        assert container_of(t, "bad")["healthStatus"] == "UNHEALTHY", brief(t)

        t = env.wait_stopped(ordered)
        assert container_of(t, "b")["exitCode"] == 0, brief(t)
        assert container_of(t, "a")["healthStatus"] == "HEALTHY", brief(t)
        [(a_at, a_line)] = env.log_entries(t, "a")
        [(b_at, b_line)] = env.log_entries(t, "b")
        assert (a_line, b_line) == ("a-started", "b-started")
        # The first health check runs one interval (5 s) after a starts: b cannot start before.
        gap = (b_at - a_at).total_seconds()
        assert gap >= 4.5, f"b started {gap:.2f} s after a, before a could be HEALTHY"
    finally:
        for arn in (healthy, unhealthy, ordered):
            env.ecs.stop_task(cluster=env.cluster, task=arn)
    env.wait_all_stopped([healthy, unhealthy], STOP_TIMEOUT)


# ---------------------------------------------------------------------------------------------------------
# 9. limits and isolation, seen from inside


CHECKER = r"""
echo "hostname=$(hostname)"
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
if (echo x > /proc/sys/kernel/domainname) 2>/dev/null; then echo procsys=writable; else echo procsys=denied; fi
if (touch /x) 2>/dev/null; then echo rootfs=writable; else echo rootfs=denied; fi
echo "uid=$(id -u) gid=$(id -g)"
env | sed 's/^/env:/'
"""


def parse_checker(lines: list[str]) -> tuple[dict, dict]:
    facts, envs = {}, {}
    for line in lines:
        if line.startswith("env:"):
            k, _, v = line[4:].partition("=")
            envs[k] = v
        elif line.startswith("uid="):
            for kv in line.split():
                k, _, v = kv.partition("=")
                facts[k] = v
        else:
            k, _, v = line.partition("=")
            facts[k] = v
    return facts, envs


def test_checker_inside_the_container_sees_its_limits_and_isolation(env):
    td = env.register([
        {"name": "root", "command": sh("echo from the definition"),
         "environment": [{"name": "FROM_DEF", "value": "def"}, {"name": "OVERRIDDEN", "value": "def"}],
         "essential": False},
        {"name": "nobody", "command": sh(CHECKER), "user": "nobody", "readonlyRootFilesystem": True},
    ])
    overrides = {"containerOverrides": [{
        "name": "root", "command": sh(CHECKER),
        "environment": [{"name": "OVERRIDDEN", "value": "override"}, {"name": "FROM_OVERRIDE", "value": "o"}],
    }]}
    [arn] = env.run(td, overrides=overrides)
    t = env.wait_stopped(arn)
    assert container_of(t, "root")["exitCode"] == 0 and container_of(t, "nobody")["exitCode"] == 0, brief(t)
    dns = eni_details(t)["privateDnsName"]

    root_lines = env.log(t, "root")
    assert "from the definition" not in root_lines, "the command override was not applied"
    facts, envs = parse_checker(root_lines)
    assert facts["hostname"] == dns, facts
    assert facts["NoNewPrivs"] == "1", facts
    assert facts["CapEff"] == DOCKER_DEFAULT_CAPS, facts
    assert facts["CapBnd"] == DOCKER_DEFAULT_CAPS, facts
    assert facts["procsys"] == "denied", facts
    assert facts["rootfs"] == "writable", facts
    assert (facts["uid"], facts["gid"]) == ("0", "0"), facts
    assert envs.get("AWS_REGION") == REGION and envs.get("AWS_DEFAULT_REGION") == REGION, envs
    assert envs.get("AWS_EXECUTION_ENV") == "AWS_ECS_FARGATE", envs
    assert (envs.get("FROM_DEF"), envs.get("OVERRIDDEN"), envs.get("FROM_OVERRIDE")) == ("def", "override", "o"), envs
    assert envs.get("HOSTNAME") == dns, envs
    assert re.match(r"^http://[0-9.]+(:\d+)?/v4/", envs.get("ECS_CONTAINER_METADATA_URI_V4", "")), envs

    facts, envs = parse_checker(env.log(t, "nobody"))
    assert (facts["uid"], facts["gid"]) == ("65534", "65534"), facts
    assert facts["rootfs"] == "denied", facts
    assert facts["procsys"] == "denied", facts
    assert facts["NoNewPrivs"] == "1", facts
    assert facts["CapBnd"] == DOCKER_DEFAULT_CAPS, facts
    assert facts["CapEff"] == "0000000000000000", facts  # Docker: a non-root user has no effective capabilities
    assert facts["hostname"] == dns, facts
    assert "FROM_OVERRIDE" not in envs and "FROM_DEF" not in envs, envs


def test_task_metadata_endpoint_answers_inside_the_task(env):
    # The container reads ECS's task metadata endpoint v4 the way an SDK does: /task, / and /stats.
    script = ('wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/task"; echo; wget -qO- "$ECS_CONTAINER_METADATA_URI_V4"; '
              'echo; wget -qO- "$ECS_CONTAINER_METADATA_URI_V4/stats"; echo; '
              'wget -qO- "${ECS_CONTAINER_METADATA_URI_V4%/*}/not-a-token/task" 2>/dev/null || echo forged-refused')
    arn = env.run1([{"name": "app", "command": sh(script)}])
    t = env.wait_stopped(arn)
    assert container_of(t, "app")["exitCode"] == 0, brief(t)
    task_json, container_json, stats_json, refused = env.log(t, "app")[:4]
    task = json.loads(task_json)
    assert task["TaskARN"] == arn and task["Cluster"] == t["clusterArn"], task
    assert task["LaunchType"] == "FARGATE" and task["Limits"]["Memory"] == 512, task
    assert task["AvailabilityZone"] == t["availabilityZone"], task
    [c] = task["Containers"]
    assert c["Name"] == "app" and c["DockerId"] == container_of(t, "app")["runtimeId"], c
    assert c["Networks"][0]["IPv4Addresses"] == [eni_details(t)["privateIPv4Address"]], c
    me = json.loads(container_json)
    assert me["Name"] == "app" and me["KnownStatus"] == "RUNNING", me
    stats = json.loads(stats_json)
    assert stats["memory_stats"]["usage"] > 0 and stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0, stats
    assert refused == "forged-refused"


def storage_qgroup(data_dir: Path, tid: str) -> Path:
    """The sysfs directory of the btrfs quota group that limits task `tid`'s ephemeral storage."""
    mnt = str(data_dir / "agent" / "storage" / "mnt")
    device = next(line.split(" - ")[1].split()[1] for line in open("/proc/self/mountinfo")
                  if line.split()[4] == mnt)
    fs = next(p for p in Path("/sys/fs/btrfs").iterdir()
              if (p / "devices" / Path(device).name).exists())
    proc = subprocess.run(["btrfs", "inspect-internal", "rootid", f"{mnt}/tasks/{tid}"],
                          capture_output=True, text=True, check=True)
    return fs / "qgroups" / f"0_{proc.stdout.strip()}"


def test_ephemeral_storage_is_a_real_limit_on_the_tasks_writes(env):
    # 30 GiB asked for: the task's directory (overlay upper layers, scratch volumes) is a btrfs subvolume
    # whose quota is exactly that, and what the container writes through its overlay counts against it.
    # (Writing past it fails with EDQUOT; the agent's crate tests fill a small quota to show it.)
    arn = env.run1([{"name": "app", "command": sh("trap 'exit 0' TERM; dd if=/dev/zero of=/big bs=1M count=8; sleep 30 & wait")}],
                   td_kw={"ephemeralStorage": {"sizeInGiB": 30}})
    t = env.wait_running(arn)
    assert t["ephemeralStorage"] == {"sizeInGiB": 30} and t["fargateEphemeralStorage"] == {"sizeInGiB": 30}, brief(t)
    qgroup = storage_qgroup(env.data_dir, task_id(arn))
    assert int((qgroup / "max_referenced").read_text()) == 30 << 30
    mnt = env.data_dir / "agent" / "storage" / "mnt"

    def counted() -> bool:
        # Quotas are accounted when btrfs commits its transaction: commit now rather than in 30 s.
        subprocess.run(["btrfs", "filesystem", "sync", str(mnt)], check=True, capture_output=True)
        return int((qgroup / "referenced").read_text()) >= 8 << 20
    eventually(15, counted, "the 8 MiB written never counted against the task's quota")
    env.ecs.stop_task(cluster=env.cluster, task=arn)
    env.wait_stopped(arn)
    assert not (env.data_dir / "agent" / "storage" / "mnt" / "tasks" / task_id(arn)).exists()


# ---------------------------------------------------------------------------------------------------------
# 11. bad input and faults


def test_image_not_in_the_registry_fails_to_pull(env):
    arn = env.run1([{"name": "app", "image": f"{ECR_HOST}/{REPO_NAME}:no-such-tag", "command": ["true"]}])
    t = env.wait_stopped(arn)
    assert t["stopCode"] == "TaskFailedToStart", brief(t)
    assert t["stoppedReason"].startswith("CannotPullContainerError"), brief(t)
    c = container_of(t, "app")
    assert c["lastStatus"] == "STOPPED" and "exitCode" not in c, brief(t)
    assert c.get("reason", "").startswith("CannotPullContainerError"), brief(t)


def test_unreachable_registry_fails_to_pull(env):
    # A registry that is down (nothing listens on loopback port 1): the pull fails fast, the task ends.
    arn = env.run1([{"name": "app", "image": "127.0.0.1:1/nothing/here:latest", "command": ["true"]}])
    t = env.wait_stopped(arn)
    assert t["stopCode"] == "TaskFailedToStart", brief(t)
    assert t["stoppedReason"].startswith("CannotPullContainerError"), brief(t)
    assert "127.0.0.1:1/nothing/here:latest" in t["stoppedReason"], brief(t)
    assert "\n" not in t["stoppedReason"], brief(t)


def test_stop_task_right_after_run_task_ends_cleanly(env):
    # StopTask while the tasks are still PROVISIONING: they end STOPPED with the user's reason, never start
    # again, and leave nothing on the host.
    td = env.register([{"name": "app", "command": ["sleep", "60"]}])
    arns = env.run(td, count=5)
    for arn in arns:
        env.ecs.stop_task(cluster=env.cluster, task=arn, reason="changed my mind")
    tasks = env.wait_all_stopped(arns, STOP_TIMEOUT)
    for t in tasks:
        assert (t["desiredStatus"], t["stopCode"], t["stoppedReason"]) == ("STOPPED", "UserInitiated", "changed my mind"), brief(t)
        assert all(c["lastStatus"] == "STOPPED" for c in t["containers"]), brief(t)
    ids = {task_id(a) for a in arns}
    eventually(30, lambda: not leftovers(env, ids), "stopped tasks left something on the host")


def test_node_reset_refuses_while_the_server_runs(env):
    proc = subprocess.run([str(harness.SKIFF_BIN), "node", "reset", "--data-dir", str(env.data_dir)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    assert "skiff server" in proc.stderr and "stop it first" in proc.stderr, proc.stderr


def test_missing_entrypoint_and_unknown_user_cannot_start(env):
    missing = env.run1([{"name": "app", "command": ["/no/such/binary", "x"]}])
    ghost = env.run1([{"name": "app", "command": ["true"], "user": "ghost"}])
    for arn, what in ((missing, "/no/such/binary"), (ghost, "ghost")):
        t = env.wait_stopped(arn)
        c = container_of(t, "app")
        reasons = [t.get("stoppedReason") or "", c.get("reason") or ""]
        assert any(r.startswith("CannotStartContainerError") for r in reasons), brief(t)
        assert any(what in r for r in reasons), brief(t)
        assert t["stopCode"] == "TaskFailedToStart", brief(t)
        assert c["lastStatus"] == "STOPPED", brief(t)


def test_cannot_start_reason_is_one_clean_line(env):
    # ECS's reasons are one line; the CLI and consoles print them as they are.
    arn = env.run1([{"name": "app", "command": ["/no/such/binary"]}])
    t = env.wait_stopped(arn)
    reasons = [t.get("stoppedReason") or "", container_of(t, "app").get("reason") or ""]
    assert all(r.startswith("CannotStartContainerError") for r in reasons), brief(t)
    assert all(r == r.strip() and "\n" not in r for r in reasons), f"reasons with line breaks: {reasons!r}"


def test_cannot_pull_reason_names_the_image_as_given(env):
    # ECS names the reference of the task definition ("failed to resolve ref <image>"); the server's internal
    # loopback address (which changes with every restart) means nothing to the user.
    image = f"{ECR_HOST}/{REPO_NAME}:no-such-tag"
    arn = env.run1([{"name": "app", "image": image, "command": ["true"]}])
    t = env.wait_stopped(arn)
    reason = t.get("stoppedReason") or ""
    assert reason.startswith("CannotPullContainerError"), brief(t)
    assert image in reason, f"the reason does not name {image}: {reason!r}"
    assert env.server.address not in reason, f"the reason exposes the internal pull address: {reason!r}"


def test_stop_task_of_a_stopped_task_returns_it_unchanged(env):
    arn = env.run1([{"name": "app", "command": ["true"]}])
    before = env.wait_stopped(arn)
    after = env.ecs.stop_task(cluster=env.cluster, task=arn, reason="too late")["task"]
    for k in ("lastStatus", "desiredStatus", "stopCode", "stoppedReason", "stoppedAt", "version", "containers"):
        assert after.get(k) == before.get(k), f"{k}: {before.get(k)!r} became {after.get(k)!r}"
    assert env.task(arn)["stoppedReason"] == "Essential container in task exited"


# ---------------------------------------------------------------------------------------------------------
# 10. restart survival (its own server: kill -9 moves the port)


def test_running_task_survives_a_server_kill_and_restart(busybox):
    srv = new_server("tasks-restart")
    try:
        srv.start()
        push_busybox(srv, busybox)
        e = Env(srv, busybox)
        arn = e.run1([{"name": "app", "command": sh("echo started; sleep 8; echo done")}])
        t = e.wait_running(arn)
        runtime_id = container_of(t, "app")["runtimeId"]
        eventually(30, lambda: e.log(t, "app") == ["started"], "the container never printed started")
        srv.kill()
        # With the server gone, the container still runs in its cgroup.
        procs = [pid for d in task_cgroup_dirs(task_id(arn)) for f in d.rglob("cgroup.procs")
                 for pid in f.read_text().split()]
        assert procs, f"no process left in the task's cgroups {task_cgroup_dirs(task_id(arn))} after kill -9"
        srv.start()
        e.refresh()
        t = e.task(arn)
        assert t["lastStatus"] == "RUNNING", f"after the restart: {brief(t)}"
        t = e.wait_stopped(arn)
        c = container_of(t, "app")
        assert c["exitCode"] == 0 and c["runtimeId"] == runtime_id, brief(t)
        assert t["stopCode"] == "EssentialContainerExited", brief(t)
        # The same container ran on: started once, finished.
        assert e.log(t, "app") == ["started", "done"]
        assert (ts(t, "executionStoppedAt") - ts(t, "startedAt")).total_seconds() >= 7
    finally:
        destroy(srv)


def test_exit_while_the_server_is_down_is_collected_on_restart(busybox):
    # The container ends while no server watches it: the restarted server records its exit code and ends
    # the task as ECS would have.
    srv = new_server("tasks-exit-while-down")
    try:
        srv.start()
        push_busybox(srv, busybox)
        e = Env(srv, busybox)
        arn = e.run1([{"name": "app", "command": sh("echo started; sleep 2; echo bye; exit 7")}])
        t = e.wait_running(arn)
        eventually(30, lambda: e.log(t, "app") == ["started"], "the container never printed started")
        srv.kill()
        eventually(30, lambda: e.log(t, "app") == ["started", "bye"], "the container did not finish on its own")
        srv.start()
        e.refresh()
        t = e.wait_stopped(arn)
        assert container_of(t, "app")["exitCode"] == 7, brief(t)
        assert t["stopCode"] == "EssentialContainerExited", brief(t)
        eventually(30, lambda: not leftovers(e, {task_id(arn)}), "the task left something on the host")
    finally:
        destroy(srv)


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_runc_is_selectable(busybox):
    # `skiff server --oci-runtime runc`: the same task, limits and logs under runc instead of crun.
    srv = new_server("tasks-runc", extra_args=["--oci-runtime", "runc"])
    try:
        srv.start()
        push_busybox(srv, busybox)
        e = Env(srv, busybox)
        arn = e.run1([{"name": "app", "command": sh("echo hello from runc; cat /proc/self/status | grep NoNewPrivs")}])
        t = e.wait_stopped(arn)
        assert container_of(t, "app")["exitCode"] == 0, brief(t)
        assert e.log(t, "app") == ["hello from runc", "NoNewPrivs:\t1"], e.log(t, "app")
    finally:
        destroy(srv)


# ---------------------------------------------------------------------------------------------------------
# 12. nothing left behind


@pytest.mark.slow
def test_no_leaks_after_200_tasks(env):
    td = env.register([{"name": "app", "command": ["true"]}])
    began = time.monotonic()
    arns: list[str] = []
    for _ in range(20):
        arns += env.run(td, count=10)
    tasks = env.wait_all_stopped(arns, timeout=540)
    elapsed = time.monotonic() - began
    bad = [brief(t) for t in tasks
           if t["stopCode"] != "EssentialContainerExited" or t["containers"][0].get("exitCode") != 0]
    assert not bad, f"{len(bad)} tasks did not exit 0: {bad[:3]}"

    ids = {task_id(a) for a in arns}
    assert len(ids) == 200
    print(f"200 tasks ran and stopped in {elapsed:.1f} s")
    left = leftovers(env, ids)
    if left:
        # The server's lines about a few of the tasks that left something, as evidence.
        # (Tasks whose leftovers are rare first: those say the most.)
        named: list[str] = []
        for items in sorted(left.values(), key=len):
            named += [i for i in sorted(ids) if i not in named and any(i in str(x) for x in items)]
        lines = [line for line in env.server.log_text().splitlines() if any(i in line for i in named[:3])]
        lines += [str(brief(t)) for t in tasks if task_id(t["taskArn"]) in named[:3]]
        raise AssertionError("left behind by 200 stopped tasks:\n" + "\n".join(
            f"  {what}: {len(items)}, e.g. {items[:3]}" for what, items in left.items())
            + "\nserver log lines about " + ", ".join(named[:3]) + ":\n" + "\n".join(lines[-30:]))


def leftovers(env: Env, ids: set[str]) -> dict[str, list]:
    """Whatever the node still holds for these (stopped) task ids, by kind."""
    found: dict[str, list] = {}
    netns_dir = Path("/run/netns")
    netns = {p.name for p in netns_dir.iterdir()} if netns_dir.exists() else set()
    found["network namespaces (/run/netns)"] = sorted(ids & netns)
    links = {p.name for p in Path("/sys/class/net").iterdir()}
    found["host veths (/sys/class/net)"] = sorted({host_veth_name(i) for i in ids} & links)
    found["cgroups (/sys/fs/cgroup/*/skiff/<task-id>)"] = [str(p) for i in sorted(ids) for p in task_cgroup_dirs(i)]
    data = str(env.data_dir.resolve())
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    found["mounts under the data directory"] = [m for m in mounts if m.startswith(data) and any(i in m for i in ids)]
    # The tasks' directories: agent/tasks/<id> (agent/storage/mnt/tasks/<id> with per-task ephemeral storage).
    task_dirs = []
    for tasks_dir in (env.data_dir / "agent" / "tasks", env.data_dir / "agent" / "storage" / "mnt" / "tasks"):
        if tasks_dir.exists():
            task_dirs += [str(tasks_dir / n) for n in sorted(ids & {p.name for p in tasks_dir.iterdir()})]
    found["task directories"] = task_dirs
    # Nothing else of theirs under the agent's directory either (logs stay, by design; images are shared).
    agent = env.data_dir / "agent"
    stray = []
    for root, dirs, files in os.walk(agent):
        if Path(root) in (agent / "runtime" / "logs", agent / "images"):
            dirs[:] = []
            continue
        stray += [os.path.join(root, n) for n in dirs + files if any(i in n for i in ids)]
    found["other files under agent/"] = stray
    procs = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if any(i in cmd for i in ids):
                procs.append(cmd.replace("\0", " ")[:200])
    found["processes (conmon, crun, containers)"] = procs
    return {k: v for k, v in found.items() if v}
