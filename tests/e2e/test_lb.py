"""Elastic Load Balancing v2, the data plane: load balancers built through the AWS CLI and boto3 really
forward traffic to Skiff tasks. Each load balancer listens on its own address 127.200.x.y (its DNSName);
the backends are tasks started with RunTask running busybox httpd (a CGI script prints the request headers
the target saw) or a busybox `nc` echo server, registered by their private IPv4 address.

Expected behaviour comes from AWS's documentation of Application and Network Load Balancers (health check
states and reason codes, fail-open routing, X-Forwarded-* headers, rule actions, deregistration delay, the
load balancer's own error pages with `Server: awselb/2.0`), never from what the server happens to answer.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import pytest

import harness
from harness import ACCOUNT_ID, REGION, SkiffServer, destroy, eventually, new_server, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
REPO_NAME = "busybox-lb"
IMAGE = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/{REPO_NAME}:latest"

START_TIMEOUT = 90
# Health checks every 5 s, 2 to turn healthy or unhealthy: a state change takes at most ~2 intervals.
HEALTH_TIMEOUT = 40
HEALTH = {"HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2, "HealthyThresholdCount": 2,
          "UnhealthyThresholdCount": 2}

WEB_PORT = 8080
ECHO_PORT = 9000

# The web backend: `/` names the task, `/api/` too (another body), `/cgi-bin/env` prints the CGI
# environment (busybox httpd passes every request header as HTTP_*), `/cgi-bin/slow` answers after 5 s.
WEB_SCRIPT = (
    "mkdir -p /www/api /www/cgi-bin"
    " && echo \"hello from $(hostname)\" > /www/index.html"
    " && echo \"api from $(hostname)\" > /www/api/index.html"
    " && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nenv\\necho SKIFF_HOSTNAME=$(hostname)\\n'"
    " > /www/cgi-bin/env"
    " && printf '#!/bin/sh\\nsleep 5\\necho Content-Type: text/plain\\necho\\necho slow from $(hostname)\\n'"
    " > /www/cgi-bin/slow"
    " && chmod 755 /www/cgi-bin/env /www/cgi-bin/slow"
    f" && exec httpd -f -p {WEB_PORT} -h /www"
)
# busybox nc: `-ll` with `-e` is its persistent server (a `cat` per connection).
ECHO_SCRIPT = f"exec nc -ll -p {ECHO_PORT} -e cat"

ALB_SERVER = "awselb/2.0"
TRACE_ID = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}")

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="running containers needs root"),
]


# ---------------------------------------------------------------------------------------------------------
# the backends: one server, five tasks, shared by every test (none of them is changed by a test except the
# victim, which only the kill test uses)


class Backend:
    def __init__(self, name: str, arn: str, ip: str):
        self.name = name
        self.arn = arn
        self.ip = ip
        self.hostname = ""

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]

    def __repr__(self) -> str:
        return f"<{self.name} {self.ip} {self.hostname}>"


class Lab:
    def __init__(self, server: SkiffServer):
        self.server = server
        self.ecs = server.client("ecs")
        self.elb = server.client("elbv2")
        ec2 = server.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
        self.vpc = vpc["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [self.vpc]}])["Subnets"]
        self.subnets = sorted(s["SubnetId"] for s in subnets)
        self.cluster = uniq("lb")
        self.ecs.create_cluster(clusterName=self.cluster)
        self.web: dict[str, Backend] = {}
        self.echo: Optional[Backend] = None

    def aws(self, *args: str) -> Any:
        return harness.run_aws(self.server, *args)

    def register(self, name: str, script: str, port: int) -> str:
        return self.ecs.register_task_definition(
            family=uniq(name),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[{"name": name, "image": IMAGE, "command": ["sh", "-c", script],
                                   "portMappings": [{"containerPort": port}]}],
        )["taskDefinition"]["taskDefinitionArn"]

    def run(self, td: str, count: int) -> list[str]:
        resp = self.ecs.run_task(cluster=self.cluster, taskDefinition=td, count=count, launchType="FARGATE",
                                 networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnets[0]]}})
        assert resp["failures"] == [], resp["failures"]
        return [t["taskArn"] for t in resp["tasks"]]

    def wait_running(self, arns: list[str]) -> dict[str, str]:
        """Waits until every task is RUNNING; returns task ARN → private IPv4 address."""
        def check():
            tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]
            stopped = [(t["taskArn"], t.get("stoppedReason")) for t in tasks if t["lastStatus"] == "STOPPED"]
            assert not stopped, f"tasks stopped before RUNNING: {stopped}"
            if len(tasks) != len(arns) or any(t["lastStatus"] != "RUNNING" for t in tasks):
                return None
            return {t["taskArn"]: private_ip(t) for t in tasks}
        return eventually(START_TIMEOUT, check, f"tasks {arns} never all RUNNING", interval=0.25)

    def describe_task(self, arn: str) -> dict:
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"][0]


def private_ip(task: dict) -> str:
    [eni] = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    details = {d["name"]: d["value"] for d in eni["details"]}
    return details["privateIPv4Address"]


def direct_get(ip: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection(ip, WEB_PORT, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def echo_roundtrip(addr: tuple[str, int], payload: bytes, timeout: float = 10) -> bytes:
    """Sends `payload`, half-closes, and reads until the peer closes."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def lab():
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-lb-image-"))
    srv = new_server("lb")
    try:
        image = oci_image.build_busybox(root / "single", "single", "latest")
        srv.start()
        srv.client("ecr").create_repository(repositoryName=REPO_NAME)
        harness.skopeo_push(srv, image.ref, REPO_NAME, "latest")
        lab = Lab(srv)
        web_arns = lab.run(lab.register("web", WEB_SCRIPT, WEB_PORT), 4)
        echo_arns = lab.run(lab.register("echo", ECHO_SCRIPT, ECHO_PORT), 1)
        ips = lab.wait_running(web_arns + echo_arns)
        for name, arn in zip(["web1", "web2", "web3", "victim"], web_arns):
            lab.web[name] = Backend(name, arn, ips[arn])
        lab.echo = Backend("echo", echo_arns[0], ips[echo_arns[0]])
        assert len(set(ips.values())) == 5, f"tasks share addresses: {ips}"
        for b in lab.web.values():
            status, body = eventually(30, lambda: direct_get(b.ip), f"{b.name} ({b.ip}:{WEB_PORT}) never answered")
            assert status == 200 and body.startswith("hello from "), (b, status, body)
            b.hostname = body.strip().removeprefix("hello from ")
        names = [b.hostname for b in lab.web.values()]
        assert len(set(names)) == 4, f"the tasks' hostnames are not distinct: {names}"
        eventually(30, lambda: echo_roundtrip((lab.echo.ip, ECHO_PORT), b"ping") == b"ping",
                   f"the echo task ({lab.echo.ip}:{ECHO_PORT}) never echoed")
        yield lab
    finally:
        destroy(srv)
        shutil.rmtree(root, ignore_errors=True)


