"""ECS task definitions through boto3 and the AWS CLI: register (with the defaults ECS fills in and the
Fargate validation ECS applies), describe, list, families, deregister, delete, tags, concurrency.

The Fargate cpu/memory table is AWS's (AWS-PROTOCOLS.md §6.1, DESIGN.md §4)."""

import datetime as dt
import json
import threading

import pytest

from harness import (
    ACCOUNT_ID,
    client_error,
    container,
    ecs_request,
    fargate_task_definition,
    tags_dict,
    task_definition_arn,
    uniq,
)

VALIDATION_ERRORS = ("ClientException", "InvalidParameterException")


def revisions_of(ecs, family, status=None):
    kw = {"familyPrefix": family}
    if status:
        kw["status"] = status
    arns = [a for p in ecs.get_paginator("list_task_definitions").paginate(**kw) for a in p["taskDefinitionArns"]]
    return arns


def assert_nothing_registered(ecs, family):
    for status in ("ACTIVE", "INACTIVE"):
        assert revisions_of(ecs, family, status) == [], f"a rejected registration left {status} revisions of {family}"
    families = ecs.list_task_definition_families(familyPrefix=family, status="ALL")["families"]
    assert family not in families, f"a rejected registration left the family {family}"


# ---------------------------------------------------------------------------------------------------------
# register and read back


