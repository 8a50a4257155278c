//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions, ListTaskDefinitionFamilies,
//! DeregisterTaskDefinition, DeleteTaskDefinitions.

use super::{keys, max_results, Failure};
use crate::context::{now_millis, Ctx};
use crate::records::{encode, load, load_all, paginate, store_error, update};
use serde::{Deserialize, Serialize};
use skiff_model::tag::Tag;
use skiff_model::task_definition::{
    RegisterTaskDefinitionRequest, RegistrationContext, TaskDefinition, TaskDefinitionStatus,
};
use skiff_proto::arn::{Arn, ArnScope};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};
use std::collections::BTreeMap;

/// A task definition as stored: the definition and its tags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionRecord {
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDefinitionRecord {
    fn status(&self) -> TaskDefinitionStatus {
        self.task_definition.status.unwrap_or(TaskDefinitionStatus::Active)
    }

    fn family(&self) -> &str {
        self.task_definition.family()
    }

    fn revision(&self) -> i32 {
        self.task_definition.revision()
    }
}

/// The last revision handed out in a family (revisions are never reused, even after deletion).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FamilyRecord {
    latest_revision: i32,
}

fn describe_failed() -> ApiError {
    ApiError::client_exception("Unable to describe task definition.")
}

fn parse_revision(text: &str, whole: &str) -> Result<i32, ApiError> {
    match text.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::client_exception(format!("Invalid revision number. Number: {text} (in '{whole}')"))),
    }
}

/// `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REV` → (family, revision). Task definitions of
/// another account or region do not exist here.
pub fn parse_task_definition_arn(scope: &ArnScope, text: &str) -> Result<(String, i32), ApiError> {
    let invalid = || ApiError::invalid_parameter(format!("'{text}' is not a task definition ARN."));
    let arn = Arn::parse(text).ok_or_else(invalid)?;
    let (kind, rest) = arn.resource_type();
    if arn.service != "ecs" || kind != "task-definition" {
        return Err(invalid());
    }
    if arn.region != scope.region || arn.account != scope.account {
        return Err(describe_failed());
    }
    let (family, rev) = rest.rsplit_once(':').ok_or_else(invalid)?;
    Ok((family.to_string(), parse_revision(rev, text)?))
}

/// A task definition reference: `family`, `family:revision` or the full ARN.
fn parse_reference(scope: &ArnScope, text: &str) -> Result<(String, Option<i32>), ApiError> {
    if text.starts_with("arn:") {
        let (family, rev) = parse_task_definition_arn(scope, text)?;
        return Ok((family, Some(rev)));
    }
    match text.rsplit_once(':') {
        Some((family, rev)) => Ok((family.to_string(), Some(parse_revision(rev, text)?))),
        None => Ok((text.to_string(), None)),
    }
}

