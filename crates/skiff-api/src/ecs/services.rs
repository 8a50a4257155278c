//! CreateService, UpdateService, DeleteService, DescribeServices, ListServices, ListServiceDeployments,
//! DescribeServiceDeployments.
//!
//! A service is a `ServiceRecord` at `ecs/services/{cluster}/{name}`. The handlers write what the user asks
//! for — a new PRIMARY deployment, a desired count, status DRAINING — and wake the service controller
//! (`crate::services`), which starts and stops the tasks. Counts are rendered from the task records.

use super::clusters::cluster_name;
use super::tasks::{
    capacity, check_overrides, cluster_not_found, placement, platform_version, resolve_task_definition,
};
use super::{max_results, Failure};
use crate::context::{now_millis, Ctx};
use crate::records::{encode, load, load_all, paginate, store_error};
use crate::services::{history_entry, new_deployment_id, render};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use skiff_model::cluster::{CapacityProviderStrategyItem, ClusterRecord};
use skiff_model::service::{
    deployment_digits, is_service_name, keys, Deployment, DeploymentConfiguration, DeploymentController, LoadBalancer,
    Service, ServiceDeploymentRecord, ServiceRecord, MAX_LOAD_BALANCERS,
};
use skiff_model::tag::{validate_tags, Tag};
use skiff_model::task::{
    keys as task_keys, AwsVpcConfiguration, LaunchType, NetworkConfiguration, PlacementConstraint, PlacementStrategy,
    PropagateTags, TaskOverride, TaskRecord,
};
use skiff_model::task_definition::Compatibility;
use skiff_proto::arn::Arn;
use skiff_proto::timestamp::{json_opt, EpochMillis};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};

// ---------------------------------------------------------------------------------------------------------
// errors and names

fn service_not_found() -> ApiError {
    ApiError::client("ServiceNotFoundException", "Service not found.")
}

fn service_not_active() -> ApiError {
    ApiError::client("ServiceNotActiveException", "Service was not ACTIVE.")
}

fn service_arn(ctx: &Ctx, cluster: &str, name: &str) -> String {
    ctx.scope().ecs(&format!("service/{cluster}/{name}"))
}

/// The cluster and service a reference names: `NAME`, `arn:…:service/CLUSTER/NAME` or the old
/// `arn:…:service/NAME`. `Ok(None)` when the reference cannot name a service of this cluster.
fn service_in(ctx: &Ctx, cluster: &str, reference: &str) -> Result<Option<String>, ApiError> {
    if !reference.starts_with("arn:") {
        return Ok(is_service_name(reference).then(|| reference.to_string()));
    }
    let arn = Arn::parse(reference)
        .ok_or_else(|| ApiError::invalid_parameter(format!("'{reference}' is not a valid service ARN.")))?;
    let (kind, rest) = arn.resource_type();
    if arn.service != "ecs" || kind != "service" {
        return Err(ApiError::invalid_parameter(format!("'{reference}' is not a service ARN.")));
    }
    if arn.region != ctx.scope().region || arn.account != ctx.scope().account {
        return Ok(None);
    }
    let name = match rest.split_once('/') {
        Some((c, _)) if c != cluster => return Ok(None),
        Some((_, n)) => n,
        None => rest,
    };
    Ok(is_service_name(name).then(|| name.to_string()))
}

/// The cluster a call means: `cluster`, else the cluster a long service ARN names, else `default`.
fn implied_cluster(ctx: &Ctx, cluster: Option<&str>, service: Option<&str>) -> Result<String, ApiError> {
    if cluster.is_none() {
        if let Some(arn) = service.filter(|s| s.starts_with("arn:")).and_then(Arn::parse) {
            if let ("service", rest) = arn.resource_type() {
                if let Some((c, _)) = rest.split_once('/') {
                    return cluster_name(ctx, Some(c));
                }
            }
        }
    }
    cluster_name(ctx, cluster)
}

async fn active_cluster(ctx: &Ctx, name: &str) -> Result<(ClusterRecord, i64), ApiError> {
    match load::<ClusterRecord>(ctx.store(), &super::keys::cluster(name)).await? {
        Some((c, rev)) if c.status == "ACTIVE" => Ok((c, rev)),
        _ => Err(cluster_not_found()),
    }
}

/// Fails with ClusterNotFoundException unless the cluster has a record (of any status).
async fn require_cluster(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    match load::<ClusterRecord>(ctx.store(), &super::keys::cluster(name)).await? {
        Some(_) => Ok(()),
        None => Err(cluster_not_found()),
    }
}

/// The service's record (any status) and revision.
async fn existing(ctx: &Ctx, cluster: &str, reference: &str) -> Result<(String, ServiceRecord, i64), ApiError> {
    require_cluster(ctx, cluster).await?;
    let name = service_in(ctx, cluster, reference)?.ok_or_else(service_not_found)?;
    let key = keys::service(cluster, &name);
    let (r, rev) = load::<ServiceRecord>(ctx.store(), &key).await?.ok_or_else(service_not_found)?;
    Ok((key, r, rev))
}

/// The task records of a service.
async fn tasks_of(ctx: &Ctx, cluster: &str, service: &str) -> Result<Vec<TaskRecord>, ApiError> {
    Ok(load_all::<TaskRecord>(ctx.store(), &task_keys::cluster_prefix(cluster))
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| t.service_name.as_deref() == Some(service))
        .collect())
}

async fn described(ctx: &Ctx, cluster: &str, r: &ServiceRecord, with_tags: bool) -> Result<Service, ApiError> {
    let tasks = tasks_of(ctx, cluster, r.name()).await?;
    let mut s = render(r, &tasks.iter().collect::<Vec<_>>());
    if !with_tags {
        s.tags.clear();
    }
    Ok(s)
}

