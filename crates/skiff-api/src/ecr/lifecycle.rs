//! Lifecycle policies: PutLifecyclePolicy, GetLifecyclePolicy, DeleteLifecyclePolicy, the validation ECR
//! applies to the policy text, the pure evaluation of a policy ([`expired_images`]) and its application to
//! the store ([`apply_lifecycle_policy`], [`apply_lifecycle_policies`]).
//!
//! Evaluation follows ECR's rules: rules run from the lowest `rulePriority` up; each rule selects the images
//! its tag status and tag prefixes/patterns match and picks the ones to expire (the oldest beyond
//! `imageCountMoreThan`, or those pushed/pulled more than N days ago); an image whose tags matched a rule of
//! higher priority is never expired by a later rule, though later rules still count it; so each image is
//! expired by at most one rule. Images that an index or a referrer of the repository names are left alone
//! (they go once what names them has gone).

use super::images::{delete_image, RepositoryContent};
use super::repositories::update_repository;
use super::{invalid_parameter, load_repository, registry_id, StoredRepository};
use crate::context::{now_millis, AppState, Ctx};
use crate::records::{encode, load, load_all, store_error};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use skiff_model::ecr::keys;
use skiff_proto::timestamp::EpochMillis;
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};
use std::collections::{BTreeSet, HashSet};

const DAY_MILLIS: i64 = 86_400_000;
/// `LifecyclePolicyText` length limits of the model.
const MIN_POLICY_CHARS: usize = 100;
const MAX_POLICY_CHARS: usize = 30720;
/// Most `*` wildcards one `tagPatternList` entry may hold.
const MAX_WILDCARDS: usize = 4;

/// Which images a rule considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    Untagged,
    Any,
    /// Images that, for every prefix, have a tag starting with it.
    TaggedPrefixes(Vec<String>),
    /// Images that, for every pattern, have a tag matching it (`*` matches any run of characters).
    TaggedPatterns(Vec<String>),
}

/// Which of the selected images a rule expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRule {
    /// All but the newest N (by push time).
    ImageCountMoreThan(u64),
    /// Those pushed more than N days ago.
    SinceImagePushedDays(u64),
    /// Those last pulled (or, never pulled, pushed) more than N days ago.
    SinceImagePulledDays(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: i64,
    pub selection: TagSelection,
    pub count: CountRule,
}

/// A validated policy; rules in evaluation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    pub rules: Vec<Rule>,
}

/// What evaluation needs to know about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: EpochMillis,
    pub last_pulled_at: Option<EpochMillis>,
}

/// `*` matches any run of characters (also none); everything else matches itself.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

impl Rule {
    fn selects(&self, image: &ImageFacts) -> bool {
        match &self.selection {
            TagSelection::Untagged => image.tags.is_empty(),
            TagSelection::Any => true,
            TagSelection::TaggedPrefixes(prefixes) => {
                !image.tags.is_empty() && prefixes.iter().all(|p| image.tags.iter().any(|t| t.starts_with(p.as_str())))
            }
            TagSelection::TaggedPatterns(patterns) => {
                !image.tags.is_empty() && patterns.iter().all(|p| image.tags.iter().any(|t| wildcard_match(p, t)))
            }
        }
    }

    /// The selected images this rule would expire.
    fn candidates<'a>(&self, mut selected: Vec<&'a ImageFacts>, now: EpochMillis) -> Vec<&'a ImageFacts> {
        let older_than = |days: u64, at: EpochMillis| now.saturating_sub(at) > (days as i64).saturating_mul(DAY_MILLIS);
        match self.count {
            CountRule::ImageCountMoreThan(n) => {
                selected.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then_with(|| a.digest.cmp(&b.digest)));
                selected.into_iter().skip(usize::try_from(n).unwrap_or(usize::MAX)).collect()
            }
            CountRule::SinceImagePushedDays(days) => {
                selected.into_iter().filter(|i| older_than(days, i.pushed_at)).collect()
            }
            CountRule::SinceImagePulledDays(days) => {
                selected.into_iter().filter(|i| older_than(days, i.last_pulled_at.unwrap_or(i.pushed_at))).collect()
            }
        }
    }
}

