//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings,
//! PutClusterCapacityProviders, DeleteCluster.

use super::{keys, max_results, Failure};
use crate::context::{now_millis, Ctx};
use crate::records::{encode, load, load_all, paginate, store_error, update};
use serde::{Deserialize, Serialize};
use skiff_model::cluster::{
    self, CapacityProviderStrategyItem, Cluster, ClusterConfiguration, ClusterCounts, ClusterIncludes, ClusterRecord,
    ClusterServiceConnectDefaults, ClusterServiceConnectDefaultsRequest, ClusterSetting,
};
use skiff_model::service::ServiceRecord;
use skiff_model::tag::{validate_tags, Tag};
use skiff_model::task::PENDING_STATUSES;
use skiff_proto::arn::Arn;
use skiff_proto::ApiError;
use skiff_store::{Store, Txn, TxnOutcome};

pub const DEFAULT_CLUSTER: &str = "default";

fn not_found() -> ApiError {
    ApiError::client("ClusterNotFoundException", "Cluster not found.")
}

/// The cluster name an identifier (name or ARN) refers to; `None` means the default cluster.
pub fn cluster_name(ctx: &Ctx, identifier: Option<&str>) -> Result<String, ApiError> {
    let Some(id) = identifier else { return Ok(DEFAULT_CLUSTER.to_string()) };
    if id.starts_with("arn:") {
        let arn = Arn::parse(id).ok_or_else(|| ApiError::invalid_parameter(format!("Invalid cluster ARN '{id}'.")))?;
        let (kind, name) = arn.resource_type();
        if arn.service != "ecs" || kind != "cluster" || name.is_empty() {
            return Err(ApiError::invalid_parameter(format!("'{id}' is not a cluster ARN.")));
        }
        if arn.region != ctx.scope().region || arn.account != ctx.scope().account {
            return Err(not_found());
        }
        return Ok(name.to_string());
    }
    cluster::validate_cluster_name(id)?;
    Ok(id.to_string())
}

/// lastStatus of each task of a cluster (`TaskRecord`s: the task as described under `task`).
async fn task_statuses(store: &dyn Store, name: &str) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct LastStatus {
        last_status: String,
    }
    #[derive(Deserialize)]
    struct Record {
        task: LastStatus,
    }
    Ok(load_all::<Record>(store, &keys::tasks_of(name)).await?.into_iter().map(|(_, r)| r.task.last_status).collect())
}

/// Tasks and services of a cluster, counted from their records: running tasks are those whose lastStatus
/// is RUNNING, pending ones PROVISIONING, PENDING or ACTIVATING (as ECS counts them).
async fn counts(store: &dyn Store, name: &str) -> Result<ClusterCounts, ApiError> {
    #[derive(Deserialize)]
    struct Status {
        status: Option<String>,
    }
    #[derive(Deserialize)]
    struct Record {
        service: Status,
    }
    let mut c = ClusterCounts::default();
    for (_, r) in load_all::<Record>(store, &keys::services_of(name)).await? {
        match r.service.status.as_deref() {
            Some("ACTIVE") => c.active_services += 1,
            Some("DRAINING") => c.draining_services += 1,
            _ => {}
        }
    }
    for status in task_statuses(store, name).await? {
        if status == "RUNNING" {
            c.running_tasks += 1;
        } else if PENDING_STATUSES.contains(&status.as_str()) {
            c.pending_tasks += 1;
        }
    }
    Ok(c)
}

const ALL: ClusterIncludes =
    ClusterIncludes { tags: true, settings: true, configurations: true, statistics: false, attachments: false };