/// The latest ACTIVE revision of a family, or a given revision in any state.
async fn find(ctx: &Ctx, reference: &str) -> Result<Option<TaskDefinitionRecord>, ApiError> {
    let (family, revision) = parse_reference(ctx.scope(), reference)?;
    if family.is_empty() || family.contains('/') {
        return Ok(None);
    }
    match revision {
        Some(rev) => {
            Ok(load::<TaskDefinitionRecord>(ctx.store(), &keys::task_definition(&family, rev)).await?.map(|(r, _)| r))
        }
        None => Ok(load_all::<TaskDefinitionRecord>(ctx.store(), &keys::task_definitions_of(&family))
            .await?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.status() == TaskDefinitionStatus::Active)
            .max_by_key(TaskDefinitionRecord::revision)),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionResponse {
    task_definition: TaskDefinition,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<Tag>>,
}

/// ECS refuses task definitions larger than 64 KiB.
const MAX_TASK_DEFINITION_BYTES: usize = 65536;

pub async fn register_task_definition(
    ctx: &Ctx,
    req: RegisterTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let size = encode(&req)?.len();
    if size > MAX_TASK_DEFINITION_BYTES {
        return Err(ApiError::client_exception(format!(
            "Actual length: '{size}'. Max allowed length is '{MAX_TASK_DEFINITION_BYTES}' bytes."
        )));
    }
    loop {
        let family = req.family.clone();
        let family_key = keys::family(&family);
        let (latest, rev) = load::<FamilyRecord>(ctx.store(), &family_key).await?.unwrap_or_default();
        let revision = latest.latest_revision + 1;
        let (task_definition, tags) = req.clone().into_task_definition(RegistrationContext {
            arn: ctx.scope().ecs(&format!("task-definition/{family}:{revision}")),
            revision,
            registered_at: now_millis(),
            registered_by: ctx.caller.arn.clone(),
        })?;
        let record = TaskDefinitionRecord { task_definition, tags };
        let txn = Txn::new()
            .when(&family_key, rev)
            .put(&family_key, encode(&FamilyRecord { latest_revision: revision })?)
            .put(keys::task_definition(&family, revision), encode(&record)?);
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                return Ok(TaskDefinitionResponse { task_definition: record.task_definition, tags: Some(record.tags) })
            }
            TxnOutcome::Conflict => continue,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskDefinitionField {
    Tags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeTaskDefinitionRequest {
    task_definition: String,
    include: Option<Vec<TaskDefinitionField>>,
}

pub async fn describe_task_definition(
    ctx: &Ctx,
    req: DescribeTaskDefinitionRequest,
) -> Result<TaskDefinitionResponse, ApiError> {
    let record = find(ctx, &req.task_definition).await?.ok_or_else(describe_failed)?;
    let with_tags = req.include.is_some_and(|i| i.iter().any(|f| matches!(f, TaskDefinitionField::Tags)));
    Ok(TaskDefinitionResponse { task_definition: record.task_definition, tags: with_tags.then_some(record.tags) })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTaskDefinitionsRequest {
    family_prefix: Option<String>,
    status: Option<TaskDefinitionStatus>,
    sort: Option<SortOrder>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionsResponse {
    task_definition_arns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Orders by family name, then numerically by revision (`\0` sorts before any family character).
fn sort_key(family: &str, revision: i32) -> String {
    format!("{family}\0{revision:010}")
}

pub async fn list_task_definitions(
    ctx: &Ctx,
    req: ListTaskDefinitionsRequest,
) -> Result<ListTaskDefinitionsResponse, ApiError> {
    let max = max_results(req.max_results)?;
    let status = req.status.unwrap_or(TaskDefinitionStatus::Active);
    // familyPrefix is, despite its name, the full family name (as in ECS).
    let prefix = match &req.family_prefix {
        Some(f) => keys::task_definitions_of(f),
        None => keys::TASK_DEFINITIONS.to_string(),
    };
    let mut matching: BTreeMap<String, String> = BTreeMap::new();
    for (_, r) in load_all::<TaskDefinitionRecord>(ctx.store(), &prefix).await? {
        if r.status() == status {
            let arn = r.task_definition.task_definition_arn.clone().unwrap_or_default();
            matching.insert(sort_key(r.family(), r.revision()), arn);
        }
    }
    let descending = req.sort == Some(SortOrder::Desc);
    let mut order: Vec<String> = matching.keys().cloned().collect();
    if descending {
        order.reverse();
    }
    let (page, next_token) = paginate(order, req.next_token.as_deref(), max, descending)?;
    let task_definition_arns = page.iter().filter_map(|k| matching.get(k).cloned()).collect();
    Ok(ListTaskDefinitionsResponse { task_definition_arns, next_token })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FamilyStatus {
    Active,
    Inactive,
    All,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListTaskDefinitionFamiliesRequest {
    family_prefix: Option<String>,
    status: Option<FamilyStatus>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTaskDefinitionFamiliesResponse {
    families: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn list_task_definition_families(
    ctx: &Ctx,
    req: ListTaskDefinitionFamiliesRequest,
) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
    let max = max_results(req.max_results)?;
    let wanted = req.status.unwrap_or(FamilyStatus::All);
    let prefix = format!("{}{}", keys::TASK_DEFINITIONS, req.family_prefix.as_deref().unwrap_or(""));
    // family → whether it has an ACTIVE revision
    let mut families: BTreeMap<String, bool> = BTreeMap::new();
    for (_, r) in load_all::<TaskDefinitionRecord>(ctx.store(), &prefix).await? {
        let active = families.entry(r.family().to_string()).or_default();
        *active |= r.status() == TaskDefinitionStatus::Active;
    }
    let names = families
        .into_iter()
        .filter(|(_, active)| match wanted {
            FamilyStatus::All => true,
            FamilyStatus::Active => *active,
            FamilyStatus::Inactive => !*active,
        })
        .map(|(name, _)| name)
        .collect();
    let (families, next_token) = paginate(names, req.next_token.as_deref(), max, false)?;
    Ok(ListTaskDefinitionFamiliesResponse { families, next_token })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeregisterTaskDefinitionRequest {
    task_definition: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterTaskDefinitionResponse {
    task_definition: TaskDefinition,
}

/// `family:revision` or an ARN (deregistering and deleting always name one revision).
fn revision_reference(scope: &ArnScope, text: &str) -> Result<(String, i32), ApiError> {
    match parse_reference(scope, text)? {
        (family, Some(rev)) if !family.is_empty() => Ok((family, rev)),
        _ => Err(ApiError::client_exception(format!(
            "Invalid task definition '{text}': name a revision as family:revision or by its ARN."
        ))),
    }
}

pub async fn deregister_task_definition(
    ctx: &Ctx,
    req: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
    let (family, revision) = revision_reference(ctx.scope(), &req.task_definition)?;
    let now = now_millis();
    let record = update(
        ctx.store(),
        &keys::task_definition(&family, revision),
        describe_failed,
        |r: &mut TaskDefinitionRecord| {
            if r.status() == TaskDefinitionStatus::Active {
                r.task_definition.status = Some(TaskDefinitionStatus::Inactive);
                r.task_definition.deregistered_at = Some(now);
            }
            Ok(())
        },
    )
    .await?;
    Ok(DeregisterTaskDefinitionResponse { task_definition: record.task_definition })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteTaskDefinitionsRequest {
    task_definitions: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTaskDefinitionsResponse {
    task_definitions: Vec<TaskDefinition>,
    failures: Vec<Failure>,
}

pub async fn delete_task_definitions(
    ctx: &Ctx,
    req: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid_parameter("taskDefinitions must name between 1 and 10 task definitions."));
    }
    let mut out = DeleteTaskDefinitionsResponse { task_definitions: Vec::new(), failures: Vec::new() };
    let now = now_millis();
    for reference in &req.task_definitions {
        let (family, revision) = revision_reference(ctx.scope(), reference)?;
        let arn = ctx.scope().ecs(&format!("task-definition/{family}:{revision}"));
        let failure = |reason: &str| Failure { arn: arn.clone(), reason: reason.into(), detail: None };
        let missing = || ApiError::client_exception("The specified task definition does not exist.");
        let result = update(ctx.store(), &keys::task_definition(&family, revision), missing, |r: &mut TaskDefinitionRecord| {
            match r.status() {
                TaskDefinitionStatus::Active => Err(ApiError::client_exception(
                    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                )),
                TaskDefinitionStatus::Inactive => {
                    r.task_definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
                    r.task_definition.delete_requested_at = Some(now);
                    Ok(())
                }
                TaskDefinitionStatus::DeleteInProgress => Ok(()),
            }
        })
        .await;
        match result {
            Ok(r) => out.task_definitions.push(r.task_definition),
            Err(e) if e.status < 500 => out.failures.push(failure(&e.message)),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
