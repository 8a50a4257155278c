"""The resources the generated calls refer to. `World` creates them on the suite's server (a cluster, the
default cluster and a registered Fargate task definition first, fresh ones on demand for calls that consume them; for ECS services,
on first use: a task definition of their own whose image does not exist, the session's service and fresh
services for the calls that change or delete theirs; for ECR, on
first use: a repository holding a tagged and an untagged image pushed over /v2/ and a lifecycle policy,
fresh repositories and fresh tags for the calls that change or consume them; for EC2, the ids of the default
VPC, subnets and security group the server made on its first start);
`PlaceholderWorld` has the same shape without a server, so cases can be enumerated at collection time
(the structure of every fixture value is the same in both, only the strings differ)."""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from typing import Any

import harness

_counter = itertools.count(1)


class BaseWorld:
    account = harness.ACCOUNT_ID
    region = harness.REGION

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:6]

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{self.run_id}-{next(_counter)}"

    def ecs_arn(self, resource: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:{resource}"

    def ecr_repository_arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{name}"

    @property
    def repository_arn(self) -> str:
        return self.ecr_repository_arn(self.repository_name)

    def fresh_repository_arn(self, tags: bool = False) -> str:
        return self.ecr_repository_arn(self.fresh_repository(tags=tags))

    def service_network_configuration(self) -> dict:
        """A service's awsvpc configuration: every default subnet (one per zone, as a service spreads its
        tasks over zones) and the default security group."""
        return {"awsvpcConfiguration": {"subnets": list(self.default_subnet_ids),
                                        "securityGroups": [self.default_security_group_id],
                                        "assignPublicIp": "DISABLED"}}

    @property
    def service_arn(self) -> str:
        return self.ecs_arn(f"service/{self.cluster_name}/{self.service_name}")


# ECR's Tag shape capitalises its members.
ECR_TAGS = [{"Key": "suite", "Value": "conformance"}, {"Key": "team", "Value": "platform"}]


def lifecycle_policy(days: int = 3650) -> str:
    """A lifecycle policy that validates (over the model's 100-character minimum) and expires nothing
    within a run: untagged images older than `days` days."""
    return json.dumps({"rules": [{
        "rulePriority": 1,
        "description": f"expire untagged images older than {days} days",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                      "countNumber": days},
        "action": {"type": "expire"},
    }]})


