//! Garbage collection: mark every blob an image references (its manifest, config, layers or child
//! manifests) and every blob linked recently, drop the links nothing uses any more, and sweep the blob files
//! left unmarked.
//!
//! Why this is safe against concurrent pushes:
//! - Everything in this process that makes a blob file appear and then records it (an upload's commit and
//!   link, a mount, a manifest PUT's file and records) holds `gc_lock` shared from before the file is placed
//!   (or its link checked) until the records are committed. A collection holds it exclusively from its first
//!   read of the records to its last unlink, so it sees each push either before it started or after its
//!   records are committed — never a placed file whose link is not written yet.
//! - Layers pushed for a manifest that has not arrived yet are protected by their link's age: a link younger
//!   than the grace period keeps its blob. A manifest PUT after that finds the blob unlinked and answers
//!   MANIFEST_BLOB_UNKNOWN (the client pushes the blob again): an image never names a missing blob.
//! - A link is removed with a compare on its revision, and a manifest PUT rewrites every link it depends on
//!   in its own transaction, so even without the lock one of the two would fail rather than both succeed;
//!   a link that changed under the collection keeps its blob.
//! - Blob files modified within the grace period are never swept (a belt to the braces above).
//! - Upload sessions are separate files under `uploads/`; only sessions idle longer than the TTL go.

use crate::records::{scan_all, ALL_BLOB_LINKS, ALL_IMAGES};
use crate::{GcReport, Inner, RegistryError};
use skiff_model::ecr::{BlobLink, ImageRecord};
use skiff_store::{Txn, TxnOutcome};
use std::collections::HashSet;
use std::time::{Duration, SystemTime};

/// How long a link keeps its blob without any image referring to it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// `(escaped repository, digest)` of a link or image key under `prefix`.
fn split_key<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    key.strip_prefix(prefix)?.rsplit_once('/')
}

pub async fn collect(inner: &Inner, grace: Duration) -> Result<GcReport, RegistryError> {
    let uploads_dir = inner.uploads.dir().to_path_buf();
    let uploads_expired =
        inner.uploads.expire_idle().await.map_err(|source| RegistryError::Io { path: uploads_dir, source })?;
    let store = inner.store.as_ref();
    let _exclusive = inner.gc_lock.write().await;
    let cutoff = crate::now_millis() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);

    // Mark: what images reference, per repository.
    let mut referenced: HashSet<(String, String)> = HashSet::new();
    let mut live: HashSet<String> = HashSet::new();
    for (key, v) in scan_all(store, ALL_IMAGES).await? {
        let Some((repo, _)) = split_key(&key, ALL_IMAGES) else { continue };
        let image: ImageRecord = serde_json::from_slice(&v.value)
            .map_err(|e| RegistryError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        let digests = std::iter::once(image.digest.clone())
            .chain(image.config.iter().map(|d| d.digest.clone()))
            .chain(image.references.iter().map(|d| d.digest.clone()));
        for digest in digests {
            live.insert(digest.clone());
            referenced.insert((repo.to_string(), digest));
        }
    }

    // Links: keep the referenced and the young ones; remove the rest.
    let mut links_removed = 0;
    for (key, v) in scan_all(store, ALL_BLOB_LINKS).await? {
        let Some((repo, digest)) = split_key(&key, ALL_BLOB_LINKS) else { continue };
        let link: BlobLink = serde_json::from_slice(&v.value)
            .map_err(|e| RegistryError::Corrupt { key: key.clone(), reason: e.to_string() })?;
        if referenced.contains(&(repo.to_string(), digest.to_string())) || link.linked_at > cutoff {
            live.insert(digest.to_string());
            continue;
        }
        match store.txn(Txn::new().when(&key, v.mod_revision).delete(&key)).await? {
            TxnOutcome::Committed(_) => links_removed += 1,
            TxnOutcome::Conflict => {
                if store.get(&key).await?.is_some() {
                    live.insert(digest.to_string());
                }
            }
        }
    }

    // Sweep.
    let blobs = inner.blobs.clone();
    let files = tokio::task::spawn_blocking(move || blobs.list())
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        .map_err(|source| RegistryError::Io { path: inner.config.root.join("blobs"), source })?;
    let young = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = GcReport { links_removed, uploads_expired, ..GcReport::default() };
    for file in files {
        if live.contains(&file.digest.to_string()) || file.modified > young {
            continue;
        }
        match tokio::fs::remove_file(&file.path).await {
            Ok(()) => {
                report.blobs_removed += 1;
                report.bytes_freed += file.len;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(RegistryError::Io { path: file.path, source }),
        }
    }
    if report.blobs_removed > 0 || report.links_removed > 0 || report.uploads_expired > 0 {
        tracing::info!(
            blobs = report.blobs_removed,
            bytes = report.bytes_freed,
            links = report.links_removed,
            uploads = report.uploads_expired,
            "registry garbage collected"
        );
    }
    Ok(report)
}
