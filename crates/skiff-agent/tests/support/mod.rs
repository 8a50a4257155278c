//! What the image store's integration tests share: a pretend host around the unpack target (to prove nothing
//! was written outside it), snapshots of directory trees, the layer fixtures of tests/fixtures/layers, and a
//! tiny read-only OCI registry on 127.0.0.1:0 that serves an OCI image layout directory as it is on disk
//! (so a layout can lie: a blob stored under a digest it does not have is served as is).

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The repository's root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// A committed layer fixture, tests/fixtures/layers/NAME.
pub fn fixture_path(name: &str) -> PathBuf {
    let path = repo_root().join("tests/fixtures/layers").join(name);
    assert!(path.exists(), "fixture {} is missing: run python3 tests/fixtures/layers/make_fixtures.py", path.display());
    path
}

pub fn fixture(name: &str) -> fs::File {
    fs::File::open(fixture_path(name)).expect("open fixture")
}

// ---------------------------------------------------------------------------------------------------------
// snapshots

/// What a test compares before and after: everything `lstat` says that an escape could change, plus file
/// contents and symlink targets. Never follows a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub mtime: (i64, i64),
    pub size: u64,
    pub content: Option<Vec<u8>>,
    pub target: Option<PathBuf>,
    pub rdev: u64,
}

pub fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else {
        "other"
    }
}

pub fn node(path: &Path) -> Option<Node> {
    let md = fs::symlink_metadata(path).ok()?;
    let kind = kind_of(md.file_type());
    Some(Node {
        kind,
        mode: md.mode(),
        uid: md.uid(),
        gid: md.gid(),
        nlink: md.nlink(),
        mtime: (md.mtime(), md.mtime_nsec()),
        size: if kind == "dir" { 0 } else { md.size() },
        content: if kind == "file" { fs::read(path).ok() } else { None },
        target: if kind == "symlink" { fs::read_link(path).ok() } else { None },
        rdev: md.rdev(),
    })
}

/// Every path under `root` (relative, "" for the root itself) with its node.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let path = root.join(rel);
    let Some(n) = node(&path) else { return };
    let is_dir = n.kind == "dir";
    out.insert(rel.to_path_buf(), n);
    if is_dir {
        let mut names: Vec<_> = fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        names.sort();
        for name in names {
            walk(root, &rel.join(name), out);
        }
    }
}

/// The differences between two snapshots, one line each (empty: identical).
pub fn diff(before: &BTreeMap<PathBuf, Node>, after: &BTreeMap<PathBuf, Node>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, b) in before {
        match after.get(p) {
            None => out.push(format!("removed: {}", p.display())),
            Some(a) if a != b => out.push(format!("changed: {}: {:?} -> {:?}", p.display(), short(b), short(a))),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        out.push(format!("added: {}", p.display()));
    }
    out
}

fn short(n: &Node) -> String {
    format!(
        "{} mode {:o} {}:{} nlink {} mtime {:?} size {}{}",
        n.kind,
        n.mode,
        n.uid,
        n.gid,
        n.nlink,
        n.mtime,
        n.size,
        n.target.as_ref().map(|t| format!(" -> {}", t.display())).unwrap_or_default()
    )
}

// ---------------------------------------------------------------------------------------------------------
// the pretend host

/// TMP/host/{victim.txt, victim-dir/inner.txt} and TMP/sentinel/rootfs, the unpack target. A layer entry
/// `../../host/victim.txt` seen from the top of rootfs names the victim.
pub struct Scene {
    pub tmp: tempfile::TempDir,
    pub host: PathBuf,
    pub sentinel: PathBuf,
    pub target: PathBuf,
    host_before: BTreeMap<PathBuf, Node>,
    tmp_names_before: Vec<String>,
}

pub const VICTIM_CONTENT: &[u8] = b"the host's file: never touched by an unpack\n";

impl Scene {
    pub fn new() -> Scene {
        Scene::new_in(&std::env::temp_dir())
    }

    /// A scene on tmpfs (/dev/shm) when there is one: for tests that create and delete hundreds of
    /// thousands of files, which the disk's filesystem here makes slow for minutes after (DESIGN.md §6).
    pub fn on_tmpfs() -> Scene {
        let shm = Path::new("/dev/shm");
        let writable = shm.is_dir() && tempfile::tempdir_in(shm).is_ok();
        Scene::new_in(if writable { shm } else { Path::new("/tmp") })
    }

