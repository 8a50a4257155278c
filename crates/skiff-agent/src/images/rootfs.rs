//! Root filesystems: an overlayfs mount per task, the image's cached layers as read-only lower directories
//! (top layer first), `upper` and `work` in the task's directory. Mounted with mount(2) (or, when the layer
//! list is longer than mount(2)'s one-page option string, the new mount API's `lowerdir+`), torn down with
//! `umount2(MNT_DETACH)` and the directories removed.

use super::{count_down, count_up, Image, ImageStoreError, Inner};
use rustix::mount::{self as rmount, MountFlags, UnmountFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// mount(2) takes at most one page of options.
const MAX_MOUNT_DATA: usize = 4095;

/// A mounted root filesystem. Unmount it with [`Rootfs::unmount`]; dropping it unmounts too (best effort).
/// While it exists its layers count as in use and garbage collection keeps them.
pub struct Rootfs {
    /// The merged tree: `task_dir/rootfs`.
    pub path: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    layers: Vec<String>,
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Rootfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rootfs").field("path", &self.path).field("layers", &self.layers.len()).finish()
    }
}

impl Rootfs {
    /// The task's writable layer (`task_dir/upper`).
    pub fn upper_dir(&self) -> &Path {
        &self.upper
    }

    /// Unmounts (lazily: `MNT_DETACH`) and removes `rootfs`, `upper` and `work`.
    pub fn unmount(mut self) -> Result<(), ImageStoreError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), ImageStoreError> {
        let Some(inner) = self.inner.take() else { return Ok(()) };
        let result = (|| {
            match rmount::unmount(&self.path, UnmountFlags::DETACH) {
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => {
                    return Err(ImageStoreError::Io { op: "unmount", path: self.path.clone(), source: e.into() });
                }
            }
            // Only an empty mount point is removed: never recurse into what might still be a mount.
            remove_if_exists(&self.path, |p| std::fs::remove_dir(p))?;
            remove_if_exists(&self.upper, super::remove::remove_tree)?;
            remove_if_exists(&self.work, super::remove::remove_tree)?;
            Ok(())
        })();
        count_down(&inner.in_use, &self.layers);
        result
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!(error = %e, "root filesystem teardown failed");
        }
    }
}

fn remove_if_exists(path: &Path, f: fn(&Path) -> std::io::Result<()>) -> Result<(), ImageStoreError> {
    match f(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageStoreError::Io { op: "remove", path: path.to_path_buf(), source: e }),
    }
}

/// Overlay options are split on `,` and lower directories on `:`; Skiff refuses such paths rather than
/// escaping them.
pub(crate) fn check_mountable(path: &Path) -> Result<(), ImageStoreError> {
    let s = path.to_string_lossy();
    if s.contains([',', ':', '\\']) {
        return Err(ImageStoreError::UnmountablePath(path.to_path_buf()));
    }
    Ok(())
}

pub(crate) fn mount(inner: Arc<Inner>, image: &Image, task_dir: &Path) -> Result<Rootfs, ImageStoreError> {
    let task_dir = std::path::absolute(task_dir).map_err(|e| ImageStoreError::Io {
        op: "resolve",
        path: task_dir.to_path_buf(),
        source: e,
    })?;
    check_mountable(&task_dir)?;
    if image.layers.is_empty() {
        return Err(ImageStoreError::Setup(format!("image {} has no layers", image.reference)));
    }
    let rootfs = task_dir.join("rootfs");
    let upper = task_dir.join("upper");
    let work = task_dir.join("work");
    for dir in [&task_dir, &rootfs, &upper, &work] {
        std::fs::create_dir_all(dir).map_err(|e| ImageStoreError::Io { op: "create", path: dir.clone(), source: e })?;
    }
    // Shared lock: a garbage collection (exclusive) cannot remove a layer between the check and the mount.
    let _lock = inner.layout.lock(false)?;
    let lowers: Vec<PathBuf> = image.layers.iter().rev().map(|d| inner.layout.layer_fs(d)).collect();
    if let Some((diff_id, _)) =
        image.layers.iter().zip(lowers.iter().rev()).find(|(d, _)| !inner.layout.layer_present(d))
    {
        return Err(ImageStoreError::LayerMissing { image: image.reference.clone(), diff_id: diff_id.clone() });
    }
    count_up(&inner.in_use, &image.layers);
    let mut fs = Rootfs { path: rootfs, upper, work, layers: image.layers.clone(), inner: Some(inner.clone()) };
    if let Err(source) = overlay(&lowers, &fs.upper, &fs.work, &fs.path) {
        let _ = fs.teardown();
        return Err(ImageStoreError::Mount { image: image.reference.clone(), path: fs.path.clone(), source });
    }
    inner.layout.touch_image(&image.manifest_digest);
    Ok(fs)
}

fn overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> std::io::Result<()> {
    let lowerdir = lowers.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":");
    let data = format!("lowerdir={lowerdir},upperdir={},workdir={}", upper.display(), work.display());
    if data.len() <= MAX_MOUNT_DATA {
        let data = std::ffi::CString::new(data).map_err(std::io::Error::other)?;
        return rmount::mount("overlay", target, "overlay", MountFlags::empty(), data.as_c_str()).map_err(Into::into);
    }
    // Too many layers for one page: the new mount API takes one lower directory per call (Linux ≥ 6.8).
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
    let fs = rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for lower in lowers {
        rmount::fsconfig_set_string(&fs, "lowerdir+", lower.as_path())?;
    }
    rmount::fsconfig_set_string(&fs, "upperdir", upper)?;
    rmount::fsconfig_set_string(&fs, "workdir", work)?;
    rmount::fsconfig_create(&fs)?;
    let mnt = rmount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
    rmount::move_mount(&mnt, "", rustix::fs::CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)?;
    Ok(())
}

/// Layers (diff_ids) under any overlay mount this process can see: what another process (the server's
/// agent, while `skiff images` collects garbage) has mounted. Lower directories are `…/layers/<hex>/fs`.
pub(crate) fn mounted_layers() -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return out };
    for line in text.lines() {
        let Some((_, after)) = line.split_once(" - ") else { continue };
        let mut fields = after.split(' ');
        if fields.next() != Some("overlay") {
            continue;
        }
        let options = fields.nth(1).unwrap_or("");
        for part in options.split([',', ':']) {
            let path = part.trim_start_matches("lowerdir+=").trim_start_matches("lowerdir=");
            if let Some(hex) = path.strip_suffix("/fs").and_then(|p| p.rsplit_once("/layers/")).map(|(_, h)| h) {
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.insert(format!("sha256:{hex}"));
                }
            }
        }
    }
    out
}
