//! The pull pipeline. Per layer, one async task and one blocking thread:
//!
//! ```text
//! network ─▶ sha256 + size (async) ─▶ bounded channel ─▶ decompress ─▶ sha256 (diff_id) ─▶ tar ─▶ files
//!                                                        └──────────── blocking thread ──────────────┘
//! ```
//! No whole-layer temporary file: the layer is unpacked into `tmp/<pid>-<uuid>/fs` while it downloads and
//! renamed to `layers/<diff_id hex>` only when the compressed digest, the size and the diff_id all match.
//! Layers download in parallel (up to [`PARALLEL_LAYERS`]); a layer another pull is already fetching is
//! awaited, not fetched twice (a per-diff_id async lock), and a layer in the cache is not fetched at all.

use super::layout::{ImageLayer, ImageRecord, LayerRecord};
use super::media::{self, Descriptor, LayerKind, ManifestDocument};
use super::reference::Reference;
use super::registry::{FetchError, Session};
use super::unpack::{self, StreamFailure, UnpackError};
use super::{count_down, count_up, CredentialProvider, Image, ImageStoreError, Inner, PullError, PullProgress};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};

/// Layers downloaded at once per pull.
pub const PARALLEL_LAYERS: usize = 4;
/// Chunks buffered between the network and the extractor (hyper's chunks are up to ~16 KiB... 512 KiB).
const CHANNEL_CHUNKS: usize = 64;
const MAX_CONFIG_BYTES: usize = 8 << 20;
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// The feed's reason when another layer of the pull failed first.
const CANCELLED: &str = "cancelled: another layer of the pull failed";