def test_register_fills_ecs_defaults(ecs):
    family = uniq("defaults")
    resp = ecs.register_task_definition(**fargate_task_definition(family))
    td = resp["taskDefinition"]
    assert td["taskDefinitionArn"] == f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:task-definition/{family}:1"
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert td["networkMode"] == "awsvpc"
    assert td["cpu"] == "256" and td["memory"] == "512"
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["volumes"] == []
    assert td["placementConstraints"] == []
    assert isinstance(td["registeredAt"], dt.datetime)
    assert abs(td["registeredAt"] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)

    (c,) = td["containerDefinitions"]
    assert c["name"] == "web" and c["image"] == "busybox"
    assert c["command"] == ["httpd", "-f", "-p", "8080"]
    assert c["essential"] is True
    assert c["cpu"] == 0
    assert c["portMappings"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
    assert c["environment"] == []
    assert c["mountPoints"] == []
    assert c["volumesFrom"] == []

    # DescribeTaskDefinition reads back exactly what RegisterTaskDefinition returned.
    described = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert described == td


def test_timestamps_are_epoch_seconds_numbers_on_the_wire(server, ecs):
    family = uniq("wire")
    ecs.register_task_definition(**fargate_task_definition(family))
    resp = ecs_request(server, "DescribeTaskDefinition", {"taskDefinition": family})
    assert resp.status == 200, resp
    assert resp.headers.get("Content-Type", "").startswith("application/x-amz-json-1.1"), resp.headers
    td = resp.json()["taskDefinition"]
    # Go SDK clients (Terraform) reject timestamps that are not JSON numbers.
    assert isinstance(td["registeredAt"], (int, float)) and not isinstance(td["registeredAt"], bool), td
    assert abs(td["registeredAt"] - dt.datetime.now(dt.timezone.utc).timestamp()) < 300

    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    td = ecs_request(server, "DescribeTaskDefinition", {"taskDefinition": f"{family}:1"}).json()["taskDefinition"]
    assert isinstance(td["deregisteredAt"], (int, float)), td
    assert td["deregisteredAt"] >= td["registeredAt"] - 1


def test_register_keeps_what_was_given(ecs):
    family = uniq("full")
    req = fargate_task_definition(
        family,
        cpu="1024",
        memory="2048",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/app",
        ephemeralStorage={"sizeInGiB": 50},
        runtimePlatform={"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
        containerDefinitions=[
            container(
                "app",
                cpu=512,
                memory=1024,
                memoryReservation=512,
                essential=True,
                entryPoint=["/bin/sh", "-c"],
                command=["echo hi"],
                environment=[{"name": "A", "value": "1"}],
                portMappings=[{"containerPort": 80, "hostPort": 80, "protocol": "tcp", "name": "http",
                               "appProtocol": "http"}],
                healthCheck={"command": ["CMD-SHELL", "true"], "interval": 10, "timeout": 3, "retries": 2,
                             "startPeriod": 5},
                logConfiguration={
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/ecs/full", "awslogs-region": "us-east-1",
                                "awslogs-stream-prefix": "app"},
                },
                stopTimeout=60,
                linuxParameters={"capabilities": {"add": ["SYS_PTRACE"]}, "initProcessEnabled": True},
                dependsOn=[{"containerName": "sidecar", "condition": "START"}],
            ),
            container("sidecar", essential=False, command=["sleep", "3600"]),
        ],
    )
    td = ecs.register_task_definition(**req)["taskDefinition"]
    assert td["executionRoleArn"] == req["executionRoleArn"]
    assert td["taskRoleArn"] == req["taskRoleArn"]
    assert td["ephemeralStorage"] == {"sizeInGiB": 50}
    assert td["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    app = next(c for c in td["containerDefinitions"] if c["name"] == "app")
    side = next(c for c in td["containerDefinitions"] if c["name"] == "sidecar")
    for key in ("cpu", "memory", "memoryReservation", "entryPoint", "command", "environment", "stopTimeout",
                "logConfiguration", "dependsOn", "healthCheck"):
        assert app[key] == req["containerDefinitions"][0][key], key
    assert app["portMappings"] == req["containerDefinitions"][0]["portMappings"]
    assert app["linuxParameters"]["capabilities"]["add"] == ["SYS_PTRACE"]
    assert app["linuxParameters"]["initProcessEnabled"] is True
    assert side["essential"] is False


def test_strings_round_trip_exactly(ecs):
    family = uniq("strings")
    odd = 'quotes " and \\ backslash, tab\t, newline\n, unicode café ünïcödé 漢字, emoji 🚢, </xml> & {"json": 1}'
    td = ecs.register_task_definition(**fargate_task_definition(family, containerDefinitions=[container(
        "web", environment=[{"name": "ODD", "value": odd}, {"name": "EMPTY", "value": ""}],
        command=["sh", "-c", odd], dockerLabels={"label.with.dots": odd})]))["taskDefinition"]
    got = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    c = got["containerDefinitions"][0]
    assert {e["name"]: e.get("value") for e in c["environment"]} == {"ODD": odd, "EMPTY": ""}
    assert c["command"] == ["sh", "-c", odd]
    assert c["dockerLabels"] == {"label.with.dots": odd}


def test_task_definition_over_64_kib_is_refused(ecs):
    # ECS caps a task definition at 64 KiB ("ClientException: Actual length: '…'. Max allowed length is
    # '65536' bytes.").
    family = uniq("big")
    env = [{"name": f"VAR_{i}", "value": "v" * 1000} for i in range(100)]
    err = client_error(ecs.register_task_definition, **fargate_task_definition(
        family, containerDefinitions=[container("web", environment=env)]))
    assert err.response["Error"]["Code"] == "ClientException", err.response["Error"]
    assert_nothing_registered(ecs, family)


def test_large_valid_task_definition_round_trips(ecs):
    family = uniq("large")
    containers = [container(f"c{i}", essential=(i == 0), environment=[
        {"name": f"V{j}", "value": "x" * 40} for j in range(20)]) for i in range(10)]
    td = ecs.register_task_definition(**fargate_task_definition(family, containerDefinitions=containers))[
        "taskDefinition"]
    got = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
    assert [c["name"] for c in got["containerDefinitions"]] == [f"c{i}" for i in range(10)]
    assert got["containerDefinitions"][9]["environment"] == containers[9]["environment"]


def test_health_check_defaults_are_filled(ecs):
    # ECS fills interval 30, timeout 5, retries 3 (the source of Terraform's famous drift when omitted).
    family = uniq("hc")
    td = ecs.register_task_definition(
        **fargate_task_definition(
            family, containerDefinitions=[container("web", healthCheck={"command": ["CMD-SHELL", "true"]})]
        )
    )["taskDefinition"]
    hc = td["containerDefinitions"][0]["healthCheck"]
    assert hc["command"] == ["CMD-SHELL", "true"]
    assert (hc["interval"], hc["timeout"], hc["retries"]) == (30, 5, 3), hc


def test_revisions_increment_per_family(ecs):
    a, b = uniq("rev-a"), uniq("rev-b")
    revs_a = [ecs.register_task_definition(**fargate_task_definition(a))["taskDefinition"]["revision"]
              for _ in range(3)]
    rev_b = ecs.register_task_definition(**fargate_task_definition(b))["taskDefinition"]["revision"]
    assert revs_a == [1, 2, 3]
    assert rev_b == 1
    assert revisions_of(ecs, a) == [task_definition_arn(a, r) for r in (1, 2, 3)]


def test_describe_by_family_revision_and_arn(ecs):
    family = uniq("describe")
    for image in ("busybox:1", "busybox:2"):
        ecs.register_task_definition(
            **fargate_task_definition(family, containerDefinitions=[container("web", image=image)])
        )
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 2 and latest["containerDefinitions"][0]["image"] == "busybox:2"
    first = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert first["revision"] == 1 and first["containerDefinitions"][0]["image"] == "busybox:1"
    by_arn = ecs.describe_task_definition(taskDefinition=task_definition_arn(family, 1))["taskDefinition"]
    assert by_arn == first


def test_describe_unknown_task_definition_is_client_exception(ecs):
    family = uniq("ghost")
    for ref in (family, f"{family}:1", task_definition_arn(family, 1)):
        with pytest.raises(ecs.exceptions.ClientException):
            ecs.describe_task_definition(taskDefinition=ref)
    family = uniq("one-rev")
    ecs.register_task_definition(**fargate_task_definition(family))
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition=f"{family}:2")


def test_tags_on_task_definitions(ecs):
    family = uniq("tagged")
    resp = ecs.register_task_definition(
        **fargate_task_definition(family), tags=[{"key": "team", "value": "a"}, {"key": "tier", "value": "web"}]
    )
    assert tags_dict(resp.get("tags")) == {"team": "a", "tier": "web"}
    arn = resp["taskDefinition"]["taskDefinitionArn"]

    with_tags = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert tags_dict(with_tags["tags"]) == {"team": "a", "tier": "web"}
    # Without include=TAGS, ECS leaves tags out.
    assert not ecs.describe_task_definition(taskDefinition=family).get("tags")

    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "b"}, {"key": "new", "value": "1"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["tier"])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"team": "b", "new": "1"}
    assert tags_dict(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]) == {
        "team": "b", "new": "1"}


