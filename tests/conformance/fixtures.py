"""Values that must be semantically valid, not just model-valid: the small fixture table the generated
well-formed calls draw from, and the generic generator for everything else.

How a top-level input member gets its value (first match wins):
  1. OPERATION_MEMBERS[(service, operation, member)]
  2. MEMBERS[(service, member)]
  3. for *required* members only: SHAPES[(service, shape name)], then the generic generator
     (enum → first value, string → "conformance" padded to `min`, number → `min` or 1, …).
Optional members are exercised only when (1) or (2) has a value for them (anything else would be a guess
the server may rightly refuse); `NOT_EXERCISED` says why the others are left out, and the coverage report
lists them.

A fixture is a plain value or `fn(world, shape) -> value`; `world` (world.World) owns the resources the
suite created first (a cluster, a registered task definition; an ECR repository with a tagged and an
untagged image pushed over /v2/, tags and a lifecycle policy; the ids of the default VPC, subnets and security
group the server made; a service in the session's cluster) and makes fresh ones for calls that change or
consume them (DeleteCluster, DeregisterTaskDefinition, UpdateService, DeleteService, DeleteRepository,
PutLifecyclePolicy, a fresh tag for BatchDeleteImage, …).

OPERATION_BASE names optional members that must accompany the required ones for the call to be valid
(RegisterTaskDefinition on Fargate needs cpu, memory, awsvpc and FARGATE compatibility). FULL_APART names
optional members that cannot go together with others in one call (ECR refuses maxResults with the
repositoryNames / imageIds it pages over): they stay out of `wellformed.full`, are exercised by their own
`optional.M` call, and their mutations are made from that call.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Callable

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from world import ECR_TAGS, lifecycle_policy  # ECR's Tag capitalises its members: Key, Value

Fixture = Any  # a value, or Callable[[world, Shape], value]

ROLE = "arn:aws:iam::{account}:role/{name}"


def fargate_containers(world: Any, shape: Shape) -> list:
    """One container that uses many of ContainerDefinition's members, every value valid on Fargate."""
    return [
        {
            "name": "web",
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "cpu": 128,
            "memory": 256,
            "memoryReservation": 128,
            "essential": True,
            "command": ["httpd", "-f", "-p", "8080"],
            "workingDirectory": "/",
            "portMappings": [{"containerPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
            "environment": [{"name": "MODE", "value": "conformance"}],
            "healthCheck": {
                "command": ["CMD-SHELL", "true"],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 0,
            },
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": "/ecs/conformance",
                    "awslogs-region": world.region,
                    "awslogs-stream-prefix": "web",
                },
            },
            "dockerLabels": {"suite": "conformance"},
            "stopTimeout": 30,
        }
    ]


def all_enum_values(world: Any, shape: Shape) -> list:
    """For list-of-enum members such as `include`: every value the model knows."""
    assert isinstance(shape, ListShape)
    return list(shape.member.metadata["enum"])


TAGS = [{"key": "suite", "value": "conformance"}, {"key": "team", "value": "platform"}]


def lifecycle_policy_text(w: Any, s: Shape) -> str:
    return lifecycle_policy()


def image_ids(w: Any, s: Shape) -> list:
    """The session's tagged image, by tag and digest together (both members, so both get mutated)."""
    return [{"imageDigest": w.image_digest, "imageTag": w.image_tag}]


# A rolling deployment: the circuit breaker (with rollback), both bounds and the strategy named. (No alarms:
# deployment alarms are CloudWatch alarms, which Skiff does not have.)
DEPLOYMENT_CONFIGURATION = {
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    "maximumPercent": 200,
    "minimumHealthyPercent": 50,
    "strategy": "ROLLING",
}


def created_at_window(w: Any, s: Shape) -> dict:
    """ListServiceDeployments' createdAt: the day around now (epoch seconds, as JSON 1.1 sends them)."""
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    return {"after": now - 86400, "before": now + 86400}