class PlaceholderWorld(BaseWorld):
    """Collection-time stand-in: every resource is a name, nothing is created."""

    cluster_name = "placeholder-cluster"
    family = "placeholder-family"

    @property
    def cluster_arn(self) -> str:
        return self.ecs_arn(f"cluster/{self.cluster_name}")

    @property
    def task_definition_arn(self) -> str:
        return self.ecs_arn(f"task-definition/{self.family}:1")

    def fresh_cluster(self) -> str:
        return self.unique("placeholder")

    def fresh_cluster_arn(self) -> str:
        return self.ecs_arn(f"cluster/{self.fresh_cluster()}")

    def fresh_revision(self) -> str:
        return self.ecs_arn(f"task-definition/{self.family}:2")

    def deleted_cluster(self) -> str:
        return self.unique("placeholder-deleted")

    def fresh_inactive_revision(self) -> str:
        return self.ecs_arn(f"task-definition/{self.family}:3")

    repository_name = "placeholder-repository"
    image_tag = "v1"
    image_digest = "sha256:" + "0" * 64

    def fresh_repository(self, tags: bool = False, policy: bool = False, image: bool = False) -> str:
        return self.unique("placeholder-repository")

    def fresh_tag(self) -> str:
        return self.unique("fresh")

    task_arn = "arn:aws:ecs:us-east-1:000000000000:task/placeholder-cluster/0123456789abcdef0123456789abcdef"

    def fresh_task(self) -> str:
        return self.task_arn

    def cluster_with_task(self) -> str:
        return self.unique("placeholder-busy")

    def used_client_token(self) -> str:
        return self.unique("placeholder-token")

    def network_configuration(self) -> dict:
        return {"awsvpcConfiguration": {"subnets": [self.default_subnet_ids[0]],
                                        "securityGroups": [self.default_security_group_id],
                                        "assignPublicIp": "DISABLED"}}

    service_name = "placeholder-service"
    service_family = "placeholder-service-family"

    @property
    def service_deployment_arn(self) -> str:
        return self.ecs_arn(f"service-deployment/{self.cluster_name}/{self.service_name}/1234567890123456789")

    @property
    def service_task_definition_arn(self) -> str:
        return self.ecs_arn(f"task-definition/{self.service_family}:1")

    @property
    def next_service_task_definition_arn(self) -> str:
        return self.ecs_arn(f"task-definition/{self.service_family}:2")

    @property
    def storage_task_definition_arn(self) -> str:
        return self.ecs_arn(f"task-definition/{self.service_family}:3")

    def fresh_service(self, desired_count: int = 0) -> str:
        return self.unique("placeholder-service")

    def deleted_service(self) -> str:
        return self.unique("placeholder-deleted-service")

    def cluster_with_service(self) -> str:
        return self.unique("placeholder-with-service")

    def cluster_with_spot_service(self) -> str:
        return self.unique("placeholder-with-spot-service")

    default_vpc_id = "vpc-0123456789abcdef0"
    default_subnet_ids = ("subnet-0123456789abcdef0", "subnet-0123456789abcdef1")
    default_security_group_id = "sg-0123456789abcdef0"

    @property
    def zone_names(self) -> tuple[str, ...]:
        return (f"{self.region}a", f"{self.region}b")

    zone_ids = ("use1-az1", "use1-az2")

    _ELB = "arn:aws:elasticloadbalancing:us-east-1:000000000000:"
    load_balancer_arn = _ELB + "loadbalancer/app/placeholder/0123456789abcdef"
    load_balancer_name = "placeholder"
    target_group_arn = _ELB + "targetgroup/placeholder/0123456789abcdef"
    target_group_name = "placeholder"
    listener_arn = _ELB + "listener/app/placeholder/0123456789abcdef/0123456789abcdef"
    rule_arn = _ELB + "listener-rule/app/placeholder/0123456789abcdef/0123456789abcdef/0123456789abcdef"

    def next_priority(self) -> int:
        return 1

    def fresh_load_balancer_arn(self) -> str:
        return self.load_balancer_arn

    def fresh_target_group_arn(self) -> str:
        return self.target_group_arn

    def fresh_listener_arn(self, port: int = 80) -> str:
        return self.listener_arn

    def fresh_rule_arn(self) -> str:
        return self.rule_arn

    def target_ip(self) -> str:
        return "172.31.200.1"

    def registered_target(self) -> dict:
        return {"Id": self.target_ip(), "Port": 8080}


