//! Task storage: Fargate's "ephemeral storage" — one size limit shared by a task's writable layers and its
//! scratch volumes — as a directory per task whose total usage the kernel caps.
//!
//! **Design.** One btrfs filesystem per node, in a sparse image file (`state_dir/storage.img`) on a loop
//! device, mounted at `state_dir/mnt`; each task gets a subvolume `mnt/tasks/<task id>` created *with* its
//! own quota group limit in one ioctl (`BTRFS_IOC_SUBVOL_CREATE_V2` + `BTRFS_QGROUP_INHERIT_SET_LIMITS`), and
//! loses it with one more (`BTRFS_IOC_SNAP_DESTROY`: the kernel's cleaner frees the extents in the
//! background, so removing a task with gigabytes of files costs the same as an empty one). Quotas are btrfs
//! *simple quotas* where the kernel has them (≥ 6.7: usage charged to the allocating subvolume, no
//! back-reference walks), full qgroups otherwise. Per task this costs well under a millisecond and no
//! process, mount or loop device; the filesystem is prepared once, by [`TaskStorage::open`].
//!
//! A write past the limit fails with **`EDQUOT`** ("Disk quota exceeded"), not the `ENOSPC` a task sees on
//! Fargate (whose limit is a real filesystem's size); [`is_out_of_space`] accepts both. A per-task ext4
//! image on its own loop device would give `ENOSPC` but measured here ~28 ms (`mkfs.ext4`) + ~10 ms (loop
//! device and mount) on the start path and ~90 ms to tear down, against ~0.06 ms to create and ~0.2 ms to
//! remove a subvolume (`tests/storage.rs` prints the numbers).
//!
//! A task can escape its limit only by creating btrfs subvolumes of its own (any user may) in a directory
//! bind-mounted from here (overlayfs passes no btrfs ioctl through): the container's seccomp profile should
//! refuse `BTRFS_IOC_SUBVOL_CREATE*`/`BTRFS_IOC_SNAP_CREATE*`. [`TaskStorage::remove`] deletes such nested
//! subvolumes too.
//!
//! **Restarts.** The mount and its loop device belong to the host, not the agent: they survive the agent
//! (`kill -9` included), and [`TaskStorage::open`] adopts them (or, after a reboot, re-attaches the image)
//! and finds the tasks' directories with [`TaskStorage::list`]. The loop device detaches itself when the
//! filesystem is unmounted ([`TaskStorage::unmount`]).
//!
//! **Space.** The image is sparse, by default as large as the filesystem holding `state_dir`, and mounted
//! with `discard=async`: blocks freed inside it are punched out of the image file (lazily). A removed task's
//! space returns once the btrfs cleaner has dropped its subvolume (within a commit interval, 30 s). The
//! image shares the host disk with everything else: if the *disk* fills up, the loop device's writes fail
//! and btrfs turns read-only for every task, so the node must not overcommit the disk (the sum of its tasks'
//! limits is the figure to watch). Grow the image by opening with a larger [`StorageConfig::image_size`].

mod sys;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use std::path::{Path, PathBuf};

/// The smallest limit [`TaskStorage::create`] accepts: a subvolume needs some metadata to hold anything.
pub const MIN_LIMIT_BYTES: u64 = 1 << 20;

/// The smallest image: mkfs.btrfs refuses much smaller devices.
const MIN_IMAGE_BYTES: u64 = 1 << 30;

const IMAGE: &str = "storage.img";
const MOUNT: &str = "mnt";
const TASKS: &str = "tasks";
const LOCK: &str = "lock";

/// Where and how large the node's task storage is.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Holds the image file, the mount point and a lock file, e.g. `DATA_DIR/agent/storage`. The image is
    /// mounted here, so the path must not contain `,`, `:` or `\` (overlayfs option separators).
    pub state_dir: PathBuf,
    /// The image's (sparse) size in bytes: the most all tasks together can ever use. `None`: the size of
    /// the filesystem holding `state_dir`. An existing image is grown to it, never shrunk.
    pub image_size: Option<u64>,
}

impl StorageConfig {
    /// The defaults, with state under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> StorageConfig {
        StorageConfig { state_dir: state_dir.into(), image_size: None }
    }
}