pub(crate) async fn pull(
    inner: &Arc<Inner>,
    reference_text: &str,
    creds: &dyn CredentialProvider,
    progress: &dyn PullProgress,
) -> Result<Image, PullError> {
    let reference = super::normalize_reference(reference_text)
        .map_err(|source| PullError::Reference { reference: reference_text.to_string(), source })?;
    let name = reference.to_string();
    let store_err = |source: ImageStoreError| PullError::Store { reference: name.clone(), source };

    // A digest already cached whole needs no registry at all.
    if reference.digest.is_some() {
        let (i, r) = (inner.clone(), reference.clone());
        if let Some(found) = super::blocking(move || i.layout.lookup_record(&r)).await.map_err(store_err)? {
            for layer in &found.layers {
                progress.layer_done(&layer.digest, true);
            }
            record(inner, &name, &found.manifest_digest, None).await.map_err(store_err)?;
            return Ok(found.to_image(name));
        }
    }

    let session = inner.client.session(&reference, creds.credentials(&reference.registry));
    let (manifest_digest, manifest) = resolve(&session, &reference).await?;
    let bad = |reason: String| PullError::Manifest { reference: name.clone(), reason };

    // The same image under another reference (or this one, again): nothing to fetch.
    {
        let (i, d) = (inner.clone(), manifest_digest.clone());
        let cached = super::blocking(move || {
            Ok(i.layout.read_image(&d)?.filter(|r| r.layers.iter().all(|l| i.layout.layer_present(&l.diff_id))))
        })
        .await
        .map_err(store_err)?;
        if let Some(record) = cached {
            for layer in &record.layers {
                progress.layer_done(&layer.digest, true);
            }
            record_image(inner, &name, record.clone()).await.map_err(store_err)?;
            return Ok(record.to_image(name));
        }
    }

    // Config: verified, then checked against the manifest.
    if !matches!(manifest.config.media_type.as_str(), media::OCI_CONFIG | media::DOCKER_CONFIG) {
        return Err(bad(format!(
            "config media type {:?} is not a container image config (is this an artifact?)",
            manifest.config.media_type
        )));
    }
    let config_blob = fetch_config(&session, &manifest.config)
        .await
        .map_err(|reason| bad(format!("failed to fetch config {}: {reason}", manifest.config.digest)))?;
    let (file, config) = media::parse_config(&config_blob, manifest.layers.len()).map_err(bad)?;
    if !file.os.is_empty() && file.os != "linux" {
        return Err(bad(format!("image is for {}/{}, not linux/amd64", file.os, file.architecture)));
    }
    let mut plans = Vec::with_capacity(manifest.layers.len());
    for (desc, diff_id) in manifest.layers.iter().zip(&file.rootfs.diff_ids) {
        let compression = match media::layer_kind(&desc.media_type) {
            LayerKind::Tar(c) => c,
            LayerKind::NonDistributable => {
                return Err(bad(format!(
                "layer {} is a foreign or non-distributable layer ({}); Skiff pulls only layers the registry serves",
                desc.digest, desc.media_type
            )))
            }
            LayerKind::Unknown => {
                return Err(bad(format!("layer {} has unsupported media type {:?}", desc.digest, desc.media_type)))
            }
        };
        if !super::reference::is_sha256_digest(&desc.digest) {
            return Err(bad(format!("layer digest {:?} is not a sha256 digest", desc.digest)));
        }
        plans.push(LayerPlan { desc: desc.clone(), diff_id: diff_id.clone(), compression });
    }

    // Layers: in parallel, each once.
    let diff_ids: Vec<String> = plans.iter().map(|p| p.diff_id.clone()).collect();
    count_up(&inner.pinned, &diff_ids);
    let pinned = Unpin(inner.clone(), diff_ids);
    // The first failure cancels the other layers, and the pull returns only once they have stopped and
    // cleaned up: a failed pull leaves nothing behind when it returns.
    let limit = Semaphore::new(PARALLEL_LAYERS);
    let (cancel, cancelled) = watch::channel(false);
    let results = futures_util::future::join_all(plans.iter().map(|plan| {
        let (limit, session, name, cancel) = (&limit, &session, &name, &cancel);
        let mut cancelled = cancelled.clone();
        async move {
            let permit = tokio::select! {
                p = limit.acquire() => p.ok(),
                _ = cancelled.wait_for(|c| *c) => None,
            };
            if permit.is_none() || *cancelled.borrow() {
                return Err(None);
            }
            let result = ensure_layer(inner, session, name, plan, progress, cancelled).await;
            if result.is_err() {
                let _ = cancel.send(true);
            }
            result
        }
    }))
    .await;
    let mut fetched = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Ok(record) => fetched.push(record),
            Err(Some(e)) if first_error.is_none() => first_error = Some(e),
            Err(_) => {}
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    let record = ImageRecord {
        manifest_digest: manifest_digest.clone(),
        config_digest: manifest.config.digest.clone(),
        layers: plans
            .iter()
            .map(|p| ImageLayer {
                diff_id: p.diff_id.clone(),
                digest: p.desc.digest.clone(),
                media_type: p.desc.media_type.clone(),
                compressed_size: p.desc.size,
            })
            .collect(),
        config,
        size: fetched.iter().map(|l| l.size).sum(),
    };
    record_image(inner, &name, record.clone()).await.map_err(store_err)?;
    drop(pinned);
    Ok(record.to_image(name))
}

struct LayerPlan {
    desc: Descriptor,
    diff_id: String,
    compression: media::Compression,
}

/// Unpins layers when a pull ends, however it ends.
struct Unpin(Arc<Inner>, Vec<String>);
impl Drop for Unpin {
    fn drop(&mut self) {
        count_down(&self.0.pinned, &self.1);
    }
}

/// Resolves the reference to an image manifest: by tag or digest, through an index to linux/amd64. Returns
/// the manifest's digest and the manifest. One retry for transient failures.
async fn resolve(session: &Session, reference: &Reference) -> Result<(String, media::Manifest), PullError> {
    let name = reference.to_string();
    let fail = |reason: String| PullError::Resolve { reference: name.clone(), reason };
    let bad = |reason: String| PullError::Manifest { reference: name.clone(), reason };
    let fetched = fetch_manifest(session, reference.manifest_ref()).await.map_err(|e| fail(e.to_string()))?;
    let digest = manifest_digest(&fetched, reference.digest.as_deref()).map_err(&bad)?;
    match media::parse_manifest(&fetched.body, fetched.content_type.as_deref()).map_err(&bad)? {
        ManifestDocument::Manifest(m) => Ok((digest, m)),
        ManifestDocument::Index(index) => {
            let chosen = media::select_platform(&index, "linux", "amd64")
                .ok_or_else(|| bad("no matching manifest for linux/amd64 in the manifest list entries".into()))?
                .clone();
            if !super::reference::is_sha256_digest(&chosen.digest) {
                return Err(bad(format!("index entry digest {:?} is not a sha256 digest", chosen.digest)));
            }
            let inner = fetch_manifest(session, &chosen.digest).await.map_err(|e| fail(e.to_string()))?;
            let inner_digest = manifest_digest(&inner, Some(&chosen.digest)).map_err(&bad)?;
            if inner.body.len() as u64 != chosen.size {
                return Err(bad(format!(
                    "manifest {} is {} bytes, the index says {}",
                    chosen.digest,
                    inner.body.len(),
                    chosen.size
                )));
            }
            match media::parse_manifest(&inner.body, inner.content_type.as_deref()).map_err(&bad)? {
                ManifestDocument::Manifest(m) => Ok((inner_digest, m)),
                ManifestDocument::Index(_) => Err(bad(format!("index entry {} is another index", chosen.digest))),
            }
        }
    }
}

