//! ECS (AWS JSON 1.1): clusters, task definitions, tasks and tags. Each submodule holds the typed input and
//! output of its operations and the handlers; records live in the store under `ecs/…` keys.

pub mod clusters;
pub mod services;
pub mod tags;
pub mod task_definitions;
pub mod tasks;

use skiff_proto::ApiError;

/// Where ECS records live in the store.
pub mod keys {
    pub const CLUSTERS: &str = "ecs/clusters/";
    pub const TASK_DEFINITIONS: &str = "ecs/taskdefs/";
    pub const FAMILIES: &str = "ecs/families/";

    pub fn cluster(name: &str) -> String {
        format!("{CLUSTERS}{name}")
    }

    /// Services of a cluster (`skiff_model::service::ServiceRecord`s).
    pub fn services_of(cluster: &str) -> String {
        skiff_model::service::keys::cluster_prefix(cluster)
    }

    /// Tasks of a cluster (records written by the task scheduler).
    pub fn tasks_of(cluster: &str) -> String {
        format!("ecs/tasks/{cluster}/")
    }

    pub fn family(family: &str) -> String {
        format!("{FAMILIES}{family}")
    }

    /// Revisions are zero-padded so that a prefix scan returns them in numeric order.
    pub fn task_definition(family: &str, revision: i32) -> String {
        format!("{TASK_DEFINITIONS}{family}/{revision:010}")
    }

    pub fn task_definitions_of(family: &str) -> String {
        format!("{TASK_DEFINITIONS}{family}/")
    }
}

/// A `Failure` of a batch call: describe calls report unknown names as `reason: "MISSING"`.
#[derive(Debug, serde::Serialize)]
pub struct Failure {
    pub arn: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Checks `maxResults` (1–100, default 100) as ECS does.
pub fn max_results(value: Option<i32>) -> Result<usize, ApiError> {
    match value {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid_parameter(format!("maxResults must be between 1 and 100, not {n}."))),
    }
}
