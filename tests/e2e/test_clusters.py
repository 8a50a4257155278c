"""ECS clusters through boto3 and the AWS CLI: create, describe, list (with pagination), update, settings,
capacity providers, tags and delete. ECS has no cluster waiter (its waiters are for services, tasks and
daemons), so `aws ecs wait` has nothing to wait for here."""

import pytest

from harness import ACCOUNT_ID, cluster_arn, client_error, tags_dict, uniq


def test_create_cluster_returns_active_cluster(ecs):
    name = uniq("create")
    resp = ecs.create_cluster(clusterName=name)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["ResponseMetadata"]["RequestId"]
    c = resp["cluster"]
    assert c["clusterArn"] == f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:cluster/{name}"
    assert c["clusterName"] == name
    assert c["status"] == "ACTIVE"
    for counter in ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount",
                    "activeServicesCount"):
        assert c[counter] == 0, (counter, c)


def test_create_cluster_is_idempotent(ecs):
    name = uniq("idem")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert second["clusterArn"] == first["clusterArn"]
    assert second["status"] == "ACTIVE"
    arns = [a for p in ecs.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    assert arns.count(first["clusterArn"]) == 1


def test_create_cluster_without_name_creates_default(ecs):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == cluster_arn("default")
    # DescribeClusters without names describes the default cluster.
    described = ecs.describe_clusters()
    assert [x["clusterArn"] for x in described["clusters"]] == [cluster_arn("default")]
    assert described["failures"] == []


def test_describe_clusters_by_name_and_arn_reports_missing_as_failures(ecs):
    a, b, missing = uniq("desc-a"), uniq("desc-b"), uniq("desc-missing")
    ecs.create_cluster(clusterName=a)
    ecs.create_cluster(clusterName=b)
    resp = ecs.describe_clusters(clusters=[a, cluster_arn(b), missing])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sorted(c["clusterName"] for c in resp["clusters"]) == sorted([a, b])
    assert all(c["status"] == "ACTIVE" for c in resp["clusters"])
    assert resp["failures"] == [{"arn": cluster_arn(missing), "reason": "MISSING"}]


def test_describe_clusters_include_tags_settings_statistics(ecs):
    name = uniq("incl")
    ecs.create_cluster(
        clusterName=name,
        tags=[{"key": "team", "value": "platform"}, {"key": "env", "value": "test"}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )
    c = ecs.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS", "STATISTICS"])["clusters"][0]
    assert tags_dict(c.get("tags")) == {"team": "platform", "env": "test"}
    assert {"name": "containerInsights", "value": "enabled"} in c.get("settings", [])
    assert isinstance(c.get("statistics"), list)


def test_list_clusters_pagination(ecs):
    prefix = uniq("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    wanted = {cluster_arn(n) for n in names}

    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 2}
        if token:
            kw["nextToken"] = token
        page = ecs.list_clusters(**kw)
        assert len(page["clusterArns"]) <= 2, page
        seen += page["clusterArns"]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
        assert pages < 1000, "nextToken never ends"
    assert len(seen) == len(set(seen)), f"duplicates across pages: {seen}"
    assert wanted <= set(seen)
    assert pages >= 3

    via_paginator = [
        a
        for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2})
        for a in p["clusterArns"]
    ]
    assert len(via_paginator) == len(set(via_paginator))
    assert wanted <= set(via_paginator)

    # MaxItems makes the paginator hand back a resume token that must continue where it stopped.
    first = ecs.get_paginator("list_clusters").paginate(PaginationConfig={"MaxItems": 3, "PageSize": 2})
    first_full = first.build_full_result()
    assert len(first_full["clusterArns"]) == 3
    rest = ecs.get_paginator("list_clusters").paginate(
        PaginationConfig={"PageSize": 2, "StartingToken": first_full["NextToken"]}
    ).build_full_result()
    assert sorted(first_full["clusterArns"] + rest["clusterArns"]) == sorted(via_paginator)


def test_update_cluster_settings(ecs):
    name = uniq("settings")
    ecs.create_cluster(clusterName=name)
    resp = ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}])
    assert resp["cluster"]["clusterArn"] == cluster_arn(name)
    assert {"name": "containerInsights", "value": "enabled"} in resp["cluster"]["settings"]
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in c["settings"]

    ecs.update_cluster_settings(cluster=cluster_arn(name), settings=[{"name": "containerInsights", "value": "disabled"}])
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "disabled"} in c["settings"]