class Resources:
    """What one test created, deleted by ARN afterwards even when the test failed: load balancers first
    (their listeners and rules go with them), then the target groups they freed."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.load_balancers: list[str] = []
        self.target_groups: list[str] = []

    def cleanup(self) -> None:
        errors = []
        for arn in self.load_balancers:
            try:
                self.lab.elb.delete_load_balancer(LoadBalancerArn=arn)
            except Exception as e:  # noqa: BLE001 - report every failure, delete the rest
                errors.append(f"delete {arn}: {e}")
        for arn in self.target_groups:
            try:
                self.lab.elb.delete_target_group(TargetGroupArn=arn)
            except Exception as e:  # noqa: BLE001
                errors.append(f"delete {arn}: {e}")
        assert not errors, errors


@pytest.fixture
def res(lab):
    r = Resources(lab)
    yield r
    r.cleanup()


# ---------------------------------------------------------------------------------------------------------
# helpers


def new_alb(lab: Lab, res: Resources) -> dict:
    lb = lab.elb.create_load_balancer(Name=uniq("alb"), Subnets=lab.subnets)["LoadBalancers"][0]
    res.load_balancers.append(lb["LoadBalancerArn"])
    return lb


def new_tg(lab: Lab, res: Resources, targets: list[Backend | tuple[str, int]], protocol: str = "HTTP",
           port: int = WEB_PORT, delay: int = 2, **kw: Any) -> str:
    args = dict(HEALTH)
    args.update(kw)
    arn = lab.elb.create_target_group(Name=uniq("tg"), Protocol=protocol, Port=port, VpcId=lab.vpc,
                                      TargetType="ip", **args)["TargetGroups"][0]["TargetGroupArn"]
    res.target_groups.append(arn)
    lab.elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    if targets:
        lab.elb.register_targets(TargetGroupArn=arn, Targets=[target(t) for t in targets])
    return arn


def target(t: Backend | tuple[str, int]) -> dict:
    if isinstance(t, Backend):
        return {"Id": t.ip, "Port": WEB_PORT}
    return {"Id": t[0], "Port": t[1]}


def forward(tg: str) -> list[dict]:
    return [{"Type": "forward", "TargetGroupArn": tg}]


def new_listener(lab: Lab, lb: dict, actions: list[dict], protocol: str = "HTTP") -> Addr:
    """A listener on a free port of the load balancer's address; returns where it listens."""
    port = free_port(lb["DNSName"])
    lab.elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=port,
                            DefaultActions=actions)
    return lb["DNSName"], port


