//! TagResource, UntagResource, ListTagsForResource on every ECS resource Skiff has.

use super::clusters::cluster_name;
use super::keys;
use super::task_definitions::{parse_task_definition_arn, TaskDefinitionRecord};
use crate::context::Ctx;
use crate::records::Empty;
use crate::records::{load, update};
use serde::{Deserialize, Serialize};
use skiff_model::cluster::ClusterRecord;
use skiff_model::service::{is_service_name, keys as service_keys, ServiceRecord};
use skiff_model::tag::{merge_tags, remove_tag_keys, validate_tag_keys, validate_tags, Tag};
use skiff_proto::arn::Arn;
use skiff_proto::ApiError;

/// The store key holding a taggable resource, and the error for when it does not exist.
enum Resource {
    Cluster(String),
    TaskDefinition(String),
    Service(String),
}

/// `missing` is the error code for a resource that does not exist: TagResource and UntagResource model
/// `ResourceNotFoundException`, ListTagsForResource only `ClientException`.
fn resource(ctx: &Ctx, arn_text: &str, missing: &'static str) -> Result<Resource, ApiError> {
    let invalid = || ApiError::invalid_parameter(format!("'{arn_text}' is not a valid ECS resource ARN."));
    let arn = Arn::parse(arn_text).ok_or_else(invalid)?;
    if arn.service != "ecs" {
        return Err(invalid());
    }
    let not_found = || ApiError::client(missing, format!("The specified resource {arn_text} was not found."));
    if arn.region != ctx.scope().region || arn.account != ctx.scope().account {
        return Err(not_found());
    }
    match arn.resource_type().0 {
        "cluster" => Ok(Resource::Cluster(keys::cluster(&cluster_name(ctx, Some(arn_text))?))),
        "task-definition" => {
            let (family, revision) = parse_task_definition_arn(ctx.scope(), arn_text)?;
            Ok(Resource::TaskDefinition(keys::task_definition(&family, revision)))
        }
        "service" => match arn.resource_type().1.split_once('/') {
            Some((cluster, name)) if is_service_name(name) => {
                Ok(Resource::Service(service_keys::service(&cluster_name(ctx, Some(cluster))?, name)))
            }
            _ => Err(not_found()),
        },
        "task" | "container-instance" | "capacity-provider" | "task-set" => Err(not_found()),
        _ => Err(invalid()),
    }
}

fn cluster_not_found() -> ApiError {
    ApiError::client("ClusterNotFoundException", "Cluster not found.")
}

fn service_not_found() -> ApiError {
    ApiError::client("ResourceNotFoundException", "The specified service does not exist.")
}

fn task_definition_not_found() -> ApiError {
    ApiError::client("ResourceNotFoundException", "The specified task definition does not exist.")
}

/// Applies `change` to the tags of the resource.
async fn change_tags(
    ctx: &Ctx,
    arn: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    match resource(ctx, arn, "ResourceNotFoundException")? {
        Resource::Cluster(key) => {
            update(ctx.store(), &key, cluster_not_found, |c: &mut ClusterRecord| {
                if c.status != "ACTIVE" {
                    return Err(cluster_not_found());
                }
                change(&mut c.tags)
            })
            .await?;
        }
        Resource::TaskDefinition(key) => {
            update(ctx.store(), &key, task_definition_not_found, |t: &mut TaskDefinitionRecord| change(&mut t.tags))
                .await?;
        }
        Resource::Service(key) => {
            update(ctx.store(), &key, service_not_found, |r: &mut ServiceRecord| {
                if r.service.status == "INACTIVE" {
                    return Err(service_not_found());
                }
                change(&mut r.service.tags)
            })
            .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagResourceRequest {
    resource_arn: String,
    tags: Vec<Tag>,
}

pub async fn tag_resource(ctx: &Ctx, req: TagResourceRequest) -> Result<Empty, ApiError> {
    validate_tags(&req.tags)?;
    change_tags(ctx, &req.resource_arn, |tags| {
        merge_tags(tags, req.tags.clone());
        validate_tags(tags)
    })
    .await?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UntagResourceRequest {
    resource_arn: String,
    tag_keys: Vec<String>,
}

pub async fn untag_resource(ctx: &Ctx, req: UntagResourceRequest) -> Result<Empty, ApiError> {
    validate_tag_keys(&req.tag_keys)?;
    change_tags(ctx, &req.resource_arn, |tags| {
        remove_tag_keys(tags, &req.tag_keys);
        Ok(())
    })
    .await?;
    Ok(Empty {})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTagsForResourceRequest {
    resource_arn: String,
}

#[derive(Debug, Serialize)]
pub struct ListTagsForResourceResponse {
    tags: Vec<Tag>,
}

pub async fn list_tags_for_resource(
    ctx: &Ctx,
    req: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let tags = match resource(ctx, &req.resource_arn, "ClientException")? {
        Resource::Cluster(key) => match load::<ClusterRecord>(ctx.store(), &key).await? {
            Some((c, _)) if c.status == "ACTIVE" => c.tags,
            _ => return Err(cluster_not_found()),
        },
        Resource::TaskDefinition(key) => match load::<TaskDefinitionRecord>(ctx.store(), &key).await? {
            Some((t, _)) => t.tags,
            None => return Err(ApiError::client_exception("The specified task definition does not exist.")),
        },
        Resource::Service(key) => match load::<ServiceRecord>(ctx.store(), &key).await? {
            Some((r, _)) if r.service.status != "INACTIVE" => r.service.tags,
            _ => return Err(ApiError::client_exception("The specified service does not exist.")),
        },
    };
    Ok(ListTagsForResourceResponse { tags })
}