/// The digests `policy` expires among `images` at `now`.
pub fn expired_images(policy: &LifecyclePolicy, images: &[ImageFacts], now: EpochMillis) -> BTreeSet<String> {
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired = BTreeSet::new();
    for rule in &policy.rules {
        let selected: Vec<&ImageFacts> = images.iter().filter(|i| rule.selects(i)).collect();
        for image in rule.candidates(selected.clone(), now) {
            if !claimed.contains(image.digest.as_str()) {
                expired.insert(image.digest.clone());
            }
        }
        claimed.extend(selected.iter().map(|i| i.digest.as_str()));
    }
    expired
}

// ---------------------------------------------------------------------------------------------------------
// validation

/// The JSON type name ECR's schema validator reports.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn quoted_list(items: &[&str]) -> String {
    let q: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", q.join(","))
}

fn wrong_type(v: &Value, allowed: &str, at: &str) -> String {
    format!(
        "instance type ({}) does not match any allowed primitive type (allowed: [\"{allowed}\"]) at {at}",
        type_name(v)
    )
}

/// Checks an object's members against the allowed and required ones.
fn object<'a>(
    v: &'a Value,
    at: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<&'a serde_json::Map<String, Value>, String> {
    let Value::Object(map) = v else { return Err(wrong_type(v, "object", at)) };
    let extra: Vec<&str> = map.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if !extra.is_empty() {
        return Err(format!(
            "object instance has properties which are not allowed by the schema: {} at {at}",
            quoted_list(&extra)
        ));
    }
    let missing: Vec<&str> = required.iter().copied().filter(|k| !map.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(format!("object has missing required properties ({}) at {at}", quoted_list(&missing)));
    }
    Ok(map)
}

fn positive_integer(v: &Value, at: &str) -> Result<i64, String> {
    let n = v.as_i64().filter(|_| type_name(v) == "integer").ok_or_else(|| wrong_type(v, "integer", at))?;
    if n < 1 {
        return Err(format!("numeric instance is lower than the required minimum (minimum: 1, found: {n}) at {at}"));
    }
    Ok(n)
}

fn one_of<'a>(v: &'a Value, at: &str, values: &[&str]) -> Result<&'a str, String> {
    let s = v.as_str().ok_or_else(|| wrong_type(v, "string", at))?;
    if !values.contains(&s) {
        return Err(format!(
            "instance value (\"{s}\") not found in enum (possible values: {}) at {at}",
            quoted_list(values)
        ));
    }
    Ok(s)
}

