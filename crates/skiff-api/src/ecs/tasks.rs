//! RunTask, StopTask, DescribeTasks, ListTasks, and the purge of long-stopped tasks.
//!
//! A task is a `TaskRecord` at `ecs/tasks/{cluster}/{id}`. RunTask validates the request as ECS does for
//! the Fargate launch type and writes the records (lastStatus `PROVISIONING`, desiredStatus `RUNNING`);
//! StopTask sets desiredStatus `STOPPED`. Everything after that (lastStatus, timestamps, containers' state,
//! the ENI's address) is the task controller's to write. Both wake the controller after committing.
//!
//! RunTask writes every task of the call, the clientToken record and a re-put of the cluster record in one
//! transaction that compares the cluster record: a concurrent DeleteCluster (which compares the cluster
//! record it read before counting the tasks) and a RunTask therefore never both commit on stale reads.

use super::clusters::cluster_name;
use super::task_definitions::{parse_task_definition_arn, TaskDefinitionRecord};
use super::{keys, max_results, Failure};
use crate::context::{now_millis, Ctx};
use crate::records::{encode, load, load_all, paginate, store_error};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use skiff_model::cluster::{self, CapacityProviderStrategyItem, ClusterRecord};
use skiff_model::fargate;
use skiff_model::tag::{merge_tags, validate_tags, Tag};
use skiff_model::task::{
    self as model, keys as task_keys, stop_code, AssignPublicIp, Attachment, Container, ContainerOverride, LaunchType,
    NameValue, NetworkConfiguration, PlacementConstraint, PlacementStrategy, PropagateTags, Task, TaskEphemeralStorage,
    TaskOverride, TaskRecord,
};
use skiff_model::task_definition::{
    CPUArchitecture, Compatibility, EphemeralStorage, OSFamily, TaskDefinition, TaskDefinitionStatus,
    EPHEMERAL_STORAGE_GIB,
};
use skiff_model::vpc::{self, SecurityGroup, Subnet};
use skiff_proto::arn::ArnScope;
use skiff_proto::ApiError;
use skiff_store::{Store, Txn, TxnOutcome};

/// The Fargate platform version Skiff runs (and what `LATEST` means).
pub const PLATFORM_VERSION: &str = "1.4.0";
/// Older Linux platform versions ECS still accepts; tasks that need 1.4.0 features cannot use them.
const OLDER_PLATFORM_VERSIONS: [&str; 4] = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"];
/// Most tasks one RunTask call starts.
pub const MAX_COUNT: i32 = 10;
/// Fargate's default ephemeral storage, GiB.
pub const DEFAULT_EPHEMERAL_STORAGE_GIB: i32 = 20;
/// ECS allows 8192 characters of overrides (JSON included).
pub const MAX_OVERRIDES_CHARS: usize = 8192;
/// Most subnets and security groups in an `awsvpcConfiguration`.
pub const MAX_SUBNETS: usize = 16;
pub const MAX_SECURITY_GROUPS: usize = 5;
/// How long a RunTask clientToken stays bound to its tasks (ECS: 24 hours).
pub const CLIENT_TOKEN_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// `stoppedReason` of a StopTask without `reason`.
pub const DEFAULT_STOP_REASON: &str = "Task stopped by user";

// ---------------------------------------------------------------------------------------------------------
// wire shapes

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunTaskRequest {
    capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    cluster: Option<String>,
    count: Option<i32>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    enable_execute_command: Option<bool>,
    group: Option<String>,
    launch_type: Option<LaunchType>,
    network_configuration: Option<NetworkConfiguration>,
    overrides: Option<TaskOverride>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    placement_strategy: Option<Vec<PlacementStrategy>>,
    platform_version: Option<String>,
    propagate_tags: Option<PropagateTags>,
    reference_id: Option<String>,
    started_by: Option<String>,
    tags: Option<Vec<Tag>>,
    task_definition: String,
    client_token: Option<String>,
    /// Managed EBS volumes (`TaskVolumeConfiguration`): Skiff has no EBS, any entry is refused.
    volume_configurations: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Serialize)]
pub struct RunTaskResponse {
    tasks: Vec<Task>,
    failures: Vec<Failure>,
}

/// What `ecs/task-tokens/{cluster}/{token}` holds: the request it was used with and the tasks it made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientTokenRecord {
    fingerprint: String,
    task_ids: Vec<String>,
    created_at: i64,
}

// ---------------------------------------------------------------------------------------------------------
// shared helpers

pub(crate) fn cluster_not_found() -> ApiError {
    ApiError::client("ClusterNotFoundException", "Cluster not found.")
}

/// The cluster record (any status) of the call's cluster.
async fn existing_cluster(ctx: &Ctx, identifier: Option<&str>) -> Result<(String, ClusterRecord, i64), ApiError> {
    let name = cluster_name(ctx, identifier)?;
    match load::<ClusterRecord>(ctx.store(), &keys::cluster(&name)).await? {
        Some((c, rev)) => Ok((name, c, rev)),
        None => Err(cluster_not_found()),
    }
}

fn task_arn(ctx: &Ctx, cluster: &str, id: &str) -> String {
    ctx.scope().ecs(&format!("task/{cluster}/{id}"))
}

/// The cluster a call means: `cluster` when given, otherwise the cluster a long task ARN names (ECS
/// task ARNs carry their cluster), otherwise the default cluster.
fn implied_cluster<'a>(cluster: Option<&'a str>, tasks: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if let Some(c) = cluster {
        return Some(c.to_string());
    }
    tasks.into_iter().filter_map(model::parse_task_reference).find_map(|r| r.cluster)
}

/// The id of a task named by `reference` in `cluster`: `Err(())` when the reference is malformed, `Ok(None)`
/// when it names a task that cannot be in this cluster (another region, account or cluster).
fn task_id_in(ctx: &Ctx, cluster: &str, reference: &str) -> Result<Option<String>, ()> {
    let r = model::parse_task_reference(reference).ok_or(())?;
    if let Some((region, account)) = &r.scope {
        if *region != ctx.scope().region || *account != ctx.scope().account {
            return Ok(None);
        }
    }
    if r.cluster.as_deref().is_some_and(|c| c != cluster) {
        return Ok(None);
    }
    Ok(Some(r.id))
}