def test_reserved_tag_key_on_register_is_rejected(ecs):
    family = uniq("awstag")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.register_task_definition(**fargate_task_definition(family), tags=[{"key": "aws:x", "value": "1"}])
    assert_nothing_registered(ecs, family)


# ---------------------------------------------------------------------------------------------------------
# list, families, sort, pagination


def test_list_task_definitions_family_status_sort_and_pages(ecs):
    family = uniq("list")
    other = family + "-other"  # familyPrefix of ListTaskDefinitions is the *full* family name
    for _ in range(5):
        ecs.register_task_definition(**fargate_task_definition(family))
    ecs.register_task_definition(**fargate_task_definition(other))
    ecs.deregister_task_definition(taskDefinition=f"{family}:2")

    active = [task_definition_arn(family, r) for r in (1, 3, 4, 5)]
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == active
    assert ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == active
    assert ecs.list_task_definitions(familyPrefix=family, sort="DESC")["taskDefinitionArns"] == active[::-1]
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == [
        task_definition_arn(family, 2)
    ]

    pages, token, seen = 0, None, []
    while True:
        kw = {"familyPrefix": family, "maxResults": 1, "sort": "DESC"}
        if token:
            kw["nextToken"] = token
        page = ecs.list_task_definitions(**kw)
        assert len(page["taskDefinitionArns"]) <= 1
        seen += page["taskDefinitionArns"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 50
    assert seen == active[::-1]

    paged = [a for p in ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, PaginationConfig={"PageSize": 2}) for a in p["taskDefinitionArns"]]
    assert paged == active


def test_list_task_definitions_global_order(ecs):
    for f in (uniq("order-b"), uniq("order-a")):
        ecs.register_task_definition(**fargate_task_definition(f))
        ecs.register_task_definition(**fargate_task_definition(f))

    def key(arn):
        fam, rev = arn.rsplit("/", 1)[1].rsplit(":", 1)
        return fam, int(rev)

    asc = [a for p in ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 100})
           for a in p["taskDefinitionArns"]]
    assert [key(a) for a in asc] == sorted(key(a) for a in asc), "ASC is by family name, then revision"
    desc = [a for p in ecs.get_paginator("list_task_definitions").paginate(sort="DESC") for a in p["taskDefinitionArns"]]
    assert desc == asc[::-1]


