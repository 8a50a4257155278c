"""How to provoke each modelled error, and which ones cannot be provoked yet.

Every error code that the model lists for an implemented operation (for EC2, whose model lists none, the
documented errors of models.EC2_DOCUMENTED_ERRORS) must be either in RECIPES (a call that produces it; the
suite makes it with boto3 and checks boto3 raises `client.exceptions.<Code>`, or for EC2 a ClientError
with that code) or in
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


def _service_request(w: Any, **changes: Any) -> dict:
    """A CreateService request that succeeds (a new service of no tasks in the session's cluster), with
    `changes` applied (a None removes the member)."""
    request = {"cluster": w.cluster_name, "serviceName": w.unique("conf-svc"),
               "taskDefinition": w.service_task_definition_arn, "desiredCount": 0,
               "networkConfiguration": w.service_network_configuration()}
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


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
    # tasks
    R("ecs", "RunTask", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "taskDefinition": w.task_definition_arn,
                 "networkConfiguration": w.network_configuration()}),
    R("ecs", "RunTask", "InvalidParameterException", "count",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.task_definition_arn, "count": 11,
                 "networkConfiguration": w.network_configuration()}),
    R("ecs", "RunTask", "InvalidParameterException", "no-network-configuration",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.task_definition_arn}),
    R("ecs", "RunTask", "ClientException", "missing-task-definition",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.unique("missing"),
                 "networkConfiguration": w.network_configuration()}),
    R("ecs", "RunTask", "ConflictException", "client-token-reused",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.task_definition_arn, "startedBy": "another",
                 "clientToken": w.used_client_token(), "networkConfiguration": w.network_configuration()}),
    R("ecs", "RunTask", "PlatformUnknownException", "",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.task_definition_arn, "platformVersion": "9.9.9",
                 "networkConfiguration": w.network_configuration()}),
    R("ecs", "RunTask", "PlatformTaskDefinitionIncompatibilityException", "storage-on-1.3.0",
      lambda w: {"cluster": w.cluster_name, "taskDefinition": w.task_definition_arn, "platformVersion": "1.3.0",
                 "overrides": {"ephemeralStorage": {"sizeInGiB": 30}},
                 "networkConfiguration": w.network_configuration()}),
    R("ecs", "StopTask", "ClusterNotFoundException", "", lambda w: {"cluster": _missing_cluster(w), "task": "0" * 32}),
    R("ecs", "StopTask", "InvalidParameterException", "missing-task",
      lambda w: {"cluster": w.cluster_name, "task": "0" * 32}),
    R("ecs", "DescribeTasks", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "tasks": ["0" * 32]}),
    R("ecs", "DescribeTasks", "InvalidParameterException", "empty", lambda w: {"cluster": w.cluster_name, "tasks": []}),
    R("ecs", "ListTasks", "ClusterNotFoundException", "", lambda w: {"cluster": _missing_cluster(w)}),
    R("ecs", "ListTasks", "InvalidParameterException", "max-results",
      lambda w: {"cluster": w.cluster_name, "maxResults": 101}),
    R("ecs", "ListTasks", "ServiceNotFoundException", "",
      lambda w: {"cluster": w.cluster_name, "serviceName": w.unique("missing")}),
    # A task that has not stopped keeps its cluster (the task was started just before, and serves HTTP
    # until stopped, so it is not STOPPED yet whatever the task controller does with it).
    R("ecs", "DeleteCluster", "ClusterContainsTasksException", "", lambda w: {"cluster": w.cluster_with_task()}),
    # services
    R("ecs", "CreateService", "ClusterNotFoundException", "",
      lambda w: _service_request(w, cluster=_missing_cluster(w))),
    R("ecs", "CreateService", "InvalidParameterException", "bad-name",
      lambda w: _service_request(w, serviceName="not a valid name!")),
    R("ecs", "CreateService", "InvalidParameterException", "no-network-configuration",
      lambda w: _service_request(w, networkConfiguration=None)),
    R("ecs", "CreateService", "InvalidParameterException", "no-desired-count",
      lambda w: _service_request(w, desiredCount=None)),
    R("ecs", "CreateService", "InvalidParameterException", "maximum-percent",
      lambda w: _service_request(w, deploymentConfiguration={"maximumPercent": 50})),
    R("ecs", "CreateService", "InvalidParameterException", "role-with-awsvpc",
      lambda w: _service_request(w, role=f"arn:aws:iam::{w.account}:role/ecsServiceRole")),
    R("ecs", "CreateService", "InvalidParameterException", "existing-name",
      lambda w: _service_request(w, serviceName=w.service_name)),
    R("ecs", "CreateService", "ClientException", "missing-task-definition",
      lambda w: _service_request(w, taskDefinition=w.unique("missing"))),
    R("ecs", "CreateService", "PlatformUnknownException", "",
      lambda w: _service_request(w, platformVersion="9.9.9")),
    R("ecs", "CreateService", "PlatformTaskDefinitionIncompatibilityException", "storage-on-1.3.0",
      lambda w: _service_request(w, taskDefinition=w.storage_task_definition_arn, platformVersion="1.3.0")),
    R("ecs", "UpdateService", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "service": w.service_name, "desiredCount": 0}),
    R("ecs", "UpdateService", "ServiceNotFoundException", "",
      lambda w: {"cluster": w.cluster_name, "service": w.unique("missing"), "desiredCount": 0}),
    R("ecs", "UpdateService", "ServiceNotActiveException", "deleted",
      lambda w: {"cluster": w.cluster_name, "service": w.deleted_service(), "desiredCount": 0}),
    R("ecs", "UpdateService", "InvalidParameterException", "negative-desired-count",
      lambda w: {"cluster": w.cluster_name, "service": w.fresh_service(), "desiredCount": -1}),
    R("ecs", "UpdateService", "ClientException", "missing-task-definition",
      lambda w: {"cluster": w.cluster_name, "service": w.fresh_service(), "taskDefinition": w.unique("missing")}),
    R("ecs", "UpdateService", "PlatformUnknownException", "",
      lambda w: {"cluster": w.cluster_name, "service": w.fresh_service(), "platformVersion": "9.9.9"}),
    R("ecs", "UpdateService", "PlatformTaskDefinitionIncompatibilityException", "storage-on-1.3.0",
      lambda w: {"cluster": w.cluster_name, "service": w.fresh_service(),
                 "taskDefinition": w.storage_task_definition_arn, "platformVersion": "1.3.0"}),
    R("ecs", "DeleteService", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "service": w.service_name}),
    R("ecs", "DeleteService", "ServiceNotFoundException", "",
      lambda w: {"cluster": w.cluster_name, "service": w.unique("missing")}),
    # A service with tasks desired is deleted only with force (ECS: "scaled above 0").
    R("ecs", "DeleteService", "InvalidParameterException", "desired-count-without-force",
      lambda w: {"cluster": w.cluster_name, "service": w.fresh_service(desired_count=1)}),
    R("ecs", "DescribeServices", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "services": [w.service_name]}),
    R("ecs", "DescribeServices", "InvalidParameterException", "too-many",
      lambda w: {"cluster": w.cluster_name, "services": [f"s{i}" for i in range(11)]}),
    R("ecs", "ListServices", "ClusterNotFoundException", "", lambda w: {"cluster": _missing_cluster(w)}),
    R("ecs", "ListServices", "InvalidParameterException", "max-results",
      lambda w: {"cluster": w.cluster_name, "maxResults": 101}),
    R("ecs", "ListServices", "InvalidParameterException", "next-token",
      lambda w: {"cluster": w.cluster_name, "nextToken": "not-a-token"}),
    R("ecs", "ListServiceDeployments", "ClusterNotFoundException", "",
      lambda w: {"cluster": _missing_cluster(w), "service": w.service_name}),
    R("ecs", "ListServiceDeployments", "ServiceNotFoundException", "",
      lambda w: {"cluster": w.cluster_name, "service": w.unique("missing")}),
    R("ecs", "ListServiceDeployments", "InvalidParameterException", "max-results",
      lambda w: {"cluster": w.cluster_name, "service": w.service_name, "maxResults": 101}),
    R("ecs", "DescribeServiceDeployments", "InvalidParameterException", "too-many",
      lambda w: {"serviceDeploymentArns": [w.service_deployment_arn] * 21}),
    # A capacity provider a service runs on stays with its cluster.
    R("ecs", "PutClusterCapacityProviders", "ResourceInUseException", "",
      lambda w: {"cluster": w.cluster_with_spot_service(), "capacityProviders": ["FARGATE"],
                 "defaultCapacityProviderStrategy": []}),
    # An active service keeps its cluster.
    R("ecs", "DeleteCluster", "ClusterContainsServicesException", "", lambda w: {"cluster": w.cluster_with_service()}),
    # ResourceNotFoundException
    R("ecs", "TagResource", "ResourceNotFoundException", "missing-service",
      lambda w: {"resourceArn": w.ecs_arn(f"service/{w.cluster_name}/{w.unique('missing')}"),
                 "tags": [{"key": "k", "value": "v"}]}),
    R("ecs", "TagResource", "ResourceNotFoundException", "missing-task-definition",
      lambda w: {"resourceArn": _missing_task_definition_arn(w), "tags": [{"key": "k", "value": "v"}]}),
    R("ecs", "UntagResource", "ResourceNotFoundException", "missing-task-definition",
      lambda w: {"resourceArn": _missing_task_definition_arn(w), "tagKeys": ["k"]}),
]


# -- ECR ------------------------------------------------------------------------------------------------
# Names and values botocore lets through (it checks types and minimums, not patterns or maximums).

BAD_REPOSITORY_NAME = "Not_A_Valid/Name!"  # upper case and '!': outside RepositoryName's pattern
MISSING_DIGEST = "sha256:" + "0" * 64


def _missing_repository(w: Any) -> str:
    return w.unique("missing")


def _missing_repository_arn(w: Any) -> str:
    return w.ecr_repository_arn(w.unique("missing"))


def _invalid_lifecycle_policy() -> str:
    # Valid JSON over the 100-character minimum; a tagged rule must say which tags it selects.
    import json

    return json.dumps({"rules": [{"rulePriority": 1, "description": "a tagged rule that selects no tags",
                                  "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan",
                                                "countNumber": 1},
                                  "action": {"type": "expire"}}]})


def _lifecycle_policy() -> str:
    from world import lifecycle_policy

    return lifecycle_policy()


def _tags(n: int) -> list[dict]:
    return [{"Key": f"k{i}", "Value": "v"} for i in range(n)]


RECIPES += [
    # RepositoryNotFoundException: every operation that names a repository, for one that does not exist
    R("ecr", "DescribeRepositories", "RepositoryNotFoundException", "",
      lambda w: {"repositoryNames": [w.repository_name, _missing_repository(w)]}),
    R("ecr", "DeleteRepository", "RepositoryNotFoundException", "", lambda w: {"repositoryName": _missing_repository(w)}),
    R("ecr", "PutImageTagMutability", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w), "imageTagMutability": "IMMUTABLE"}),
    R("ecr", "PutImageScanningConfiguration", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w), "imageScanningConfiguration": {"scanOnPush": True}}),
    R("ecr", "DescribeImages", "RepositoryNotFoundException", "", lambda w: {"repositoryName": _missing_repository(w)}),
    R("ecr", "ListImages", "RepositoryNotFoundException", "", lambda w: {"repositoryName": _missing_repository(w)}),
    R("ecr", "BatchGetImage", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w), "imageIds": [{"imageTag": "v1"}]}),
    R("ecr", "BatchDeleteImage", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w), "imageIds": [{"imageTag": "v1"}]}),
    R("ecr", "PutLifecyclePolicy", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w), "lifecyclePolicyText": _lifecycle_policy()}),
    R("ecr", "GetLifecyclePolicy", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w)}),
    R("ecr", "DeleteLifecyclePolicy", "RepositoryNotFoundException", "",
      lambda w: {"repositoryName": _missing_repository(w)}),
    R("ecr", "TagResource", "RepositoryNotFoundException", "",
      lambda w: {"resourceArn": _missing_repository_arn(w), "tags": _tags(1)}),
    R("ecr", "UntagResource", "RepositoryNotFoundException", "",
      lambda w: {"resourceArn": _missing_repository_arn(w), "tagKeys": ["k0"]}),
    R("ecr", "ListTagsForResource", "RepositoryNotFoundException", "",
      lambda w: {"resourceArn": _missing_repository_arn(w)}),
    R("ecr", "DeleteRepository", "RepositoryNotFoundException", "already-deleted",
      lambda w: {"repositoryName": _deleted_repository(w)}),
    # RepositoryAlreadyExistsException, RepositoryNotEmptyException
    R("ecr", "CreateRepository", "RepositoryAlreadyExistsException", "",
      lambda w: {"repositoryName": w.repository_name}),
    R("ecr", "DeleteRepository", "RepositoryNotEmptyException", "without-force",
      lambda w: {"repositoryName": w.fresh_repository(image=True)}),
    # ImageNotFoundException: DescribeImages naming an image the repository does not have
    R("ecr", "DescribeImages", "ImageNotFoundException", "tag",
      lambda w: {"repositoryName": w.repository_name, "imageIds": [{"imageTag": w.unique("missing")}]}),
    R("ecr", "DescribeImages", "ImageNotFoundException", "digest",
      lambda w: {"repositoryName": w.repository_name, "imageIds": [{"imageDigest": MISSING_DIGEST}]}),
    # LifecyclePolicyNotFoundException: a repository without a policy
    R("ecr", "GetLifecyclePolicy", "LifecyclePolicyNotFoundException", "",
      lambda w: {"repositoryName": w.fresh_repository()}),
    R("ecr", "DeleteLifecyclePolicy", "LifecyclePolicyNotFoundException", "",
      lambda w: {"repositoryName": w.fresh_repository()}),
    # InvalidParameterException: one invalid value per operation
    R("ecr", "CreateRepository", "InvalidParameterException", "bad-name",
      lambda w: {"repositoryName": BAD_REPOSITORY_NAME}),
    R("ecr", "CreateRepository", "InvalidParameterException", "aes256-with-kms-key",
      lambda w: {"repositoryName": w.unique("conf"),
                 "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": "alias/conformance"}}),
    R("ecr", "DescribeRepositories", "InvalidParameterException", "max-results", lambda w: {"maxResults": 1001}),
    R("ecr", "DescribeRepositories", "InvalidParameterException", "names-with-max-results",
      lambda w: {"repositoryNames": [w.repository_name], "maxResults": 10}),
    R("ecr", "DeleteRepository", "InvalidParameterException", "bad-name",
      lambda w: {"repositoryName": BAD_REPOSITORY_NAME}),
    R("ecr", "PutImageTagMutability", "InvalidParameterException", "bad-registry-id",
      lambda w: {"registryId": "not-an-account", "repositoryName": w.repository_name, "imageTagMutability": "MUTABLE"}),
    R("ecr", "PutImageScanningConfiguration", "InvalidParameterException", "bad-name",
      lambda w: {"repositoryName": BAD_REPOSITORY_NAME, "imageScanningConfiguration": {"scanOnPush": True}}),
    R("ecr", "DescribeImages", "InvalidParameterException", "image-ids-with-max-results",
      lambda w: {"repositoryName": w.repository_name, "imageIds": [{"imageTag": w.image_tag}], "maxResults": 10}),
    R("ecr", "ListImages", "InvalidParameterException", "max-results",
      lambda w: {"repositoryName": w.repository_name, "maxResults": 1001}),
    R("ecr", "BatchGetImage", "InvalidParameterException", "too-many-image-ids",
      lambda w: {"repositoryName": w.repository_name, "imageIds": [{"imageTag": f"t{i}"} for i in range(101)]}),
    R("ecr", "BatchDeleteImage", "InvalidParameterException", "too-many-image-ids",
      lambda w: {"repositoryName": w.repository_name, "imageIds": [{"imageTag": f"t{i}"} for i in range(101)]}),
    R("ecr", "GetAuthorizationToken", "InvalidParameterException", "bad-registry-id",
      lambda w: {"registryIds": ["not-an-account"]}),
    R("ecr", "PutLifecyclePolicy", "InvalidParameterException", "invalid-policy",
      lambda w: {"repositoryName": w.fresh_repository(), "lifecyclePolicyText": _invalid_lifecycle_policy()}),
    R("ecr", "GetLifecyclePolicy", "InvalidParameterException", "bad-name",
      lambda w: {"repositoryName": BAD_REPOSITORY_NAME}),
    R("ecr", "DeleteLifecyclePolicy", "InvalidParameterException", "bad-name",
      lambda w: {"repositoryName": BAD_REPOSITORY_NAME}),
    R("ecr", "TagResource", "InvalidParameterException", "ecs-arn",
      lambda w: {"resourceArn": w.cluster_arn, "tags": _tags(1)}),
    R("ecr", "UntagResource", "InvalidParameterException", "not-an-arn",
      lambda w: {"resourceArn": "not-an-arn", "tagKeys": ["k0"]}),
    R("ecr", "ListTagsForResource", "InvalidParameterException", "not-an-arn",
      lambda w: {"resourceArn": "not-an-arn"}),
    # InvalidTagParameterException: keys and values outside the tag rules
    R("ecr", "CreateRepository", "InvalidTagParameterException", "reserved-prefix",
      lambda w: {"repositoryName": w.unique("conf"), "tags": [{"Key": "aws:reserved", "Value": "v"}]}),
    R("ecr", "TagResource", "InvalidTagParameterException", "value-too-long",
      lambda w: {"resourceArn": w.fresh_repository_arn(), "tags": [{"Key": "k", "Value": "v" * 257}]}),
    R("ecr", "UntagResource", "InvalidTagParameterException", "key-too-long",
      lambda w: {"resourceArn": w.repository_arn, "tagKeys": ["k" * 129]}),
    # TooManyTagsException: more than 50 tags on a repository
    R("ecr", "CreateRepository", "TooManyTagsException", "",
      lambda w: {"repositoryName": w.unique("conf"), "tags": _tags(51)}),
    R("ecr", "TagResource", "TooManyTagsException", "with-existing",
      lambda w: {"resourceArn": w.fresh_repository_arn(tags=True), "tags": _tags(49)}),
]


# -- EC2 -------------------------------------------------------------------------------------------------
# EC2's model declares no errors: the recipes provoke the documented resource errors of each operation
# (models.EC2_DOCUMENTED_ERRORS) and the common errors Skiff answers for bad parameters. boto3 has no
# exception classes for EC2: the suite checks the ClientError's code.

MISSING_VPC = "vpc-0000000000000dead"
MISSING_SUBNET = "subnet-0000000000000dead"
MISSING_GROUP = "sg-0000000000000dead"

RECIPES += [
    R("ec2", "DescribeVpcs", "InvalidVpcID.NotFound", "", lambda w: {"VpcIds": [MISSING_VPC]}),
    R("ec2", "DescribeVpcs", "InvalidVpcID.NotFound", "one-of-two",
      lambda w: {"VpcIds": [w.default_vpc_id, MISSING_VPC]}),
    R("ec2", "DescribeVpcs", "InvalidParameterValue", "unknown-filter",
      lambda w: {"Filters": [{"Name": "colour", "Values": ["blue"]}]}),
    R("ec2", "DescribeVpcs", "InvalidParameterCombination", "ids-with-max-results",
      lambda w: {"VpcIds": [w.default_vpc_id], "MaxResults": 5}),
    R("ec2", "DescribeVpcAttribute", "InvalidVpcID.NotFound", "",
      lambda w: {"VpcId": MISSING_VPC, "Attribute": "enableDnsSupport"}),
    R("ec2", "DescribeVpcAttribute", "InvalidParameterValue", "unknown-attribute",
      lambda w: {"VpcId": w.default_vpc_id, "Attribute": "enableColour"}),
    R("ec2", "DescribeSubnets", "InvalidSubnetID.NotFound", "", lambda w: {"SubnetIds": [MISSING_SUBNET]}),
    R("ec2", "DescribeSubnets", "InvalidParameterValue", "max-results", lambda w: {"MaxResults": 1001}),
    R("ec2", "DescribeSubnets", "DryRunOperation", "", lambda w: {"DryRun": True}),
    R("ec2", "DescribeSecurityGroups", "InvalidGroup.NotFound", "id", lambda w: {"GroupIds": [MISSING_GROUP]}),
    R("ec2", "DescribeSecurityGroups", "InvalidGroup.NotFound", "name",
      lambda w: {"GroupNames": [w.unique("missing")]}),
    R("ec2", "DescribeSecurityGroups", "InvalidGroupId.Malformed", "", lambda w: {"GroupIds": ["default"]}),
    R("ec2", "DescribeSecurityGroups", "InvalidPaginationToken", "", lambda w: {"NextToken": "not-a-token"}),
    R("ec2", "DescribeAvailabilityZones", "InvalidParameterValue", "unknown-zone",
      lambda w: {"ZoneNames": [f"{w.region}z"]}),
    R("ec2", "DescribeAvailabilityZones", "InvalidParameterValue", "unknown-filter",
      lambda w: {"Filters": [{"Name": "colour", "Values": ["blue"]}]}),
]


# -- ELBv2 (signing name elasticloadbalancing) -------------------------------------------------------------

ELB = "elasticloadbalancing"
_ELB_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
MISSING_LB = _ELB_ARN + "loadbalancer/app/conf-missing/0000000000000dea"
MISSING_TG = _ELB_ARN + "targetgroup/conf-missing/0000000000000dea"
MISSING_LISTENER = _ELB_ARN + "listener/app/conf-missing/0000000000000dea/0000000000000dea"
MISSING_RULE = _ELB_ARN + "listener-rule/app/conf-missing/0000000000000dea/0000000000000dea/0000000000000dea"
FIXED = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]


def _elb_tags(n: int) -> list[dict]:
    return [{"Key": f"k{i}", "Value": "v"} for i in range(n)]


def _lb(w: Any, **changes: Any) -> dict:
    request = {"Name": w.unique("conf-lb"), "Subnets": list(w.default_subnet_ids)}
    request.update(changes)
    return {k: v for k, v in request.items() if v is not None}


def _protected_lb(w: Any) -> str:
    arn = w.fresh_load_balancer_arn()
    w.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    return arn


def _tcp_target_group(w: Any) -> str:
    return w.elbv2.create_target_group(Name=w.unique("conf-tcp"), Protocol="TCP", Port=5432, VpcId=w.default_vpc_id,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]


def _forward(arn: str) -> list[dict]:
    return [{"Type": "forward", "TargetGroupArn": arn}]


RECIPES += [
    R(ELB, "CreateLoadBalancer", "DuplicateLoadBalancerName", "", lambda w: _lb(w, Name=w.load_balancer_name)),
    R(ELB, "CreateLoadBalancer", "InvalidConfigurationRequest", "one-zone",
      lambda w: _lb(w, Subnets=[w.default_subnet_ids[0]])),
    R(ELB, "CreateLoadBalancer", "SubnetNotFound", "", lambda w: _lb(w, Subnets=["subnet-0000000000000dead"])),
    R(ELB, "CreateLoadBalancer", "InvalidSubnet", "not-a-subnet-id", lambda w: _lb(w, Subnets=["sg-0000000000000dead"])),
    R(ELB, "CreateLoadBalancer", "InvalidSecurityGroup", "", lambda w: _lb(w, SecurityGroups=["sg-0000000000000dead"])),
    R(ELB, "CreateLoadBalancer", "InvalidScheme", "", lambda w: _lb(w, Scheme="public")),
    R(ELB, "CreateLoadBalancer", "TooManyTags", "", lambda w: _lb(w, Tags=_elb_tags(51))),
    R(ELB, "CreateLoadBalancer", "DuplicateTagKeys", "",
      lambda w: _lb(w, Tags=[{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}])),
    R(ELB, "CreateLoadBalancer", "AllocationIdNotFound", "",
      lambda w: _lb(w, Type="network", Subnets=None,
                    SubnetMappings=[{"SubnetId": w.default_subnet_ids[0], "AllocationId": "eipalloc-0000000000000dead"}])),
    R(ELB, "DeleteLoadBalancer", "OperationNotPermitted", "deletion-protection",
      lambda w: {"LoadBalancerArn": _protected_lb(w)}),
    R(ELB, "DescribeLoadBalancers", "LoadBalancerNotFound", "", lambda w: {"LoadBalancerArns": [MISSING_LB]}),
    R(ELB, "DescribeLoadBalancers", "LoadBalancerNotFound", "name", lambda w: {"Names": [w.unique("missing")]}),
    R(ELB, "ModifyLoadBalancerAttributes", "LoadBalancerNotFound", "",
      lambda w: {"LoadBalancerArn": MISSING_LB, "Attributes": [{"Key": "idle_timeout.timeout_seconds", "Value": "5"}]}),
    R(ELB, "ModifyLoadBalancerAttributes", "InvalidConfigurationRequest", "access-logs",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn,
                 "Attributes": [{"Key": "access_logs.s3.enabled", "Value": "true"}]}),
    R(ELB, "DescribeLoadBalancerAttributes", "LoadBalancerNotFound", "", lambda w: {"LoadBalancerArn": MISSING_LB}),
    R(ELB, "CreateTargetGroup", "DuplicateTargetGroupName", "",
      lambda w: {"Name": w.target_group_name, "Protocol": "HTTP", "Port": 9999, "VpcId": w.default_vpc_id,
                 "TargetType": "ip"}),
    R(ELB, "CreateTargetGroup", "InvalidConfigurationRequest", "timeout-not-below-interval",
      lambda w: {"Name": w.unique("conf-tg"), "Protocol": "HTTP", "Port": 80, "VpcId": w.default_vpc_id,
                 "TargetType": "ip", "HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 5}),
    R(ELB, "CreateTargetGroup", "TooManyTags", "",
      lambda w: {"Name": w.unique("conf-tg"), "Protocol": "HTTP", "Port": 80, "VpcId": w.default_vpc_id,
                 "TargetType": "ip", "Tags": _elb_tags(51)}),
    R(ELB, "DescribeTargetGroups", "TargetGroupNotFound", "", lambda w: {"TargetGroupArns": [MISSING_TG]}),
    R(ELB, "DescribeTargetGroups", "LoadBalancerNotFound", "", lambda w: {"LoadBalancerArn": MISSING_LB}),
    R(ELB, "ModifyTargetGroup", "TargetGroupNotFound", "",
      lambda w: {"TargetGroupArn": MISSING_TG, "HealthCheckPath": "/x"}),
    R(ELB, "ModifyTargetGroup", "InvalidConfigurationRequest", "path-on-tcp",
      lambda w: {"TargetGroupArn": _tcp_target_group(w), "HealthCheckPath": "/x"}),
    R(ELB, "ModifyTargetGroupAttributes", "TargetGroupNotFound", "",
      lambda w: {"TargetGroupArn": MISSING_TG,
                 "Attributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "1"}]}),
    R(ELB, "ModifyTargetGroupAttributes", "InvalidConfigurationRequest", "source-ip-stickiness-on-http",
      lambda w: {"TargetGroupArn": w.target_group_arn, "Attributes": [{"Key": "stickiness.type", "Value": "source_ip"}]}),
    R(ELB, "DescribeTargetGroupAttributes", "TargetGroupNotFound", "", lambda w: {"TargetGroupArn": MISSING_TG}),
    R(ELB, "DeleteTargetGroup", "ResourceInUse", "", lambda w: {"TargetGroupArn": w.target_group_arn}),
    R(ELB, "RegisterTargets", "TargetGroupNotFound", "",
      lambda w: {"TargetGroupArn": MISSING_TG, "Targets": [{"Id": w.target_ip()}]}),
    R(ELB, "RegisterTargets", "InvalidTarget", "outside-vpc",
      lambda w: {"TargetGroupArn": w.target_group_arn, "Targets": [{"Id": "192.0.2.10"}]}),
    R(ELB, "DeregisterTargets", "TargetGroupNotFound", "",
      lambda w: {"TargetGroupArn": MISSING_TG, "Targets": [{"Id": w.target_ip()}]}),
    R(ELB, "DeregisterTargets", "InvalidTarget", "not-registered",
      lambda w: {"TargetGroupArn": w.target_group_arn, "Targets": [{"Id": w.target_ip(), "Port": 1}]}),
    R(ELB, "DescribeTargetHealth", "TargetGroupNotFound", "", lambda w: {"TargetGroupArn": MISSING_TG}),
    R(ELB, "DescribeTargetHealth", "InvalidTarget", "not-an-address",
      lambda w: {"TargetGroupArn": w.target_group_arn, "Targets": [{"Id": "i-0123456789abcdef0"}]}),
    R(ELB, "CreateListener", "DuplicateListener", "",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn, "Protocol": "HTTP", "Port": 80, "DefaultActions": FIXED}),
    R(ELB, "CreateListener", "LoadBalancerNotFound", "",
      lambda w: {"LoadBalancerArn": MISSING_LB, "Protocol": "HTTP", "Port": 80, "DefaultActions": FIXED}),
    R(ELB, "CreateListener", "TargetGroupNotFound", "",
      lambda w: {"LoadBalancerArn": w.fresh_load_balancer_arn(), "Protocol": "HTTP", "Port": 80,
                 "DefaultActions": _forward(MISSING_TG)}),
    R(ELB, "CreateListener", "TargetGroupAssociationLimit", "",
      lambda w: {"LoadBalancerArn": w.fresh_load_balancer_arn(), "Protocol": "HTTP", "Port": 80,
                 "DefaultActions": _forward(w.target_group_arn)}),
    R(ELB, "CreateListener", "IncompatibleProtocols", "",
      lambda w: {"LoadBalancerArn": w.fresh_load_balancer_arn(), "Protocol": "HTTP", "Port": 80,
                 "DefaultActions": _forward(_tcp_target_group(w))}),
    R(ELB, "CreateListener", "UnsupportedProtocol", "https-needs-certificates",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn, "Protocol": "HTTPS", "Port": 443, "DefaultActions": FIXED}),
    R(ELB, "CreateListener", "TooManyActions", "",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn, "Protocol": "HTTP", "Port": 8090,
                 "DefaultActions": FIXED + [{"Type": "fixed-response", "Order": 2,
                                             "FixedResponseConfig": {"StatusCode": "404"}}]}),
    R(ELB, "CreateListener", "InvalidLoadBalancerAction", "redirect-to-itself",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn, "Protocol": "HTTP", "Port": 8091,
                 "DefaultActions": [{"Type": "redirect", "RedirectConfig": {"StatusCode": "HTTP_301"}}]}),
    R(ELB, "CreateListener", "TooManyTags", "",
      lambda w: {"LoadBalancerArn": w.load_balancer_arn, "Protocol": "HTTP", "Port": 8092, "DefaultActions": FIXED,
                 "Tags": _elb_tags(51)}),
    R(ELB, "ModifyListener", "ListenerNotFound", "", lambda w: {"ListenerArn": MISSING_LISTENER, "Port": 81}),
    R(ELB, "DeleteListener", "ListenerNotFound", "", lambda w: {"ListenerArn": MISSING_LISTENER}),
    R(ELB, "DescribeListeners", "ListenerNotFound", "", lambda w: {"ListenerArns": [MISSING_LISTENER]}),
    R(ELB, "DescribeListeners", "LoadBalancerNotFound", "", lambda w: {"LoadBalancerArn": MISSING_LB}),
    R(ELB, "CreateRule", "PriorityInUse", "",
      lambda w: {"ListenerArn": w.listener_arn, "Priority": _session_rule_priority(w),
                 "Conditions": [{"Field": "path-pattern", "Values": ["/dup/*"]}], "Actions": FIXED}),
    R(ELB, "CreateRule", "ListenerNotFound", "",
      lambda w: {"ListenerArn": MISSING_LISTENER, "Priority": 7,
                 "Conditions": [{"Field": "path-pattern", "Values": ["/x"]}], "Actions": FIXED}),
    R(ELB, "ModifyRule", "RuleNotFound", "", lambda w: {"RuleArn": MISSING_RULE, "Actions": FIXED}),
    R(ELB, "DeleteRule", "RuleNotFound", "", lambda w: {"RuleArn": MISSING_RULE}),
    R(ELB, "DeleteRule", "OperationNotPermitted", "default-rule", lambda w: {"RuleArn": _default_rule(w)}),
    R(ELB, "DescribeRules", "RuleNotFound", "", lambda w: {"RuleArns": [MISSING_RULE]}),
    R(ELB, "SetRulePriorities", "RuleNotFound", "",
      lambda w: {"RulePriorities": [{"RuleArn": MISSING_RULE, "Priority": 99}]}),
    R(ELB, "AddTags", "DuplicateTagKeys", "",
      lambda w: {"ResourceArns": [w.load_balancer_arn], "Tags": [{"Key": "k", "Value": "1"}, {"Key": "k"}]}),
    R(ELB, "AddTags", "TargetGroupNotFound", "", lambda w: {"ResourceArns": [MISSING_TG], "Tags": _elb_tags(1)}),
    R(ELB, "RemoveTags", "LoadBalancerNotFound", "", lambda w: {"ResourceArns": [MISSING_LB], "TagKeys": ["k"]}),
    R(ELB, "DescribeTags", "ListenerNotFound", "", lambda w: {"ResourceArns": [MISSING_LISTENER]}),
]


def _session_rule_priority(w: Any) -> int:
    rules = w.elbv2.describe_rules(RuleArns=[w.rule_arn])["Rules"]
    return int(rules[0]["Priority"])


def _default_rule(w: Any) -> str:
    rules = w.elbv2.describe_rules(ListenerArn=w.listener_arn)["Rules"]
    return next(r["RuleArn"] for r in rules if r["IsDefault"])


_QUOTA = "Skiff enforces no such quota (an account-level limit of AWS that no test should reach)"
NOT_PRODUCIBLE_ELB = {
    "TooManyLoadBalancers": ("raised only when all 65,534 addresses of 127.200.0.0/16 are in use", None),
    "AvailabilityZoneNotSupported": ("every zone of the region supports both load balancer types", None),
    "TooManyTargetGroups": (_QUOTA, None),
    "TooManyTargets": (_QUOTA, None),
    "TooManyRegistrationsForTargetId": (_QUOTA, None),
    "TooManyListeners": (_QUOTA, None),
    "TooManyRules": (_QUOTA, None),
    "TooManyUniqueTargetGroupsPerLoadBalancer": (_QUOTA, None),
    "TooManyCertificates": ("certificates are not supported yet (HTTPS/TLS listeners are UnsupportedProtocol)", None),
    "SSLPolicyNotFound": ("SSL policies apply to HTTPS/TLS listeners, which are not supported yet", None),
    "CertificateNotFound": ("certificates are not supported yet (HTTPS/TLS listeners are UnsupportedProtocol)", None),
    "ALPNPolicyNotFound": ("ALPN policies apply to TLS listeners, which are not supported yet", None),
    "TrustStoreNotFound": ("trust stores (mutual TLS) are not supported", None),
    "TrustStoreNotReady": ("trust stores (mutual TLS) are not supported", None),
    "HealthUnavailable": ("the data plane runs inside the server: target health is always available", None),
}

def _deleted_repository(w: Any) -> str:
    name = w.fresh_repository()
    w.ecr.delete_repository(repositoryName=name)
    return name

# code -> (why it cannot be provoked yet, the (service, operation) whose arrival should make it producible)
NOT_PRODUCIBLE: dict[tuple[str, str], tuple[str, Optional[tuple[str, str]]]] = {
    ("ecs", "AccessDeniedException"): ("every caller is the root user until IAM exists", ("iam", "CreateUser")),
    ("ecs", "ServerException"): ("a server-side fault: no well-behaved request can ask for it", None),
    ("ecs", "NamespaceNotFoundException"): (
        "Skiff has no AWS Cloud Map: serviceConnectDefaults.namespace is stored unchecked, and CreateService "
        "and UpdateService refuse an enabled serviceConnectConfiguration (InvalidParameterException) before any "
        "namespace is looked up", None),
    ("ecs", "UpdateInProgressException"): ("raised while an ECS agent update runs; Skiff has no agent updates", None),
    ("ecs", "LimitExceededException"): (
        "account quotas (e.g. 1,000,000 revisions per family) are out of a test's reach; Skiff reports a "
        "51st tag as InvalidParameterException", None),
    ("ecs", "BlockedException"): ("Skiff never blocks the account it serves", None),
    ("ecs", "UnsupportedFeatureException"): (
        "raised for features a Region lacks; every operation Skiff routes works in any region it serves", None),
    ("ecs", "ClusterContainsContainerInstancesException"): (
        "needs a registered container instance", ("ecs", "RegisterContainerInstance")),
    ("ecs", "ClusterContainsCapacityProviderException"): (
        "needs a custom (Auto Scaling group) capacity provider", ("ecs", "CreateCapacityProvider")),
    ("ecr", "ServerException"): ("a server-side fault: no well-behaved request can ask for it", None),
    ("ecr", "KmsException"): (
        "Skiff has no KMS: a KMS encryptionConfiguration (and its kmsKey) is stored and echoed, never sent to a "
        "key service that could fail", None),
    ("ecr", "LimitExceededException"): (
        "Skiff enforces none of ECR's service quotas (repositories per registry, images per repository, "
        "request rates); more than 50 tags is TooManyTagsException, as in ECR", None),
    ("ecr", "UnableToGetUpstreamImageException"): (
        "raised by pull-through cache repositories, which need a pull-through cache rule",
        ("ecr", "CreatePullThroughCacheRule")),
    ("ecr", "ValidationException"): (
        "ECR documents it only as 'an exception validating this request'; Skiff answers invalid input of these "
        "operations with InvalidParameterException, as ECR does (e.g. 'Lifecycle policy validation failure'), "
        "and has no registry-level scanning configuration a repository-level request could conflict with",
        ("ecr", "PutRegistryScanningConfiguration")),
}

NOT_PRODUCIBLE.update({(ELB, code): entry for code, entry in NOT_PRODUCIBLE_ELB.items()})
