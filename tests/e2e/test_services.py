"""ECS services end to end: CreateService/UpdateService/DeleteService/DescribeServices/ListServices and the
service deployments API through boto3 (and `aws ecs wait services-stable`) against a real `skiff server`
whose agent runs every task with crun.

Each test makes its own cluster and removes it afterwards, even when it fails: desiredCount 0, DeleteService
(force), every task STOPPED, DeleteCluster. The busybox test image (tests/images/oci_image.py) is pushed once
per server with skopeo and named by its ECR-style reference. One server serves the module; the kill -9 test
has its own (a restart moves the port).

Expected behaviour comes from ECS (the botocore models, the ECS developer guide: service events, deployment
circuit breaker, rolling update percentages), never from what the server happens to do.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Optional

import pytest
from botocore.exceptions import ClientError

import harness
from harness import ACCOUNT_ID, REGION, SkiffServer, cluster_arn, client_error, eventually, new_server, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
REPO_NAME = "busybox-svc"
ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
IMAGE = f"{ECR_HOST}/{REPO_NAME}:latest"
# A tag of the server's registry that is never pushed: its tasks fail to start (CannotPullContainerError).
MISSING_IMAGE = f"{ECR_HOST}/{REPO_NAME}:never-pushed"

# Idles until SIGTERM, then exits 0 at once (a trapped signal interrupts `wait`; PID 1 without a trap would
# ignore SIGTERM and be killed only after stopTimeout).
IDLE = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# A health check that passes, as often as ECS allows (interval 5 s minimum, no start period).
HEALTHY = {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0}

DEPLOYMENT_ID = re.compile(r"ecs-svc/\d{19}")
PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")

# Generous: CI has two cores and every service here starts real containers.
START_TIMEOUT = 90
STOP_TIMEOUT = 90
ROLLOUT_TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root"),
]


# ---------------------------------------------------------------------------------------------------------
# fixtures and the per-test cluster


@pytest.fixture(scope="module")
def busybox():
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-svc-image-"))
    try:
        yield oci_image.build_busybox(root / "single", "single", "latest")
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Env:
    """A started server with the busybox image pushed and its default subnets."""

    def __init__(self, server: SkiffServer, image: oci_image.Image):
        self.server = server
        self.image = image
        server.client("ecr").create_repository(repositoryName=REPO_NAME)
        harness.skopeo_push(server, image.ref, REPO_NAME, "latest")
        self.refresh()
        ec2 = server.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        assert subnets, f"the default VPC {vpc} has no default subnets"
        self.subnets = sorted(s["SubnetId"] for s in subnets)

    def refresh(self) -> None:
        """New clients (after a restart the server listens on another port)."""
        self.ecs = self.server.client("ecs", max_pool_connections=20)


@pytest.fixture(scope="module")
def env(busybox):
    srv = new_server("services")
    try:
        srv.start()
        yield Env(srv, busybox)
    finally:
        harness.destroy(srv)


class Cluster:
    """A cluster of its own for one test, task definitions in a family of its own, and the services the test
    made in it. `cleanup()` scales every service to 0, deletes it (force), waits for every task to be
    STOPPED and deletes the cluster."""

    def __init__(self, env: Env, **create_kw: Any):
        self.env = env
        self.name = uniq("svc")
        self.family = uniq("svcfam")
        self.services: list[str] = []
        self.deleted = False
        self.ecs.create_cluster(clusterName=self.name, **create_kw)

    @property
    def ecs(self):
        return self.env.ecs

    @property
    def arn(self) -> str:
        return cluster_arn(self.name)

    def service_arn(self, name: str) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service/{self.name}/{name}"

    # -- task definitions and services

    def register(self, *, image: str = IMAGE, command: Optional[list[str]] = None, version: str = "v1",
                 health: bool = False, **kw: Any) -> str:
        c: dict[str, Any] = {"name": "app", "image": image, "command": command or IDLE,
                             "environment": [{"name": "VERSION", "value": version}]}
        if health:
            c["healthCheck"] = HEALTHY
        td = {"family": self.family, "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
              "cpu": "256", "memory": "512", "containerDefinitions": [c]}
        td.update(kw)
        return self.ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]

    def network(self) -> dict:
        return {"awsvpcConfiguration": {"subnets": list(self.env.subnets)}}

    def create_request(self, name: str, td: str, desired: int, **kw: Any) -> dict:
        req: dict[str, Any] = {"cluster": self.name, "serviceName": name, "taskDefinition": td,
                               "desiredCount": desired, "networkConfiguration": self.network()}
        if "capacityProviderStrategy" not in kw:
            req["launchType"] = "FARGATE"
        req.update(kw)
        return req

    def create(self, name: str, td: str, desired: int, **kw: Any) -> dict:
        self.services.append(name)
        return self.ecs.create_service(**self.create_request(name, td, desired, **kw))["service"]

    def update(self, name: str, **kw: Any) -> dict:
        return self.ecs.update_service(cluster=self.name, service=name, **kw)["service"]

    def describe(self, name: str) -> dict:
        resp = self.ecs.describe_services(cluster=self.name, services=[name])
        assert resp["failures"] == [], resp["failures"]
        [svc] = resp["services"]
        return svc

    # -- tasks

    def task_arns(self, desired: str = "RUNNING", **filters: Any) -> list[str]:
        arns: list[str] = []
        pages = self.ecs.get_paginator("list_tasks").paginate(cluster=self.name, desiredStatus=desired, **filters)
        for page in pages:
            arns += page["taskArns"]
        return arns

    def describe_tasks(self, arns: Iterable[str]) -> list[dict]:
        arns = list(arns)
        out: list[dict] = []
        for i in range(0, len(arns), 100):
            resp = self.ecs.describe_tasks(cluster=self.name, tasks=arns[i:i + 100])
            assert resp["failures"] == [], resp["failures"]
            out += resp["tasks"]
        return out

    def tasks(self, desired: str = "RUNNING", **filters: Any) -> list[dict]:
        return self.describe_tasks(self.task_arns(desired, **filters))

    def all_tasks(self) -> list[dict]:
        """Every task of the cluster, whatever its desiredStatus."""
        return self.describe_tasks(self.task_arns("RUNNING") + self.task_arns("STOPPED"))

    # -- waiting

    def steady_now(self, name: str, count: int, td: Optional[str] = None,
                   healthy: bool = False) -> tuple[dict, list[dict]]:
        """The service and its tasks if it has one COMPLETED deployment and exactly `count` RUNNING tasks (on
        `td`, HEALTHY if asked); AssertionError saying what differs otherwise."""
        s = self.describe(name)
        deps = s["deployments"]
        assert len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED", svc_brief(s)
        assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (count, count, 0), svc_brief(s)
        tasks = self.tasks(serviceName=name)
        assert len(tasks) == count, [task_brief(t) for t in tasks]
        assert all(t["lastStatus"] == "RUNNING" for t in tasks), [task_brief(t) for t in tasks]
        if td is not None:
            assert all(t["taskDefinitionArn"] == td for t in tasks), [task_brief(t) for t in tasks]
        if healthy:
            assert all(t.get("healthStatus") == "HEALTHY" for t in tasks), [task_brief(t) for t in tasks]
        return s, tasks

    def wait_steady(self, name: str, count: int, td: Optional[str] = None, healthy: bool = False,
                    timeout: float = START_TIMEOUT) -> tuple[dict, list[dict]]:
        return eventually(timeout, lambda: self.steady_now(name, count, td, healthy),
                          f"service {name} never steady with {count} tasks", interval=0.1)

    def wait_stopped(self, arns: list[str], timeout: float = STOP_TIMEOUT) -> list[dict]:
        def check():
            tasks = self.describe_tasks(arns)
            left = [task_brief(t) for t in tasks if t["lastStatus"] != "STOPPED"]
            assert not left, f"{len(left)} of {len(arns)} not STOPPED yet: {left[:3]}"
            return tasks
        return eventually(timeout, check, "tasks never all STOPPED", interval=0.2)

    # -- cleanup

    def cleanup(self) -> None:
        if self.deleted:
            return
        ecs = self.ecs
        names = set(self.services)
        try:
            for page in ecs.get_paginator("list_services").paginate(cluster=self.name):
                names |= {a.rsplit("/", 1)[1] for a in page["serviceArns"]}
        except ClientError:
            pass
        for n in sorted(names):
            for call in (lambda: ecs.update_service(cluster=self.name, service=n, desiredCount=0),
                         lambda: ecs.delete_service(cluster=self.name, service=n, force=True)):
                try:
                    call()
                except ClientError:
                    pass  # unknown, already DRAINING or INACTIVE: nothing to do

        def all_stopped():
            tasks = self.all_tasks()
            left = [task_brief(t) for t in tasks if t["lastStatus"] != "STOPPED"]
            assert not left, f"{len(left)} tasks not STOPPED: {left[:3]}"
            return True
        eventually(180, all_stopped, f"cleanup: the tasks of cluster {self.name} never all STOPPED", interval=0.25)

        def delete():
            ecs.delete_cluster(cluster=self.name)
            return True
        eventually(60, delete, f"cleanup: cluster {self.name} could not be deleted", interval=0.25)
        self.deleted = True


@pytest.fixture
def cluster(env):
    c = Cluster(env)
    try:
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def make_cluster(env):
    """make_cluster(**CreateCluster kwargs) -> a Cluster, cleaned up afterwards."""
    made: list[Cluster] = []

    def make(**kw: Any) -> Cluster:
        c = Cluster(env, **kw)
        made.append(c)
        return c

    try:
        yield make
    finally:
        errors = []
        for c in made:
            try:
                c.cleanup()
            except Exception as e:  # noqa: BLE001 - clean up the others, then fail
                errors.append(e)
        if errors:
            raise errors[0]


# ---------------------------------------------------------------------------------------------------------
# helpers


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def revision(td_arn: str) -> str:
    return td_arn.rsplit("/", 1)[1]


def task_brief(t: dict) -> dict:
    keys = ["lastStatus", "desiredStatus", "healthStatus", "startedBy", "stopCode", "stoppedReason"]
    return {"id": task_id(t["taskArn"]), "td": revision(t["taskDefinitionArn"]), **{k: t.get(k) for k in keys}}


def dep_brief(d: dict) -> dict:
    keys = ["id", "status", "rolloutState", "desiredCount", "runningCount", "pendingCount", "failedTasks"]
    return {**{k: d.get(k) for k in keys}, "td": revision(d["taskDefinition"])}


def svc_brief(s: dict) -> dict:
    """The parts of a service worth printing in a failure."""
    return {
        "status": s.get("status"),
        "counts": (s.get("desiredCount"), s.get("runningCount"), s.get("pendingCount")),
        "td": revision(s["taskDefinition"]) if s.get("taskDefinition") else None,
        "deployments": [dep_brief(d) for d in s.get("deployments", [])],
        "events": messages(s)[:6],
    }


def messages(svc: dict) -> list[str]:
    """The service's event messages, newest first."""
    return [e["message"] for e in svc.get("events", [])]