/// What went wrong preparing the node's storage or a task's directory.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid task id {0:?}: expected 32 lowercase hex characters")]
    InvalidTaskId(String),
    #[error("invalid storage limit {limit} bytes for task {task_id}: at least {MIN_LIMIT_BYTES} bytes")]
    InvalidLimit { task_id: String, limit: u64 },
    #[error("task {0} already has storage")]
    Exists(String),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Setup { path: PathBuf, reason: String },
}

impl StorageError {
    fn io(op: &'static str, path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> StorageError {
        StorageError::Io { op, path: path.into(), source: source.into() }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Whether a write failed because the task's storage is full: `EDQUOT` (its limit, what [`TaskStorage`]
/// produces) or `ENOSPC` (the whole node's image).
pub fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == Errno::DQUOT.raw_os_error() || code == Errno::NOSPC.raw_os_error())
}

/// The node's task storage (see the module documentation). Cheap to share behind an `Arc`; every method
/// blocks (call them from `spawn_blocking`).
#[derive(Debug)]
pub struct TaskStorage {
    mount_point: PathBuf,
    tasks_dir: PathBuf,
    image: PathBuf,
    /// `mnt/tasks`, open: subvolumes are created and destroyed relative to it.
    tasks_fd: OwnedFd,
}

impl TaskStorage {
    /// Prepares the host, idempotently: creates the image (mkfs.btrfs, once), attaches it to a loop device
    /// and mounts it unless that is already done (an agent restarted after `kill -9` adopts the mount it
    /// left), enables quotas and grows the image to [`StorageConfig::image_size`]. Serialized between
    /// processes by a lock file.
    pub fn open(config: StorageConfig) -> Result<TaskStorage> {
        let state_dir = &config.state_dir;
        create_private_dir(state_dir)?;
        let state_dir = std::fs::canonicalize(state_dir).map_err(|e| StorageError::io("resolve", state_dir, e))?;
        if state_dir.to_string_lossy().contains([',', ':', '\\']) {
            return Err(StorageError::Setup {
                path: state_dir,
                reason: "overlay mounts cannot name paths containing ',', ':' or '\\'".into(),
            });
        }
        let lock_path = state_dir.join(LOCK);
        let lock = open(&lock_path, OFlags::RDWR | OFlags::CREATE, Mode::from_raw_mode(0o600))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StorageError::io("lock", &lock_path, e))?;

        let image = state_dir.join(IMAGE);
        let mount_point = state_dir.join(MOUNT);
        create_private_dir(&mount_point)?;
        let wanted_size = match config.image_size {
            Some(size) => size,
            None => {
                let st = rustix::fs::statvfs(&state_dir).map_err(|e| StorageError::io("statvfs", &state_dir, e))?;
                st.f_blocks.saturating_mul(st.f_frsize)
            }
        }
        .max(MIN_IMAGE_BYTES);

        let mut mounts = sys::mounts().map_err(|e| StorageError::io("read", "/proc/self/mountinfo", e))?;
        if let Some(m) = mounts.iter().rev().find(|m| m.mount_point == mount_point) {
            if m.fstype == "btrfs" && sys::loop_backed_by_deleted(&m.source, &image) {
                // The image was deleted under a mounted filesystem (its data directory removed while
                // mounted): nothing in it can be reached again. Detach it (freed once its last user, e.g.
                // a container still running on it, is gone) and start from a new image.
                tracing::warn!(mount = %mount_point.display(), device = %m.source, "detaching task storage whose image was deleted");
                match rustix::mount::unmount(&mount_point, UnmountFlags::DETACH) {
                    Ok(()) | Err(Errno::INVAL) => {}
                    Err(e) => return Err(StorageError::io("unmount", mount_point, e)),
                }
                mounts = sys::mounts().map_err(|e| StorageError::io("read", "/proc/self/mountinfo", e))?;
            }
        }
        match mounts.iter().rev().find(|m| m.mount_point == mount_point) {
            Some(m) if m.fstype == "btrfs" && sys::loop_backed_by(&m.source, &image) => {
                tracing::debug!(mount = %mount_point.display(), device = %m.source, "adopting task storage");
            }
            Some(m) => {
                return Err(StorageError::Setup {
                    path: mount_point,
                    reason: format!("already mounted: {} ({}), not {}", m.source, m.fstype, image.display()),
                });
            }
            None => {
                if !image.exists() {
                    make_image(&image, wanted_size)?;
                }
                attach_and_mount(&image, &mount_point)?;
            }
        }