fn random_hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn fingerprint(req: &RunTaskRequest, cluster: &str) -> Result<String, ApiError> {
    let mut canonical = req.clone();
    canonical.client_token = None;
    canonical.cluster = Some(cluster.to_string());
    let digest = Sha256::digest(encode(&canonical)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

// ---------------------------------------------------------------------------------------------------------
// RunTask: pure validation

/// The task definition (and its tags) a reference names: `family` (latest ACTIVE revision), `family:revision` or an ARN.
pub(crate) async fn resolve_task_definition(
    ctx: &Ctx,
    reference: &str,
) -> Result<(TaskDefinition, Vec<Tag>), ApiError> {
    let not_found = || ApiError::client_exception("TaskDefinition not found.");
    let (family, revision) = if reference.starts_with("arn:") {
        let (family, revision) = parse_task_definition_arn(ctx.scope(), reference)?;
        (family, Some(revision))
    } else {
        match reference.rsplit_once(':') {
            Some((family, rev)) => match rev.parse::<i32>() {
                Ok(n) if n >= 1 => (family.to_string(), Some(n)),
                _ => {
                    return Err(ApiError::client_exception(format!(
                        "Invalid revision number. Number: {rev} (in '{reference}')"
                    )))
                }
            },
            None => (reference.to_string(), None),
        }
    };
    if family.is_empty() || !family.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(not_found());
    }
    let record = match revision {
        Some(rev) => load::<TaskDefinitionRecord>(ctx.store(), &keys::task_definition(&family, rev))
            .await?
            .map(|(r, _)| r)
            .ok_or_else(not_found)?,
        None => load_all::<TaskDefinitionRecord>(ctx.store(), &keys::task_definitions_of(&family))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| {
                r.task_definition.status.unwrap_or(TaskDefinitionStatus::Active) == TaskDefinitionStatus::Active
            })
            .max_by_key(|r| r.task_definition.revision())
            .ok_or_else(not_found)?,
    };
    if record.task_definition.status.unwrap_or(TaskDefinitionStatus::Active) != TaskDefinitionStatus::Active {
        return Err(ApiError::invalid_parameter("TaskDefinition is inactive"));
    }
    Ok((record.task_definition, record.tags))
}

/// Task-level sizes after overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSizes {
    pub cpu: u32,
    pub memory: u32,
    pub ephemeral_storage_gib: i32,
}

fn parse_size(value: &str, field: &str, parse: fn(&str) -> Option<u32>) -> Result<u32, ApiError> {
    parse(value).ok_or_else(|| ApiError::invalid_parameter(format!("Invalid '{field}' setting for task.")))
}

/// Checks `overrides` against the task definition (containers named, sizes on Fargate's matrix, the
/// containers' sizes within the task's, ephemeral storage 21–200 GiB) and returns the task's sizes.
pub fn check_overrides(td: &TaskDefinition, o: &TaskOverride) -> Result<TaskSizes, ApiError> {
    let length = serde_json::to_string(o).map(|s| s.chars().count()).unwrap_or(0);
    if length > MAX_OVERRIDES_CHARS {
        return Err(ApiError::invalid_parameter(format!(
            "Container Overrides length must be at most {MAX_OVERRIDES_CHARS}"
        )));
    }
    if o.inference_accelerator_overrides.as_deref().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Tasks using the Fargate launch type do not support inferenceAcceleratorOverrides.",
        ));
    }
    let overrides = o.container_overrides.as_deref().unwrap_or_default();
    for (i, c) in overrides.iter().enumerate() {
        let Some(name) = c.name.as_deref() else {
            return Err(ApiError::invalid_parameter("Container Overrides must name the container they override."));
        };
        if td.container(name).is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
        if overrides[..i].iter().any(|p| p.name.as_deref() == Some(name)) {
            return Err(ApiError::invalid_parameter(format!("Container {name} is overridden more than once.")));
        }
        for (field, v) in [("cpu", c.cpu), ("memory", c.memory), ("memoryReservation", c.memory_reservation)] {
            if v.is_some_and(|v| v < 0 || (v == 0 && field != "cpu")) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid '{field}' override for container '{name}': it must be a positive number."
                )));
            }
        }
        if c.resource_requirements.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::invalid_parameter(format!(
                "Tasks using the Fargate launch type do not support resourceRequirements (container '{name}')."
            )));
        }
    }
    let cpu = match o.cpu.as_deref().or(td.cpu.as_deref()) {
        Some(c) => parse_size(c, "cpu", fargate::parse_cpu)?,
        None => return Err(ApiError::client_exception("Fargate requires that 'cpu' be defined at the task level.")),
    };
    let memory = match o.memory.as_deref().or(td.memory.as_deref()) {
        Some(m) => parse_size(m, "memory", fargate::parse_memory)?,
        None => return Err(ApiError::client_exception("Fargate requires that 'memory' be defined at the task level.")),
    };
    if !fargate::is_valid_fargate_combination(cpu, memory) {
        return Err(ApiError::invalid_parameter(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory."
        )));
    }
    let mut cpu_sum: i64 = 0;
    for def in td.containers() {
        let name = def.name.as_deref().unwrap_or_default();
        let over = o.container(name);
        let c_cpu = over.and_then(|c| c.cpu).or(def.cpu).unwrap_or(0);
        let c_mem = over.and_then(|c| c.memory).or(def.memory);
        let c_res = over.and_then(|c| c.memory_reservation).or(def.memory_reservation);
        cpu_sum += i64::from(c_cpu);
        for m in [c_mem, c_res].into_iter().flatten() {
            if m as u32 > memory {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid setting for container '{name}': its memory ({m} MiB) exceeds the task's memory ({memory} MiB)."
                )));
            }
        }
        if let (Some(hard), Some(soft)) = (c_mem, c_res) {
            if soft > hard {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid setting for container '{name}'. memoryReservation ({soft}) must be less than or equal to memory ({hard})."
                )));
            }
        }
    }
    if cpu_sum > i64::from(cpu) {
        return Err(ApiError::invalid_parameter(format!(
            "The sum of the containers' cpu ({cpu_sum}) exceeds the task's cpu ({cpu})."
        )));
    }
    let ephemeral_storage_gib = match &o.ephemeral_storage {
        Some(s) if !EPHEMERAL_STORAGE_GIB.contains(&s.size_in_gib) => {
            return Err(ApiError::invalid_parameter(format!(
                "Invalid 'ephemeralStorage.sizeInGiB' override {}: it must be between {} and {} GiB.",
                s.size_in_gib,
                EPHEMERAL_STORAGE_GIB.start(),
                EPHEMERAL_STORAGE_GIB.end()
            )))
        }
        Some(s) => s.size_in_gib,
        None => td.ephemeral_storage.as_ref().map(|s| s.size_in_gib).unwrap_or(DEFAULT_EPHEMERAL_STORAGE_GIB),
    };
    Ok(TaskSizes { cpu, memory, ephemeral_storage_gib })
}

