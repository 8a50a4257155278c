//! DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, and [`RepositoryContent`]: a repository's
//! images and tags as the registry recorded them, with the compare-and-swap deletes every image removal
//! (by API call, lifecycle policy or repository deletion) goes through.

use super::{
    invalid_parameter, load_repository, max_results, registry_id, scan_versioned, timestamp, ImageIdentifier,
    StoredRecord,
};
use crate::context::Ctx;
use crate::records::{paginate, store_error};
use serde::{Deserialize, Serialize};
use skiff_model::ecr::{keys, ImageRecord, TagRecord};
use skiff_proto::timestamp::EpochMillis;
use skiff_proto::ApiError;
use skiff_store::{Store, Txn, TxnOutcome};
use std::collections::{BTreeMap, BTreeSet};

/// The images and tags of one repository, with their store revisions. Tags whose image record is missing
/// are not listed (the registry writes both in one transaction, so there should be none).
pub struct RepositoryContent {
    pub images: BTreeMap<String, StoredRecord<ImageRecord>>,
    pub tags: BTreeMap<String, StoredRecord<TagRecord>>,
}

impl RepositoryContent {
    pub async fn load(store: &dyn Store, repository: &str) -> Result<RepositoryContent, ApiError> {
        let images_prefix = keys::images_of(repository);
        let tags_prefix = keys::tags_of(repository);
        let images = scan_versioned::<ImageRecord>(store, &images_prefix)
            .await?
            .into_iter()
            .map(|v| (v.key[images_prefix.len()..].to_string(), v))
            .collect();
        let tags = scan_versioned::<TagRecord>(store, &tags_prefix)
            .await?
            .into_iter()
            .map(|v| (v.key[tags_prefix.len()..].to_string(), v))
            .collect();
        Ok(RepositoryContent { images, tags })
    }

    /// The tags of each image, sorted.
    pub fn tags_by_digest(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = self.images.keys().map(|d| (d.as_str(), Vec::new())).collect();
        for (tag, rec) in &self.tags {
            if let Some(tags) = out.get_mut(rec.value.digest.as_str()) {
                tags.push(tag);
            }
        }
        out
    }

    pub fn tags_of(&self, digest: &str) -> Vec<&str> {
        self.tags.iter().filter(|(_, r)| r.value.digest == digest).map(|(t, _)| t.as_str()).collect()
    }

    /// For each image another image of the repository depends on (a child manifest of an index, the subject
    /// of a referrer), the digests of those dependants.
    pub fn dependants(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (digest, image) in &self.images {
            let children = image.value.references.iter().map(|r| r.digest.as_str());
            for target in children.chain(image.value.subject.as_deref()) {
                if target != digest && self.images.contains_key(target) {
                    out.entry(target).or_default().push(digest);
                }
            }
        }
        out
    }

    /// Resolves an image identifier to a digest of this repository, or the batch failure ECR reports.
    pub fn resolve(&self, id: &ImageIdentifier) -> Result<String, (&'static str, String)> {
        if let Some(d) = &id.image_digest {
            if !is_valid_digest(d) {
                return Err((
                    "InvalidImageDigest",
                    "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"
                        .into(),
                ));
            }
        }
        if let Some(t) = &id.image_tag {
            if !is_valid_tag(t) {
                return Err((
                    "InvalidImageTag",
                    "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9_.-]*' and \
                     have a length between 1 and 300"
                        .into(),
                ));
            }
        }
        let not_found = || ("ImageNotFound", "Requested image not found".to_string());
        match (&id.image_digest, &id.image_tag) {
            (None, None) => {
                Err(("MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null".into()))
            }
            (digest, Some(tag)) => {
                let rec =
                    self.tags.get(tag).filter(|r| self.images.contains_key(&r.value.digest)).ok_or_else(not_found)?;
                match digest {
                    Some(d) if *d != rec.value.digest => Err((
                        "ImageTagDoesNotMatchDigest",
                        format!("Invalid request parameters: the tag '{tag}' does not map to the digest '{d}'"),
                    )),
                    _ => Ok(rec.value.digest.clone()),
                }
            }
            (Some(d), None) => self.images.contains_key(d).then(|| d.clone()).ok_or_else(not_found),
        }
    }
}