        let root = open(&mount_point, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let fs = rustix::fs::fstatfs(&root).map_err(|e| StorageError::io("statfs", &mount_point, e))?;
        if fs.f_type as i64 != sys::BTRFS_SUPER_MAGIC {
            return Err(StorageError::Setup { path: mount_point, reason: "not a btrfs mount".into() });
        }
        sys::quota_enable(root.as_fd()).map_err(|e| StorageError::io("enable quotas on", &mount_point, e))?;
        grow(&image, &mount_point, root.as_fd(), wanted_size)?;

        let tasks_dir = mount_point.join(TASKS);
        create_private_dir(&tasks_dir)?;
        let tasks_fd = open(&tasks_dir, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        Ok(TaskStorage { mount_point, tasks_dir, image, tasks_fd })
    }

    /// A fresh, empty directory for task `task_id` whose total usage (files and their metadata, whatever
    /// is placed inside: overlay upper/work directories, scratch volumes) is capped at `limit_bytes`; writes
    /// beyond fail with `EDQUOT`. [`StorageError::Exists`] if the task already has one.
    pub fn create(&self, task_id: &str, limit_bytes: u64) -> Result<PathBuf> {
        check_task_id(task_id)?;
        if limit_bytes < MIN_LIMIT_BYTES {
            return Err(StorageError::InvalidLimit { task_id: task_id.to_string(), limit: limit_bytes });
        }
        let path = self.tasks_dir.join(task_id);
        match sys::subvolume_create_limited(self.tasks_fd.as_fd(), task_id, limit_bytes) {
            Ok(()) => Ok(path),
            Err(Errno::EXIST) => Err(StorageError::Exists(task_id.to_string())),
            Err(e) => Err(StorageError::io("create subvolume", path, e)),
        }
    }

    /// The directory [`create`](Self::create) made for `task_id` (whether or not it exists).
    pub fn path(&self, task_id: &str) -> Result<PathBuf> {
        check_task_id(task_id)?;
        Ok(self.tasks_dir.join(task_id))
    }

    /// Frees everything task `task_id` has: detaches whatever is still mounted inside its directory (an
    /// overlay root filesystem, bind mounts), then deletes the subvolume (and any the task nested in it).
    /// Idempotent. The space returns to the node in the background.
    pub fn remove(&self, task_id: &str) -> Result<()> {
        check_task_id(task_id)?;
        let path = self.tasks_dir.join(task_id);
        let st = match rustix::fs::statat(&self.tasks_fd, task_id, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(StorageError::io("stat", path, e)),
        };
        unmount_below(&path)?;
        if st.st_ino != sys::SUBVOL_ROOT_INO || !rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir() {
            // Not made by `create` (nothing else writes here): remove it as a plain tree.
            return remove_plain(&path);
        }
        match sys::subvolume_destroy(self.tasks_fd.as_fd(), task_id) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::NOTEMPTY) => {
                // The task created subvolumes of its own (btrfs lets any user do so): delete them first.
                let dir = open(&path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty())?;
                destroy_nested(&dir, &path, st.st_dev, 0)?;
                drop(dir);
                sys::subvolume_destroy(self.tasks_fd.as_fd(), task_id)
                    .or_else(|e| if e == Errno::NOENT { Ok(()) } else { Err(e) })
                    .map_err(|e| StorageError::io("delete subvolume", path, e))
            }
            Err(e) => Err(StorageError::io("delete subvolume", path, e)),
        }
    }

    /// The ids of the tasks that have storage, sorted: after a restart, what to adopt or remove.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.tasks_dir).map_err(|e| StorageError::io("list", &self.tasks_dir, e))?;
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io("list", &self.tasks_dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if check_task_id(name).is_ok() {
                    ids.push(name.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Where the node's storage filesystem is mounted (`state_dir/mnt`).
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// Unmounts the node's storage filesystem, which detaches its loop device; the image and the tasks'
    /// directories in it stay for the next [`open`](Self::open). For tests and taking a node out of service:
    /// the agent normally leaves it mounted across restarts. Fails (`EBUSY`) while anything inside is still
    /// mounted or open.
    pub fn unmount(self) -> Result<()> {
        let TaskStorage { mount_point, image, tasks_fd, .. } = self;
        drop(tasks_fd);
        match rustix::mount::unmount(&mount_point, UnmountFlags::empty()) {
            Ok(()) | Err(Errno::INVAL) => {}
            Err(e) => return Err(StorageError::io("unmount", mount_point, e)),
        }
        // Auto-clear detaches the device on the last close; make sure of it.
        for dev in sys::loops_backed_by(&image) {
            sys::loop_detach(&dev).map_err(|e| StorageError::io("detach", dev, e))?;
        }
        Ok(())
    }
}

impl TaskStorage {
    /// Lazily detaches the node's storage filesystem (`MNT_DETACH`): it is gone from the mount table at once
    /// and freed — its loop device detached — when this process closes its last descriptor in it. For
    /// `skiff node reset`, which exits right after.
    pub fn detach_node(&self) -> Result<()> {
        match rustix::mount::unmount(&self.mount_point, UnmountFlags::DETACH) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(StorageError::io("unmount", &self.mount_point, e)),
        }
    }
}

/// Task ids are 32 lowercase hex characters: also a safe file name.
fn check_task_id(id: &str) -> Result<()> {
    if id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StorageError::InvalidTaskId(id.to_string()))
    }
}

