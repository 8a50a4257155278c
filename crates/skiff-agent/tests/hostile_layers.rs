//! Hostile layers, one test per fixture of tests/fixtures/layers (made by make_fixtures.py; its README lists
//! what each one tries). Every test unpacks into TMP/sentinel/rootfs beside a pretend host TMP/host and checks
//! that the unpack failed with a reason naming what was wrong, that the sentinel holds only the target, and
//! that nothing in the host tree (or the fixed /tmp/skiff-hostile-* victims) changed. A few well-behaved
//! fixtures check the layer semantics the hostile ones must not break: whiteouts, opaque directories,
//! owners, modes, links.

mod support;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_agent::images::{
    unpack_compressed_layer, unpack_layer, ImageStore, ImageStoreConfig, NoCredentials, NoProgress, PullError,
    UnpackError, UnpackLimits, UnpackStats,
};
use support::{fixture, fixture_path, node, snapshot, HostPath, LayoutRegistry, Scene, TestLayer, VICTIM_CONTENT};

const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn limits() -> UnpackLimits {
    UnpackLimits::default()
}

fn unpack(name: &str, target: &Path) -> Result<UnpackStats, UnpackError> {
    unpack_layer(fixture(name), target, &limits())
}

/// Unpacks fixture `name` into the scene's target, checks that nothing was written outside it, expects a
/// failure whose message holds every one of `needles` (the offending entry and the reason), and returns the
/// message.
fn refused(scene: &Scene, name: &str, needles: &[&str]) -> String {
    let result = unpack(name, &scene.target);
    // Containment first: an escape is worse news than a missing refusal.
    scene.assert_contained(&["rootfs"]);
    let err = match result {
        Ok(stats) => panic!("{name}: the unpack succeeded ({stats:?}); it must be refused"),
        Err(e) => e,
    };
    assert_reason(name, &err.to_string(), needles);
    err.to_string()
}

fn assert_reason(name: &str, msg: &str, needles: &[&str]) {
    let missing: Vec<&&str> = needles.iter().filter(|n| !msg.contains(**n)).collect();
    assert!(missing.is_empty(), "{name}: the error {msg:?} does not say {missing:?}");
}

// ---------------------------------------------------------------------------------------------------------
// names that leave the root

#[test]
fn dotdot_escape() {
    let scene = Scene::new();
    refused(&scene, "dotdot_escape.tar", &["\"../skiff-escape.txt\"", "escapes the root"]);
    scene.assert_contained(&["rootfs"]);
    assert!(support::names(&scene.target).is_empty(), "the refused layer left files in the target");
}

