//! ECS clusters: the stored record, the wire shapes of the cluster operations, and their validation.

use crate::tag::Tag;
use serde::{Deserialize, Serialize};
use skiff_proto::timestamp::EpochMillis;
use skiff_proto::ApiError;

/// The capacity providers every Fargate account has; Skiff has no others.
pub const BUILTIN_CAPACITY_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSetting {
    pub name: ClusterSettingName,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterSettingName {
    #[serde(rename = "containerInsights")]
    ContainerInsights,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execute_command_configuration: Option<ExecuteCommandConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_storage_configuration: Option<ManagedStorageConfiguration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteCommandConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<ExecuteCommandLogging>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<ExecuteCommandLogConfiguration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecuteCommandLogging {
    None,
    Default,
    Override,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecuteCommandLogConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_log_group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_watch_encryption_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_bucket_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_encryption_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_key_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedStorageConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fargate_ephemeral_storage_kms_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterServiceConnectDefaultsRequest {
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterServiceConnectDefaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A cluster as Skiff stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    pub name: String,
    pub arn: String,
    /// ACTIVE, or INACTIVE once deleted (kept describable, as ECS does).
    pub status: String,
    pub created_at: EpochMillis,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub settings: Vec<ClusterSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ClusterConfiguration>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<ClusterServiceConnectDefaults>,
}

/// The `Cluster` wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: String,
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<ClusterConfiguration>,
    pub status: String,
    pub registered_container_instances_count: i32,
    pub running_tasks_count: i32,
    pub pending_tasks_count: i32,
    pub active_services_count: i32,
    pub statistics: Vec<KeyValuePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Vec<ClusterSetting>>,
    pub capacity_providers: Vec<String>,
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_connect_defaults: Option<ClusterServiceConnectDefaults>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyValuePair {
    pub name: String,
    pub value: String,
}

/// What is running in a cluster, counted from the tasks and services it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub running_tasks: i32,
    pub pending_tasks: i32,
    pub active_services: i32,
    pub draining_services: i32,
}

/// Which optional parts of a cluster a describe call asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterIncludes {
    pub tags: bool,
    pub settings: bool,
    pub configurations: bool,
    pub statistics: bool,
    pub attachments: bool,
}

impl ClusterRecord {
    /// The wire shape, with the parts a create/update response always shows.
    pub fn to_cluster(&self, counts: ClusterCounts, include: ClusterIncludes) -> Cluster {
        let statistics = if include.statistics {
            [
                ("runningEC2TasksCount", 0),
                ("runningFargateTasksCount", counts.running_tasks),
                ("pendingEC2TasksCount", 0),
                ("pendingFargateTasksCount", counts.pending_tasks),
                ("activeEC2ServiceCount", 0),
                ("activeFargateServiceCount", counts.active_services),
                ("drainingEC2ServiceCount", 0),
                ("drainingFargateServiceCount", counts.draining_services),
            ]
            .into_iter()
            .map(|(name, value)| KeyValuePair { name: name.into(), value: value.to_string() })
            .collect()
        } else {
            Vec::new()
        };
        Cluster {
            cluster_arn: self.arn.clone(),
            cluster_name: self.name.clone(),
            configuration: if include.configurations { self.configuration.clone() } else { None },
            status: self.status.clone(),
            registered_container_instances_count: 0,
            running_tasks_count: counts.running_tasks,
            pending_tasks_count: counts.pending_tasks,
            active_services_count: counts.active_services,
            statistics,
            tags: include.tags.then(|| self.tags.clone()),
            settings: include.settings.then(|| self.settings.clone()),
            capacity_providers: self.capacity_providers.clone(),
            default_capacity_provider_strategy: self.default_capacity_provider_strategy.clone(),
            attachments: include.attachments.then(Vec::new),
            service_connect_defaults: self.service_connect_defaults.clone(),
        }
    }
}

/// Cluster names: up to 255 letters, numbers, underscores and hyphens.
pub fn validate_cluster_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(format!(
            "Cluster name '{name}' is invalid: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )))
    }
}

/// `containerInsights` takes `enabled`, `disabled` or `enhanced`.
pub fn validate_settings(settings: &[ClusterSetting]) -> Result<(), ApiError> {
    for s in settings {
        if !matches!(s.value.as_str(), "enabled" | "disabled" | "enhanced") {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid value '{}' for cluster setting containerInsights: use enabled, disabled or enhanced.",
                s.value
            )));
        }
    }
    Ok(())
}