def test_list_task_definition_families(ecs):
    prefix = uniq("fam")
    live, dead = f"{prefix}-live", f"{prefix}-dead"
    ecs.register_task_definition(**fargate_task_definition(live))
    ecs.register_task_definition(**fargate_task_definition(dead))
    ecs.deregister_task_definition(taskDefinition=f"{dead}:1")

    def families(**kw):
        return sorted(f for p in ecs.get_paginator("list_task_definition_families").paginate(familyPrefix=prefix, **kw)
                      for f in p["families"])

    # By default both ACTIVE and INACTIVE families are listed.
    assert families() == sorted([live, dead])
    assert families(status="ALL") == sorted([live, dead])
    assert families(status="ACTIVE") == [live]
    assert families(status="INACTIVE") == [dead]

    page = ecs.list_task_definition_families(familyPrefix=prefix, maxResults=1)
    assert len(page["families"]) == 1 and page.get("nextToken")
    rest = ecs.list_task_definition_families(familyPrefix=prefix, maxResults=1, nextToken=page["nextToken"])
    assert sorted(page["families"] + rest["families"]) == sorted([live, dead])


# ---------------------------------------------------------------------------------------------------------
# deregister and delete


def test_deregister_and_delete(ecs):
    family = uniq("dereg")
    for _ in range(3):
        ecs.register_task_definition(**fargate_task_definition(family))

    td = ecs.deregister_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]
    assert td["status"] == "INACTIVE"
    assert td["revision"] == 3
    assert isinstance(td["deregisteredAt"], dt.datetime)
    # The family now resolves to its latest ACTIVE revision; the INACTIVE one stays describable.
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2
    assert ecs.describe_task_definition(taskDefinition=f"{family}:3")["taskDefinition"]["status"] == "INACTIVE"

    # Only INACTIVE revisions can be deleted: the ACTIVE one is reported as a failure (or the call refused)
    # and stays ACTIVE.
    try:
        resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1"])
        assert resp["taskDefinitions"] == [], resp
        assert [f["arn"] for f in resp["failures"]] == [task_definition_arn(family, 1)], resp
        assert resp["failures"][0].get("reason"), resp
    except ecs.exceptions.ClientException:
        pass
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["status"] == "ACTIVE"

    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:3"])
    assert resp["failures"] == []
    assert [(t["taskDefinitionArn"], t["status"]) for t in resp["taskDefinitions"]] == [
        (task_definition_arn(family, 3), "DELETE_IN_PROGRESS")
    ]
    assert task_definition_arn(family, 3) not in revisions_of(ecs, family, "INACTIVE")

    # Revision numbers are never reused, even after a delete.
    assert ecs.register_task_definition(**fargate_task_definition(family))["taskDefinition"]["revision"] == 4


def test_delete_mixed_batch_reports_per_item(ecs):
    family = uniq("delbatch")
    for _ in range(2):
        ecs.register_task_definition(**fargate_task_definition(family))
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1", f"{family}:2", f"{family}:9"])
    assert [t["taskDefinitionArn"] for t in resp["taskDefinitions"]] == [task_definition_arn(family, 1)]
    assert resp["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert sorted(f["arn"] for f in resp["failures"]) == sorted(
        [task_definition_arn(family, 2), task_definition_arn(family, 9)]
    ), resp
    assert ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]["status"] == "ACTIVE"


def test_deregister_unknown_is_client_exception(ecs):
    err = client_error(ecs.deregister_task_definition, taskDefinition=f"{uniq('nope')}:1")
    assert err.response["Error"]["Code"] in VALIDATION_ERRORS, err.response


# ---------------------------------------------------------------------------------------------------------
# Fargate validation: the cpu/memory matrix


def _gib(n):
    return n * 1024


VALID_FARGATE = (
    [("256", m) for m in (512, 1024, 2048)]
    + [("512", _gib(g)) for g in range(1, 5)]
    + [("1024", _gib(g)) for g in range(2, 9)]
    + [("2048", _gib(g)) for g in range(4, 17)]
    + [("4096", _gib(g)) for g in range(8, 31)]
    + [("8192", _gib(g)) for g in range(16, 61, 4)]
    + [("16384", _gib(g)) for g in range(32, 121, 8)]
)