MEMBERS: dict[tuple[str, str], Fixture] = {
    # ecs: clusters
    ("ecs", "clusterName"): lambda w, s: w.unique("conf"),
    ("ecs", "cluster"): lambda w, s: w.cluster_name,
    ("ecs", "clusters"): lambda w, s: [w.cluster_name, w.cluster_arn],
    ("ecs", "include"): all_enum_values,
    ("ecs", "settings"): [{"name": "containerInsights", "value": "enabled"}],
    ("ecs", "configuration"): {"executeCommandConfiguration": {"logging": "DEFAULT"}},
    ("ecs", "capacityProviders"): ["FARGATE", "FARGATE_SPOT"],
    ("ecs", "defaultCapacityProviderStrategy"): [
        {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
        {"capacityProvider": "FARGATE_SPOT", "weight": 3},
    ],
    ("ecs", "tags"): TAGS,
    ("ecs", "maxResults"): 10,
    # ecs: task definitions
    ("ecs", "family"): lambda w, s: w.unique("conf-family"),
    ("ecs", "familyPrefix"): lambda w, s: w.family,
    ("ecs", "containerDefinitions"): fargate_containers,
    ("ecs", "requiresCompatibilities"): ["FARGATE"],
    ("ecs", "networkMode"): "awsvpc",
    ("ecs", "cpu"): "256",
    ("ecs", "memory"): "512",
    ("ecs", "taskRoleArn"): lambda w, s: ROLE.format(account=w.account, name="conformance-task"),
    ("ecs", "executionRoleArn"): lambda w, s: ROLE.format(account=w.account, name="ecsTaskExecutionRole"),
    ("ecs", "volumes"): [{"name": "scratch"}],
    ("ecs", "ephemeralStorage"): {"sizeInGiB": 30},
    ("ecs", "runtimePlatform"): {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
    ("ecs", "pidMode"): "task",
    ("ecs", "enableFaultInjection"): False,
    ("ecs", "taskDefinition"): lambda w, s: w.task_definition_arn,
    # ecs: tasks (run in the session's cluster, from the session's task definition, in a default subnet)
    ("ecs", "networkConfiguration"): lambda w, s: w.network_configuration(),
    ("ecs", "count"): 1,
    ("ecs", "group"): "conformance",
    ("ecs", "startedBy"): "conformance",
    ("ecs", "launchType"): "FARGATE",
    ("ecs", "platformVersion"): "LATEST",
    ("ecs", "propagateTags"): "TASK_DEFINITION",
    ("ecs", "enableECSManagedTags"): True,
    ("ecs", "overrides"): {
        "containerOverrides": [{"name": "web", "environment": [{"name": "MODE", "value": "override"}]}],
        "cpu": "512",
        "memory": "1024",
    },
    ("ecs", "clientToken"): lambda w, s: w.unique("token"),
    ("ecs", "reason"): "conformance",
    ("ecs", "tasks"): lambda w, s: [w.task_arn],
    ("ecs", "task"): lambda w, s: w.task_arn,
    ("ecs", "desiredStatus"): "RUNNING",
    # ecs: services (the session's service, in the session's cluster, from the services' task definition;
    # its image does not exist, so a desired task is started and fails to pull, again after a back-off)
    ("ecs", "serviceName"): lambda w, s: w.service_name,
    ("ecs", "service"): lambda w, s: w.service_name,
    ("ecs", "services"): lambda w, s: [w.service_name, w.service_arn],
    ("ecs", "serviceDeploymentArns"): lambda w, s: [w.service_deployment_arn],
    ("ecs", "desiredCount"): 1,
    ("ecs", "deploymentConfiguration"): DEPLOYMENT_CONFIGURATION,
    ("ecs", "healthCheckGracePeriodSeconds"): 30,
    ("ecs", "schedulingStrategy"): "REPLICA",
    ("ecs", "deploymentController"): {"type": "ECS"},
    ("ecs", "availabilityZoneRebalancing"): "ENABLED",
    ("ecs", "forceNewDeployment"): True,
    ("ecs", "force"): True,
    ("ecs", "resourceManagementType"): "CUSTOMER",
    ("ecs", "createdAt"): created_at_window,
    # ecs: tags
    ("ecs", "resourceArn"): lambda w, s: w.cluster_arn,
    ("ecs", "tagKeys"): ["suite"],
    # ecr: the session's repository (a tagged and an untagged image, tags, a lifecycle policy)
    ("ecr", "registryId"): lambda w, s: w.account,
    ("ecr", "registryIds"): lambda w, s: [w.account],
    ("ecr", "repositoryName"): lambda w, s: w.repository_name,
    ("ecr", "repositoryNames"): lambda w, s: [w.repository_name],
    ("ecr", "maxResults"): 10,
    ("ecr", "imageIds"): image_ids,
    ("ecr", "filter"): {"tagStatus": "TAGGED", "imageStatus": "ACTIVE"},
    ("ecr", "acceptedMediaTypes"): [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ],
    ("ecr", "tags"): ECR_TAGS,
    ("ecr", "imageTagMutability"): "IMMUTABLE",
    ("ecr", "imageScanningConfiguration"): {"scanOnPush": True},
    ("ecr", "encryptionConfiguration"): {"encryptionType": "AES256"},
    ("ecr", "force"): True,
    ("ecr", "lifecyclePolicyText"): lifecycle_policy_text,
    ("ecr", "resourceArn"): lambda w, s: w.repository_arn,
    ("ecr", "tagKeys"): ["suite"],
    # ec2: the region's default VPC, its subnets and security group, the region's zones (all made by the
    # server on its first start; the world reads their ids)
    ("ec2", "VpcIds"): lambda w, s: [w.default_vpc_id],
    ("ec2", "VpcId"): lambda w, s: w.default_vpc_id,
    ("ec2", "Attribute"): "enableDnsHostnames",
    ("ec2", "SubnetIds"): lambda w, s: list(w.default_subnet_ids),
    ("ec2", "GroupIds"): lambda w, s: [w.default_security_group_id],
    ("ec2", "GroupNames"): ["default"],
    ("ec2", "ZoneNames"): lambda w, s: [w.zone_names[0]],
    ("ec2", "ZoneIds"): lambda w, s: [w.zone_ids[-1]],
    ("ec2", "AllAvailabilityZones"): True,
    ("ec2", "MaxResults"): 5,
    ("ec2", "DryRun"): False,
}

OPERATION_MEMBERS: dict[tuple[str, str, str], Fixture] = {
    # Calls that change or consume their resource get a fresh one, so cases stay independent.
    ("ecs", "UpdateCluster", "cluster"): lambda w, s: w.fresh_cluster(),
    ("ecs", "UpdateClusterSettings", "cluster"): lambda w, s: w.fresh_cluster(),
    ("ecs", "PutClusterCapacityProviders", "cluster"): lambda w, s: w.fresh_cluster(),
    ("ecs", "DeleteCluster", "cluster"): lambda w, s: w.fresh_cluster(),
    ("ecs", "TagResource", "resourceArn"): lambda w, s: w.fresh_cluster_arn(),
    ("ecs", "UntagResource", "resourceArn"): lambda w, s: w.fresh_cluster_arn(),
    ("ecs", "DeregisterTaskDefinition", "taskDefinition"): lambda w, s: w.fresh_revision(),
    ("ecs", "DeleteTaskDefinitions", "taskDefinitions"): lambda w, s: [w.fresh_inactive_revision()],
    ("ecs", "DescribeTaskDefinition", "taskDefinition"): lambda w, s: w.task_definition_arn,
    ("ecs", "StopTask", "task"): lambda w, s: w.fresh_task(),
    ("ecs", "ListTasks", "family"): lambda w, s: w.family,
    ("ecs", "ListTaskDefinitions", "status"): "ACTIVE",
    ("ecs", "ListTaskDefinitions", "sort"): "DESC",
    ("ecs", "ListTaskDefinitionFamilies", "status"): "ALL",
    ("ecs", "CreateService", "serviceName"): lambda w, s: w.unique("conf-svc"),
    ("ecs", "CreateService", "taskDefinition"): lambda w, s: w.service_task_definition_arn,
    ("ecs", "CreateService", "networkConfiguration"): lambda w, s: w.service_network_configuration(),
    ("ecs", "UpdateService", "service"): lambda w, s: w.fresh_service(),
    ("ecs", "UpdateService", "taskDefinition"): lambda w, s: w.next_service_task_definition_arn,
    ("ecs", "UpdateService", "networkConfiguration"): lambda w, s: w.service_network_configuration(),
    ("ecs", "DeleteService", "service"): lambda w, s: w.fresh_service(),
    ("ecs", "ListServiceDeployments", "status"): ["PENDING", "IN_PROGRESS", "SUCCESSFUL", "ROLLBACK_SUCCESSFUL"],
    ("ecr", "CreateRepository", "repositoryName"): lambda w, s: w.unique("conf"),
    ("ecr", "DeleteRepository", "repositoryName"): lambda w, s: w.fresh_repository(),
    ("ecr", "PutImageTagMutability", "repositoryName"): lambda w, s: w.fresh_repository(),
    ("ecr", "PutImageScanningConfiguration", "repositoryName"): lambda w, s: w.fresh_repository(),
    ("ecr", "PutLifecyclePolicy", "repositoryName"): lambda w, s: w.fresh_repository(),
    ("ecr", "DeleteLifecyclePolicy", "repositoryName"): lambda w, s: w.fresh_repository(policy=True),
    ("ecr", "BatchDeleteImage", "imageIds"): lambda w, s: [{"imageTag": w.fresh_tag()}],
    ("ecr", "TagResource", "resourceArn"): lambda w, s: w.fresh_repository_arn(),
    ("ecr", "UntagResource", "resourceArn"): lambda w, s: w.fresh_repository_arn(tags=True),
    # EC2 filters: two per call (filters AND), one with two values (values OR), wildcards
    ("ec2", "DescribeVpcs", "Filters"): [
        {"Name": "is-default", "Values": ["true"]},
        {"Name": "cidr", "Values": ["10.0.0.0/16", "172.31.*"]},
    ],
    ("ec2", "DescribeSubnets", "Filters"): lambda w, s: [
        {"Name": "vpc-id", "Values": [w.default_vpc_id]},
        {"Name": "default-for-az", "Values": ["true"]},
    ],
    ("ec2", "DescribeSecurityGroups", "Filters"): lambda w, s: [
        {"Name": "group-name", "Values": ["default"]},
        {"Name": "vpc-id", "Values": [w.default_vpc_id]},
    ],
    ("ec2", "DescribeAvailabilityZones", "Filters"): [
        {"Name": "state", "Values": ["available"]},
        {"Name": "zone-type", "Values": ["availability-zone", "local-zone"]},
    ],
}

OPERATION_BASE: dict[tuple[str, str], tuple[str, ...]] = {
    # Fargate needs cpu, memory and awsvpc; the awslogs log driver needs the execution role.
    ("ecs", "RegisterTaskDefinition"): ("requiresCompatibilities", "networkMode", "cpu", "memory", "executionRoleArn"),
    # The task definition is awsvpc (Fargate): RunTask needs its network configuration.
    ("ecs", "RunTask"): ("networkConfiguration",),
    # A REPLICA service of the ECS controller needs its task definition and desired count, and (awsvpc) its
    # network configuration; it is made in the session's cluster (the default cluster need not exist).
    ("ecs", "CreateService"): ("cluster", "taskDefinition", "desiredCount", "networkConfiguration"),
    # A service is named within its cluster: calls naming the session's (or a fresh) service say which.
    ("ecs", "UpdateService"): ("cluster",),
    ("ecs", "DeleteService"): ("cluster",),
    ("ecs", "DescribeServices"): ("cluster",),
    ("ecs", "ListServiceDeployments"): ("cluster",),
}

# Optional members that are only valid together with other optional members.
MEMBER_DEPENDS: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("ecs", "CreateCluster", "defaultCapacityProviderStrategy"): ("capacityProviders",),
    # The session's service is in the session's cluster, not the default one.
    ("ecs", "ListTasks", "serviceName"): ("cluster",),
}

# Optional members that cannot share a call with others of the full call: kept out of `wellformed.full`
# (exercised by `optional.M`, mutated from that call), and why.
FULL_APART: dict[tuple[str, str], dict[str, str]] = {
    ("ecr", "DescribeRepositories"): {
        "maxResults": "cannot be used with repositoryNames (ECR's documentation of maxResults)",
    },
    ("ecr", "DescribeImages"): {
        "maxResults": "cannot be used with imageIds (ECR's documentation of maxResults)",
        "filter": "filters the listing that imageIds replaces",
    },
    ("ec2", "DescribeVpcs"): {"MaxResults": "cannot be used with VpcIds (EC2: InvalidParameterCombination)"},
    ("ec2", "DescribeSubnets"): {"MaxResults": "cannot be used with SubnetIds (EC2: InvalidParameterCombination)"},
    ("ec2", "DescribeSecurityGroups"): {
        "MaxResults": "cannot be used with GroupIds or GroupNames (EC2: InvalidParameterCombination)",
    },
}

# Optional members deliberately left out of the well-formed calls, and why.
NOT_EXERCISED: dict[tuple[str, str], str] = {
    ("ecs", "nextToken"): "needs a token from a previous page (the e2e suite pages through lists)",
    ("ecs", "serviceConnectDefaults"): "needs an AWS Cloud Map namespace",
    ("ecs", "placementConstraints"): "memberOf constraints do not apply to Fargate",
    ("ecs", "proxyConfiguration"): "App Mesh proxy configuration needs an Envoy container",
    ("ecs", "inferenceAccelerators"): "Elastic Inference does not exist on Fargate",
    ("ecs", "ipcMode"): "ipcMode is not supported on Fargate",
    ("ecs", "trustedExecutionConfiguration"): "needs trusted-execution capable capacity",
    ("ecs", "capacityProviderStrategy"): (
        "needs capacity providers associated with the cluster (the session's has none) and cannot go with "
        "launchType in one call (InvalidParameterException); the e2e suite runs tasks on FARGATE_SPOT"),
    ("ecs", "placementStrategy"): "placement strategies do not apply to Fargate",
    ("ecs", "referenceId"): "only used by ECS itself",
    ("ecs", "volumeConfigurations"): "needs Amazon EBS, which Skiff does not have",
    ("ecs", "enableExecuteCommand"): "needs a task role and ECS Exec, which Skiff does not have",
    ("ecs", "role"): (
        "the IAM role of a load balancer of a non-awsvpc service: an awsvpc service uses ECS's service-linked "
        "role, and ECS refuses a role for it (errors.py provokes that InvalidParameterException)"),
    ("ecs", "loadBalancers"): "needs Elastic Load Balancing, which Skiff does not have yet (InvalidParameterException)",
    ("ecs", "serviceRegistries"): "needs AWS Cloud Map service discovery, which Skiff does not have",
    ("ecs", "serviceConnectConfiguration"): "Service Connect needs an AWS Cloud Map namespace",
    ("ecs", "vpcLatticeConfigurations"): "needs Amazon VPC Lattice target groups, which Skiff does not have",
    ("ecs", "gatewayConnectors"): "needs gateway connectors, which Skiff does not have",
    ("ecs", "monitoring"): "needs Amazon CloudWatch monitoring, which Skiff does not have",
    ("ecs", "containerInstance"): "Fargate tasks run on no container instance",
    ("ecs", "daemonName"): "needs a daemon; Skiff has none",
    ("ecr", "nextToken"): "needs a token from a previous page (the e2e suite pages through lists)",
    ("ecr", "imageTagMutabilityExclusionFilters"): (
        "needs imageTagMutability IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, which Skiff refuses "
        "(InvalidParameterException: its registry does not match tags against exclusion filters)"),
    ("ec2", "NextToken"): "needs a token from a previous page (the e2e suite pages through subnets)",
}


# -- elbv2 (signing name elasticloadbalancing): the session's application load balancer (both default
#    subnets, the default security group), its HTTP:80 listener forwarding to the session's target group, a
#    rule on it; fresh ones for the calls that change or delete what they name.
ELB = "elasticloadbalancing"
ELB_TAGS = [{"Key": "suite", "Value": "conformance"}, {"Key": "team", "Value": "platform"}]
FIXED_RESPONSE = [{"Type": "fixed-response", "Order": 1,
                   "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"}}]