def health(lab: Lab, tg: str) -> dict[str, dict]:
    """DescribeTargetHealth: target address → TargetHealth."""
    out = lab.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"] for d in out}


def wait_health(lab: Lab, tg: str, want: dict[str, str], timeout: float = HEALTH_TIMEOUT) -> dict[str, dict]:
    """Waits until DescribeTargetHealth reports each address in `want` in that state."""
    def check():
        h = health(lab, tg)
        got = {ip: h.get(ip, {}).get("State") for ip in want}
        assert got == want, f"states {got}, want {want}: {h}"
        return h
    return eventually(timeout, check, f"target group {tg} never reached {want}", interval=0.25)


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, will_close: bool):
        self.status = status
        self.headers = headers
        self.body = body
        self.will_close = will_close

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def env(self) -> dict[str, str]:
        """The CGI environment /cgi-bin/env printed."""
        return dict(line.split("=", 1) for line in self.text.splitlines() if "=" in line)

    def __repr__(self) -> str:
        return f"<HTTP {self.status} {dict(self.headers)} {self.body[:300]!r}>"


Addr = tuple[str, int]


def free_port(host: str) -> int:
    """A port nothing listens on at `host` now, for a listener (ports are picked so that tests never depend
    on port 80 being free on the host)."""
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


_HANDED_OUT: set[int] = set()


class Client:
    """HTTP/1.1 to a load balancer from 127.0.0.1, one keep-alive connection (reopened when the balancer
    closes it)."""

    def __init__(self, addr: Addr, timeout: float = 15):
        self.conn = http.client.HTTPConnection(*addr, timeout=timeout, source_address=("127.0.0.1", 0))

    def get(self, path: str, headers: Optional[dict] = None) -> Reply:
        try:
            self.conn.request("GET", path, headers=headers or {})
            r = self.conn.getresponse()
            return Reply(r.status, r.headers, r.read(), r.will_close)
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()


def get(addr: Addr, path: str, headers: Optional[dict] = None) -> Reply:
    c = Client(addr)
    try:
        return c.get(path, headers)
    finally:
        c.close()


def served_by(reply: Reply, lab: Lab) -> str:
    """The backend (web1, …) whose page this is."""
    assert reply.status == 200, f"expected a page from a task, got {reply}"
    for b in lab.web.values():
        if reply.text.strip().endswith(b.hostname):
            return b.name
    raise AssertionError(f"no task's hostname in {reply}")


def spread(lab: Lab, addr: Addr, n: int = 20, path: str = "/") -> dict[str, int]:
    """`n` requests over one connection: backend name → how many it served."""
    c = Client(addr)
    counts: dict[str, int] = {}
    try:
        for _ in range(n):
            name = served_by(c.get(path), lab)
            counts[name] = counts.get(name, 0) + 1
    finally:
        c.close()
    return counts


def task_cgroup_procs(task_id: str) -> list[int]:
    """Pids in the task's cgroups (every hierarchy, v1 or v2)."""
    root = Path("/sys/fs/cgroup")
    pids: set[int] = set()
    for d in [root, *[p for p in root.iterdir() if p.is_dir()]]:
        base = d / "skiff" / task_id
        if base.is_dir():
            for f in base.rglob("cgroup.procs"):
                pids.update(int(p) for p in f.read_text().split())
    return sorted(pids)


def sleeping(b: Backend) -> bool:
    """Whether a `sleep` (the slow CGI script's) runs in the task."""
    for pid in task_cgroup_procs(b.task_id):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == b"sleep" or any(a.endswith(b"cgi-bin/slow") or a == b"slow" for a in argv):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------
# 1. an ALB built with the AWS CLI spreads requests over its healthy targets and forwards as ALB does


