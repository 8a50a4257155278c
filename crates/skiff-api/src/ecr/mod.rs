//! ECR (AWS JSON 1.1): repositories, images, lifecycle policies, registry tokens and tags. Each submodule
//! holds the typed input and output of its operations and the handlers. Repositories live in the store as
//! `RepositoryRecord`s (`skiff_model::ecr::keys`); images, tags and blob links are written by the registry
//! on push and read, deleted and expired here.

pub mod auth;
pub mod images;
pub mod lifecycle;
pub mod repositories;
pub mod tags;

use crate::context::Ctx;
use crate::records::{load, store_error};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use skiff_model::ecr::{is_valid_repository_name, keys, RepositoryRecord};
use skiff_proto::timestamp::EpochMillis;
use skiff_proto::ApiError;
use skiff_store::Store;

/// A repository as stored: the shared `RepositoryRecord` (which the registry reads) and the members only the
/// ECR API uses. The extra members sit beside the record's own in the same JSON object, so readers of a
/// plain `RepositoryRecord` ignore them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRepository {
    #[serde(flatten)]
    pub record: RepositoryRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_configuration: Option<EncryptionConfiguration>,
    /// When the lifecycle policy last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_evaluated_at: Option<EpochMillis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncryptionType {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
    #[serde(rename = "KMS_DSSE")]
    KmsDsse,
}

/// `EncryptionConfiguration`: kept and echoed; Skiff's blob store does not encrypt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionConfiguration {
    pub encryption_type: EncryptionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl EncryptionConfiguration {
    pub const DEFAULT: EncryptionConfiguration =
        EncryptionConfiguration { encryption_type: EncryptionType::Aes256, kms_key: None };
}

/// An ECR tag. ECR's `Tag` shape capitalises its members (`Key`, `Value`), unlike ECS's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

impl From<Tag> for skiff_model::tag::Tag {
    fn from(t: Tag) -> Self {
        skiff_model::tag::Tag::new(t.key, t.value)
    }
}

impl From<skiff_model::tag::Tag> for Tag {
    fn from(t: skiff_model::tag::Tag) -> Self {
        Tag { key: t.key, value: t.value }
    }
}

/// Validates tags as ECR does: more than 50 is `TooManyTagsException`, any other fault (key or value length,
/// characters, the reserved `aws:` prefix, duplicate keys) is `InvalidTagParameterException`.
pub fn validate_tags(tags: &[skiff_model::tag::Tag]) -> Result<(), ApiError> {
    if tags.len() > skiff_model::tag::MAX_TAGS {
        return Err(ApiError::client(
            "TooManyTagsException",
            format!(
                "a repository can have at most {} tags, {} given or resulting",
                skiff_model::tag::MAX_TAGS,
                tags.len()
            ),
        ));
    }
    skiff_model::tag::validate_tags(tags).map_err(|e| ApiError::client("InvalidTagParameterException", e.message))
}

/// `ImageIdentifier`: an image by tag, by digest or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageIdentifier {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

/// ECR's wording for a member that fails a constraint.
pub fn invalid_parameter(member: &str, constraint: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_parameter(format!("Invalid parameter at '{member}' failed to satisfy constraint: '{constraint}'"))
}

pub fn repository_not_found(name: &str, registry_id: &str) -> ApiError {
    ApiError::client(
        "RepositoryNotFoundException",
        format!("The repository with name '{name}' does not exist in the registry with id '{registry_id}'"),
    )
}

/// The registry an operation addresses: `registryId` when given (it must be 12 digits, and this server is
/// the registry of one account), else the caller's account.
pub fn registry_id(ctx: &Ctx, given: Option<&str>) -> Result<String, ApiError> {
    let account = &ctx.scope().account;
    match given {
        None => Ok(account.clone()),
        Some(id) if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) => {
            Err(invalid_parameter("registryId", "must satisfy regular expression '[0-9]{12}'"))
        }
        Some(id) if id == account => Ok(id.to_string()),
        Some(id) => Err(invalid_parameter(
            "registryId",
            format!("registry '{id}' is not served here: this registry belongs to account '{account}'"),
        )),
    }
}

/// Checks a repository name against ECR's rules.
pub fn validate_repository_name(name: &str) -> Result<(), ApiError> {
    if is_valid_repository_name(name) {
        return Ok(());
    }
    Err(invalid_parameter(
        "repositoryName",
        format!(
            "must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*' and have \
             a length between 2 and 256, '{name}' does not"
        ),
    ))
}