/// Writes `next` over the service record at `key` if it is still at `rev` and wakes the service controller:
/// `Some(the answer)` once written, `None` when someone else wrote first (read again and retry).
async fn put_service(
    ctx: &Ctx,
    cluster: &str,
    key: &str,
    rev: i64,
    next: &ServiceRecord,
) -> Result<Option<ServiceResponse>, ApiError> {
    match ctx.store().txn(Txn::new().when(key, rev).put(key, encode(next)?)).await.map_err(store_error)? {
        TxnOutcome::Committed(_) => {
            ctx.state.service_wake.notify_one();
            Ok(Some(ServiceResponse { service: described(ctx, cluster, next, false).await? }))
        }
        TxnOutcome::Conflict => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------------------
// shared validation

/// What a deployment runs: everything CreateService and UpdateService validate into a [`Deployment`].
struct LaunchRequest<'a> {
    task_definition: &'a str,
    launch_type: Option<LaunchType>,
    capacity_provider_strategy: Option<&'a [CapacityProviderStrategyItem]>,
    platform_version: Option<&'a str>,
    network_configuration: Option<&'a NetworkConfiguration>,
}

/// Validates a deployment's configuration against the cluster, the task definition and the VPC records,
/// and returns it as a (not yet identified) deployment with the service-level launch echo
/// (`launchType`, `capacityProviderStrategy`).
async fn deployment_for(ctx: &Ctx, cluster: &ClusterRecord, req: &LaunchRequest<'_>) -> Result<Deployment, ApiError> {
    let (td, _) = resolve_task_definition(ctx, req.task_definition).await?;
    capacity(req.launch_type, req.capacity_provider_strategy, cluster, 0)?;
    if !td.is_compatible_with(Compatibility::Fargate) {
        return Err(ApiError::invalid_parameter("Task definition does not support launch_type FARGATE."));
    }
    let sizes = check_overrides(&td, &TaskOverride::default())?;
    let platform = platform_version(req.platform_version, &td, &sizes)?;
    let place = placement(ctx, req.network_configuration).await?;
    let strategy = match req.capacity_provider_strategy.filter(|s| !s.is_empty()) {
        Some(s) => Some(s.to_vec()),
        None if req.launch_type.is_none() && !cluster.default_capacity_provider_strategy.is_empty() => {
            Some(cluster.default_capacity_provider_strategy.clone())
        }
        None => None,
    };
    let mut subnets: Vec<String> = Vec::new();
    for s in place.subnets {
        if !subnets.contains(&s.subnet_id) {
            subnets.push(s.subnet_id);
        }
    }
    Ok(Deployment {
        task_definition: td.arn().to_string(),
        launch_type: strategy.is_none().then(|| "FARGATE".to_string()),
        capacity_provider_strategy: strategy,
        platform_version: Some(platform),
        platform_family: Some("Linux".into()),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets,
                security_groups: Some(place.security_groups),
                assign_public_ip: Some(place.assign_public_ip),
            }),
        }),
        ..Deployment::default()
    })
}

fn check_deployment_configuration(c: &DeploymentConfiguration) -> Result<(), ApiError> {
    if let Some(m) = c.minimum_healthy_percent {
        if !(0..=100).contains(&m) {
            return Err(ApiError::invalid_parameter(format!(
                "minimumHealthyPercent must be between 0 and 100, not {m}."
            )));
        }
    }
    if let Some(m) = c.maximum_percent {
        if m < 100 {
            return Err(ApiError::invalid_parameter(format!(
                "maximumPercent must be at least 100 for a service using the REPLICA scheduling strategy, not {m}."
            )));
        }
    }
    if let Some(s) = c.strategy.as_deref().filter(|s| *s != "ROLLING") {
        return Err(ApiError::invalid_parameter(format!(
            "Skiff runs rolling deployments only: deploymentConfiguration.strategy {s} is not supported; use ROLLING."
        )));
    }
    if c.alarms.as_ref().is_some_and(|a| a.enable) {
        return Err(ApiError::invalid_parameter(
            "Deployment alarms need CloudWatch alarms, which Skiff does not have: set alarms.enable to false.",
        ));
    }
    if c.lifecycle_hooks.as_ref().is_some_and(|h| !h.is_empty())
        || c.linear_configuration.is_some()
        || c.canary_configuration.is_some()
    {
        return Err(ApiError::invalid_parameter(
            "lifecycleHooks, linearConfiguration and canaryConfiguration belong to blue/green, linear and canary deployments, which Skiff does not run.",
        ));
    }
    Ok(())
}

/// `ServiceConnectConfiguration`, typed as far as Skiff reads it: Skiff accepts only `enabled: false`, so
/// the other members are checked for their JSON type and kept as they came.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceConnectConfiguration {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    services: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_log_configuration: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_configurations: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
}

/// Refuses what Skiff cannot do for a service yet (service discovery, Service Connect, EBS and VPC Lattice
/// volumes) and what Fargate refuses (placement), naming the parameter.
fn refuse_unsupported(
    service_registries: Option<&[serde_json::Value]>,
    service_connect: Option<&ServiceConnectConfiguration>,
    volumes: Option<&[serde_json::Value]>,
    lattice: Option<&[serde_json::Value]>,
    constraints: Option<&[PlacementConstraint]>,
    strategy: Option<&[PlacementStrategy]>,
) -> Result<(), ApiError> {
    let some = |v: Option<&[serde_json::Value]>| v.is_some_and(|v| !v.is_empty());
    if some(service_registries) {
        return Err(ApiError::invalid_parameter(
            "serviceRegistries: Skiff has no Cloud Map service discovery; create the service without service registries.",
        ));
    }
    if service_connect.is_some_and(|c| c.enabled) {
        return Err(ApiError::invalid_parameter(
            "serviceConnectConfiguration: Skiff has no Service Connect; set enabled to false.",
        ));
    }
    if some(volumes) {
        return Err(ApiError::invalid_parameter(
            "volumeConfigurations: Skiff cannot provision Amazon EBS volumes (managedEBSVolume) for tasks.",
        ));
    }
    if some(lattice) {
        return Err(ApiError::invalid_parameter("vpcLatticeConfigurations: Skiff has no VPC Lattice."));
    }
    if constraints.is_some_and(|c| !c.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Task placement constraints are not supported for services using the Fargate launch type.",
        ));
    }
    if strategy.is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "Task placement strategies are not supported for services using the Fargate launch type.",
        ));
    }
    Ok(())
}