async fn fetch_manifest(session: &Session, reference: &str) -> Result<super::registry::FetchedManifest, FetchError> {
    match session.manifest(reference).await {
        Err(FetchError::Transient(_)) => {
            tokio::time::sleep(RETRY_DELAY).await;
            session.manifest(reference).await
        }
        r => r,
    }
}

/// The manifest's digest: the sha256 of its bytes, which must equal the digest asked for and the
/// registry's `Docker-Content-Digest` when either is known.
fn manifest_digest(m: &super::registry::FetchedManifest, expected: Option<&str>) -> Result<String, String> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&m.body)));
    if let Some(expected) = expected {
        if digest != expected {
            return Err(format!("manifest digest mismatch: asked for {expected}, the registry sent {digest}"));
        }
    }
    if let Some(header) = m.digest_header.as_deref().filter(|h| h.starts_with("sha256:")) {
        if header != digest {
            return Err(format!("manifest digest mismatch: Docker-Content-Digest says {header}, the body is {digest}"));
        }
    }
    Ok(digest)
}

async fn fetch_config(session: &Session, desc: &Descriptor) -> Result<Bytes, String> {
    if !super::reference::is_sha256_digest(&desc.digest) {
        return Err(format!("config digest {:?} is not a sha256 digest", desc.digest));
    }
    if desc.size > MAX_CONFIG_BYTES as u64 {
        return Err(format!("config is {} bytes, more than the {MAX_CONFIG_BYTES} allowed", desc.size));
    }
    let body = match session.small_blob(&desc.digest, MAX_CONFIG_BYTES).await {
        Err(FetchError::Transient(_)) => {
            tokio::time::sleep(RETRY_DELAY).await;
            session.small_blob(&desc.digest, MAX_CONFIG_BYTES).await
        }
        r => r,
    }
    .map_err(|e| e.to_string())?;
    let got = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if got != desc.digest {
        return Err(format!("digest mismatch: the registry sent {got}"));
    }
    if body.len() as u64 != desc.size {
        return Err(format!("size mismatch: the manifest says {} bytes, the registry sent {}", desc.size, body.len()));
    }
    Ok(body)
}

/// Makes sure a layer is in the cache: found there, awaited from a concurrent pull, or fetched.
/// `Err(None)`: cancelled because another layer of the pull failed.
async fn ensure_layer(
    inner: &Arc<Inner>,
    session: &Session,
    name: &str,
    plan: &LayerPlan,
    progress: &dyn PullProgress,
    mut cancelled: watch::Receiver<bool>,
) -> Result<LayerRecord, Option<PullError>> {
    let digest = &plan.desc.digest;
    let lock = layer_lock(inner, &plan.diff_id);
    let _guard = tokio::select! {
        g = lock.lock() => g,
        _ = cancelled.wait_for(|c| *c) => return Err(None),
    };
    if let Some(record) = cached_layer(inner, &plan.diff_id).await {
        progress.layer_done(digest, true);
        return Ok(record);
    }
    progress.layer_started(digest, plan.desc.size);
    let record = fetch_layer(inner, session, name, plan, progress, cancelled).await?;
    progress.layer_done(digest, false);
    Ok(record)
}

