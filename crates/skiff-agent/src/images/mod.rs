//! The node's image store: pulls images from OCI / Docker registries, verifies every blob, unpacks each
//! layer once into a content-addressed cache shared by all tasks, assembles root filesystems with overlayfs
//! and collects garbage least-recently-used first.
//!
//! Module map: `reference` (Docker-style reference normalisation), `media` (manifests, indexes, configs,
//! media types), `registry` (the v2 client and its auth flows), `unpack` (the safe tar extractor),
//! `layout` (the cache's files and records), `pull` (the streaming pull pipeline), `rootfs` (overlay
//! mounts), `gc`.
//!
//! Cache layout under [`ImageStoreConfig::root`] (mode 0700: layers hold setuid files):
//! - `layers/<diff_id hex>/fs/` an unpacked layer (an overlayfs lower directory) and
//!   `layers/<diff_id hex>/layer.json` its record. A layer directory appears by one `rename` only after the
//!   compressed digest, the size and the diff_id all matched; a failed layer leaves nothing behind.
//! - `images/<manifest hex>.json` an image: config digest, layers, config defaults; its mtime is the
//!   image's last use.
//! - `refs/<sha256 of the reference>.json` a normalised reference → manifest digest.
//! - `tmp/<pid>-<uuid>/` layers being unpacked (removed on failure, and at open when their process is gone).
//! - `lock` flock(2): shared while mounting, exclusive while records change or garbage is collected, so
//!   several processes (the server's agent, `skiff images`) can share one cache.

mod gc;
mod layout;
pub mod media;
mod pull;
pub mod reference;
mod registry;
pub(crate) mod remove;
mod rootfs;
pub mod unpack;

pub use gc::GcReport;
pub use media::{Compression, ImageConfig};
pub use reference::{normalize_reference, Reference, ReferenceError};
pub use rootfs::Rootfs;
pub use unpack::{unpack_compressed_layer, unpack_layer, UnpackError, UnpackLimits, UnpackStats};

use layout::{ImageRecord, Layout};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

/// How an image store is set up.
#[derive(Debug, Clone)]
pub struct ImageStoreConfig {
    /// The cache directory, e.g. `DATA_DIR/agent/images`.
    pub root: PathBuf,
    /// Registries (`host` or `host:port`) reached over plain http. Loopback hosts always are.
    pub insecure_registries: Vec<String>,
    /// What garbage collection shrinks the cache to (unpacked bytes).
    pub max_cache_bytes: u64,
    pub limits: UnpackLimits,
}

impl ImageStoreConfig {
    /// A config for `root` with no insecure registries, a 20 GiB cache and the default limits.
    pub fn new(root: impl Into<PathBuf>) -> ImageStoreConfig {
        ImageStoreConfig {
            root: root.into(),
            insecure_registries: Vec::new(),
            max_cache_bytes: DEFAULT_MAX_CACHE_BYTES,
            limits: UnpackLimits::default(),
        }
    }
}

pub const DEFAULT_MAX_CACHE_BYTES: u64 = 20 << 30;

/// Credentials for a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryCredentials {
    /// Sent as Basic to registries that ask for it, and to a Bearer challenge's token server.
    Basic { username: String, password: String },
    /// A registry token, sent as `Authorization: Bearer` whatever the challenge.
    Bearer(String),
}

impl std::fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryCredentials::Basic { username, .. } => write!(f, "Basic({username}:***)"),
            RegistryCredentials::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// Who knows the credentials of a registry (by its host, `host:port` as in the reference).
pub trait CredentialProvider: Send + Sync {
    fn credentials(&self, registry_host: &str) -> Option<RegistryCredentials>;
}

/// Anonymous pulls only.
pub struct NoCredentials;
impl CredentialProvider for NoCredentials {
    fn credentials(&self, _: &str) -> Option<RegistryCredentials> {
        None
    }
}

/// The same credentials for every registry (what `skiff images pull --username` gives).
pub struct StaticCredentials(pub Option<RegistryCredentials>);
impl CredentialProvider for StaticCredentials {
    fn credentials(&self, _: &str) -> Option<RegistryCredentials> {
        self.0.clone()
    }
}