    pub fn new_in(base: &Path) -> Scene {
        let tmp = tempfile::Builder::new().prefix("skiff-hostile-").tempdir_in(base).expect("temp dir");
        let host = tmp.path().join("host");
        fs::create_dir_all(host.join("victim-dir")).unwrap();
        fs::write(host.join("victim.txt"), VICTIM_CONTENT).unwrap();
        fs::write(host.join("victim-dir/inner.txt"), VICTIM_CONTENT).unwrap();
        let sentinel = tmp.path().join("sentinel");
        let target = sentinel.join("rootfs");
        fs::create_dir_all(&target).unwrap();
        let host_before = snapshot(&host);
        let tmp_names_before = names(tmp.path());
        Scene { tmp, host, sentinel, target, host_before, tmp_names_before }
    }

    /// Another directory beside rootfs in the sentinel (for layers unpacked one directory each).
    pub fn layer_dir(&self, name: &str) -> PathBuf {
        let dir = self.sentinel.join(name);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Nothing outside the sentinel's directories changed: the sentinel holds only what the test made in it,
    /// the host tree is exactly as it was, TMP holds only host and sentinel, and no `skiff-escape.txt`.
    pub fn assert_contained(&self, expected_in_sentinel: &[&str]) {
        let mut want: Vec<String> = expected_in_sentinel.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(
            names(&self.sentinel),
            want,
            "something was written beside the target in {}",
            self.sentinel.display()
        );
        let changes = diff(&self.host_before, &snapshot(&self.host));
        assert!(changes.is_empty(), "the pretend host {} changed:\n{}", self.host.display(), changes.join("\n"));
        assert_eq!(
            names(self.tmp.path()),
            self.tmp_names_before,
            "something was written in {}",
            self.tmp.path().display()
        );
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A path under /tmp that a hostile fixture names. Removed (if present) when made and when dropped.
pub struct HostPath(pub PathBuf);

impl HostPath {
    pub fn new(path: &str) -> HostPath {
        let p = PathBuf::from(path);
        remove_any(&p);
        HostPath(p)
    }
}

impl Drop for HostPath {
    fn drop(&mut self) {
        remove_any(&self.0);
    }
}

pub fn remove_any(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            let _ = fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = fs::remove_file(p);
        }
        Err(_) => {}
    }
}

/// The peak resident set of this process so far (VmHWM), in bytes.
pub fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------------
// a read-only registry serving an OCI image layout

/// Serves `layout` (an OCI image layout directory) as repository NAME for any NAME: `GET /v2/`,
/// `GET|HEAD /v2/NAME/manifests/{tag|digest}` (tags from index.json's ref.name annotations) and
/// `GET|HEAD /v2/NAME/blobs/DIGEST`, each blob exactly as stored under blobs/sha256/. Anonymous, plain HTTP,
/// one thread per connection, keep-alive. Stopped when dropped.
pub struct LayoutRegistry {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    pub blob_gets: Arc<AtomicUsize>,
}

impl LayoutRegistry {
    pub fn serve(layout: &Path) -> LayoutRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let blob_gets = Arc::new(AtomicUsize::new(0));
        let layout = layout.to_path_buf();
        let (stop2, requests2, blob_gets2) = (stop.clone(), requests.clone(), blob_gets.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (layout, requests, blob_gets) = (layout.clone(), requests2.clone(), blob_gets2.clone());
                thread::spawn(move || {
                    let _ = serve_conn(conn, &layout, &requests, &blob_gets);
                });
            }
        });
        LayoutRegistry { addr, requests, stop, blob_gets }
    }

    /// `127.0.0.1:PORT`, the registry host of references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for LayoutRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

fn serve_conn(
    conn: TcpStream,
    layout: &Path,
    requests: &Mutex<Vec<String>>,
    blob_gets: &AtomicUsize,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        requests.lock().unwrap().push(format!("{method} {target}"));
        let path = target.split('?').next().unwrap_or("");
        let (status, ctype, payload, digest) = route(layout, path, blob_gets, &method);
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: {ctype}\r\n", payload.len());
        if let Some(d) = digest {
            head.push_str(&format!("Docker-Content-Digest: {d}\r\n"));
        }
        head.push_str("Docker-Distribution-Api-Version: registry/2.0\r\n\r\n");
        out.write_all(head.as_bytes())?;
        if method != "HEAD" {
            out.write_all(&payload)?;
        }
        out.flush()?;
    }
}

