//! ECS tasks: the `Task` and `Container` wire shapes (stored as they are described), RunTask's overrides,
//! the stored [`TaskRecord`] around a task and its store keys.
//!
//! The API writes a task record when RunTask accepts a task (lastStatus `PROVISIONING`, desiredStatus
//! `RUNNING`) and when StopTask asks for its end (desiredStatus `STOPPED`, `stopCode`, `stoppedReason`); the
//! task controller writes what the agent observes (lastStatus, timestamps, containers, attachment, the end).

use crate::tag::Tag;
use crate::task_definition::{EnvironmentFile, EphemeralStorage, KeyValuePair, ResourceRequirement};
use serde::{Deserialize, Serialize};
use skiff_proto::timestamp::{json_opt, EpochMillis};

/// Store keys of task records: `ecs/tasks/{cluster-name}/{task-id}`.
pub mod keys {
    pub const TASKS: &str = "ecs/tasks/";

    pub fn cluster_prefix(cluster: &str) -> String {
        format!("{TASKS}{cluster}/")
    }

    pub fn task(cluster: &str, task_id: &str) -> String {
        format!("{TASKS}{cluster}/{task_id}")
    }

    /// RunTask `clientToken` → the task ids that call created (idempotency for 24 h, as ECS).
    pub const CLIENT_TOKENS: &str = "ecs/task-tokens/";

    pub fn client_token(cluster: &str, token: &str) -> String {
        format!("{CLIENT_TOKENS}{cluster}/{token}")
    }
}

/// The task lifecycle (DESIGN.md §4), in order.
pub const TASK_STATUSES: [&str; 8] =
    ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"];

/// The position of a lastStatus in [`TASK_STATUSES`] (unknown → 0).
pub fn status_rank(status: &str) -> usize {
    TASK_STATUSES.iter().position(|s| *s == status).unwrap_or(0)
}

/// The `stoppedReason` ECS gives an OOM-killed container.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// `TaskStopCode` values.
pub mod stop_code {
    pub const TASK_FAILED_TO_START: &str = "TaskFailedToStart";
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "EssentialContainerExited";
    pub const USER_INITIATED: &str = "UserInitiated";
    pub const SERVICE_SCHEDULER_INITIATED: &str = "ServiceSchedulerInitiated";
}

/// `ContainerOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// `InferenceAcceleratorOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceAcceleratorOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
}

/// `TaskOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_overrides: Option<Vec<ContainerOverride>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference_accelerator_overrides: Option<Vec<InferenceAcceleratorOverride>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
}

impl TaskOverride {
    /// The override of container `name`, if any.
    pub fn container(&self, name: &str) -> Option<&ContainerOverride> {
        self.container_overrides.iter().flatten().find(|o| o.name.as_deref() == Some(name))
    }
}

/// `AttachmentDetails` entry / `Attribute`-like name-value pair.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

/// `Attachment` (the task's `ElasticNetworkInterface`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub r#type: String,
    /// PRECREATED, ATTACHING, ATTACHED, DETACHING, DETACHED, DELETED, FAILED.
    pub status: String,
    #[serde(default)]
    pub details: Vec<NameValue>,
}

impl Attachment {
    pub fn detail(&self, name: &str) -> Option<&str> {
        self.details.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }

    pub fn set_detail(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.details.iter_mut().find(|d| d.name == name) {
            Some(d) => d.value = value,
            None => self.details.push(NameValue { name: name.to_string(), value }),
        }
    }
}

/// A container's `NetworkInterface`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ipv4_address: Option<String>,
}

/// `Container` (a task's container as described).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// PENDING, RUNNING, STOPPED.
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<serde_json::Value>,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    /// HEALTHY, UNHEALTHY, UNKNOWN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    /// Container-level cpu units as a string ("0" when the definition sets none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
}

/// `TaskEphemeralStorage` (`fargateEphemeralStorage`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskEphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    pub size_in_gib: i32,
}

/// `Task`, as DescribeTasks returns it (tags only with `include: ["TAGS"]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub attributes: Vec<NameValue>,
    pub availability_zone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider_name: Option<String>,
    /// CONNECTED once the task's network is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectivity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub connectivity_at: Option<EpochMillis>,
    pub containers: Vec<Container>,
    /// Task-level cpu units and memory MiB as strings (after overrides).
    pub cpu: String,
    pub memory: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub created_at: Option<EpochMillis>,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub execution_stopped_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    pub overrides: TaskOverride,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub pull_started_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub pull_stopped_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub started_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub stopped_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "json_opt")]
    pub stopping_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Bumped on every change of the record.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate_ephemeral_storage: Option<TaskEphemeralStorage>,
}

impl Task {
    /// The task id (last segment of the ARN).
    pub fn id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or_default()
    }

    /// The `ElasticNetworkInterface` attachment.
    pub fn eni_mut(&mut self) -> Option<&mut Attachment> {
        self.attachments.iter_mut().find(|a| a.r#type == "ElasticNetworkInterface")
    }
}