/// Progress of a pull, layer by layer (`digest` is the layer's compressed digest, as `docker pull` shows).
pub trait PullProgress: Send + Sync {
    /// A layer is needed; `size` is its compressed size.
    fn layer_started(&self, digest: &str, size: u64);
    /// `bytes` of it have arrived so far.
    fn layer_progress(&self, digest: &str, bytes: u64);
    /// Unpacked and verified, or found in the cache (`cached`).
    fn layer_done(&self, digest: &str, cached: bool);
}

/// Progress nobody watches.
pub struct NoProgress;
impl PullProgress for NoProgress {
    fn layer_started(&self, _: &str, _: u64) {}
    fn layer_progress(&self, _: &str, _: u64) {}
    fn layer_done(&self, _: &str, _: bool) {}
}

/// A pulled image, ready for [`ImageStore::rootfs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The normalised reference it was pulled or looked up by.
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Layer ids (diff_ids), bottom first.
    pub layers: Vec<String>,
    pub config: ImageConfig,
    /// Unpacked bytes of its layers.
    pub size: u64,
}

/// One image of [`ImageStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// Every reference that names it, sorted.
    pub references: Vec<String>,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: usize,
    /// Unpacked bytes of its layers.
    pub size: u64,
    pub last_used: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    #[error("cannot {op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("image store record {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{reference:?} is not a valid image reference: {source}")]
    Reference { reference: String, source: ReferenceError },
    #[error("layer {diff_id} of image {image} is not in the image store")]
    LayerMissing { image: String, diff_id: String },
    #[error("cannot mount the root filesystem of {image} at {path}: {source}")]
    Mount { image: String, path: PathBuf, source: std::io::Error },
    #[error("path {0} cannot be used in an overlay mount: it contains ':', ',' or '\\'")]
    UnmountablePath(PathBuf),
    #[error("image store setup: {0}")]
    Setup(String),
}

/// Why a pull failed: the text ECS shows as a task's stopped reason, naming the image, the layer digest
/// where one is involved, and what failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("CannotPullContainerError: {source}: {reference:?}")]
    Reference { reference: String, source: ReferenceError },
    /// The manifest could not be fetched: not found, unauthorized, unreachable.
    #[error("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {reference}: {reason}")]
    Resolve { reference: String, reason: String },
    /// The manifest, index or config is unusable (bad JSON, unsupported media type, no linux/amd64, digest
    /// mismatch, a foreign layer).
    #[error("CannotPullContainerError: {reference}: {reason}")]
    Manifest { reference: String, reason: String },
    /// A layer blob could not be downloaded.
    #[error("CannotPullContainerError: failed to fetch layer {digest} of {reference}: {reason}")]
    LayerFetch { reference: String, digest: String, reason: String },
    /// A layer was downloaded but is not what the manifest and config promise (digest, size, diff_id).
    #[error("CannotPullContainerError: failed to verify layer {digest} of {reference}: {reason}")]
    LayerVerify { reference: String, digest: String, reason: String },
    #[error("CannotPullContainerError: failed to extract layer {digest} of {reference}: {source}")]
    Extract { reference: String, digest: String, source: UnpackError },
    #[error("CannotPullContainerError: {reference}: {source}")]
    Store { reference: String, source: ImageStoreError },
}

/// The image store: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ImageStoreConfig,
    pub(crate) layout: Layout,
    pub(crate) client: registry::RegistryClient,
    /// One in-flight download per layer (single flight), by diff_id.
    pub(crate) layer_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Layers under a mounted rootfs of this process, by diff_id.
    pub(crate) in_use: Mutex<HashMap<String, usize>>,
    /// Layers a running pull holds before its image is recorded, by diff_id.
    pub(crate) pinned: Mutex<HashMap<String, usize>>,
}