fn string_list(v: &Value, at: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else { return Err(wrong_type(v, "array", at)) };
    if items.is_empty() {
        return Err(format!("array is too short: must have at least 1 elements but instance has 0 elements at {at}"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str().map(str::to_string).ok_or_else(|| wrong_type(item, "string", &format!("{at}/{i}")))
        })
        .collect()
}

fn parse_rule(v: &Value, at: &str) -> Result<Rule, String> {
    let rule = object(
        v,
        at,
        &["rulePriority", "description", "selection", "action"],
        &["rulePriority", "selection", "action"],
    )?;
    let priority = positive_integer(&rule["rulePriority"], &format!("{at}/rulePriority"))?;
    if let Some(d) = rule.get("description") {
        d.as_str().ok_or_else(|| wrong_type(d, "string", &format!("{at}/description")))?;
    }

    let sel_at = format!("{at}/selection");
    let sel = object(
        &rule["selection"],
        &sel_at,
        &["tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber"],
        &["tagStatus", "countType", "countNumber"],
    )?;
    let tag_status = one_of(&sel["tagStatus"], &format!("{sel_at}/tagStatus"), &["tagged", "untagged", "any"])?;
    let prefixes = sel.get("tagPrefixList").map(|v| string_list(v, &format!("{sel_at}/tagPrefixList"))).transpose()?;
    let patterns =
        sel.get("tagPatternList").map(|v| string_list(v, &format!("{sel_at}/tagPatternList"))).transpose()?;
    let selection = match (tag_status, prefixes, patterns) {
        ("tagged", Some(_), Some(_)) => {
            return Err(format!("tagPrefixList and tagPatternList cannot both be specified in a rule at {sel_at}"))
        }
        ("tagged", Some(p), None) => TagSelection::TaggedPrefixes(p),
        ("tagged", None, Some(p)) => {
            if let Some(bad) = p.iter().find(|p| p.matches('*').count() > MAX_WILDCARDS) {
                return Err(format!(
                    "tag pattern '{bad}' has more than {MAX_WILDCARDS} wildcards at {sel_at}/tagPatternList"
                ));
            }
            TagSelection::TaggedPatterns(p)
        }
        ("tagged", None, None) => {
            return Err(format!("tagPrefixList or tagPatternList is required when tagStatus is tagged at {sel_at}"))
        }
        (status, Some(_), _) | (status, _, Some(_)) => {
            return Err(format!(
                "tagPrefixList and tagPatternList can only be specified when tagStatus is tagged, not {status}, at {sel_at}"
            ))
        }
        ("untagged", None, None) => TagSelection::Untagged,
        _ => TagSelection::Any,
    };

    let count_type = one_of(
        &sel["countType"],
        &format!("{sel_at}/countType"),
        &["imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned"],
    )?;
    let number = positive_integer(&sel["countNumber"], &format!("{sel_at}/countNumber"))? as u64;
    let unit = sel.get("countUnit").map(|u| one_of(u, &format!("{sel_at}/countUnit"), &["days"])).transpose()?;
    let count = match (count_type, unit) {
        ("imageCountMoreThan", None) => CountRule::ImageCountMoreThan(number),
        ("imageCountMoreThan", Some(_)) => {
            return Err(format!("countUnit cannot be specified when countType is imageCountMoreThan at {sel_at}"))
        }
        (_, None) => return Err(format!("countUnit is required when countType is {count_type} at {sel_at}")),
        ("sinceImagePushed", Some(_)) => CountRule::SinceImagePushedDays(number),
        ("sinceImagePulled", Some(_)) => CountRule::SinceImagePulledDays(number),
        (other, Some(_)) => {
            return Err(format!(
                "countType {other} needs archived images, which this registry does not have, at {sel_at}/countType"
            ))
        }
    };

    let action_at = format!("{at}/action");
    let action = object(&rule["action"], &action_at, &["type", "targetStorageClass"], &["type"])?;
    match one_of(&action["type"], &format!("{action_at}/type"), &["expire", "transition"])? {
        "expire" if action.contains_key("targetStorageClass") => {
            return Err(format!("targetStorageClass can only be specified with action type transition at {action_at}"))
        }
        "expire" => {}
        _ => {
            return Err(format!(
                "action type transition (to the archive storage class) is not supported by this registry at {action_at}/type"
            ))
        }
    }
    Ok(Rule { priority, selection, count })
}

/// Parses and validates a lifecycle policy text as ECR does. The error is the detail ECR puts after
/// "Lifecycle policy validation failure: ".
pub fn parse_policy(text: &str) -> Result<LifecyclePolicy, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("the policy is not valid JSON: {e}"))?;
    let top = object(&doc, "/", &["rules"], &["rules"])?;
    let Value::Array(items) = &top["rules"] else { return Err(wrong_type(&top["rules"], "array", "/rules")) };
    if items.is_empty() {
        return Err("array is too short: must have at least 1 elements but instance has 0 elements at /rules".into());
    }
    let mut rules =
        items.iter().enumerate().map(|(i, r)| parse_rule(r, &format!("/rules/{i}"))).collect::<Result<Vec<_>, _>>()?;
    rules.sort_by_key(|r| r.priority);
    if let Some(w) = rules.windows(2).find(|w| w[0].priority == w[1].priority) {
        return Err(format!(
            "rulePriority {} is used by more than one rule; each rule needs a unique rulePriority",
            w[0].priority
        ));
    }
    if let Some(any) = rules.iter().find(|r| r.selection == TagSelection::Any) {
        if rules.last().is_some_and(|last| last.priority != any.priority) {
            return Err(format!(
                "the rule with tagStatus any (rulePriority {}) must have the highest rulePriority",
                any.priority
            ));
        }
    }
    if rules.iter().filter(|r| r.selection == TagSelection::Untagged).count() > 1 {
        return Err("only one rule may select untagged images".into());
    }
    for (i, a) in rules.iter().enumerate() {
        if let Some(mine) = tag_lists(a) {
            if let Some(b) = rules[i + 1..].iter().find(|b| tag_lists(b).as_ref() == Some(&mine)) {
                return Err(format!(
                    "rules {} and {} select the same tags; the set of tag prefixes and patterns of each rule must be unique",
                    a.priority, b.priority
                ));
            }
        }
    }
    Ok(LifecyclePolicy { rules })
}

/// The tag prefixes or patterns a tagged rule selects by (and which kind they are), as a set.
fn tag_lists(r: &Rule) -> Option<(bool, BTreeSet<&str>)> {
    match &r.selection {
        TagSelection::TaggedPrefixes(p) => Some((true, p.iter().map(String::as_str).collect())),
        TagSelection::TaggedPatterns(p) => Some((false, p.iter().map(String::as_str).collect())),
        _ => None,
    }
}