def test_alb_built_with_the_cli_spreads_requests_over_healthy_tasks(lab, res):
    web1, web2 = lab.web["web1"], lab.web["web2"]
    lb = lab.aws("elbv2", "create-load-balancer", "--name", uniq("cli"), "--type", "application",
                 "--subnets", *lab.subnets)["LoadBalancers"][0]
    res.load_balancers.append(lb["LoadBalancerArn"])
    host = lb["DNSName"]
    assert ipaddress.ip_address(host) in ipaddress.ip_network(lab.server.lb_cidr), lb
    tg = lab.aws("elbv2", "create-target-group", "--name", uniq("clitg"), "--protocol", "HTTP",
                 "--port", str(WEB_PORT), "--vpc-id", lab.vpc, "--target-type", "ip",
                 "--health-check-path", "/", "--health-check-interval-seconds", "5",
                 "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2",
                 "--unhealthy-threshold-count", "2")["TargetGroups"][0]
    tg_arn = tg["TargetGroupArn"]
    res.target_groups.append(tg_arn)
    lab.aws("elbv2", "modify-target-group-attributes", "--target-group-arn", tg_arn,
            "--attributes", "Key=deregistration_delay.timeout_seconds,Value=2")
    lab.aws("elbv2", "register-targets", "--target-group-arn", tg_arn,
            "--targets", f"Id={web1.ip},Port={WEB_PORT}", f"Id={web2.ip},Port={WEB_PORT}")
    # Not behind a listener yet: unused.
    before = lab.aws("elbv2", "describe-target-health", "--target-group-arn", tg_arn)["TargetHealthDescriptions"]
    assert {d["Target"]["Id"]: d["TargetHealth"].get("Reason") for d in before} == \
        {web1.ip: "Target.NotInUse", web2.ip: "Target.NotInUse"}, before
    assert all(d["TargetHealth"]["State"] == "unused" for d in before), before
    port = free_port(host)
    addr = (host, port)
    listener = lab.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"],
                       "--protocol", "HTTP", "--port", str(port),
                       "--default-actions", f"Type=forward,TargetGroupArn={tg_arn}")["Listeners"][0]
    assert listener["Port"] == port

    wait_health(lab, tg_arn, {web1.ip: "healthy", web2.ip: "healthy"})
    described = lab.aws("elbv2", "describe-target-health", "--target-group-arn", tg_arn)["TargetHealthDescriptions"]
    assert sorted((d["Target"]["Id"], d["Target"]["Port"], d["HealthCheckPort"], d["TargetHealth"]["State"])
                  for d in described) == sorted([(web1.ip, WEB_PORT, str(WEB_PORT), "healthy"),
                                                 (web2.ip, WEB_PORT, str(WEB_PORT), "healthy")]), described

    # 20 requests over one client connection: both tasks answer, each about half.
    c = Client(addr)
    counts: dict[str, int] = {}
    try:
        for i in range(20):
            r = c.get("/")
            name = served_by(r, lab)
            counts[name] = counts.get(name, 0) + 1
            # The target's own headers come through; its `Connection: close` does not (hop-by-hop): the
            # client's connection stays open.
            assert r.headers.get("ETag") and r.headers.get("Last-Modified"), r
            assert not r.will_close, f"request {i}: the load balancer closed the client connection: {r}"
    finally:
        c.close()
    assert set(counts) == {"web1", "web2"}, counts
    assert min(counts.values()) >= 5, f"20 requests spread unevenly over two healthy targets: {counts}"

    # What the target sees: X-Forwarded-For (appended to the client's), -Proto, -Port, a trace id, the
    # client's Host and path with its query.
    r = get(addr, "/cgi-bin/env?x=1&y=two", headers={"X-Forwarded-For": "203.0.113.7", "X-Custom": "kept"})
    assert r.status == 200, r
    env = r.env()
    assert env.get("HTTP_X_FORWARDED_FOR") == "203.0.113.7, 127.0.0.1", env
    assert env.get("HTTP_X_FORWARDED_PROTO") == "http", env
    assert env.get("HTTP_X_FORWARDED_PORT") == str(port), env
    assert TRACE_ID.fullmatch(env.get("HTTP_X_AMZN_TRACE_ID", "")), env
    assert env.get("HTTP_HOST") == f"{host}:{port}", env
    assert env.get("HTTP_X_CUSTOM") == "kept", env
    assert env.get("SCRIPT_NAME") == "/cgi-bin/env" and env.get("QUERY_STRING") == "x=1&y=two", env
    r = get(addr, "/cgi-bin/env")
    env = r.env()
    assert env.get("HTTP_X_FORWARDED_FOR") == "127.0.0.1", env
    # The CGI's response has no Content-Length and ends when the target closes: still delivered whole.
    assert env.get("SKIFF_HOSTNAME") in (web1.hostname, web2.hostname), env
    # A trace id the client sent: ALB keeps its Root (and any custom field) and inserts a Self field
    # (AWS: "Request tracing for your Application Load Balancer").
    sent = "Root=1-5f84c7a1-0123456789abcdef01234567;CalledFrom=app"
    r = get(addr, "/cgi-bin/env", headers={"X-Amzn-Trace-Id": sent})
    got = r.env().get("HTTP_X_AMZN_TRACE_ID", "")
    fields = dict(f.split("=", 1) for f in got.split(";") if "=" in f)
    assert fields.get("Root") == "1-5f84c7a1-0123456789abcdef01234567" and fields.get("CalledFrom") == "app", \
        f"sent X-Amzn-Trace-Id: {sent}, the target saw: {got}"
    assert re.fullmatch(r"1-[0-9a-f]{8}-[0-9a-f]{24}", fields.get("Self", "")), \
        f"sent X-Amzn-Trace-Id: {sent}; ALB inserts a Self field, the target saw: {got}"


