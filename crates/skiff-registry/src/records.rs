//! The registry's records in the store (`skiff_model::ecr`): blob links, images and tags. Every write is one
//! transaction with a compare on each record it depends on, retried on conflict, so concurrent pushes,
//! deletes and the ECR API never lose an update and a failed check writes nothing.
//!
//! Writes that depend on the repository also compare its record: once the ECR API deletes a repository,
//! no push in flight can add anything to it.

use crate::errors::DistError;
use crate::manifest::{Kind, Parsed};
use crate::RegistryError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use skiff_model::ecr::{keys, BlobLink, ImageRecord, RepositoryRecord, TagMutability, TagRecord};
use skiff_store::{Store, Txn, TxnOutcome};
use std::collections::BTreeMap;

/// Every blob link of every repository starts with this.
pub const ALL_BLOB_LINKS: &str = "ecr/blobs/";
/// Every image record of every repository starts with this.
pub const ALL_IMAGES: &str = "ecr/images/";
/// Attempts of an optimistic transaction before giving up.
const MAX_ATTEMPTS: usize = 100;
const SCAN_PAGE: usize = 1000;

pub async fn get_json<T: DeserializeOwned>(store: &dyn Store, key: &str) -> Result<Option<(T, i64)>, RegistryError> {
    match store.get(key).await? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v.value)
            .map(|t| Some((t, v.mod_revision)))
            .map_err(|e| RegistryError::Corrupt { key: key.to_string(), reason: e.to_string() }),
    }
}

pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain records cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// Every key and value under `prefix`, page by page.
pub async fn scan_all(store: &dyn Store, prefix: &str) -> Result<Vec<(String, skiff_store::Versioned)>, RegistryError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(prefix, after.as_deref(), SCAN_PAGE).await?;
        after = page.items.last().map(|(k, _)| k.clone());
        out.extend(page.items);
        if !page.more {
            return Ok(out);
        }
    }
}

fn contended(key: String) -> RegistryError {
    RegistryError::Contended { key }
}

pub async fn repository(store: &dyn Store, name: &str) -> Result<Option<(RepositoryRecord, i64)>, RegistryError> {
    get_json(store, &keys::repository(name)).await
}

pub async fn link(store: &dyn Store, repository: &str, digest: &str) -> Result<Option<(BlobLink, i64)>, RegistryError> {
    get_json(store, &keys::blob(repository, digest)).await
}

pub async fn image(
    store: &dyn Store,
    repository: &str,
    digest: &str,
) -> Result<Option<(ImageRecord, i64)>, RegistryError> {
    get_json(store, &keys::image(repository, digest)).await
}

pub async fn tag(store: &dyn Store, repository: &str, tag: &str) -> Result<Option<(TagRecord, i64)>, RegistryError> {
    get_json(store, &keys::tag(repository, tag)).await
}

/// Links the blob `digest` (already in place) into `repository`. `false` when the repository is gone.
pub async fn write_link(store: &dyn Store, repository: &str, digest: &str, size: u64) -> Result<bool, RegistryError> {
    let repo_key = keys::repository(repository);
    let link_key = keys::blob(repository, digest);
    for _ in 0..MAX_ATTEMPTS {
        let Some((_, repo_rev)) = repository_rev(store, repository).await? else { return Ok(false) };
        let link_rev = store.get(&link_key).await?.map_or(0, |v| v.mod_revision);
        let value = to_json(&BlobLink { size, linked_at: crate::now_millis() });
        let txn = Txn::new().when(&repo_key, repo_rev).when(&link_key, link_rev).put(&link_key, value);
        if let TxnOutcome::Committed(_) = store.txn(txn).await? {
            return Ok(true);
        }
    }
    Err(contended(link_key))
}

async fn repository_rev(store: &dyn Store, name: &str) -> Result<Option<((), i64)>, RegistryError> {
    Ok(store.get(&keys::repository(name)).await?.map(|v| ((), v.mod_revision)))
}

/// Cross-repository mount: links `digest` into `target` if `source` has it. The blob's size when mounted.
pub async fn mount(store: &dyn Store, target: &str, source: &str, digest: &str) -> Result<Option<u64>, RegistryError> {
    let source_key = keys::blob(source, digest);
    let target_key = keys::blob(target, digest);
    for _ in 0..MAX_ATTEMPTS {
        let Some((_, repo_rev)) = repository_rev(store, target).await? else { return Ok(None) };
        let Some((source_link, source_rev)) = link(store, source, digest).await? else { return Ok(None) };
        let target_rev = store.get(&target_key).await?.map_or(0, |v| v.mod_revision);
        let value = to_json(&BlobLink { size: source_link.size, linked_at: crate::now_millis() });
        let txn = Txn::new()
            .when(keys::repository(target), repo_rev)
            .when(&source_key, source_rev)
            .when(&target_key, target_rev)
            .put(&target_key, value);
        if let TxnOutcome::Committed(_) = store.txn(txn).await? {
            return Ok(Some(source_link.size));
        }
    }
    Err(contended(target_key))
}