/// Validates `lifecyclePolicyText` into the `InvalidParameterException` ECR answers.
fn validate_policy_text(text: &str) -> Result<LifecyclePolicy, ApiError> {
    let chars = text.chars().count();
    if !(MIN_POLICY_CHARS..=MAX_POLICY_CHARS).contains(&chars) {
        return Err(invalid_parameter(
            "lifecyclePolicyText",
            format!("must have a length between {MIN_POLICY_CHARS} and {MAX_POLICY_CHARS}, not {chars}"),
        ));
    }
    parse_policy(text).map_err(|detail| {
        invalid_parameter("LifecyclePolicyText", format!("Lifecycle policy validation failure: {detail}"))
    })
}

// ---------------------------------------------------------------------------------------------------------
// applying policies

/// What one run of the lifecycle controller did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    pub repositories_evaluated: usize,
    pub images_expired: usize,
}

/// Evaluates the lifecycle policy of `repository` (if it has one) and deletes the images it expires, in one
/// transaction guarded by the revisions read (a concurrent push or policy change makes it start over).
/// Returns how many images were expired.
pub async fn apply_lifecycle_policy(state: &AppState, repository: &str) -> Result<usize, ApiError> {
    let store = state.store.as_ref();
    let key = keys::repository(repository);
    for _ in 0..32 {
        let Some((mut repo, rev)) = load::<StoredRepository>(store, &key).await? else { return Ok(0) };
        let Some(text) = repo.record.lifecycle_policy.clone() else { return Ok(0) };
        let policy = match parse_policy(&text) {
            Ok(p) => p,
            Err(detail) => {
                tracing::warn!(repository, "stored lifecycle policy no longer validates, not applied: {detail}");
                return Ok(0);
            }
        };
        let content = RepositoryContent::load(store, repository).await?;
        let dependants = content.dependants();
        let tags = content.tags_by_digest();
        let facts: Vec<ImageFacts> = content
            .images
            .values()
            .filter(|i| !dependants.contains_key(i.value.digest.as_str()))
            .map(|i| ImageFacts {
                digest: i.value.digest.clone(),
                tags: tags
                    .get(i.value.digest.as_str())
                    .map(|t| t.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                pushed_at: i.value.pushed_at,
                last_pulled_at: i.value.last_pulled_at,
            })
            .collect();
        let now = now_millis();
        let expired = expired_images(&policy, &facts, now);
        repo.lifecycle_evaluated_at = Some(now);
        let mut txn = Txn::new().when(&key, rev).put(&key, encode(&repo)?);
        for digest in &expired {
            txn = delete_image(txn, &content, digest);
        }
        match store.txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                if !expired.is_empty() {
                    tracing::info!(repository, count = expired.len(), "lifecycle policy expired images");
                }
                return Ok(expired.len());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!(
        "too many concurrent changes to repository {repository} to apply its lifecycle policy"
    )))
}