fn open(path: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd> {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, mode).map_err(|e| StorageError::io("open", path, e))
}

fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) => Err(StorageError::io("create", path, e)),
    }
}

/// Writes a fresh btrfs image: a sparse file formatted by mkfs.btrfs (single copies of data and metadata:
/// the image lives on one disk anyway), renamed into place only when complete.
fn make_image(image: &Path, size: u64) -> Result<()> {
    let tmp = image.with_extension("img.tmp");
    let _ = std::fs::remove_file(&tmp);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| StorageError::io("create", &tmp, e))?;
    file.set_len(size).map_err(|e| StorageError::io("size", &tmp, e))?;
    let out = std::process::Command::new("mkfs.btrfs")
        .args(["-q", "-f", "-m", "single", "-d", "single", "-L", "skiff-storage"])
        .arg(&tmp)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| StorageError::io("run mkfs.btrfs (install btrfs-progs) for", &tmp, e))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(StorageError::Setup {
            path: tmp,
            reason: format!("mkfs.btrfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    file.sync_all().map_err(|e| StorageError::io("sync", &tmp, e))?;
    std::fs::rename(&tmp, image).map_err(|e| StorageError::io("rename", &tmp, e))?;
    if let Some(dir) = image.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Mounts the image: on the loop device already bound to it (one left by a crash between attach and mount
/// without auto-clear) or on a new one.
fn attach_and_mount(image: &Path, mount_point: &Path) -> Result<()> {
    let existing = sys::loops_backed_by(image).into_iter().next();
    // Held open until the mount holds the device: a fresh device auto-clears on its last close.
    let (device, _held) = match existing {
        Some(dev) => (dev, None),
        None => {
            let dev = sys::loop_attach(image).map_err(|e| StorageError::io("attach a loop device to", image, e))?;
            (dev.path, Some(dev.fd))
        }
    };
    let data = c"discard=async";
    rustix::mount::mount(&device, mount_point, "btrfs", MountFlags::NOATIME, data)
        .map_err(|e| StorageError::io("mount", mount_point, e))?;
    // Tasks' mounts inside must not propagate to (or from) other mount namespaces.
    rustix::mount::mount_change(mount_point, MountPropagationFlags::PRIVATE)
        .map_err(|e| StorageError::io("make private", mount_point, e))?;
    tracing::info!(image = %image.display(), device = %device.display(), mount = %mount_point.display(),
        "task storage mounted");
    Ok(())
}

/// Grows the image file, its loop device and the filesystem to `size` when the image is smaller. Each step
/// checks its own size, so an open interrupted half-way through a resize finishes it.
fn grow(image: &Path, mount_point: &Path, root: rustix::fd::BorrowedFd<'_>, size: u64) -> Result<()> {
    let mut len = std::fs::metadata(image).map_err(|e| StorageError::io("stat", image, e))?.len();
    if len < size {
        let file =
            std::fs::OpenOptions::new().write(true).open(image).map_err(|e| StorageError::io("open", image, e))?;
        file.set_len(size).map_err(|e| StorageError::io("grow", image, e))?;
        tracing::info!(image = %image.display(), from = len, to = size, "task storage image grown");
        len = size;
    }
    for dev in sys::loops_backed_by(image) {
        if sys::block_device_bytes(&dev).is_some_and(|bytes| bytes < len) {
            sys::loop_set_capacity(&dev).map_err(|e| StorageError::io("resize", dev, e))?;
        }
    }
    // statfs reports a little less than the device holds (btrfs keeps its first MiB): allow for it.
    let st = rustix::fs::fstatvfs(root).map_err(|e| StorageError::io("statvfs", mount_point, e))?;
    if st.f_blocks.saturating_mul(st.f_frsize) + (64 << 20) < len {
        sys::resize_max(root).map_err(|e| StorageError::io("resize", mount_point, e))?;
    }
    Ok(())
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_below(dir: &Path) -> Result<()> {
    let mounts = sys::mounts().map_err(|e| StorageError::io("read", "/proc/self/mountinfo", e))?;
    let mut inside: Vec<PathBuf> = mounts.into_iter().map(|m| m.mount_point).filter(|p| p.starts_with(dir)).collect();
    // Later mounts first (they may sit on earlier ones), and deeper before shallower.
    inside.reverse();
    inside.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in inside {
        match rustix::mount::unmount(&point, UnmountFlags::DETACH) {
            Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
            Err(e) => return Err(StorageError::io("unmount", point, e)),
        }
    }
    Ok(())
}

/// Deletes the subvolumes nested anywhere below `dir` (on device `dev`), innermost first. Only used when a
/// task made some: it walks the task's tree.
fn destroy_nested(dir: &OwnedFd, path: &Path, dev: u64, depth: usize) -> Result<()> {
    if depth > 4096 {
        return Err(StorageError::Setup { path: path.to_path_buf(), reason: "directory tree too deep".into() });
    }
    let mut names = Vec::new();
    {
        let dup = rustix::io::dup(dir).map_err(|e| StorageError::io("read", path, e))?;
        let mut reader = rustix::fs::Dir::new(dup).map_err(|e| StorageError::io("read", path, e))?;
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(|e| StorageError::io("read", path, e))?;
            if entry.file_type() == rustix::fs::FileType::Directory {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(entry.file_name().to_owned());
                }
            }
        }
    }
    for name in names {
        let child_path = path.join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.to_bytes()));
        let child = match rustix::fs::openat(
            dir,
            name.as_c_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) | Err(Errno::NOTDIR) | Err(Errno::LOOP) => continue,
            Err(e) => return Err(StorageError::io("open", child_path, e)),
        };
        let st = rustix::fs::fstat(&child).map_err(|e| StorageError::io("stat", &child_path, e))?;
        destroy_nested(&child, &child_path, st.st_dev, depth + 1)?;
        if st.st_dev != dev && st.st_ino == sys::SUBVOL_ROOT_INO {
            drop(child);
            let name = name.to_str().map_err(|_| StorageError::Setup {
                path: child_path.clone(),
                reason: "subvolume name is not UTF-8".into(),
            })?;
            match sys::subvolume_destroy(dir.as_fd(), name) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(StorageError::io("delete subvolume", child_path, e)),
            }
        }
    }
    Ok(())
}

fn remove_plain(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_32_lowercase_hex() {
        assert!(check_task_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in [
            "",
            "..",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "../3456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcd/f",
            "0123456789abcdef0123456789abcde\0",
            "g123456789abcdef0123456789abcdef",
        ] {
            assert!(matches!(check_task_id(bad), Err(StorageError::InvalidTaskId(_))), "{bad:?}");
        }
    }

    #[test]
    fn out_of_space_errors() {
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(Errno::DQUOT.raw_os_error())));
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(Errno::NOSPC.raw_os_error())));
        assert!(!is_out_of_space(&std::io::Error::from_raw_os_error(Errno::IO.raw_os_error())));
    }
}