/// The repository `name` of the registry `registry`, with its store revision.
pub async fn load_repository(ctx: &Ctx, name: &str, registry: &str) -> Result<(StoredRepository, i64), ApiError> {
    validate_repository_name(name)?;
    load::<StoredRepository>(ctx.store(), &keys::repository(name))
        .await?
        .ok_or_else(|| repository_not_found(name, registry))
}

/// Checks `maxResults` (1–1000, default 100) as ECR does.
pub fn max_results(value: Option<i32>) -> Result<usize, ApiError> {
    match value {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid_parameter("maxResults", format!("must be between 1 and 1000, {n} given"))),
    }
}

/// A record under a prefix with its store revision.
pub struct StoredRecord<T> {
    pub key: String,
    pub value: T,
    pub revision: i64,
}

/// Every record under `prefix`, in key order, with revisions (for compare-and-swap deletes).
pub async fn scan_versioned<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<StoredRecord<T>>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(prefix, after.as_deref(), 1000).await.map_err(store_error)?;
        for (key, v) in page.items {
            let value = serde_json::from_slice(&v.value)
                .map_err(|e| ApiError::server(format!("stored record {key} is unreadable: {e}")))?;
            after = Some(key.clone());
            out.push(StoredRecord { key, value, revision: v.mod_revision });
        }
        if !page.more {
            return Ok(out);
        }
    }
}

/// The JSON 1.1 form of a timestamp member that is always present.
pub fn timestamp(ms: EpochMillis) -> serde_json::Value {
    skiff_proto::timestamp::to_json_number(ms)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A real server state on a temporary data directory, for handler tests.

    use crate::context::{AppState, Caller, Ctx};
    use skiff_model::ecr::{keys, ImageRecord, RegistryHosts, TagRecord};
    use std::sync::Arc;

    pub const ACCOUNT: &str = "123456789012";

    pub struct TestServer {
        pub ctx: Ctx,
        _dir: tempfile::TempDir,
    }

    pub fn server() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn skiff_store::Store> =
            Arc::new(skiff_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let hosts = RegistryHosts {
            registry_host: "127.0.0.1:9400".into(),
            account: ACCOUNT.into(),
            region: "us-east-1".into(),
        };
        let registry = skiff_registry::Registry::open(
            skiff_registry::RegistryConfig {
                root: dir.path().join("registry"),
                hosts: hosts.clone(),
                upload_ttl: std::time::Duration::from_secs(60),
            },
            store.clone(),
        )
        .unwrap();
        let state = Arc::new(AppState {
            store,
            scope: skiff_proto::arn::ArnScope { region: "us-east-1".into(), account: ACCOUNT.into() },
            keys: crate::auth::KeyRing::default(),
            registry,
            registry_tokens: crate::registry_auth::TokenKey::load_or_generate(dir.path()).unwrap(),
            registry_hosts: hosts,
            task_wake: Default::default(),
            service_wake: Default::default(),
            lb: skiff_lb::LoadBalancer::new(),
            lb_wake: Default::default(),
            lb_block: std::net::Ipv4Addr::new(127, 200, 0, 0),
            cluster_gate: Default::default(),
            stopped_task_retention_ms: 3_600_000,
        });
        let caller = Caller {
            access_key_id: "AKIDTEST".into(),
            account: ACCOUNT.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:root"),
            user_id: ACCOUNT.into(),
        };
        TestServer { ctx: Ctx { state, caller, request_id: "test".into() }, _dir: dir }
    }

    pub fn digest(n: u32) -> String {
        format!("sha256:{n:064x}")
    }

    /// Records an image with `tags` the way the registry does on push.
    pub async fn push(ctx: &Ctx, repo: &str, n: u32, pushed_at: i64, tags: &[&str]) -> String {
        let d = digest(n);
        let image = ImageRecord {
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            manifest_size: 400,
            size: 1000 + u64::from(n),
            pushed_at,
            config: Some(skiff_model::ecr::Descriptor {
                media_type: "application/vnd.oci.image.config.v1+json".into(),
                digest: digest(100_000 + n),
                size: 100,
            }),
            references: Vec::new(),
            subject: None,
            artifact_type: None,
            last_pulled_at: None,
        };
        let mut txn = skiff_store::Txn::new().put(keys::image(repo, &d), serde_json::to_vec(&image).unwrap());
        for t in tags {
            let rec = TagRecord { digest: d.clone(), pushed_at };
            txn = txn.put(keys::tag(repo, t), serde_json::to_vec(&rec).unwrap());
        }
        ctx.store().txn(txn).await.unwrap();
        d
    }
}