/// Writes the image record for a stored manifest, its tag (if pushed by tag) and the manifest's own blob
/// link, in one transaction, retried on conflict. See [`plan_image`] for the checks.
pub async fn put_image(
    store: &dyn Store,
    repository: &str,
    digest: &str,
    manifest: &Parsed,
    manifest_size: u64,
    tag: Option<&str>,
) -> Result<(), DistError> {
    for _ in 0..MAX_ATTEMPTS {
        let txn = plan_image(store, repository, digest, manifest, manifest_size, tag).await?;
        if let TxnOutcome::Committed(_) = store.txn(txn).await? {
            return Ok(());
        }
    }
    Err(contended(keys::image(repository, digest)).into())
}

/// The transaction that stores an image, or why it cannot be stored. Every blob the manifest names must be
/// linked into the repository with the declared size (for an index: every child manifest must be an image of
/// the repository); each such link is rewritten in the same transaction, so a garbage collection that
/// removes one concurrently makes either this write or its own removal fail, never both succeed. An
/// IMMUTABLE repository refuses to move an existing tag; the compare on the tag makes that race-free.
pub async fn plan_image(
    store: &dyn Store,
    repository: &str,
    digest: &str,
    manifest: &Parsed,
    manifest_size: u64,
    tag: Option<&str>,
) -> Result<Txn, DistError> {
    let now = crate::now_millis();
    let Some((repo, repo_rev)) = self::repository(store, repository).await? else {
        return Err(DistError::name_unknown(repository));
    };
    let mut compares: BTreeMap<String, i64> = BTreeMap::new();
    let mut puts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    compares.insert(keys::repository(repository), repo_rev);

    match manifest.kind {
        Kind::Image => {
            for d in manifest.config.iter().chain(&manifest.references) {
                if manifest.foreign.contains(&d.digest) {
                    continue;
                }
                let Some((link, rev)) = link(store, repository, &d.digest).await? else {
                    return Err(DistError::manifest_blob_unknown(&d.digest, "blob"));
                };
                if link.size != d.size {
                    return Err(DistError::manifest_blob_unknown(&d.digest, "blob").with_message(format!(
                        "manifest declares blob {} with size {} but it was pushed with size {}",
                        d.digest, d.size, link.size
                    )));
                }
                let key = keys::blob(repository, &d.digest);
                compares.insert(key.clone(), rev);
                puts.insert(key, to_json(&link));
            }
        }
        Kind::Index => {
            for d in &manifest.references {
                let Some((child, rev)) = image(store, repository, &d.digest).await? else {
                    return Err(DistError::manifest_blob_unknown(&d.digest, "manifest"));
                };
                if child.manifest_size != d.size {
                    return Err(DistError::manifest_blob_unknown(&d.digest, "manifest").with_message(format!(
                        "index declares manifest {} with size {} but it is {} bytes",
                        d.digest, d.size, child.manifest_size
                    )));
                }
                compares.insert(keys::image(repository, &d.digest), rev);
            }
        }
    }

    let manifest_link_key = keys::blob(repository, digest);
    let manifest_link_rev = store.get(&manifest_link_key).await?.map_or(0, |v| v.mod_revision);
    compares.insert(manifest_link_key.clone(), manifest_link_rev);
    puts.insert(manifest_link_key, to_json(&BlobLink { size: manifest_size, linked_at: now }));

    let image_key = keys::image(repository, digest);
    let (record, image_rev) = match image(store, repository, digest).await? {
        Some((existing, rev)) => (existing, rev),
        None => {
            let blobs: u64 = manifest.config.iter().chain(&manifest.references).map(|d| d.size).sum();
            let size = match manifest.kind {
                Kind::Image => manifest_size + blobs,
                Kind::Index => manifest_size,
            };
            let record = ImageRecord {
                digest: digest.to_string(),
                media_type: manifest.media_type.clone(),
                manifest_size,
                size,
                pushed_at: now,
                config: manifest.config.clone(),
                references: manifest.references.clone(),
                subject: manifest.subject.clone(),
                artifact_type: manifest.artifact_type.clone(),
                last_pulled_at: None,
            };
            (record, 0)
        }
    };
    // Always rewritten: a concurrent "delete the image once its last tag is gone" then conflicts.
    compares.insert(image_key.clone(), image_rev);
    puts.insert(image_key, to_json(&record));

    if let Some(tag) = tag {
        let tag_key = keys::tag(repository, tag);
        match self::tag(store, repository, tag).await? {
            Some((current, rev)) if current.digest == digest => {
                compares.insert(tag_key, rev);
            }
            Some(_) if repo.image_tag_mutability == TagMutability::Immutable => {
                return Err(DistError::tag_invalid(format!(
                    "The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable."
                )));
            }
            current => {
                compares.insert(tag_key.clone(), current.map_or(0, |(_, rev)| rev));
                puts.insert(tag_key, to_json(&TagRecord { digest: digest.to_string(), pushed_at: now }));
            }
        }
    }

    let mut txn = Txn::new();
    for (key, rev) in compares {
        txn = txn.when(key, rev);
    }
    for (key, value) in puts {
        txn = txn.put(key, value);
    }
    Ok(txn)
}

