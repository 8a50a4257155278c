//! ECS services: the `Service`, `Deployment` and `ServiceDeployment` wire shapes and the stored
//! [`ServiceRecord`] around a service.
//!
//! The API writes what the user asked for (CreateService, UpdateService, DeleteService: desiredCount, a new
//! PRIMARY deployment, status DRAINING); the service controller writes what follows from it (deployments'
//! rolloutState and failedTasks, deployments it finished, events, the history of service deployments) in
//! the same transaction as the task records it creates or stops. Counts (runningCount, pendingCount, …) are
//! computed from the task records whenever a service is described, so they always agree with DescribeTasks.

use crate::cluster::CapacityProviderStrategyItem;
use crate::tag::Tag;
use crate::task::{NetworkConfiguration, PlacementConstraint, PlacementStrategy, PropagateTags};
use serde::{Deserialize, Serialize};
use skiff_proto::timestamp::{json_opt, EpochMillis};

/// Store keys of service records: `ecs/services/{cluster-name}/{service-name}`.
pub mod keys {
    pub const SERVICES: &str = "ecs/services/";

    pub fn cluster_prefix(cluster: &str) -> String {
        format!("{SERVICES}{cluster}/")
    }

    pub fn service(cluster: &str, name: &str) -> String {
        format!("{SERVICES}{cluster}/{name}")
    }
}

/// ECS's defaults for a rolling deployment.
pub const DEFAULT_MINIMUM_HEALTHY_PERCENT: i32 = 100;
pub const DEFAULT_MAXIMUM_PERCENT: i32 = 200;
/// Most events a service keeps (newest first).
pub const MAX_EVENTS: usize = 100;
/// Most finished service deployments a service keeps for ListServiceDeployments.
pub const MAX_HISTORY: usize = 50;
/// Longest service name (letters, digits, hyphens, underscores).
pub const MAX_SERVICE_NAME_CHARS: usize = 255;

/// Whether `name` is a valid service name.
pub fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME_CHARS
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The circuit breaker's failure threshold for a deployment of `desired` tasks: half of them, at least 3
/// and at most 200 (ECS's rule).
pub fn circuit_breaker_threshold(desired: i32) -> i32 {
    ((desired.max(0) + 1) / 2).clamp(3, 200)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentAlarms {
    pub alarm_names: Vec<String>,
    pub rollback: bool,
    pub enable: bool,
}

/// `DeploymentConfiguration` (rolling deployments; the other strategies are refused by the API).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_in_minutes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_hooks: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_configuration: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_configuration: Option<serde_json::Value>,
}

impl DeploymentConfiguration {
    pub fn minimum_healthy(&self) -> i32 {
        self.minimum_healthy_percent.unwrap_or(DEFAULT_MINIMUM_HEALTHY_PERCENT)
    }

    pub fn maximum(&self) -> i32 {
        self.maximum_percent.unwrap_or(DEFAULT_MAXIMUM_PERCENT)
    }

    pub fn breaker(&self) -> DeploymentCircuitBreaker {
        self.deployment_circuit_breaker.unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentController {
    pub r#type: String,
}

/// A service's `LoadBalancer`: the target group its tasks are registered in, by the address of the task and
/// the port of one of its containers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
}

/// Most load balancers (target groups) a service registers its tasks in.
pub const MAX_LOAD_BALANCERS: usize = 5;

/// `ServiceEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    pub id: String,
    #[serde(with = "json_opt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    pub message: String,
}

/// `Deployment`: one configuration of the service's tasks. The first of a service's deployments is the
/// PRIMARY one (the one tasks are started for); the others are ACTIVE until their tasks are gone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/` and 19 digits; the tasks it starts carry it as their `startedBy`.
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub pending_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
    #[serde(with = "json_opt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    #[serde(with = "json_opt", default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    /// IN_PROGRESS, COMPLETED or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state_reason: Option<String>,
}

/// `Service` as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_arn: String,
    pub service_name: String,
    pub cluster_arn: String,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<serde_json::Value>,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    pub task_definition: String,
    pub deployment_configuration: DeploymentConfiguration,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(with = "json_opt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_service_deployment: Option<String>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_grace_period_seconds: Option<i32>,
    pub scheduling_strategy: String,
    pub deployment_controller: DeploymentController,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<PropagateTags>,
    pub enable_execute_command: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone_rebalancing: Option<String>,
}

/// `ServiceRevisionSummary`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    pub arn: String,
    pub requested_task_count: i32,
    pub running_task_count: i32,
    pub pending_task_count: i32,
}

