//! Removing references and images, and garbage collection: least recently used images first until the
//! cache fits, never an image whose layers back a mounted root filesystem, never a layer in use or held by
//! a running pull; layers no image references go too (after a grace period, which covers a pull in another
//! process that has unpacked a layer but not yet recorded its image).

use super::layout::RemoveTarget;
use super::{ImageStoreError, Inner};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

/// Unreferenced layers younger than this are left alone (a pull in another process may be about to record
/// the image that uses them).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(10 * 60);

/// What a garbage collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Manifest digests of the images removed.
    pub images_removed: Vec<String>,
    pub layers_removed: u64,
    /// Unpacked bytes of the layers removed.
    pub bytes_freed: u64,
    /// Unpacked bytes of the layers left.
    pub cache_bytes: u64,
}

/// Layers that must stay: under a mount (this process's count or the mount table) or held by a pull.
fn busy_layers(inner: &Inner) -> HashSet<String> {
    let mut busy = super::rootfs::mounted_layers();
    for map in [&inner.in_use, &inner.pinned] {
        if let Ok(m) = map.lock() {
            busy.extend(m.keys().cloned());
        }
    }
    busy
}

pub(crate) fn remove(inner: &Inner, target: &RemoveTarget) -> Result<bool, ImageStoreError> {
    let _lock = inner.layout.lock(true)?;
    let refs = inner.layout.refs()?;
    let (removed, manifest) = match target {
        RemoveTarget::Reference(name) => {
            let manifest = refs.iter().find(|r| &r.reference == name).map(|r| r.manifest_digest.clone());
            (inner.layout.remove_ref(name)?, manifest)
        }
        RemoveTarget::Manifest(digest) => {
            let mut any = false;
            for r in refs.iter().filter(|r| &r.manifest_digest == digest) {
                any |= inner.layout.remove_ref(&r.reference)?;
            }
            let exists = inner.layout.read_image(digest)?.is_some();
            (any || exists, Some(digest.clone()))
        }
    };
    let Some(manifest) = manifest else { return Ok(removed) };
    let still_named = inner.layout.refs()?.iter().any(|r| r.manifest_digest == manifest);
    if !still_named {
        remove_image_record(inner, &manifest)?;
        remove_unreferenced_layers(inner, &busy_layers(inner), None)?;
    }
    Ok(removed)
}

fn remove_image_record(inner: &Inner, manifest: &str) -> Result<(), ImageStoreError> {
    let path = inner.layout.image_path(manifest);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageStoreError::Io { op: "remove", path, source: e }),
    }
}

/// Removes layers no image record references and nothing uses. With `grace`, only those older than it.
/// Returns (count, bytes).
fn remove_unreferenced_layers(
    inner: &Inner,
    busy: &HashSet<String>,
    grace: Option<Duration>,
) -> Result<(u64, u64), ImageStoreError> {
    let referenced: HashSet<String> =
        inner.layout.images()?.into_iter().flat_map(|(r, _)| r.layers.into_iter().map(|l| l.diff_id)).collect();
    let mut count = 0;
    let mut bytes = 0;
    for id in inner.layout.layer_ids()? {
        if referenced.contains(&id) || busy.contains(&id) {
            continue;
        }
        if let Some(grace) = grace {
            let age = std::fs::metadata(inner.layout.layer_dir(&id))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            if age < grace {
                continue;
            }
        }
        let size = inner.layout.read_layer(&id).ok().flatten().map(|l| l.size).unwrap_or(0);
        remove_layer_dir(inner, &id)?;
        count += 1;
        bytes += size;
    }
    Ok((count, bytes))
}

/// Renames the layer out of `layers/` first (one atomic step: it is gone for every reader), then deletes it.
fn remove_layer_dir(inner: &Inner, diff_id: &str) -> Result<(), ImageStoreError> {
    let dir = inner.layout.layer_dir(diff_id);
    let doomed = inner.layout.new_tmp();
    match std::fs::rename(&dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageStoreError::Io { op: "remove", path: dir, source: e }),
    }
    super::remove::remove_tree(&doomed).map_err(|e| ImageStoreError::Io { op: "remove", path: doomed, source: e })
}

pub(crate) fn collect(inner: &Inner) -> Result<GcReport, ImageStoreError> {
    let _lock = inner.layout.lock(true)?;
    let busy = busy_layers(inner);
    let mut report = GcReport::default();

    let (n, b) = remove_unreferenced_layers(inner, &busy, Some(ORPHAN_GRACE))?;
    report.layers_removed += n;
    report.bytes_freed += b;

    let layer_size = |id: &str| inner.layout.read_layer(id).ok().flatten().map(|l| l.size).unwrap_or(0);
    let mut images = inner.layout.images()?;
    let present: BTreeSet<String> = inner.layout.layer_ids()?.into_iter().collect();
    let mut total: u64 = present.iter().map(|id| layer_size(id)).sum();
    // Least recently used first.
    images.sort_by_key(|(_, used)| *used);
    let mut remaining: Vec<_> = images.iter().map(|(r, _)| r.clone()).collect();
    for (image, _) in &images {
        if total <= inner.config.max_cache_bytes {
            break;
        }
        if image.layers.iter().any(|l| busy.contains(&l.diff_id)) {
            continue;
        }
        // Forget the image: its references, its record, then the layers no other image needs.
        for r in inner.layout.refs()?.iter().filter(|r| r.manifest_digest == image.manifest_digest) {
            inner.layout.remove_ref(&r.reference)?;
        }
        remove_image_record(inner, &image.manifest_digest)?;
        remaining.retain(|r| r.manifest_digest != image.manifest_digest);
        report.images_removed.push(image.manifest_digest.clone());
        let still_needed: HashSet<&str> =
            remaining.iter().flat_map(|r| r.layers.iter().map(|l| l.diff_id.as_str())).collect();
        let mut seen = HashSet::new();
        for layer in &image.layers {
            let id = layer.diff_id.as_str();
            if still_needed.contains(id) || busy.contains(id) || !seen.insert(id) || !present.contains(id) {
                continue;
            }
            let size = layer_size(id);
            remove_layer_dir(inner, id)?;
            report.layers_removed += 1;
            report.bytes_freed += size;
            total = total.saturating_sub(size);
        }
    }
    report.cache_bytes = total;
    Ok(report)
}