PATH_CONDITION = [{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/conformance/*"]}}]

MEMBERS.update({
    (ELB, "Tags"): ELB_TAGS,
    (ELB, "PageSize"): 10,
    (ELB, "Subnets"): lambda w, s: list(w.default_subnet_ids),
    (ELB, "SecurityGroups"): lambda w, s: [w.default_security_group_id],
    (ELB, "Scheme"): "internal",
    (ELB, "Type"): "application",
    (ELB, "IpAddressType"): "ipv4",
    (ELB, "LoadBalancerArn"): lambda w, s: w.load_balancer_arn,
    (ELB, "LoadBalancerArns"): lambda w, s: [w.load_balancer_arn],
    (ELB, "TargetGroupArn"): lambda w, s: w.target_group_arn,
    (ELB, "TargetGroupArns"): lambda w, s: [w.target_group_arn],
    (ELB, "ListenerArn"): lambda w, s: w.listener_arn,
    (ELB, "Protocol"): "HTTP",
    (ELB, "ProtocolVersion"): "HTTP1",
    (ELB, "VpcId"): lambda w, s: w.default_vpc_id,
    (ELB, "TargetType"): "ip",
    (ELB, "HealthCheckProtocol"): "HTTP",
    (ELB, "HealthCheckPort"): "traffic-port",
    (ELB, "HealthCheckEnabled"): True,
    (ELB, "HealthCheckPath"): "/health",
    (ELB, "HealthCheckIntervalSeconds"): 30,
    (ELB, "HealthCheckTimeoutSeconds"): 5,
    (ELB, "HealthyThresholdCount"): 3,
    (ELB, "UnhealthyThresholdCount"): 3,
    (ELB, "Matcher"): {"HttpCode": "200-299"},
    (ELB, "DefaultActions"): FIXED_RESPONSE,
    (ELB, "Actions"): FIXED_RESPONSE,
    (ELB, "Conditions"): PATH_CONDITION,
    (ELB, "ResourceArns"): lambda w, s: [w.load_balancer_arn, w.target_group_arn],
    (ELB, "TagKeys"): ["suite"],
})

OPERATION_MEMBERS.update({
    (ELB, "CreateLoadBalancer", "Name"): lambda w, s: w.unique("conf-lb")[-32:].lstrip("-"),
    (ELB, "DescribeLoadBalancers", "Names"): lambda w, s: [w.load_balancer_name],
    (ELB, "DeleteLoadBalancer", "LoadBalancerArn"): lambda w, s: w.fresh_load_balancer_arn(),
    (ELB, "ModifyLoadBalancerAttributes", "Attributes"): [{"Key": "idle_timeout.timeout_seconds", "Value": "120"}],
    (ELB, "CreateTargetGroup", "Name"): lambda w, s: w.unique("conf-tg")[-32:].lstrip("-"),
    (ELB, "CreateTargetGroup", "Port"): 8080,
    (ELB, "DescribeTargetGroups", "Names"): lambda w, s: [w.target_group_name],
    (ELB, "ModifyTargetGroup", "TargetGroupArn"): lambda w, s: w.fresh_target_group_arn(),
    (ELB, "DeleteTargetGroup", "TargetGroupArn"): lambda w, s: w.fresh_target_group_arn(),
    (ELB, "ModifyTargetGroupAttributes", "Attributes"): [
        {"Key": "deregistration_delay.timeout_seconds", "Value": "30"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"},
    ],
    (ELB, "RegisterTargets", "Targets"): lambda w, s: [{"Id": w.target_ip(), "Port": 8080}],
    (ELB, "DeregisterTargets", "Targets"): lambda w, s: [w.registered_target()],
    (ELB, "CreateListener", "LoadBalancerArn"): lambda w, s: w.fresh_load_balancer_arn(),
    (ELB, "CreateListener", "Port"): 8080,
    (ELB, "ModifyListener", "ListenerArn"): lambda w, s: w.fresh_listener_arn(),
    (ELB, "ModifyListener", "Port"): 8081,
    (ELB, "DeleteListener", "ListenerArn"): lambda w, s: w.fresh_listener_arn(),
    (ELB, "CreateRule", "Priority"): lambda w, s: w.next_priority(),
    (ELB, "ModifyRule", "RuleArn"): lambda w, s: w.fresh_rule_arn(),
    (ELB, "DeleteRule", "RuleArn"): lambda w, s: w.fresh_rule_arn(),
    (ELB, "SetRulePriorities", "RulePriorities"): lambda w, s: [
        {"RuleArn": w.fresh_rule_arn(), "Priority": w.next_priority()}],
    (ELB, "DescribeTags", "ResourceArns"): lambda w, s: [w.load_balancer_arn, w.target_group_arn, w.listener_arn,
                                                        w.rule_arn],
})

OPERATION_BASE.update({
    (ELB, "CreateLoadBalancer"): ("Subnets",),
    (ELB, "CreateTargetGroup"): ("Protocol", "Port", "VpcId", "TargetType"),
    (ELB, "CreateListener"): ("Protocol", "Port"),
    (ELB, "DescribeListeners"): ("LoadBalancerArn",),
    (ELB, "DescribeRules"): ("ListenerArn",),
})

FULL_APART.update({
    (ELB, "DescribeLoadBalancers"): {"Names": "cannot go with LoadBalancerArns (ValidationError)"},
    (ELB, "DescribeTargetGroups"): {
        "Names": "cannot go with TargetGroupArns or LoadBalancerArn (ValidationError)",
        "LoadBalancerArn": "cannot go with TargetGroupArns or Names (ValidationError)",
    },
})

NOT_EXERCISED.update({
    (ELB, "Marker"): "needs a marker from a previous page (the e2e suite pages through load balancers)",
    (ELB, "ListenerArns"): "cannot go with DescribeListeners' LoadBalancerArn (the e2e suite names listeners)",
    (ELB, "RuleArns"): "cannot go with DescribeRules' ListenerArn (the e2e suite names rules)",
    (ELB, "SubnetMappings"): "cannot go with Subnets; Elastic IP allocations do not exist (the e2e suite maps subnets)",
    (ELB, "CustomerOwnedIpv4Pool"): "Outposts pools do not exist in Skiff (OperationNotPermitted)",
    (ELB, "IpamPools"): "IPAM pools do not exist in Skiff (OperationNotPermitted)",
    (ELB, "EnablePrefixForIpv6SourceNat"): "needs dualstack, which Skiff does not support",
    (ELB, "TargetControlPort"): "for QUIC target groups, which Skiff does not support",
    (ELB, "SslPolicy"): "HTTPS/TLS listeners need certificates, which Skiff does not support yet",
    (ELB, "Certificates"): "HTTPS/TLS listeners need certificates, which Skiff does not support yet",
    (ELB, "AlpnPolicy"): "TLS listeners need certificates, which Skiff does not support yet",
    (ELB, "MutualAuthentication"): "needs HTTPS listeners and trust stores, which Skiff does not support yet",
    (ELB, "Transforms"): "rule transforms are not supported by Skiff",
    (ELB, "ResetTransforms"): "rule transforms are not supported by Skiff",
})

# An EC2 id of the right shape that no resource has.
MISSING_EC2_ID = "{prefix}-0000000000000dead"

# Members holding a reference to a resource: mutated calls point them at resources that do not exist, at
# the wrong kind of resource, or at the same resource in another account; each must be refused (a 4xx
# with an error the operation models). `fn(world, valid)` gets the well-formed value to derive from.
def _other_account(valid: str) -> str:
    parts = valid.split(":")
    if len(parts) >= 6 and parts[0] == "arn":
        parts[4] = "210987654321"
        return ":".join(parts)
    return f"arn:aws:ecs:us-east-1:210987654321:cluster/{valid}"


REFERENCE_VARIANTS: dict[tuple[str, str], dict[str, Callable[[Any, Any], Any]]] = {
    ("ecs", "cluster"): {
        "missing-name": lambda w, v: w.unique("missing"),
        "missing-arn": lambda w, v: w.ecs_arn(f"cluster/{w.unique('missing')}"),
        "other-account": lambda w, v: _other_account(v),
        "other-service-arn": lambda w, v: f"arn:aws:iam::{w.account}:role/{v}",
    },
    ("ecs", "resourceArn"): {
        "missing-cluster": lambda w, v: w.ecs_arn(f"cluster/{w.unique('missing')}"),
        "missing-task-definition": lambda w, v: w.ecs_arn(f"task-definition/{w.unique('missing')}:1"),
        "service-arn": lambda w, v: w.ecs_arn(f"service/{w.cluster_name}/{w.unique('svc')}"),
        "task-arn": lambda w, v: w.ecs_arn(f"task/{w.cluster_name}/0123456789abcdef0123456789abcdef"),
        "other-account": lambda w, v: _other_account(v),
        "not-an-arn": lambda w, v: "not-an-arn",
    },
    ("ecs", "task"): {
        "missing-id": lambda w, v: "0" * 32,
        "missing-arn": lambda w, v: w.ecs_arn(f"task/{w.cluster_name}/{'0' * 32}"),
        "other-cluster": lambda w, v: w.ecs_arn(f"task/{w.unique('missing')}/{v.rsplit('/', 1)[-1]}"),
        "not-a-task": lambda w, v: "not-a-task",
    },
    ("ecs", "service"): {
        "missing-name": lambda w, v: w.unique("missing"),
        "missing-arn": lambda w, v: w.ecs_arn(f"service/{w.cluster_name}/{w.unique('missing')}"),
        "other-cluster-arn": lambda w, v: w.ecs_arn(f"service/{w.unique('missing')}/{v}"),
        "other-account": lambda w, v: _other_account(w.ecs_arn(f"service/{w.cluster_name}/{v}")),
        "task-arn": lambda w, v: w.ecs_arn(f"task/{w.cluster_name}/{'0' * 32}"),
        "not-a-name": lambda w, v: "not a service!",
    },
    ("ecs", "serviceName"): {
        "missing": lambda w, v: w.unique("missing"),
        "not-a-name": lambda w, v: "not a service!",
    },
    ("ecs", "taskDefinition"): {
        "missing-family": lambda w, v: w.unique("missing"),
        "missing-revision": lambda w, v: v.rsplit(":", 1)[0] + ":999999",
        "revision-zero": lambda w, v: v.rsplit(":", 1)[0] + ":0",
        "not-a-number": lambda w, v: v.rsplit(":", 1)[0] + ":latest",
        "other-account": lambda w, v: _other_account(v),
    },
    ("ecr", "repositoryName"): {
        "missing": lambda w, v: w.unique("missing"),
    },
    ("ecr", "repositoryNames"): {
        "missing": lambda w, v: w.unique("missing"),
    },
    ("ecr", "registryId"): {
        "other-account": lambda w, v: "210987654321",
    },
    ("ecr", "registryIds"): {
        "other-account": lambda w, v: "210987654321",
    },
    ("ec2", "VpcIds"): {
        "missing": lambda w, v: MISSING_EC2_ID.format(prefix="vpc"),
        "subnet-id": lambda w, v: w.default_subnet_ids[0],
        "not-an-id": lambda w, v: "default",
    },
    ("ec2", "VpcId"): {
        "missing": lambda w, v: MISSING_EC2_ID.format(prefix="vpc"),
        "security-group-id": lambda w, v: w.default_security_group_id,
    },
    ("ec2", "SubnetIds"): {
        "missing": lambda w, v: MISSING_EC2_ID.format(prefix="subnet"),
        "vpc-id": lambda w, v: w.default_vpc_id,
    },
    ("ec2", "GroupIds"): {
        "missing": lambda w, v: MISSING_EC2_ID.format(prefix="sg"),
        "vpc-id": lambda w, v: w.default_vpc_id,
        "name-for-id": lambda w, v: "default",
    },
    ("ec2", "GroupNames"): {
        "missing": lambda w, v: w.unique("missing"),
        "id-for-name": lambda w, v: w.default_security_group_id,
    },
    ("ec2", "ZoneNames"): {
        "missing": lambda w, v: f"{w.region}z",
        "other-region": lambda w, v: "eu-west-3a" if w.region != "eu-west-3" else "us-east-1a",
        "zone-id-for-name": lambda w, v: w.zone_ids[0],
    },
    ("ec2", "ZoneIds"): {
        "missing": lambda w, v: v.rsplit("-az", 1)[0] + "-az9",
        "zone-name-for-id": lambda w, v: w.zone_names[0],
    },
    ("ecr", "resourceArn"): {
        "missing-repository": lambda w, v: w.ecr_repository_arn(w.unique("missing")),
        "other-account": lambda w, v: _other_account(v),
        "other-region": lambda w, v: v.replace(f":{w.region}:", ":eu-west-3:", 1),
        "ecs-cluster": lambda w, v: w.ecs_arn(f"cluster/{w.unique('missing')}"),
        "not-an-arn": lambda w, v: "not-an-arn",
    },
}

# Per-operation variants, in place of REFERENCE_VARIANTS[(service, member)] (an empty dict: none).
OPERATION_REFERENCE_VARIANTS: dict[tuple[str, str, str], dict[str, Callable[[Any, Any], Any]]] = {
    # The name CreateService gives must not be that of an active service (made by another request).
    ("ecs", "CreateService", "serviceName"): {
        "existing": lambda w, v: w.service_name,
    },
    # The name CreateRepository makes must be new: the variant is one that exists.
    ("ecr", "CreateRepository", "repositoryName"): {
        "existing": lambda w, v: w.repository_name,
    },
    # DescribeImages refuses images it does not find (BatchGetImage and BatchDeleteImage report them as
    # failures in a successful answer, so they get no such variants).
    ("ecr", "DescribeImages", "imageIds"): {
        "missing-tag": lambda w, v: {"imageTag": w.unique("missing")},
        "missing-digest": lambda w, v: {"imageDigest": "sha256:" + "0" * 64},
        "tag-of-another-digest": lambda w, v: {"imageTag": w.image_tag, "imageDigest": "sha256:" + "0" * 64},
    },
}


def reference_variants(service: str, operation: str, member: str) -> dict[str, Callable[[Any, Any], Any]]:
    key = (service, operation, member)
    if key in OPERATION_REFERENCE_VARIANTS:
        return OPERATION_REFERENCE_VARIANTS[key]
    return REFERENCE_VARIANTS.get((service, member), {})


# ---------------------------------------------------------------------------------------------------------
# generation


def resolve(fixture: Fixture, world: Any, shape: Shape) -> Any:
    value = fixture(world, shape) if callable(fixture) else fixture
    return copy.deepcopy(value)


def member_fixture(service: str, operation: str, member: str) -> Fixture | None:
    key = (service, operation, member)
    if key in OPERATION_MEMBERS:
        return OPERATION_MEMBERS[key]
    return MEMBERS.get((service, member))


def generate(shape: Shape, world: Any, service: str, depth: int = 0) -> Any:
    """A model-valid value for `shape`: required members only for structures, one element for lists
    that need one, values inside min/max."""
    fx = SHAPES.get((service, shape.name))
    if fx is not None:
        return resolve(fx, world, shape)
    t = shape.type_name
    meta = shape.metadata
    if t == "structure":
        assert isinstance(shape, StructureShape)
        if meta.get("union"):
            name, member = next(iter(shape.members.items()))
            return {name: generate(member, world, service, depth + 1)}
        return {n: generate(shape.members[n], world, service, depth + 1) for n in shape.required_members}
    if t == "list":
        assert isinstance(shape, ListShape)
        n = max(meta.get("min", 0), 1 if depth < 6 else 0)
        return [generate(shape.member, world, service, depth + 1) for _ in range(n)]
    if t == "map":
        assert isinstance(shape, MapShape)
        return {generate(shape.key, world, service, depth + 1): generate(shape.value, world, service, depth + 1)}
    if t == "string":
        if meta.get("enum"):
            return meta["enum"][0]
        text = "conformance"
        lo, hi = meta.get("min", 0), meta.get("max")
        if len(text) < lo:
            text = text + "x" * (lo - len(text))
        if hi is not None:
            text = text[:hi]
        return text
    if t in ("integer", "long"):
        lo, hi = meta.get("min"), meta.get("max")
        v = 1 if lo is None else lo
        return v if hi is None else min(v, hi)
    if t in ("float", "double"):
        return float(meta.get("min", 1))
    if t == "boolean":
        return False
    if t == "timestamp":
        return int(dt.datetime.now(dt.timezone.utc).timestamp())
    if t == "blob":
        return "Y29uZm9ybWFuY2U="
    raise ValueError(f"cannot generate a value for {t} shape {shape.name}")


SHAPES: dict[tuple[str, str], Fixture] = {
    # nested shapes the generic generator would fill with nonsense
    ("ecs", "Tags"): TAGS,
    ("ecs", "ContainerDefinitions"): fargate_containers,
    ("ecr", "TagList"): ECR_TAGS,
    ("ecr", "ImageScanningConfiguration"): {"scanOnPush": True},
}


def base_members(service: str, operation: OperationModel) -> list[str]:
    """The members of the minimal well-formed call: the required ones and OPERATION_BASE's."""
    shape = operation.input_shape
    if shape is None:
        return []
    extra = OPERATION_BASE.get((service, operation.name), ())
    return list(shape.required_members) + [m for m in extra if m not in shape.required_members]


def optional_members(service: str, operation: OperationModel) -> tuple[list[str], dict[str, str]]:
    """(optional members with a fixture, {optional member without one: why it is not exercised})."""
    shape = operation.input_shape
    if shape is None:
        return [], {}
    base = set(base_members(service, operation))
    with_fixture, without = [], {}
    for name in shape.members:
        if name in base:
            continue
        if member_fixture(service, operation.name, name) is not None:
            with_fixture.append(name)
        else:
            without[name] = NOT_EXERCISED.get((service, name), "no fixture value")
    return with_fixture, without


def full_apart(service: str, operation: OperationModel) -> dict[str, str]:
    """FULL_APART's members of the operation that have a fixture (the others are not exercised at all)."""
    optional, _ = optional_members(service, operation)
    apart = FULL_APART.get((service, operation.name), {})
    return {m: why for m, why in apart.items() if m in optional}


def with_dependencies(service: str, operation: str, members: list[str]) -> list[str]:
    out = list(members)
    for m in members:
        out += [d for d in MEMBER_DEPENDS.get((service, operation, m), ()) if d not in out]
    return out


def build_input(service: str, operation: OperationModel, world: Any, members: list[str]) -> dict:
    """The input for a call that sets exactly `members` (fixture values, generated for required members
    without a fixture)."""
    shape = operation.input_shape
    out: dict[str, Any] = {}
    if shape is None:
        return out
    for name in members:
        member = shape.members[name]
        fx = member_fixture(service, operation.name, name)
        if fx is not None:
            out[name] = resolve(fx, world, member)
        elif name in shape.required_members:
            out[name] = generate(member, world, service)
        else:
            raise KeyError(f"no fixture for optional member {service}.{operation.name}.{name}")
    return out
