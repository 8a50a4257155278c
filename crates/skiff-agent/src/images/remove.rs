//! Removing directory trees whose depth a layer or a container controls. `std::fs::remove_dir_all` and a
//! recursive walk use stack in proportion to the depth, so a tree 30,000 levels deep (a 300-byte layer, or
//! `mkdir -p` in a task) overflowed the stack and aborted the whole server. This walk holds one directory
//! descriptor and the path of names back up, never follows a symlink and never leaves the tree.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Removes `path` and everything under it; a missing `path` is not an error. A symlink at `path` itself is
/// removed, not followed.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (if p.as_os_str().is_empty() { Path::new(".") } else { p }, n),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("cannot remove {}", path.display()))),
    };
    let parent = match rfs::open(parent, DIR_FLAGS, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    use std::os::unix::ffi::OsStrExt as _;
    match remove_tree_at(&parent, name.as_bytes()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the entry `name` of the directory `dir` and, if it is a directory, everything under it.
pub(crate) fn remove_tree_at(dir: &OwnedFd, name: &[u8]) -> rustix::io::Result<()> {
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rfs::unlinkat(dir, name, AtFlags::empty());
    }
    let mut current = rfs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
    // Names from `name` down to `current`: going back up is `..` from a directory we opened by name with
    // NOFOLLOW, so it is always the parent we came from.
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        match first_entry(&current)? {
            Some((child, is_dir)) if is_dir => {
                current = rfs::openat(&current, child.as_slice(), DIR_FLAGS, Mode::empty())?;
                path.push(child);
            }
            Some((child, _)) => rfs::unlinkat(&current, child.as_slice(), AtFlags::empty())?,
            None => match path.pop() {
                Some(child) => {
                    let parent = rfs::openat(&current, "..", DIR_FLAGS, Mode::empty())?;
                    rfs::unlinkat(&parent, child.as_slice(), AtFlags::REMOVEDIR)?;
                    current = parent;
                }
                None => return rfs::unlinkat(dir, name, AtFlags::REMOVEDIR),
            },
        }
    }
}

/// Some entry of `dir` other than `.` and `..`, and whether it is a directory.
fn first_entry(dir: &OwnedFd) -> rustix::io::Result<Option<(Vec<u8>, bool)>> {
    let mut d = rfs::Dir::read_from(dir.as_fd())?;
    while let Some(entry) = d.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            FileType::Unknown => rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            t => t == FileType::Directory,
        };
        return Ok(Some((name.to_vec(), is_dir)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_deep_trees_without_following_symlinks() {
        // The 30,000-level trees that overflowed the recursive removal are in the hostile-layer tests; here
        // a deep tree on tmpfs (mkdir on this machine's ext4 costs ~1 ms) with a symlink at the bottom.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
        let root = base.path().join("t");
        std::fs::create_dir(&root).unwrap();
        let mut fd = rfs::open(&root, DIR_FLAGS, Mode::empty()).unwrap();
        for _ in 0..5_000 {
            rfs::mkdirat(&fd, "a", Mode::from_raw_mode(0o755)).unwrap();
            std::fs::write(format!("/proc/self/fd/{}/file", std::os::fd::AsRawFd::as_raw_fd(&fd)), b"x").unwrap();
            fd = rfs::openat(&fd, "a", DIR_FLAGS, Mode::empty()).unwrap();
        }
        let victim = base.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), b"x").unwrap();
        rfs::symlinkat(&victim, &fd, "link").unwrap();
        drop(fd);
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert!(victim.join("keep").exists(), "a symlink is removed, not followed");
        remove_tree(&root).unwrap();
    }
}