#[test]
fn dotdot_nested_escape() {
    let scene = Scene::new();
    refused(&scene, "dotdot_nested_escape.tar", &["\"a/../../skiff-escape.txt\"", "escapes the root"]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn pax_path_escape() {
    let scene = Scene::new();
    refused(&scene, "pax_path_escape.tar", &["\"../skiff-escape.txt\"", "escapes the root"]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn absolute_path() {
    let victim = HostPath::new("/tmp/skiff-hostile-absolute.txt");
    let scene = Scene::new();
    refused(&scene, "absolute_path.tar", &["\"/tmp/skiff-hostile-absolute.txt\"", "is absolute"]);
    scene.assert_contained(&["rootfs"]);
    assert!(node(&victim.0).is_none(), "{} was created on the host", victim.0.display());
}

// ---------------------------------------------------------------------------------------------------------
// symlinks and hardlinks

#[test]
fn symlink_write_relative() {
    let scene = Scene::new();
    refused(&scene, "symlink_write_relative.tar", &["\"evil/x\"", "goes through a symlink"]);
    scene.assert_contained(&["rootfs"]);
    assert!(node(&scene.host.join("x")).is_none());
}

#[test]
fn symlink_write_absolute() {
    let victim = HostPath::new("/tmp/skiff-hostile-victim");
    fs::create_dir(&victim.0).unwrap();
    fs::write(victim.0.join("keep.txt"), VICTIM_CONTENT).unwrap();
    let before = snapshot(&victim.0);
    let scene = Scene::new();
    refused(&scene, "symlink_write_absolute.tar", &["\"evil/x\"", "goes through a symlink"]);
    scene.assert_contained(&["rootfs"]);
    let changes = support::diff(&before, &snapshot(&victim.0));
    assert!(changes.is_empty(), "{} changed:\n{}", victim.0.display(), changes.join("\n"));
}

#[test]
fn symlink_proc_self() {
    let victim = HostPath::new("/tmp/skiff-hostile-proc-escape.txt");
    let scene = Scene::new();
    refused(
        &scene,
        "symlink_proc_self.tar",
        &["\"self/root/tmp/skiff-hostile-proc-escape.txt\"", "goes through a symlink"],
    );
    scene.assert_contained(&["rootfs"]);
    assert!(node(&victim.0).is_none(), "{} was written through /proc/self/root", victim.0.display());
}

#[test]
fn file_over_symlink() {
    // A regular file replacing a symlink the same layer placed is legal (the later entry wins), but the file
    // must replace the link, never be opened through it.
    let scene = Scene::new();
    let result = unpack("file_over_symlink.tar", &scene.target);
    scene.assert_contained(&["rootfs"]);
    if result.is_ok() {
        let s = node(&scene.target.join("s")).expect("rootfs/s");
        assert_eq!(s.kind, "file", "rootfs/s should be the regular file that replaced the symlink");
        assert_eq!(s.content.as_deref(), Some(&b"pwned through a replaced symlink\n"[..]));
    }
}

#[test]
fn hardlink_dotdot() {
    let scene = Scene::new();
    refused(&scene, "hardlink_dotdot.tar", &["hardlink \"victim\"", "\"../../host/victim.txt\"", "escapes the root"]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn hardlink_absolute() {
    let victim = HostPath::new("/tmp/skiff-hostile-hardlink-victim");
    fs::write(&victim.0, VICTIM_CONTENT).unwrap();
    let before = node(&victim.0);
    let scene = Scene::new();
    refused(
        &scene,
        "hardlink_absolute.tar",
        &["hardlink \"victim\"", "\"/tmp/skiff-hostile-hardlink-victim\"", "absolute"],
    );
    scene.assert_contained(&["rootfs"]);
    assert_eq!(node(&victim.0), before, "the host file behind the hardlink changed (link count or content)");
}

#[test]
fn hardlink_etc_passwd() {
    let before = node(Path::new("/etc/passwd"));
    let scene = Scene::new();
    refused(&scene, "hardlink_etc_passwd.tar", &["hardlink \"passwd\"", "\"/etc/passwd\"", "absolute"]);
    scene.assert_contained(&["rootfs"]);
    assert_eq!(node(Path::new("/etc/passwd")), before, "/etc/passwd gained a link or changed");
}

#[test]
fn hardlink_through_symlink() {
    let scene = Scene::new();
    refused(&scene, "hardlink_through_symlink.tar", &["hardlink \"h\"", "\"s/victim.txt\"", "through a symlink"]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn hardlink_to_escaping_symlink() {
    // h is a hardlink to the symlink s (legal: link(2) does not follow), and then a regular file h replaces it:
    // writing it must not go through s to the host's victim.
    let scene = Scene::new();
    let _ = unpack("hardlink_to_escaping_symlink.tar", &scene.target);
    scene.assert_contained(&["rootfs"]);
}

// ---------------------------------------------------------------------------------------------------------
// whiteouts that name the directory itself or its parent

#[test]
fn whiteout_dotdot() {
    let scene = Scene::new();
    refused(&scene, "whiteout_dotdot.tar", &["whiteout \".wh...\""]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn whiteout_dot_in_dir() {
    let scene = Scene::new();
    refused(&scene, "whiteout_dot_in_dir.tar", &["whiteout \"dir/.wh..\""]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn whiteout_dotdot_in_dir() {
    let scene = Scene::new();
    refused(&scene, "whiteout_dotdot_in_dir.tar", &["whiteout \"dir/.wh...\""]);
    scene.assert_contained(&["rootfs"]);
}

// ---------------------------------------------------------------------------------------------------------
// a directory that a later layer replaces by a symlink

const DIR_TO_SYMLINK: [&str; 3] = ["dir_to_symlink_1.tar", "dir_to_symlink_2.tar", "dir_to_symlink_3.tar"];

#[test]
fn dir_to_symlink_layers_in_separate_dirs() {
    // The way the store keeps layers (one directory each, stacked by overlayfs): layer 3 makes its own d/ and
    // d/x and never looks at layer 2's symlink.
    let scene = Scene::new();
    for (n, name) in DIR_TO_SYMLINK.iter().enumerate() {
        let dir = scene.layer_dir(&format!("layer{}", n + 1));
        unpack(name, &dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    scene.assert_contained(&["layer1", "layer2", "layer3", "rootfs"]);
    let l2 = node(&scene.sentinel.join("layer2/d")).expect("layer2/d");
    assert_eq!((l2.kind, l2.target.as_deref()), ("symlink", Some(Path::new("../../host"))));
    let d = node(&scene.sentinel.join("layer3/d")).expect("layer3/d");
    assert_eq!(d.kind, "dir");
    let x = node(&scene.sentinel.join("layer3/d/x")).expect("layer3/d/x");
    assert_eq!(x.content.as_deref(), Some(&b"written through a symlink of an earlier layer\n"[..]));
}

#[test]
fn dir_to_symlink_layers_stacked_in_one_dir() {
    // Applied one over the other in a single directory (what umoci and `docker load` do): after layer 2, d is
    // a symlink to ../../host, and layer 3's d/x must not follow it.
    let scene = Scene::new();
    unpack(DIR_TO_SYMLINK[0], &scene.target).expect("layer 1");
    let second = unpack(DIR_TO_SYMLINK[1], &scene.target);
    scene.assert_contained(&["rootfs"]);
    let third = unpack(DIR_TO_SYMLINK[2], &scene.target);
    scene.assert_contained(&["rootfs"]);
    if second.is_ok() {
        let err = match third {
            Ok(stats) => panic!("layer 3 wrote d/x through layer 2's symlink d ({stats:?})"),
            Err(e) => e.to_string(),
        };
        assert_reason("dir_to_symlink_3.tar", &err, &["\"d/x\"", "goes through a symlink"]);
    }
}

#[test]
fn dir_mode_through_symlink() {
    // d/ (mode 0700, mtime 1234) and then the symlink d -> ../../host: whether or not the unpack accepts the
    // replacement, a deferred chmod/chown/utime of the directory d must not land on the host directory.
    let scene = Scene::new();
    let _ = unpack("dir_mode_through_symlink.tar", &scene.target);
    scene.assert_contained(&["rootfs"]);
}

// ---------------------------------------------------------------------------------------------------------
// devices and special modes

#[test]
fn char_device() {
    let scene = Scene::new();
    refused(&scene, "char_device.tar", &["\"dev-null\"", "character device"]);
    scene.assert_contained(&["rootfs"]);
    if let Some(n) = node(&scene.target.join("dev-null")) {
        panic!("a device node was created: {n:?}");
    }
}

#[test]
fn block_device() {
    let scene = Scene::new();
    refused(&scene, "block_device.tar", &["\"dev-sda\"", "block device"]);
    scene.assert_contained(&["rootfs"]);
    if let Ok(md) = fs::symlink_metadata(scene.target.join("dev-sda")) {
        assert!(!md.file_type().is_block_device(), "a block device was created");
    }
}

#[test]
fn setuid_kept_inside_the_root() {
    let scene = Scene::new();
    unpack("setuid.tar", &scene.target).expect("a layer with setuid files is legal");
    scene.assert_contained(&["rootfs"]);
    let t = &scene.target;
    let mode = |p: &str| node(&t.join(p)).unwrap_or_else(|| panic!("{p} is missing")).mode & 0o7777;
    assert_eq!(mode("bin/suid"), 0o4755, "bin/suid lost its setuid bit");
    assert_eq!(mode("bin/sgid"), 0o2711, "bin/sgid lost its setgid bit");
    assert_eq!(node(&t.join("bin/sgid")).unwrap().gid, 42);
    assert_eq!(mode("shared"), 0o1777, "shared/ lost its sticky bit");
    // chown clears setuid: the owner must be set before the mode.
    let owned = node(&t.join("owned")).unwrap();
    assert_eq!((owned.uid, owned.gid, owned.mode & 0o7777), (4242, 4242, 0o4750), "owned: {owned:?}");
    // The symlink itself is chowned (lchown), never what it points at (the host's victim: checked above).
    let escape = node(&t.join("escape")).unwrap();
    assert_eq!((escape.kind, escape.uid, escape.gid), ("symlink", 4242, 4242), "escape: {escape:?}");
}

// ---------------------------------------------------------------------------------------------------------
// sizes and counts

/// A tar stream of `total` empty regular files f0000000, f0000001, …, made as it is read (never in memory);
/// `read` counts the bytes handed out so the test can tell how far the unpacker went.
struct ManyEmptyEntries {
    next: u64,
    total: u64,
    block: Vec<u8>,
    pos: usize,
    done: bool,
    read: Arc<AtomicU64>,
}

impl ManyEmptyEntries {
    fn new(total: u64, read: Arc<AtomicU64>) -> Self {
        ManyEmptyEntries { next: 0, total, block: Vec::new(), pos: 0, done: false, read }
    }
}

impl Read for ManyEmptyEntries {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() {
            if self.done {
                return Ok(0);
            }
            if self.next < self.total {
                let mut h = tar::Header::new_ustar();
                h.set_path(format!("f{:07}", self.next))?;
                h.set_size(0);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_cksum();
                self.block = h.as_bytes().to_vec();
                self.next += 1;
            } else {
                self.block = vec![0; 1024];
                self.done = true;
            }
            self.pos = 0;
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_million_empty_entries() {
    // With the default cap (500,000) the unpacker creates that many empty files before it refuses the layer:
    // on tmpfs, so that deleting them does not slow the disk for the tests after.
    let scene = Scene::on_tmpfs();
    let read = Arc::new(AtomicU64::new(0));
    let lim = limits();
    let started = Instant::now();
    let result = unpack_layer(ManyEmptyEntries::new(1_000_000, read.clone()), &scene.target, &lim);
    let took = started.elapsed();
    let err = match result {
        Ok(stats) => panic!("a million entries were unpacked ({stats:?}); the entry cap must refuse them"),
        Err(e) => e.to_string(),
    };
    assert_reason("a million entries", &err, &[&format!("more than {} entries", lim.max_entries)]);
    let entries_read = read.load(Ordering::Relaxed) / 512;
    assert!(entries_read < 1_000_000, "the unpacker read {entries_read} headers before refusing the layer");
    let created = fs::read_dir(&scene.target).map(|rd| rd.count()).unwrap_or(0);
    println!("refused after {entries_read} headers, {created} files created, in {took:?}: {err}");
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn a_million_entries_with_a_small_cap_stop_early() {
    // With a cap of 1000 the unpacker must stop right after the 1001st header, not read the rest.
    let scene = Scene::new();
    let read = Arc::new(AtomicU64::new(0));
    let lim = UnpackLimits { max_entries: 1000, ..UnpackLimits::default() };
    let started = Instant::now();
    let err =
        unpack_layer(ManyEmptyEntries::new(1_000_000, read.clone()), &scene.target, &lim).expect_err("1000-entry cap");
    let entries_read = read.load(Ordering::Relaxed) / 512;
    assert!(entries_read <= 1100, "read {entries_read} headers with a cap of 1000");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_reason("a million entries, cap 1000", &err.to_string(), &["more than 1000 entries"]);
    scene.assert_contained(&["rootfs"]);
}

fn huge_header(name: &str) {
    let scene = Scene::new();
    let rss_before = support::peak_rss();
    let started = Instant::now();
    let err = unpack(name, &scene.target).expect_err("a 10 GiB entry with 40 bytes of data must fail");
    let took = started.elapsed();
    let grew = support::peak_rss().saturating_sub(rss_before);
    assert!(took < Duration::from_secs(10), "{name}: failing took {took:?}");
    assert!(grew < 256 << 20, "{name}: the peak RSS grew by {} MiB", grew >> 20);
    assert_reason(name, &err.to_string(), &["\"huge.bin\"", "10737418240 bytes", "ends after 40"]);
    scene.assert_contained(&["rootfs"]);
    // Whatever was written of huge.bin holds at most the bytes that were there.
    if let Ok(md) = fs::symlink_metadata(scene.target.join("huge.bin")) {
        assert!(md.blocks() * 512 < 1 << 20, "{name}: huge.bin occupies {} bytes", md.blocks() * 512);
    }
}

#[test]
fn huge_size_gnu() {
    huge_header("huge_size_gnu.tar");
}

#[test]
fn huge_size_pax() {
    huge_header("huge_size_pax.tar");
}

#[test]
fn truncated_gzip() {
    let scene = Scene::new();
    let err = unpack_compressed_layer(fixture("truncated.tar.gz"), MT_GZIP, &scene.target, &limits())
        .expect_err("a truncated gzip stream must fail");
    assert_reason("truncated.tar.gz", &err.to_string(), &["gzip", "corrupt or truncated"]);
    scene.assert_contained(&["rootfs"]);
}

#[test]
fn sparse_huge_counts_its_real_size() {
    // 2 KiB of tar that expands to a 10 GiB file: its real size (not the 512 bytes stored) counts against the
    // byte cap, so the cap refuses it before anything is written.
    let scene = Scene::new();
    let lim = UnpackLimits { max_bytes: 64 << 20, ..UnpackLimits::default() };
    let started = Instant::now();
    let err =
        unpack_layer(fixture("sparse_huge.tar"), &scene.target, &lim).expect_err("a 10 GiB sparse file, 64 MiB cap");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_reason("sparse_huge.tar", &err.to_string(), &["more than 67108864 bytes", "\"sparse.bin\""]);
    scene.assert_contained(&["rootfs"]);
}

// ---------------------------------------------------------------------------------------------------------
// a tree 30,000 directories deep: nothing may walk it recursively (each test runs in a child process, so a
// stack overflow fails the test instead of aborting the test binary)

#[test]
fn deep_tree_replaced() {
    support::in_child_process("deep_tree_replaced", |base| {
        let scene = Scene::new_in(base);
        let result = unpack_compressed_layer(fixture("deep_tree_replaced.tar.gz"), MT_GZIP, &scene.target, &limits());
        scene.assert_contained(&["rootfs"]);
        if result.is_ok() {
            let a = node(&scene.target.join("a")).expect("rootfs/a");
            assert_eq!(a.content.as_deref(), Some(&b"replaces the deep tree\n"[..]), "rootfs/a: {a:?}");
        }
        support::rm_rf(&scene.target);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// What [`pull_fixture_layer`] leaves running: the registry and its layout, kept until the test ends.
struct Served {
    _registry: LayoutRegistry,
    _layout: tempfile::TempDir,
}

/// Pulls an image whose only layer is the gzip'd fixture `name`, served from a registry on 127.0.0.1, into a
/// new image store at `store_root`.
async fn pull_fixture_layer(
    name: &str,
    store_root: &Path,
) -> (ImageStore, String, Result<skiff_agent::images::Image, PullError>, Served) {
    let layout = tempfile::tempdir().unwrap();
    let blob = fs::read(fixture_path(name)).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut tar).expect("the fixture is valid gzip");
    support::write_layout(layout.path(), "latest", &[TestLayer { media_type: MT_GZIP, blob, tar }]);
    let registry = LayoutRegistry::serve(layout.path());
    let reference = format!("{}/hostile/{}:latest", registry.host(), name.replace(['_', '.'], "-"));
    let store = store_in(store_root);
    let result = store.pull(&reference, &NoCredentials, &NoProgress).await;
    (store, reference, result, Served { _registry: registry, _layout: layout })
}

#[test]
fn deep_tree_then_device_fails_the_pull_cleanly() {
    // The layer fails after its deep tree is written: the store removes the half-unpacked layer.
    support::in_child_process("deep_tree_then_device_fails_the_pull_cleanly", |base| {
        let scene = Scene::new_in(base);
        runtime().block_on(async {
            let (_store, reference, result, _served) =
                pull_fixture_layer("deep_tree_then_device.tar.gz", &scene.target).await;
            let err = match result {
                Ok(image) => panic!("a layer with a device node was pulled: {image:?}"),
                Err(e) => e.to_string(),
            };
            assert_reason(
                "deep_tree_then_device.tar.gz",
                &err,
                &["CannotPullContainerError: failed to extract layer", &reference, "device node \"dev-null\""],
            );
            assert_no_layer_left(&scene.target);
        });
        scene.assert_contained(&["rootfs"]);
        support::rm_rf(&scene.target);
    });
}

#[test]
fn deep_tree_layer_is_pulled_mounted_removed_and_collected() {
    support::in_child_process("deep_tree_layer_is_pulled_mounted_removed_and_collected", |base| {
        let scene = Scene::new_in(base);
        runtime().block_on(async {
            let (store, reference, result, _served) = pull_fixture_layer("deep_tree.tar.gz", &scene.target).await;
            let image = result.expect("a deep but legal layer is pulled");
            println!("step: pulled");
            if support::is_root() {
                let task_dir = scene.sentinel.join("task");
                let rootfs = store.rootfs(&image, &task_dir).await.expect("mount");
                assert!(rootfs.path.join("a/a/a").is_dir());
                rootfs.unmount().expect("unmount");
                // The task directory is the caller's; the store must have left it empty.
                fs::remove_dir(&task_dir).expect("the task directory is empty after unmount");
                println!("step: mounted and unmounted");
            }
            assert!(store.remove(&reference).await.expect("remove the image"), "nothing was removed");
            println!("step: removed");
            store.collect_garbage().await.expect("collect garbage");
            println!("step: garbage collected");
            assert_no_layer_left(&scene.target);
        });
        scene.assert_contained(&["rootfs"]);
        support::rm_rf(&scene.target);
    });
}

#[test]
fn rootfs_teardown_survives_a_deep_tree_written_by_the_task() {
    // What a container can do in its own root filesystem (`mkdir -p` 30,000 levels, in its upper directory):
    // tearing the rootfs down must not walk it recursively.
    if !support::is_root() {
        eprintln!("not root: overlayfs cannot be mounted, nothing to check");
        return;
    }
    support::in_child_process("rootfs_teardown_survives_a_deep_tree_written_by_the_task", |base| {
        let scene = Scene::new_in(base);
        runtime().block_on(async {
            let (store, _reference, result, _served) =
                pull_fixture_layer("semantics_upper.tar.gz", &scene.target).await;
            let image = result.expect("pull a small image");
            let rootfs = store.rootfs(&image, &scene.sentinel.join("task")).await.expect("mount");
            let mut dir = rustix::fs::open(&rootfs.path, rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty())
                .expect("open the rootfs");
            for _ in 0..30_000 {
                rustix::fs::mkdirat(&dir, "d", rustix::fs::Mode::from_raw_mode(0o755)).expect("mkdir");
                dir = rustix::fs::openat(&dir, "d", rustix::fs::OFlags::DIRECTORY, rustix::fs::Mode::empty())
                    .expect("open");
            }
            drop(dir);
            println!("step: the task wrote 30,000 nested directories");
            rootfs.unmount().expect("unmount and remove the task's upper directory");
            println!("step: unmounted");
        });
        support::rm_rf(&scene.sentinel);
    });
}

// ---------------------------------------------------------------------------------------------------------
// well-behaved layers: whiteouts and opaque directories

#[test]
fn semantics_lower_layer_keeps_owners_modes_links_xattrs() {
    let scene = Scene::new();
    unpack("semantics_lower.tar", &scene.target).expect("semantics_lower.tar");
    scene.assert_contained(&["rootfs"]);
    let t = &scene.target;
    let kept = node(&t.join("data/kept.txt")).unwrap();
    assert_eq!((kept.uid, kept.gid, kept.mode & 0o7777), (1000, 1001, 0o640));
    assert_eq!(kept.mtime.0, 1234567890, "mtime not preserved");
    assert_eq!(kept.nlink, 2, "data/kept-link should be a hardlink of data/kept.txt");
    let link = fs::symlink_metadata(t.join("data/kept-link")).unwrap();
    assert_eq!(link.ino(), fs::symlink_metadata(t.join("data/kept.txt")).unwrap().ino());
    assert_eq!(fs::read_link(t.join("data/kept-sym")).unwrap(), Path::new("kept.txt"));
    assert_eq!(node(&t.join("opaque")).unwrap().mode & 0o7777, 0o750);
    assert_eq!(fs::read(t.join("opaque/sub/old2.txt")).unwrap(), b"hidden by the opaque marker\n");
    let xattr = rustix::fs::lgetxattr(t.join("xattr.txt"), "user.skiff", &mut [0u8; 16][..]);
    assert_eq!(xattr.ok(), Some(3), "the user.skiff xattr was not restored");
}

#[test]
fn semantics_upper_layer_in_overlay_form() {
    // The store keeps each layer in its own directory in the form overlayfs reads: `.wh.NAME` becomes a 0/0
    // character device NAME, `.wh..wh..opq` the xattr trusted.overlay.opaque=y, and no `.wh.` name is left.
    let scene = Scene::new();
    let lower = scene.layer_dir("lower");
    let upper = scene.layer_dir("upper");
    unpack("semantics_lower.tar", &lower).expect("semantics_lower.tar");
    let stats = unpack("semantics_upper.tar", &upper).expect("semantics_upper.tar");
    scene.assert_contained(&["lower", "rootfs", "upper"]);
    assert_eq!(stats.whiteouts, 3, "two whiteouts and one opaque marker: {stats:?}");
    for gone in ["data/gone.txt", "data/gone-dir"] {
        let n = node(&upper.join(gone)).unwrap_or_else(|| panic!("upper/{gone} is missing"));
        assert_eq!((n.kind, n.rdev), ("char", 0), "upper/{gone} should be a 0/0 whiteout device: {n:?}");
    }
    let mut buf = [0u8; 8];
    let n = rustix::fs::lgetxattr(upper.join("opaque"), "trusted.overlay.opaque", &mut buf[..]).expect("opaque xattr");
    assert_eq!(&buf[..n], b"y");
    assert!(
        rustix::fs::lgetxattr(upper.join("data"), "trusted.overlay.opaque", &mut buf[..]).is_err(),
        "data/ is not opaque"
    );
    let leftovers: Vec<_> = snapshot(&upper).into_keys().filter(|p| p.to_string_lossy().contains(".wh.")).collect();
    assert!(leftovers.is_empty(), "whiteout names left in the layer: {leftovers:?}");

    // What a container sees: overlayfs over the two directories.
    if !support::is_root() {
        eprintln!("not root: the overlay mount of the two layers is not checked");
        return;
    }
    let merged = scene.target.clone();
    let data = std::ffi::CString::new(format!("lowerdir={}:{}", upper.display(), lower.display())).unwrap();
    rustix::mount::mount("overlay", &merged, "overlay", rustix::mount::MountFlags::RDONLY, data.as_c_str())
        .expect("mount overlay");
    let seen = snapshot(&merged);
    rustix::mount::unmount(&merged, rustix::mount::UnmountFlags::DETACH).expect("unmount");
    let has = |p: &str| seen.contains_key(Path::new(p));
    for absent in ["data/gone.txt", "data/gone-dir", "data/gone-dir/inner.txt", "opaque/old.txt", "opaque/sub"] {
        assert!(!has(absent), "{absent} shows through the merged tree");
    }
    for present in ["data/kept.txt", "data/kept-link", "data/kept-sym", "data/new.txt", "opaque/new.txt", "xattr.txt"] {
        assert!(has(present), "{present} is missing from the merged tree");
    }
    assert_eq!(seen[Path::new("opaque/new.txt")].content.as_deref(), Some(&b"added by the upper layer\n"[..]));
}

// ---------------------------------------------------------------------------------------------------------
// through a pull: the reason ECS would show, and nothing left outside (or inside) the cache

fn store_in(root: &Path) -> ImageStore {
    ImageStore::open(ImageStoreConfig::new(root)).expect("open the image store")
}

/// After a failed pull the cache holds no layer and nothing half-unpacked.
fn assert_no_layer_left(store_root: &Path) {
    for dir in ["layers", "tmp"] {
        let names = support::names(&store_root.join(dir));
        assert!(names.is_empty(), "{dir}/ of the image store holds {names:?} after a failed pull");
    }
}

#[tokio::test]
async fn layer_digest_mismatch() {
    // tests/fixtures/layers/digest_mismatch: the blob stored under the manifest's layer digest is another
    // valid gzip'd tar of the same size.
    let registry = LayoutRegistry::serve(&fixture_path("digest_mismatch"));
    let scene = Scene::new();
    let store = store_in(&scene.target);
    let reference = format!("{}/hostile/digest-mismatch:latest", registry.host());
    let err = match store.pull(&reference, &NoCredentials, &NoProgress).await {
        Ok(image) => panic!("a layer that does not match its digest was accepted: {image:?}"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(matches!(err, PullError::LayerVerify { .. }), "not a verification failure: {err:?}");
    assert_reason(
        "digest_mismatch",
        &msg,
        &[
            "CannotPullContainerError: failed to verify layer sha256:38fcebe5f66c1abb44c602e3b46ee7f4b8204a3f76c6ed65616a6663828a764c",
            &reference,
            "digest mismatch",
        ],
    );
    scene.assert_contained(&["rootfs"]);
    assert_no_layer_left(&scene.target);
    assert!(store.get(&reference).await.expect("lookup").is_none(), "the image was recorded");
}

#[tokio::test]
async fn hostile_layers_fail_the_pull_with_the_reason() {
    // A few of the fixtures above served as the only layer of an image: the pull fails with ECS's
    // CannotPullContainerError text naming the layer and the extractor's reason, and leaves nothing behind.
    let cases: [(&str, &str, &str); 4] = [
        (
            "dotdot_escape.tar",
            "application/vnd.oci.image.layer.v1.tar",
            "path \"../skiff-escape.txt\" escapes the root",
        ),
        (
            "symlink_write_relative.tar",
            "application/vnd.oci.image.layer.v1.tar",
            "path \"evil/x\" goes through a symlink",
        ),
        ("char_device.tar", "application/vnd.oci.image.layer.v1.tar", "device node \"dev-null\" (character device)"),
        ("truncated.tar.gz", "application/vnd.oci.image.layer.v1.tar+gzip", "gzip stream is corrupt or truncated"),
    ];
    for (name, media_type, reason) in cases {
        let scene = Scene::new();
        let layout_dir = tempfile::tempdir().unwrap();
        let layout = layout_dir.path();
        let blob = fs::read(fixture_path(name)).unwrap();
        // The diff_id of a truncated stream is unknowable; any well-formed one will do.
        let layer = TestLayer { media_type, blob: blob.clone(), tar: blob.clone() };
        support::write_layout(layout, "latest", &[layer]);
        let registry = LayoutRegistry::serve(layout);
        let store = store_in(&scene.target);
        let reference = format!("{}/hostile/{}:latest", registry.host(), name.replace(['_', '.'], "-"));
        let err = match store.pull(&reference, &NoCredentials, &NoProgress).await {
            Ok(image) => panic!("{name}: the pull succeeded: {image:?}"),
            Err(e) => e,
        };
        let msg = err.to_string();
        let digest = support::sha256(&blob);
        assert_reason(
            name,
            &msg,
            &[&format!("CannotPullContainerError: failed to extract layer {digest} of {reference}: "), reason],
        );
        assert!(matches!(err, PullError::Extract { .. }), "{name}: {err:?}");
        scene.assert_contained(&["rootfs"]);
        assert_no_layer_left(&scene.target);
    }
}
