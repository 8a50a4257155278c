"""`skiff services` and `skiff deploy` against a real server running real service tasks: the busybox test
image is pushed to the server's registry under two tags, services are created with boto3 (as a user would
with the AWS CLI or Terraform), and the `skiff` CLI lists them, describes them, shows their events, deploys a
new image and follows the rollout to COMPLETED, and reports a rollout the circuit breaker rolled back (an
image that does not exist) with exit status 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import harness
from harness import ACCOUNT_ID, SKIFF_BIN, eventually, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole"
# Generous: CI has two cores and every service here starts real containers.
TIMEOUT = 90
# A shell that idles until SIGTERM and then exits 0 at once, so replaced tasks stop without delay.
IDLE = "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root"),
]


# ---------------------------------------------------------------------------------------------------------
# fixtures: the image under two tags, a cluster, a subnet


@pytest.fixture(scope="module")
def repo(server):
    """`HOST:PORT/REPO` holding the busybox image as :v1 and :v2 (the same image under another tag)."""
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-services-"))
    name = uniq("svc")
    ecr = server.client("ecr")
    ecr.create_repository(repositoryName=name)
    try:
        built = oci_image.build_busybox(root / "busybox", "single", "latest")
        for tag in ("v1", "v2"):
            harness.skopeo_push(server, built.ref, name, tag)
        yield f"{server.address}/{name}"
    finally:
        shutil.rmtree(root, ignore_errors=True)
        try:
            ecr.delete_repository(repositoryName=name, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass


@pytest.fixture(scope="module")
def cluster(ecs):
    name = uniq("svc")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture(scope="module")
def subnet(server):
    ec2 = server.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]


class Services:
    """Creates services (each with its own task definition family); scales them to 0 and deletes them at the
    end, even when the test fails."""

    def __init__(self, ecs, cluster: str, subnet: str, repo: str):
        self.ecs, self.cluster, self.subnet, self.repo = ecs, cluster, subnet, repo
        self.names: list[str] = []

    def create(self, *, desired: int = 1, containers=None, breaker: bool = False, tags=None) -> tuple[str, str]:
        """-> (service name, task definition family); the task definition's one container is `app`."""
        family = uniq("svc-td")
        td = harness.fargate_task_definition(
            family, executionRoleArn=EXECUTION_ROLE,
            containerDefinitions=containers or [
                {"name": "app", "image": f"{self.repo}:v1", "essential": True, "command": ["sh", "-c", IDLE]}])
        if tags:
            td["tags"] = tags
        self.ecs.register_task_definition(**td)
        name = uniq("svc")
        config = {"minimumHealthyPercent": 100, "maximumPercent": 200}
        if breaker:
            config["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
        self.ecs.create_service(
            cluster=self.cluster, serviceName=name, taskDefinition=family, desiredCount=desired,
            launchType="FARGATE", deploymentConfiguration=config,
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet]}})
        self.names.append(name)
        return name, family

    def describe(self, name: str) -> dict:
        return self.ecs.describe_services(cluster=self.cluster, services=[name])["services"][0]

    def wait_steady(self, name: str, running: int) -> dict:
        def steady():
            s = self.describe(name)
            primary = s["deployments"][0]
            return (s["runningCount"] == running and len(s["deployments"]) == 1
                    and primary.get("rolloutState") == "COMPLETED" and s)
        return eventually(TIMEOUT, steady, f"service {name} never ran {running} tasks steadily", interval=0.2)

    def cleanup(self) -> None:
        for name in self.names:
            try:
                self.ecs.update_service(cluster=self.cluster, service=name, desiredCount=0)
                self.ecs.delete_service(cluster=self.cluster, service=name, force=True)
            except Exception:  # noqa: BLE001 - best effort
                pass


@pytest.fixture
def services(ecs, cluster, subnet, repo):
    made = Services(ecs, cluster, subnet, repo)
    yield made
    made.cleanup()


def skiff(server, *args, timeout=TIMEOUT + 60) -> subprocess.CompletedProcess:
    ak, sk = server.credentials()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk}
    return subprocess.run([str(SKIFF_BIN), *args, "--endpoint", server.endpoint], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def table_rows(out: str) -> dict[str, list[str]]:
    """The rows of a `skiff … ls` table by their first cell (cells hold no spaces here)."""
    lines = out.splitlines()
    return {cells[0]: cells for cells in (line.split() for line in lines[1:])}


# ---------------------------------------------------------------------------------------------------------
# skiff services


def test_services_ls_describe_and_events(server, cluster, services):
    name, family = services.create(desired=1)
    services.wait_steady(name, 1)

    out = ok(skiff(server, "services", "ls", "--cluster", cluster))
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK", "DEFINITION",
                                           "ROLLOUT"], out
    assert table_rows(out)[name] == [name, "ACTIVE", "1", "1", "0", f"{family}:1", "COMPLETED"], out
    # `ls` is the default, and --cluster may come first.
    assert table_rows(ok(skiff(server, "services", "--cluster", cluster)))[name] == table_rows(out)[name]
    listed = json.loads(ok(skiff(server, "services", "ls", "--cluster", cluster, "-o", "json")))
    assert f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_ID}:service/{cluster}/{name}" in listed["serviceArns"], listed

    described = ok(skiff(server, "services", "describe", name, "--cluster", cluster))
    assert f"name:             {name}\n" in described, described
    assert "deployments:\n" in described and "PRIMARY" in described and f"{family}:1" in described, described
    raw = json.loads(ok(skiff(server, "services", "describe", name, "--cluster", cluster, "-o", "json")))
    assert raw["services"][0]["serviceName"] == name and raw["failures"] == [], raw

    events = ok(skiff(server, "services", "events", name, "--cluster", cluster))
    assert events.splitlines()[0].split() == ["TIME", "MESSAGE"], events
    assert f"(service {name}) has started 1 tasks" in events, events

    missing = skiff(server, "services", "describe", "no-such-svc", "--cluster", cluster)
    assert missing.returncode == 1
    assert f"service no-such-svc not found in cluster {cluster}" in missing.stderr, missing.stderr


