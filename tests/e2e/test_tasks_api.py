"""The ECS task API through boto3: RunTask (response shape, overrides, tags, capacity providers, every
validation error, clientToken idempotency), StopTask, DescribeTasks, ListTasks (filters, pagination) and
DeleteCluster refusing a cluster with tasks.

These tests check the API contract only. They never wait for lastStatus to move: the task controller moves
it, and what it does with a task (pull, run, fail) is tested elsewhere."""

import re

import pytest

from harness import ACCOUNT_ID, REGION, client_error, fargate_task_definition, tags_dict, uniq

TASK_ARN = re.compile(rf"^arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/(?P<cluster>[^/]+)/(?P<id>[0-9a-f]{{32}})$")


@pytest.fixture(scope="module")
def network(server):
    ec2 = server.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    return {
        "vpc": vpc,
        "subnets": [s["SubnetId"] for s in subnets],
        "zones": {s["SubnetId"]: s["AvailabilityZone"] for s in subnets},
        "group": group,
    }


@pytest.fixture(scope="module")
def family(ecs):
    name = uniq("tasks")
    ecs.register_task_definition(**fargate_task_definition(name, tags=[{"key": "from", "value": "taskdef"}]))
    return name


@pytest.fixture
def cluster(ecs):
    name = uniq("tasks")
    ecs.create_cluster(clusterName=name)
    return name


def awsvpc(network, subnets=None, **kw):
    conf = {"subnets": subnets if subnets is not None else network["subnets"][:1]}
    conf.update(kw)
    return {"awsvpcConfiguration": conf}


def run(ecs, cluster, family, network, **kw):
    kw.setdefault("networkConfiguration", awsvpc(network))
    return ecs.run_task(cluster=cluster, taskDefinition=family, **kw)