# ---------------------------------------------------------------------------------------------------------
# 2. a task killed from outside turns unhealthy and gets no more traffic


def test_killed_task_turns_unhealthy_and_traffic_goes_to_the_other(lab, res):
    web1, victim = lab.web["web1"], lab.web["victim"]
    lb = new_alb(lab, res)
    tg = new_tg(lab, res, [web1, victim])
    addr = new_listener(lab, lb, forward(tg))
    wait_health(lab, tg, {web1.ip: "healthy", victim.ip: "healthy"})
    assert set(spread(lab, addr, 10)) == {"web1", "victim"}

    pids = task_cgroup_procs(victim.task_id)
    assert pids, f"no process in the cgroups of task {victim.task_id}"
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    h = wait_health(lab, tg, {web1.ip: "healthy", victim.ip: "unhealthy"})
    reason = h[victim.ip].get("Reason")
    assert reason in ("Target.Timeout", "Target.FailedHealthChecks"), h[victim.ip]
    assert h[victim.ip].get("Description"), h[victim.ip]
    # From now on every request goes to the healthy task: no 5xx.
    assert spread(lab, addr, 20) == {"web1": 20}
    # The task itself ended (its essential container was killed).
    t = eventually(30, lambda: (t := lab.describe_task(victim.arn))["lastStatus"] == "STOPPED" and t,
                   "the killed task never STOPPED")
    assert t["stopCode"] == "EssentialContainerExited", t


# ---------------------------------------------------------------------------------------------------------
# 3. rules: path-based forwarding, fixed responses and redirects (built with the AWS CLI)