/// The overrides as ECS echoes them: one `containerOverrides` entry per container of the definition (the
/// request's override, or just the name), and `inferenceAcceleratorOverrides` always present.
pub fn normalized_overrides(td: &TaskDefinition, o: &TaskOverride) -> TaskOverride {
    let containers = td
        .containers()
        .iter()
        .map(|def| {
            let name = def.name.clone().unwrap_or_default();
            o.container(&name).cloned().unwrap_or(ContainerOverride { name: Some(name), ..Default::default() })
        })
        .collect();
    TaskOverride {
        container_overrides: Some(containers),
        inference_accelerator_overrides: Some(o.inference_accelerator_overrides.clone().unwrap_or_default()),
        ..o.clone()
    }
}

/// The platform version a task runs on: `LATEST`/none → 1.4.0; an older Linux version only when the task
/// needs nothing 1.4.0 brought (ephemeral storage, EFS volumes, more than 4 vCPU).
pub fn platform_version(requested: Option<&str>, td: &TaskDefinition, sizes: &TaskSizes) -> Result<String, ApiError> {
    let linux =
        td.runtime_platform.as_ref().and_then(|p| p.operating_system_family).is_none_or(|f| f == OSFamily::Linux);
    let incompatible = || {
        ApiError::client(
            "PlatformTaskDefinitionIncompatibilityException",
            "The specified platform does not satisfy the task definition's required capabilities.",
        )
    };
    if !linux {
        return Err(incompatible());
    }
    match requested {
        None | Some("LATEST") | Some(PLATFORM_VERSION) => Ok(PLATFORM_VERSION.to_string()),
        Some(v) if OLDER_PLATFORM_VERSIONS.contains(&v) => {
            let needs_140 = td.ephemeral_storage.is_some()
                || sizes.ephemeral_storage_gib != DEFAULT_EPHEMERAL_STORAGE_GIB
                || sizes.cpu > 4096
                || td.volumes.iter().flatten().any(|v| v.efs_volume_configuration.is_some());
            if needs_140 {
                Err(incompatible())
            } else {
                Ok(v.to_string())
            }
        }
        Some(_) => Err(ApiError::client("PlatformUnknownException", "The specified platform version does not exist.")),
    }
}

/// The capacity provider of each of `count` tasks: bases first (in strategy order), then by weight (all
/// weights 0 count as equal weights).
pub fn spread_over_providers(strategy: &[CapacityProviderStrategyItem], count: usize) -> Vec<String> {
    // Tasks placed to satisfy each base, and tasks placed by weight after the bases (the weights share out
    // only the latter, as ECS applies weights once the bases are met).
    let mut based = vec![0i64; strategy.len()];
    let mut weighted = vec![0i64; strategy.len()];
    let all_zero = strategy.iter().all(|s| s.weight.unwrap_or(0) == 0);
    let weight = |s: &CapacityProviderStrategyItem| if all_zero { 1 } else { i64::from(s.weight.unwrap_or(0)) };
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let i = match strategy.iter().enumerate().position(|(i, s)| based[i] < i64::from(s.base.unwrap_or(0))) {
            Some(i) => {
                based[i] += 1;
                i
            }
            None => {
                // The provider whose share after this task stays smallest relative to its weight.
                let i = (0..strategy.len())
                    .filter(|&i| weight(&strategy[i]) > 0)
                    .min_by(|&a, &b| {
                        let (wa, wb) = (weight(&strategy[a]), weight(&strategy[b]));
                        ((weighted[a] + 1) * wb).cmp(&((weighted[b] + 1) * wa)).then(a.cmp(&b))
                    })
                    .unwrap_or(0);
                weighted[i] += 1;
                i
            }
        };
        out.push(strategy[i].capacity_provider.clone());
    }
    out
}

/// Where the task runs: the subnets (in order), the security groups and assignPublicIp.
pub(crate) struct Placement {
    pub subnets: Vec<Subnet>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: AssignPublicIp,
}

pub(crate) async fn placement(ctx: &Ctx, network: Option<&NetworkConfiguration>) -> Result<Placement, ApiError> {
    let Some(conf) = network.and_then(|n| n.awsvpc_configuration.as_ref()) else {
        return Err(ApiError::invalid_parameter(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    };
    if conf.subnets.is_empty() {
        return Err(ApiError::invalid_parameter("subnets can not be empty."));
    }
    if conf.subnets.len() > MAX_SUBNETS {
        return Err(ApiError::invalid_parameter(format!("subnets can have at most {MAX_SUBNETS} items.")));
    }
    let groups = conf.security_groups.clone().unwrap_or_default();
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(ApiError::invalid_parameter(format!(
            "securityGroups can have at most {MAX_SECURITY_GROUPS} items."
        )));
    }
    let mut ids: Vec<&str> = Vec::new();
    for s in &conf.subnets {
        if !ids.contains(&s.as_str()) {
            ids.push(s);
        }
    }
    if let Some(bad) = ids.iter().find(|id| !vpc::is_resource_id("subnet", id)) {
        return Err(ApiError::invalid_parameter(format!(
            "Error retrieving subnet information for [{}]: Invalid id: \"{bad}\" (ErrorCode: InvalidSubnetID.Malformed)",
            ids.join(", ")
        )));
    }
    let mut subnets = Vec::new();
    let mut missing = Vec::new();
    for id in &ids {
        match load::<Subnet>(ctx.store(), &vpc::keys::subnet(id)).await? {
            Some((s, _)) if s.region == ctx.scope().region => subnets.push(s),
            _ => missing.push(*id),
        }
    }
    if let Some(first) = missing.first() {
        return Err(ApiError::invalid_parameter(format!(
            "Error retrieving subnet information for [{}]: The subnet ID '{first}' does not exist (ErrorCode: InvalidSubnetID.NotFound)",
            missing.join(", ")
        )));
    }
    let vpc_id = subnets[0].vpc_id.clone();
    if let Some(other) = subnets.iter().find(|s| s.vpc_id != vpc_id) {
        return Err(ApiError::invalid_parameter(format!(
            "Subnets {} and {} belong to different VPCs: the subnets of a task must all be in one VPC.",
            subnets[0].subnet_id, other.subnet_id
        )));
    }
    let mut security_groups = Vec::new();
    if groups.is_empty() {
        let default = load_all::<SecurityGroup>(ctx.store(), vpc::keys::SECURITY_GROUPS)
            .await?
            .into_iter()
            .map(|(_, g)| g)
            .find(|g| g.vpc_id == vpc_id && g.group_name == "default")
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("VPC {vpc_id} has no default security group: name one."))
            })?;
        security_groups.push(default.group_id);
    } else {
        let mut missing = Vec::new();
        for id in &groups {
            if security_groups.contains(id) {
                continue;
            }
            let found = if vpc::is_resource_id("sg", id) {
                load::<SecurityGroup>(ctx.store(), &vpc::keys::security_group(id)).await?.map(|(g, _)| g)
            } else {
                None
            };
            match found {
                Some(g) if g.region == ctx.scope().region => {
                    if g.vpc_id != vpc_id {
                        return Err(ApiError::invalid_parameter(format!(
                            "Security group {id} and subnet {} belong to different networks.",
                            subnets[0].subnet_id
                        )));
                    }
                    security_groups.push(g.group_id);
                }
                _ => missing.push(id.as_str()),
            }
        }
        if let Some(first) = missing.first() {
            return Err(ApiError::invalid_parameter(format!(
                "Error retrieving security group information for [{}]: The security group '{first}' does not exist (ErrorCode: InvalidGroup.NotFound)",
                missing.join(", ")
            )));
        }
    }
    Ok(Placement {
        subnets,
        security_groups,
        assign_public_ip: conf.assign_public_ip.unwrap_or(AssignPublicIp::Disabled),
    })
}