/// Checks a service's `loadBalancers` as ECS does for awsvpc tasks — each names an existing target group of
/// target type ip that a load balancer forwards to, and a container of the task definition with that
/// container port — and returns them as the service echoes them.
async fn check_load_balancers(
    ctx: &Ctx,
    task_definition: &str,
    list: &[LoadBalancer],
) -> Result<Vec<LoadBalancer>, ApiError> {
    if list.len() > MAX_LOAD_BALANCERS {
        return Err(ApiError::invalid_parameter(format!(
            "A service can have at most {MAX_LOAD_BALANCERS} load balancers (target groups), not {}.",
            list.len()
        )));
    }
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let (td, _) = resolve_task_definition(ctx, task_definition).await?;
    let (listeners, rules) = crate::elbv2::all_listeners_and_rules(ctx).await?;
    let mut out: Vec<LoadBalancer> = Vec::new();
    for lb in list {
        let Some(arn) = lb.target_group_arn.as_deref() else {
            return Err(ApiError::invalid_parameter(if lb.load_balancer_name.is_some() {
                "Classic Load Balancers (loadBalancerName) are not supported: name a targetGroupArn."
            } else {
                "targetGroupArn is required for a load balancer of a service."
            }));
        };
        let (tg, _) = crate::elbv2::target_group(ctx, arn).await.map_err(|_| {
            ApiError::invalid_parameter(format!("The target group with targetGroupArn {arn} does not exist."))
        })?;
        if tg.target_type != "ip" {
            return Err(ApiError::invalid_parameter(format!(
                "The provided target group {arn} has target type {}, which is incompatible with the awsvpc network mode specified in the task definition.",
                tg.target_type
            )));
        }
        if crate::elbv2::load_balancers_of(arn, &listeners, &rules).is_empty() {
            return Err(ApiError::invalid_parameter(format!(
                "The target group with targetGroupArn {arn} does not have an associated load balancer."
            )));
        }
        let (Some(name), Some(port)) = (lb.container_name.as_deref(), lb.container_port) else {
            return Err(ApiError::invalid_parameter(
                "containerName and containerPort are required for a load balancer of a service.",
            ));
        };
        let Some(container) = td.container(name) else {
            return Err(ApiError::invalid_parameter(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        if !container.port_mappings.iter().flatten().any(|m| m.container_port == Some(port)) {
            return Err(ApiError::invalid_parameter(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
        let echo = LoadBalancer {
            target_group_arn: Some(arn.to_string()),
            load_balancer_name: None,
            container_name: Some(name.to_string()),
            container_port: Some(port),
        };
        if out.contains(&echo) {
            return Err(ApiError::invalid_parameter(format!(
                "The target group {arn} is given twice for container {name} port {port}."
            )));
        }
        out.push(echo);
    }
    Ok(out)
}

fn check_grace_period(g: Option<i32>) -> Result<(), ApiError> {
    match g {
        Some(g) if g < 0 => {
            Err(ApiError::invalid_parameter(format!("healthCheckGracePeriodSeconds must be 0 or more, not {g}.")))
        }
        _ => Ok(()),
    }
}

fn check_rebalancing(v: Option<&str>) -> Result<(), ApiError> {
    match v {
        None | Some("ENABLED") | Some("DISABLED") => Ok(()),
        Some(v) => Err(ApiError::invalid_parameter(format!(
            "availabilityZoneRebalancing must be ENABLED or DISABLED, not '{v}'."
        ))),
    }
}

// ---------------------------------------------------------------------------------------------------------
// CreateService

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateServiceRequest {
    cluster: Option<String>,
    service_name: String,
    task_definition: Option<String>,
    availability_zone_rebalancing: Option<String>,
    load_balancers: Option<Vec<LoadBalancer>>,
    service_registries: Option<Vec<serde_json::Value>>,
    desired_count: Option<i32>,
    client_token: Option<String>,
    launch_type: Option<LaunchType>,
    capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    platform_version: Option<String>,
    role: Option<String>,
    deployment_configuration: Option<DeploymentConfiguration>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    placement_strategy: Option<Vec<PlacementStrategy>>,
    network_configuration: Option<NetworkConfiguration>,
    health_check_grace_period_seconds: Option<i32>,
    scheduling_strategy: Option<String>,
    deployment_controller: Option<DeploymentController>,
    tags: Option<Vec<Tag>>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    propagate_tags: Option<PropagateTags>,
    enable_execute_command: Option<bool>,
    service_connect_configuration: Option<ServiceConnectConfiguration>,
    volume_configurations: Option<Vec<serde_json::Value>>,
    vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Serialize)]
pub struct ServiceResponse {
    service: Service,
}

fn fingerprint(req: &CreateServiceRequest, cluster: &str) -> Result<String, ApiError> {
    let mut canonical = req.clone();
    canonical.client_token = None;
    canonical.cluster = Some(cluster.to_string());
    let digest = Sha256::digest(encode(&canonical)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

pub async fn create_service(ctx: &Ctx, req: CreateServiceRequest) -> Result<ServiceResponse, ApiError> {
    let cluster = cluster_name(ctx, req.cluster.as_deref())?;
    if !is_service_name(&req.service_name) {
        return Err(ApiError::invalid_parameter(
            "Invalid service name: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ));
    }
    if let Some(t) = &req.client_token {
        if t.is_empty() || t.chars().count() > 36 {
            return Err(ApiError::invalid_parameter("clientToken can have 1 to 36 characters."));
        }
    }
    let print = fingerprint(&req, &cluster)?;
    let key = keys::service(&cluster, &req.service_name);
    let (cluster_record, _) = active_cluster(ctx, &cluster).await?;
    match req.scheduling_strategy.as_deref() {
        None | Some("REPLICA") => {}
        Some("DAEMON") => {
            return Err(ApiError::invalid_parameter(
                "The DAEMON scheduling strategy is not supported for services using the Fargate launch type.",
            ))
        }
        Some(s) => {
            return Err(ApiError::invalid_parameter(format!(
                "schedulingStrategy must be REPLICA or DAEMON, not '{s}'."
            )))
        }
    }
    if let Some(c) = req.deployment_controller.as_ref().filter(|c| c.r#type != "ECS") {
        return Err(ApiError::invalid_parameter(format!(
            "Skiff supports the ECS deployment controller only, not {}.",
            c.r#type
        )));
    }
    // Every Skiff service is awsvpc (Fargate), so it uses ECS's service-linked role: ECS refuses another.
    if req.role.as_deref().is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::invalid_parameter(
            "You cannot specify an IAM role for services that require a service linked role.",
        ));
    }
    let Some(task_definition) = req.task_definition.as_deref() else {
        return Err(ApiError::invalid_parameter(
            "A task definition is required for a service using the ECS deployment controller.",
        ));
    };
    let Some(desired) = req.desired_count else {
        return Err(ApiError::invalid_parameter(
            "desiredCount is required for a service using the REPLICA scheduling strategy.",
        ));
    };
    if desired < 0 {
        return Err(ApiError::invalid_parameter(format!("desiredCount must be 0 or more, not {desired}.")));
    }
    refuse_unsupported(
        req.service_registries.as_deref(),
        req.service_connect_configuration.as_ref(),
        req.volume_configurations.as_deref(),
        req.vpc_lattice_configurations.as_deref(),
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
    )?;
    check_grace_period(req.health_check_grace_period_seconds)?;
    check_rebalancing(req.availability_zone_rebalancing.as_deref())?;
    let mut config = req.deployment_configuration.clone().unwrap_or_default();
    check_deployment_configuration(&config)?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;

    // A service of that name that is not INACTIVE: the same request is answered with it, another refused.
    if let Some((r, _)) = load::<ServiceRecord>(ctx.store(), &key).await? {
        if r.service.status != "INACTIVE" {
            if r.fingerprint == print && r.service.status == "ACTIVE" {
                return Ok(ServiceResponse { service: described(ctx, &cluster, &r, false).await? });
            }
            if r.service.status == "DRAINING" {
                return Err(ApiError::invalid_parameter(
                    "Unable to Start a service that is still Draining. Wait until it is INACTIVE, then create it again.",
                ));
            }
            return Err(ApiError::invalid_parameter("Creation of service was not idempotent."));
        }
    }

    let launch = LaunchRequest {
        task_definition,
        launch_type: req.launch_type,
        capacity_provider_strategy: req.capacity_provider_strategy.as_deref(),
        platform_version: req.platform_version.as_deref(),
        network_configuration: req.network_configuration.as_ref(),
    };
    let mut deployment = deployment_for(ctx, &cluster_record, &launch).await?;
    let load_balancers =
        check_load_balancers(ctx, &deployment.task_definition, req.load_balancers.as_deref().unwrap_or_default())
            .await?;
    if req.enable_execute_command == Some(true) {
        let (td, _) = resolve_task_definition(ctx, task_definition).await?;
        if td.task_role_arn.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::invalid_parameter(
                "The task definition must have a task role (taskRoleArn) to enable execute command.",
            ));
        }
    }
    let now = now_millis();
    deployment.id = new_deployment_id();
    deployment.status = "PRIMARY".into();
    deployment.desired_count = desired;
    deployment.created_at = Some(now);
    deployment.updated_at = Some(now);
    deployment.rollout_state = Some("IN_PROGRESS".into());
    deployment.rollout_state_reason = Some(format!("ECS deployment {} in progress.", deployment.id));
    config.deployment_circuit_breaker.get_or_insert_with(Default::default);
    config.maximum_percent.get_or_insert(skiff_model::service::DEFAULT_MAXIMUM_PERCENT);
    config.minimum_healthy_percent.get_or_insert(skiff_model::service::DEFAULT_MINIMUM_HEALTHY_PERCENT);
    config.strategy.get_or_insert_with(|| "ROLLING".into());
    let service = Service {
        service_arn: service_arn(ctx, &cluster, &req.service_name),
        service_name: req.service_name.clone(),
        cluster_arn: cluster_record.arn.clone(),
        status: "ACTIVE".into(),
        desired_count: desired,
        launch_type: deployment.launch_type.clone(),
        capacity_provider_strategy: deployment.capacity_provider_strategy.clone(),
        platform_version: Some(req.platform_version.clone().unwrap_or_else(|| "LATEST".into())),
        platform_family: Some("Linux".into()),
        task_definition: deployment.task_definition.clone(),
        load_balancers,
        deployment_configuration: config.clone(),
        deployments: vec![deployment.clone()],
        created_at: Some(now),
        current_service_deployment: Some(service_deployment_arn(ctx, &cluster, &req.service_name, &deployment.id)),
        network_configuration: deployment.network_configuration.clone(),
        health_check_grace_period_seconds: Some(req.health_check_grace_period_seconds.unwrap_or(0)),
        scheduling_strategy: "REPLICA".into(),
        deployment_controller: DeploymentController { r#type: "ECS".into() },
        tags,
        created_by: Some(ctx.caller.arn.clone()),
        enable_ecs_managed_tags: req.enable_ecs_managed_tags.unwrap_or(false),
        propagate_tags: Some(req.propagate_tags.unwrap_or(PropagateTags::None)),
        enable_execute_command: req.enable_execute_command.unwrap_or(false),
        availability_zone_rebalancing: Some(
            req.availability_zone_rebalancing.clone().unwrap_or_else(|| "ENABLED".into()),
        ),
        ..Service::default()
    };
    let mut record = ServiceRecord {
        service,
        fingerprint: print,
        history: vec![history_entry(&deployment, Vec::new(), &config, now)],
        ..ServiceRecord::default()
    };

    // Like RunTask, under the read side of the cluster gate and comparing the cluster record: a concurrent
    // DeleteCluster never misses the new service.
    let _gate = ctx.state.cluster_gate.read().await;
    let cluster_key = super::keys::cluster(&cluster);
    for _ in 0..32 {
        let (_, cluster_rev) = active_cluster(ctx, &cluster).await?;
        let service_rev = match load::<ServiceRecord>(ctx.store(), &key).await? {
            Some((r, rev)) if r.service.status == "INACTIVE" => rev,
            Some((r, _)) if r.fingerprint == record.fingerprint && r.service.status == "ACTIVE" => {
                return Ok(ServiceResponse { service: described(ctx, &cluster, &r, false).await? });
            }
            Some(_) => return Err(ApiError::invalid_parameter("Creation of service was not idempotent.")),
            None => 0,
        };
        let txn = Txn::new().when(&cluster_key, cluster_rev).when(&key, service_rev).put(&key, encode(&record)?);
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                ctx.state.service_wake.notify_one();
                record.service.tags.clear();
                return Ok(ServiceResponse { service: render(&record, &[]) });
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of cluster {cluster}; retry the call")))
}

// ---------------------------------------------------------------------------------------------------------
// UpdateService

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateServiceRequest {
    cluster: Option<String>,
    service: String,
    desired_count: Option<i32>,
    task_definition: Option<String>,
    capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    deployment_configuration: Option<DeploymentConfiguration>,
    availability_zone_rebalancing: Option<String>,
    network_configuration: Option<NetworkConfiguration>,
    placement_constraints: Option<Vec<PlacementConstraint>>,
    placement_strategy: Option<Vec<PlacementStrategy>>,
    platform_version: Option<String>,
    force_new_deployment: Option<bool>,
    health_check_grace_period_seconds: Option<i32>,
    deployment_controller: Option<DeploymentController>,
    enable_execute_command: Option<bool>,
    #[serde(rename = "enableECSManagedTags")]
    enable_ecs_managed_tags: Option<bool>,
    load_balancers: Option<Vec<LoadBalancer>>,
    propagate_tags: Option<PropagateTags>,
    service_registries: Option<Vec<serde_json::Value>>,
    service_connect_configuration: Option<ServiceConnectConfiguration>,
    volume_configurations: Option<Vec<serde_json::Value>>,
    vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
}

pub async fn update_service(ctx: &Ctx, req: UpdateServiceRequest) -> Result<ServiceResponse, ApiError> {
    let cluster = implied_cluster(ctx, req.cluster.as_deref(), Some(&req.service))?;
    if let Some(d) = req.desired_count.filter(|d| *d < 0) {
        return Err(ApiError::invalid_parameter(format!("desiredCount must be 0 or more, not {d}.")));
    }
    refuse_unsupported(
        req.service_registries.as_deref(),
        req.service_connect_configuration.as_ref(),
        req.volume_configurations.as_deref(),
        req.vpc_lattice_configurations.as_deref(),
        req.placement_constraints.as_deref(),
        req.placement_strategy.as_deref(),
    )?;
    // Every Skiff service uses the ECS controller: naming it again changes nothing, another is refused.
    if let Some(c) = req.deployment_controller.as_ref().filter(|c| c.r#type != "ECS") {
        return Err(ApiError::invalid_parameter(format!(
            "Skiff supports the ECS deployment controller only, not {}.",
            c.r#type
        )));
    }
    check_grace_period(req.health_check_grace_period_seconds)?;
    check_rebalancing(req.availability_zone_rebalancing.as_deref())?;
    let (key, mut record, mut rev) = existing(ctx, &cluster, &req.service).await?;
    let (cluster_record, _) = active_cluster(ctx, &cluster).await?;
    for attempt in 0..32 {
        if attempt > 0 {
            let (_, r, v) = existing(ctx, &cluster, &req.service).await?;
            (record, rev) = (r, v);
        }
        if record.service.status != "ACTIVE" {
            return Err(service_not_active());
        }
        let now = now_millis();
        let mut next = record.clone();
        let s = &mut next.service;
        let primary = s.deployments.first().cloned().unwrap_or_default();

        // What the new configuration would be; a new deployment when it differs or is forced.
        let current_strategy = primary.capacity_provider_strategy.clone();
        let strategy = req.capacity_provider_strategy.clone().or(current_strategy);
        let launch_type = if req.capacity_provider_strategy.is_some() {
            None
        } else {
            primary.launch_type.as_deref().map(|_| LaunchType::Fargate)
        };
        let network = req.network_configuration.clone().or(primary.network_configuration.clone());
        let platform = req.platform_version.clone().or(s.platform_version.clone());
        let td = req.task_definition.clone().unwrap_or_else(|| primary.task_definition.clone());
        let launch = LaunchRequest {
            task_definition: &td,
            launch_type,
            capacity_provider_strategy: strategy.as_deref(),
            platform_version: platform.as_deref(),
            network_configuration: network.as_ref(),
        };
        let candidate = deployment_for(ctx, &cluster_record, &launch).await?;
        let wanted = req.load_balancers.clone().unwrap_or_else(|| s.load_balancers.clone());
        let load_balancers = check_load_balancers(ctx, &candidate.task_definition, &wanted).await?;
        let balancers_changed = load_balancers != s.load_balancers;
        s.load_balancers = load_balancers;
        let changed = balancers_changed
            || candidate.task_definition != primary.task_definition
            || candidate.network_configuration != primary.network_configuration
            || candidate.capacity_provider_strategy != primary.capacity_provider_strategy
            || candidate.platform_version != primary.platform_version;

        if let Some(c) = &req.deployment_configuration {
            let mut merged = s.deployment_configuration.clone();
            if c.deployment_circuit_breaker.is_some() {
                merged.deployment_circuit_breaker = c.deployment_circuit_breaker;
            }
            if c.maximum_percent.is_some() {
                merged.maximum_percent = c.maximum_percent;
            }
            if c.minimum_healthy_percent.is_some() {
                merged.minimum_healthy_percent = c.minimum_healthy_percent;
            }
            if c.alarms.is_some() {
                merged.alarms = c.alarms.clone();
            }
            if c.strategy.is_some() {
                merged.strategy = c.strategy.clone();
            }
            if c.bake_time_in_minutes.is_some() {
                merged.bake_time_in_minutes = c.bake_time_in_minutes;
            }
            merged.lifecycle_hooks = c.lifecycle_hooks.clone();
            merged.linear_configuration = c.linear_configuration.clone();
            merged.canary_configuration = c.canary_configuration.clone();
            check_deployment_configuration(&merged)?;
            s.deployment_configuration = merged;
        }
        if let Some(d) = req.desired_count {
            s.desired_count = d;
        }
        if let Some(g) = req.health_check_grace_period_seconds {
            s.health_check_grace_period_seconds = Some(g);
        }
        if let Some(e) = req.enable_execute_command {
            s.enable_execute_command = e;
        }
        if let Some(e) = req.enable_ecs_managed_tags {
            s.enable_ecs_managed_tags = e;
        }
        if let Some(p) = req.propagate_tags {
            s.propagate_tags = Some(p);
        }
        if let Some(a) = &req.availability_zone_rebalancing {
            s.availability_zone_rebalancing = Some(a.clone());
        }
        if req.platform_version.is_some() {
            s.platform_version = req.platform_version.clone();
        }
        if s.enable_execute_command {
            let (td, _) = resolve_task_definition(ctx, &candidate.task_definition).await?;
            if td.task_role_arn.as_deref().is_none_or(str::is_empty) {
                return Err(ApiError::invalid_parameter(
                    "The task definition must have a task role (taskRoleArn) to enable execute command.",
                ));
            }
        }
        if changed || req.force_new_deployment == Some(true) {
            let mut d = candidate;
            d.id = new_deployment_id();
            d.status = "PRIMARY".into();
            d.desired_count = s.desired_count;
            d.created_at = Some(now);
            d.updated_at = Some(now);
            d.rollout_state = Some("IN_PROGRESS".into());
            d.rollout_state_reason = Some(format!("ECS deployment {} in progress.", d.id));
            s.task_definition = d.task_definition.clone();
            s.launch_type = d.launch_type.clone();
            s.capacity_provider_strategy = d.capacity_provider_strategy.clone();
            s.network_configuration = d.network_configuration.clone();
            let tasks = tasks_of(ctx, &cluster, &s.service_name).await?;
            let mut sources = Vec::new();
            for old in &mut s.deployments {
                old.status = "ACTIVE".into();
                old.updated_at = Some(now);
                let live = tasks
                    .iter()
                    .filter(|t| t.task.started_by.as_deref() == Some(old.id.as_str()) && !t.is_stopped())
                    .count() as i32;
                sources.push((old.id.clone(), live));
            }
            s.deployments.insert(0, d.clone());
            s.current_service_deployment = Some(service_deployment_arn(ctx, &cluster, &s.service_name, &d.id));
            let config = s.deployment_configuration.clone();
            for h in next.history.iter_mut().filter(|h| matches!(h.status.as_str(), "PENDING" | "IN_PROGRESS")) {
                h.status = "STOPPED".into();
                h.status_reason = Some(format!("Service deployment stopped: a newer deployment ({}) started.", d.id));
                h.stopped_at = Some(now);
                h.updated_at = now;
            }
            next.history.insert(0, history_entry(&d, sources, &config, now));
            next.history.truncate(skiff_model::service::MAX_HISTORY);
            next.launch_failures = 0;
            next.next_launch_at = 0;
        }
        let s = &mut next.service;
        if let Some(p) = s.deployments.first_mut() {
            if p.desired_count != s.desired_count {
                p.desired_count = s.desired_count;
                p.updated_at = Some(now);
            }
        }
        next.steady = false;
        if let Some(done) = put_service(ctx, &cluster, &key, rev, &next).await? {
            return Ok(done);
        }
    }
    Err(ApiError::server(format!("too many concurrent updates of service {}; retry the call", req.service)))
}

// ---------------------------------------------------------------------------------------------------------
// DeleteService

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteServiceRequest {
    cluster: Option<String>,
    service: String,
    force: Option<bool>,
}

pub async fn delete_service(ctx: &Ctx, req: DeleteServiceRequest) -> Result<ServiceResponse, ApiError> {
    let cluster = implied_cluster(ctx, req.cluster.as_deref(), Some(&req.service))?;
    for _ in 0..32 {
        let (key, record, rev) = existing(ctx, &cluster, &req.service).await?;
        // Deleting a service already deleted (DRAINING or INACTIVE) answers with it, as ECS does
        // (DeleteService models no ServiceNotActiveException).
        if record.service.status != "ACTIVE" {
            return Ok(ServiceResponse { service: described(ctx, &cluster, &record, false).await? });
        }
        if record.service.desired_count > 0 && req.force != Some(true) {
            return Err(ApiError::invalid_parameter(
                "The service cannot be stopped while it is scaled above 0. Set desiredCount to 0 first, or use force.",
            ));
        }
        let now = now_millis();
        let mut next = record.clone();
        next.service.status = "DRAINING".into();
        next.service.desired_count = 0;
        if let Some(p) = next.service.deployments.first_mut() {
            p.desired_count = 0;
            p.updated_at = Some(now);
        }
        next.steady = false;
        if let Some(done) = put_service(ctx, &cluster, &key, rev, &next).await? {
            return Ok(done);
        }
    }
    Err(ApiError::server(format!("too many concurrent updates of service {}; retry the call", req.service)))
}

// ---------------------------------------------------------------------------------------------------------
// DescribeServices, ListServices

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ServiceField {
    Tags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeServicesRequest {
    cluster: Option<String>,
    services: Vec<String>,
    include: Option<Vec<ServiceField>>,
}

#[derive(Debug, Serialize)]
pub struct DescribeServicesResponse {
    services: Vec<Service>,
    failures: Vec<Failure>,
}

pub async fn describe_services(ctx: &Ctx, req: DescribeServicesRequest) -> Result<DescribeServicesResponse, ApiError> {
    if req.services.is_empty() {
        return Err(ApiError::invalid_parameter("Services cannot be empty."));
    }
    if req.services.len() > 10 {
        return Err(ApiError::invalid_parameter("Services cannot have more than 10 elements."));
    }
    let cluster = implied_cluster(ctx, req.cluster.as_deref(), req.services.first().map(String::as_str))?;
    require_cluster(ctx, &cluster).await?;
    let with_tags = req.include.unwrap_or_default().iter().any(|f| matches!(f, ServiceField::Tags));
    let tasks = load_all::<TaskRecord>(ctx.store(), &task_keys::cluster_prefix(&cluster)).await?;
    let mut out = DescribeServicesResponse { services: Vec::new(), failures: Vec::new() };
    for reference in &req.services {
        let missing = || Failure {
            arn: if reference.starts_with("arn:") { reference.clone() } else { service_arn(ctx, &cluster, reference) },
            reason: "MISSING".into(),
            detail: None,
        };
        let name = match service_in(ctx, &cluster, reference) {
            Ok(Some(n)) => n,
            _ => {
                out.failures.push(missing());
                continue;
            }
        };
        match load::<ServiceRecord>(ctx.store(), &keys::service(&cluster, &name)).await? {
            Some((r, _)) => {
                let mine: Vec<&TaskRecord> =
                    tasks.iter().map(|(_, t)| t).filter(|t| t.service_name.as_deref() == Some(r.name())).collect();
                let mut s = render(&r, &mine);
                if !with_tags {
                    s.tags.clear();
                }
                out.services.push(s);
            }
            None => out.failures.push(missing()),
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListServicesRequest {
    cluster: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
    launch_type: Option<LaunchType>,
    scheduling_strategy: Option<String>,
    resource_management_type: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesResponse {
    service_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list_services(ctx: &Ctx, req: ListServicesRequest) -> Result<ListServicesResponse, ApiError> {
    // ListServices returns 10 services a page unless asked for more (up to 100).
    let max = if req.max_results.is_none() { 10 } else { max_results(req.max_results)? };
    let cluster = cluster_name(ctx, req.cluster.as_deref())?;
    require_cluster(ctx, &cluster).await?;
    if let Some(s) = req.scheduling_strategy.as_deref().filter(|s| !matches!(*s, "REPLICA" | "DAEMON")) {
        return Err(ApiError::invalid_parameter(format!("schedulingStrategy must be REPLICA or DAEMON, not '{s}'.")));
    }
    if let Some(m) = req.resource_management_type.as_deref().filter(|m| !matches!(*m, "CUSTOMER" | "ECS")) {
        return Err(ApiError::invalid_parameter(format!("resourceManagementType must be CUSTOMER or ECS, not '{m}'.")));
    }
    let launch_type = req.launch_type.map(|l| match l {
        LaunchType::Fargate => "FARGATE",
        LaunchType::Ec2 => "EC2",
        LaunchType::External => "EXTERNAL",
        LaunchType::ManagedInstances => "MANAGED_INSTANCES",
    });
    let mut arns: Vec<String> = load_all::<ServiceRecord>(ctx.store(), &keys::cluster_prefix(&cluster))
        .await?
        .into_iter()
        .map(|(_, r)| r.service)
        // DRAINING and INACTIVE services are no longer listed (ECS's DeleteService documentation).
        .filter(|s| s.status == "ACTIVE")
        .filter(|s| launch_type.is_none_or(|l| s.launch_type.as_deref() == Some(l)))
        .filter(|s| req.scheduling_strategy.as_deref().is_none_or(|st| s.scheduling_strategy == st))
        .filter(|_| req.resource_management_type.as_deref().is_none_or(|m| m == "CUSTOMER"))
        .map(|s| s.service_arn)
        .collect();
    arns.sort();
    let (service_arns, next_token) = paginate(arns, req.next_token.as_deref(), max, false)?;
    Ok(ListServicesResponse { service_arns, next_token })
}

// ---------------------------------------------------------------------------------------------------------
// ListServiceDeployments, DescribeServiceDeployments

fn service_deployment_arn(ctx: &Ctx, cluster: &str, service: &str, deployment_id: &str) -> String {
    ctx.scope().ecs(&format!("service-deployment/{cluster}/{service}/{}", deployment_digits(deployment_id)))
}

fn service_revision_arn(ctx: &Ctx, cluster: &str, service: &str, deployment_id: &str) -> String {
    ctx.scope().ecs(&format!("service-revision/{cluster}/{service}/{}", deployment_digits(deployment_id)))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentBrief {
    service_deployment_arn: String,
    service_arn: String,
    cluster_arn: String,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    started_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    created_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    finished_at: Option<EpochMillis>,
    target_service_revision_arn: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRevisionSummary {
    arn: String,
    requested_task_count: i32,
    running_task_count: i32,
    pending_task_count: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackOut {
    reason: String,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    started_at: Option<EpochMillis>,
    service_revision_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakerOut {
    status: &'static str,
    failure_count: i32,
    threshold: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentOut {
    service_deployment_arn: String,
    service_arn: String,
    cluster_arn: String,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    created_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    started_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    finished_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    stopped_at: Option<EpochMillis>,
    #[serde(with = "json_opt", skip_serializing_if = "Option::is_none")]
    updated_at: Option<EpochMillis>,
    source_service_revisions: Vec<ServiceRevisionSummary>,
    target_service_revision: ServiceRevisionSummary,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_reason: Option<String>,
    deployment_configuration: DeploymentConfiguration,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<RollbackOut>,
    deployment_circuit_breaker: CircuitBreakerOut,
}

/// A service deployment as DescribeServiceDeployments shows it, counts from the service's tasks.
fn service_deployment(
    ctx: &Ctx,
    cluster: &str,
    r: &ServiceRecord,
    h: &ServiceDeploymentRecord,
    tasks: &[TaskRecord],
) -> ServiceDeploymentOut {
    let name = r.name();
    let count = |id: &str, statuses: &[&str]| {
        tasks
            .iter()
            .filter(|t| t.task.started_by.as_deref() == Some(id) && statuses.contains(&t.task.last_status.as_str()))
            .count() as i32
    };
    let pending = skiff_model::task::PENDING_STATUSES;
    let summary = |id: &str, requested: i32| ServiceRevisionSummary {
        arn: service_revision_arn(ctx, cluster, name, id),
        requested_task_count: requested,
        running_task_count: count(id, &["RUNNING"]),
        pending_task_count: count(id, &pending),
    };
    let target_requested =
        if matches!(h.status.as_str(), "IN_PROGRESS" | "SUCCESSFUL") { r.service.desired_count } else { 0 };
    let failures = r
        .service
        .deployments
        .iter()
        .find(|d| d.id == h.deployment_id)
        .map(|d| d.failed_tasks)
        .unwrap_or(h.failed_tasks);
    let breaker = h.deployment_configuration.breaker();
    let breaker_status = if h.breaker_triggered {
        "TRIGGERED"
    } else if !breaker.enable {
        "DISABLED"
    } else if h.finished_at.is_some() || h.stopped_at.is_some() {
        "MONITORING_COMPLETE"
    } else {
        "MONITORING"
    };
    ServiceDeploymentOut {
        service_deployment_arn: service_deployment_arn(ctx, cluster, name, &h.deployment_id),
        service_arn: r.service.service_arn.clone(),
        cluster_arn: r.service.cluster_arn.clone(),
        created_at: Some(h.created_at),
        started_at: Some(h.created_at),
        finished_at: h.finished_at,
        stopped_at: h.stopped_at,
        updated_at: Some(h.updated_at),
        source_service_revisions: h.sources.iter().map(|(id, n)| summary(id, *n)).collect(),
        target_service_revision: summary(&h.deployment_id, target_requested),
        status: h.status.clone(),
        status_reason: h.status_reason.clone(),
        deployment_configuration: h.deployment_configuration.clone(),
        rollback: h.rollback_to.as_ref().map(|to| RollbackOut {
            reason: "Rolled back because the deployment circuit breaker threshold was exceeded.".into(),
            started_at: h.rollback_started_at,
            service_revision_arn: service_revision_arn(ctx, cluster, name, to),
        }),
        deployment_circuit_breaker: CircuitBreakerOut {
            status: breaker_status,
            failure_count: failures,
            threshold: skiff_model::service::circuit_breaker_threshold(r.service.desired_count),
        },
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatedAtFilter {
    #[serde(default, with = "json_opt")]
    before: Option<EpochMillis>,
    #[serde(default, with = "json_opt")]
    after: Option<EpochMillis>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListServiceDeploymentsRequest {
    service: String,
    cluster: Option<String>,
    status: Option<Vec<String>>,
    created_at: Option<CreatedAtFilter>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServiceDeploymentsResponse {
    service_deployments: Vec<ServiceDeploymentBrief>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

const SERVICE_DEPLOYMENT_STATUSES: [&str; 9] = [
    "PENDING",
    "SUCCESSFUL",
    "STOPPED",
    "STOP_REQUESTED",
    "IN_PROGRESS",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_SUCCESSFUL",
    "ROLLBACK_FAILED",
];

pub async fn list_service_deployments(
    ctx: &Ctx,
    req: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, ApiError> {
    let max = if req.max_results.is_none() { 20 } else { max_results(req.max_results)? };
    let statuses = req.status.clone().unwrap_or_default();
    if let Some(bad) = statuses.iter().find(|s| !SERVICE_DEPLOYMENT_STATUSES.contains(&s.as_str())) {
        return Err(ApiError::invalid_parameter(format!("'{bad}' is not a service deployment status.")));
    }
    let cluster = implied_cluster(ctx, req.cluster.as_deref(), Some(&req.service))?;
    let (_, r, _) = existing(ctx, &cluster, &req.service).await?;
    let (before, after) = req.created_at.as_ref().map(|c| (c.before, c.after)).unwrap_or_default();
    // Newest first; the token is the (zero-padded, descending) creation time and id of the last one.
    let key_of = |h: &ServiceDeploymentRecord| format!("{:020}/{}", h.created_at, deployment_digits(&h.deployment_id));
    let mut entries: Vec<&ServiceDeploymentRecord> = r
        .history
        .iter()
        .filter(|h| statuses.is_empty() || statuses.contains(&h.status))
        .filter(|h| before.is_none_or(|b| h.created_at < b) && after.is_none_or(|a| h.created_at > a))
        .collect();
    entries.sort_by_key(|h| std::cmp::Reverse(key_of(h)));
    let keys: Vec<String> = entries.iter().map(|h| key_of(h)).collect();
    let (page, next_token) = paginate(keys, req.next_token.as_deref(), max, true)?;
    let service_deployments = entries
        .into_iter()
        .filter(|h| page.contains(&key_of(h)))
        .map(|h| ServiceDeploymentBrief {
            service_deployment_arn: service_deployment_arn(ctx, &cluster, r.name(), &h.deployment_id),
            service_arn: r.service.service_arn.clone(),
            cluster_arn: r.service.cluster_arn.clone(),
            started_at: Some(h.created_at),
            created_at: Some(h.created_at),
            finished_at: h.finished_at,
            target_service_revision_arn: service_revision_arn(ctx, &cluster, r.name(), &h.deployment_id),
            status: h.status.clone(),
            status_reason: h.status_reason.clone(),
        })
        .collect();
    Ok(ListServiceDeploymentsResponse { service_deployments, next_token })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeServiceDeploymentsRequest {
    service_deployment_arns: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServiceDeploymentsResponse {
    service_deployments: Vec<ServiceDeploymentOut>,
    failures: Vec<Failure>,
}

pub async fn describe_service_deployments(
    ctx: &Ctx,
    req: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, ApiError> {
    if req.service_deployment_arns.is_empty() || req.service_deployment_arns.len() > 20 {
        return Err(ApiError::invalid_parameter("serviceDeploymentArns must have between 1 and 20 elements."));
    }
    let mut out = DescribeServiceDeploymentsResponse { service_deployments: Vec::new(), failures: Vec::new() };
    for text in &req.service_deployment_arns {
        let missing = || Failure { arn: text.clone(), reason: "MISSING".into(), detail: None };
        let parts = Arn::parse(text).and_then(|arn| {
            let (kind, rest) = arn.resource_type();
            let ours = arn.service == "ecs" && arn.region == ctx.scope().region && arn.account == ctx.scope().account;
            let mut it = rest.splitn(3, '/');
            match (ours && kind == "service-deployment", it.next(), it.next(), it.next()) {
                (true, Some(c), Some(s), Some(id)) => Some((c.to_string(), s.to_string(), id.to_string())),
                _ => None,
            }
        });
        let Some((cluster, service, id)) = parts else {
            out.failures.push(missing());
            continue;
        };
        if !is_service_name(&service) || cluster_name(ctx, Some(&cluster)).is_err() {
            out.failures.push(missing());
            continue;
        }
        let Some((r, _)) = load::<ServiceRecord>(ctx.store(), &keys::service(&cluster, &service)).await? else {
            out.failures.push(missing());
            continue;
        };
        let Some(h) = r.history.iter().find(|h| deployment_digits(&h.deployment_id) == id) else {
            out.failures.push(missing());
            continue;
        };
        let tasks = tasks_of(ctx, &cluster, &service).await?;
        out.service_deployments.push(service_deployment(ctx, &cluster, &r, h, &tasks));
    }
    Ok(out)
}