impl ImageStore {
    /// Opens (creating) the cache at `config.root` and removes what dead processes left in `tmp/`.
    pub fn open(config: ImageStoreConfig) -> Result<ImageStore, ImageStoreError> {
        let root = std::path::absolute(&config.root).map_err(|e| ImageStoreError::Io {
            op: "resolve",
            path: config.root.clone(),
            source: e,
        })?;
        rootfs::check_mountable(&root)?;
        let layout = Layout::new(root);
        layout.create()?;
        layout.clean_stale_tmp();
        let client = registry::RegistryClient::new(&config.insecure_registries).map_err(ImageStoreError::Setup)?;
        let config = ImageStoreConfig { root: layout.root().to_path_buf(), ..config };
        Ok(ImageStore {
            inner: Arc::new(Inner {
                config,
                layout,
                client,
                layer_locks: Mutex::new(HashMap::new()),
                in_use: Mutex::new(HashMap::new()),
                pinned: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &ImageStoreConfig {
        &self.inner.config
    }

    /// Pulls `reference`: resolves it with the registry (a tag is always re-resolved; a digest already in
    /// the cache needs no network), fetches what the cache lacks and records the image.
    pub async fn pull(
        &self,
        reference: &str,
        creds: &dyn CredentialProvider,
        progress: &dyn PullProgress,
    ) -> Result<Image, PullError> {
        pull::pull(&self.inner, reference, creds, progress).await
    }

    /// The image `reference` names in the cache, without any network, if it is there whole.
    pub async fn get(&self, reference: &str) -> Result<Option<Image>, ImageStoreError> {
        let r = parse(reference)?;
        let inner = self.inner.clone();
        blocking(move || inner.layout.lookup(&r)).await
    }

    /// Every image in the cache with its references, sorted by first reference.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageStoreError> {
        self.inner.layout.list()
    }

    /// Forgets `reference` (or, given a bare `sha256:…` manifest digest, every reference to it); the image
    /// and its layers go when nothing else names or uses them. False when nothing matched.
    pub async fn remove(&self, reference: &str) -> Result<bool, ImageStoreError> {
        let target = if reference::is_sha256_digest(reference) {
            layout::RemoveTarget::Manifest(reference.to_string())
        } else {
            layout::RemoveTarget::Reference(parse(reference)?.to_string())
        };
        let inner = self.inner.clone();
        blocking(move || gc::remove(&inner, &target)).await
    }

    /// Mounts the image's root filesystem at `task_dir/rootfs` (overlayfs: the cached layers as lower
    /// directories, `task_dir/upper` and `task_dir/work` for the task's writes). The layers count as in use
    /// until the [`Rootfs`] is unmounted or dropped.
    pub async fn rootfs(&self, image: &Image, task_dir: &Path) -> Result<Rootfs, ImageStoreError> {
        let inner = self.inner.clone();
        let image = image.clone();
        let task_dir = task_dir.to_path_buf();
        blocking(move || rootfs::mount(inner, &image, &task_dir)).await
    }

    /// Removes least-recently-used images until the cache fits `max_cache_bytes`, never one whose layers
    /// back a mounted root filesystem; removes unreferenced layers too.
    pub async fn collect_garbage(&self) -> Result<GcReport, ImageStoreError> {
        let inner = self.inner.clone();
        blocking(move || gc::collect(&inner)).await
    }
}

fn parse(reference: &str) -> Result<Reference, ImageStoreError> {
    normalize_reference(reference)
        .map_err(|source| ImageStoreError::Reference { reference: reference.to_string(), source })
}

/// Runs blocking file-system work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageStoreError> + Send + 'static,
) -> Result<T, ImageStoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageStoreError::Setup(format!("a blocking image store task failed: {e}")))?
}

impl ImageRecord {
    pub(crate) fn to_image(&self, reference: String) -> Image {
        Image {
            reference,
            manifest_digest: self.manifest_digest.clone(),
            config_digest: self.config_digest.clone(),
            layers: self.layers.iter().map(|l| l.diff_id.clone()).collect(),
            config: self.config.clone(),
            size: self.size,
        }
    }
}

/// Counts per key, for in-use and pinned layers.
pub(crate) fn count_up(map: &Mutex<HashMap<String, usize>>, keys: &[String]) {
    if let Ok(mut m) = map.lock() {
        for k in keys {
            *m.entry(k.clone()).or_insert(0) += 1;
        }
    }
}

pub(crate) fn count_down(map: &Mutex<HashMap<String, usize>>, keys: &[String]) {
    if let Ok(mut m) = map.lock() {
        for k in keys {
            if let Some(n) = m.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    m.remove(k);
                }
            }
        }
    }
}