fn layer_lock(inner: &Inner, diff_id: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = match inner.layer_locks.lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(lock) = locks.get(diff_id).and_then(|w| w.upgrade()) {
        return lock;
    }
    locks.retain(|_, w| w.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(diff_id.to_string(), Arc::downgrade(&lock));
    lock
}

async fn cached_layer(inner: &Arc<Inner>, diff_id: &str) -> Option<LayerRecord> {
    let (i, d) = (inner.clone(), diff_id.to_string());
    super::blocking(move || i.layout.read_layer(&d)).await.ok().flatten()
}

/// What flows from the download to the extractor.
enum Chunk {
    Data(Bytes),
    /// The download failed; the extractor stops with this reason.
    Failed(String),
    /// The whole blob arrived.
    End,
}

/// The extractor's side of the channel, as a blocking `Read`. A channel closed without [`Chunk::End`] (the
/// pull was cancelled) is an error, never a clean end of stream.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    done: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.current = b,
                Some(Chunk::End) => self.done = true,
                Some(Chunk::Failed(reason)) => return Err(io::Error::other(StreamFailure(reason))),
                None => return Err(io::Error::other(StreamFailure("the download was cancelled".into()))),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Removes a temporary directory unless disarmed.
struct TempDir(Option<PathBuf>);
impl TempDir {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }
    fn disarm(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = super::remove::remove_tree(&p);
        }
    }
}

