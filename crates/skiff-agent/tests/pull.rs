//! The image store against a tiny registry served by the test itself (hyper on 127.0.0.1:0), holding images
//! built here with the tar, flate2 and zstd crates: the auth flows (anonymous, Basic, Bearer token), index →
//! linux/amd64, digest / size / diff_id verification, single-flight layers under concurrent pulls, cache hits
//! without the network, overlay root filesystems with whiteouts, removal and LRU garbage collection.
//!
//! Root filesystem tests need root (mount); they print a message and pass when not root.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest as _, Sha256};
use skiff_agent::images::{
    normalize_reference, CredentialProvider, Image, ImageStore, ImageStoreConfig, NoCredentials, NoProgress, PullError,
    PullProgress, RegistryCredentials, StaticCredentials,
};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------------------
// images

const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MT_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const MT_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

enum E<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            E::File(p, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

struct Layer {
    blob: Vec<u8>,
    media_type: &'static str,
    diff_id: String,
}

fn layer_gz(tar: Vec<u8>) -> Layer {
    Layer { diff_id: sha(&tar), blob: gzip(&tar), media_type: MT_GZIP }
}

fn layer_zstd(tar: Vec<u8>) -> Layer {
    Layer { diff_id: sha(&tar), blob: zstd::encode_all(&tar[..], 3).unwrap(), media_type: MT_ZSTD }
}

fn layer_plain(tar: Vec<u8>) -> Layer {
    Layer { diff_id: sha(&tar), blob: tar, media_type: MT_TAR }
}

/// A built image: blobs to serve and the manifest.
struct Built {
    manifest: Vec<u8>,
    manifest_digest: String,
    config_digest: String,
    layer_digests: Vec<String>,
    diff_ids: Vec<String>,
    blobs: Vec<(String, Vec<u8>)>,
}

fn image(layers: Vec<Layer>, arch: &str, label: &str, diff_ids_override: Option<Vec<String>>) -> Built {
    let diff_ids = diff_ids_override.unwrap_or_else(|| layers.iter().map(|l| l.diff_id.clone()).collect());
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/bin", "A=b"], "Cmd": ["sh"], "Entrypoint": ["/bin/entry"], "WorkingDir": "/srv",
                   "User": "1000", "ExposedPorts": {"8080/tcp": {}}, "StopSignal": "SIGQUIT", "Labels": {"which": label}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let mut blobs = vec![(sha(&config), config.clone())];
    let descs: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": sha(&l.blob), "size": l.blob.len()}))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha(&config), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let layer_digests = layers.iter().map(|l| sha(&l.blob)).collect();
    for l in layers {
        blobs.push((sha(&l.blob), l.blob));
    }
    Built { manifest_digest: sha(&manifest), manifest, config_digest: sha(&config), layer_digests, diff_ids, blobs }
}

fn simple_image(label: &str) -> Built {
    image(
        vec![
            layer_gz(tar_of(&[E::Dir("bin"), E::File("bin/tool", b"tool v1\n"), E::Link("bin/sh", "/bin/tool")])),
            layer_gz(tar_of(&[E::Dir("etc"), E::File("etc/motd", label.as_bytes())])),
        ],
        "amd64",
        label,
        None,
    )
}

// ---------------------------------------------------------------------------------------------------------
// the registry

#[derive(Clone)]
enum Auth {
    Anonymous,
    Basic {
        user: &'static str,
        password: &'static str,
    },
    /// Bearer challenge; the token server wants these Basic credentials (None: anonymous tokens) and answers
    /// with `token` or `access_token`.
    Bearer {
        creds: Option<(&'static str, &'static str)>,
        access_token_field: bool,
    },
}

const TOKEN: &str = "tok-123";

#[derive(Default)]
struct State {
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    /// Served instead of the real blob (digest mismatch).
    tampered: HashMap<String, Vec<u8>>,
    hits: HashMap<String, usize>,
    blob_delay: Duration,
}

struct Registry {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Registry {
    async fn start(auth: Auth) -> Registry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = &mut stopped => return,
                };
                let Ok((stream, _)) = conn else { continue };
                let (st, auth) = (st.clone(), auth.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), auth.clone(), addr, req));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Registry { addr, state, _stop: stop }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn push(&self, repo: &str, tag: &str, img: &Built) {
        let mut s = self.state.lock().unwrap();
        for (d, b) in &img.blobs {
            s.blobs.insert(d.clone(), b.clone());
        }
        s.manifests.insert((repo.into(), tag.into()), (MT_MANIFEST.into(), img.manifest.clone()));
        s.manifests.insert((repo.into(), img.manifest_digest.clone()), (MT_MANIFEST.into(), img.manifest.clone()));
    }

    fn push_index(&self, repo: &str, tag: &str, entries: &[(&Built, &str)]) -> String {
        let manifests: Vec<_> = entries
            .iter()
            .map(|(img, arch)| {
                self.push(repo, &format!("untagged-{arch}"), img);
                serde_json::json!({"mediaType": MT_MANIFEST, "digest": img.manifest_digest, "size": img.manifest.len(),
                                   "platform": {"architecture": arch, "os": "linux"}})
            })
            .collect();
        let index =
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}))
                .unwrap();
        let mut s = self.state.lock().unwrap();
        s.manifests.insert((repo.into(), tag.into()), (MT_INDEX.into(), index.clone()));
        sha(&index)
    }

    fn hits(&self, what: &str) -> usize {
        self.state.lock().unwrap().hits.iter().filter(|(k, _)| k.contains(what)).map(|(_, v)| v).sum()
    }

    fn total_hits(&self) -> usize {
        self.state.lock().unwrap().hits.values().sum()
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    auth: Auth,
    addr: std::net::SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let authorization = req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string);
    let basic = |u: &str, p: &str| {
        use base64::Engine as _;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    };
    let reply = |status: StatusCode, body: Vec<u8>| {
        Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap()
    };
    state.lock().unwrap().hits.entry(path.clone()).and_modify(|n| *n += 1).or_insert(1);

    if path == "/token" {
        let Auth::Bearer { creds, access_token_field } = &auth else { return Ok(reply(StatusCode::NOT_FOUND, vec![])) };
        let query = req.uri().query().unwrap_or("");
        assert!(query.contains("service=test-registry"), "token request without service: {query}");
        assert!(query.contains("scope=repository%3A"), "token request without scope: {query}");
        if let Some((u, p)) = creds {
            if authorization.as_deref() != Some(&basic(u, p)) {
                return Ok(reply(
                    StatusCode::UNAUTHORIZED,
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_vec(),
                ));
            }
        }
        let field = if *access_token_field { "access_token" } else { "token" };
        return Ok(reply(StatusCode::OK, serde_json::to_vec(&serde_json::json!({field: TOKEN})).unwrap()));
    }

    let challenge = match &auth {
        Auth::Anonymous => None,
        Auth::Basic { user, password } => {
            (authorization.as_deref() != Some(&basic(user, password))).then(|| r#"Basic realm="test""#.to_string())
        }
        Auth::Bearer { .. } => (authorization.as_deref() != Some(&format!("Bearer {TOKEN}"))).then(|| {
            format!(r#"Bearer realm="http://{addr}/token",service="test-registry",scope="repository:x:pull""#)
        }),
    };
    if let Some(challenge) = challenge {
        let mut resp = reply(
            StatusCode::UNAUTHORIZED,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        );
        resp.headers_mut().insert("www-authenticate", challenge.parse().unwrap());
        return Ok(resp);
    }

    let Some(rest) = path.strip_prefix("/v2/") else { return Ok(reply(StatusCode::NOT_FOUND, vec![])) };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let found = state.lock().unwrap().manifests.get(&(repo.to_string(), reference.to_string())).cloned();
        return Ok(match found {
            Some((ct, body)) => {
                let mut r = reply(StatusCode::OK, body.clone());
                r.headers_mut().insert("content-type", ct.parse().unwrap());
                r.headers_mut().insert("docker-content-digest", sha(&body).parse().unwrap());
                r
            }
            None => reply(
                StatusCode::NOT_FOUND,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
            ),
        });
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        let (body, delay) = {
            let s = state.lock().unwrap();
            (s.tampered.get(digest).or_else(|| s.blobs.get(digest)).cloned(), s.blob_delay)
        };
        tokio::time::sleep(delay).await;
        return Ok(match body {
            Some(b) => reply(StatusCode::OK, b),
            None => reply(
                StatusCode::NOT_FOUND,
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
            ),
        });
    }
    Ok(reply(StatusCode::NOT_FOUND, vec![]))
}