def test_run_task_response_shape(ecs, cluster, family, network):
    resp = run(ecs, cluster, family, network, count=2, startedBy="job-1",
               tags=[{"key": "env", "value": "test"}], propagateTags="TASK_DEFINITION")
    assert resp["failures"] == []
    tasks = resp["tasks"]
    assert len(tasks) == 2
    assert len({t["taskArn"] for t in tasks}) == 2
    for t in tasks:
        m = TASK_ARN.match(t["taskArn"])
        assert m and m["cluster"] == cluster, t["taskArn"]
        assert t["clusterArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{cluster}"
        assert t["taskDefinitionArn"] == f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:1"
        assert (t["lastStatus"], t["desiredStatus"]) == ("PROVISIONING", "RUNNING")
        assert t["version"] == 1
        assert (t["cpu"], t["memory"]) == ("256", "512")
        assert t["launchType"] == "FARGATE"
        assert "capacityProviderName" not in t
        assert (t["platformVersion"], t["platformFamily"]) == ("1.4.0", "Linux")
        assert t["group"] == f"family:{family}"
        assert t["startedBy"] == "job-1"
        assert t["enableExecuteCommand"] is False
        assert t["createdAt"].year >= 2024
        assert t["overrides"] == {"containerOverrides": [{"name": "web"}], "inferenceAcceleratorOverrides": []}
        assert t["ephemeralStorage"] == {"sizeInGiB": 20}
        assert t["fargateEphemeralStorage"] == {"sizeInGiB": 20}
        assert tags_dict(t["tags"]) == {"from": "taskdef", "env": "test"}
        [eni] = t["attachments"]
        assert (eni["type"], eni["status"]) == ("ElasticNetworkInterface", "PRECREATED")
        assert eni["details"] == [{"name": "subnetId", "value": network["subnets"][0]}]
        assert t["availabilityZone"] == network["zones"][network["subnets"][0]]
        [c] = t["containers"]
        assert c["name"] == "web" and c["image"] == "busybox"
        assert c["lastStatus"] == "PENDING"
        assert c["taskArn"] == t["taskArn"]
        assert c["cpu"] == "0"
        assert c["networkInterfaces"] == []
        assert re.match(rf"^arn:aws:ecs:{REGION}:{ACCOUNT_ID}:container/{cluster}/{m['id']}/[0-9a-f-]{{36}}$",
                        c["containerArn"]), c["containerArn"]


def test_run_task_without_propagation_has_only_its_own_tags(ecs, cluster, family, network):
    [t] = run(ecs, cluster, family, network, tags=[{"key": "env", "value": "x"}])["tasks"]
    assert tags_dict(t["tags"]) == {"env": "x"}
    [t] = run(ecs, cluster, family, network, enableECSManagedTags=True)["tasks"]
    assert tags_dict(t["tags"]) == {"aws:ecs:clusterName": cluster}


def test_run_task_overrides_are_applied_and_echoed(ecs, cluster, family, network):
    overrides = {
        "containerOverrides": [{"name": "web", "command": ["sleep", "60"], "environment": [{"name": "A", "value": "1"}],
                                "cpu": 128, "memory": 256}],
        "cpu": "512",
        "memory": "1 GB",
        "ephemeralStorage": {"sizeInGiB": 40},
    }
    [t] = run(ecs, cluster, family, network, overrides=overrides, group="batch", platformVersion="LATEST")["tasks"]
    assert (t["cpu"], t["memory"]) == ("512", "1024")
    assert t["overrides"]["containerOverrides"] == overrides["containerOverrides"]
    assert t["overrides"]["cpu"] == "512" and t["overrides"]["memory"] == "1 GB"
    assert t["overrides"]["inferenceAcceleratorOverrides"] == []
    assert t["fargateEphemeralStorage"] == {"sizeInGiB": 40}
    assert t["group"] == "batch"
    assert t["platformVersion"] == "1.4.0"
    [c] = t["containers"]
    assert (c["cpu"], c["memory"]) == ("128", "256")


def test_run_task_by_revision_and_arn_and_latest(ecs, cluster, family, network):
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{family}:1"
    for ref in (family, f"{family}:1", arn):
        [t] = run(ecs, cluster, family=ref, network=network)["tasks"]
        assert t["taskDefinitionArn"] == arn


def test_run_task_security_groups_and_subnets(ecs, cluster, family, network):
    resp = run(ecs, cluster, family, network, count=4,
               networkConfiguration=awsvpc(network, network["subnets"], securityGroups=[network["group"]],
                                           assignPublicIp="ENABLED"))
    used = {t["attachments"][0]["details"][0]["value"] for t in resp["tasks"]}
    assert used <= set(network["subnets"])
    if len(network["subnets"]) > 1:
        assert len(used) > 1, "tasks of one call are spread over the subnets"
    for t in resp["tasks"]:
        subnet = t["attachments"][0]["details"][0]["value"]
        assert t["availabilityZone"] == network["zones"][subnet]


def test_run_task_capacity_provider_strategy(ecs, family, network):
    name = uniq("spot")
    ecs.create_cluster(clusterName=name, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    [t] = run(ecs, name, family, network,
              capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])["tasks"]
    assert t["capacityProviderName"] == "FARGATE_SPOT"
    assert t["launchType"] == "FARGATE"
    # Not associated with the cluster: refused.
    other = uniq("plain")
    ecs.create_cluster(clusterName=other)
    e = client_error(run, ecs, other, family, network,
                     capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    assert e.response["Error"]["Code"] == "InvalidParameterException"
    assert "not associated with the cluster" in e.response["Error"]["Message"]


def _register(ecs, **kw):
    name = uniq("td")
    return ecs.register_task_definition(**fargate_task_definition(name, **kw))["taskDefinition"]


VALIDATION_CASES = [
    ("count-0", {"count": 0}, "InvalidParameterException", "count must be between 1 and 10"),
    ("count-11", {"count": 11}, "InvalidParameterException", "count must be between 1 and 10"),
    ("launch-type-and-strategy", {"launchType": "FARGATE",
                                  "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
     "InvalidParameterException", "Specifying both a launch type and capacity provider strategy"),
    ("ec2", {"launchType": "EC2"}, "InvalidParameterException", "No Container Instances were found in your cluster."),
    ("external", {"launchType": "EXTERNAL"}, "InvalidParameterException", "No Container Instances"),
    ("no-network", {"networkConfiguration": None}, "InvalidParameterException",
     "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    ("no-awsvpc", {"networkConfiguration": {}}, "InvalidParameterException", "Network Configuration must be provided"),
    ("no-subnets", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": []}}},
     "InvalidParameterException", "subnets can not be empty."),
    ("unknown-subnet", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0000000000000dead"]}}},
     "InvalidParameterException", "The subnet ID 'subnet-0000000000000dead' does not exist"),
    ("malformed-subnet", {"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["default"]}}},
     "InvalidParameterException", "Error retrieving subnet information"),
    ("unknown-group", "unknown-group", "InvalidParameterException",
     "The security group 'sg-0000000000000dead' does not exist"),
    ("unknown-container", {"overrides": {"containerOverrides": [{"name": "nope"}]}}, "InvalidParameterException",
     "Override for container named nope is not a container in the TaskDefinition."),
    ("override-size", {"overrides": {"cpu": "256", "memory": "8192"}}, "InvalidParameterException",
     "No Fargate configuration exists for given values: 256 CPU, 8192 memory."),
    ("override-storage", {"overrides": {"ephemeralStorage": {"sizeInGiB": 201}}}, "InvalidParameterException",
     "between 21 and 200"),
    ("reserved-tag", {"tags": [{"key": "aws:x", "value": "v"}]}, "InvalidParameterException", "reserved"),
    ("too-many-tags", {"tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]},
     "InvalidParameterException", "too many tags"),
    ("placement-constraint", {"placementConstraints": [{"type": "distinctInstance"}]},
     "InvalidParameterException", "placement constraints are not supported"),
    ("placement-strategy", {"placementStrategy": [{"type": "random"}]},
     "InvalidParameterException", "placement strategies are not supported"),
    ("propagate-service", {"propagateTags": "SERVICE"}, "InvalidParameterException", "SERVICE"),
    ("started-by", {"startedBy": "has spaces"}, "InvalidParameterException", "startedBy"),
    ("client-token", {"clientToken": "x" * 65}, "InvalidParameterException", "clientToken"),
    ("platform-unknown", {"platformVersion": "9.9.9"}, "PlatformUnknownException", "platform version does not exist"),
    ("platform-old-with-storage", {"platformVersion": "1.3.0", "overrides": {"ephemeralStorage": {"sizeInGiB": 30}}},
     "PlatformTaskDefinitionIncompatibilityException", "required capabilities"),
    ("exec-without-role", {"enableExecuteCommand": True}, "InvalidParameterException", "task role"),
    ("missing-cluster", {"cluster": "no-such-cluster-anywhere"}, "ClusterNotFoundException", "Cluster not found."),
    ("missing-family", {"taskDefinition": "no-such-family-anywhere"}, "ClientException", "TaskDefinition not found."),
    ("missing-revision", "missing-revision", "ClientException", "TaskDefinition not found."),
]


@pytest.mark.parametrize("label,change,code,message", VALIDATION_CASES, ids=[c[0] for c in VALIDATION_CASES])
def test_run_task_validation(ecs, cluster, family, network, label, change, code, message):
    kw = {"cluster": cluster, "taskDefinition": family, "networkConfiguration": awsvpc(network)}
    if change == "unknown-group":
        kw["networkConfiguration"] = awsvpc(network, securityGroups=["sg-0000000000000dead"])
    elif change == "missing-revision":
        kw["taskDefinition"] = f"{family}:999"
    else:
        kw.update(change)
    kw = {k: v for k, v in kw.items() if v is not None}
    before = ecs.list_tasks(cluster=cluster)["taskArns"]
    e = client_error(ecs.run_task, **kw)
    assert e.response["Error"]["Code"] == code, e.response["Error"]
    assert message.lower() in e.response["Error"]["Message"].lower(), e.response["Error"]
    # A refused call writes nothing.
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == before


def test_run_task_refuses_inactive_and_non_fargate_definitions(ecs, cluster, network):
    td = _register(ecs)
    ecs.deregister_task_definition(taskDefinition=td["taskDefinitionArn"])
    e = client_error(run, ecs, cluster, td["taskDefinitionArn"], network)
    assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == (
        "InvalidParameterException", "TaskDefinition is inactive")
    # The family has no ACTIVE revision left.
    e = client_error(run, ecs, cluster, td["family"], network)
    assert e.response["Error"]["Code"] == "ClientException"
    ec2_only = ecs.register_task_definition(family=uniq("ec2"), containerDefinitions=[
        {"name": "web", "image": "busybox", "memory": 128}])["taskDefinition"]
    e = client_error(run, ecs, cluster, ec2_only["taskDefinitionArn"], network)
    assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == (
        "InvalidParameterException", "Task definition does not support launch_type FARGATE.")


def test_run_task_refuses_a_deleted_cluster(ecs, family, network):
    name = uniq("gone")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    e = client_error(run, ecs, name, family, network)
    assert e.response["Error"]["Code"] == "ClusterNotFoundException"


def test_client_token_is_idempotent(ecs, cluster, family, network):
    token = uniq("token")
    first = run(ecs, cluster, family, network, count=2, clientToken=token)["tasks"]
    again = run(ecs, cluster, family, network, count=2, clientToken=token)["tasks"]
    assert [t["taskArn"] for t in again] == [t["taskArn"] for t in first]
    assert len(ecs.list_tasks(cluster=cluster)["taskArns"]) == 2
    e = client_error(run, ecs, cluster, family, network, count=1, clientToken=token)
    assert e.response["Error"]["Code"] == "ConflictException"
    assert first[0]["taskArn"] in e.response["Error"]["Message"]
    # Tokens are per cluster.
    other = uniq("tok")
    ecs.create_cluster(clusterName=other)
    [t] = run(ecs, other, family, network, clientToken=token)["tasks"]
    assert TASK_ARN.match(t["taskArn"])["cluster"] == other


def test_stop_task(ecs, cluster, family, network):
    a, b = run(ecs, cluster, family, network, count=2)["tasks"]
    stopped = ecs.stop_task(cluster=cluster, task=a["taskArn"], reason="done here")["task"]
    assert stopped["taskArn"] == a["taskArn"]
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "done here"
    assert stopped["version"] > a["version"]
    # By id, without a reason.
    task_id = TASK_ARN.match(b["taskArn"])["id"]
    stopped_b = ecs.stop_task(cluster=cluster, task=task_id)["task"]
    assert (stopped_b["desiredStatus"], stopped_b["stoppedReason"]) == ("STOPPED", "Task stopped by user")
    # Stopping again keeps the first stop's code and reason (the controller may have moved the task on).
    again = ecs.stop_task(cluster=cluster, task=a["taskArn"], reason="other")["task"]
    assert (again["desiredStatus"], again["stopCode"], again["stoppedReason"]) == (
        "STOPPED", "UserInitiated", "done here")
    described = ecs.describe_tasks(cluster=cluster, tasks=[a["taskArn"]])["tasks"][0]
    assert described["desiredStatus"] == "STOPPED" and described["stoppedReason"] == "done here"
    stopped_list = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    assert sorted(stopped_list) == sorted([a["taskArn"], b["taskArn"]])
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


def test_stop_task_errors(ecs, cluster, family, network):
    e = client_error(ecs.stop_task, cluster=cluster, task="0" * 32)
    assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == (
        "InvalidParameterException", "The referenced task was not found")
    e = client_error(ecs.stop_task, cluster=cluster, task="not-a-task")
    assert e.response["Error"]["Code"] == "InvalidParameterException"
    e = client_error(ecs.stop_task, cluster=uniq("missing"), task="0" * 32)
    assert e.response["Error"]["Code"] == "ClusterNotFoundException"
    # A task of another cluster is not found in this one.
    [t] = run(ecs, cluster, family, network)["tasks"]
    other = uniq("other")
    ecs.create_cluster(clusterName=other)
    e = client_error(ecs.stop_task, cluster=other, task=TASK_ARN.match(t["taskArn"])["id"])
    assert e.response["Error"]["Message"] == "The referenced task was not found"


def test_describe_tasks(ecs, cluster, family, network):
    [t] = run(ecs, cluster, family, network, tags=[{"key": "k", "value": "v"}])["tasks"]
    task_id = TASK_ARN.match(t["taskArn"])["id"]
    missing_id = "f" * 32
    resp = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"], missing_id])
    [d] = resp["tasks"]
    assert d["taskArn"] == t["taskArn"]
    assert "tags" not in d
    assert resp["failures"] == [{"arn": f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task/{cluster}/{missing_id}",
                                 "reason": "MISSING"}]
    # Without `cluster`, a task ARN's own cluster is the one meant.
    assert [x["taskArn"] for x in ecs.describe_tasks(tasks=[t["taskArn"]])["tasks"]] == [t["taskArn"]]
    with_tags = ecs.describe_tasks(cluster=cluster, tasks=[task_id], include=["TAGS"])["tasks"][0]
    assert tags_dict(with_tags["tags"]) == {"k": "v"}
    # Tasks of another cluster are MISSING here.
    other = uniq("other")
    ecs.create_cluster(clusterName=other)
    resp = ecs.describe_tasks(cluster=other, tasks=[t["taskArn"]])
    assert resp["tasks"] == [] and resp["failures"] == [{"arn": t["taskArn"], "reason": "MISSING"}]
    e = client_error(ecs.describe_tasks, cluster=cluster, tasks=[])
    assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == (
        "InvalidParameterException", "Tasks cannot be empty.")
    e = client_error(ecs.describe_tasks, cluster=uniq("missing"), tasks=[task_id])
    assert e.response["Error"]["Code"] == "ClusterNotFoundException"


def test_list_tasks_filters_and_pages(ecs, cluster, family, network):
    other_family = _register(ecs)["family"]
    mine = [t["taskArn"] for t in run(ecs, cluster, family, network, count=3, startedBy="me")["tasks"]]
    theirs = [t["taskArn"] for t in run(ecs, cluster, other_family, network, count=2)["tasks"]]
    assert sorted(ecs.list_tasks(cluster=cluster)["taskArns"]) == sorted(mine + theirs)
    assert sorted(ecs.list_tasks(cluster=cluster, family=family)["taskArns"]) == sorted(mine)
    assert sorted(ecs.list_tasks(cluster=cluster, startedBy="me")["taskArns"]) == sorted(mine)
    assert sorted(ecs.list_tasks(cluster=cluster, launchType="FARGATE")["taskArns"]) == sorted(mine + theirs)
    assert ecs.list_tasks(cluster=cluster, launchType="EC2")["taskArns"] == []
    assert ecs.list_tasks(cluster=cluster, desiredStatus="PENDING")["taskArns"] == []
    pages = list(ecs.get_paginator("list_tasks").paginate(cluster=cluster, PaginationConfig={"PageSize": 2}))
    assert [len(p["taskArns"]) for p in pages] == [2, 2, 1]
    assert sorted(a for p in pages for a in p["taskArns"]) == sorted(mine + theirs)
    e = client_error(ecs.list_tasks, cluster=cluster, maxResults=101)
    assert e.response["Error"]["Code"] == "InvalidParameterException"
    e = client_error(ecs.list_tasks, cluster=cluster, serviceName="no-such-service")
    assert e.response["Error"]["Code"] == "ServiceNotFoundException"
    e = client_error(ecs.list_tasks, cluster=uniq("missing"))
    assert e.response["Error"]["Code"] == "ClusterNotFoundException"


def test_delete_cluster_refused_while_a_task_is_not_stopped(ecs, family, network):
    name = uniq("busy")
    ecs.create_cluster(clusterName=name)
    [t] = run(ecs, name, family, network)["tasks"]
    e = client_error(ecs.delete_cluster, cluster=name)
    assert (e.response["Error"]["Code"], e.response["Error"]["Message"]) == (
        "ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
    # Asking the task to stop is not enough: it must have stopped (the controller decides when; whichever
    # happened, DeleteCluster agrees with the task's lastStatus).
    ecs.stop_task(cluster=name, task=t["taskArn"])
    from botocore.exceptions import ClientError

    try:
        ecs.delete_cluster(cluster=name)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ClusterContainsTasksException"
        assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"
    else:
        assert ecs.describe_tasks(cluster=name, tasks=[t["taskArn"]])["tasks"][0]["lastStatus"] == "STOPPED"