def test_rules_route_by_path_and_answer_fixed_responses_and_redirects(lab, res):
    web1, web2, web3 = lab.web["web1"], lab.web["web2"], lab.web["web3"]
    lb = new_alb(lab, res)
    host = lb["DNSName"]
    main = new_tg(lab, res, [web1, web2])
    api = new_tg(lab, res, [web3])
    port = free_port(host)
    addr = (host, port)
    listener = lab.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"],
                       "--protocol", "HTTP", "--port", str(port),
                       "--default-actions", f"Type=forward,TargetGroupArn={main}")["Listeners"][0]["ListenerArn"]
    rules = [
        (10, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
         [{"Type": "forward", "TargetGroupArn": api}]),
        (20, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/teapot"]}}],
         [{"Type": "fixed-response", "FixedResponseConfig": {
             "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "short and stout"}}]),
        (30, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}],
         [{"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}}]),
        (40, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/elsewhere"]}}],
         [{"Type": "redirect", "RedirectConfig": {
             "Host": "example.com", "Port": "8443", "Protocol": "HTTPS", "Path": "/to/#{host}/#{port}",
             "Query": "from=#{path}&#{query}", "StatusCode": "HTTP_302"}}]),
        (50, [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/home"]}}],
         [{"Type": "redirect", "RedirectConfig": {"Port": "80", "Path": "/index.html", "StatusCode": "HTTP_302"}}]),
    ]
    for priority, conditions, actions in rules:
        lab.aws("elbv2", "create-rule", "--listener-arn", listener, "--priority", str(priority),
                "--conditions", json.dumps(conditions), "--actions", json.dumps(actions))
    wait_health(lab, main, {web1.ip: "healthy", web2.ip: "healthy"})
    wait_health(lab, api, {web3.ip: "healthy"})

    # /api/* goes to the second group, everything else to the default's.
    for _ in range(6):
        r = get(addr, "/api/")
        assert r.status == 200 and r.text.strip() == f"api from {web3.hostname}", r
    assert set(spread(lab, addr, 10)) == {"web1", "web2"}
    # Path patterns are case-sensitive: /API/ is not /api/*.
    r = get(addr, "/API/")
    assert r.status == 404 and r.headers.get("Server") != ALB_SERVER, r

    r = get(addr, "/teapot")
    assert r.status == 418, r
    assert r.body == b"short and stout", r
    assert r.headers.get("Content-Type", "").startswith("text/plain"), r
    assert r.headers.get("Server") == ALB_SERVER, r

    # Redirects: #{path} is the path without its leading slash; #{host} the Host header's host, #{port} the
    # listener's, #{query} the request's; a port the protocol implies (http:80) is not written out.
    site = {"Host": "www.example.com"}
    r = get(addr, "/old/page/x.html?a=1&b=2", headers=site)
    assert r.status == 301, r
    assert r.headers.get("Location") == f"http://www.example.com:{port}/new/old/page/x.html?a=1&b=2", r
    assert r.headers.get("Server") == ALB_SERVER, r

    r = get(addr, "/old/y", headers=site)
    assert r.status == 301 and r.headers.get("Location") == f"http://www.example.com:{port}/new/old/y", r

    r = get(addr, "/elsewhere?q=z", headers=site)
    assert r.status == 302, r
    assert r.headers.get("Location") == f"https://example.com:8443/to/www.example.com/{port}?from=elsewhere&q=z", r
    assert r.headers.get("Server") == ALB_SERVER, r

    r = get(addr, "/home", headers=site)
    assert r.status == 302 and r.headers.get("Location") == "http://www.example.com/index.html", r


# ---------------------------------------------------------------------------------------------------------
# 4. an NLB passes TCP through unchanged


def test_nlb_passes_tcp_bytes_through_unchanged(lab, res):
    echo = lab.echo
    nlb = lab.elb.create_load_balancer(Name=uniq("nlb"), Type="network", Subnets=lab.subnets)["LoadBalancers"][0]
    res.load_balancers.append(nlb["LoadBalancerArn"])
    assert nlb["Type"] == "network"
    tg = new_tg(lab, res, [(echo.ip, ECHO_PORT)], protocol="TCP", port=ECHO_PORT, HealthCheckProtocol="TCP",
                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
                UnhealthyThresholdCount=2)
    addr = new_listener(lab, nlb, forward(tg), protocol="TCP")
    wait_health(lab, tg, {echo.ip: "healthy"})

    payload = bytes(range(256)) * 1024 + os.urandom(300_000) + b"\r\n\x00end"
    got = echo_roundtrip(addr, payload, timeout=30)
    assert len(got) == len(payload) and got == payload, f"sent {len(payload)} bytes, got {len(got)} back (differ)"

    # Several connections at once, each its own stream.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        payloads = [os.urandom(50_000) + str(i).encode() for i in range(4)]
        results = list(pool.map(lambda p: echo_roundtrip(addr, p, timeout=30), payloads))
    assert results == payloads

    # An interactive exchange on one connection.
    with socket.create_connection(addr, timeout=10) as s:
        for line in (b"hello\n", b"\xff\xfe binary \x00\n"):
            s.sendall(line)
            got = b""
            while len(got) < len(line):
                chunk = s.recv(4096)
                assert chunk, "the connection closed early"
                got += chunk
            assert got == line


# ---------------------------------------------------------------------------------------------------------
# 5. deregistration: in-flight requests finish, new ones go elsewhere, the target leaves


def test_deregistered_target_drains_and_gets_no_new_requests(lab, res):
    web1, web2 = lab.web["web1"], lab.web["web2"]
    lb = new_alb(lab, res)
    tg = new_tg(lab, res, [web1, web2], delay=20)
    addr = new_listener(lab, lb, forward(tg))
    wait_health(lab, tg, {web1.ip: "healthy", web2.ip: "healthy"})
    assert set(spread(lab, addr, 10)) == {"web1", "web2"}

    # Slow requests in flight on both targets while web2 is deregistered (with the AWS CLI).
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = [pool.submit(get, addr, "/cgi-bin/slow") for _ in range(6)]
        # Both targets are running the slow script (its `sleep` is in their cgroups).
        eventually(10, lambda: sleeping(web1) and sleeping(web2), "the slow requests never reached both tasks")
        lab.aws("elbv2", "deregister-targets", "--target-group-arn", tg, "--targets", f"Id={web2.ip},Port={WEB_PORT}")
        h = health(lab, tg)
        assert sleeping(web2), "the slow request on web2 ended before DescribeTargetHealth (machine too slow?)"
        assert h.get(web2.ip, {}).get("State") == "draining", \
            f"a target with requests in flight must be draining after DeregisterTargets: {h}"
        assert h[web2.ip].get("Reason") == "Target.DeregistrationInProgress", h
        assert h[web1.ip]["State"] == "healthy", h
        # New requests go to web1 only.
        assert spread(lab, addr, 20) == {"web1": 20}
        replies = [f.result() for f in slow]
    # Every in-flight request finished with its target's answer.
    assert all(r.status == 200 and r.text.startswith("slow from ") for r in replies), replies
    by = {r.text.strip().removeprefix("slow from ") for r in replies}
    assert web2.hostname in by, f"no slow request reached web2: {replies}"

    # With nothing in flight the deregistration may complete before the 20 s delay ends: web2 is then no
    # longer listed (AWS may keep showing it as draining until the delay ends); either way it gets nothing.
    h = health(lab, tg)
    assert web2.ip not in h or h[web2.ip]["State"] == "draining", h
    assert h[web1.ip]["State"] == "healthy", h
    assert spread(lab, addr, 20) == {"web1": 20}


# ---------------------------------------------------------------------------------------------------------
# 6. the load balancer's own errors: 503 without targets, 502 from a target that refuses


def test_no_targets_answers_503_and_a_closed_port_502(lab, res):
    web1 = lab.web["web1"]
    lb = new_alb(lab, res)
    empty = new_tg(lab, res, [])
    closed = new_tg(lab, res, [(web1.ip, 9)])  # nothing listens on port 9 in the task
    to_empty = new_listener(lab, lb, forward(empty))
    to_closed = new_listener(lab, lb, forward(closed))

    assert health(lab, empty) == {}
    r = get(to_empty, "/")
    assert r.status == 503, r
    assert r.headers.get("Server") == ALB_SERVER, r
    assert r.headers.get("Content-Type", "").startswith("text/html"), r
    assert b"503 Service Temporarily Unavailable" in r.body, r

    h = wait_health(lab, closed, {web1.ip: "unhealthy"})
    assert h[web1.ip].get("Reason") in ("Target.FailedHealthChecks", "Target.Timeout"), h
    # Every target unhealthy: ALB fails open and routes to them anyway; the refused connection is a 502.
    for _ in range(3):
        r = get(to_closed, "/")
        assert r.status == 502, r
        assert r.headers.get("Server") == ALB_SERVER, r
        assert r.headers.get("Content-Type", "").startswith("text/html"), r
        assert b"502 Bad Gateway" in r.body, r


# ---------------------------------------------------------------------------------------------------------
# 7. one load balancer's listener never holds up another's (on AWS they are independent)


def test_a_listener_the_host_cannot_bind_does_not_hold_up_other_load_balancers(lab, res):
    # Another process (here: the test) holds the port one listener asks for.
    blocked_lb = new_alb(lab, res)
    with socket.socket() as squatter:
        squatter.bind((blocked_lb["DNSName"], 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        lab.elb.create_listener(LoadBalancerArn=blocked_lb["LoadBalancerArn"], Protocol="HTTP", Port=taken,
                                DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                    "StatusCode": "200", "MessageBody": "blocked"}}])
        # A listener of another load balancer, created afterwards, serves at once.
        other = new_alb(lab, res)
        addr = new_listener(lab, other, [{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "independent"}}])
        r = eventually(15, lambda: get(addr, "/"),
                       f"the listener {addr} never answered while another load balancer's listener could not bind "
                       f"{blocked_lb['DNSName']}:{taken}")
        assert r.status == 200 and r.body == b"independent", r