/// The capacity each task of the call runs on: `(launchType, capacityProviderName)` per task.
pub(crate) fn capacity(
    launch_type: Option<LaunchType>,
    strategy: Option<&[CapacityProviderStrategyItem]>,
    cluster: &ClusterRecord,
    count: usize,
) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let strategy = strategy.map(<[_]>::to_vec).unwrap_or_default();
    if launch_type.is_some() && !strategy.is_empty() {
        return Err(ApiError::invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
        ));
    }
    match launch_type {
        Some(LaunchType::Fargate) => return Ok(vec![("FARGATE".into(), None); count]),
        Some(LaunchType::Ec2) | Some(LaunchType::External) => {
            return Err(ApiError::invalid_parameter("No Container Instances were found in your cluster."))
        }
        Some(LaunchType::ManagedInstances) => {
            return Err(ApiError::invalid_parameter(
                "Tasks on Amazon ECS Managed Instances must use a capacityProviderStrategy, not launchType MANAGED_INSTANCES.",
            ))
        }
        None => {}
    }
    let strategy = if strategy.is_empty() { cluster.default_capacity_provider_strategy.clone() } else { strategy };
    if strategy.is_empty() {
        return Ok(vec![("FARGATE".into(), None); count]);
    }
    if strategy.len() > 20 {
        return Err(ApiError::invalid_parameter(
            "A capacity provider strategy can contain at most 20 capacity providers.",
        ));
    }
    for item in &strategy {
        if !cluster.capacity_providers.contains(&item.capacity_provider) {
            return Err(ApiError::invalid_parameter(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
            ));
        }
    }
    cluster::validate_capacity_providers(&cluster.capacity_providers, &strategy)?;
    Ok(spread_over_providers(&strategy, count).into_iter().map(|p| ("FARGATE".to_string(), Some(p))).collect())
}

/// What the tasks of one launch (a RunTask call, a service's deployment) share; [`LaunchTemplate::task`]
/// makes the record of one of them (lastStatus PROVISIONING, desiredStatus RUNNING).
pub(crate) struct LaunchTemplate<'a> {
    pub cluster_name: &'a str,
    pub cluster_arn: &'a str,
    pub td: &'a TaskDefinition,
    pub sizes: &'a TaskSizes,
    pub platform: &'a str,
    pub overrides: &'a TaskOverride,
    pub security_groups: &'a [String],
    pub assign_public_ip: AssignPublicIp,
    pub group: &'a str,
    pub started_by: Option<&'a str>,
    pub tags: &'a [Tag],
    pub enable_execute_command: bool,
    pub service_name: Option<&'a str>,
    pub now: i64,
}