fn not_found(what: &str) -> (String, String, Vec<u8>, Option<String>) {
    let body = format!(r#"{{"errors":[{{"code":"NOT_FOUND","message":"{what} not found"}}]}}"#);
    ("404 Not Found".into(), "application/json".into(), body.into_bytes(), None)
}

fn route(
    layout: &Path,
    path: &str,
    blob_gets: &AtomicUsize,
    method: &str,
) -> (String, String, Vec<u8>, Option<String>) {
    if path == "/v2/" || path == "/v2" {
        return ("200 OK".into(), "application/json".into(), b"{}".to_vec(), None);
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return not_found("route") };
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap_or_default()).unwrap_or_default();
    let blob = |digest: &str| -> Option<Vec<u8>> {
        let hex = digest.strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        fs::read(layout.join("blobs/sha256").join(hex)).ok()
    };
    if let Some((_name, reference)) = rest.rsplit_once("/manifests/") {
        let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
        let desc = manifests.iter().find(|m| {
            m["digest"].as_str() == Some(reference)
                || m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(reference)
        });
        let digest = match desc {
            Some(d) => d["digest"].as_str().unwrap_or("").to_string(),
            None if reference.starts_with("sha256:") => reference.to_string(),
            None => return not_found("manifest"),
        };
        let Some(bytes) = blob(&digest) else { return not_found("manifest") };
        let ctype = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
        return ("200 OK".into(), ctype, bytes, Some(digest));
    }
    if let Some((_name, digest)) = rest.rsplit_once("/blobs/") {
        let Some(bytes) = blob(digest) else { return not_found("blob") };
        if method == "GET" {
            blob_gets.fetch_add(1, Ordering::SeqCst);
        }
        return ("200 OK".into(), "application/octet-stream".into(), bytes, Some(digest.to_string()));
    }
    not_found("route")
}

// ---------------------------------------------------------------------------------------------------------
// building small OCI layouts in a test

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn put_blob(layout: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    let path = layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    digest
}

/// One layer of [`write_layout`]: the blob as served, its media type, and the uncompressed tar (diff_id).
pub struct TestLayer {
    pub media_type: &'static str,
    pub blob: Vec<u8>,
    pub tar: Vec<u8>,
}

impl TestLayer {
    /// An uncompressed tar layer.
    pub fn tar(tar: Vec<u8>) -> TestLayer {
        TestLayer { media_type: "application/vnd.oci.image.layer.v1.tar", blob: tar.clone(), tar }
    }
}

/// Writes an OCI image layout at `dir` with one linux/amd64 image tagged `tag`; returns the manifest digest.
pub fn write_layout(dir: &Path, tag: &str, layers: &[TestLayer]) -> String {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = put_blob(dir, &config);
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": put_blob(dir, &l.blob), "size": l.blob.len()}))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}],
    });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    manifest_digest
}

/// Whether this process may mount (overlayfs needs CAP_SYS_ADMIN).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `rm -rf --one-file-system PATH`: removes trees of any depth (std::fs::remove_dir_all recurses and
/// overflows its stack on a deep enough one).
pub fn rm_rf(path: &Path) {
    let _ = std::process::Command::new("rm").arg("-rf").arg("--one-file-system").arg(path).status();
}

/// Runs `body` in a child process: this same test binary, running only `test_name`. A crash there (a stack
/// overflow aborts the whole process) fails this one test with the child's output instead of killing every
/// test of the binary. The child gets a fresh directory on tmpfs (`base`) that the parent removes with
/// `rm -rf` whatever happened.
pub fn in_child_process(test_name: &str, body: impl FnOnce(&Path)) {
    const CHILD: &str = "SKIFF_HOSTILE_CHILD";
    const BASE: &str = "SKIFF_HOSTILE_CHILD_BASE";
    if std::env::var(CHILD).as_deref() == Ok(test_name) {
        let base = PathBuf::from(std::env::var_os(BASE).expect("the parent passes a base directory"));
        body(&base);
        return;
    }
    let shm = Path::new("/dev/shm");
    let parent =
        if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() { shm.to_path_buf() } else { std::env::temp_dir() };
    let base = tempfile::Builder::new().prefix("skiff-hostile-child-").tempdir_in(parent).expect("temp dir");
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD, test_name)
        .env(BASE, base.path())
        .output()
        .expect("run the test binary");
    rm_rf(base.path());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test_name} failed or crashed in its child process ({}):\n{text}",
        out.status
    );
}