async fn render(ctx: &Ctx, record: &ClusterRecord, include: ClusterIncludes) -> Result<Cluster, ApiError> {
    Ok(record.to_cluster(counts(ctx.store(), &record.name).await?, include))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateClusterRequest {
    cluster_name: Option<String>,
    tags: Option<Vec<Tag>>,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<ClusterConfiguration>,
    capacity_providers: Option<Vec<String>>,
    default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    service_connect_defaults: Option<ClusterServiceConnectDefaultsRequest>,
}

#[derive(Debug, Serialize)]
pub struct ClusterResponse {
    cluster: Cluster,
}

pub async fn create_cluster(ctx: &Ctx, req: CreateClusterRequest) -> Result<ClusterResponse, ApiError> {
    let name = req.cluster_name.unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    cluster::validate_cluster_name(&name)?;
    let tags = req.tags.unwrap_or_default();
    validate_tags(&tags)?;
    let new_settings = req.settings.unwrap_or_default();
    cluster::validate_settings(&new_settings)?;
    let providers = req.capacity_providers.unwrap_or_default();
    let strategy = req.default_capacity_provider_strategy.unwrap_or_default();
    cluster::validate_capacity_providers(&providers, &strategy)?;
    let mut settings = Vec::new();
    cluster::merge_settings(&mut settings, new_settings);

    let key = keys::cluster(&name);
    loop {
        let existing = load::<ClusterRecord>(ctx.store(), &key).await?;
        let rev = match existing {
            // ECS answers a create of an existing active cluster with that cluster.
            Some((c, _)) if c.status == "ACTIVE" => {
                return Ok(ClusterResponse { cluster: render(ctx, &c, ALL).await? });
            }
            Some((_, rev)) => rev,
            None => 0,
        };
        let record = ClusterRecord {
            arn: ctx.scope().ecs(&format!("cluster/{name}")),
            name: name.clone(),
            status: "ACTIVE".into(),
            created_at: now_millis(),
            tags: tags.clone(),
            settings: settings.clone(),
            configuration: req.configuration.clone(),
            capacity_providers: providers.clone(),
            default_capacity_provider_strategy: strategy.clone(),
            service_connect_defaults: req
                .service_connect_defaults
                .as_ref()
                .map(|d| ClusterServiceConnectDefaults { namespace: Some(d.namespace.clone()) }),
        };
        match ctx.store().txn(Txn::new().when(&key, rev).put(&key, encode(&record)?)).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(ClusterResponse { cluster: render(ctx, &record, ALL).await? }),
            TxnOutcome::Conflict => continue,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClusterField {
    Attachments,
    Configurations,
    Settings,
    Statistics,
    Tags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeClustersRequest {
    clusters: Option<Vec<String>>,
    include: Option<Vec<ClusterField>>,
}

#[derive(Debug, Serialize)]
pub struct DescribeClustersResponse {
    clusters: Vec<Cluster>,
    failures: Vec<Failure>,
}

pub async fn describe_clusters(ctx: &Ctx, req: DescribeClustersRequest) -> Result<DescribeClustersResponse, ApiError> {
    let mut include = ClusterIncludes::default();
    for f in req.include.unwrap_or_default() {
        match f {
            ClusterField::Attachments => include.attachments = true,
            ClusterField::Configurations => include.configurations = true,
            ClusterField::Settings => include.settings = true,
            ClusterField::Statistics => include.statistics = true,
            ClusterField::Tags => include.tags = true,
        }
    }
    let ids = req.clusters.unwrap_or_else(|| vec![DEFAULT_CLUSTER.to_string()]);
    if ids.len() > 100 {
        return Err(ApiError::invalid_parameter("clusters can name at most 100 clusters."));
    }
    let mut out = DescribeClustersResponse { clusters: Vec::new(), failures: Vec::new() };
    for id in ids {
        let missing = |arn: String| Failure { arn, reason: "MISSING".into(), detail: None };
        let name = match cluster_name(ctx, Some(&id)) {
            Ok(n) => n,
            Err(_) if id.starts_with("arn:") => {
                out.failures.push(missing(id));
                continue;
            }
            Err(e) => return Err(e),
        };
        match load::<ClusterRecord>(ctx.store(), &keys::cluster(&name)).await? {
            Some((c, _)) => out.clusters.push(render(ctx, &c, include).await?),
            None => out.failures.push(missing(ctx.scope().ecs(&format!("cluster/{name}")))),
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListClustersRequest {
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListClustersResponse {
    cluster_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list_clusters(ctx: &Ctx, req: ListClustersRequest) -> Result<ListClustersResponse, ApiError> {
    let max = max_results(req.max_results)?;
    let arns: Vec<String> = load_all::<ClusterRecord>(ctx.store(), keys::CLUSTERS)
        .await?
        .into_iter()
        .filter(|(_, c)| c.status == "ACTIVE")
        .map(|(_, c)| c.arn)
        .collect();
    let (cluster_arns, next_token) = paginate(arns, req.next_token.as_deref(), max, false)?;
    Ok(ListClustersResponse { cluster_arns, next_token })
}

/// Applies `change` to an active cluster and answers with the updated cluster.
async fn update_active(
    ctx: &Ctx,
    identifier: &str,
    change: impl FnMut(&mut ClusterRecord) -> Result<(), ApiError>,
) -> Result<ClusterResponse, ApiError> {
    let name = cluster_name(ctx, Some(identifier))?;
    let mut change = change;
    let record = update(ctx.store(), &keys::cluster(&name), not_found, |c: &mut ClusterRecord| {
        if c.status != "ACTIVE" {
            return Err(not_found());
        }
        change(c)
    })
    .await?;
    Ok(ClusterResponse { cluster: render(ctx, &record, ALL).await? })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClusterRequest {
    cluster: String,
    settings: Option<Vec<ClusterSetting>>,
    configuration: Option<ClusterConfiguration>,
    service_connect_defaults: Option<ClusterServiceConnectDefaultsRequest>,
}

pub async fn update_cluster(ctx: &Ctx, req: UpdateClusterRequest) -> Result<ClusterResponse, ApiError> {
    let settings = req.settings.unwrap_or_default();
    cluster::validate_settings(&settings)?;
    update_active(ctx, &req.cluster, |c| {
        cluster::merge_settings(&mut c.settings, settings.clone());
        if let Some(conf) = &req.configuration {
            c.configuration = Some(conf.clone());
        }
        if let Some(d) = &req.service_connect_defaults {
            c.service_connect_defaults = Some(ClusterServiceConnectDefaults { namespace: Some(d.namespace.clone()) });
        }
        Ok(())
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClusterSettingsRequest {
    cluster: String,
    settings: Vec<ClusterSetting>,
}

pub async fn update_cluster_settings(
    ctx: &Ctx,
    req: UpdateClusterSettingsRequest,
) -> Result<ClusterResponse, ApiError> {
    cluster::validate_settings(&req.settings)?;
    update_active(ctx, &req.cluster, |c| {
        cluster::merge_settings(&mut c.settings, req.settings.clone());
        Ok(())
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutClusterCapacityProvidersRequest {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

pub async fn put_cluster_capacity_providers(
    ctx: &Ctx,
    req: PutClusterCapacityProvidersRequest,
) -> Result<ClusterResponse, ApiError> {
    cluster::validate_capacity_providers(&req.capacity_providers, &req.default_capacity_provider_strategy)?;
    // A capacity provider a service's deployment runs on cannot be removed from the cluster.
    let name = cluster_name(ctx, Some(&req.cluster))?;
    for (_, r) in load_all::<ServiceRecord>(ctx.store(), &keys::services_of(&name)).await? {
        if r.service.status == "INACTIVE" {
            continue;
        }
        let used = r.service.deployments.iter().flat_map(|d| d.capacity_provider_strategy.iter().flatten());
        if let Some(p) = used.map(|i| &i.capacity_provider).find(|p| !req.capacity_providers.contains(p)) {
            return Err(ApiError::client(
                "ResourceInUseException",
                format!(
                    "The specified capacity provider {p} is in use by service {} and cannot be removed.",
                    r.service.service_name
                ),
            ));
        }
    }
    update_active(ctx, &req.cluster, |c| {
        c.capacity_providers = req.capacity_providers.clone();
        c.default_capacity_provider_strategy = req.default_capacity_provider_strategy.clone();
        Ok(())
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteClusterRequest {
    cluster: String,
}

pub async fn delete_cluster(ctx: &Ctx, req: DeleteClusterRequest) -> Result<ClusterResponse, ApiError> {
    let name = cluster_name(ctx, Some(&req.cluster))?;
    let key = keys::cluster(&name);
    // No RunTask commits between the count below and the delete (RunTask holds the read side).
    let _gate = ctx.state.cluster_gate.write().await;
    loop {
        let (mut record, rev) = match load::<ClusterRecord>(ctx.store(), &key).await? {
            Some((c, rev)) if c.status == "ACTIVE" => (c, rev),
            _ => return Err(not_found()),
        };
        let c = counts(ctx.store(), &name).await?;
        if c.active_services + c.draining_services > 0 {
            return Err(ApiError::client(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        // Any task not yet STOPPED (also one DEACTIVATING, STOPPING or DEPROVISIONING) keeps the cluster.
        let active_tasks = task_statuses(ctx.store(), &name).await?.iter().filter(|s| *s != "STOPPED").count();
        if active_tasks > 0 {
            return Err(ApiError::client(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        record.status = "INACTIVE".into();
        match ctx.store().txn(Txn::new().when(&key, rev).put(&key, encode(&record)?)).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(ClusterResponse { cluster: render(ctx, &record, ALL).await? }),
            TxnOutcome::Conflict => continue,
        }
    }
}