INVALID_FARGATE = [
    # (cpu, memory): below / above / off-step for every cpu size, and cpu sizes that do not exist
    ("256", "256"), ("256", "1536"), ("256", "3072"), ("256", "4096"),
    ("512", "512"), ("512", "1536"), ("512", "5120"),
    ("1024", "1024"), ("1024", "2560"), ("1024", "9216"),
    ("2048", "2048"), ("2048", "17408"),
    ("4096", "4096"), ("4096", "31744"), ("4096", "32768"),
    ("8192", "8192"), ("8192", "17408"), ("8192", "21504"), ("8192", "65536"),
    ("16384", "16384"), ("16384", "36864"), ("16384", "131072"),
    ("128", "512"), ("300", "1024"), ("3072", "8192"), ("32768", "131072"), ("0", "512"), ("256", "0"),
]
# Not numbers at all: ECS refuses them too (which of its two validation classes is not pinned down).
MALFORMED_FARGATE = [("-256", "512"), ("abc", "512"), ("256", "lots"), ("", "512"), ("256", ""), ("1.5", "512")]

VCPU_FORMS = [("1 vCPU", "2 GB", "1024", "2048"), ("2 vcpu", "4GB", "2048", "4096"),
              ("4 vCPU", "8 GB", "4096", "8192"), ("8 vCPU", "16 GB", "8192", "16384")]


@pytest.fixture(scope="module")
def matrix_family():
    return uniq("matrix")


@pytest.mark.parametrize("cpu,memory", VALID_FARGATE, ids=[f"{c}-{m}" for c, m in VALID_FARGATE])
def test_fargate_valid_cpu_memory(ecs, matrix_family, cpu, memory):
    td = ecs.register_task_definition(**fargate_task_definition(matrix_family, cpu=cpu, memory=str(memory)))[
        "taskDefinition"]
    assert (td["cpu"], td["memory"]) == (cpu, str(memory))


@pytest.mark.parametrize("cpu,memory", INVALID_FARGATE, ids=[f"{c or 'empty'}-{m or 'empty'}" for c, m in INVALID_FARGATE])
def test_fargate_invalid_cpu_memory(ecs, cpu, memory):
    family = uniq("badcpu")
    with pytest.raises(ecs.exceptions.ClientException) as exc:
        ecs.register_task_definition(**fargate_task_definition(family, cpu=cpu, memory=memory))
    msg = exc.value.response["Error"]["Message"].lower()
    assert "cpu" in msg or "memory" in msg or "fargate" in msg, msg
    assert_nothing_registered(ecs, family)


@pytest.mark.parametrize("cpu,memory", MALFORMED_FARGATE,
                         ids=[f"{c or 'empty'}-{m or 'empty'}" for c, m in MALFORMED_FARGATE])
def test_fargate_malformed_cpu_memory(ecs, cpu, memory):
    family = uniq("badcpu")
    err = client_error(ecs.register_task_definition, **fargate_task_definition(family, cpu=cpu, memory=memory))
    assert err.response["Error"]["Code"] in VALIDATION_ERRORS, err.response
    msg = err.response["Error"]["Message"].lower()
    assert "cpu" in msg or "memory" in msg, msg
    assert_nothing_registered(ecs, family)


@pytest.mark.parametrize("cpu,memory,want_cpu,want_memory", VCPU_FORMS, ids=[f[0] for f in VCPU_FORMS])
def test_fargate_vcpu_and_gb_forms_are_converted(ecs, cpu, memory, want_cpu, want_memory):
    family = uniq("units")
    td = ecs.register_task_definition(**fargate_task_definition(family, cpu=cpu, memory=memory))["taskDefinition"]
    assert (td["cpu"], td["memory"]) == (want_cpu, want_memory)
    td = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert (td["cpu"], td["memory"]) == (want_cpu, want_memory)


# ---------------------------------------------------------------------------------------------------------
# Fargate validation: everything else. Each case must be refused with the ECS error class and leave nothing.


def _td_without(key):
    td = fargate_task_definition("x")
    del td[key]
    return td


def _many_containers(n):
    return [container(f"c{i}", essential=(i == 0)) for i in range(n)]