impl LaunchTemplate<'_> {
    pub fn task(&self, scope: &ArnScope, subnet: &Subnet, launch_type: &str, provider: Option<String>) -> TaskRecord {
        let (td, name) = (self.td, self.cluster_name);
        let id = random_hex_id();
        let arn = scope.ecs(&format!("task/{name}/{id}"));
        let arch = match td.runtime_platform.as_ref().and_then(|p| p.cpu_architecture) {
            Some(CPUArchitecture::Arm64) => "arm64",
            _ => "x86_64",
        };
        let containers = td
            .containers()
            .iter()
            .map(|def| {
                let cname = def.name.clone().unwrap_or_default();
                let over = self.overrides.container(&cname);
                Container {
                    container_arn: scope.ecs(&format!("container/{name}/{id}/{}", uuid::Uuid::new_v4())),
                    task_arn: arn.clone(),
                    image: def.image.clone().unwrap_or_default(),
                    last_status: "PENDING".into(),
                    cpu: Some(over.and_then(|o| o.cpu).or(def.cpu).unwrap_or(0).to_string()),
                    memory: over.and_then(|o| o.memory).or(def.memory).map(|m| m.to_string()),
                    memory_reservation: over
                        .and_then(|o| o.memory_reservation)
                        .or(def.memory_reservation)
                        .map(|m| m.to_string()),
                    name: cname,
                    ..Container::default()
                }
            })
            .collect();
        let sizes = self.sizes;
        let task = Task {
            task_arn: arn,
            cluster_arn: self.cluster_arn.to_string(),
            task_definition_arn: td.arn().to_string(),
            attachments: vec![Attachment {
                id: uuid::Uuid::new_v4().to_string(),
                r#type: "ElasticNetworkInterface".into(),
                status: "PRECREATED".into(),
                details: vec![NameValue { name: "subnetId".into(), value: subnet.subnet_id.clone() }],
            }],
            attributes: vec![NameValue { name: "ecs.cpu-architecture".into(), value: arch.into() }],
            availability_zone: subnet.availability_zone.clone(),
            capacity_provider_name: provider,
            containers,
            cpu: sizes.cpu.to_string(),
            memory: sizes.memory.to_string(),
            created_at: Some(self.now),
            desired_status: "RUNNING".into(),
            enable_execute_command: self.enable_execute_command,
            group: Some(self.group.to_string()),
            last_status: "PROVISIONING".into(),
            launch_type: Some(launch_type.to_string()),
            overrides: normalized_overrides(td, self.overrides),
            platform_version: Some(self.platform.to_string()),
            platform_family: Some("Linux".into()),
            started_by: self.started_by.map(String::from),
            tags: self.tags.to_vec(),
            version: 1,
            ephemeral_storage: Some(EphemeralStorage { size_in_gib: sizes.ephemeral_storage_gib }),
            fargate_ephemeral_storage: Some(TaskEphemeralStorage { size_in_gib: sizes.ephemeral_storage_gib }),
            ..Task::default()
        };
        TaskRecord {
            task,
            subnet_id: subnet.subnet_id.clone(),
            security_groups: self.security_groups.to_vec(),
            assign_public_ip: self.assign_public_ip.as_str().into(),
            service_name: self.service_name.map(String::from),
            draining_since: None,
            container_times: Default::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// RunTask

pub async fn run_task(ctx: &Ctx, req: RunTaskRequest) -> Result<RunTaskResponse, ApiError> {
    let count = req.count.unwrap_or(1);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(ApiError::invalid_parameter(format!("count must be between 1 and {MAX_COUNT}, not {count}.")));
    }
    if let Some(token) = &req.client_token {
        model::validate_client_token(token)?;
    }
    let name = cluster_name(ctx, req.cluster.as_deref())?;
    let cluster_key = keys::cluster(&name);
    let print = fingerprint(&req, &name)?;

    // A retried call (same token, same request, within 24 h) answers with the tasks of the first one.
    if let Some(token) = &req.client_token {
        if let Some((t, _)) = load::<ClientTokenRecord>(ctx.store(), &task_keys::client_token(&name, token)).await? {
            if t.created_at + CLIENT_TOKEN_TTL_MS > now_millis() {
                return replay(ctx, &name, &t, &print).await;
            }
        }
    }

    let Some((cluster, _)) = load::<ClusterRecord>(ctx.store(), &cluster_key).await? else {
        return Err(cluster_not_found());
    };
    if cluster.status != "ACTIVE" {
        return Err(cluster_not_found());
    }

    let (td, td_tags) = resolve_task_definition(ctx, &req.task_definition).await?;
    let capacity = capacity(req.launch_type, req.capacity_provider_strategy.as_deref(), &cluster, count as usize)?;
    if !td.is_compatible_with(Compatibility::Fargate) {
        return Err(ApiError::invalid_parameter("Task definition does not support launch_type FARGATE."));
    }
    if req.placement_constraints.as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Task placement constraints are not supported for tasks using the Fargate launch type.",
        ));
    }
    if req.placement_strategy.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Task placement strategies are not supported for tasks using the Fargate launch type.",
        ));
    }
    if let Some(v) = req.volume_configurations.as_deref().and_then(|v| v.first()) {
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or_default();
        let configurable = td
            .volumes
            .iter()
            .flatten()
            .any(|tv| tv.name.as_deref() == Some(name) && tv.configured_at_launch == Some(true));
        return Err(ApiError::invalid_parameter(if configurable {
            format!("Volume '{name}': Skiff cannot provision Amazon EBS volumes (managedEBSVolume) for tasks.")
        } else {
            format!("The volume '{name}' in volumeConfigurations is not a volume of the task definition configured at launch.")
        }));
    }
    let overrides = req.overrides.clone().unwrap_or_default();
    let sizes = check_overrides(&td, &overrides)?;
    let platform = platform_version(req.platform_version.as_deref(), &td, &sizes)?;
    let group = req.group.clone().unwrap_or_else(|| format!("family:{}", td.family()));
    model::validate_group(&group)?;
    if let Some(s) = &req.started_by {
        model::validate_started_by(s)?;
    }
    if req.reference_id.as_deref().is_some_and(|r| r.chars().count() > 1024) {
        return Err(ApiError::invalid_parameter("referenceId can have at most 1024 characters."));
    }
    let mut tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    match req.propagate_tags {
        Some(PropagateTags::TaskDefinition) => {
            let mut all = td_tags;
            merge_tags(&mut all, tags);
            tags = all;
            validate_tags(&tags)?;
        }
        Some(PropagateTags::Service) => {
            return Err(ApiError::invalid_parameter(
                "propagateTags SERVICE is only valid for tasks started by a service; use TASK_DEFINITION or NONE.",
            ))
        }
        Some(PropagateTags::None) | None => {}
    }
    // ECS-managed tags carry the reserved prefix and do not count against the 50.
    if req.enable_ecs_managed_tags == Some(true) {
        tags.push(Tag::new("aws:ecs:clusterName", name.clone()));
    }
    if req.enable_execute_command == Some(true)
        && overrides.task_role_arn.as_deref().or(td.task_role_arn.as_deref()).is_none_or(str::is_empty)
    {
        return Err(ApiError::invalid_parameter(
            "The task definition must have a task role (taskRoleArn), or the overrides one, to enable execute command.",
        ));
    }
    let place = placement(ctx, req.network_configuration.as_ref()).await?;

    // The records.
    let now = now_millis();
    let launch = LaunchTemplate {
        cluster_name: &name,
        cluster_arn: &cluster.arn,
        td: &td,
        sizes: &sizes,
        platform: &platform,
        overrides: &overrides,
        security_groups: &place.security_groups,
        assign_public_ip: place.assign_public_ip,
        group: &group,
        started_by: req.started_by.as_deref(),
        tags: &tags,
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        service_name: None,
        now,
    };
    let first = rand_index(place.subnets.len());
    let records: Vec<TaskRecord> = capacity
        .into_iter()
        .enumerate()
        .map(|(i, (launch_type, provider))| {
            launch.task(ctx.scope(), &place.subnets[(first + i) % place.subnets.len()], &launch_type, provider)
        })
        .collect();

    // DeleteCluster counts a cluster's tasks and deletes it under the write side of this gate: no RunTask
    // commits in between. RunTasks share the read side, and only compare the cluster record (never write
    // it), so concurrent RunTasks on one cluster do not conflict with each other.
    let _gate = ctx.state.cluster_gate.read().await;
    for _ in 0..32 {
        // The cluster must still be active, at the revision the transaction compares.
        let rev = match load::<ClusterRecord>(ctx.store(), &cluster_key).await? {
            Some((c, rev)) if c.status == "ACTIVE" => rev,
            _ => return Err(cluster_not_found()),
        };
        let mut txn = Txn::new().when(&cluster_key, rev);
        for r in &records {
            let key = task_keys::task(&name, r.task.id());
            txn = txn.when(&key, 0).put(key, encode(r)?);
        }
        if let Some(token) = &req.client_token {
            let key = task_keys::client_token(&name, token);
            let token_rev = match load::<ClientTokenRecord>(ctx.store(), &key).await? {
                Some((t, _)) if t.created_at + CLIENT_TOKEN_TTL_MS > now_millis() => {
                    return replay(ctx, &name, &t, &print).await;
                }
                Some((_, rev)) => rev,
                None => 0,
            };
            let record = ClientTokenRecord {
                fingerprint: print.clone(),
                task_ids: records.iter().map(|r| r.task.id().to_string()).collect(),
                created_at: now,
            };
            txn = txn.when(&key, token_rev).put(key, encode(&record)?);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                ctx.state.task_wake.notify_one();
                return Ok(RunTaskResponse { tasks: records.into_iter().map(|r| r.task).collect(), failures: vec![] });
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of cluster {name}; retry the call")))
}

/// The answer to a RunTask whose clientToken was used before: the same tasks if the request is the same,
/// a ConflictException otherwise.
async fn replay(ctx: &Ctx, cluster: &str, t: &ClientTokenRecord, print: &str) -> Result<RunTaskResponse, ApiError> {
    let arns: Vec<String> = t.task_ids.iter().map(|id| task_arn(ctx, cluster, id)).collect();
    if t.fingerprint != print {
        return Err(ApiError::client(
            "ConflictException",
            format!(
                "The specified client token has already been used in a different RunTask request; it is associated with the tasks [{}]. Use a unique client token or the original request parameters.",
                arns.join(", ")
            ),
        ));
    }
    let mut out = RunTaskResponse { tasks: Vec::new(), failures: Vec::new() };
    for (id, arn) in t.task_ids.iter().zip(arns) {
        match load::<TaskRecord>(ctx.store(), &task_keys::task(cluster, id)).await? {
            Some((r, _)) => out.tasks.push(r.task),
            None => out.failures.push(Failure { arn, reason: "MISSING".into(), detail: None }),
        }
    }
    Ok(out)
}

pub(crate) fn rand_index(n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    }
    (u64::from_le_bytes(b) % n as u64) as usize
}