/// Applies the lifecycle policy of every repository that has one. A repository that fails is logged and
/// skipped; the run goes on with the others. Meant to run after each manifest push and periodically.
pub async fn apply_lifecycle_policies(state: &AppState) -> Result<LifecycleReport, ApiError> {
    let mut report = LifecycleReport::default();
    for (_, repo) in load_all::<StoredRepository>(state.store.as_ref(), keys::REPOSITORIES).await? {
        if repo.record.lifecycle_policy.is_none() {
            continue;
        }
        report.repositories_evaluated += 1;
        match apply_lifecycle_policy(state, &repo.record.name).await {
            Ok(n) => report.images_expired += n,
            Err(e) => tracing::warn!(repository = repo.record.name, "lifecycle policy not applied: {e}"),
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------------------
// handlers

fn policy_not_found(name: &str, registry: &str) -> ApiError {
    ApiError::client(
        "LifecyclePolicyNotFoundException",
        format!("Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry}'"),
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutLifecyclePolicyRequest {
    registry_id: Option<String>,
    repository_name: String,
    lifecycle_policy_text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLifecyclePolicyResponse {
    registry_id: String,
    repository_name: String,
    lifecycle_policy_text: String,
}

/// Stores the policy and applies it right away (ECR applies it within 24 hours).
pub async fn put_lifecycle_policy(
    ctx: &Ctx,
    req: PutLifecyclePolicyRequest,
) -> Result<PutLifecyclePolicyResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    load_repository(ctx, &req.repository_name, &registry).await?;
    validate_policy_text(&req.lifecycle_policy_text)?;
    let text = req.lifecycle_policy_text;
    update_repository(ctx, &req.repository_name, &registry, |r| {
        r.record.lifecycle_policy = Some(text.clone());
        r.record.lifecycle_policy_updated_at = Some(now_millis());
        Ok(())
    })
    .await?;
    if let Err(e) = apply_lifecycle_policy(&ctx.state, &req.repository_name).await {
        tracing::warn!(repository = req.repository_name, "lifecycle policy stored but not applied yet: {e}");
    }
    Ok(PutLifecyclePolicyResponse {
        registry_id: registry,
        repository_name: req.repository_name,
        lifecycle_policy_text: text,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecyclePolicyRequest {
    registry_id: Option<String>,
    repository_name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyResponse {
    registry_id: String,
    repository_name: String,
    lifecycle_policy_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evaluated_at: Option<Value>,
}

pub async fn get_lifecycle_policy(ctx: &Ctx, req: LifecyclePolicyRequest) -> Result<LifecyclePolicyResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let (repo, _) = load_repository(ctx, &req.repository_name, &registry).await?;
    let text = repo.record.lifecycle_policy.ok_or_else(|| policy_not_found(&req.repository_name, &registry))?;
    Ok(LifecyclePolicyResponse {
        registry_id: registry,
        repository_name: req.repository_name,
        lifecycle_policy_text: text,
        last_evaluated_at: repo.lifecycle_evaluated_at.map(super::timestamp),
    })
}

pub async fn delete_lifecycle_policy(
    ctx: &Ctx,
    req: LifecyclePolicyRequest,
) -> Result<LifecyclePolicyResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let mut removed: Option<(String, Option<EpochMillis>)> = None;
    update_repository(ctx, &req.repository_name, &registry, |r| {
        let text = r.record.lifecycle_policy.take().ok_or_else(|| policy_not_found(&req.repository_name, &registry))?;
        removed = Some((text, r.lifecycle_evaluated_at.take()));
        r.record.lifecycle_policy_updated_at = None;
        Ok(())
    })
    .await?;
    let (text, evaluated) = removed.ok_or_else(|| policy_not_found(&req.repository_name, &registry))?;
    Ok(LifecyclePolicyResponse {
        registry_id: registry,
        repository_name: req.repository_name,
        lifecycle_policy_text: text,
        last_evaluated_at: evaluated.map(super::timestamp),
    })
}

#[cfg(test)]
mod tests {
    use super::super::repositories::{create_repository, CreateRepositoryRequest};
    use super::super::testing::{digest, push, server};
    use super::*;
    use serde_json::json;

    const NOW: i64 = 100 * DAY_MILLIS;

    fn image(n: u32, days_ago: i64, tags: &[&str]) -> ImageFacts {
        ImageFacts {
            digest: digest(n),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: NOW - days_ago * DAY_MILLIS - i64::from(n),
            last_pulled_at: None,
        }
    }

    fn rule(priority: i64, selection: Value, action: Value) -> Value {
        json!({ "rulePriority": priority, "description": "r", "selection": selection, "action": action })
    }

    fn policy(rules: Vec<Value>) -> String {
        json!({ "rules": rules }).to_string()
    }

    fn expire() -> Value {
        json!({ "type": "expire" })
    }

    fn expired(rules: Vec<Value>, images: &[ImageFacts]) -> Vec<u32> {
        let p = parse_policy(&policy(rules)).unwrap();
        let out = expired_images(&p, images, NOW);
        images.iter().enumerate().filter(|(_, i)| out.contains(&i.digest)).map(|(n, _)| n as u32).collect()
    }

    #[test]
    fn wildcards() {
        for (p, t, want) in [
            ("prod", "prod", true),
            ("prod", "prod1", false),
            ("prod*", "prod1", true),
            ("prod*", "prod", true),
            ("*prod", "preprod", true),
            ("*", "", true),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("*test*1*2*3", "mytest-1-2-3", true),
            ("v*-rc", "v1.2-rc", true),
            ("v*-rc", "v1.2-rc1", false),
        ] {
            assert_eq!(wildcard_match(p, t), want, "{p} ~ {t}");
        }
    }

    /// (what, rules, images, the positions in `images` of those expected to expire)
    type EvaluationCase = (&'static str, Vec<Value>, Vec<ImageFacts>, Vec<u32>);

    #[test]
    fn evaluation_table() {
        let untagged_days = |n: i64| json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": n});
        let keep =
            |status: &str, n: i64| json!({"tagStatus": status, "countType": "imageCountMoreThan", "countNumber": n});
        let keep_prefix = |prefixes: &[&str], n: i64| json!({"tagStatus": "tagged", "tagPrefixList": prefixes, "countType": "imageCountMoreThan", "countNumber": n});
        let keep_pattern = |patterns: &[&str], n: i64| json!({"tagStatus": "tagged", "tagPatternList": patterns, "countType": "imageCountMoreThan", "countNumber": n});
        let cases: Vec<EvaluationCase> = vec![
            (
                "untagged older than 7 days",
                vec![rule(1, untagged_days(7), expire())],
                vec![image(0, 10, &[]), image(1, 3, &[]), image(2, 30, &["v1"]), image(3, 8, &[])],
                vec![0, 3],
            ),
            (
                "exactly N days old is not older than N days",
                vec![rule(1, untagged_days(7), expire())],
                vec![ImageFacts { pushed_at: NOW - 7 * DAY_MILLIS, ..image(0, 0, &[]) }],
                vec![],
            ),
            (
                "keep the newest 2 untagged",
                vec![rule(1, keep("untagged", 2), expire())],
                vec![image(0, 5, &[]), image(1, 4, &[]), image(2, 3, &[]), image(3, 2, &[]), image(4, 1, &["t"])],
                vec![0, 1],
            ),
            (
                "keep the newest 1 of any",
                vec![rule(1, keep("any", 1), expire())],
                vec![image(0, 5, &["a"]), image(1, 4, &[]), image(2, 3, &["b"])],
                vec![0, 1],
            ),
            (
                "prefix rule only counts images with the prefix",
                vec![rule(1, keep_prefix(&["prod"], 1), expire())],
                vec![image(0, 5, &["prod-1"]), image(1, 4, &["dev-1"]), image(2, 3, &["prod-2"]), image(3, 2, &[])],
                vec![0],
            ),
            (
                "every prefix must match some tag",
                vec![rule(1, keep_prefix(&["beta", "prod"], 1), expire())],
                vec![image(0, 5, &["beta-1", "prod-1"]), image(1, 4, &["beta-2"]), image(2, 3, &["beta-3", "prod-3"])],
                vec![0],
            ),
            (
                "patterns",
                vec![rule(1, keep_pattern(&["v*-rc*"], 1), expire())],
                vec![
                    image(0, 5, &["v1-rc1"]),
                    image(1, 4, &["v1"]),
                    image(2, 3, &["v2-rc1"]),
                    image(3, 2, &["v2-rc2"]),
                ],
                vec![0, 2],
            ),
            (
                // AWS's "filtering on multiple rules", example A.
                "an image selected by a higher rule is never expired by a lower one",
                vec![rule(1, keep_prefix(&["prod"], 1), expire()), rule(2, keep_prefix(&["beta"], 1), expire())],
                vec![image(0, 10, &["beta-1", "prod-1"]), image(1, 9, &["beta-2", "prod-2"]), image(2, 8, &["beta-3"])],
                vec![0],
            ),
            (
                // Example B.
                "images expired by a higher rule still count for lower ones",
                vec![
                    rule(1, keep_prefix(&["beta", "prod"], 1), expire()),
                    rule(2, keep_prefix(&["beta"], 1), expire()),
                ],
                vec![
                    image(0, 10, &["beta-1", "prod-1"]),
                    image(1, 9, &["beta-2", "prod-2"]),
                    image(2, 8, &["beta-3", "prod-3"]),
                ],
                vec![0, 1],
            ),
            (
                "priority order, not document order",
                vec![rule(5, keep("any", 1), expire()), rule(2, keep_prefix(&["keep"], 100), expire())],
                vec![image(0, 10, &["keep-me"]), image(1, 9, &[]), image(2, 8, &["other"])],
                vec![1],
            ),
            (
                "tagged rules never touch untagged images and the reverse",
                vec![rule(1, keep_prefix(&["x"], 1), expire()), rule(2, untagged_days(1), expire())],
                vec![image(0, 10, &[]), image(1, 9, &["x1"]), image(2, 8, &["x2"]), image(3, 0, &[])],
                vec![0, 1],
            ),
            (
                "since pulled uses the push time of never-pulled images",
                vec![rule(
                    1,
                    json!({"tagStatus": "any", "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 5}),
                    expire(),
                )],
                vec![
                    ImageFacts { last_pulled_at: Some(NOW - DAY_MILLIS), ..image(0, 10, &["a"]) },
                    image(1, 10, &["b"]),
                    image(2, 1, &[]),
                ],
                vec![1],
            ),
        ];
        for (name, rules, images, want) in cases {
            assert_eq!(expired(rules, &images), want, "{name}");
        }
    }

    /// `value` with member `key` set to `member`: builds policy variants.
    fn set(mut value: Value, key: &str, member: Value) -> Value {
        value[key] = member;
        value
    }

    fn unset(mut value: Value, key: &str) -> Value {
        value.as_object_mut().unwrap().remove(key);
        value
    }

    #[test]
    fn policy_validation_table() {
        let sel = json!({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1});
        let with = |key: &str, member: Value| set(sel.clone(), key, member);
        let tagged = with("tagStatus", json!("tagged"));
        let since = |count_type: &str, unit: &str| set(with("countType", json!(count_type)), "countUnit", json!(unit));
        let one = |selection: Value| policy(vec![rule(1, selection, expire())]);
        let cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid JSON"),
            ("[]".into(), "instance type (array)"),
            (json!({"rules": []}).to_string(), "array is too short"),
            (json!({"rules": [], "x": 1}).to_string(), "not allowed by the schema: [\"x\"]"),
            (json!({}).to_string(), "missing required properties ([\"rules\"])"),
            (policy(vec![unset(rule(1, sel.clone(), expire()), "rulePriority")]), "([\"rulePriority\"]) at /rules/0"),
            (policy(vec![rule(0, sel.clone(), expire())]), "minimum: 1, found: 0"),
            (policy(vec![set(rule(1, sel.clone(), expire()), "rulePriority", json!("1"))]), "instance type (string)"),
            (policy(vec![set(rule(1, sel.clone(), expire()), "description", json!(5))]), "/rules/0/description"),
            (one(with("tagStatus", json!("some"))), "instance value (\"some\") not found in enum"),
            (one(unset(sel.clone(), "countNumber")), "([\"countNumber\"])"),
            (one(with("countNumber", json!(0))), "minimum: 1, found: 0"),
            (one(with("countNumber", json!(1.5))), "instance type (number)"),
            (one(with("countUnit", json!("days"))), "countUnit cannot be specified"),
            (one(with("countType", json!("sinceImagePushed"))), "countUnit is required"),
            (one(since("sinceImagePushed", "hours")), "(\"hours\")"),
            (one(since("sinceImageTransitioned", "days")), "sinceImageTransitioned"),
            (one(with("tagPrefixList", json!(["a"]))), "only be specified when tagStatus is tagged"),
            (one(tagged.clone()), "tagPrefixList or tagPatternList is required"),
            (one(set(tagged.clone(), "tagPrefixList", json!([]))), "array is too short"),
            (one(set(tagged.clone(), "tagPrefixList", json!([1]))), "/tagPrefixList/0"),
            (one(set(tagged.clone(), "tagPatternList", json!(["a*b*c*d*e*f"]))), "more than 4 wildcards"),
            (
                one(set(set(tagged.clone(), "tagPatternList", json!(["a"])), "tagPrefixList", json!(["a"]))),
                "cannot both be specified",
            ),
            (one(with("bogus", json!(1))), "[\"bogus\"]"),
            (policy(vec![rule(1, sel.clone(), json!({"type": "delete"}))]), "(\"delete\")"),
            (
                policy(vec![rule(1, sel.clone(), json!({"type": "transition", "targetStorageClass": "archive"}))]),
                "transition",
            ),
            (
                policy(vec![rule(1, sel.clone(), json!({"type": "expire", "targetStorageClass": null}))]),
                "targetStorageClass",
            ),
            (policy(vec![rule(1, sel.clone(), json!({}))]), "([\"type\"])"),
            (
                policy(vec![rule(1, sel.clone(), expire()), rule(1, with("tagStatus", json!("any")), expire())]),
                "rulePriority 1 is used by more than one rule",
            ),
            (
                policy(vec![rule(1, with("tagStatus", json!("any")), expire()), rule(2, sel.clone(), expire())]),
                "must have the highest rulePriority",
            ),
            (
                policy(vec![rule(1, sel.clone(), expire()), rule(2, sel.clone(), expire())]),
                "only one rule may select untagged",
            ),
            (
                policy(vec![
                    rule(1, set(tagged.clone(), "tagPrefixList", json!(["a", "b"])), expire()),
                    rule(
                        2,
                        set(set(tagged.clone(), "tagPrefixList", json!(["b", "a"])), "countNumber", json!(5)),
                        expire(),
                    ),
                ]),
                "select the same tags",
            ),
        ];
        for (text, want) in cases {
            let e = parse_policy(&text).expect_err(&text);
            assert!(e.contains(want), "{text}\n  error: {e}\n  wanted: {want}");
        }
        // Valid policies, including ones real tools write.
        for ok in [
            policy(vec![rule(1, sel.clone(), expire())]),
            policy(vec![
                rule(
                    1,
                    json!({"tagStatus": "tagged", "tagPatternList": ["prod*"], "countType": "imageCountMoreThan", "countNumber": 10}),
                    expire(),
                ),
                rule(
                    2,
                    json!({"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}),
                    expire(),
                ),
                rule(
                    3,
                    json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1}),
                    expire(),
                ),
                rule(10, json!({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100}), expire()),
            ]),
        ] {
            parse_policy(&ok).unwrap();
        }
    }

    #[test]
    fn policy_text_errors_are_ecr_shaped() {
        let e = validate_policy_text(&format!("{{\"rules\": []{}}}", " ".repeat(100))).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(
            e.message.starts_with(
                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "
            ),
            "{}",
            e.message
        );
        let e = validate_policy_text("{}").unwrap_err();
        assert!(e.message.contains("between 100 and 30720"), "{}", e.message);
    }

    #[tokio::test]
    async fn put_applies_and_get_delete_round_trip() {
        let s = server();
        let ctx = &s.ctx;
        let req: CreateRepositoryRequest = serde_json::from_value(json!({ "repositoryName": "web" })).unwrap();
        create_repository(ctx, req).await.unwrap();
        let now = now_millis();
        let old = push(ctx, "web", 1, now - 10 * DAY_MILLIS, &[]).await;
        let fresh = push(ctx, "web", 2, now - DAY_MILLIS, &[]).await;
        let tagged = push(ctx, "web", 3, now - 10 * DAY_MILLIS, &["v1"]).await;

        let get = || LifecyclePolicyRequest { registry_id: None, repository_name: "web".into() };
        assert_eq!(get_lifecycle_policy(ctx, get()).await.unwrap_err().code, "LifecyclePolicyNotFoundException");
        assert_eq!(delete_lifecycle_policy(ctx, get()).await.unwrap_err().code, "LifecyclePolicyNotFoundException");

        let text = policy(vec![rule(
            1,
            json!({"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7}),
            expire(),
        )]);
        let put = |t: &str| PutLifecyclePolicyRequest {
            registry_id: None,
            repository_name: "web".into(),
            lifecycle_policy_text: t.into(),
        };
        put_lifecycle_policy(ctx, put(&text)).await.unwrap();
        let content = RepositoryContent::load(ctx.store(), "web").await.unwrap();
        let left: BTreeSet<String> = content.images.keys().cloned().collect();
        assert_eq!(left, [fresh.clone(), tagged.clone()].into_iter().collect(), "{old} expired");

        let got = get_lifecycle_policy(ctx, get()).await.unwrap();
        assert_eq!(got.lifecycle_policy_text, text);
        assert!(got.last_evaluated_at.is_some());

        // The controller applies it again later, e.g. after a push.
        push(ctx, "web", 4, now - 9 * DAY_MILLIS, &[]).await;
        let report = apply_lifecycle_policies(&ctx.state).await.unwrap();
        assert_eq!(report, LifecycleReport { repositories_evaluated: 1, images_expired: 1 });

        let e = put_lifecycle_policy(ctx, put(&policy(vec![rule(1, json!({}), expire())]))).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert_eq!(
            get_lifecycle_policy(ctx, get()).await.unwrap().lifecycle_policy_text,
            text,
            "a refused policy changes nothing"
        );

        let deleted = delete_lifecycle_policy(ctx, get()).await.unwrap();
        assert_eq!(deleted.lifecycle_policy_text, text);
        assert_eq!(get_lifecycle_policy(ctx, get()).await.unwrap_err().code, "LifecyclePolicyNotFoundException");
        let mut missing = put(&text);
        missing.repository_name = "nope".into();
        assert_eq!(put_lifecycle_policy(ctx, missing).await.unwrap_err().code, "RepositoryNotFoundException");
    }
}
