//! Test harness: a registry over a temporary SQLite store and data directory, driven by building requests
//! and calling `Registry::handle` directly (no socket), plus image-building helpers.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Frame;
use sha2::Digest as _;
use skiff_model::ecr::{keys, RegistryHosts, RepositoryRecord, TagMutability};
use skiff_registry::{Registry, RegistryConfig};
use skiff_store::{SqliteStore, Store, Txn};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub struct Harness {
    pub registry: Registry,
    pub store: Arc<SqliteStore>,
    pub dir: tempfile::TempDir,
    pub ttl: Duration,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The first distribution-spec error code of the body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn message(&self) -> String {
        self.json()["errors"][0]["message"].as_str().unwrap_or_default().to_string()
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", String::from_utf8_lossy(&self.body));
        self
    }

    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Resp {
        self.expect(status);
        assert_eq!(self.code(), code, "body: {}", String::from_utf8_lossy(&self.body));
        self
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(data)))
}

/// A request body that yields its chunks and then, optionally, fails (a client that went away).
pub struct ChunkedBody {
    chunks: VecDeque<Bytes>,
    fail_at_end: bool,
}

impl ChunkedBody {
    pub fn new(chunks: Vec<Bytes>, fail_at_end: bool) -> ChunkedBody {
        ChunkedBody { chunks: chunks.into(), fail_at_end }
    }
}

impl hyper::body::Body for ChunkedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.fail_at_end {
            self.fail_at_end = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset",
            ))));
        }
        Poll::Ready(None)
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_ttl(Duration::from_secs(3600)).await
    }

    pub async fn with_ttl(ttl: Duration) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("store"));
        let registry = open(dir.path().join("registry"), store.clone(), ttl);
        Harness { registry, store, dir, ttl }
    }

    /// A second registry over the same data directory and store (a restart).
    pub fn reopen(&self) -> Registry {
        open(self.dir.path().join("registry"), self.store.clone(), self.ttl)
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("registry")
    }

    pub async fn create_repo(&self, name: &str, mutability: TagMutability) {
        let record = RepositoryRecord {
            name: name.to_string(),
            arn: format!("arn:aws:ecr:us-east-1:000000000000:repository/{name}"),
            registry_id: "000000000000".into(),
            created_at: 0,
            image_tag_mutability: mutability,
            scan_on_push: false,
            tags: vec![],
            lifecycle_policy: None,
            lifecycle_policy_updated_at: None,
        };
        let key = keys::repository(name);
        self.store.txn(Txn::new().put(key, serde_json::to_vec(&record).unwrap())).await.unwrap();
    }

    pub async fn send_request<B>(&self, req: Request<B>) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::fmt::Display,
    {
        send(&self.registry, req).await
    }

    pub async fn send(&self, method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Resp {
        self.send_request(request(method, uri, headers, body)).await
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.send(Method::GET, uri, &[], Bytes::new()).await
    }

    /// A monolithic blob upload; returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        self.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), &[], data.to_vec())
            .await
            .expect(201);
        digest
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Resp {
        self.send(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            body.to_vec(),
        )
        .await
    }

    /// Pushes a config and `layers` and a manifest naming them under `tag`; returns the manifest digest and
    /// bytes.
    pub async fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (String, Vec<u8>) {
        let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}","n":{}}}"#, layers.len());
        let manifest = self.push_parts(repo, config.as_bytes(), layers, None).await;
        let resp = self.put_manifest(repo, tag, OCI_MANIFEST, &manifest).await;
        resp.expect(201);
        (resp.header("docker-content-digest").unwrap().to_string(), manifest)
    }

    /// Pushes the blobs and returns a manifest naming them (optionally with extra top-level fields).
    pub async fn push_parts(&self, repo: &str, config: &[u8], layers: &[&[u8]], extra: Option<&str>) -> Vec<u8> {
        let config_digest = self.push_blob(repo, config).await;
        let mut descs = Vec::new();
        for layer in layers {
            let d = self.push_blob(repo, layer).await;
            descs.push(serde_json::json!({ "mediaType": OCI_LAYER, "digest": d, "size": layer.len() }));
        }
        manifest_json(&config_digest, config.len(), descs, extra)
    }
}

pub fn manifest_json(
    config_digest: &str,
    config_size: usize,
    layers: Vec<serde_json::Value>,
    extra: Option<&str>,
) -> Vec<u8> {
    let mut doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size },
        "layers": layers,
    });
    if let Some(extra) = extra {
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
    }
    serde_json::to_vec(&doc).unwrap()
}

pub fn open(root: PathBuf, store: Arc<SqliteStore>, ttl: Duration) -> Registry {
    let hosts = RegistryHosts {
        registry_host: "127.0.0.1:9400".into(),
        account: "000000000000".into(),
        region: "us-east-1".into(),
    };
    Registry::open(RegistryConfig { root, hosts, upload_ttl: ttl }, store).expect("open registry")
}

pub fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Full::new(body.into())).expect("request")
}

pub async fn send<B>(registry: &Registry, req: Request<B>) -> Resp
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let resp = registry.handle(req).await;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Resp { status: parts.status, headers: parts.headers, body }
}

/// Every file under `dir`, recursively (relative paths).
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Blob files in the store (path names).
pub fn blob_files(h: &Harness) -> Vec<String> {
    files_under(&h.root().join("blobs"))
}

/// Entries of the uploads directory.
pub fn upload_entries(h: &Harness) -> Vec<String> {
    std::fs::read_dir(h.root().join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Runs futures concurrently on this task (no extra dependency).
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future completed")).collect()
}