INVALID_TASK_DEFINITIONS = {
    # ClientException: what ECS refuses on semantic grounds
    "no-task-cpu": ("ClientException", _td_without("cpu")),
    "no-task-memory": ("ClientException", _td_without("memory")),
    "network-mode-bridge": ("ClientException", fargate_task_definition("x", networkMode="bridge")),
    "network-mode-host": ("ClientException", fargate_task_definition("x", networkMode="host")),
    "network-mode-none": ("ClientException", fargate_task_definition("x", networkMode="none")),
    "network-mode-default": ("ClientException", _td_without("networkMode")),
    "privileged": ("ClientException", fargate_task_definition(
        "x", containerDefinitions=[container("web", privileged=True)])),
    "eleven-containers": ("ClientException", fargate_task_definition("x", containerDefinitions=_many_containers(11))),
    "duplicate-names": ("ClientException", fargate_task_definition(
        "x", containerDefinitions=[container("web"), container("web", essential=False)])),
    "no-essential": ("ClientException", fargate_task_definition(
        "x", containerDefinitions=[container("a", essential=False), container("b", essential=False)])),
    "depends-on-unknown": ("ClientException", fargate_task_definition(
        "x", containerDefinitions=[container("web", dependsOn=[{"containerName": "ghost", "condition": "START"}])])),
    "host-port-differs": ("ClientException", fargate_task_definition(
        "x", containerDefinitions=[container("web", portMappings=[{"containerPort": 80, "hostPort": 8080}])])),
    "no-image": ("ClientException", fargate_task_definition("x", containerDefinitions=[{"name": "web"}])),
    "no-name": ("ClientException", fargate_task_definition("x", containerDefinitions=[{"image": "busybox"}])),
    "no-containers": ("ClientException", fargate_task_definition("x", containerDefinitions=[])),
    # the rest: ECS answers ClientException or InvalidParameterException depending on the check
    "cap-add-net-admin": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", linuxParameters={"capabilities": {"add": ["NET_ADMIN"]}})])),
    "ephemeral-20": (VALIDATION_ERRORS, fargate_task_definition("x", ephemeralStorage={"sizeInGiB": 20})),
    "ephemeral-201": (VALIDATION_ERRORS, fargate_task_definition("x", ephemeralStorage={"sizeInGiB": 201})),
    "healthcheck-interval-4": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "interval": 4})])),
    "healthcheck-interval-301": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "interval": 301})])),
    "healthcheck-timeout-1": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "timeout": 1})])),
    "healthcheck-timeout-61": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "timeout": 61})])),
    "healthcheck-retries-0": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "retries": 0})])),
    "healthcheck-retries-11": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "retries": 11})])),
    "healthcheck-start-period-301": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", healthCheck={"command": ["CMD", "true"], "startPeriod": 301})])),
    "log-driver-syslog": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", logConfiguration={"logDriver": "syslog"})])),
    "links": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", links=["db"]), container("db", essential=False)])),
    "pid-mode-host": (VALIDATION_ERRORS, fargate_task_definition("x", pidMode="host")),
    "ipc-mode-host": (VALIDATION_ERRORS, fargate_task_definition("x", ipcMode="host")),
    "stop-timeout-121": (VALIDATION_ERRORS, fargate_task_definition(
        "x", containerDefinitions=[container("web", stopTimeout=121)])),
}
BAD_FAMILIES = ["has space", "semi;colon", "slash/family", "f" * 256]


@pytest.mark.parametrize("case", list(INVALID_TASK_DEFINITIONS), ids=list(INVALID_TASK_DEFINITIONS))
def test_invalid_fargate_task_definition_is_refused(ecs, case):
    codes, req = INVALID_TASK_DEFINITIONS[case]
    codes = (codes,) if isinstance(codes, str) else codes
    family = uniq(f"bad-{case}")
    req = json.loads(json.dumps(req))
    req["family"] = family
    err = client_error(ecs.register_task_definition, **req)
    code = err.response["Error"]["Code"]
    assert code in codes, f"{case}: expected {codes}, got {code}: {err.response['Error']}"
    assert err.response["Error"]["Message"], err.response
    assert_nothing_registered(ecs, family)