/// `Rollback` of a service deployment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    pub reason: String,
    #[serde(with = "json_opt", default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochMillis>,
    pub service_revision_arn: String,
}

/// `ServiceDeploymentCircuitBreaker`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentCircuitBreaker {
    /// TRIGGERED, MONITORING, MONITORING_COMPLETE or DISABLED.
    pub status: String,
    pub failure_count: i32,
    pub threshold: i32,
}

/// One service deployment (ListServiceDeployments / DescribeServiceDeployments): the change from the
/// deployments that were running (sources) to a target deployment. Revisions are named by their
/// deployment's id: `service-revision/CLUSTER/SERVICE/<digits of ecs-svc/…>`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentRecord {
    /// The id of the target deployment (`ecs-svc/…`).
    pub deployment_id: String,
    /// The deployment ids it replaces, and how many tasks each had when it began.
    pub sources: Vec<(String, i32)>,
    /// PENDING, IN_PROGRESS, SUCCESSFUL, STOPPED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub created_at: EpochMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<EpochMillis>,
    pub updated_at: EpochMillis,
    pub deployment_configuration: DeploymentConfiguration,
    /// The deployment rolled back to, when the circuit breaker triggered with rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_started_at: Option<EpochMillis>,
    #[serde(default)]
    pub breaker_triggered: bool,
    /// The target deployment's failedTasks, kept after the deployment is gone from the service.
    #[serde(default)]
    pub failed_tasks: i32,
}

/// `ecs/services/{cluster}/{name}`: the service as described, and what Skiff needs to run it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    pub service: Service,
    /// The CreateService request's fingerprint (sha-256 of the request without clientToken): a repeated
    /// CreateService with the same request returns the service; another request with its name is refused.
    pub fingerprint: String,
    /// The last deployment that completed (what a circuit breaker rolls back to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<Deployment>,
    /// Service deployments, newest first.
    #[serde(default)]
    pub history: Vec<ServiceDeploymentRecord>,
    /// Consecutive tasks that failed to start or kept failing since the service last ran well, and the
    /// earliest time the next task may be started (back-off).
    #[serde(default)]
    pub launch_failures: i32,
    #[serde(default)]
    pub next_launch_at: EpochMillis,
    /// Whether the service was last seen in a steady state (so "has reached a steady state." is said once).
    #[serde(default)]
    pub steady: bool,
    /// When it became INACTIVE (purged after the server's retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_at: Option<EpochMillis>,
}

impl ServiceRecord {
    pub fn name(&self) -> &str {
        &self.service.service_name
    }

    pub fn primary(&self) -> Option<&Deployment> {
        self.service.deployments.first()
    }

    /// Adds an event with id `id` (newest first, at most [`MAX_EVENTS`]).
    pub fn event(&mut self, id: String, now: EpochMillis, message: String) {
        self.service.events.insert(0, ServiceEvent { id, created_at: Some(now), message });
        self.service.events.truncate(MAX_EVENTS);
    }

    /// The service deployment whose target is `deployment_id`, or the one rolling back to it.
    pub fn history_of(&mut self, deployment_id: &str) -> Option<&mut ServiceDeploymentRecord> {
        self.history
            .iter_mut()
            .find(|h| h.deployment_id == deployment_id || h.rollback_to.as_deref() == Some(deployment_id))
    }
}

/// The digits of a deployment id (`ecs-svc/123…` → `123…`), which name its service revision and its
/// service deployment.
pub fn deployment_digits(id: &str) -> &str {
    id.strip_prefix("ecs-svc/").unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_ecs() {
        assert_eq!(circuit_breaker_threshold(1), 3);
        assert_eq!(circuit_breaker_threshold(10), 5);
        assert_eq!(circuit_breaker_threshold(11), 6);
        assert_eq!(circuit_breaker_threshold(1000), 200);
    }

    #[test]
    fn names_and_ids() {
        assert!(is_service_name("web_1-a"));
        assert!(!is_service_name("web/1"));
        assert!(!is_service_name(""));
        assert!(!is_service_name(&"a".repeat(256)));
        assert_eq!(deployment_digits("ecs-svc/1234567890123456789"), "1234567890123456789");
    }

    #[test]
    fn events_are_newest_first_and_capped() {
        let mut r = ServiceRecord::default();
        for i in 0..(MAX_EVENTS + 5) {
            r.event(i.to_string(), i as i64, format!("e{i}"));
        }
        assert_eq!(r.service.events.len(), MAX_EVENTS);
        assert_eq!(r.service.events[0].message, format!("e{}", MAX_EVENTS + 4));
    }
}