// ---------------------------------------------------------------------------------------------------------
// helpers

fn store(dir: &Path) -> ImageStore {
    ImageStore::open(ImageStoreConfig::new(dir.join("images"))).unwrap()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Nothing but the cache's own directories and committed layers: no temporary leftovers.
fn assert_clean(dir: &Path) {
    let tmp: Vec<_> = std::fs::read_dir(dir.join("images/tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp/ is not empty: {tmp:?}");
}

fn layer_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("images/layers")).unwrap().count()
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);
impl PullProgress for Recorder {
    fn layer_started(&self, digest: &str, size: u64) {
        self.0.lock().unwrap().push(format!("start {digest} {size}"));
    }
    fn layer_progress(&self, _: &str, _: u64) {}
    fn layer_done(&self, digest: &str, cached: bool) {
        self.0.lock().unwrap().push(format!("done {digest} {cached}"));
    }
}

// ---------------------------------------------------------------------------------------------------------
// pulls

#[tokio::test]
async fn anonymous_pull_unpacks_verifies_and_returns_the_config() {
    let reg = Registry::start(Auth::Anonymous).await;
    let img = simple_image("one");
    reg.push("team/web", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let progress = Recorder::default();
    let got = store.pull(&format!("{}/team/web:v1", reg.host()), &NoCredentials, &progress).await.unwrap();

    assert_eq!(got.reference, format!("{}/team/web:v1", reg.host()));
    assert_eq!(got.manifest_digest, img.manifest_digest);
    assert_eq!(got.config_digest, img.config_digest);
    assert_eq!(got.layers, img.diff_ids);
    assert_eq!(got.config.env, vec!["PATH=/bin", "A=b"]);
    assert_eq!(got.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(got.config.entrypoint.as_deref(), Some(&["/bin/entry".to_string()][..]));
    assert_eq!(got.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(got.config.user.as_deref(), Some("1000"));
    assert_eq!(got.config.exposed_ports, vec!["8080/tcp"]);
    assert_eq!(got.config.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(got.config.labels.get("which").map(String::as_str), Some("one"));
    assert_eq!(got.size, 8 + 3);

    let l0 = dir.path().join("images/layers").join(&img.diff_ids[0][7..]).join("fs");
    assert_eq!(std::fs::read(l0.join("bin/tool")).unwrap(), b"tool v1\n");
    assert_eq!(std::fs::read_link(l0.join("bin/sh")).unwrap(), Path::new("/bin/tool"));
    assert_clean(dir.path());
    let events = progress.0.lock().unwrap().clone();
    for d in &img.layer_digests {
        assert!(events.contains(&format!("done {d} false")), "{events:?}");
    }

    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].references, vec![got.reference.clone()]);
    assert_eq!((listed[0].layers, listed[0].size), (2, 11));
    assert_eq!(store.get(&got.reference).await.unwrap(), Some(got));
}

#[tokio::test]
async fn zstd_and_uncompressed_layers() {
    let reg = Registry::start(Auth::Anonymous).await;
    let img = image(
        vec![layer_zstd(tar_of(&[E::File("z.txt", b"zstd\n")])), layer_plain(tar_of(&[E::File("p.txt", b"plain\n")]))],
        "amd64",
        "z",
        None,
    );
    reg.push("z", "latest", &img);
    let dir = tempfile::tempdir().unwrap();
    let got = store(dir.path()).pull(&format!("{}/z", reg.host()), &NoCredentials, &NoProgress).await.unwrap();
    assert_eq!(got.layers, img.diff_ids);
    assert_eq!(got.reference, format!("{}/z:latest", reg.host()));
}

#[tokio::test]
async fn basic_auth() {
    let reg = Registry::start(Auth::Basic { user: "AWS", password: "secret" }).await;
    reg.push("web", "v1", &simple_image("b"));
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let r = format!("{}/web:v1", reg.host());
    let err = store.pull(&r, &NoCredentials, &NoProgress).await.unwrap_err().to_string();
    assert!(err.starts_with(&format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {r}: pull access denied")), "{err}");
    let wrong = StaticCredentials(Some(RegistryCredentials::Basic { username: "AWS".into(), password: "nope".into() }));
    let err = store.pull(&r, &wrong, &NoProgress).await.unwrap_err().to_string();
    assert!(err.contains("pull access denied") && err.contains("401"), "{err}");
    let right =
        StaticCredentials(Some(RegistryCredentials::Basic { username: "AWS".into(), password: "secret".into() }));
    store.pull(&r, &right, &NoProgress).await.unwrap();
    assert_clean(dir.path());
}

#[tokio::test]
async fn bearer_token_flow() {
    for (creds, access_token_field) in [(Some(("user", "pw")), false), (None, true)] {
        let reg = Registry::start(Auth::Bearer { creds, access_token_field }).await;
        reg.push("web", "v1", &simple_image("t"));
        let dir = tempfile::tempdir().unwrap();
        let provider = StaticCredentials(
            creds.map(|(u, p)| RegistryCredentials::Basic { username: u.into(), password: p.into() }),
        );
        store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &provider, &NoProgress).await.unwrap();
        // One token for the whole pull: the session keeps it.
        assert_eq!(reg.hits("/token"), 1, "tokens fetched");
        if creds.is_some() {
            let err = store(dir.path())
                .pull(&format!("{}/web:v1", reg.host()), &NoCredentials, &NoProgress)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("token server") && err.contains("401"), "{err}");
        }
    }
    // A registry token given directly is sent as Bearer without the token server.
    let reg = Registry::start(Auth::Bearer { creds: Some(("u", "p")), access_token_field: false }).await;
    reg.push("web", "v1", &simple_image("t"));
    let dir = tempfile::tempdir().unwrap();
    let provider = StaticCredentials(Some(RegistryCredentials::Bearer(TOKEN.into())));
    store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &provider, &NoProgress).await.unwrap();
    assert_eq!(reg.hits("/token"), 0);
}

#[tokio::test]
async fn index_selects_linux_amd64() {
    let reg = Registry::start(Auth::Anonymous).await;
    let arm = image(vec![layer_gz(tar_of(&[E::File("arch", b"arm64\n")]))], "arm64", "arm", None);
    let amd = image(vec![layer_gz(tar_of(&[E::File("arch", b"amd64\n")]))], "amd64", "amd", None);
    reg.push_index("multi", "v1", &[(&arm, "arm64"), (&amd, "amd64")]);
    let dir = tempfile::tempdir().unwrap();
    let got = store(dir.path()).pull(&format!("{}/multi:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap();
    assert_eq!(got.manifest_digest, amd.manifest_digest);
    assert_eq!(got.config.labels["which"], "amd");
    assert_eq!(reg.hits(&arm.layer_digests[0]), 0, "the arm64 layer was fetched");

    reg.push_index("armonly", "v1", &[(&arm, "arm64")]);
    let err =
        store(dir.path()).pull(&format!("{}/armonly:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("CannotPullContainerError: {}/armonly:v1: no matching manifest for linux/amd64 in the manifest list entries", reg.host())
    );
}

#[tokio::test]
async fn unknown_image_is_not_found() {
    let reg = Registry::start(Auth::Anonymous).await;
    let dir = tempfile::tempdir().unwrap();
    let r = format!("{}/web:v9", reg.host());
    let err = store(dir.path()).pull(&r, &NoCredentials, &NoProgress).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {r}: not found: server message: manifest_unknown: manifest unknown")
    );
    let err = store(dir.path()).pull("Bad/Name", &NoCredentials, &NoProgress).await.unwrap_err();
    assert!(matches!(err, PullError::Reference { .. }), "{err}");
}

#[tokio::test]
async fn a_tampered_layer_fails_and_leaves_nothing() {
    let reg = Registry::start(Auth::Anonymous).await;
    let img = simple_image("x");
    reg.push("web", "v1", &img);
    // Same length, other bytes: the digest check must catch it.
    let evil = gzip(&tar_of(&[E::Dir("etc"), E::File("etc/motd", b"y")]));
    reg.state.lock().unwrap().tampered.insert(img.layer_digests[1].clone(), evil.clone());
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PullError::LayerVerify { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "CannotPullContainerError: failed to verify layer {} of {}/web:v1: ",
            img.layer_digests[1],
            reg.host()
        )),
        "{msg}"
    );
    assert!(msg.contains("mismatch"), "{msg}");
    assert_clean(dir.path());
    assert!(!dir.path().join("images/layers").join(&img.diff_ids[1][7..]).exists());
    assert!(store(dir.path()).list().unwrap().is_empty(), "an image was recorded");
}

#[tokio::test]
async fn a_wrong_diff_id_fails_and_leaves_nothing() {
    let reg = Registry::start(Auth::Anonymous).await;
    let wrong = sha(b"something else");
    let img = image(vec![layer_gz(tar_of(&[E::File("a", b"a")]))], "amd64", "d", Some(vec![wrong.clone()]));
    reg.push("web", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&img.layer_digests[0]) && msg.contains("diff_id mismatch") && msg.contains(&wrong), "{msg}");
    assert_clean(dir.path());
    assert_eq!(layer_count(dir.path()), 0);
}