# ---------------------------------------------------------------------------------------------------------
# skiff deploy


def test_deploy_follows_the_rollout_to_completed(server, ecs, cluster, services, repo):
    name, family = services.create(desired=1, tags=[{"key": "team", "value": "core"}])
    services.wait_steady(name, 1)

    out = ok(skiff(server, "deploy", name, "--cluster", cluster, "--image", f"{repo}:v2"))
    assert f"registered {family}:2 from {family}:1: container app image {repo}:v1 -> {repo}:v2" in out, out
    lines = out.splitlines()
    assert any(f"{family}:2  running 1/1  pending 0  failed 0  COMPLETED" in line for line in lines), out
    assert f"completed: service {name} runs {family}:2 (1/1 tasks running)" in lines[-1], out
    # Off a terminal each progress line is printed once, and each event once.
    progress = [line for line in lines if line.startswith("ecs-svc/")]
    assert len(progress) == len(set(progress)), out
    assert any("deployment completed" in line for line in lines), out

    service = services.describe(name)
    assert service["taskDefinition"] == harness.task_definition_arn(family, 2), service
    td = ecs.describe_task_definition(taskDefinition=f"{family}:2", include=["TAGS"])
    assert td["taskDefinition"]["containerDefinitions"][0]["image"] == f"{repo}:v2"
    assert td["taskDefinition"]["containerDefinitions"][0]["command"] == ["sh", "-c", IDLE]
    assert harness.tags_dict(td["tags"]) == {"team": "core"}
    eventually(TIMEOUT, lambda: len(services.describe(name)["deployments"]) == 1, "the old deployment never went away")


def test_deploy_of_a_missing_image_fails_and_says_it_rolled_back(server, cluster, services, repo):
    name, family = services.create(desired=1, breaker=True)
    services.wait_steady(name, 1)

    proc = skiff(server, "deploy", name, "--cluster", cluster, "--image", f"{repo}:no-such-tag")
    assert proc.returncode == 1, f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    error = proc.stderr
    assert f"of {family}:2 to service {name} failed: " in error and "circuit breaker" in error, error
    # The failure is named: why the new deployment's last task stopped.
    assert "stopped: CannotPullContainerError" in error, error
    assert f"the service was rolled back to {family}:1" in error, error
    # The service's events were printed as they came, the failure among them.
    assert "deployment failed: tasks failed to start" in proc.stdout, proc.stdout
    # The service goes back to the old definition.
    service = services.describe(name)
    assert service["taskDefinition"] == harness.task_definition_arn(family, 1), service


def test_deploy_errors_name_what_failed(server, cluster, services, repo):
    proc = skiff(server, "deploy", "no-such-svc", "--cluster", cluster, "--image", f"{repo}:v2")
    assert proc.returncode == 1
    assert f"service no-such-svc not found in cluster {cluster}" in proc.stderr, proc.stderr
    assert f"skiff services ls --cluster {cluster}" in proc.stderr, proc.stderr
    proc = skiff(server, "services", "ls", "--cluster", "no-such-cluster-svc")
    assert proc.returncode == 1
    assert "cluster no-such-cluster-svc not found" in proc.stderr and "skiff clusters ls" in proc.stderr, proc.stderr

    # Two containers and no --container: nothing is registered, the names are listed. (desiredCount 0: no
    # task needs to run for this.)
    name, family = services.create(desired=0, containers=[
        {"name": "app", "image": f"{repo}:v1", "essential": True, "command": ["sh", "-c", IDLE]},
        {"name": "side", "image": f"{repo}:v1", "essential": False, "command": ["true"]}])
    proc = skiff(server, "deploy", name, "--cluster", cluster, "--image", f"{repo}:v2")
    assert proc.returncode == 1
    assert f"task definition {family}:1 has 2 containers (app, side)" in proc.stderr, proc.stderr
    assert "--container NAME" in proc.stderr, proc.stderr
    proc = skiff(server, "deploy", name, "--cluster", cluster, "--image", f"{repo}:v2", "--container", "nope")
    assert proc.returncode == 1 and "has no container nope (its containers: app, side)" in proc.stderr, proc.stderr

    # --no-wait returns once the service is updated.
    out = ok(skiff(server, "deploy", name, "--cluster", cluster, "--image", f"{repo}:v2", "--container", "side",
                   "--no-wait"))
    assert f"updated service {name} (cluster {cluster}) to {family}:2" in out, out
    assert services.describe(name)["taskDefinition"] == harness.task_definition_arn(family, 2)