def error_code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def container_pids(tid: str, container: str = "app") -> set[int]:
    """The processes of a task's container: its cgroup /skiff/<task-id>/<container> on any hierarchy."""
    root = Path("/sys/fs/cgroup")
    pids: set[int] = set()
    for d in [root, *[p for p in root.iterdir() if p.is_dir()]]:
        procs = d / "skiff" / tid / container / "cgroup.procs"
        if procs.exists():
            pids |= {int(p) for p in procs.read_text().split()}
    return pids


def kill_container_from_outside(tid: str, container: str = "app") -> None:
    """SIGKILL every process of the container, the way an OOM killer or an operator on the node would."""
    pids = container_pids(tid, container)
    assert pids, f"no process in the cgroup of container {container} of task {tid}"
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RolloutWatch:
    """Samples a service and its cluster's tasks while a deployment rolls out: every task id ever seen (with
    its startedBy), the fewest RUNNING+HEALTHY tasks and the most tasks alive (desiredStatus RUNNING) at any
    sample.

    A sample is ListTasks (one snapshot of the live tasks), then DescribeTasks of those. A task counts as
    healthy when DescribeTasks shows it RUNNING, HEALTHY and still desired RUNNING: a task becomes HEALTHY
    only seconds after it starts, so any task healthy at the DescribeTasks was already listed."""

    def __init__(self, c: Cluster, name: str):
        self.c = c
        self.name = name
        self.seen: dict[str, Optional[str]] = {}
        self.samples = 0
        self.min_healthy: Optional[int] = None
        self.max_live = 0
        self.low: list[tuple[float, int, list]] = []  # samples with too few healthy tasks
        self.high: list[tuple[float, int, list]] = []  # samples with too many live tasks
        self.began = time.monotonic()

    def sample(self, min_healthy: int, max_live: int) -> tuple[dict, list[dict]]:
        svc = self.c.describe(self.name)
        arns = self.c.task_arns()
        tasks = self.c.describe_tasks(arns)
        self.samples += 1
        for t in tasks:
            self.seen[t["taskArn"]] = t.get("startedBy")
        healthy = sum(1 for t in tasks if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
                      and t.get("healthStatus") == "HEALTHY")
        live = len(arns)
        at = round(time.monotonic() - self.began, 2)
        self.min_healthy = healthy if self.min_healthy is None else min(self.min_healthy, healthy)
        self.max_live = max(self.max_live, live)
        if healthy < min_healthy:
            self.low.append((at, healthy, [task_brief(t) for t in tasks]))
        if live > max_live:
            self.high.append((at, live, [task_brief(t) for t in tasks]))
        return svc, tasks

    def check(self, min_healthy: int, max_live: int) -> None:
        assert not self.low, (f"{len(self.low)} of {self.samples} samples had fewer than {min_healthy} RUNNING "
                              f"HEALTHY tasks; first (seconds, healthy, tasks): {self.low[0]}")
        assert not self.high, (f"{len(self.high)} of {self.samples} samples had more than {max_live} live tasks; "
                               f"first (seconds, live, tasks): {self.high[0]}")


