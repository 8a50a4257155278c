//! CreateRepository, DescribeRepositories, DeleteRepository, PutImageTagMutability,
//! PutImageScanningConfiguration.

use super::{
    invalid_parameter, load_repository, max_results, registry_id, repository_not_found, scan_versioned, timestamp,
    validate_repository_name, validate_tags, EncryptionConfiguration, EncryptionType, StoredRepository, Tag,
};
use crate::context::{now_millis, Ctx};
use crate::records::{encode, load, load_all, paginate, store_error, update};
use serde::{Deserialize, Serialize};
use skiff_model::ecr::{keys, RepositoryRecord, TagMutability};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};
use std::collections::BTreeMap;

/// `Repository` as ECR renders it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    repository_arn: String,
    registry_id: String,
    repository_name: String,
    repository_uri: String,
    created_at: serde_json::Value,
    image_tag_mutability: TagMutability,
    image_scanning_configuration: ImageScanningConfiguration,
    encryption_configuration: EncryptionConfiguration,
}

impl Repository {
    pub fn render(ctx: &Ctx, repo: &StoredRepository) -> Repository {
        let r = &repo.record;
        Repository {
            repository_arn: r.arn.clone(),
            registry_id: r.registry_id.clone(),
            repository_name: r.name.clone(),
            repository_uri: ctx.state.registry_hosts.repository_uri(&r.name),
            created_at: timestamp(r.created_at),
            image_tag_mutability: r.image_tag_mutability,
            image_scanning_configuration: ImageScanningConfiguration { scan_on_push: Some(r.scan_on_push) },
            encryption_configuration: repo.encryption_configuration.clone().unwrap_or(EncryptionConfiguration::DEFAULT),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageScanningConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scan_on_push: Option<bool>,
}

/// `ImageTagMutabilityExclusionFilter`: accepted by the decoder so the member is never refused as unknown,
/// refused by [`tag_mutability`] because exclusions are not implemented.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageTagMutabilityExclusionFilter {
    #[allow(dead_code)]
    filter_type: String,
    #[allow(dead_code)]
    filter: String,
}

/// The `imageTagMutability` Skiff enforces. The `*_WITH_EXCLUSION` settings and their filters need the
/// registry to match tags against the filters on push, which it does not do, so they are refused rather than
/// stored and silently ignored.
fn tag_mutability(
    value: Option<&str>,
    exclusions: Option<&[ImageTagMutabilityExclusionFilter]>,
) -> Result<TagMutability, ApiError> {
    let mutability = match value {
        None | Some("MUTABLE") => TagMutability::Mutable,
        Some("IMMUTABLE") => TagMutability::Immutable,
        Some(other @ ("IMMUTABLE_WITH_EXCLUSION" | "MUTABLE_WITH_EXCLUSION")) => {
            return Err(invalid_parameter(
                "imageTagMutability",
                format!("'{other}' is not supported by this registry: use MUTABLE or IMMUTABLE"),
            ))
        }
        Some(other) => {
            return Err(invalid_parameter(
                "imageTagMutability",
                format!("'{other}' is not one of MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION"),
            ))
        }
    };
    if exclusions.is_some() {
        return Err(invalid_parameter(
            "imageTagMutabilityExclusionFilters",
            "exclusion filters need IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, which this registry does not support",
        ));
    }
    Ok(mutability)
}

fn validate_encryption(c: &EncryptionConfiguration) -> Result<(), ApiError> {
    match (&c.encryption_type, &c.kms_key) {
        (EncryptionType::Aes256, Some(_)) => Err(invalid_parameter(
            "encryptionConfiguration.kmsKey",
            "a KMS key can only be given with encryptionType KMS or KMS_DSSE",
        )),
        (_, Some(k)) if k.is_empty() || k.len() > 2048 => {
            Err(invalid_parameter("encryptionConfiguration.kmsKey", "must have a length between 1 and 2048"))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRepositoryRequest {
    registry_id: Option<String>,
    repository_name: String,
    tags: Option<Vec<Tag>>,
    image_tag_mutability: Option<String>,
    image_tag_mutability_exclusion_filters: Option<Vec<ImageTagMutabilityExclusionFilter>>,
    image_scanning_configuration: Option<ImageScanningConfiguration>,
    encryption_configuration: Option<EncryptionConfiguration>,
}

#[derive(Debug, Serialize)]
pub struct RepositoryResponse {
    repository: Repository,
}

pub async fn create_repository(ctx: &Ctx, req: CreateRepositoryRequest) -> Result<RepositoryResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let name = req.repository_name;
    validate_repository_name(&name)?;
    let mutability =
        tag_mutability(req.image_tag_mutability.as_deref(), req.image_tag_mutability_exclusion_filters.as_deref())?;
    let tags: Vec<skiff_model::tag::Tag> = req.tags.unwrap_or_default().into_iter().map(Into::into).collect();
    validate_tags(&tags)?;
    let encryption = req.encryption_configuration.unwrap_or(EncryptionConfiguration::DEFAULT);
    validate_encryption(&encryption)?;
    let repo = StoredRepository {
        record: RepositoryRecord {
            arn: format!("arn:aws:ecr:{}:{}:repository/{name}", ctx.scope().region, registry),
            name: name.clone(),
            registry_id: registry.clone(),
            created_at: now_millis(),
            image_tag_mutability: mutability,
            scan_on_push: req.image_scanning_configuration.and_then(|c| c.scan_on_push).unwrap_or(false),
            tags,
            lifecycle_policy: None,
            lifecycle_policy_updated_at: None,
        },
        encryption_configuration: Some(encryption),
        lifecycle_evaluated_at: None,
    };
    let key = keys::repository(&name);
    match ctx.store().txn(Txn::new().when(&key, 0).put(&key, encode(&repo)?)).await.map_err(store_error)? {
        TxnOutcome::Committed(_) => Ok(RepositoryResponse { repository: Repository::render(ctx, &repo) }),
        TxnOutcome::Conflict => Err(ApiError::client(
            "RepositoryAlreadyExistsException",
            format!("The repository with name '{name}' already exists in the registry with id '{registry}'"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeRepositoriesRequest {
    registry_id: Option<String>,
    repository_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeRepositoriesResponse {
    repositories: Vec<Repository>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn describe_repositories(
    ctx: &Ctx,
    req: DescribeRepositoriesRequest,
) -> Result<DescribeRepositoriesResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let max = max_results(req.max_results)?;
    if let Some(names) = req.repository_names {
        if names.is_empty() || names.len() > 100 {
            return Err(invalid_parameter("repositoryNames", "must name between 1 and 100 repositories"));
        }
        if req.next_token.is_some() || req.max_results.is_some() {
            return Err(ApiError::invalid_parameter(
                "nextToken and maxResults cannot be used when repositories are named with repositoryNames",
            ));
        }
        let mut repositories = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            let (repo, _) = load_repository(ctx, &name, &registry).await?;
            repositories.push(Repository::render(ctx, &repo));
        }
        return Ok(DescribeRepositoriesResponse { repositories, next_token: None });
    }
    let all: BTreeMap<String, StoredRepository> = load_all::<StoredRepository>(ctx.store(), keys::REPOSITORIES)
        .await?
        .into_iter()
        .map(|(_, r)| (r.record.name.clone(), r))
        .collect();
    let (page, next_token) = paginate(all.keys().cloned().collect(), req.next_token.as_deref(), max, false)?;
    let repositories = page.iter().filter_map(|n| all.get(n)).map(|r| Repository::render(ctx, r)).collect();
    Ok(DescribeRepositoriesResponse { repositories, next_token })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteRepositoryRequest {
    registry_id: Option<String>,
    repository_name: String,
    force: Option<bool>,
}

/// The keys of everything a repository holds besides its record: images, tags, blob links.
fn content_prefixes(name: &str) -> [String; 3] {
    [keys::images_of(name), keys::tags_of(name), keys::blobs_of(name)]
}

pub async fn delete_repository(ctx: &Ctx, req: DeleteRepositoryRequest) -> Result<RepositoryResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let name = req.repository_name;
    let force = req.force.unwrap_or(false);
    let key = keys::repository(&name);
    for _ in 0..32 {
        let (repo, rev) = load_repository(ctx, &name, &registry).await?;
        let mut txn = Txn::new().when(&key, rev).delete(&key);
        let images = scan_versioned::<serde_json::Value>(ctx.store(), &keys::images_of(&name)).await?;
        if !images.is_empty() && !force {
            return Err(ApiError::client(
                "RepositoryNotEmptyException",
                format!(
                    "The repository with name '{name}' in registry with id '{registry}' cannot be deleted because it \
                     still contains images"
                ),
            ));
        }
        if force {
            for prefix in content_prefixes(&name) {
                for item in scan_versioned::<serde_json::Value>(ctx.store(), &prefix).await? {
                    txn = txn.when(&item.key, item.revision).delete(&item.key);
                }
            }
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                sweep_deleted_repository(ctx, &name).await?;
                return Ok(RepositoryResponse { repository: Repository::render(ctx, &repo) });
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes to repository {name}; retry the call")))
}

/// Once the repository record is gone (and unless a new repository of that name already exists), lets the
/// registry remove what a push may have written meanwhile and cancel the repository's upload sessions. The
/// delete has been acknowledged by then, so a failure here is logged, not reported.
async fn sweep_deleted_repository(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    if load::<serde_json::Value>(ctx.store(), &keys::repository(name)).await?.is_some() {
        return Ok(());
    }
    if let Err(e) = ctx.state.registry.delete_repository_contents(name).await {
        tracing::warn!(repository = name, "leftovers of a deleted repository not removed: {e}");
    }
    Ok(())
}

/// Applies `change` to an existing repository.
pub async fn update_repository(
    ctx: &Ctx,
    name: &str,
    registry: &str,
    change: impl FnMut(&mut StoredRepository) -> Result<(), ApiError>,
) -> Result<StoredRepository, ApiError> {
    validate_repository_name(name)?;
    update(ctx.store(), &keys::repository(name), || repository_not_found(name, registry), change).await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutImageTagMutabilityRequest {
    registry_id: Option<String>,
    repository_name: String,
    image_tag_mutability: String,
    image_tag_mutability_exclusion_filters: Option<Vec<ImageTagMutabilityExclusionFilter>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageTagMutabilityResponse {
    registry_id: String,
    repository_name: String,
    image_tag_mutability: TagMutability,
}

pub async fn put_image_tag_mutability(
    ctx: &Ctx,
    req: PutImageTagMutabilityRequest,
) -> Result<PutImageTagMutabilityResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let mutability =
        tag_mutability(Some(&req.image_tag_mutability), req.image_tag_mutability_exclusion_filters.as_deref())?;
    let repo = update_repository(ctx, &req.repository_name, &registry, |r| {
        r.record.image_tag_mutability = mutability;
        Ok(())
    })
    .await?;
    Ok(PutImageTagMutabilityResponse {
        registry_id: registry,
        repository_name: repo.record.name,
        image_tag_mutability: repo.record.image_tag_mutability,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutImageScanningConfigurationRequest {
    registry_id: Option<String>,
    repository_name: String,
    image_scanning_configuration: ImageScanningConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageScanningConfigurationResponse {
    registry_id: String,
    repository_name: String,
    image_scanning_configuration: ImageScanningConfiguration,
}

pub async fn put_image_scanning_configuration(
    ctx: &Ctx,
    req: PutImageScanningConfigurationRequest,
) -> Result<PutImageScanningConfigurationResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let scan_on_push = req.image_scanning_configuration.scan_on_push.unwrap_or(false);
    let repo = update_repository(ctx, &req.repository_name, &registry, |r| {
        r.record.scan_on_push = scan_on_push;
        Ok(())
    })
    .await?;
    Ok(PutImageScanningConfigurationResponse {
        registry_id: registry,
        repository_name: repo.record.name,
        image_scanning_configuration: ImageScanningConfiguration { scan_on_push: Some(repo.record.scan_on_push) },
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{push, server, ACCOUNT};
    use super::*;

    fn create(name: &str) -> CreateRepositoryRequest {
        serde_json::from_value(serde_json::json!({ "repositoryName": name })).unwrap()
    }

    #[tokio::test]
    async fn create_describe_delete() {
        let s = server();
        let ctx = &s.ctx;
        let out = create_repository(ctx, create("team/web")).await.unwrap();
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["repository"]["repositoryArn"], format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/web"));
        assert_eq!(json["repository"]["repositoryUri"], "127.0.0.1:9400/team/web");
        assert_eq!(json["repository"]["imageTagMutability"], "MUTABLE");
        assert_eq!(json["repository"]["imageScanningConfiguration"], serde_json::json!({"scanOnPush": false}));
        assert_eq!(json["repository"]["encryptionConfiguration"], serde_json::json!({"encryptionType": "AES256"}));
        assert!(json["repository"]["createdAt"].is_number());

        let e = create_repository(ctx, create("team/web")).await.unwrap_err();
        assert_eq!(e.code, "RepositoryAlreadyExistsException");

        let d: DescribeRepositoriesRequest =
            serde_json::from_value(serde_json::json!({"repositoryNames": ["team/web", "nope"]})).unwrap();
        let e = describe_repositories(ctx, d).await.unwrap_err();
        assert_eq!(e.code, "RepositoryNotFoundException");
        assert!(e.message.contains("'nope'"), "{}", e.message);

        push(ctx, "team/web", 1, 1000, &["v1"]).await;
        let del = |force: bool| DeleteRepositoryRequest {
            registry_id: None,
            repository_name: "team/web".into(),
            force: Some(force),
        };
        assert_eq!(delete_repository(ctx, del(false)).await.unwrap_err().code, "RepositoryNotEmptyException");
        delete_repository(ctx, del(true)).await.unwrap();
        for prefix in content_prefixes("team/web") {
            assert!(ctx.store().scan(&prefix, None, 10).await.unwrap().items.is_empty(), "{prefix}");
        }
        assert_eq!(delete_repository(ctx, del(true)).await.unwrap_err().code, "RepositoryNotFoundException");
    }

    #[tokio::test]
    async fn refused_inputs() {
        let s = server();
        let ctx = &s.ctx;
        let cases = [
            (serde_json::json!({"repositoryName": "Web"}), "InvalidParameterException", "repositoryName"),
            (serde_json::json!({"repositoryName": "a/../b"}), "InvalidParameterException", "repositoryName"),
            (
                serde_json::json!({"repositoryName": "web", "registryId": "999999999999"}),
                "InvalidParameterException",
                "999999999999",
            ),
            (
                serde_json::json!({"repositoryName": "web", "registryId": "12"}),
                "InvalidParameterException",
                "[0-9]{12}",
            ),
            (
                serde_json::json!({"repositoryName": "web", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}),
                "InvalidParameterException",
                "IMMUTABLE_WITH_EXCLUSION",
            ),
            (
                serde_json::json!({"repositoryName": "web", "imageTagMutability": "SOMETIMES"}),
                "InvalidParameterException",
                "SOMETIMES",
            ),
            (
                serde_json::json!({"repositoryName": "web", "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": "k"}}),
                "InvalidParameterException",
                "kmsKey",
            ),
            (
                serde_json::json!({"repositoryName": "web", "tags": [{"Key": "aws:x", "Value": "v"}]}),
                "InvalidTagParameterException",
                "aws:",
            ),
            (
                serde_json::json!({"repositoryName": "web", "tags": (0..51).map(|i| serde_json::json!({"Key": format!("k{i}"), "Value": ""})).collect::<Vec<_>>()}),
                "TooManyTagsException",
                "50",
            ),
        ];
        for (input, code, needle) in cases {
            let req: CreateRepositoryRequest = serde_json::from_value(input.clone()).unwrap();
            let e = create_repository(ctx, req).await.unwrap_err();
            assert_eq!(e.code, code, "{input}");
            assert!(e.message.contains(needle), "{input}: {}", e.message);
        }
        assert!(load::<serde_json::Value>(ctx.store(), &keys::repository("web")).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn describe_pages_by_name_and_settings_change() {
        let s = server();
        let ctx = &s.ctx;
        for n in ["c-repo", "a-repo", "b/x", "b-repo"] {
            create_repository(ctx, create(n)).await.unwrap();
        }
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let req = DescribeRepositoriesRequest {
                registry_id: Some(ACCOUNT.into()),
                repository_names: None,
                next_token: token.take(),
                max_results: Some(3),
            };
            let out = describe_repositories(ctx, req).await.unwrap();
            names.extend(out.repositories.into_iter().map(|r| r.repository_name));
            match out.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(names, ["a-repo", "b-repo", "b/x", "c-repo"]);

        let req: PutImageTagMutabilityRequest =
            serde_json::from_value(serde_json::json!({"repositoryName": "a-repo", "imageTagMutability": "IMMUTABLE"}))
                .unwrap();
        put_image_tag_mutability(ctx, req).await.unwrap();
        let (repo, _) = load_repository(ctx, "a-repo", ACCOUNT).await.unwrap();
        assert_eq!(repo.record.image_tag_mutability, TagMutability::Immutable);
        let req: PutImageTagMutabilityRequest =
            serde_json::from_value(serde_json::json!({"repositoryName": "zz", "imageTagMutability": "MUTABLE"}))
                .unwrap();
        assert_eq!(put_image_tag_mutability(ctx, req).await.unwrap_err().code, "RepositoryNotFoundException");
    }

    #[test]
    fn stored_repositories_read_as_plain_records() {
        let repo = StoredRepository {
            record: RepositoryRecord {
                name: "web".into(),
                arn: "arn".into(),
                registry_id: ACCOUNT.into(),
                created_at: 1,
                image_tag_mutability: TagMutability::Immutable,
                scan_on_push: true,
                tags: vec![],
                lifecycle_policy: None,
                lifecycle_policy_updated_at: None,
            },
            encryption_configuration: Some(EncryptionConfiguration {
                encryption_type: EncryptionType::Kms,
                kms_key: Some("alias/k".into()),
            }),
            lifecycle_evaluated_at: Some(5),
        };
        let bytes = serde_json::to_vec(&repo).unwrap();
        let plain: RepositoryRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(plain, repo.record);
        let back: StoredRepository = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.encryption_configuration, repo.encryption_configuration);
        assert_eq!(back.lifecycle_evaluated_at, Some(5));
        // A record written by someone else (no ECR-only members) reads with the defaults.
        let back: StoredRepository = serde_json::from_slice(&serde_json::to_vec(&repo.record).unwrap()).unwrap();
        assert_eq!(back.encryption_configuration, None);
    }
}
