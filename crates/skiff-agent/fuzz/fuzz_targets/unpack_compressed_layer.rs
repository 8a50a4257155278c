//! Arbitrary bytes as a compressed layer: the first byte picks the media type (gzip, zstd, plain tar), the
//! rest is the blob. Same containment checks as `unpack_layer`.
#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use skiff_agent::images::{unpack_compressed_layer, UnpackLimits};

const MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
];

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The input's directory, removed with [`remove_tree`] when the run ends (also when an assertion fails).
struct Tmp(std::path::PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// Removes `root` without recursion and with one directory descriptor open at a time (a layer may hold a tree
/// far deeper than a recursive remover's stack, or the open-files limit, allows).
fn remove_tree(root: &Path) {
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

fuzz_target!(|data: &[u8]| {
    let Some((&pick, blob)) = data.split_first() else { return };
    let tmp = Tmp(tempfile::Builder::new().prefix("skiff-fuzz-").tempdir().unwrap().keep());
    let sentinel = tmp.0.join("sentinel");
    let target = sentinel.join("rootfs");
    fs::create_dir_all(&target).unwrap();

    let limits = UnpackLimits { max_entries: 256, max_bytes: 4 << 20 };
    let media_type = MEDIA_TYPES[pick as usize % MEDIA_TYPES.len()];
    let _ = unpack_compressed_layer(blob, media_type, &target, &limits);

    assert_eq!(names(&tmp.0), ["sentinel"], "written beside the sentinel");
    assert_eq!(names(&sentinel), ["rootfs"], "written beside the target");
});