/// What the store keeps for a task (`ecs/tasks/{cluster}/{task-id}`): the task as described plus what only
/// Skiff needs to run it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub task: Task,
    /// The subnet the task's address comes from (`subnet-…`, from `awsvpcConfiguration.subnets`).
    pub subnet_id: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// `ENABLED` / `DISABLED`.
    #[serde(default)]
    pub assign_public_ip: String,
    /// The service that started the task (ListTasks `serviceName`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// When the service controller deregistered the task from its load balancers' target groups to stop it
    /// (lastStatus DEACTIVATING): it is stopped once its targets have drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining_since: Option<EpochMillis>,
    /// When each container (by name) started and finished, Unix ms (the task metadata endpoint shows them;
    /// the `Container` shape has no such members).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub container_times: std::collections::BTreeMap<String, ContainerTimes>,
}

/// A container's start and end, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<EpochMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<EpochMillis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_ordered() {
        assert!(status_rank("PROVISIONING") < status_rank("RUNNING"));
        assert!(status_rank("RUNNING") < status_rank("STOPPED"));
        assert_eq!(status_rank("STOPPED"), TASK_STATUSES.len() - 1);
    }

    #[test]
    fn record_round_trips_with_millisecond_timestamps() {
        let mut r = TaskRecord::default();
        r.task.task_arn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123abcd".into();
        r.task.created_at = Some(1_700_000_000_123);
        r.task.last_status = "PROVISIONING".into();
        let json = serde_json::to_string(&r).unwrap();
        let back: TaskRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.task.id(), "0123abcd");
    }
}

// -------------------------------------------------------------------------------------------------------
// Request checks shared by the task API (RunTask, StopTask, DescribeTasks, ListTasks).

/// lastStatus values a cluster counts as `pendingTasksCount`.
pub const PENDING_STATUSES: [&str; 3] = ["PROVISIONING", "PENDING", "ACTIVATING"];

/// Longest RunTask `clientToken` (ECS: up to 64 ASCII characters in the range 33–126).
pub const MAX_CLIENT_TOKEN_CHARS: usize = 64;

/// Longest `startedBy` (ECS: up to 128 letters, numbers, hyphens, forward slashes and underscores).
pub const MAX_STARTED_BY_CHARS: usize = 128;

/// Longest `group`.
pub const MAX_GROUP_CHARS: usize = 255;

impl TaskRecord {
    /// The family of the task's task definition (`…:task-definition/FAMILY:REV`).
    pub fn family(&self) -> &str {
        let rest = self.task.task_definition_arn.rsplit_once(":task-definition/").map(|(_, r)| r).unwrap_or_default();
        rest.rsplit_once(':').map(|(f, _)| f).unwrap_or(rest)
    }

    /// Whether the task has ended (lastStatus `STOPPED`).
    pub fn is_stopped(&self) -> bool {
        self.task.last_status == "STOPPED"
    }
}

/// Whether `id` is a task id: 32 lowercase hex digits (ECS's current ids) or a UUID (its older ones).
pub fn is_task_id(id: &str) -> bool {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match id.len() {
        32 => hex(id),
        36 => {
            let parts: Vec<&str> = id.split('-').collect();
            parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| hex(p))
        }
        _ => false,
    }
}

/// A task named by its id or ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReference {
    /// Region and account of an ARN (`None` for a bare id).
    pub scope: Option<(String, String)>,
    /// The cluster of a long ARN (`task/CLUSTER/ID`); `None` for a bare id or an old short ARN (`task/ID`).
    pub cluster: Option<String>,
    pub id: String,
}

/// Parses `ID`, `arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID` or `arn:aws:ecs:REGION:ACCOUNT:task/ID`;
/// `None` when it is none of them.
pub fn parse_task_reference(text: &str) -> Option<TaskReference> {
    if !text.starts_with("arn:") {
        return is_task_id(text).then(|| TaskReference { scope: None, cluster: None, id: text.to_string() });
    }
    let arn = skiff_proto::arn::Arn::parse(text)?;
    let (kind, rest) = arn.resource_type();
    if arn.service != "ecs" || kind != "task" {
        return None;
    }
    let (cluster, id) = match rest.split_once('/') {
        Some((c, id)) => (Some(c.to_string()), id),
        None => (None, rest),
    };
    if cluster.as_deref() == Some("") || !is_task_id(id) {
        return None;
    }
    Some(TaskReference { scope: Some((arn.region.to_string(), arn.account.to_string())), cluster, id: id.to_string() })
}