/// Removes an image and every tag naming it, in one transaction. `false` when there was no such image.
pub async fn delete_image(store: &dyn Store, repository: &str, digest: &str) -> Result<bool, RegistryError> {
    let image_key = keys::image(repository, digest);
    for _ in 0..MAX_ATTEMPTS {
        let Some((_, image_rev)) = image(store, repository, digest).await? else { return Ok(false) };
        let mut txn = Txn::new().when(&image_key, image_rev).delete(&image_key);
        for (key, rev) in tags_naming(store, repository, digest).await? {
            txn = txn.when(&key, rev).delete(key);
        }
        if let TxnOutcome::Committed(_) = store.txn(txn).await? {
            return Ok(true);
        }
    }
    Err(contended(image_key))
}

/// The tag keys (and revisions) of `repository` that name `digest`.
async fn tags_naming(store: &dyn Store, repository: &str, digest: &str) -> Result<Vec<(String, i64)>, RegistryError> {
    let mut out = Vec::new();
    for (key, v) in scan_all(store, &keys::tags_of(repository)).await? {
        let tag: TagRecord = serde_json::from_slice(&v.value)
            .map_err(|e| RegistryError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        if tag.digest == digest {
            out.push((key, v.mod_revision));
        }
    }
    Ok(out)
}

/// Removes a tag; with `delete_image_if_untagged`, also the image it named when no other tag names it
/// (ECR BatchDeleteImage by tag). The digest the tag named, `None` when there was no such tag.
pub async fn delete_tag(
    store: &dyn Store,
    repository: &str,
    tag: &str,
    delete_image_if_untagged: bool,
) -> Result<Option<String>, RegistryError> {
    let tag_key = keys::tag(repository, tag);
    for _ in 0..MAX_ATTEMPTS {
        let Some((current, tag_rev)) = self::tag(store, repository, tag).await? else { return Ok(None) };
        let mut txn = Txn::new().when(&tag_key, tag_rev).delete(&tag_key);
        if delete_image_if_untagged {
            let others = tags_naming(store, repository, &current.digest).await?;
            if others.iter().all(|(k, _)| *k == tag_key) {
                let image_key = keys::image(repository, &current.digest);
                let image_rev = store.get(&image_key).await?.map_or(0, |v| v.mod_revision);
                txn = txn.when(&image_key, image_rev);
                if image_rev != 0 {
                    txn = txn.delete(image_key);
                }
            }
        }
        if let TxnOutcome::Committed(_) = store.txn(txn).await? {
            return Ok(Some(current.digest));
        }
    }
    Err(contended(tag_key))
}

/// Removes every image, tag and blob link of a repository. Returns the number of images removed.
pub async fn delete_repository_contents(store: &dyn Store, repository: &str) -> Result<u64, RegistryError> {
    let mut images = 0;
    for prefix in [keys::tags_of(repository), keys::images_of(repository), keys::blobs_of(repository)] {
        let counting = prefix == keys::images_of(repository);
        loop {
            let page = store.scan(&prefix, None, 500).await?;
            if page.items.is_empty() {
                break;
            }
            let mut txn = Txn::new();
            for (key, _) in page.items {
                images += u64::from(counting);
                txn = txn.delete(key);
            }
            store.txn(txn).await?;
        }
    }
    Ok(images)
}

/// Records a pull of an image (ECR's `lastRecordedPullTime`), at most once an hour per image; best effort.
pub async fn record_pull(store: &dyn Store, repository: &str, digest: &str) -> Result<(), RegistryError> {
    const EVERY_MS: i64 = 3600 * 1000;
    let now = crate::now_millis();
    let Some((mut record, rev)) = image(store, repository, digest).await? else { return Ok(()) };
    if record.last_pulled_at.is_some_and(|t| now - t < EVERY_MS) {
        return Ok(());
    }
    record.last_pulled_at = Some(now);
    let key = keys::image(repository, digest);
    // A conflict means someone else wrote the record just now: skipping this pull's timestamp is fine.
    store.txn(Txn::new().when(&key, rev).put(&key, to_json(&record))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_prefixes_cover_every_repository() {
        assert!(keys::blob("team/web", "sha256:x").starts_with(ALL_BLOB_LINKS));
        assert!(keys::image("team/web", "sha256:x").starts_with(ALL_IMAGES));
        assert!(!keys::tag("web", "v1").starts_with(ALL_IMAGES));
    }
}
