//! `skiff-registry` owns Skiff's image registry: the OCI Distribution Spec v1.1 endpoints under `/v2/`
//! (blobs, uploads, manifests, tags, catalog, referrers), the content-addressed blob files under the data
//! directory, and the image/tag/blob-link records in the store (`skiff_model::ecr`).
//!
//! It never authenticates (the API front does, before calling [`Registry::handle`]) and never manages
//! repositories (the ECR API does; a push needs the repository to exist). A blob file appears only once its
//! digest matched; a manifest record only once every blob it names is present.
//!
//! PLACEHOLDER: the implementation is being written; the public API below is the contract.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt as _;
use skiff_model::ecr::RegistryHosts;
use skiff_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
}

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
}

pub struct Registry {
    _config: RegistryConfig,
    _store: Arc<dyn Store>,
}

impl Registry {
    pub fn open(config: RegistryConfig, store: Arc<dyn Store>) -> Result<Registry, RegistryError> {
        Ok(Registry { _config: config, _store: store })
    }

    /// Serves one request whose path starts with `/v2/` (or is `/v2`), already authenticated.
    pub async fn handle(&self, _req: http::Request<hyper::body::Incoming>) -> http::Response<Body> {
        error_response(http::StatusCode::NOT_FOUND, "UNSUPPORTED", "not implemented yet")
    }

    /// The manifest bytes and media type of an image (ECR BatchGetImage).
    pub async fn manifest(&self, _repository: &str, _digest: &str) -> Result<Option<(Vec<u8>, String)>, RegistryError> {
        Ok(None)
    }

    /// Removes blob files that no image of any repository references and no upload is writing.
    pub async fn collect_garbage(&self) -> Result<GcReport, RegistryError> {
        Ok(GcReport::default())
    }
}

/// A distribution-spec error response: `{"errors":[{"code","message","detail"}]}` with `status`.
pub fn error_response(status: http::StatusCode, code: &str, message: &str) -> http::Response<Body> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message, "detail": null }] }).to_string();
    let mut resp =
        http::Response::new(BoxBody::new(http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {})));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    resp
}