async fn fetch_layer(
    inner: &Arc<Inner>,
    session: &Session,
    name: &str,
    plan: &LayerPlan,
    progress: &dyn PullProgress,
    mut cancelled: watch::Receiver<bool>,
) -> Result<LayerRecord, Option<PullError>> {
    let digest = plan.desc.digest.clone();
    let fetch_err =
        |reason: String| Some(PullError::LayerFetch { reference: name.to_string(), digest: digest.clone(), reason });
    let verify_err =
        |reason: String| Some(PullError::LayerVerify { reference: name.to_string(), digest: digest.clone(), reason });
    let store_err = |source: ImageStoreError| Some(PullError::Store { reference: name.to_string(), source });

    let request = async {
        match session.blob(&digest).await {
            Err(FetchError::Transient(_)) => {
                tokio::time::sleep(RETRY_DELAY).await;
                session.blob(&digest).await
            }
            r => r,
        }
    };
    let resp = tokio::select! {
        r = request => r.map_err(|e| fetch_err(e.to_string()))?,
        _ = cancelled.wait_for(|c| *c) => return Err(None),
    };

    let tmp = inner.layout.new_tmp();
    std::fs::create_dir(&tmp)
        .map_err(|e| store_err(ImageStoreError::Io { op: "create", path: tmp.clone(), source: e }))?;
    // The extractor owns the temporary directory: it removes it when it fails (after it stopped writing,
    // so never racing its own writes), or hands it back for the commit.
    let tmp = TempDir(Some(tmp));
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let limits = inner.config.limits.clone();
    let compression = plan.compression;
    let extractor = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { rx, current: Bytes::new(), done: false };
        let stats = unpack::unpack_stream(reader, compression, &tmp.path().join("fs"), &limits, false)?;
        Ok::<_, UnpackError>((stats, tmp))
    });

    // Feed the extractor, hashing and counting the compressed bytes on the way.
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut received: u64 = 0;
    let expected = plan.desc.size;
    let feed: Result<bool, String> = loop {
        let next = tokio::select! {
            f = tokio::time::timeout(super::registry::REQUEST_TIMEOUT, body.frame()) => f,
            _ = cancelled.wait_for(|c| *c) => break Err(CANCELLED.into()),
        };
        let frame = match next {
            Err(_) => break Err(format!("no data for {} s", super::registry::REQUEST_TIMEOUT.as_secs())),
            Ok(None) => break Ok(true),
            Ok(Some(Err(e))) => break Err(format!("the download failed after {received} bytes: {e}")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        received += data.len() as u64;
        if received > expected {
            break Err(format!("the registry sent more than the {expected} bytes the manifest says"));
        }
        hasher.update(&data);
        progress.layer_progress(&digest, received);
        if tx.send(Chunk::Data(data)).await.is_err() {
            // The extractor stopped: its error is the one to report.
            break Ok(false);
        }
    };
    match &feed {
        Ok(true) => {
            let _ = tx.send(Chunk::End).await;
        }
        Ok(false) => {}
        Err(reason) => {
            let _ = tx.send(Chunk::Failed(reason.clone())).await;
        }
    }
    drop(tx);
    let unpacked =
        extractor.await.map_err(|e| store_err(ImageStoreError::Setup(format!("the extractor thread failed: {e}"))))?;

    // Which failure to report: a broken download first, then a blob that is not the one asked for (even if
    // it also failed to unpack: the bytes are wrong), then the extractor's own reason, then the diff_id.
    let complete = matches!(feed, Ok(true));
    match feed {
        Err(reason) if reason == CANCELLED => return Err(None),
        Err(reason) => return Err(fetch_err(reason)),
        Ok(_) => {}
    }
    if complete {
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if received != expected {
            return Err(verify_err(format!(
                "size mismatch: the manifest says {expected} bytes, the registry sent {received}"
            )));
        }
        if got != digest {
            return Err(verify_err(format!("digest mismatch: the registry sent {got}")));
        }
    }
    let (stats, tmp) = match unpacked {
        Ok(done) => done,
        Err(UnpackError::Stream(reason)) => return Err(fetch_err(reason)),
        Err(source) => {
            return Err(Some(PullError::Extract { reference: name.to_string(), digest: digest.clone(), source }))
        }
    };
    if !complete {
        return Err(fetch_err("the extractor stopped before the end of the blob".into()));
    }
    if stats.diff_id != plan.diff_id {
        return Err(verify_err(format!(
            "diff_id mismatch: the uncompressed layer is {}, the image config says {}",
            stats.diff_id, plan.diff_id
        )));
    }

    // Commit: the record inside, everything synced, one rename.
    let record = LayerRecord {
        diff_id: plan.diff_id.clone(),
        digest: digest.clone(),
        media_type: plan.desc.media_type.clone(),
        compressed_size: received,
        size: stats.bytes,
        entries: stats.entries,
    };
    let (i, r) = (inner.clone(), record.clone());
    super::blocking(move || commit_layer(&i, tmp, &r)).await.map_err(store_err)?;
    Ok(record)
}

/// Writes `layer.json`, syncs the file system (a cached layer must not come back empty after a crash) and
/// renames the directory into place. Another process that got there first wins; ours is discarded.
fn commit_layer(inner: &Inner, tmp: TempDir, record: &LayerRecord) -> Result<(), ImageStoreError> {
    super::layout::write_json(&tmp.path().join("layer.json"), record)?;
    let dir = rustix::fs::open(
        tmp.path(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| ImageStoreError::Io { op: "open", path: tmp.path().to_path_buf(), source: e.into() })?;
    rustix::fs::syncfs(&dir).map_err(|e| ImageStoreError::Io {
        op: "sync",
        path: tmp.path().to_path_buf(),
        source: e.into(),
    })?;
    let dest = inner.layout.layer_dir(&record.diff_id);
    match std::fs::rename(tmp.path(), &dest) {
        Ok(()) => {
            tmp.disarm();
            Ok(())
        }
        Err(_) if inner.layout.layer_present(&record.diff_id) => Ok(()),
        Err(e) => Err(ImageStoreError::Io { op: "rename a layer into", path: dest, source: e }),
    }
}

/// Records the image and the reference under the exclusive lock, after checking its layers are all there
/// (a garbage collection in another process may have raced the pull).
async fn record_image(inner: &Arc<Inner>, name: &str, image: ImageRecord) -> Result<(), ImageStoreError> {
    let digest = image.manifest_digest.clone();
    record(inner, name, &digest, Some(image)).await
}

async fn record(
    inner: &Arc<Inner>,
    name: &str,
    manifest_digest: &str,
    image: Option<ImageRecord>,
) -> Result<(), ImageStoreError> {
    let (i, name, digest) = (inner.clone(), name.to_string(), manifest_digest.to_string());
    super::blocking(move || {
        let _lock = i.layout.lock(true)?;
        if let Some(image) = &image {
            if let Some(missing) = image.layers.iter().find(|l| !i.layout.layer_present(&l.diff_id)) {
                return Err(ImageStoreError::LayerMissing { image: name, diff_id: missing.diff_id.clone() });
            }
            i.layout.write_image(image)?;
        } else {
            i.layout.touch_image(&digest);
        }
        if i.layout.read_ref(&name)?.is_none_or(|r| r.manifest_digest != digest) {
            i.layout.write_ref(&name, &digest)?;
        }
        Ok(())
    })
    .await
}