def rollout_done(svc: dict, td: str, desired: int, tasks: list[dict]) -> bool:
    deps = svc["deployments"]
    return (len(deps) == 1 and deps[0]["status"] == "PRIMARY" and deps[0]["rolloutState"] == "COMPLETED"
            and deps[0]["taskDefinition"] == td and svc["runningCount"] == desired
            and len(tasks) == desired
            and all(t["lastStatus"] == "RUNNING" and t["taskDefinitionArn"] == td for t in tasks))


def service_deployments(c: Cluster, name: str) -> list[dict]:
    """ListServiceDeployments of the service, every page."""
    briefs: list[dict] = []
    token = None
    while True:
        kw = {"cluster": c.name, "service": name}
        if token:
            kw["nextToken"] = token
        page = c.ecs.list_service_deployments(**kw)
        briefs += page["serviceDeployments"]
        token = page.get("nextToken")
        if not token:
            break
    return briefs


# ---------------------------------------------------------------------------------------------------------
# 1. a service runs its tasks, reports them, scales up and down


def test_service_starts_its_tasks_reports_them_and_scales(cluster):
    td = cluster.register()
    name = uniq("web")
    svc = cluster.create(name, td, 2)

    assert svc["serviceArn"] == cluster.service_arn(name), svc["serviceArn"]
    assert svc["serviceName"] == name and svc["clusterArn"] == cluster.arn
    assert svc["status"] == "ACTIVE" and svc["desiredCount"] == 2, svc_brief(svc)
    assert svc["taskDefinition"] == td
    assert svc["launchType"] == "FARGATE"
    assert svc["schedulingStrategy"] == "REPLICA"
    assert svc["deploymentController"] == {"type": "ECS"}
    conf = svc["deploymentConfiguration"]
    assert (conf["minimumHealthyPercent"], conf["maximumPercent"]) == (100, 200), conf
    assert sorted(svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"]) == cluster.env.subnets
    [dep] = svc["deployments"]
    assert DEPLOYMENT_ID.fullmatch(dep["id"]), dep
    assert (dep["status"], dep["taskDefinition"], dep["desiredCount"], dep["rolloutState"]) == \
        ("PRIMARY", td, 2, "IN_PROGRESS"), dep_brief(dep)
    primary = dep["id"]

    # While the tasks start, DescribeServices and DescribeTasks agree whenever the counts hold still.
    disagreements: list = []

    def counts_agree():
        before = cluster.describe(name)
        tasks = cluster.tasks(serviceName=name)
        after = cluster.describe(name)
        counts = (after["runningCount"], after["pendingCount"])
        if (before["runningCount"], before["pendingCount"]) != counts:
            return None  # moving: sample again
        seen = (sum(t["lastStatus"] == "RUNNING" for t in tasks),
                sum(t["lastStatus"] in PENDING_STATES for t in tasks))
        if seen != counts:
            disagreements.append((counts, [task_brief(t) for t in tasks]))
        return after if after["runningCount"] == 2 and seen == counts else None

    eventually(START_TIMEOUT, counts_agree, f"service {name} never had runningCount 2", interval=0.05)
    assert not disagreements, \
        f"(runningCount, pendingCount) disagreed with DescribeTasks: first {disagreements[0]}"

    svc, tasks = cluster.wait_steady(name, 2, td)
    assert svc["deployments"][0]["id"] == primary
    for t in tasks:
        assert t["group"] == f"service:{name}", task_brief(t) | {"group": t.get("group")}
        assert t["startedBy"] == primary, task_brief(t)
        assert t["launchType"] == "FARGATE" and t["clusterArn"] == cluster.arn
    first_ids = {task_id(t["taskArn"]) for t in tasks}
    # ListTasks by service and by the deployment's startedBy name the same tasks.
    assert set(cluster.task_arns(startedBy=primary)) == {t["taskArn"] for t in tasks}

    started = f"(service {name}) has started 2 tasks:"
    steady = f"(service {name}) has reached a steady state."

    def events_say_started_then_steady():
        msgs = messages(cluster.describe(name))
        starts = [i for i, m in enumerate(msgs) if m.startswith(started)]
        steadies = [i for i, m in enumerate(msgs) if m == steady]
        assert starts and steadies, msgs
        assert min(steadies) < max(starts), f"steady state is not newer than the start: {msgs}"
        return msgs[max(starts)]
    start_event = eventually(30, events_say_started_then_steady, "no start and steady-state events", interval=0.2)
    for tid in first_ids:
        assert f"(task {tid})" in start_event, f"the start event does not name task {tid}: {start_event!r}"

    # Scale up: the same deployment starts two more.
    up = cluster.update(name, desiredCount=4)
    assert up["desiredCount"] == 4
    assert [d["id"] for d in up["deployments"]] == [primary], [dep_brief(d) for d in up["deployments"]]
    svc, tasks = cluster.wait_steady(name, 4, td)
    assert all(t["startedBy"] == primary for t in tasks), [task_brief(t) for t in tasks]
    assert first_ids <= {task_id(t["taskArn"]) for t in tasks}, "scaling up replaced running tasks"
    four = [t["taskArn"] for t in tasks]

    # Scale down: the scheduler stops three of them.
    down = cluster.update(name, desiredCount=1)
    assert down["desiredCount"] == 1 and [d["id"] for d in down["deployments"]] == [primary]
    svc, [kept] = cluster.wait_steady(name, 1, td)
    assert kept["taskArn"] in four
    stopped = cluster.wait_stopped([a for a in four if a != kept["taskArn"]])
    assert len(stopped) == 3
    for t in stopped:
        assert t["desiredStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated", task_brief(t)
        assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {primary})", task_brief(t)

    def stop_events():
        msgs = [m for m in messages(cluster.describe(name)) if m.startswith(f"(service {name}) has stopped ")]
        text = " ".join(msgs)
        missing = [task_id(t["taskArn"]) for t in stopped if f"(task {task_id(t['taskArn'])})" not in text]
        assert msgs and not missing, f"no 'has stopped N running tasks' event names {missing}: {msgs}"
        assert all(re.match(rf"\(service {name}\) has stopped \d+ running tasks: ", m) for m in msgs), msgs
        return True
    eventually(30, stop_events, "the stops were not reported as service events", interval=0.2)


# ---------------------------------------------------------------------------------------------------------
# 2. a task that dies is replaced


def test_task_killed_from_outside_or_stopped_is_replaced(cluster):
    td = cluster.register()
    name = uniq("heal")
    primary = cluster.create(name, td, 2)["deployments"][0]["id"]
    _, tasks = cluster.wait_steady(name, 2, td)
    victim, other = tasks[0]["taskArn"], tasks[1]["taskArn"]

    # kill -9 of the container's processes on the node: the essential container exits, the task stops, and
    # the scheduler starts another.
    kill_container_from_outside(task_id(victim))
    [dead] = cluster.wait_stopped([victim])
    assert dead["stopCode"] == "EssentialContainerExited", task_brief(dead)
    assert dead["containers"][0].get("exitCode") == 137, dead["containers"][0]

    def replaced(gone: set[str]):
        def check():
            _, tasks = cluster.steady_now(name, 2, td)
            arns = {t["taskArn"] for t in tasks}
            assert not arns & gone, f"a stopped task is still listed: {arns & gone}"
            return tasks
        return check
    tasks = eventually(START_TIMEOUT, replaced({victim}), "the killed task was never replaced", interval=0.2)
    assert other in {t["taskArn"] for t in tasks}, "the healthy task was replaced too"
    assert all(t["startedBy"] == primary and t["group"] == f"service:{name}" for t in tasks), \
        [task_brief(t) for t in tasks]

    # StopTask of one: replaced as well.
    cluster.ecs.stop_task(cluster=cluster.name, task=other, reason="testing replacement")
    [gone] = cluster.wait_stopped([other])
    assert gone["stopCode"] == "UserInitiated", task_brief(gone)
    tasks = eventually(START_TIMEOUT, replaced({victim, other}), "the stopped task was never replaced", interval=0.2)
    svc = cluster.describe(name)
    assert [d["id"] for d in svc["deployments"]] == [primary], svc_brief(svc)
    assert svc["runningCount"] == 2 and svc["desiredCount"] == 2, svc_brief(svc)
    replacements = [task_id(t["taskArn"]) for t in tasks]

    def start_events():
        text = " ".join(m for m in messages(cluster.describe(name)) if m.startswith(f"(service {name}) has started "))
        missing = [tid for tid in replacements if f"(task {tid})" not in text]
        assert not missing, f"no start event names {missing}: {messages(cluster.describe(name))[:6]}"
        return True
    eventually(30, start_events, "the replacements were not reported as service events", interval=0.2)


# ---------------------------------------------------------------------------------------------------------
# 3. rolling update with health checks: never below minimumHealthyPercent


def test_rolling_update_keeps_desired_count_healthy(cluster):
    v1 = cluster.register(health=True, version="v1")
    v2 = cluster.register(health=True, version="v2")
    name = uniq("roll")
    desired = 2
    cluster.create(name, v1, desired,
                   deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    svc, old = cluster.wait_steady(name, desired, v1, healthy=True)
    first_deployment = svc["deployments"][0]["id"]
    old_arns = [t["taskArn"] for t in old]

    watch = RolloutWatch(cluster, name)
    max_live = desired * 2  # maximumPercent 200
    watch.sample(desired, max_live)
    updated = cluster.update(name, taskDefinition=v2)
    assert updated["taskDefinition"] == v2
    deps = updated["deployments"]
    assert [(d["status"], d["taskDefinition"]) for d in deps] == [("PRIMARY", v2), ("ACTIVE", v1)], \
        [dep_brief(d) for d in deps]
    assert deps[1]["id"] == first_deployment and deps[0]["id"] != first_deployment
    assert DEPLOYMENT_ID.fullmatch(deps[0]["id"]) and deps[0]["rolloutState"] == "IN_PROGRESS", dep_brief(deps[0])
    new_deployment = deps[0]["id"]

    def sample_until_done():
        svc, tasks = watch.sample(desired, max_live)
        return svc if rollout_done(svc, v2, desired, tasks) else None
    svc = eventually(ROLLOUT_TIMEOUT, sample_until_done, f"the rollout of {name} to v2 never completed",
                     interval=0.1)
    print(f"rollout: {watch.samples} samples in {time.monotonic() - watch.began:.1f} s, "
          f"fewest healthy {watch.min_healthy}, most live {watch.max_live}")
    watch.check(desired, max_live)
    assert svc["taskDefinition"] == v2
    [dep] = svc["deployments"]
    assert dep["id"] == new_deployment and dep["status"] == "PRIMARY", dep_brief(dep)
    tasks = cluster.tasks(serviceName=name)
    assert all(t["startedBy"] == new_deployment and t.get("healthStatus") == "HEALTHY" for t in tasks), \
        [task_brief(t) for t in tasks]
    for t in cluster.wait_stopped(old_arns):
        assert t["stopCode"] == "ServiceSchedulerInitiated", task_brief(t)
    # Every task the cluster ever had belongs to one of the two deployments; the rollout started exactly
    # `desired` new ones.
    by_deployment: dict[Optional[str], set[str]] = {}
    for t in cluster.all_tasks():
        by_deployment.setdefault(t.get("startedBy"), set()).add(t["taskArn"])
    assert set(by_deployment) == {first_deployment, new_deployment}, by_deployment
    assert by_deployment[first_deployment] == set(old_arns), by_deployment
    assert len(by_deployment[new_deployment]) == desired, by_deployment

    # The service deployment of the update: SUCCESSFUL.
    current = svc.get("currentServiceDeployment")
    assert current and re.fullmatch(
        rf"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service-deployment/{cluster.name}/{name}/[A-Za-z0-9_-]+", current), current

    def successful():
        [sd] = cluster.ecs.describe_service_deployments(serviceDeploymentArns=[current])["serviceDeployments"]
        assert sd["status"] == "SUCCESSFUL", sd
        return sd
    sd = eventually(30, successful, "the service deployment never SUCCESSFUL", interval=0.2)
    assert sd["serviceArn"] == cluster.service_arn(name) and sd["clusterArn"] == cluster.arn, sd
    assert sd.get("finishedAt") is not None, sd
    conf = sd["deploymentConfiguration"]
    assert (conf["minimumHealthyPercent"], conf["maximumPercent"]) == (100, 200), conf
    target = sd["targetServiceRevision"]
    assert target["arn"].startswith(f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:service-revision/{cluster.name}/{name}/"), sd
    assert target["requestedTaskCount"] == desired and target["runningTaskCount"] == desired, sd
    assert len(sd["sourceServiceRevisions"]) == 1 and sd["sourceServiceRevisions"][0]["arn"] != target["arn"], sd

    listed = service_deployments(cluster, name)
    mine = [b for b in listed if b["serviceDeploymentArn"] == current]
    assert len(mine) == 1 and mine[0]["status"] == "SUCCESSFUL", listed
    assert mine[0]["targetServiceRevisionArn"] == target["arn"], mine
    # CreateService's deployment is there too, SUCCESSFUL.
    assert len(listed) == 2 and all(b["status"] == "SUCCESSFUL" for b in listed), listed


# ---------------------------------------------------------------------------------------------------------
# 4. circuit breaker: a revision that cannot start rolls back


def test_circuit_breaker_rolls_back_a_deployment_that_cannot_start(cluster):
    v1 = cluster.register(version="v1")
    bad = cluster.register(image=MISSING_IMAGE, version="bad")
    name = uniq("breaker")
    cluster.create(name, v1, 1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "minimumHealthyPercent": 100, "maximumPercent": 200})
    svc, _ = cluster.wait_steady(name, 1, v1)
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    first = svc["deployments"][0]["id"]

    updated = cluster.update(name, taskDefinition=bad)
    bad_id = updated["deployments"][0]["id"]
    assert updated["deployments"][0]["taskDefinition"] == bad and bad_id != first

    seen_failed: list[dict] = []
    history: list = []

    def rolled_back():
        s = cluster.describe(name)
        deps = s["deployments"]
        if not history or history[-1] != [dep_brief(d) for d in deps]:
            history.append([dep_brief(d) for d in deps])
        seen_failed.extend(d for d in deps if d["id"] == bad_id and d.get("rolloutState") == "FAILED")
        tasks = cluster.tasks(serviceName=name)
        ok = (len(deps) == 1 and deps[0]["id"] != bad_id and deps[0]["taskDefinition"] == v1
              and deps[0]["rolloutState"] == "COMPLETED" and s["runningCount"] == 1 and len(tasks) == 1
              and tasks[0]["lastStatus"] == "RUNNING" and tasks[0]["taskDefinitionArn"] == v1)
        return s if ok else None
    try:
        svc = eventually(180, rolled_back, "the failed deployment never rolled back to v1", interval=0.1)
    finally:
        print("deployments as they changed:", *history, sep="\n  ")
    assert svc["taskDefinition"] == v1, svc_brief(svc)
    # Its tasks never started: each one STOPPED for the missing image.
    bad_tasks = cluster.tasks(desired="STOPPED", startedBy=bad_id)
    assert len(bad_tasks) >= 3, [task_brief(t) for t in bad_tasks]
    for t in bad_tasks:
        assert t["taskDefinitionArn"] == bad and t["stopCode"] == "TaskFailedToStart", task_brief(t)
        assert t["stoppedReason"].startswith("CannotPullContainerError"), task_brief(t)
    assert [m for m in messages(svc) if f"(deployment {bad_id})" in m and "failed" in m], messages(svc)

    # The service deployment of the update: rolled back.
    listed = service_deployments(cluster, name)
    rolled = [b for b in listed if b["status"] == "ROLLBACK_SUCCESSFUL"]
    assert len(rolled) == 1, listed
    [sd] = cluster.ecs.describe_service_deployments(
        serviceDeploymentArns=[rolled[0]["serviceDeploymentArn"]])["serviceDeployments"]
    assert sd["status"] == "ROLLBACK_SUCCESSFUL", sd
    breaker = sd["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["failureCount"] >= 3 and breaker["threshold"] == 3, sd
    assert sd["rollback"]["serviceRevisionArn"] and sd["rollback"].get("startedAt") is not None, sd
    assert svc.get("currentServiceDeployment") == sd["serviceDeploymentArn"], svc.get("currentServiceDeployment")

    # While the rollback ran, DescribeServices showed the failed deployment (ACTIVE, rolloutState FAILED).
    assert seen_failed, f"the deployment {bad_id} was never seen with rolloutState FAILED: {history}"
    failed = seen_failed[-1]
    assert failed["failedTasks"] >= 3, dep_brief(failed)
    assert "circuit breaker" in (failed.get("rolloutStateReason") or ""), failed


# ---------------------------------------------------------------------------------------------------------
# 5. capacity provider strategy: base and weights


def test_capacity_provider_strategy_spreads_tasks_by_base_and_weight(make_cluster):
    c = make_cluster(capacityProviders=["FARGATE", "FARGATE_SPOT"])
    td = c.register()
    name = uniq("spot")
    strategy = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
    svc = c.create(name, td, 5, capacityProviderStrategy=strategy)
    normal = [{"capacityProvider": "FARGATE", "weight": 1, "base": 1},
              {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 0}]

    def norm(items):
        return [{**i, "base": i.get("base", 0)} for i in items]
    assert norm(svc["capacityProviderStrategy"]) == normal, svc["capacityProviderStrategy"]
    assert "launchType" not in svc, svc.get("launchType")
    assert norm(svc["deployments"][0]["capacityProviderStrategy"]) == normal, svc["deployments"][0]
    svc, tasks = c.wait_steady(name, 5, td)
    assert norm(svc["capacityProviderStrategy"]) == normal
    split = {}
    for t in tasks:
        split[t["capacityProviderName"]] = split.get(t["capacityProviderName"], 0) + 1
        assert t["launchType"] == "FARGATE", task_brief(t)
    assert split == {"FARGATE": 2, "FARGATE_SPOT": 3}, split


# ---------------------------------------------------------------------------------------------------------
# 6. many tasks on one node


@pytest.mark.slow
def test_200_task_service_converges(cluster):
    td = cluster.register()
    name = uniq("many")
    began = time.monotonic()
    cluster.create(name, td, 200)

    def running_200():
        s = cluster.describe(name)
        assert s["runningCount"] == 200, svc_brief(s)
        return s
    eventually(180, running_200, "200 tasks never RUNNING", interval=1)
    up = time.monotonic() - began
    svc, tasks = cluster.wait_steady(name, 200, td, timeout=30)
    assert len({t["taskArn"] for t in tasks}) == 200
    assert not cluster.tasks(desired="STOPPED"), "tasks were stopped (and replaced) on the way to 200"

    began = time.monotonic()
    cluster.update(name, desiredCount=0)
    arns = [t["taskArn"] for t in tasks]

    def drained():
        s = cluster.describe(name)
        assert (s["runningCount"], s["pendingCount"]) == (0, 0), svc_brief(s)
        assert not cluster.task_arns(), "tasks still desired RUNNING"
        return s
    eventually(180, drained, "the service never drained to 0", interval=1)
    stopped = cluster.wait_stopped(arns, timeout=180)
    down = time.monotonic() - began
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in stopped), \
        [task_brief(t) for t in stopped if t["stopCode"] != "ServiceSchedulerInitiated"][:3]
    print(f"200 tasks: RUNNING in {up:.1f} s, all STOPPED {down:.1f} s after desiredCount 0")


# ---------------------------------------------------------------------------------------------------------
# 7. kill -9 of the server in the middle of a deployment


def test_deployment_finishes_after_server_kill9(busybox, make_server):
    srv = make_server("services-restart")
    e = Env(srv, busybox)
    c = Cluster(e)
    try:
        v1 = c.register(health=True, version="v1")
        v2 = c.register(health=True, version="v2")
        name = uniq("restart")
        desired, maximum = 2, 150
        max_live = desired * maximum // 100  # ECS rounds maximumPercent down: 3
        c.create(name, v1, desired,
                 deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": maximum})
        svc, old = c.wait_steady(name, desired, v1, healthy=True)
        first = svc["deployments"][0]["id"]
        old_arns = {t["taskArn"] for t in old}

        watch = RolloutWatch(c, name)
        new = c.update(name, taskDefinition=v2)["deployments"][0]["id"]

        def a_v2_task_runs():
            _, tasks = watch.sample(desired, max_live)
            return any(t["startedBy"] == new and t["lastStatus"] == "RUNNING" for t in tasks)
        eventually(START_TIMEOUT, a_v2_task_runs, "no task of the new deployment ever RUNNING", interval=0.1)

        srv.kill9_and_restart()
        e.refresh()

        def sample_until_done():
            svc, tasks = watch.sample(desired, max_live)
            return svc if rollout_done(svc, v2, desired, tasks) else None
        svc = eventually(ROLLOUT_TIMEOUT, sample_until_done, "the deployment never finished after the restart",
                         interval=0.1)
        print(f"rollout across a restart: {watch.samples} samples, fewest healthy {watch.min_healthy}, "
              f"most live {watch.max_live}")
        watch.check(desired, max_live)
        assert svc["deployments"][0]["id"] == new, "the restart made a new deployment"

        # None double-started: every task the cluster ever had belongs to one of the two deployments, which
        # started exactly `desired` each; none forgotten: the old ones all STOPPED, the new ones all RUNNING.
        everything = c.all_tasks()
        by_deployment: dict[Optional[str], list[dict]] = {}
        for t in everything:
            by_deployment.setdefault(t.get("startedBy"), []).append(t)
        briefs = {k: [task_brief(t) for t in v] for k, v in by_deployment.items()}
        assert set(by_deployment) == {first, new}, briefs
        assert {t["taskArn"] for t in by_deployment[first]} == old_arns, briefs
        assert len(by_deployment[new]) == desired, briefs
        assert all(t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING" for t in by_deployment[new]), \
            briefs
        assert set(watch.seen) <= {t["taskArn"] for t in everything}
        for t in c.wait_stopped(sorted(old_arns)):
            assert t["stopCode"] == "ServiceSchedulerInitiated", task_brief(t)
    except BaseException:
        if srv.running():
            try:
                c.cleanup()
            except Exception as e:  # noqa: BLE001 - the test's own failure is the one to report
                print(f"cleanup after the failure failed too: {e}")
        raise
    c.cleanup()


# ---------------------------------------------------------------------------------------------------------
# 8. DeleteService: DRAINING, then INACTIVE, quickly


def test_delete_service_goes_inactive_quickly_and_stays_describable(cluster):
    td = cluster.register()
    name = uniq("gone")
    arn = cluster.create(name, td, 1)["serviceArn"]
    _, [task] = cluster.wait_steady(name, 1, td)
    assert arn in cluster.ecs.list_services(cluster=cluster.name)["serviceArns"]

    cluster.update(name, desiredCount=0)
    began = time.monotonic()
    deleted = cluster.ecs.delete_service(cluster=cluster.name, service=name)["service"]
    assert deleted["serviceArn"] == arn and deleted["status"] == "DRAINING", svc_brief(deleted)
    # ListServices shows ACTIVE services only.
    assert arn not in cluster.ecs.list_services(cluster=cluster.name)["serviceArns"]

    def inactive():
        s = cluster.describe(name)
        assert s["status"] == "INACTIVE", svc_brief(s)
        return s
    svc = eventually(30, inactive, f"service {name} never INACTIVE", interval=0.05)
    took = time.monotonic() - began
    print(f"DeleteService -> INACTIVE in {took:.2f} s")
    assert took < 10, f"DeleteService took {took:.1f} s to reach INACTIVE"
    assert svc["serviceArn"] == arn and svc["serviceName"] == name and svc["desiredCount"] == 0, svc_brief(svc)
    # ECS: a DRAINING service goes INACTIVE once all its tasks are STOPPING or STOPPED.
    [t] = cluster.describe_tasks([task["taskArn"]])
    assert t["desiredStatus"] == "STOPPED" and t["lastStatus"] in ("STOPPING", "DEPROVISIONING", "STOPPED"), \
        task_brief(t)
    assert arn not in cluster.ecs.list_services(cluster=cluster.name)["serviceArns"]
    assert cluster.ecs.describe_services(cluster=cluster.name, services=[arn])["services"][0]["status"] == "INACTIVE"

    # Once its task is STOPPED, nothing keeps the cluster.
    cluster.wait_stopped([task["taskArn"]])
    cluster.ecs.delete_cluster(cluster=cluster.name)
    cluster.deleted = True


# ---------------------------------------------------------------------------------------------------------
# 9. the AWS CLI's waiter


def test_aws_cli_wait_services_stable(cluster):
    td = cluster.register()
    name = uniq("stable")
    cluster.create(name, td, 2)
    out = cluster.env.server.aws("ecs", "wait", "services-stable", "--cluster", cluster.name, "--services", name,
                                 timeout=300)
    assert out is None
    svc = cluster.describe(name)
    assert svc["runningCount"] == 2 and len(svc["deployments"]) == 1, svc_brief(svc)


# ---------------------------------------------------------------------------------------------------------
# 10. API errors as ECS gives them


def test_create_service_in_an_unknown_cluster(cluster):
    td = cluster.register()
    req = cluster.create_request("orphan", td, 0)
    req["cluster"] = uniq("no-such-cluster")
    e = client_error(cluster.ecs.create_service, **req)
    assert error_code(e) == "ClusterNotFoundException", e.response
    e = client_error(cluster.ecs.describe_services, cluster=req["cluster"], services=["orphan"])
    assert error_code(e) == "ClusterNotFoundException", e.response


def test_create_service_idempotency(cluster):
    td = cluster.register()
    name = uniq("idem")
    token = uniq("token")
    first = cluster.create(name, td, 0, clientToken=token)
    again = cluster.create(name, td, 0, clientToken=token)
    assert again["serviceArn"] == first["serviceArn"]
    assert again["createdAt"] == first["createdAt"]
    assert [d["id"] for d in again["deployments"]] == [d["id"] for d in first["deployments"]]
    arns = cluster.ecs.list_services(cluster=cluster.name)["serviceArns"]
    assert arns == [first["serviceArn"]], arns

    e = client_error(cluster.ecs.create_service, **cluster.create_request(name, td, 1))
    assert error_code(e) == "InvalidParameterException", e.response
    assert e.response["Error"]["Message"] == "Creation of service was not idempotent.", e.response
    assert cluster.describe(name)["desiredCount"] == 0


def test_unknown_service_is_not_found_and_missing(cluster):
    missing = uniq("nobody")
    e = client_error(cluster.ecs.update_service, cluster=cluster.name, service=missing, desiredCount=1)
    assert error_code(e) == "ServiceNotFoundException", e.response
    e = client_error(cluster.ecs.delete_service, cluster=cluster.name, service=missing)
    assert error_code(e) == "ServiceNotFoundException", e.response
    resp = cluster.ecs.describe_services(cluster=cluster.name, services=[missing])
    assert resp["services"] == []
    assert resp["failures"] == [{"arn": cluster.service_arn(missing), "reason": "MISSING"}], resp["failures"]


def test_delete_refusals_and_updates_of_deleted_services(cluster):
    td = cluster.register()
    busy = uniq("busy")
    cluster.create(busy, td, 1)

    # A service scaled above 0 is deleted only with force.
    e = client_error(cluster.ecs.delete_service, cluster=cluster.name, service=busy)
    assert error_code(e) == "InvalidParameterException", e.response
    assert cluster.describe(busy)["status"] == "ACTIVE"

    # A cluster with an active service cannot be deleted.
    e = client_error(cluster.ecs.delete_cluster, cluster=cluster.name)
    assert error_code(e) == "ClusterContainsServicesException", e.response

    # A deleted service (DRAINING, then INACTIVE) cannot be updated.
    deleted = cluster.ecs.delete_service(cluster=cluster.name, service=busy, force=True)["service"]
    assert deleted["status"] == "DRAINING", svc_brief(deleted)
    e = client_error(cluster.ecs.update_service, cluster=cluster.name, service=busy, desiredCount=2)
    assert error_code(e) == "ServiceNotActiveException", e.response

    def inactive():
        assert cluster.describe(busy)["status"] == "INACTIVE"
        return True
    eventually(30, inactive, f"service {busy} never INACTIVE", interval=0.1)
    e = client_error(cluster.ecs.update_service, cluster=cluster.name, service=busy, desiredCount=2)
    assert error_code(e) == "ServiceNotActiveException", e.response

    # The name of an INACTIVE service is free again: CreateService makes a new ACTIVE service.
    again = cluster.create(busy, td, 0)
    assert again["status"] == "ACTIVE" and again["serviceArn"] == deleted["serviceArn"], svc_brief(again)
    assert again["deployments"][0]["id"] != deleted["deployments"][0]["id"], svc_brief(again)
    assert cluster.describe(busy)["status"] == "ACTIVE"
