//! The cache's files: paths, the JSON records of layers, images and references, atomic writes, the
//! cross-process lock, and the read side (`lookup`, `list`).

use super::media::ImageConfig;
use super::reference::Reference;
use super::{Image, ImageStoreError, ImageSummary};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A layer in the cache (`layers/<hex>/layer.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    pub diff_id: String,
    /// The compressed blob it was unpacked from.
    pub digest: String,
    pub media_type: String,
    pub compressed_size: u64,
    /// File bytes written.
    pub size: u64,
    pub entries: u64,
}

/// A layer as an image lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ImageLayer {
    pub diff_id: String,
    pub digest: String,
    pub media_type: String,
    pub compressed_size: u64,
}

/// An image in the cache (`images/<manifest hex>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub manifest_digest: String,
    pub config_digest: String,
    /// Bottom first.
    pub layers: Vec<ImageLayer>,
    pub config: ImageConfig,
    /// Unpacked bytes of the layers.
    pub size: u64,
}

/// A reference (`refs/<sha256 of reference>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefRecord {
    pub reference: String,
    pub manifest_digest: String,
}

pub(crate) enum RemoveTarget {
    Reference(String),
    Manifest(String),
}

pub(crate) struct Layout {
    root: PathBuf,
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

pub(crate) fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ImageStoreError + 'a {
    move |source| ImageStoreError::Io { op, path: path.to_path_buf(), source }
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub(crate) fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.layers_dir().join(hex_of(diff_id))
    }
    /// The overlayfs lower directory of a layer.
    pub(crate) fn layer_fs(&self, diff_id: &str) -> PathBuf {
        self.layer_dir(diff_id).join("fs")
    }
    pub(crate) fn layer_record_path(&self, diff_id: &str) -> PathBuf {
        self.layer_dir(diff_id).join("layer.json")
    }
    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    pub(crate) fn image_path(&self, manifest_digest: &str) -> PathBuf {
        self.images_dir().join(format!("{}.json", hex_of(manifest_digest)))
    }
    fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }
    fn ref_path(&self, reference: &str) -> PathBuf {
        self.refs_dir().join(format!("{}.json", hex::encode(Sha256::digest(reference.as_bytes()))))
    }
    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Creates the directories; the root is 0700 (layers hold setuid binaries and device-free but
    /// otherwise arbitrary trees that no unprivileged user should reach).
    pub(crate) fn create(&self) -> Result<(), ImageStoreError> {
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.root).map_err(io_error("create", &self.root))?;
        std::os::unix::fs::chown(&self.root, Some(0), Some(0)).ok();
        fs::set_permissions(&self.root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io_error("chmod", &self.root))?;
        for dir in [self.layers_dir(), self.images_dir(), self.refs_dir(), self.tmp_dir()] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io_error("create", &dir))?;
        }
        Ok(())
    }

    /// Removes `tmp/<pid>-…` directories whose process is gone.
    pub(crate) fn clean_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = super::remove::remove_tree(&e.path());
            }
        }
    }

    /// A fresh `tmp/<pid>-<uuid>` path (not created).
    pub(crate) fn new_tmp(&self) -> PathBuf {
        self.tmp_dir().join(format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()))
    }

    /// flock(2) on `lock`: shared or exclusive, held until the descriptor is dropped. Blocking.
    pub(crate) fn lock(&self, exclusive: bool) -> Result<OwnedFd, ImageStoreError> {
        let path = self.root.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_error("open", &path))?;
        let op =
            if exclusive { rustix::fs::FlockOperation::LockExclusive } else { rustix::fs::FlockOperation::LockShared };
        rustix::fs::flock(&file, op).map_err(|e| ImageStoreError::Io { op: "lock", path, source: e.into() })?;
        Ok(file.into())
    }

    pub(crate) fn layer_present(&self, diff_id: &str) -> bool {
        self.layer_record_path(diff_id).is_file()
    }

    pub(crate) fn read_layer(&self, diff_id: &str) -> Result<Option<LayerRecord>, ImageStoreError> {
        read_json(&self.layer_record_path(diff_id))
    }

    pub(crate) fn read_image(&self, manifest_digest: &str) -> Result<Option<ImageRecord>, ImageStoreError> {
        read_json(&self.image_path(manifest_digest))
    }

    pub(crate) fn write_image(&self, record: &ImageRecord) -> Result<(), ImageStoreError> {
        write_json(&self.image_path(&record.manifest_digest), record)
    }

    pub(crate) fn read_ref(&self, reference: &str) -> Result<Option<RefRecord>, ImageStoreError> {
        read_json(&self.ref_path(reference))
    }

    pub(crate) fn write_ref(&self, reference: &str, manifest_digest: &str) -> Result<(), ImageStoreError> {
        let record = RefRecord { reference: reference.to_string(), manifest_digest: manifest_digest.to_string() };
        write_json(&self.ref_path(reference), &record)
    }

    pub(crate) fn remove_ref(&self, reference: &str) -> Result<bool, ImageStoreError> {
        let path = self.ref_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("remove", &path)(e)),
        }
    }

    /// Every reference record.
    pub(crate) fn refs(&self) -> Result<Vec<RefRecord>, ImageStoreError> {
        let dir = self.refs_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_error("read", &dir))? {
            let e = e.map_err(io_error("read", &dir))?;
            if e.file_name().to_string_lossy().ends_with(".json") {
                if let Some(r) = read_json::<RefRecord>(&e.path())? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Every image record with its last use.
    pub(crate) fn images(&self) -> Result<Vec<(ImageRecord, SystemTime)>, ImageStoreError> {
        let dir = self.images_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_error("read", &dir))? {
            let e = e.map_err(io_error("read", &dir))?;
            if !e.file_name().to_string_lossy().ends_with(".json") {
                continue;
            }
            let used = e.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
            if let Some(r) = read_json::<ImageRecord>(&e.path())? {
                out.push((r, used));
            }
        }
        Ok(out)
    }

    /// Every layer directory's diff_id (`sha256:<hex>`).
    pub(crate) fn layer_ids(&self) -> Result<Vec<String>, ImageStoreError> {
        let dir = self.layers_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_error("read", &dir))? {
            let e = e.map_err(io_error("read", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }

    /// Marks an image used now (its record's mtime).
    pub(crate) fn touch_image(&self, manifest_digest: &str) {
        let now = rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW };
        let ts = rustix::fs::Timestamps { last_access: now, last_modification: now };
        let _ =
            rustix::fs::utimensat(rustix::fs::CWD, self.image_path(manifest_digest), &ts, rustix::fs::AtFlags::empty());
    }

    /// The image a reference names, if the cache holds it whole.
    pub(crate) fn lookup(&self, reference: &Reference) -> Result<Option<Image>, ImageStoreError> {
        Ok(self.lookup_record(reference)?.map(|r| r.to_image(reference.to_string())))
    }

    pub(crate) fn lookup_record(&self, reference: &Reference) -> Result<Option<ImageRecord>, ImageStoreError> {
        let name = reference.to_string();
        let manifest = match self.read_ref(&name)? {
            Some(r) => r.manifest_digest,
            None => match &reference.digest {
                Some(d) => d.clone(),
                None => return Ok(None),
            },
        };
        let Some(record) = self.read_image(&manifest)? else { return Ok(None) };
        if !record.layers.iter().all(|l| self.layer_present(&l.diff_id)) {
            return Ok(None);
        }
        Ok(Some(record))
    }

    pub(crate) fn list(&self) -> Result<Vec<ImageSummary>, ImageStoreError> {
        let mut by_manifest: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.refs()? {
            by_manifest.entry(r.manifest_digest).or_default().push(r.reference);
        }
        let mut out = Vec::new();
        for (record, used) in self.images()? {
            let mut references = by_manifest.remove(&record.manifest_digest).unwrap_or_default();
            references.sort();
            out.push(ImageSummary {
                references,
                manifest_digest: record.manifest_digest,
                config_digest: record.config_digest,
                layers: record.layers.len(),
                size: record.size,
                last_used: used,
            });
        }
        out.sort_by(|a, b| {
            a.references.first().cmp(&b.references.first()).then(a.manifest_digest.cmp(&b.manifest_digest))
        });
        Ok(out)
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, ImageStoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ImageStoreError::Corrupt { path: path.to_path_buf(), reason: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path)(e)),
    }
}

/// Writes `path` atomically: a temporary file beside it, fsynced, renamed over it.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ImageStoreError> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| ImageStoreError::Corrupt { path: path.to_path_buf(), reason: e.to_string() })?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = fs::OpenOptions::new().create_new(true).write(true).mode(0o600).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("write", path)(e));
    }
    Ok(())
}