/// RunTask's `clientToken`: 1–64 characters, each in the ASCII range 33–126.
pub fn validate_client_token(token: &str) -> Result<(), skiff_proto::ApiError> {
    let ok = !token.is_empty()
        && token.chars().count() <= MAX_CLIENT_TOKEN_CHARS
        && token.bytes().all(|b| (33..=126).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(skiff_proto::ApiError::invalid_parameter(format!(
            "Invalid clientToken: up to {MAX_CLIENT_TOKEN_CHARS} ASCII characters in the range 33-126 are allowed."
        )))
    }
}

/// RunTask's `startedBy`: up to 128 letters, numbers, hyphens, forward slashes and underscores.
pub fn validate_started_by(started_by: &str) -> Result<(), skiff_proto::ApiError> {
    let ok = started_by.chars().count() <= MAX_STARTED_BY_CHARS
        && started_by.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(skiff_proto::ApiError::invalid_parameter(
            "startedBy can have up to 128 letters (uppercase and lowercase), numbers, hyphens, forward slashes and underscores.",
        ))
    }
}

/// RunTask's `group`: 1–255 characters (the default is `family:FAMILY`).
pub fn validate_group(group: &str) -> Result<(), skiff_proto::ApiError> {
    let chars = group.chars().count();
    if chars == 0 || chars > MAX_GROUP_CHARS || group.chars().any(char::is_control) {
        return Err(skiff_proto::ApiError::invalid_parameter(format!(
            "group must be 1-{MAX_GROUP_CHARS} characters without control characters."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn task_ids_and_references() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(is_task_id(id));
        assert!(is_task_id("01234567-89ab-cdef-0123-456789abcdef"));
        for bad in ["", "0123", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdeg", "x/y"] {
            assert!(!is_task_id(bad), "{bad}");
        }
        assert_eq!(parse_task_reference(id).unwrap(), TaskReference { scope: None, cluster: None, id: id.into() });
        let long = parse_task_reference(&format!("arn:aws:ecs:us-east-1:123456789012:task/web/{id}")).unwrap();
        assert_eq!(long.cluster.as_deref(), Some("web"));
        assert_eq!(long.scope, Some(("us-east-1".into(), "123456789012".into())));
        let short = parse_task_reference(&format!("arn:aws:ecs:us-east-1:123456789012:task/{id}")).unwrap();
        assert_eq!((short.cluster, short.id.as_str()), (None, id));
        for bad in [
            "not-an-id".to_string(),
            format!("arn:aws:ecs:us-east-1:123456789012:cluster/{id}"),
            format!("arn:aws:iam::123456789012:task/{id}"),
            "arn:aws:ecs:us-east-1:123456789012:task/web/nothex".to_string(),
            format!("arn:aws:ecs:us-east-1:123456789012:task//{id}"),
        ] {
            assert_eq!(parse_task_reference(&bad), None, "{bad}");
        }
    }

    #[test]
    fn client_tokens() {
        validate_client_token("abc-123_!~").unwrap();
        validate_client_token(&"x".repeat(64)).unwrap();
        for bad in ["", "has space", "tab\t", "é", &"x".repeat(65)] {
            assert_eq!(validate_client_token(bad).unwrap_err().code, "InvalidParameterException", "{bad:?}");
        }
    }

    #[test]
    fn started_by_and_group() {
        validate_started_by("job/42_a-b").unwrap();
        validate_started_by("").unwrap();
        assert!(validate_started_by("with space").is_err());
        assert!(validate_started_by(&"a".repeat(129)).is_err());
        validate_group("family:web").unwrap();
        assert!(validate_group("").is_err());
        assert!(validate_group(&"g".repeat(256)).is_err());
    }

    #[test]
    fn record_family_and_stopped() {
        let mut r = TaskRecord::default();
        r.task.task_definition_arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web-app:12".into();
        r.task.last_status = "RUNNING".into();
        assert_eq!(r.family(), "web-app");
        assert!(!r.is_stopped());
        r.task.last_status = "STOPPED".into();
        assert!(r.is_stopped());
    }
}

// -------------------------------------------------------------------------------------------------------
// Launch options shared by RunTask and the services (CreateService, UpdateService).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaunchType {
    #[serde(rename = "EC2")]
    Ec2,
    #[serde(rename = "FARGATE")]
    Fargate,
    #[serde(rename = "EXTERNAL")]
    External,
    #[serde(rename = "MANAGED_INSTANCES")]
    ManagedInstances,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PropagateTags {
    TaskDefinition,
    Service,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AssignPublicIp {
    Enabled,
    Disabled,
}

impl AssignPublicIp {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignPublicIp::Enabled => "ENABLED",
            AssignPublicIp::Disabled => "DISABLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<AssignPublicIp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awsvpc_configuration: Option<AwsVpcConfiguration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacementConstraintType {
    #[serde(rename = "distinctInstance")]
    DistinctInstance,
    #[serde(rename = "memberOf")]
    MemberOf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementConstraint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<PlacementConstraintType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementStrategyType {
    Random,
    Spread,
    Binpack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<PlacementStrategyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
