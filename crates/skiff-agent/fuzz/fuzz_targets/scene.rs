//! What both unpack targets share: a scratch directory per input with a sentinel directory around the target
//! and a host directory beside it, the checks that nothing was written outside the target, and a removal
//! that survives trees deeper than any recursive remover's stack. Included with `#[path]` by each target.

use std::fs;
use std::path::{Path, PathBuf};

pub const VICTIM: &[u8] = b"the host's file\n";

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The input's directory, removed with [`remove_tree`] when the run ends (also when an assertion fails).
pub struct Tmp(std::path::PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Removes `root` without recursion and with one directory descriptor open at a time (a layer may hold a tree
/// far deeper than a recursive remover's stack, or the open-files limit, allows).
pub fn remove_tree(root: &Path) {
    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(mut fd) = rfs::open(root, flags, Mode::empty()) else { return };
    let mut names: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut first = None;
        if let Ok(mut dir) = rfs::Dir::read_from(&fd) {
            while let Some(Ok(entry)) = dir.read() {
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    first = Some(name.to_vec());
                    break;
                }
            }
        }
        match first {
            Some(name) => {
                let is_dir = rfs::statat(&fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory);
                if is_dir {
                    match rfs::openat(&fd, name.as_slice(), flags, Mode::empty()) {
                        Ok(child) => {
                            fd = child;
                            names.push(name);
                        }
                        Err(_) => return,
                    }
                } else if rfs::unlinkat(&fd, name.as_slice(), AtFlags::empty()).is_err() {
                    return;
                }
            }
            None => {
                let Some(name) = names.pop() else { break };
                let Ok(parent) = rfs::openat(&fd, "..", flags, Mode::empty()) else { return };
                if rfs::unlinkat(&parent, name.as_slice(), AtFlags::REMOVEDIR).is_err() {
                    return;
                }
                fd = parent;
            }
        }
    }
    let _ = std::fs::remove_dir(root);
}


/// Runs `unpack` on TMP/sentinel/rootfs beside TMP/host/victim.txt and asserts that TMP holds only host and
/// sentinel, the sentinel only rootfs, and the victim is untouched.
pub fn contained(unpack: impl FnOnce(&Path)) {
    let tmp = Tmp(tempfile::Builder::new().prefix("skiff-fuzz-").tempdir().unwrap().keep());
    let host = tmp.0.join("host");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("victim.txt"), VICTIM).unwrap();
    let sentinel = tmp.0.join("sentinel");
    let target: PathBuf = sentinel.join("rootfs");
    fs::create_dir_all(&target).unwrap();

    unpack(&target);

    assert_eq!(names(&tmp.0), ["host", "sentinel"], "written beside the sentinel");
    assert_eq!(names(&sentinel), ["rootfs"], "written beside the target");
    assert_eq!(names(&host), ["victim.txt"], "written into the host directory");
    assert_eq!(fs::read(host.join("victim.txt")).unwrap(), VICTIM, "the host's file changed");
    let md = fs::symlink_metadata(host.join("victim.txt")).unwrap();
    assert!(md.is_file(), "the host's file was replaced");
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&md), 1, "the host's file was hardlinked");
}