#[tokio::test]
async fn a_hostile_layer_names_image_layer_and_entry() {
    let reg = Registry::start(Auth::Anonymous).await;
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"../x");
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let img = image(vec![layer_gz(b.into_inner().unwrap())], "amd64", "h", None);
    reg.push("web", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "CannotPullContainerError: failed to extract layer {} of {}/web:v1: path \"../x\" escapes the root",
            img.layer_digests[0],
            reg.host()
        )
    );
    assert_clean(dir.path());
    assert_eq!(layer_count(dir.path()), 0);
}

#[tokio::test]
async fn foreign_layers_are_refused() {
    let reg = Registry::start(Auth::Anonymous).await;
    let mut l = layer_gz(tar_of(&[E::File("a", b"a")]));
    l.media_type = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    let img = image(vec![l], "amd64", "f", None);
    reg.push("win", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let err = store(dir.path()).pull(&format!("{}/win:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap_err();
    assert!(err.to_string().contains("foreign or non-distributable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_fetch_each_layer_once() {
    let reg = Registry::start(Auth::Anonymous).await;
    let a = simple_image("shared");
    // b shares a's first layer.
    let b = image(
        vec![
            layer_gz(tar_of(&[E::Dir("bin"), E::File("bin/tool", b"tool v1\n"), E::Link("bin/sh", "/bin/tool")])),
            layer_gz(tar_of(&[E::File("b.txt", b"b\n")])),
        ],
        "amd64",
        "b",
        None,
    );
    assert_eq!(a.layer_digests[0], b.layer_digests[0]);
    reg.push("a", "v1", &a);
    reg.push("b", "v1", &b);
    reg.state.lock().unwrap().blob_delay = Duration::from_millis(150);
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let (ra, rb) = (format!("{}/a:v1", reg.host()), format!("{}/b:v1", reg.host()));
    let pulls = [&ra, &ra, &rb, &ra, &rb].map(|r| {
        let (s, r) = (store.clone(), r.clone());
        tokio::spawn(async move { s.pull(&r, &NoCredentials, &NoProgress).await })
    });
    for p in pulls {
        p.await.unwrap().unwrap();
    }
    for d in a.layer_digests.iter().chain(&b.layer_digests) {
        assert_eq!(reg.hits(&format!("/blobs/{d}")), 1, "layer {d} fetched more than once");
    }
    assert_eq!(layer_count(dir.path()), 3);
    assert_clean(dir.path());
}

#[tokio::test]
async fn cached_images_need_no_blobs_and_digests_no_network() {
    let reg = Registry::start(Auth::Anonymous).await;
    let img = simple_image("c");
    reg.push("web", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let by_tag = format!("{}/web:v1", reg.host());
    store.pull(&by_tag, &NoCredentials, &NoProgress).await.unwrap();
    let before = reg.total_hits();

    // A tag is re-resolved (one manifest request), but no blob is fetched.
    let progress = Recorder::default();
    store.pull(&by_tag, &NoCredentials, &progress).await.unwrap();
    assert_eq!(reg.total_hits(), before + 1);
    assert_eq!(reg.hits("/blobs/"), 3, "blobs fetched again");
    let events = progress.0.lock().unwrap().clone();
    assert!(events.iter().all(|e| e.ends_with(" true")), "{events:?}");

    // A digest in the cache needs nothing at all.
    let by_digest = format!("{}/web@{}", reg.host(), img.manifest_digest);
    let got = store.pull(&by_digest, &NoCredentials, &NoProgress).await.unwrap();
    assert_eq!(reg.total_hits(), before + 1);
    assert_eq!(got.reference, by_digest);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].references.len(), 2);

    // Another store on the same directory (another process) sees the cache.
    let other = ImageStore::open(ImageStoreConfig::new(dir.path().join("images"))).unwrap();
    other.pull(&by_digest, &NoCredentials, &NoProgress).await.unwrap();
    assert_eq!(reg.total_hits(), before + 1);
}

#[tokio::test]
async fn remove_keeps_shared_layers() {
    let reg = Registry::start(Auth::Anonymous).await;
    let a = simple_image("a");
    let b = simple_image("b"); // same first layer, different second
    reg.push("a", "v1", &a);
    reg.push("b", "v1", &b);
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let (ra, rb) = (format!("{}/a:v1", reg.host()), format!("{}/b:v1", reg.host()));
    store.pull(&ra, &NoCredentials, &NoProgress).await.unwrap();
    store.pull(&rb, &NoCredentials, &NoProgress).await.unwrap();
    assert_eq!(layer_count(dir.path()), 3);
    assert!(store.remove(&ra).await.unwrap());
    assert!(!store.remove(&ra).await.unwrap(), "removed twice");
    assert_eq!(layer_count(dir.path()), 2, "a's own layer stays or the shared one went");
    assert!(dir.path().join("images/layers").join(&a.diff_ids[0][7..]).exists());
    // By manifest digest.
    assert!(store.remove(&b.manifest_digest).await.unwrap());
    assert_eq!(layer_count(dir.path()), 0);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.get(&rb).await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------------------
// root filesystems and garbage collection

fn overlay_image() -> Built {
    image(
        vec![
            layer_gz(tar_of(&[
                E::Dir("data"),
                E::File("data/keep.txt", b"keep\n"),
                E::File("data/remove-me.txt", b"gone\n"),
                E::Dir("opaque"),
                E::File("opaque/old.txt", b"old\n"),
                E::File("etc-motd", b"one\n"),
            ])),
            layer_gz(tar_of(&[
                E::Dir("data"),
                E::File("data/.wh.remove-me.txt", b""),
                E::Dir("opaque"),
                E::File("opaque/.wh..wh..opq", b""),
                E::File("opaque/new.txt", b"new\n"),
            ])),
            layer_gz(tar_of(&[E::File("etc-motd", b"three\n")])),
        ],
        "amd64",
        "o",
        None,
    )
}

#[tokio::test]
async fn rootfs_overlay_shows_whiteouts_and_tears_down() {
    if !is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return;
    }
    let reg = Registry::start(Auth::Anonymous).await;
    let img = overlay_image();
    reg.push("o", "v1", &img);
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let image = store.pull(&format!("{}/o:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap();
    let task = dir.path().join("tasks/t1");
    let started = std::time::Instant::now();
    let fs = store.rootfs(&image, &task).await.unwrap();
    let took = started.elapsed();
    eprintln!("rootfs ready in {took:?}");
    let root = fs.path.clone();
    assert_eq!(std::fs::read(root.join("data/keep.txt")).unwrap(), b"keep\n");
    assert!(!root.join("data/remove-me.txt").exists(), "the whiteout did not hide the file");
    assert!(!root.join("data/.wh.remove-me.txt").exists());
    assert!(!root.join("opaque/old.txt").exists(), "the opaque directory shows the lower file");
    assert_eq!(std::fs::read(root.join("opaque/new.txt")).unwrap(), b"new\n");
    assert_eq!(std::fs::read(root.join("etc-motd")).unwrap(), b"three\n");
    let mut names: Vec<_> = std::fs::read_dir(root.join("opaque")).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, vec!["new.txt"]);

    // Writes go to the task's upper directory, never to the cached layers.
    std::fs::write(root.join("data/keep.txt"), b"changed\n").unwrap();
    std::fs::remove_file(root.join("etc-motd")).unwrap();
    let l0 = dir.path().join("images/layers").join(&img.diff_ids[0][7..]).join("fs");
    assert_eq!(std::fs::read(l0.join("data/keep.txt")).unwrap(), b"keep\n");
    assert_eq!(std::fs::read(fs.upper_dir().join("data/keep.txt")).unwrap(), b"changed\n");

    // In use: garbage collection keeps it even with a zero budget.
    let tight =
        ImageStore::open(ImageStoreConfig { max_cache_bytes: 0, ..ImageStoreConfig::new(dir.path().join("images")) })
            .unwrap();
    let report = tight.collect_garbage().await.unwrap();
    assert!(
        report.images_removed.is_empty(),
        "an image under a mount was collected (seen through the mount table): {report:?}"
    );
    assert_eq!(layer_count(dir.path()), 3);

    fs.unmount().unwrap();
    assert!(!task.join("rootfs").exists() && !task.join("upper").exists() && !task.join("work").exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&task.display().to_string()), "still mounted");

    // Dropping a Rootfs unmounts too.
    let fs = store.rootfs(&image, &task).await.unwrap();
    drop(fs);
    assert!(!task.join("rootfs").exists());
    let report = tight.collect_garbage().await.unwrap();
    assert_eq!(report.images_removed, vec![img.manifest_digest.clone()]);
    assert_eq!(layer_count(dir.path()), 0);
}

#[tokio::test]
async fn rootfs_of_a_missing_layer_fails() {
    if !is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let image = Image {
        reference: "x/y:z".into(),
        manifest_digest: sha(b"m"),
        config_digest: sha(b"c"),
        layers: vec![sha(b"l")],
        config: Default::default(),
        size: 0,
    };
    let err = store.rootfs(&image, &dir.path().join("t")).await.unwrap_err();
    assert!(err.to_string().contains("is not in the image store"), "{err}");
}

#[tokio::test]
async fn gc_removes_least_recently_used_first() {
    let reg = Registry::start(Auth::Anonymous).await;
    let imgs: Vec<Built> = (0..3)
        .map(|i| {
            let data = vec![b'a' + i as u8; 1000];
            image(vec![layer_gz(tar_of(&[E::File("f", &data)]))], "amd64", &i.to_string(), None)
        })
        .collect();
    for (i, img) in imgs.iter().enumerate() {
        reg.push(&format!("i{i}"), "v1", img);
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    for i in 0..3 {
        store.pull(&format!("{}/i{i}:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Use i0 again: i1 is now the least recently used.
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.pull(&format!("{}/i0:v1", reg.host()), &NoCredentials, &NoProgress).await.unwrap();

    let root = dir.path().join("images");
    let roomy = ImageStore::open(ImageStoreConfig { max_cache_bytes: 3000, ..ImageStoreConfig::new(&root) }).unwrap();
    assert_eq!(roomy.collect_garbage().await.unwrap().images_removed, Vec::<String>::new());
    let tight = ImageStore::open(ImageStoreConfig { max_cache_bytes: 2000, ..ImageStoreConfig::new(&root) }).unwrap();
    let report = tight.collect_garbage().await.unwrap();
    assert_eq!(report.images_removed, vec![imgs[1].manifest_digest.clone()]);
    assert_eq!((report.layers_removed, report.bytes_freed, report.cache_bytes), (1, 1000, 2000));
    let left: Vec<String> = store.list().unwrap().into_iter().flat_map(|s| s.references).collect();
    assert_eq!(left, vec![format!("{}/i0:v1", reg.host()), format!("{}/i2:v1", reg.host())]);
    assert!(normalize_reference(&left[0]).is_ok());
}

/// The provider is asked for the registry's host as written in the reference.
#[tokio::test]
async fn credentials_are_asked_for_the_registry_host() {
    struct Asked(Mutex<Vec<String>>);
    impl CredentialProvider for Asked {
        fn credentials(&self, host: &str) -> Option<RegistryCredentials> {
            self.0.lock().unwrap().push(host.to_string());
            None
        }
    }
    let reg = Registry::start(Auth::Anonymous).await;
    reg.push("web", "v1", &simple_image("q"));
    let dir = tempfile::tempdir().unwrap();
    let asked = Asked(Mutex::new(Vec::new()));
    store(dir.path()).pull(&format!("{}/web:v1", reg.host()), &asked, &NoProgress).await.unwrap();
    assert_eq!(asked.0.into_inner().unwrap(), vec![reg.host()]);
}