// ---------------------------------------------------------------------------------------------------------
// StopTask

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopTaskRequest {
    cluster: Option<String>,
    task: String,
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StopTaskResponse {
    task: Task,
}

fn task_not_found() -> ApiError {
    ApiError::invalid_parameter("The referenced task was not found")
}

pub async fn stop_task(ctx: &Ctx, req: StopTaskRequest) -> Result<StopTaskResponse, ApiError> {
    let cluster = implied_cluster(req.cluster.as_deref(), [req.task.as_str()]);
    let (name, _, _) = existing_cluster(ctx, cluster.as_deref()).await?;
    let id = task_id_in(ctx, &name, &req.task)
        .map_err(|()| ApiError::invalid_parameter("Task Identifier is invalid"))?
        .ok_or_else(task_not_found)?;
    let key = task_keys::task(&name, &id);
    for _ in 0..32 {
        let (mut record, rev) = load::<TaskRecord>(ctx.store(), &key).await?.ok_or_else(task_not_found)?;
        if record.is_stopped() || record.task.desired_status == "STOPPED" {
            record.task.tags.clear();
            return Ok(StopTaskResponse { task: record.task });
        }
        record.task.desired_status = "STOPPED".into();
        record.task.stop_code.get_or_insert_with(|| stop_code::USER_INITIATED.to_string());
        record
            .task
            .stopped_reason
            .get_or_insert_with(|| req.reason.clone().unwrap_or_else(|| DEFAULT_STOP_REASON.to_string()));
        record.task.version += 1;
        match ctx.store().txn(Txn::new().when(&key, rev).put(&key, encode(&record)?)).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                ctx.state.task_wake.notify_one();
                record.task.tags.clear();
                return Ok(StopTaskResponse { task: record.task });
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent updates of task {id}; retry the call")))
}

// ---------------------------------------------------------------------------------------------------------
// DescribeTasks

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskField {
    Tags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeTasksRequest {
    cluster: Option<String>,
    tasks: Vec<String>,
    include: Option<Vec<TaskField>>,
}

#[derive(Debug, Serialize)]
pub struct DescribeTasksResponse {
    tasks: Vec<Task>,
    failures: Vec<Failure>,
}

pub async fn describe_tasks(ctx: &Ctx, req: DescribeTasksRequest) -> Result<DescribeTasksResponse, ApiError> {
    if req.tasks.is_empty() {
        return Err(ApiError::invalid_parameter("Tasks cannot be empty."));
    }
    if req.tasks.len() > 100 {
        return Err(ApiError::invalid_parameter("Tasks cannot have more than 100 elements."));
    }
    let cluster = implied_cluster(req.cluster.as_deref(), req.tasks.iter().map(String::as_str));
    let (name, _, _) = existing_cluster(ctx, cluster.as_deref()).await?;
    let with_tags = req.include.unwrap_or_default().iter().any(|f| matches!(f, TaskField::Tags));
    let mut out = DescribeTasksResponse { tasks: Vec::new(), failures: Vec::new() };
    let mut seen = Vec::new();
    for reference in &req.tasks {
        let missing = |arn: String| Failure { arn, reason: "MISSING".into(), detail: None };
        let id = match task_id_in(ctx, &name, reference) {
            Ok(Some(id)) => id,
            _ => {
                out.failures.push(missing(reference.clone()));
                continue;
            }
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        match load::<TaskRecord>(ctx.store(), &task_keys::task(&name, &id)).await? {
            Some((mut r, _)) => {
                if !with_tags {
                    r.task.tags.clear();
                }
                out.tasks.push(r.task);
            }
            None => out.failures.push(missing(if reference.starts_with("arn:") {
                reference.clone()
            } else {
                task_arn(ctx, &name, &id)
            })),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// ListTasks

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DesiredStatus {
    Running,
    Pending,
    Stopped,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTasksRequest {
    cluster: Option<String>,
    container_instance: Option<String>,
    family: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
    started_by: Option<String>,
    service_name: Option<String>,
    desired_status: Option<DesiredStatus>,
    launch_type: Option<LaunchType>,
    daemon_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksResponse {
    task_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list_tasks(ctx: &Ctx, req: ListTasksRequest) -> Result<ListTasksResponse, ApiError> {
    let max = max_results(req.max_results)?;
    let (name, _, _) = existing_cluster(ctx, req.cluster.as_deref()).await?;
    if let Some(ci) = &req.container_instance {
        // Fargate tasks run on no container instance, and a cluster has none registered.
        return Err(ApiError::invalid_parameter(format!(
            "The referenced container instance {ci} was not found in cluster {name}."
        )));
    }
    if let Some(service) = &req.service_name {
        let service_key = format!("{}{service}", keys::services_of(&name));
        if service.is_empty()
            || service.contains('/')
            || ctx.store().get(&service_key).await.map_err(store_error)?.is_none()
        {
            return Err(ApiError::client("ServiceNotFoundException", "Service not found."));
        }
    }
    let desired = match req.desired_status.unwrap_or(DesiredStatus::Running) {
        DesiredStatus::Running => "RUNNING",
        DesiredStatus::Stopped => "STOPPED",
        // ECS never sets desiredStatus PENDING: nothing matches.
        DesiredStatus::Pending => "PENDING",
    };
    let launch_type = req.launch_type.map(|l| match l {
        LaunchType::Ec2 => "EC2",
        LaunchType::Fargate => "FARGATE",
        LaunchType::External => "EXTERNAL",
        LaunchType::ManagedInstances => "MANAGED_INSTANCES",
    });
    let mut arns: Vec<String> = load_all::<TaskRecord>(ctx.store(), &task_keys::cluster_prefix(&name))
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.task.desired_status == desired)
        .filter(|r| req.family.as_deref().is_none_or(|f| r.family() == f))
        .filter(|r| req.started_by.as_deref().is_none_or(|s| r.task.started_by.as_deref() == Some(s)))
        .filter(|r| req.service_name.as_deref().is_none_or(|s| r.service_name.as_deref() == Some(s)))
        .filter(|r| launch_type.is_none_or(|l| r.task.launch_type.as_deref() == Some(l)))
        // Skiff has no daemons: no task belongs to one.
        .filter(|_| req.daemon_name.is_none())
        .map(|r| r.task.task_arn)
        .collect();
    arns.sort();
    let (task_arns, next_token) = paginate(arns, req.next_token.as_deref(), max, false)?;
    Ok(ListTasksResponse { task_arns, next_token })
}

// ---------------------------------------------------------------------------------------------------------
// housekeeping

/// Deletes STOPPED tasks whose `stoppedAt` (or, lacking one, `createdAt`) is older than `retention_ms`, and
/// clientToken records older than their 24 hours; each delete compares the record it read. Returns how many
/// tasks it removed.
pub async fn purge_stopped(store: &dyn Store, now_ms: i64, retention_ms: i64) -> Result<usize, ApiError> {
    let mut removed = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(task_keys::TASKS, after.as_deref(), 500).await.map_err(store_error)?;
        for (key, v) in &page.items {
            after = Some(key.clone());
            let Ok(r) = serde_json::from_slice::<TaskRecord>(&v.value) else { continue };
            let ended = r.task.stopped_at.or(r.task.execution_stopped_at).or(r.task.created_at).unwrap_or(0);
            if r.is_stopped() && ended.saturating_add(retention_ms) < now_ms {
                if let TxnOutcome::Committed(_) =
                    store.txn(Txn::new().when(key, v.mod_revision).delete(key)).await.map_err(store_error)?
                {
                    removed += 1;
                }
            }
        }
        if !page.more {
            break;
        }
    }
    let tokens = task_keys::CLIENT_TOKENS;
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(tokens, after.as_deref(), 500).await.map_err(store_error)?;
        for (key, v) in &page.items {
            after = Some(key.clone());
            let Ok(t) = serde_json::from_slice::<ClientTokenRecord>(&v.value) else { continue };
            if t.created_at + CLIENT_TOKEN_TTL_MS < now_ms {
                store.txn(Txn::new().when(key, v.mod_revision).delete(key)).await.map_err(store_error)?;
            }
        }
        if !page.more {
            break;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_model::task_definition::ContainerDefinition;

    fn td(cpu: &str, memory: &str, containers: &[(&str, Option<i32>, Option<i32>)]) -> TaskDefinition {
        TaskDefinition {
            task_definition_arn: Some("arn:aws:ecs:us-east-1:123456789012:task-definition/web:1".into()),
            family: Some("web".into()),
            revision: Some(1),
            cpu: Some(cpu.into()),
            memory: Some(memory.into()),
            compatibilities: Some(vec![Compatibility::Ec2, Compatibility::Fargate]),
            container_definitions: Some(
                containers
                    .iter()
                    .map(|(n, cpu, mem)| ContainerDefinition {
                        name: Some(n.to_string()),
                        image: Some("busybox".into()),
                        cpu: *cpu,
                        memory: *mem,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn over(name: &str) -> ContainerOverride {
        ContainerOverride { name: Some(name.into()), ..Default::default() }
    }

    fn err(r: Result<TaskSizes, ApiError>) -> ApiError {
        r.expect_err("expected a refusal")
    }

    #[test]
    fn overrides_default_to_the_definition() {
        let d = td("256", "512", &[("web", None, None)]);
        let s = check_overrides(&d, &TaskOverride::default()).unwrap();
        assert_eq!(s, TaskSizes { cpu: 256, memory: 512, ephemeral_storage_gib: 20 });
        let o = TaskOverride {
            cpu: Some("1 vCPU".into()),
            memory: Some("2 GB".into()),
            ephemeral_storage: Some(EphemeralStorage { size_in_gib: 50 }),
            ..Default::default()
        };
        assert_eq!(check_overrides(&d, &o).unwrap(), TaskSizes { cpu: 1024, memory: 2048, ephemeral_storage_gib: 50 });
    }

    #[test]
    fn overrides_are_checked() {
        let d = td("512", "1024", &[("web", Some(256), Some(512)), ("side", None, None)]);
        let unknown = TaskOverride { container_overrides: Some(vec![over("nope")]), ..Default::default() };
        let e = err(check_overrides(&d, &unknown));
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("Override for container named nope"), "{}", e.message);
        let twice = TaskOverride { container_overrides: Some(vec![over("web"), over("web")]), ..Default::default() };
        assert!(err(check_overrides(&d, &twice)).message.contains("more than once"));
        let nameless =
            TaskOverride { container_overrides: Some(vec![ContainerOverride::default()]), ..Default::default() };
        assert_eq!(err(check_overrides(&d, &nameless)).code, "InvalidParameterException");
        let matrix = TaskOverride { cpu: Some("256".into()), memory: Some("4096".into()), ..Default::default() };
        assert!(err(check_overrides(&d, &matrix)).message.contains("No Fargate configuration exists"));
        let garbage = TaskOverride { cpu: Some("lots".into()), ..Default::default() };
        assert_eq!(err(check_overrides(&d, &garbage)).message, "Invalid 'cpu' setting for task.");
        for gib in [20, 201] {
            let o =
                TaskOverride { ephemeral_storage: Some(EphemeralStorage { size_in_gib: gib }), ..Default::default() };
            assert!(err(check_overrides(&d, &o)).message.contains("between 21 and 200"), "{gib}");
        }
        let big = TaskOverride {
            container_overrides: Some(vec![ContainerOverride { memory: Some(2048), ..over("web") }]),
            ..Default::default()
        };
        assert!(err(check_overrides(&d, &big)).message.contains("exceeds the task's memory"));
        let cpu = TaskOverride {
            container_overrides: Some(vec![ContainerOverride { cpu: Some(400), ..over("side") }]),
            ..Default::default()
        };
        assert!(err(check_overrides(&d, &cpu)).message.contains("sum of the containers' cpu"));
        let soft = TaskOverride {
            container_overrides: Some(vec![ContainerOverride { memory_reservation: Some(600), ..over("web") }]),
            ..Default::default()
        };
        assert!(err(check_overrides(&d, &soft)).message.contains("memoryReservation"));
        let long = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                command: Some(vec!["x".repeat(MAX_OVERRIDES_CHARS)]),
                ..over("web")
            }]),
            ..Default::default()
        };
        assert!(err(check_overrides(&d, &long)).message.contains("at most 8192"));
    }

    #[test]
    fn echoed_overrides_name_every_container() {
        let d = td("256", "512", &[("web", None, None), ("side", None, None)]);
        let o = TaskOverride {
            container_overrides: Some(vec![ContainerOverride { command: Some(vec!["true".into()]), ..over("side") }]),
            ..Default::default()
        };
        let n = normalized_overrides(&d, &o);
        let names: Vec<_> = n.container_overrides.as_ref().unwrap().iter().map(|c| c.name.clone().unwrap()).collect();
        assert_eq!(names, ["web", "side"]);
        assert_eq!(n.container_overrides.as_ref().unwrap()[1].command, Some(vec!["true".to_string()]));
        assert_eq!(n.inference_accelerator_overrides, Some(vec![]));
        let json = serde_json::to_value(normalized_overrides(&d, &TaskOverride::default())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"containerOverrides": [{"name": "web"}, {"name": "side"}], "inferenceAcceleratorOverrides": []})
        );
    }

    #[test]
    fn platform_versions() {
        let d = td("256", "512", &[("web", None, None)]);
        let s = check_overrides(&d, &TaskOverride::default()).unwrap();
        assert_eq!(platform_version(None, &d, &s).unwrap(), "1.4.0");
        assert_eq!(platform_version(Some("LATEST"), &d, &s).unwrap(), "1.4.0");
        assert_eq!(platform_version(Some("1.3.0"), &d, &s).unwrap(), "1.3.0");
        assert_eq!(platform_version(Some("9.9.9"), &d, &s).unwrap_err().code, "PlatformUnknownException");
        let bigger = TaskSizes { ephemeral_storage_gib: 40, ..s.clone() };
        assert_eq!(
            platform_version(Some("1.3.0"), &d, &bigger).unwrap_err().code,
            "PlatformTaskDefinitionIncompatibilityException"
        );
    }

    #[test]
    fn capacity_provider_spread() {
        let item = |p: &str, w: i32, b: i32| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight: Some(w),
            base: Some(b),
        };
        let s = [item("FARGATE", 1, 2), item("FARGATE_SPOT", 3, 0)];
        let got = spread_over_providers(&s, 6);
        assert_eq!(&got[..2], ["FARGATE", "FARGATE"]);
        assert_eq!(got.iter().filter(|p| *p == "FARGATE_SPOT").count(), 3);
        let zero = [item("FARGATE", 0, 0), item("FARGATE_SPOT", 0, 0)];
        let got = spread_over_providers(&zero, 4);
        assert_eq!(got.iter().filter(|p| *p == "FARGATE").count(), 2);
        assert_eq!(spread_over_providers(&[item("FARGATE_SPOT", 1, 0)], 2), ["FARGATE_SPOT", "FARGATE_SPOT"]);
    }

    #[tokio::test]
    async fn purge_removes_only_long_stopped_tasks() {
        const RETENTION_MS: i64 = 3_600_000;
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let put = |id: &str, status: &str, stopped_at: Option<i64>| {
            let mut r = TaskRecord::default();
            r.task.task_arn = format!("arn:aws:ecs:us-east-1:123456789012:task/c/{id}");
            r.task.last_status = status.into();
            r.task.created_at = Some(1_000);
            r.task.stopped_at = stopped_at;
            (task_keys::task("c", id), serde_json::to_vec(&r).unwrap())
        };
        let now = 10 * RETENTION_MS;
        for (key, value) in [
            put("old", "STOPPED", Some(now - RETENTION_MS - 1)),
            put("recent", "STOPPED", Some(now - 1_000)),
            put("running", "RUNNING", None),
            put("nostamp", "STOPPED", None),
        ] {
            store.txn(Txn::new().put(key, value)).await.unwrap();
        }
        assert_eq!(purge_stopped(&store, now, RETENTION_MS).await.unwrap(), 2);
        let left: Vec<String> =
            store.scan(task_keys::TASKS, None, 10).await.unwrap().items.into_iter().map(|(k, _)| k).collect();
        assert_eq!(left, [task_keys::task("c", "recent"), task_keys::task("c", "running")]);
    }
}
