//! The fuzz targets' shared harness: one registry over a temporary SQLite store and data directory, with a
//! repository `fuzz` holding a config blob, a layer blob and an empty blob, driven by building requests and
//! calling `Registry::handle` (no socket). The registry's manifest and range parsers are private
//! (`mod manifest`, `http_api::{blobs::parse_range, uploads::parse_content_range}`), so the targets reach
//! them through the PUT-manifest, GET-blob and PATCH-upload endpoints.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use sha2::Digest as _;
use skiff_model::ecr::{keys, RegistryHosts, RepositoryRecord, TagMutability};
use skiff_registry::{Registry, RegistryConfig};
use skiff_store::{SqliteStore, Store, Txn};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const REPO: &str = "fuzz";
/// The blobs the harness pushes: a config, a layer (a few KiB) and an empty blob.
pub const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
pub fn layer() -> Vec<u8> {
    (0..4099u32).map(|i| (i % 251) as u8).collect()
}

pub struct Harness {
    pub runtime: tokio::runtime::Runtime,
    pub registry: Registry,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A distribution-spec error body's first code; panics when the body is not one.
    pub fn error_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {:?}", self.status, self.body));
        v["errors"][0]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{} body is not an error body: {v}", self.status))
            .to_string()
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

impl Harness {
    /// The process-wide harness, built on first use.
    pub fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::new)
    }

    fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // libFuzzer ends the process with exit(), so statics are never dropped: keep the leftovers under
        // target/ (ignored, removed by `cargo clean`) rather than in /tmp.
        let parent = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&parent).expect("target dir");
        let dir = tempfile::Builder::new().prefix("harness-").tempdir_in(&parent).expect("temp dir");
        let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("store"));
        let config = RegistryConfig {
            root: dir.path().join("registry"),
            hosts: RegistryHosts {
                registry_host: "127.0.0.1:9400".into(),
                account: "000000000000".into(),
                region: "us-east-1".into(),
            },
            upload_ttl: Duration::from_secs(3600),
        };
        let registry = runtime.block_on(async { Registry::open(config, store.clone()) }).expect("registry");
        let record = RepositoryRecord {
            name: REPO.to_string(),
            arn: format!("arn:aws:ecr:us-east-1:000000000000:repository/{REPO}"),
            registry_id: "000000000000".into(),
            created_at: 0,
            image_tag_mutability: TagMutability::Mutable,
            scan_on_push: false,
            tags: vec![],
            lifecycle_policy: None,
            lifecycle_policy_updated_at: None,
        };
        runtime
            .block_on(store.txn(Txn::new().put(keys::repository(REPO), serde_json::to_vec(&record).unwrap())))
            .expect("repository record");
        let h = Harness { runtime, registry, _dir: dir };
        for blob in [CONFIG.to_vec(), layer(), Vec::new()] {
            let uri = format!("/v2/{REPO}/blobs/uploads/?digest={}", sha256(&blob));
            let resp = h.send(Method::POST, &uri, &[], blob);
            assert_eq!(resp.status, StatusCode::CREATED, "blob push: {:?}", resp.body);
        }
        h
    }

    /// Sends one request; `None` when `headers` cannot form a request (a value `http` refuses).
    pub fn try_send(&self, method: Method, uri: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Option<Resp> {
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, http::HeaderValue::from_bytes(value).ok()?);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        Some(self.runtime.block_on(async {
            let resp = self.registry.handle(req).await;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Resp { status: parts.status, headers: parts.headers, body }
        }))
    }

    pub fn send(&self, method: Method, uri: &str, headers: &[(&str, &[u8])], body: Vec<u8>) -> Resp {
        self.try_send(method, uri, headers, body).expect("valid request")
    }
}