def test_update_cluster_configuration_and_settings(ecs):
    name = uniq("update")
    ecs.create_cluster(clusterName=name)
    configuration = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    resp = ecs.update_cluster(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}], configuration=configuration
    )
    c = resp["cluster"]
    assert c["clusterArn"] == cluster_arn(name)
    assert c["status"] == "ACTIVE"
    c = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS", "SETTINGS"])["clusters"][0]
    assert c["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT"
    assert {"name": "containerInsights", "value": "enabled"} in c["settings"]


def _strategy(items):
    return sorted(
        ({"capacityProvider": i["capacityProvider"], "weight": i.get("weight", 0), "base": i.get("base", 0)}
         for i in items),
        key=lambda i: i["capacityProvider"],
    )


def test_put_cluster_capacity_providers(ecs):
    name = uniq("cp")
    ecs.create_cluster(clusterName=name)
    strategy = [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 3},
    ]
    resp = ecs.put_cluster_capacity_providers(
        cluster=name, capacityProviders=["FARGATE", "FARGATE_SPOT"], defaultCapacityProviderStrategy=strategy
    )
    c = resp["cluster"]
    assert sorted(c["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    assert _strategy(c["defaultCapacityProviderStrategy"]) == _strategy(strategy)

    c = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert sorted(c["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    assert _strategy(c["defaultCapacityProviderStrategy"]) == _strategy(strategy)

    # Empty lists remove them again.
    c = ecs.put_cluster_capacity_providers(
        cluster=name, capacityProviders=[], defaultCapacityProviderStrategy=[]
    )["cluster"]
    assert c.get("capacityProviders", []) == []
    assert c.get("defaultCapacityProviderStrategy", []) == []


def test_create_cluster_with_capacity_providers(ecs):
    name = uniq("cp-create")
    c = ecs.create_cluster(
        clusterName=name,
        capacityProviders=["FARGATE"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )["cluster"]
    assert c["capacityProviders"] == ["FARGATE"]
    assert _strategy(c["defaultCapacityProviderStrategy"]) == [{"capacityProvider": "FARGATE", "weight": 1, "base": 0}]


def test_tag_untag_list_tags(ecs):
    name = uniq("tags")
    arn = ecs.create_cluster(clusterName=name, tags=[{"key": "a", "value": "1"}])["cluster"]["clusterArn"]
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"a": "1"}

    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}, {"key": "a", "value": "one"}])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"a": "one", "b": "2"}

    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"b": "2"}

    c = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert tags_dict(c["tags"]) == {"b": "2"}


def test_delete_cluster_leaves_it_inactive(ecs):
    name = uniq("delete")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["clusterArn"] == arn
    assert deleted["status"] == "INACTIVE"

    resp = ecs.describe_clusters(clusters=[name])
    assert resp["failures"] == []
    assert [(c["clusterArn"], c["status"]) for c in resp["clusters"]] == [(arn, "INACTIVE")]

    listed = [a for p in ecs.get_paginator("list_clusters").paginate() for a in p["clusterArns"]]
    assert arn not in listed

    # A cluster of the same name can be created again.
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["clusterArn"] == arn
    assert again["status"] == "ACTIVE"


def test_delete_cluster_by_arn(ecs):
    name = uniq("delete-arn")
    arn = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert ecs.delete_cluster(cluster=arn)["cluster"]["status"] == "INACTIVE"


@pytest.mark.parametrize(
    "call",
    [
        lambda ecs, n: ecs.delete_cluster(cluster=n),
        lambda ecs, n: ecs.update_cluster(cluster=n, settings=[{"name": "containerInsights", "value": "enabled"}]),
        lambda ecs, n: ecs.update_cluster_settings(cluster=n, settings=[{"name": "containerInsights", "value": "enabled"}]),
        lambda ecs, n: ecs.put_cluster_capacity_providers(
            cluster=n, capacityProviders=["FARGATE"], defaultCapacityProviderStrategy=[]
        ),
    ],
    ids=["delete", "update", "update-settings", "put-capacity-providers"],
)
def test_unknown_cluster_raises_cluster_not_found(ecs, call):
    name = uniq("nope")
    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as exc:
        call(ecs, name)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert exc.value.response["Error"]["Message"]
    # ...and it did not create the cluster as a side effect.
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