class World(BaseWorld):
    """The session's resources on a running server, made with boto3 (the operations that make them are
    themselves under test; if they fail here, every case that needs them errors at setup, loudly)."""

    def __init__(self, server: harness.SkiffServer) -> None:
        super().__init__()
        self.server = server
        self.ecs = server.client("ecs")
        self.created: dict[str, int] = {"clusters": 2, "task definitions": 1}
        self.cluster_name = self.unique("conformance")
        self.cluster_arn = self.ecs.create_cluster(clusterName=self.cluster_name, tags=[{"key": "suite", "value": "conformance"}])[
            "cluster"
        ]["clusterArn"]
        # Calls that name no cluster mean the default one (RunTask, ListTasks, ListServices, …): made here, so
        # they do not depend on CreateCluster's minimal call (which makes it too) having run before them.
        self.ecs.create_cluster()
        self.family = self.unique("conformance")
        self.task_definition_arn = self._register()

    def _register(self) -> str:
        td = harness.fargate_task_definition(self.family, tags=[{"key": "suite", "value": "conformance"}])
        return self.ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]

    def fresh_cluster(self) -> str:
        name = self.unique("conf-fresh")
        self.ecs.create_cluster(clusterName=name, tags=[{"key": "suite", "value": "conformance"}])
        self.created["clusters"] += 1
        return name

    def fresh_cluster_arn(self) -> str:
        return self.ecs_arn(f"cluster/{self.fresh_cluster()}")

    def deleted_cluster(self) -> str:
        name = self.fresh_cluster()
        self.ecs.delete_cluster(cluster=name)
        return name

    def fresh_revision(self) -> str:
        self.created["task definitions"] += 1
        return self._register()

    def fresh_inactive_revision(self) -> str:
        arn = self.fresh_revision()
        self.ecs.deregister_task_definition(taskDefinition=arn)
        return arn

    def client(self, service: str) -> Any:
        return self.server.client(service)

    # -- ECS tasks: run in the session's cluster (or a fresh one) from the session's task definition

    def network_configuration(self) -> dict:
        return {"awsvpcConfiguration": {"subnets": [self.default_subnet_ids[0]],
                                        "securityGroups": [self.default_security_group_id],
                                        "assignPublicIp": "DISABLED"}}

    def _run_task(self, cluster: str, **kw: Any) -> str:
        self.created["tasks"] = self.created.get("tasks", 0) + 1
        return self.ecs.run_task(cluster=cluster, taskDefinition=self.task_definition_arn,
                                 networkConfiguration=self.network_configuration(), **kw)["tasks"][0]["taskArn"]

    @functools.cached_property
    def task_arn(self) -> str:
        """The session's task (describe calls name it)."""
        return self._run_task(self.cluster_name, startedBy="conformance")

    def fresh_task(self) -> str:
        """A new task, for calls that stop what they name."""
        return self._run_task(self.cluster_name)

    def cluster_with_task(self) -> str:
        """A fresh cluster with a task just started in it (DeleteCluster refuses it until the task has
        stopped; the task definition's container serves HTTP until stopped, and the call follows at once)."""
        name = self.fresh_cluster()
        self._run_task(name)
        return name

    def used_client_token(self) -> str:
        """A clientToken a RunTask in the session's cluster has used (with startedBy 'conformance')."""
        token = self.unique("token")
        self._run_task(self.cluster_name, clientToken=token, startedBy="conformance")
        return token

    # -- ECS services, made on first use: in the session's cluster (or a fresh one), from a task definition of
    #    their own whose image does not exist (in this server's own registry, so the pull fails at once):
    #    a service's tasks stop before they run and its scheduler backs off; nothing runs

    @functools.cached_property
    def service_family(self) -> str:
        return self.unique("conformance-svc")

    def _register_service_definition(self, **overrides: Any) -> str:
        image = f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.service_family}-missing:v1"
        td = harness.fargate_task_definition(
            self.service_family,
            containerDefinitions=[{"name": "web", "image": image, "portMappings": [{"containerPort": 8080}]}],
            tags=[{"key": "suite", "value": "conformance"}],
            **overrides,
        )
        self.created["task definitions"] += 1
        return self.ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]

    @functools.cached_property
    def service_task_definition_arn(self) -> str:
        """What services are created from (revision 1 of the services' family)."""
        return self._register_service_definition()

    @functools.cached_property
    def next_service_task_definition_arn(self) -> str:
        """Another revision of the services' family: UpdateService to it starts a new deployment."""
        _ = self.service_task_definition_arn
        return self._register_service_definition()

    @functools.cached_property
    def storage_task_definition_arn(self) -> str:
        """A revision with 30 GiB of ephemeral storage, which platform versions before 1.4.0 cannot give."""
        _ = self.next_service_task_definition_arn
        return self._register_service_definition(ephemeralStorage={"sizeInGiB": 30})

    def _create_service(self, cluster: str, desired_count: int, **kw: Any) -> dict:
        self.created["services"] = self.created.get("services", 0) + 1
        return self.ecs.create_service(cluster=cluster, serviceName=self.unique("conf-svc"),
                                       taskDefinition=self.service_task_definition_arn, desiredCount=desired_count,
                                       networkConfiguration=self.service_network_configuration(), **kw)["service"]

    @functools.cached_property
    def _service(self) -> dict:
        """The session's service (describe and list calls name it): one task desired, tagged (so that a
        CreateService of its name with the well-formed call's other members is not the same request)."""
        return self._create_service(self.cluster_name, 1, tags=[{"key": "suite", "value": "conformance"}],
                                    enableECSManagedTags=True, propagateTags="SERVICE")

    @property
    def service_name(self) -> str:
        return self._service["serviceName"]

    @property
    def service_deployment_arn(self) -> str:
        """The session's service's first service deployment."""
        return self._service["currentServiceDeployment"]

    def fresh_service(self, desired_count: int = 0) -> str:
        """A new service in the session's cluster, for calls that change or delete what they name."""
        return self._create_service(self.cluster_name, desired_count)["serviceName"]

    def deleted_service(self) -> str:
        """A service of the session's cluster just deleted (DRAINING, then INACTIVE: never ACTIVE again)."""
        name = self.fresh_service()
        self.ecs.delete_service(cluster=self.cluster_name, service=name)
        return name

    def cluster_with_service(self) -> str:
        """A fresh cluster with an active service (of no tasks) in it."""
        name = self.fresh_cluster()
        self._create_service(name, 0)
        return name

    def cluster_with_spot_service(self) -> str:
        """A fresh cluster with FARGATE and FARGATE_SPOT and a service (of no tasks) running on FARGATE_SPOT."""
        name = self.fresh_cluster()
        self.ecs.put_cluster_capacity_providers(cluster=name, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                                defaultCapacityProviderStrategy=[])
        self._create_service(name, 0, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
        return name

    # -- ECR, made on first use (an ECS-only failure stays an ECS-only failure)

    @functools.cached_property
    def ecr(self) -> Any:
        return self.server.client("ecr")

    @functools.cached_property
    def pusher(self) -> Any:
        return harness.RegistryClient(self.server, self.ecr)

    @functools.cached_property
    def _ecr_world(self) -> tuple[str, str, str]:
        """The session's repository: created with tags, an image pushed as `v1`, a second one pushed
        untagged, and a lifecycle policy that expires nothing."""
        name = self.unique("conformance")
        self.ecr.create_repository(repositoryName=name, tags=ECR_TAGS)
        self.created["repositories"] = self.created.get("repositories", 0) + 1
        tagged = self.pusher.push_image(name, "v1", f"{name}-tagged")
        self.pusher.push_image(name, None, f"{name}-untagged")
        self.ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle_policy())
        self._manifest = tagged["manifest"]
        return name, "v1", tagged["digest"]

    @property
    def repository_name(self) -> str:
        return self._ecr_world[0]

    @property
    def image_tag(self) -> str:
        return self._ecr_world[1]

    @property
    def image_digest(self) -> str:
        return self._ecr_world[2]

    def fresh_repository(self, tags: bool = False, policy: bool = False, image: bool = False) -> str:
        """A new repository (with the suite's tags, a lifecycle policy, one tagged image, as asked)."""
        name = self.unique("conf-fresh")
        self.ecr.create_repository(repositoryName=name, **({"tags": ECR_TAGS} if tags else {}))
        self.created["repositories"] = self.created.get("repositories", 0) + 1
        if policy:
            self.ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=lifecycle_policy())
        if image:
            self.pusher.push_image(name, "v1", name)
        return name

    # -- EC2: what the server made on its first start, read once

    @functools.cached_property
    def _ec2_world(self) -> dict[str, Any]:
        ec2 = self.server.client("ec2")
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        assert len(vpcs) == 1, f"expected the server's default VPC, got {vpcs}"
        vpc_id = vpcs[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        groups = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
        zones = ec2.describe_availability_zones()["AvailabilityZones"]
        assert subnets and groups and zones, (subnets, groups, zones)
        return {
            "vpc": vpc_id,
            "subnets": tuple(s["SubnetId"] for s in subnets),
            "group": groups[0]["GroupId"],
            "zone_names": tuple(z["ZoneName"] for z in zones),
            "zone_ids": tuple(z["ZoneId"] for z in zones),
        }

    @property
    def default_vpc_id(self) -> str:
        return self._ec2_world["vpc"]

    @property
    def default_subnet_ids(self) -> tuple[str, ...]:
        return self._ec2_world["subnets"]

    @property
    def default_security_group_id(self) -> str:
        return self._ec2_world["group"]

    @property
    def zone_names(self) -> tuple[str, ...]:
        return self._ec2_world["zone_names"]

    @property
    def zone_ids(self) -> tuple[str, ...]:
        return self._ec2_world["zone_ids"]

    def fresh_tag(self) -> str:
        """A new tag on the session's tagged image (its manifest put again under the tag), for calls that
        delete what they name: the image itself keeps its other tags."""
        name = self.repository_name
        tag = self.unique("fresh")
        self.pusher.put_manifest(name, tag, self._manifest)
        return tag

    # -- elbv2, made on first use: the session's application load balancer in the default subnets, a target
    #    group, an HTTP:80 listener forwarding to it and a rule; fresh ones for calls that change or delete

    @functools.cached_property
    def elbv2(self) -> Any:
        return self.server.client("elbv2")

    def _create_load_balancer(self) -> dict:
        self.created["load balancers"] = self.created.get("load balancers", 0) + 1
        return self.elbv2.create_load_balancer(Name=self.unique("conf-lb")[-32:].lstrip("-"),
                                               Subnets=list(self.default_subnet_ids))["LoadBalancers"][0]

    def _create_target_group(self) -> dict:
        self.created["target groups"] = self.created.get("target groups", 0) + 1
        return self.elbv2.create_target_group(Name=self.unique("conf-tg")[-32:].lstrip("-"), Protocol="HTTP",
                                              Port=8080, VpcId=self.default_vpc_id, TargetType="ip")["TargetGroups"][0]

    @functools.cached_property
    def _elb_world(self) -> dict[str, str]:
        lb = self._create_load_balancer()
        tg = self._create_target_group()
        listener = self.elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
        rule = self.elbv2.create_rule(
            ListenerArn=listener["ListenerArn"], Priority=self.next_priority(),
            Conditions=[{"Field": "path-pattern", "Values": ["/session/*"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Rules"][0]
        return {"lb": lb["LoadBalancerArn"], "lb_name": lb["LoadBalancerName"], "tg": tg["TargetGroupArn"],
                "tg_name": tg["TargetGroupName"], "listener": listener["ListenerArn"], "rule": rule["RuleArn"]}

    @property
    def load_balancer_arn(self) -> str:
        return self._elb_world["lb"]

    @property
    def load_balancer_name(self) -> str:
        return self._elb_world["lb_name"]

    @property
    def target_group_arn(self) -> str:
        return self._elb_world["tg"]

    @property
    def target_group_name(self) -> str:
        return self._elb_world["tg_name"]

    @property
    def listener_arn(self) -> str:
        return self._elb_world["listener"]

    @property
    def rule_arn(self) -> str:
        return self._elb_world["rule"]

    def next_priority(self) -> int:
        self._priority = getattr(self, "_priority", 0) + 1
        return self._priority

    def fresh_load_balancer_arn(self) -> str:
        return self._create_load_balancer()["LoadBalancerArn"]

    def fresh_target_group_arn(self) -> str:
        return self._create_target_group()["TargetGroupArn"]

    def fresh_listener_arn(self, port: int = 80) -> str:
        return self.elbv2.create_listener(
            LoadBalancerArn=self.fresh_load_balancer_arn(), Protocol="HTTP", Port=port,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]

    def fresh_rule_arn(self) -> str:
        return self.elbv2.create_rule(
            ListenerArn=self.listener_arn, Priority=self.next_priority(),
            Conditions=[{"Field": "host-header", "Values": [f"{self.unique('h')}.example.com"]}],
            Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}],
        )["Rules"][0]["RuleArn"]

    def target_ip(self) -> str:
        """A fresh address inside the default VPC's block (targets must be in the group's VPC)."""
        self._target = getattr(self, "_target", 0) + 1
        vpc = self.server.client("ec2").describe_vpcs(VpcIds=[self.default_vpc_id])["Vpcs"][0]["CidrBlock"]
        a, b = vpc.split(".")[:2]
        return f"{a}.{b}.{200 + self._target // 250}.{1 + self._target % 250}"

    def registered_target(self) -> dict:
        """A target just registered with the session's target group."""
        target = {"Id": self.target_ip(), "Port": 8080}
        self.elbv2.register_targets(TargetGroupArn=self.target_group_arn, Targets=[target])
        return target
