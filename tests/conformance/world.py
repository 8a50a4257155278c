"""The resources the generated calls refer to. `World` creates them on the suite's server (a cluster and a
registered Fargate task definition first, fresh ones on demand for calls that consume them);
`PlaceholderWorld` has the same shape without a server, so cases can be enumerated at collection time
(the structure of every fixture value is the same in both, only the strings differ)."""

from __future__ import annotations

import itertools
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


class World(BaseWorld):
    """The session's resources on a running server, made with boto3 (the operations that make them are
    themselves under test; if they fail here, every case that needs them errors at setup, loudly)."""

    def __init__(self, server: harness.SkiffServer) -> None:
        super().__init__()
        self.server = server
        self.ecs = server.client("ecs")
        self.created: dict[str, int] = {"clusters": 1, "task definitions": 1}
        self.cluster_name = self.unique("conformance")
        self.cluster_arn = self.ecs.create_cluster(clusterName=self.cluster_name, tags=[{"key": "suite", "value": "conformance"}])[
            "cluster"
        ]["clusterArn"]
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