@pytest.mark.parametrize("family", BAD_FAMILIES, ids=["space", "semicolon", "slash", "256-chars"])
def test_invalid_family_name_is_refused(ecs, family):
    # Family names: up to 255 letters, numbers, hyphens and underscores.
    err = client_error(ecs.register_task_definition, **fargate_task_definition(family))
    assert err.response["Error"]["Code"] in VALIDATION_ERRORS, err.response
    families = [f for p in ecs.get_paginator("list_task_definition_families").paginate(status="ALL")
                for f in p["families"]]
    assert family not in families


def test_valid_edges_are_accepted(ecs):
    family = uniq("edges")
    ok = [
        fargate_task_definition(family, containerDefinitions=_many_containers(10)),
        fargate_task_definition(family, ephemeralStorage={"sizeInGiB": 21}),
        fargate_task_definition(family, ephemeralStorage={"sizeInGiB": 200}),
        fargate_task_definition(family, pidMode="task"),
        fargate_task_definition(family, containerDefinitions=[container(
            "web", healthCheck={"command": ["CMD", "true"], "interval": 5, "timeout": 2, "retries": 1,
                                "startPeriod": 0})]),
        fargate_task_definition(family, containerDefinitions=[container(
            "web", healthCheck={"command": ["CMD", "true"], "interval": 300, "timeout": 60, "retries": 10,
                                "startPeriod": 300})]),
        fargate_task_definition(family, containerDefinitions=[container("web", stopTimeout=120)]),
        fargate_task_definition(family, containerDefinitions=[
            container("web", dependsOn=[{"containerName": "init", "condition": "SUCCESS"}]),
            container("init", essential=False)]),
    ]
    for i, req in enumerate(ok, start=1):
        td = ecs.register_task_definition(**req)["taskDefinition"]
        assert td["revision"] == i


# ---------------------------------------------------------------------------------------------------------
# concurrency and the AWS CLI


def test_concurrent_registrations_get_distinct_revisions(server):
    family = uniq("concurrent")
    n = 50
    clients = [server.client("ecs") for _ in range(n)]
    # Warm every client's keep-alive connection first, so the registrations race on open connections.
    for c in clients:
        c.list_task_definition_families(familyPrefix=family)
    revisions, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def register(client):
        barrier.wait(timeout=30)
        try:
            rev = client.register_task_definition(**fargate_task_definition(family))["taskDefinition"]["revision"]
            with lock:
                revisions.append(rev)
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=register, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "registrations hung"
    assert errors == []
    assert sorted(revisions) == list(range(1, n + 1))
    assert len(server.client("ecs").list_task_definitions(familyPrefix=family, maxResults=100)["taskDefinitionArns"]) == n


def test_task_definitions_with_the_aws_cli(aws, tmp_path):
    family = uniq("cli")
    spec = fargate_task_definition(
        family,
        executionRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/ecsTaskExecutionRole",
        containerDefinitions=[container(
            "web", portMappings=[{"containerPort": 8080}],
            logConfiguration={"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}})],
    )
    path = tmp_path / "td.json"
    path.write_text(json.dumps(spec))
    td = aws("ecs", "register-task-definition", "--cli-input-json", f"file://{path}")["taskDefinition"]
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert td["containerDefinitions"][0]["portMappings"] == [
        {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]
    # The CLI prints timestamps as it received them: epoch seconds.
    assert isinstance(td["registeredAt"], (int, float)), td["registeredAt"]

    aws("ecs", "register-task-definition", "--cli-input-json", f"file://{path}", "--tags", "key=k,value=v")
    described = aws("ecs", "describe-task-definition", "--task-definition", family, "--include", "TAGS")
    assert described["taskDefinition"]["revision"] == 2
    assert tags_dict(described["tags"]) == {"k": "v"}

    listed = aws("ecs", "list-task-definitions", "--family-prefix", family, "--sort", "DESC", "--page-size", "1")
    assert listed["taskDefinitionArns"] == [task_definition_arn(family, 2), task_definition_arn(family, 1)]
    fams = aws("ecs", "list-task-definition-families", "--family-prefix", family)
    assert fams["families"] == [family]

    dereg = aws("ecs", "deregister-task-definition", "--task-definition", f"{family}:1")["taskDefinition"]
    assert dereg["status"] == "INACTIVE"
    deleted = aws("ecs", "delete-task-definitions", "--task-definitions", f"{family}:1")
    assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert deleted["failures"] == []
