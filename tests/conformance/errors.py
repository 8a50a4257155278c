"""How to provoke each modelled error, and which ones cannot be provoked yet.

Every error code that the model lists for an implemented operation must be either in RECIPES (a call that
produces it; the suite makes it with boto3 and checks boto3 raises `client.exceptions.<Code>`) or in
NOT_PRODUCIBLE (with the reason, and optionally the operation whose arrival makes it producible, at which
point the suite asks for a recipe). `test_modeled_errors_accounted_for` enforces that.

Recipes only use values botocore's own parameter validation lets through (they are sent by boto3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Recipe:
    service: str
    operation: str
    code: str
    label: str
    params: Callable[[Any], dict]  # world -> boto3 keyword arguments

    @property
    def id(self) -> str:
        return f"{self.service}.{self.operation}.error.{self.code}" + (f".{self.label}" if self.label else "")


def _missing_cluster(w: Any) -> str:
    return w.unique("missing")


def _missing_cluster_arn(w: Any) -> str:
    return w.ecs_arn(f"cluster/{w.unique('missing')}")


def _missing_task_definition_arn(w: Any) -> str:
    return w.ecs_arn(f"task-definition/{w.unique('missing')}:1")


R = Recipe
RECIPES: list[Recipe] = [
    # ClusterNotFoundException: a cluster that does not exist
    R("ecs", "UpdateCluster", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    R("ecs", "UpdateClusterSettings", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    R("ecs", "PutClusterCapacityProviders", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "capacityProviders": ["FARGATE"], "defaultCapacityProviderStrategy": []}),
    R("ecs", "DeleteCluster", "ClusterNotFoundException", "", lambda w: {"cluster": _missing_cluster(w)}),
    R("ecs", "DeleteCluster", "ClusterNotFoundException", "already-deleted",
      lambda w: {"cluster": w.deleted_cluster()}),
    R("ecs", "TagResource", "ClusterNotFoundException", "",
      lambda w: {"resourceArn": _missing_cluster_arn(w), "tags": [{"key": "k", "value": "v"}]}),
    R("ecs", "UntagResource", "ClusterNotFoundException", "",
      lambda w: {"resourceArn": _missing_cluster_arn(w), "tagKeys": ["k"]}),
    R("ecs", "ListTagsForResource", "ClusterNotFoundException", "", lambda w: {"resourceArn": _missing_cluster_arn(w)}),
    # InvalidParameterException: values ECS refuses as invalid
    R("ecs", "CreateCluster", "InvalidParameterException", "bad-name", lambda w: {"clusterName": "not a valid name!"}),
    R("ecs", "CreateCluster", "InvalidParameterException", "unknown-capacity-provider",
      lambda w: {"clusterName": w.unique("conf"), "capacityProviders": ["NO_SUCH_PROVIDER"]}),
    R("ecs", "DescribeClusters", "InvalidParameterException", "too-many",
      lambda w: {"clusters": [f"c{i}" for i in range(101)]}),
    R("ecs", "ListClusters", "InvalidParameterException", "max-results", lambda w: {"maxResults": 101}),
    R("ecs", "ListTaskDefinitions", "InvalidParameterException", "next-token", lambda w: {"nextToken": "not-a-token"}),
    R("ecs", "ListTaskDefinitionFamilies", "InvalidParameterException", "max-results", lambda w: {"maxResults": 0}),
    R("ecs", "UpdateCluster", "InvalidParameterException", "bad-setting",
      lambda w: {"cluster": w.cluster_name, "settings": [{"name": "containerInsights", "value": "sometimes"}]}),
    R("ecs", "UpdateClusterSettings", "InvalidParameterException", "bad-setting",
      lambda w: {"cluster": w.cluster_name, "settings": [{"name": "containerInsights", "value": "sometimes"}]}),
    R("ecs", "PutClusterCapacityProviders", "InvalidParameterException", "strategy-not-associated",
      lambda w: {"cluster": w.cluster_name, "capacityProviders": ["FARGATE"],
                 "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]}),
    R("ecs", "TagResource", "InvalidParameterException", "bad-arn",
      lambda w: {"resourceArn": "not-an-arn", "tags": [{"key": "k", "value": "v"}]}),
    R("ecs", "UntagResource", "InvalidParameterException", "bad-arn",
      lambda w: {"resourceArn": "not-an-arn", "tagKeys": ["k"]}),
    R("ecs", "ListTagsForResource", "InvalidParameterException", "bad-arn", lambda w: {"resourceArn": "not-an-arn"}),
    R("ecs", "DeleteTaskDefinitions", "InvalidParameterException", "too-many",
      lambda w: {"taskDefinitions": [f"{w.family}:{i}" for i in range(1, 12)]}),
    # ClientException: requests ECS refuses on semantic grounds
    R("ecs", "RegisterTaskDefinition", "ClientException", "fargate-cpu-memory",
      lambda w: {"family": w.unique("conf"), "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
                 "cpu": "256", "memory": "8192", "containerDefinitions": [{"name": "web", "image": "busybox"}]}),
    R("ecs", "DescribeTaskDefinition", "ClientException", "missing", lambda w: {"taskDefinition": w.unique("missing")}),
    R("ecs", "DeregisterTaskDefinition", "ClientException", "missing",
      lambda w: {"taskDefinition": f"{w.unique('missing')}:1"}),
    R("ecs", "ListTagsForResource", "ClientException", "missing-task-definition",
      lambda w: {"resourceArn": _missing_task_definition_arn(w)}),
    # ResourceNotFoundException
    R("ecs", "TagResource", "ResourceNotFoundException", "missing-task-definition",
      lambda w: {"resourceArn": _missing_task_definition_arn(w), "tags": [{"key": "k", "value": "v"}]}),
    R("ecs", "UntagResource", "ResourceNotFoundException", "missing-task-definition",
      lambda w: {"resourceArn": _missing_task_definition_arn(w), "tagKeys": ["k"]}),
]

# code -> (why it cannot be provoked yet, the (service, operation) whose arrival should make it producible)
NOT_PRODUCIBLE: dict[tuple[str, str], tuple[str, Optional[tuple[str, str]]]] = {
    ("ecs", "AccessDeniedException"): ("every caller is the root user until IAM exists", ("iam", "CreateUser")),
    ("ecs", "ServerException"): ("a server-side fault: no well-behaved request can ask for it", None),
    ("ecs", "NamespaceNotFoundException"): (
        "Skiff has no AWS Cloud Map: serviceConnectDefaults.namespace is stored unchecked", None),
    ("ecs", "UpdateInProgressException"): ("raised while an ECS agent update runs; Skiff has no agent updates", None),
    ("ecs", "LimitExceededException"): (
        "account quotas (e.g. 1,000,000 revisions per family) are out of a test's reach; Skiff reports a "
        "51st tag as InvalidParameterException", None),
    ("ecs", "ClusterContainsServicesException"): ("needs a service in the cluster", ("ecs", "CreateService")),
    ("ecs", "ClusterContainsTasksException"): ("needs a task in the cluster", ("ecs", "RunTask")),
    ("ecs", "ClusterContainsContainerInstancesException"): (
        "needs a registered container instance", ("ecs", "RegisterContainerInstance")),
    ("ecs", "ClusterContainsCapacityProviderException"): (
        "needs a custom (Auto Scaling group) capacity provider", ("ecs", "CreateCapacityProvider")),
    ("ecs", "ResourceInUseException"): (
        "needs a capacity provider in use by a service", ("ecs", "CreateService")),
}
