//! `skiff-registry` owns Skiff's image registry: the OCI Distribution Spec v1.1 endpoints under `/v2/`
//! (blobs, uploads, manifests, tags, catalog, referrers), the content-addressed blob files under the data
//! directory, and the image/tag/blob-link records in the store (`skiff_model::ecr`).
//!
//! It never authenticates (the API front does, before calling [`Registry::handle`]) and never manages
//! repositories (the ECR API does; a push needs the repository to exist). A blob file appears only once its
//! digest matched; a manifest record only once every blob it names is present.
//!
//! Layout under [`RegistryConfig::root`]: `blobs/<algorithm>/<2 hex>/<hex>` (complete, verified, fsynced
//! files), `uploads/<uuid>/{data,state}` (upload sessions) and short-lived temporary files in `uploads/`.
//! Module map: `http_api` (the endpoints), `routes` (URL layout), `blobs` (blob files, streamed reads),
//! `uploads` (sessions), `body` (streamed writes with hashing), `manifest` (media types, checks),
//! `records` (store transactions), `gc` (garbage collection), `digest`, `errors`.

mod blobs;
mod body;
mod digest;
mod errors;
mod gc;
mod http_api;
mod manifest;
mod records;
mod routes;
mod uploads;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use skiff_model::ecr::RegistryHosts;
use skiff_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use gc::DEFAULT_GRACE as GC_GRACE;
pub use manifest::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST};

/// Response bodies: small JSON documents or streamed blob files.
pub type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where blob files and upload sessions live (`DATA_DIR/registry`).
    pub root: PathBuf,
    pub hosts: RegistryHosts,
    /// Upload sessions idle longer than this are removed.
    pub upload_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry storage failed at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] skiff_store::StoreError),
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    /// Optimistic transactions on this key kept conflicting with concurrent writers.
    #[error("too many concurrent updates of {key}; try again")]
    Contended { key: String },
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// Blob links (repository ↔ blob) that no image of the repository used and that were older than the
    /// grace period.
    pub links_removed: u64,
    /// Upload sessions idle longer than the upload TTL.
    pub uploads_expired: u64,
}

/// The registry: cheap to share (`&Registry` from many tasks); background upload expiry stops when it is
/// dropped.
pub struct Registry {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: RegistryConfig,
    store: Arc<dyn Store>,
    blobs: blobs::BlobStore,
    uploads: uploads::Uploads,
    /// Shared by every operation that places a blob file and then records it; exclusive for garbage
    /// collection (see `gc.rs`).
    gc_lock: tokio::sync::RwLock<()>,
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Registry {
    /// Creates the directory layout under `config.root`. When called inside a tokio runtime, also starts a
    /// task that expires idle upload sessions (every TTL/2, between 10 s and 10 min).
    pub fn open(config: RegistryConfig, store: Arc<dyn Store>) -> Result<Registry, RegistryError> {
        let io = |path: PathBuf| move |source| RegistryError::Io { path, source };
        std::fs::create_dir_all(&config.root).map_err(io(config.root.clone()))?;
        let blobs_dir = config.root.join("blobs");
        let blobs = blobs::BlobStore::open(blobs_dir.clone()).map_err(io(blobs_dir))?;
        let uploads_dir = config.root.join("uploads");
        let uploads = uploads::Uploads::open(uploads_dir.clone(), config.upload_ttl).map_err(io(uploads_dir))?;
        let period = (config.upload_ttl / 2).clamp(Duration::from_secs(10), Duration::from_secs(600));
        let inner = Arc::new(Inner { config, store, blobs, uploads, gc_lock: tokio::sync::RwLock::new(()) });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&inner);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(period).await;
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner.uploads.expire_idle().await {
                        tracing::warn!("cannot expire idle upload sessions: {e}");
                    }
                }
            });
        }
        Ok(Registry { inner })
    }

    /// Serves one request whose path starts with `/v2/` (or is `/v2`), already authenticated. Generic over
    /// the request body so that tests can drive it without a socket; the server passes
    /// `hyper::body::Incoming`.
    pub async fn handle<B>(&self, req: http::Request<B>) -> http::Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::fmt::Display,
    {
        http_api::dispatch(&self.inner, req).await
    }

    /// The manifest bytes and media type of an image (ECR BatchGetImage); `None` when the repository has no
    /// image with that digest.
    pub async fn manifest(&self, repository: &str, digest: &str) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        let Some((image, _)) = records::image(self.inner.store.as_ref(), repository, digest).await? else {
            return Ok(None);
        };
        let Ok(parsed) = digest::Digest::parse(digest) else { return Ok(None) };
        let path = self.inner.blobs.path(&parsed);
        match self.inner.blobs.read(&parsed).await.map_err(|source| RegistryError::Io { path: path.clone(), source })? {
            Some(bytes) => Ok(Some((bytes, image.media_type))),
            None => Err(RegistryError::Io {
                path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "the image's manifest file is missing"),
            }),
        }
    }

    /// Removes blob files that no image of any repository references and no upload is writing, blob links
    /// unused for longer than [`GC_GRACE`], and upload sessions idle longer than the upload TTL. Safe to run
    /// while clients push (see `gc.rs`).
    pub async fn collect_garbage(&self) -> Result<GcReport, RegistryError> {
        gc::collect(&self.inner, gc::DEFAULT_GRACE).await
    }

    /// [`Registry::collect_garbage`] with another grace period: blobs linked (or files written) within
    /// `grace` are kept even when no image uses them yet.
    pub async fn collect_garbage_with_grace(&self, grace: Duration) -> Result<GcReport, RegistryError> {
        gc::collect(&self.inner, grace).await
    }

    /// Removes the image `digest` of `repository` and every tag naming it, in one transaction (ECR
    /// BatchDeleteImage by digest). `false` when there is no such image. Its blobs go at the next garbage
    /// collection once nothing else uses them.
    pub async fn delete_image(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        records::delete_image(self.inner.store.as_ref(), repository, digest).await
    }

    /// Removes the tag `tag` of `repository`; with `delete_image_if_untagged`, also the image it named when
    /// no other tag names it (ECR BatchDeleteImage by tag). Returns the digest the tag named, `None` when
    /// there was no such tag. One transaction, race-free against concurrent pushes.
    pub async fn delete_tag(
        &self,
        repository: &str,
        tag: &str,
        delete_image_if_untagged: bool,
    ) -> Result<Option<String>, RegistryError> {
        records::delete_tag(self.inner.store.as_ref(), repository, tag, delete_image_if_untagged).await
    }

    /// Removes every image, tag and blob link of `repository` and cancels its upload sessions (ECR
    /// DeleteRepository with force). Call it after deleting the `RepositoryRecord`: every registry write
    /// compares the repository record, so once it is gone nothing new can appear. Returns the number of
    /// images removed.
    pub async fn delete_repository_contents(&self, repository: &str) -> Result<u64, RegistryError> {
        let removed = records::delete_repository_contents(self.inner.store.as_ref(), repository).await?;
        self.inner
            .uploads
            .cancel_repository(repository)
            .await
            .map_err(|source| RegistryError::Io { path: self.inner.uploads.dir().to_path_buf(), source })?;
        Ok(removed)
    }
}

/// A distribution-spec error response: `{"errors":[{"code","message","detail"}]}` with `status`.
pub fn error_response(status: http::StatusCode, code: &str, message: &str) -> http::Response<Body> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": null }] }).to_string();
    http_api::json_response(status, body)
}