/// Digests as ECR accepts them: `algorithm:hex`.
pub fn is_valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'))
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Tags as the registry accepts them: word characters, `.` and `-`, not starting with `.` or `-`, at most
/// 300 characters (ECR's `ImageTag` limit).
pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    (1..=300).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Adds to `txn` the deletion of the image `digest` and every tag pointing to it, each guarded by the
/// revision it was read at.
pub fn delete_image(txn: Txn, content: &RepositoryContent, digest: &str) -> Txn {
    let mut txn = txn;
    if let Some(image) = content.images.get(digest) {
        txn = txn.when(&image.key, image.revision).delete(&image.key);
    }
    for rec in content.tags.values().filter(|r| r.value.digest == digest) {
        txn = txn.when(&rec.key, rec.revision).delete(&rec.key);
    }
    txn
}

fn image_not_found(id: &ImageIdentifier, repository: &str, registry: &str) -> ApiError {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".into());
    ApiError::client(
        "ImageNotFoundException",
        format!(
            "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with \
             name '{repository}' in the registry with id '{registry}'",
            show(&id.image_digest),
            show(&id.image_tag)
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ImageStatusFilter {
    Active,
    Archived,
    Activating,
    Any,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImagesFilter {
    tag_status: Option<TagStatus>,
    /// Every Skiff image is ACTIVE (there is no archive storage class).
    image_status: Option<ImageStatusFilter>,
}

impl ImagesFilter {
    fn tag_status(&self) -> TagStatus {
        self.tag_status.unwrap_or(TagStatus::Any)
    }

    fn admits_active(&self) -> bool {
        matches!(self.image_status, None | Some(ImageStatusFilter::Active | ImageStatusFilter::Any))
    }
}

/// Key that orders images by push time, then digest (and pages through them).
fn order_key(pushed_at: EpochMillis, digest: &str) -> String {
    format!("{:020}/{digest}", pushed_at.max(0))
}

fn check_image_ids(ids: &[ImageIdentifier]) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > 100 {
        return Err(invalid_parameter("imageIds", "must name between 1 and 100 images"));
    }
    // The model's length bounds are checked before anything else, as ECR's request validation does; a tag
    // of the right length that breaks the pattern is a per-image failure (InvalidImageTag).
    for (i, id) in ids.iter().enumerate() {
        if let Some(tag) = &id.image_tag {
            if !(1..=300).contains(&tag.chars().count()) {
                return Err(invalid_parameter(
                    &format!("imageIds.{}.member.imageTag", i + 1),
                    "must have a length between 1 and 300",
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeImagesRequest {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Option<Vec<ImageIdentifier>>,
    next_token: Option<String>,
    max_results: Option<i32>,
    filter: Option<ImagesFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDetail {
    registry_id: String,
    repository_name: String,
    image_digest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image_tags: Vec<String>,
    image_size_in_bytes: u64,
    image_pushed_at: serde_json::Value,
    image_manifest_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_recorded_pull_time: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_manifest_digest: Option<String>,
    image_status: &'static str,
}

fn image_detail(registry: &str, repository: &str, image: &ImageRecord, tags: &[&str]) -> ImageDetail {
    ImageDetail {
        registry_id: registry.to_string(),
        repository_name: repository.to_string(),
        image_digest: image.digest.clone(),
        image_tags: tags.iter().map(|t| t.to_string()).collect(),
        image_size_in_bytes: image.size,
        image_pushed_at: timestamp(image.pushed_at),
        image_manifest_media_type: image.media_type.clone(),
        artifact_media_type: image
            .artifact_type
            .clone()
            .or_else(|| image.config.as_ref().map(|c| c.media_type.clone())),
        last_recorded_pull_time: image.last_pulled_at.map(timestamp),
        subject_manifest_digest: image.subject.clone(),
        image_status: "ACTIVE",
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeImagesResponse {
    image_details: Vec<ImageDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

pub async fn describe_images(ctx: &Ctx, req: DescribeImagesRequest) -> Result<DescribeImagesResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let max = max_results(req.max_results)?;
    let name = req.repository_name;
    load_repository(ctx, &name, &registry).await?;
    let content = RepositoryContent::load(ctx.store(), &name).await?;
    let tags = content.tags_by_digest();
    let detail = |digest: &str| {
        let image = &content.images[digest].value;
        image_detail(&registry, &name, image, tags.get(digest).map(Vec::as_slice).unwrap_or(&[]))
    };
    if let Some(ids) = req.image_ids {
        check_image_ids(&ids)?;
        if req.next_token.is_some() || req.max_results.is_some() {
            return Err(ApiError::invalid_parameter(
                "nextToken and maxResults cannot be used when images are named with imageIds",
            ));
        }
        let mut digests = Vec::new();
        for id in &ids {
            match content.resolve(id) {
                Ok(d) if !digests.contains(&d) => digests.push(d),
                Ok(_) => {}
                Err(("ImageNotFound" | "ImageTagDoesNotMatchDigest", _)) => {
                    return Err(image_not_found(id, &name, &registry))
                }
                Err((_, reason)) => return Err(invalid_parameter("imageIds", reason)),
            }
        }
        return Ok(DescribeImagesResponse {
            image_details: digests.iter().map(|d| detail(d)).collect(),
            next_token: None,
        });
    }
    let filter = req.filter.unwrap_or_default();
    let mut by_key = BTreeMap::new();
    if filter.admits_active() {
        for (digest, image) in &content.images {
            let tagged = tags.get(digest.as_str()).is_some_and(|t| !t.is_empty());
            let wanted = match filter.tag_status() {
                TagStatus::Tagged => tagged,
                TagStatus::Untagged => !tagged,
                TagStatus::Any => true,
            };
            if wanted {
                by_key.insert(order_key(image.value.pushed_at, digest), digest.as_str());
            }
        }
    }
    let (page, next_token) = paginate(by_key.keys().cloned().collect(), req.next_token.as_deref(), max, false)?;
    let image_details = page.iter().map(|k| detail(by_key[k])).collect();
    Ok(DescribeImagesResponse { image_details, next_token })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListImagesRequest {
    registry_id: Option<String>,
    repository_name: String,
    next_token: Option<String>,
    max_results: Option<i32>,
    filter: Option<ImagesFilter>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListImagesResponse {
    image_ids: Vec<ImageIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// One entry per tag, and one (digest only) per untagged image, ordered by push time, digest, tag.
pub async fn list_images(ctx: &Ctx, req: ListImagesRequest) -> Result<ListImagesResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let max = max_results(req.max_results)?;
    load_repository(ctx, &req.repository_name, &registry).await?;
    let content = RepositoryContent::load(ctx.store(), &req.repository_name).await?;
    let filter = req.filter.unwrap_or_default();
    let mut by_key: BTreeMap<String, ImageIdentifier> = BTreeMap::new();
    if filter.admits_active() {
        for (digest, tags) in content.tags_by_digest() {
            let base = order_key(content.images[digest].value.pushed_at, digest);
            let id = |tag: Option<&str>| ImageIdentifier {
                image_digest: Some(digest.to_string()),
                image_tag: tag.map(str::to_string),
            };
            match (tags.is_empty(), filter.tag_status()) {
                (true, TagStatus::Untagged | TagStatus::Any) => {
                    by_key.insert(base, id(None));
                }
                (false, TagStatus::Tagged | TagStatus::Any) => {
                    for t in tags {
                        by_key.insert(format!("{base}/{t}"), id(Some(t)));
                    }
                }
                _ => {}
            }
        }
    }
    let (page, next_token) = paginate(by_key.keys().cloned().collect(), req.next_token.as_deref(), max, false)?;
    let image_ids = page.into_iter().filter_map(|k| by_key.remove(&k)).collect();
    Ok(ListImagesResponse { image_ids, next_token })
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    image_id: ImageIdentifier,
    failure_code: &'static str,
    failure_reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchGetImageRequest {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
    accepted_media_types: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    registry_id: String,
    repository_name: String,
    image_id: ImageIdentifier,
    image_manifest: String,
    image_manifest_media_type: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetImageResponse {
    images: Vec<Image>,
    failures: Vec<ImageFailure>,
}

pub async fn batch_get_image(ctx: &Ctx, req: BatchGetImageRequest) -> Result<BatchGetImageResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let name = req.repository_name;
    check_image_ids(&req.image_ids)?;
    if let Some(types) = &req.accepted_media_types {
        if types.is_empty() || types.len() > 100 {
            return Err(invalid_parameter("acceptedMediaTypes", "must list between 1 and 100 media types"));
        }
    }
    load_repository(ctx, &name, &registry).await?;
    let content = RepositoryContent::load(ctx.store(), &name).await?;
    let mut out = BatchGetImageResponse { images: Vec::new(), failures: Vec::new() };
    for id in req.image_ids {
        let digest = match content.resolve(&id) {
            Ok(d) => d,
            Err((code, reason)) => {
                out.failures.push(ImageFailure { image_id: id, failure_code: code, failure_reason: reason });
                continue;
            }
        };
        let image = &content.images[&digest].value;
        if let Some(types) = &req.accepted_media_types {
            if !types.contains(&image.media_type) {
                out.failures.push(ImageFailure {
                    image_id: id,
                    failure_code: "ImageNotFound",
                    failure_reason: format!(
                        "Requested image not found: its manifest media type {} is not in acceptedMediaTypes",
                        image.media_type
                    ),
                });
                continue;
            }
        }
        let manifest = ctx
            .state
            .registry
            .manifest(&name, &digest)
            .await
            .map_err(|e| ApiError::server(format!("cannot read manifest {digest} of repository {name}: {e}")))?;
        let Some((bytes, media_type)) = manifest else {
            return Err(ApiError::server(format!(
                "manifest {digest} of repository {name} is recorded but its content is missing from the registry"
            )));
        };
        let image_manifest = String::from_utf8(bytes)
            .map_err(|_| ApiError::server(format!("manifest {digest} of repository {name} is not UTF-8 text")))?;
        out.images.push(Image {
            registry_id: registry.clone(),
            repository_name: name.clone(),
            image_id: ImageIdentifier { image_digest: Some(digest), image_tag: id.image_tag },
            image_manifest,
            image_manifest_media_type: media_type,
        });
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchDeleteImageRequest {
    registry_id: Option<String>,
    repository_name: String,
    image_ids: Vec<ImageIdentifier>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteImageResponse {
    image_ids: Vec<ImageIdentifier>,
    failures: Vec<ImageFailure>,
}

/// What a batch delete does, worked out on the content read from the store.
#[derive(Debug, Default, PartialEq, Eq)]
struct DeletePlan {
    /// Images removed with all their tags.
    images: BTreeSet<String>,
    /// Tags removed from images that stay.
    tags: BTreeSet<String>,
    deleted: Vec<ImageIdentifier>,
    failures: Vec<(ImageIdentifier, &'static str, String)>,
}

/// ECR's semantics: a tag removes that tag, and the image with it when it was the image's last tag; a digest
/// removes the image and all its tags. An image that an index (or a referrer) of the repository still names
/// is not deleted by digest, and stays untagged when its last tag goes.
fn plan_delete(content: &RepositoryContent, ids: &[ImageIdentifier]) -> DeletePlan {
    let mut plan = DeletePlan::default();
    let dependants = content.dependants();
    for id in ids {
        // Resolve against what is left after the earlier entries of the batch.
        let gone_tag = |t: &Option<String>| {
            t.as_ref().is_some_and(|t| {
                plan.tags.contains(t) || content.tags.get(t).is_some_and(|r| plan.images.contains(&r.value.digest))
            })
        };
        let gone_image = |d: &str| plan.images.contains(d);
        let resolved = match content.resolve(id) {
            Ok(d) if gone_image(&d) || gone_tag(&id.image_tag) => {
                Err(("ImageNotFound", "Requested image not found".to_string()))
            }
            other => other,
        };
        let digest = match resolved {
            Ok(d) => d,
            Err((code, reason)) => {
                plan.failures.push((id.clone(), code, reason));
                continue;
            }
        };
        let remaining_tags: Vec<&str> =
            content.tags_of(&digest).into_iter().filter(|t| !plan.tags.contains(*t)).collect();
        let live_dependants: Vec<&str> = dependants
            .get(digest.as_str())
            .map(|ds| ds.iter().copied().filter(|d| !plan.images.contains(*d)).collect())
            .unwrap_or_default();
        match &id.image_tag {
            Some(tag) => {
                plan.deleted.push(ImageIdentifier { image_digest: Some(digest.clone()), image_tag: Some(tag.clone()) });
                if remaining_tags.len() == 1 && live_dependants.is_empty() {
                    plan.images.insert(digest);
                } else {
                    plan.tags.insert(tag.clone());
                }
            }
            None if !live_dependants.is_empty() => plan.failures.push((
                id.clone(),
                "ImageReferencedByManifestList",
                format!("Requested image referenced by manifest list: [{}]", live_dependants.join(", ")),
            )),
            None => {
                if remaining_tags.is_empty() {
                    plan.deleted.push(ImageIdentifier { image_digest: Some(digest.clone()), image_tag: None });
                }
                for t in &remaining_tags {
                    plan.deleted
                        .push(ImageIdentifier { image_digest: Some(digest.clone()), image_tag: Some(t.to_string()) });
                }
                plan.images.insert(digest);
            }
        }
    }
    plan
}

pub async fn batch_delete_image(ctx: &Ctx, req: BatchDeleteImageRequest) -> Result<BatchDeleteImageResponse, ApiError> {
    let registry = registry_id(ctx, req.registry_id.as_deref())?;
    let name = req.repository_name;
    check_image_ids(&req.image_ids)?;
    for _ in 0..32 {
        load_repository(ctx, &name, &registry).await?;
        let content = RepositoryContent::load(ctx.store(), &name).await?;
        let plan = plan_delete(&content, &req.image_ids);
        let mut txn = Txn::new();
        for digest in &plan.images {
            txn = delete_image(txn, &content, digest);
        }
        for tag in &plan.tags {
            let rec = &content.tags[tag];
            txn = txn.when(&rec.key, rec.revision).delete(&rec.key);
        }
        let committed =
            txn.ops.is_empty() || matches!(ctx.store().txn(txn).await.map_err(store_error)?, TxnOutcome::Committed(_));
        if committed {
            let failures = plan
                .failures
                .into_iter()
                .map(|(image_id, failure_code, failure_reason)| ImageFailure { image_id, failure_code, failure_reason })
                .collect();
            return Ok(BatchDeleteImageResponse { image_ids: plan.deleted, failures });
        }
    }
    Err(ApiError::server(format!("too many concurrent changes to the images of {name}; retry the call")))
}

#[cfg(test)]
mod tests {
    use super::super::repositories::{create_repository, CreateRepositoryRequest};
    use super::super::testing::{digest, push, server, ACCOUNT};
    use super::*;

    fn id(digest: Option<&str>, tag: Option<&str>) -> ImageIdentifier {
        ImageIdentifier { image_digest: digest.map(Into::into), image_tag: tag.map(Into::into) }
    }

    async fn repo(ctx: &Ctx, name: &str) {
        let req: CreateRepositoryRequest =
            serde_json::from_value(serde_json::json!({ "repositoryName": name })).unwrap();
        create_repository(ctx, req).await.unwrap();
    }

    #[test]
    fn digests_and_tags() {
        for ok in ["sha256:abc0", "sha512:AF", "a+b.c_d-e:0"] {
            assert!(is_valid_digest(ok), "{ok}");
        }
        for bad in ["", "sha256", "sha256:", ":ab", "sha256:xyz", "sha 256:ab"] {
            assert!(!is_valid_digest(bad), "{bad}");
        }
        for ok in ["latest", "v1.2-rc_3", "_x", &"a".repeat(300)] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a:b", "a/b", &"a".repeat(301)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn describe_and_list_with_filters_and_pages() {
        let s = server();
        let ctx = &s.ctx;
        repo(ctx, "web").await;
        let d1 = push(ctx, "web", 1, 1_000, &["v1", "latest"]).await;
        let d2 = push(ctx, "web", 2, 3_000, &[]).await;
        let d3 = push(ctx, "web", 3, 2_000, &["v3"]).await;

        let list = |status: &str, token: Option<String>, max: Option<i32>| ListImagesRequest {
            registry_id: None,
            repository_name: "web".into(),
            next_token: token,
            max_results: max,
            filter: Some(serde_json::from_value(serde_json::json!({ "tagStatus": status })).unwrap()),
        };
        let all = list_images(ctx, list("ANY", None, None)).await.unwrap().image_ids;
        assert_eq!(
            all,
            vec![
                id(Some(&d1), Some("latest")),
                id(Some(&d1), Some("v1")),
                id(Some(&d3), Some("v3")),
                id(Some(&d2), None),
            ]
        );
        assert_eq!(list_images(ctx, list("UNTAGGED", None, None)).await.unwrap().image_ids, vec![id(Some(&d2), None)]);
        assert_eq!(list_images(ctx, list("TAGGED", None, None)).await.unwrap().image_ids.len(), 3);
        let mut paged = Vec::new();
        let mut token = None;
        loop {
            let out = list_images(ctx, list("ANY", token.take(), Some(1))).await.unwrap();
            paged.extend(out.image_ids);
            match out.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(paged, all);

        let describe = |ids: Option<Vec<ImageIdentifier>>, status: Option<&str>| DescribeImagesRequest {
            registry_id: Some(ACCOUNT.into()),
            repository_name: "web".into(),
            image_ids: ids,
            next_token: None,
            max_results: None,
            filter: status.map(|s| serde_json::from_value(serde_json::json!({ "tagStatus": s })).unwrap()),
        };
        let out = serde_json::to_value(describe_images(ctx, describe(None, None)).await.unwrap()).unwrap();
        let details = out["imageDetails"].as_array().unwrap();
        assert_eq!(details.len(), 3);
        assert_eq!(details[0]["imageDigest"], d1.as_str());
        assert_eq!(details[0]["imageTags"], serde_json::json!(["latest", "v1"]));
        assert_eq!(details[0]["imageSizeInBytes"], 1001);
        assert_eq!(details[0]["imagePushedAt"], 1);
        assert_eq!(details[0]["imageManifestMediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(details[0]["artifactMediaType"], "application/vnd.oci.image.config.v1+json");
        assert_eq!(details[0]["registryId"], ACCOUNT);
        assert_eq!(details[2]["imageDigest"], d2.as_str());
        assert!(details[2].get("imageTags").is_none(), "untagged images have no imageTags member");

        let out = describe_images(ctx, describe(None, Some("UNTAGGED"))).await.unwrap();
        assert_eq!(out.image_details.len(), 1);
        let out =
            describe_images(ctx, describe(Some(vec![id(None, Some("v3")), id(Some(&d3), None)]), None)).await.unwrap();
        assert_eq!(out.image_details.len(), 1, "the same image named twice is described once");
        let e = describe_images(ctx, describe(Some(vec![id(None, Some("nope"))]), None)).await.unwrap_err();
        assert_eq!(e.code, "ImageNotFoundException");
        assert!(e.message.contains("imageTag:'nope'"), "{}", e.message);
        let e = describe_images(ctx, describe(Some(vec![id(Some("bad"), None)]), None)).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");

        let mut missing = describe(None, None);
        missing.repository_name = "nope".into();
        assert_eq!(describe_images(ctx, missing).await.unwrap_err().code, "RepositoryNotFoundException");
    }

    fn content(images: &[(u32, &[&str])], index: Option<(u32, &[u32])>) -> RepositoryContent {
        let mut c = RepositoryContent { images: BTreeMap::new(), tags: BTreeMap::new() };
        let mut add = |n: u32, refs: &[u32]| {
            let d = digest(n);
            let image = ImageRecord {
                digest: d.clone(),
                media_type: "m".into(),
                manifest_size: 1,
                size: 1,
                pushed_at: i64::from(n),
                config: None,
                references: refs
                    .iter()
                    .map(|r| skiff_model::ecr::Descriptor { media_type: "m".into(), digest: digest(*r), size: 1 })
                    .collect(),
                subject: None,
                artifact_type: None,
                last_pulled_at: None,
            };
            c.images.insert(d.clone(), StoredRecord { key: format!("i/{d}"), value: image, revision: 1 });
        };
        for (n, _) in images {
            add(*n, &[]);
        }
        if let Some((n, refs)) = index {
            add(n, refs);
        }
        for (n, tags) in images {
            for t in *tags {
                let rec = TagRecord { digest: digest(*n), pushed_at: 0 };
                c.tags.insert(t.to_string(), StoredRecord { key: format!("t/{t}"), value: rec, revision: 1 });
            }
        }
        c
    }

    #[test]
    fn delete_plans() {
        let d = |n: u32| digest(n);
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
        let c = content(&[(1, &["a", "b"]), (2, &["c"]), (3, &[])], None);

        // A tag of an image with other tags: only the tag goes.
        let p = plan_delete(&c, &[id(None, Some("a"))]);
        assert_eq!((p.images.clone(), p.tags.clone()), (set(&[]), set(&["a".into()])));
        assert_eq!(p.deleted, vec![id(Some(&d(1)), Some("a"))]);
        // Its last tag: the image goes too.
        let p = plan_delete(&c, &[id(None, Some("c"))]);
        assert_eq!(p.images, set(&[d(2)]));
        // Both tags of one image in one batch: the image goes.
        let p = plan_delete(&c, &[id(None, Some("a")), id(None, Some("b"))]);
        assert_eq!(p.images, set(&[d(1)]));
        // By digest: the image and all its tags, one entry per tag.
        let p = plan_delete(&c, &[id(Some(&d(1)), None)]);
        assert_eq!(p.images, set(&[d(1)]));
        assert_eq!(p.deleted, vec![id(Some(&d(1)), Some("a")), id(Some(&d(1)), Some("b"))]);
        let p = plan_delete(&c, &[id(Some(&d(3)), None)]);
        assert_eq!(p.deleted, vec![id(Some(&d(3)), None)]);
        // Failures, and an image named twice.
        let p = plan_delete(
            &c,
            &[
                id(None, Some("zz")),
                id(Some(&d(9)), None),
                id(None, None),
                id(Some("sha256:xyz"), None),
                id(None, Some("-bad")),
                id(Some(&d(2)), Some("a")),
                id(Some(&d(3)), None),
                id(Some(&d(3)), None),
            ],
        );
        let codes: Vec<&str> = p.failures.iter().map(|f| f.1).collect();
        assert_eq!(
            codes,
            [
                "ImageNotFound",
                "ImageNotFound",
                "MissingDigestAndTag",
                "InvalidImageDigest",
                "InvalidImageTag",
                "ImageTagDoesNotMatchDigest",
                "ImageNotFound"
            ]
        );
        assert_eq!(p.images, set(&[d(3)]));

        // Children of an index are kept.
        let c = content(&[(1, &["x"]), (2, &[])], Some((10, &[1, 2])));
        let p = plan_delete(&c, &[id(Some(&d(2)), None), id(None, Some("x"))]);
        assert_eq!(p.failures[0].1, "ImageReferencedByManifestList");
        assert_eq!((p.images.clone(), p.tags.clone()), (set(&[]), set(&["x".into()])));
        // …unless the index goes first.
        let p = plan_delete(&c, &[id(Some(&d(10)), None), id(Some(&d(2)), None)]);
        assert_eq!(p.images, set(&[d(10), d(2)]));
    }

    #[tokio::test]
    async fn batch_delete_writes_the_plan() {
        let s = server();
        let ctx = &s.ctx;
        repo(ctx, "web").await;
        let d1 = push(ctx, "web", 1, 1_000, &["v1", "latest"]).await;
        let d2 = push(ctx, "web", 2, 2_000, &["v2"]).await;
        let req = BatchDeleteImageRequest {
            registry_id: None,
            repository_name: "web".into(),
            image_ids: vec![id(None, Some("latest")), id(None, Some("v2")), id(None, Some("gone"))],
        };
        let out = batch_delete_image(ctx, req).await.unwrap();
        assert_eq!(out.image_ids, vec![id(Some(&d1), Some("latest")), id(Some(&d2), Some("v2"))]);
        assert_eq!(out.failures.len(), 1);
        let c = RepositoryContent::load(ctx.store(), "web").await.unwrap();
        assert_eq!(c.images.keys().cloned().collect::<Vec<_>>(), vec![d1.clone()]);
        assert_eq!(c.tags.keys().cloned().collect::<Vec<_>>(), vec!["v1".to_string()]);
        let req = BatchDeleteImageRequest { registry_id: None, repository_name: "web".into(), image_ids: vec![] };
        assert_eq!(batch_delete_image(ctx, req).await.unwrap_err().code, "InvalidParameterException");
    }

    #[tokio::test]
    async fn batch_get_reports_failures() {
        let s = server();
        let ctx = &s.ctx;
        repo(ctx, "web").await;
        push(ctx, "web", 1, 1_000, &["v1"]).await;
        let req = BatchGetImageRequest {
            registry_id: None,
            repository_name: "web".into(),
            image_ids: vec![id(None, Some("nope")), id(None, None)],
            accepted_media_types: None,
        };
        let out = batch_get_image(ctx, req).await.unwrap();
        assert!(out.images.is_empty());
        let codes: Vec<&str> = out.failures.iter().map(|f| f.failure_code).collect();
        assert_eq!(codes, ["ImageNotFound", "MissingDigestAndTag"]);
        let req = BatchGetImageRequest {
            registry_id: None,
            repository_name: "web".into(),
            image_ids: vec![id(None, Some("v1"))],
            accepted_media_types: Some(vec!["application/vnd.docker.distribution.manifest.v2+json".into()]),
        };
        let out = batch_get_image(ctx, req).await.unwrap();
        assert_eq!(out.failures[0].failure_code, "ImageNotFound");
    }
}
