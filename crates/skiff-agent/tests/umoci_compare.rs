//! The multi-layer busybox image (tests/images/oci_image.py, variant `multi`: a whiteout, an opaque
//! directory, a replaced file over three layers) unpacked by `umoci unpack` and by Skiff's image store
//! (pulled from an OCI layout served on 127.0.0.1, mounted as an overlayfs root filesystem) must give the
//! same tree: paths, types, modes, owners, symlink targets, contents and mtimes.
//!
//! Needs root (overlayfs), python3, Debian's busybox-static and umoci (`make deps` installs them).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_agent::images::{ImageStore, ImageStoreConfig, NoCredentials, NoProgress};
use support::{repo_root, snapshot, LayoutRegistry, Node};

const TAG: &str = "multi";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require(tool: &str, hint: &str) {
    let found =
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    assert!(found, "{tool} is not installed: {hint}");
}

/// What both unpackers must agree on, per path. The root directory itself is left out: Skiff's merged root
/// takes its attributes from the task's fresh upper directory, umoci's from the bundle.
fn comparable(tree: BTreeMap<PathBuf, Node>) -> BTreeMap<PathBuf, Node> {
    tree.into_iter()
        .filter(|(p, _)| !p.as_os_str().is_empty())
        .map(|(p, mut n)| {
            // Directory link counts depend on the file system (overlayfs reports 1 for merged directories).
            if n.kind == "dir" {
                n.nlink = 0;
            }
            // Device numbers only mean something for devices (there are none in this image).
            if n.kind != "char" && n.kind != "block" {
                n.rdev = 0;
            }
            (p, n)
        })
        .collect()
}

#[tokio::test]
async fn multi_layer_busybox_matches_umoci() {
    assert!(support::is_root(), "this test mounts overlayfs: run it as root");
    require("umoci", "apt-get install umoci (make deps)");
    require("python3", "apt-get install python3");
    assert!(Path::new("/bin/busybox").exists(), "/bin/busybox is missing: apt-get install busybox-static (make deps)");

    let tmp = tempfile::Builder::new().prefix("skiff-umoci-").tempdir().unwrap();
    let image = tmp.path().join("image");
    run(Command::new("python3").arg(repo_root().join("tests/images/oci_image.py")).args([
        "busybox",
        image.to_str().unwrap(),
        "--variant",
        "multi",
        "--tag",
        TAG,
    ]));

    // The peer.
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci").arg("unpack").arg("--image").arg(format!("{}:{TAG}", image.display())).arg(&bundle));
    let want = comparable(snapshot(&bundle.join("rootfs")));

    // Skiff: pull through the registry protocol, mount, walk, unmount.
    let registry = LayoutRegistry::serve(&image);
    let store = ImageStore::open(ImageStoreConfig::new(tmp.path().join("store"))).expect("open the image store");
    let reference = format!("{}/test/busybox:{TAG}", registry.host());
    let pulled = store.pull(&reference, &NoCredentials, &NoProgress).await.expect("pull the multi-layer image");
    assert_eq!(pulled.layers.len(), 3);
    let rootfs = store.rootfs(&pulled, &tmp.path().join("task")).await.expect("mount the root filesystem");
    let got = comparable(snapshot(&rootfs.path));
    rootfs.unmount().expect("unmount");

    let mut problems = Vec::new();
    for (path, w) in &want {
        match got.get(path) {
            None => problems.push(format!("missing in Skiff's rootfs: {}", path.display())),
            Some(g) if g != w => {
                problems.push(format!("differs: {}\n    umoci {w:?}\n    skiff {g:?}", path.display()))
            }
            _ => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        problems.push(format!("only in Skiff's rootfs: {}", path.display()));
    }
    assert!(problems.is_empty(), "Skiff and umoci disagree on {} paths:\n{}", problems.len(), problems.join("\n"));

    // Both could be wrong the same way: the layers' intent, from oci_image.py's multi_expected().
    let content = |p: &str| got.get(Path::new(p)).and_then(|n| n.content.clone());
    for gone in ["data/remove-me.txt", "data/.wh.remove-me.txt", "opaque/old.txt", "opaque/sub", "opaque/.wh..wh..opq"]
    {
        assert!(!got.contains_key(Path::new(gone)), "{gone} should not be in the rootfs");
    }
    assert_eq!(content("data/keep.txt").as_deref(), Some(&b"kept from layer 1\n"[..]));
    assert_eq!(content("opaque/new.txt").as_deref(), Some(&b"added by layer 2\n"[..]));
    assert_eq!(content("added/hello.txt").as_deref(), Some(&b"hello from layer 3\n"[..]));
    assert_eq!(content("data/layer3.txt").as_deref(), Some(&b"added by layer 3\n"[..]));
    assert_eq!(content("etc/motd").as_deref(), Some(&b"motd of layer 3\n"[..]));
    let sh = &got[Path::new("bin/sh")];
    assert_eq!((sh.kind, sh.target.as_deref()), ("symlink", Some(Path::new("/bin/busybox"))));
    println!("{} paths identical in umoci's and Skiff's trees", want.len());
}