def test_invalid_cluster_name_is_rejected(ecs):
    for bad in ["has space", "slash/y", "x" * 256, "ünïcode"]:
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.create_cluster(clusterName=bad)
    # Letters, digits, hyphens and underscores, up to 255 of them, are fine.
    ok = ("Aa0-_" + uniq("n")).ljust(255, "z")
    assert ecs.create_cluster(clusterName=ok)["cluster"]["clusterName"] == ok


def test_reserved_tag_key_is_rejected_on_create_and_tag(ecs):
    name = uniq("awstag")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_cluster(clusterName=name, tags=[{"key": "aws:x", "value": "1"}])
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]

    arn = ecs.create_cluster(clusterName=name, tags=[{"key": "keep", "value": "1"}])["cluster"]["clusterArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "ok", "value": "2"}, {"key": "aws:x", "value": "1"}])
    # All or nothing: the valid tag of the rejected call was not applied either.
    assert tags_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == {"keep": "1"}


def test_too_many_tags_are_rejected(ecs):
    name = uniq("manytags")
    err = client_error(ecs.create_cluster, clusterName=name,
                       tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert err.response["Error"]["Code"] in ("InvalidParameterException", "ClientException"), err.response
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


def test_tags_on_unknown_resource(ecs):
    arn = cluster_arn(uniq("ghost"))
    err = client_error(ecs.list_tags_for_resource, resourceArn=arn)
    assert err.response["Error"]["Code"] in ("ClusterNotFoundException", "ResourceNotFoundException",
                                             "InvalidParameterException"), err.response
    err = client_error(ecs.tag_resource, resourceArn=arn, tags=[{"key": "a", "value": "b"}])
    assert err.response["Error"]["Code"] in ("ClusterNotFoundException", "ResourceNotFoundException",
                                             "InvalidParameterException"), err.response


def test_clusters_with_the_aws_cli(aws):
    name = uniq("cli")
    created = aws("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=owner,value=cli")
    assert created["cluster"]["clusterArn"] == cluster_arn(name)
    assert created["cluster"]["status"] == "ACTIVE"

    described = aws("ecs", "describe-clusters", "--clusters", name, "--include", "TAGS")
    assert described["clusters"][0]["clusterName"] == name
    assert tags_dict(described["clusters"][0]["tags"]) == {"owner": "cli"}

    # The CLI paginates by itself; a small page size forces several requests.
    listed = aws("ecs", "list-clusters", "--page-size", "2")
    assert cluster_arn(name) in listed["clusterArns"]
    assert len(listed["clusterArns"]) == len(set(listed["clusterArns"]))

    aws("ecs", "tag-resource", "--resource-arn", cluster_arn(name), "--tags", "key=stage,value=e2e")
    tags = aws("ecs", "list-tags-for-resource", "--resource-arn", cluster_arn(name))
    assert tags_dict(tags["tags"]) == {"owner": "cli", "stage": "e2e"}
    aws("ecs", "untag-resource", "--resource-arn", cluster_arn(name), "--tag-keys", "owner")
    assert tags_dict(aws("ecs", "list-tags-for-resource", "--resource-arn", cluster_arn(name))["tags"]) == {
        "stage": "e2e"
    }

    deleted = aws("ecs", "delete-cluster", "--cluster", name)
    assert deleted["cluster"]["status"] == "INACTIVE"

    missing = aws("ecs", "describe-clusters", "--clusters", uniq("cli-missing"))
    assert missing["clusters"] == []
    assert missing["failures"][0]["reason"] == "MISSING"


def test_cli_error_exit_code(aws):
    from harness import AwsCliError

    with pytest.raises(AwsCliError) as exc:
        aws("ecs", "delete-cluster", "--cluster", uniq("cli-nope"))
    assert exc.value.code == "ClusterNotFoundException"
    assert exc.value.returncode == 255  # AWS CLI v1's exit code for a service error


def test_no_ecs_waiter_applies_to_clusters_or_task_definitions(ecs):
    # `aws ecs wait` and boto3 waiters exist only for services and tasks; checked here so this file says so
    # with evidence, and fails if botocore ever adds one that should be exercised.
    operations = {name: ecs.get_waiter(name).config.operation for name in ecs.waiter_names}
    applicable = {n: op for n, op in operations.items()
                  if op in ("DescribeClusters", "DescribeTaskDefinition", "ListTaskDefinitions")}
    assert applicable == {}, f"botocore now has waiters to exercise here: {applicable}"
    pytest.skip("ECS has no waiter for clusters or task definitions (only for services, tasks and daemons)")