/// Merges settings by name (a later value replaces an earlier one), keeping a `containerInsights` entry
/// as ECS always reports one.
pub fn merge_settings(existing: &mut Vec<ClusterSetting>, new: Vec<ClusterSetting>) {
    for s in new {
        match existing.iter_mut().find(|e| e.name == s.name) {
            Some(e) => e.value = s.value,
            None => existing.push(s),
        }
    }
    if existing.is_empty() {
        existing.push(ClusterSetting { name: ClusterSettingName::ContainerInsights, value: "disabled".into() });
    }
}

/// Capacity providers must be built-in ones, listed once; a default strategy may only use listed providers,
/// weights 0–1000, bases 0–100000, and at most one item with a base.
pub fn validate_capacity_providers(
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> Result<(), ApiError> {
    for (i, p) in providers.iter().enumerate() {
        if !BUILTIN_CAPACITY_PROVIDERS.contains(&p.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "The specified capacity provider '{p}' does not exist. Specify FARGATE or FARGATE_SPOT."
            )));
        }
        if providers[..i].contains(p) {
            return Err(ApiError::invalid_parameter(format!("Capacity provider '{p}' is listed more than once.")));
        }
    }
    let mut with_base = 0;
    for (i, item) in strategy.iter().enumerate() {
        if !providers.contains(&item.capacity_provider) {
            return Err(ApiError::invalid_parameter(format!(
                "The capacity provider strategy names '{}', which is not associated with the cluster. Add it to capacityProviders first.",
                item.capacity_provider
            )));
        }
        if strategy[..i].iter().any(|o| o.capacity_provider == item.capacity_provider) {
            return Err(ApiError::invalid_parameter(format!(
                "The capacity provider strategy names '{}' more than once.",
                item.capacity_provider
            )));
        }
        if let Some(w) = item.weight {
            if !(0..=1000).contains(&w) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid weight {w} for capacity provider '{}': the weight must be between 0 and 1000.",
                    item.capacity_provider
                )));
            }
        }
        if let Some(b) = item.base {
            if !(0..=100_000).contains(&b) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid base {b} for capacity provider '{}': the base must be between 0 and 100000.",
                    item.capacity_provider
                )));
            }
            if b > 0 {
                with_base += 1;
            }
        }
    }
    if with_base > 1 {
        return Err(ApiError::invalid_parameter("Only one capacity provider in a strategy can have a base defined."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, weight: Option<i32>, base: Option<i32>) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem { capacity_provider: p.into(), weight, base }
    }

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("demo-1_x").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(256)] {
            assert_eq!(validate_cluster_name(bad).unwrap_err().code, "InvalidParameterException", "{bad}");
        }
    }

    #[test]
    fn capacity_providers() {
        let both = vec!["FARGATE".to_string(), "FARGATE_SPOT".to_string()];
        assert!(validate_capacity_providers(
            &both,
            &[item("FARGATE", Some(1), Some(2)), item("FARGATE_SPOT", Some(3), None)]
        )
        .is_ok());
        let cases: &[(&[&str], Vec<CapacityProviderStrategyItem>, &str)] = &[
            (&["EC2_POOL"], vec![], "does not exist"),
            (&["FARGATE", "FARGATE"], vec![], "more than once"),
            (&["FARGATE"], vec![item("FARGATE_SPOT", None, None)], "not associated"),
            (&["FARGATE"], vec![item("FARGATE", Some(1001), None)], "weight"),
            (&["FARGATE"], vec![item("FARGATE", None, Some(-1))], "base"),
            (
                &["FARGATE", "FARGATE_SPOT"],
                vec![item("FARGATE", None, Some(1)), item("FARGATE_SPOT", None, Some(1))],
                "Only one",
            ),
        ];
        for (providers, strategy, msg) in cases {
            let providers: Vec<String> = providers.iter().map(|s| s.to_string()).collect();
            let err = validate_capacity_providers(&providers, strategy).unwrap_err();
            assert!(err.message.contains(msg), "{providers:?}: {}", err.message);
        }
    }

    #[test]
    fn settings_merge_by_name() {
        let mut s = Vec::new();
        merge_settings(&mut s, Vec::new());
        assert_eq!(s[0].value, "disabled");
        merge_settings(
            &mut s,
            vec![ClusterSetting { name: ClusterSettingName::ContainerInsights, value: "enabled".into() }],
        );
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, "enabled");
        assert!(validate_settings(&[ClusterSetting {
            name: ClusterSettingName::ContainerInsights,
            value: "on".into()
        }])
        .is_err());
    }
}
