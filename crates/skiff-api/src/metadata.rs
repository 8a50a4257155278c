//! The ECS task metadata endpoint, version 4 (and version 3 on the same tokens), as Fargate platform 1.4
//! serves it to a task's containers.
//!
//! Every container gets `ECS_CONTAINER_METADATA_URI_V4=http://GATEWAY:PORT/v4/TOKEN` (and
//! `ECS_CONTAINER_METADATA_URI=http://GATEWAY:PORT/v3/TOKEN`): GATEWAY is the address of the subnet's bridge,
//! which every task on the subnet reaches, so the TOKEN is what keeps one task from reading another's
//! metadata. It names the task and the container and carries an HMAC of both under a key only the server
//! knows ([`MetadataService::token`]); nothing is looked up to check it.
//!
//! Paths, as ECS serves them (GET only; anything else is 404, a method other than GET 405):
//! `/v4/TOKEN` the container's metadata, `/v4/TOKEN/task` the task's with every container, `/v4/TOKEN/stats`
//! Docker's stats JSON of the container read from its cgroup, `/v4/TOKEN/task/stats` the same for every
//! container of the task, keyed by `DockerId`.
//!
//! The JSON is a pure function of the records (task, task definition, subnet) and the stats samples
//! ([`container_metadata`], [`task_metadata`], [`docker_stats`]); the service only loads them.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use skiff_agent::runtime::cgroup::{self, CgroupLayout};
use skiff_model::task::{Container, TaskRecord};
use skiff_model::task_definition::TaskDefinition;
use skiff_model::vpc::Subnet;
use skiff_proto::timestamp::{to_iso8601, EpochMillis};
use skiff_store::Store;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::context::AppState;

/// The port the endpoint listens on at every subnet gateway (ECS's agent introspection port is 51678).
pub const DEFAULT_PORT: u16 = 51679;
/// `ECS_CONTAINER_METADATA_URI_V4`.
pub const ENV_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// `ECS_CONTAINER_METADATA_URI` (version 3).
pub const ENV_V3: &str = "ECS_CONTAINER_METADATA_URI";
/// The file in the data directory that keeps the token key across restarts ([`load_or_generate_key`]).
pub const KEY_FILE: &str = "metadata-endpoint.key";

/// Hex digits of the (truncated) HMAC-SHA256 in a token: 128 bits.
const MAC_HEX_LEN: usize = 32;
/// Longest token accepted (task id + MAC + container name of at most 255 characters, with room).
const MAX_TOKEN_LEN: usize = 512;
/// Stats samples older than this are forgotten (a container nobody polls).
const SAMPLE_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Page size of the task scan that finds a task by id.
const SCAN_PAGE: usize = 500;

/// The metadata version a path asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

impl Version {
    fn prefix(self) -> &'static str {
        match self {
            Version::V3 => "v3",
            Version::V4 => "v4",
        }
    }
}

/// Loads the 32-byte token key from `data_dir/metadata-endpoint.key`, creating it (mode 0600) on first use,
/// so URIs handed to running containers stay valid across server restarts.
pub fn load_or_generate_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    crate::credentials::load_or_generate_secret(&data_dir.join(KEY_FILE))
}

/// The task metadata endpoint: mints the URIs containers get and serves them on the subnet gateways.
pub struct MetadataService {
    inner: Arc<Inner>,
    listeners: tokio::sync::Mutex<HashMap<SocketAddr, Listener>>,
}

struct Listener {
    bound: SocketAddr,
    task: tokio::task::AbortHandle,
}

struct Inner {
    store: Arc<dyn Store>,
    key: [u8; 32],
    port: u16,
    cgroups: CgroupLayout,
    /// The host resolver configuration tasks' `/etc/resolv.conf` is rendered from.
    resolv_conf: PathBuf,
    /// `/proc`, where system CPU time and a container's network counters are read.
    proc_root: PathBuf,
    /// task id → its store key (saves the scan on the next request).
    task_keys: std::sync::Mutex<HashMap<String, String>>,
    /// DockerId → the previous stats sample (`preread`, `precpu_stats`).
    samples: std::sync::Mutex<HashMap<String, StatsSample>>,
    /// The node's runtime: a container's state can be ahead of its record (a process asks for its metadata
    /// before the controller has recorded that it runs).
    runtime: Option<Arc<skiff_agent::task::Agent>>,
}

impl Drop for MetadataService {
    fn drop(&mut self) {
        for l in self.listeners.get_mut().values() {
            l.task.abort();
        }
    }
}

impl MetadataService {
    /// A service over the server's store; `key` signs the tokens (see [`load_or_generate_key`]).
    pub fn new(state: Arc<AppState>, key: [u8; 32]) -> MetadataService {
        MetadataService::with_store(state.store.clone(), key)
    }

    /// A service over `store` alone (what it reads: tasks, task definitions, subnets).
    pub fn with_store(store: Arc<dyn Store>, key: [u8; 32]) -> MetadataService {
        MetadataService {
            inner: Arc::new(Inner {
                store,
                key,
                port: DEFAULT_PORT,
                cgroups: CgroupLayout::detect(),
                resolv_conf: PathBuf::from("/etc/resolv.conf"),
                proc_root: PathBuf::from("/proc"),
                task_keys: Default::default(),
                samples: Default::default(),
                runtime: None,
            }),
            listeners: Default::default(),
        }
    }

    fn configure(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("MetadataService is configured before it serves")
    }

    /// Completes records with what the node's runtime observes now (see [`Inner::runtime`]).
    pub fn with_agent(mut self, agent: Arc<skiff_agent::task::Agent>) -> MetadataService {
        self.configure().runtime = Some(agent);
        self
    }

    /// Another port than [`DEFAULT_PORT`] (set before the first listener).
    pub fn with_port(mut self, port: u16) -> MetadataService {
        self.configure().port = port;
        self
    }

    /// Where cgroups are read (tests: a directory standing in for `/sys/fs/cgroup`).
    pub fn with_cgroup_layout(mut self, layout: CgroupLayout) -> MetadataService {
        self.configure().cgroups = layout;
        self
    }

    /// Where the resolver configuration is read (default `/etc/resolv.conf`).
    pub fn with_resolv_conf(mut self, path: impl Into<PathBuf>) -> MetadataService {
        self.configure().resolv_conf = path.into();
        self
    }

    /// Where `/proc` is (tests).
    pub fn with_proc_root(mut self, path: impl Into<PathBuf>) -> MetadataService {
        self.configure().proc_root = path.into();
        self
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The token of one container: `{task_id}-{mac}-{container}`, mac being the first 32 hex digits of
    /// HMAC-SHA256(key, "skiff-tmds\0{task_id}\0{container}").
    pub fn token(&self, task_id: &str, container_name: &str) -> String {
        debug_assert!(valid_task_id(task_id), "task id {task_id:?}");
        debug_assert!(valid_container_name(container_name), "container name {container_name:?}");
        let tag = self.inner.mac(task_id, container_name).finalize().into_bytes();
        let hex: String = tag[..MAC_HEX_LEN / 2].iter().map(|b| format!("{b:02x}")).collect();
        format!("{task_id}-{hex}-{container_name}")
    }

    /// (task id, container name) of a token this service minted; `None` for anything else.
    pub fn verify_token(&self, token: &str) -> Option<(String, String)> {
        self.inner.verify_token(token)
    }

    /// `ECS_CONTAINER_METADATA_URI_V4` of one container: `http://GATEWAY:PORT/v4/TOKEN`.
    pub fn uri(&self, gateway: Ipv4Addr, task_id: &str, container_name: &str) -> String {
        self.uri_for(Version::V4, gateway, task_id, container_name)
    }

    /// `ECS_CONTAINER_METADATA_URI` (version 3) of one container: `http://GATEWAY:PORT/v3/TOKEN`.
    pub fn uri_v3(&self, gateway: Ipv4Addr, task_id: &str, container_name: &str) -> String {
        self.uri_for(Version::V3, gateway, task_id, container_name)
    }

    fn uri_for(&self, version: Version, gateway: Ipv4Addr, task_id: &str, container_name: &str) -> String {
        format!("http://{gateway}:{}/{}/{}", self.inner.port, version.prefix(), self.token(task_id, container_name))
    }

    /// Both variables Fargate platform 1.4 injects, for a container's environment.
    pub fn environment(&self, gateway: Ipv4Addr, task_id: &str, container_name: &str) -> Vec<(String, String)> {
        vec![
            (ENV_V4.to_string(), self.uri(gateway, task_id, container_name)),
            (ENV_V3.to_string(), self.uri_v3(gateway, task_id, container_name)),
        ]
    }

    /// Serves the endpoint on `gateway:PORT` (idempotent: a second call for the same gateway does nothing).
    /// The gateway address must exist on the host (the subnet's bridge is up).
    pub async fn ensure_listener(&self, gateway: Ipv4Addr) -> anyhow::Result<()> {
        self.ensure_listener_at(SocketAddr::new(IpAddr::V4(gateway), self.inner.port)).await.map(|_| ())
    }

    /// Serves the endpoint on `addr` (tests: `127.0.0.1:0`) and returns the bound address. Idempotent per
    /// `addr` unless its port is 0.
    pub async fn ensure_listener_at(&self, addr: SocketAddr) -> anyhow::Result<SocketAddr> {
        use anyhow::Context as _;
        let mut listeners = self.listeners.lock().await;
        if addr.port() != 0 {
            if let Some(l) = listeners.get(&addr) {
                return Ok(l.bound);
            }
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the task metadata endpoint"))?;
        let bound = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, self.inner.clone())).abort_handle();
        tracing::info!("task metadata endpoint listening on http://{bound}");
        listeners.insert(if addr.port() == 0 { bound } else { addr }, Listener { bound, task });
        Ok(bound)
    }
}

fn valid_task_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_container_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Inner {
    fn mac(&self, task_id: &str, container: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(b"skiff-tmds\0");
        mac.update(task_id.as_bytes());
        mac.update(b"\0");
        mac.update(container.as_bytes());
        mac
    }

    /// Tries every split `{task}-{32 hex}-{container}` (task ids and container names may both contain
    /// `-`); only the split the MAC was made for verifies.
    fn verify_token(&self, token: &str) -> Option<(String, String)> {
        if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
            return None;
        }
        let bytes = token.as_bytes();
        for (i, _) in token.match_indices('-') {
            let (task_id, rest) = (&token[..i], &token[i + 1..]);
            if rest.len() < MAC_HEX_LEN + 2 || bytes[i + 1 + MAC_HEX_LEN] != b'-' {
                continue;
            }
            let (hex, container) = (&rest[..MAC_HEX_LEN], &rest[MAC_HEX_LEN + 1..]);
            if !valid_task_id(task_id) || !valid_container_name(container) {
                continue;
            }
            let Some(tag) = decode_hex(hex) else { continue };
            if self.mac(task_id, container).verify_truncated_left(&tag).is_ok() {
                return Some((task_id.to_string(), container.to_string()));
            }
        }
        None
    }

    /// Containers the record still shows PENDING but the runtime already runs (or ran) get their runtime
    /// id and status from the runtime.
    fn observe(&self, record: &mut TaskRecord) {
        let Some(agent) = &self.runtime else { return };
        let task_id = record.task.id().to_string();
        for (i, c) in record.task.containers.iter_mut().enumerate() {
            if c.last_status != "PENDING" {
                continue;
            }
            let id = skiff_agent::task::container_id(&task_id, i);
            match agent.runtime.state(&id) {
                Ok(skiff_agent::runtime::ContainerState::Running { .. }) => c.last_status = "RUNNING".into(),
                Ok(skiff_agent::runtime::ContainerState::Exited { exit_code, .. }) => {
                    c.last_status = "STOPPED".into();
                    c.exit_code = Some(exit_code);
                }
                _ => continue,
            }
            c.runtime_id = Some(id);
        }
    }

    /// The task record of `task_id`, wherever its cluster is.
    async fn find_task(&self, task_id: &str) -> anyhow::Result<Option<TaskRecord>> {
        let cached = self.task_keys.lock().expect("task key cache").get(task_id).cloned();
        if let Some(key) = cached {
            if let Some(v) = self.store.get(&key).await? {
                let record: TaskRecord = serde_json::from_slice(&v.value)?;
                if record.task.id() == task_id {
                    return Ok(Some(record));
                }
            }
            self.task_keys.lock().expect("task key cache").remove(task_id);
        }
        let prefix = skiff_model::task::keys::TASKS;
        let mut after: Option<String> = None;
        loop {
            let page = self.store.scan(prefix, after.as_deref(), SCAN_PAGE).await?;
            for (key, v) in &page.items {
                // ecs/tasks/{cluster}/{task-id}
                let rest = &key[prefix.len()..];
                if rest.split_once('/').is_some_and(|(_, id)| id == task_id) {
                    let record: TaskRecord = serde_json::from_slice(&v.value)?;
                    self.task_keys.lock().expect("task key cache").insert(task_id.to_string(), key.clone());
                    return Ok(Some(record));
                }
            }
            match page.items.last() {
                Some((last, _)) if page.more => after = Some(last.clone()),
                _ => return Ok(None),
            }
        }
    }

    async fn load_definition(&self, task_definition_arn: &str) -> anyhow::Result<Option<TaskDefinition>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            task_definition: TaskDefinition,
        }
        let Some((family, revision)) = family_revision(task_definition_arn) else { return Ok(None) };
        let Ok(revision) = revision.parse::<i32>() else { return Ok(None) };
        let key = crate::ecs::keys::task_definition(family, revision);
        Ok(match self.store.get(&key).await? {
            Some(v) => Some(serde_json::from_slice::<Stored>(&v.value)?.task_definition),
            None => None,
        })
    }

    async fn load_subnet(&self, subnet_id: &str) -> anyhow::Result<Option<Subnet>> {
        if subnet_id.is_empty() {
            return Ok(None);
        }
        Ok(match self.store.get(&skiff_model::vpc::keys::subnet(subnet_id)).await? {
            Some(v) => Some(serde_json::from_slice(&v.value)?),
            None => None,
        })
    }

    fn dns(&self) -> DnsConfig {
        DnsConfig::parse(&std::fs::read_to_string(&self.resolv_conf).unwrap_or_default())
    }

    /// Samples the container's cgroup now; `None` when it has none (not started, or gone).
    fn sample(&self, task_id: &str, container: &str) -> Option<StatsSample> {
        let layout = &self.cgroups;
        let path = cgroup::container_cgroups_path(task_id, container);
        let total_usage = cgroup::cpu_usage_ns(layout, &path).ok()?;
        let (user, system) = cgroup::cpu_user_system_ns(layout, &path).unwrap_or_default();
        let proc_stat = std::fs::read_to_string(self.proc_root.join("stat")).unwrap_or_default();
        let (system_cpu_usage, online_cpus) = parse_proc_stat(&proc_stat);
        let usage = cgroup::memory_usage_bytes(layout, &path).ok();
        let limit = cgroup::effective_memory_limit_bytes(layout, &path).or_else(|| {
            let meminfo = std::fs::read_to_string(self.proc_root.join("meminfo")).unwrap_or_default();
            parse_mem_total(&meminfo)
        });
        let networks = cgroup::procs(layout, &path)
            .first()
            .and_then(|pid| std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("net/dev")).ok())
            .map(|text| parse_net_dev(&text));
        Some(StatsSample {
            read_unix_nanos: OffsetDateTime::now_utc().unix_timestamp_nanos(),
            cpu: CpuSample {
                total_usage,
                percpu_usage: cgroup::cpu_usage_percpu_ns(layout, &path),
                usage_in_kernelmode: system,
                usage_in_usermode: user,
                system_cpu_usage,
                online_cpus,
                throttling: cgroup::cpu_throttling(layout, &path).unwrap_or_default(),
            },
            memory: usage.map(|usage| MemorySample {
                usage,
                max_usage: cgroup::memory_max_usage_bytes(layout, &path),
                limit,
                stats: cgroup::memory_stat(layout, &path),
            }),
            pids: cgroup::pids_current(layout, &path),
            networks,
        })
    }

    /// The stats JSON of one container, remembering this sample for the next call's `precpu_stats`.
    fn stats(&self, task_id: &str, container: &Container) -> serde_json::Value {
        let Some(docker_id) = container.runtime_id.as_deref() else { return serde_json::Value::Null };
        let Some(current) = self.sample(task_id, &container.name) else { return serde_json::Value::Null };
        let mut samples = self.samples.lock().expect("stats samples");
        let previous = samples.insert(docker_id.to_string(), current.clone());
        let horizon = current.read_unix_nanos - SAMPLE_TTL.as_nanos() as i128;
        samples.retain(|_, s| s.read_unix_nanos >= horizon);
        drop(samples);
        serde_json::to_value(docker_stats(&container.name, docker_id, &current, previous.as_ref()))
            .unwrap_or(serde_json::Value::Null)
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

/// `arn:…:task-definition/FAMILY:REV` → (FAMILY, REV).
fn family_revision(task_definition_arn: &str) -> Option<(&str, &str)> {
    task_definition_arn.rsplit_once('/')?.1.rsplit_once(':')
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

async fn serve(listener: tokio::net::TcpListener, inner: Arc<Inner>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("metadata endpoint: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(inner.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("metadata endpoint: connection from {peer} ended: {e}");
            }
        });
    }
}

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Container,
    Task,
    ContainerStats,
    TaskStats,
}

/// `/v4/TOKEN[/task][/stats]` → (version, token, resource).
fn route(path: &str) -> Option<(Version, &str, Resource)> {
    let rest = path.strip_prefix('/')?;
    let (version, rest) = match rest.split_once('/')? {
        ("v4", rest) => (Version::V4, rest),
        ("v3", rest) => (Version::V3, rest),
        _ => return None,
    };
    let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let resource = match tail {
        "" => Resource::Container,
        "task" => Resource::Task,
        "stats" => Resource::ContainerStats,
        "task/stats" => Resource::TaskStats,
        _ => return None,
    };
    (!token.is_empty()).then_some((version, token, resource))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    resp
}

fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, serde_json::to_vec(message).unwrap_or_default())
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        let mut resp = error_response(StatusCode::METHOD_NOT_ALLOWED, "the task metadata endpoint answers GET only");
        resp.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return Ok(resp);
    }
    let not_found = || error_response(StatusCode::NOT_FOUND, "no such task metadata");
    let Some((version, token, resource)) = route(req.uri().path()) else { return Ok(not_found()) };
    let Some((task_id, container_name)) = inner.verify_token(token) else { return Ok(not_found()) };
    match respond(&inner, version, &task_id, &container_name, resource).await {
        Ok(Some(body)) => Ok(json_response(StatusCode::OK, body)),
        Ok(None) => Ok(not_found()),
        Err(e) => {
            tracing::error!("metadata endpoint: task {task_id}: {e:#}");
            Ok(error_response(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the task's metadata"))
        }
    }
}

async fn respond(
    inner: &Inner,
    version: Version,
    task_id: &str,
    container_name: &str,
    resource: Resource,
) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(mut record) = inner.find_task(task_id).await? else { return Ok(None) };
    inner.observe(&mut record);
    let Some(container) = record.task.containers.iter().find(|c| c.name == container_name) else {
        return Ok(None);
    };
    let body = match resource {
        Resource::Container | Resource::Task => {
            let definition = inner.load_definition(&record.task.task_definition_arn).await?;
            let subnet_id = eni_detail(&record, "subnetId").unwrap_or(&record.subnet_id).to_string();
            let subnet = inner.load_subnet(&subnet_id).await?;
            let dns = inner.dns();
            let view =
                TaskView { record: &record, definition: definition.as_ref(), subnet: subnet.as_ref(), dns: &dns };
            if resource == Resource::Container {
                serde_json::to_vec(&container_metadata(&view, container_name, version))?
            } else {
                serde_json::to_vec(&task_metadata(&view, version))?
            }
        }
        Resource::ContainerStats => {
            // A container without a cgroup (not started yet, or gone) has no stats yet: `{}`.
            let stats = inner.stats(task_id, container);
            if stats.is_null() {
                b"{}".to_vec()
            } else {
                serde_json::to_vec(&stats)?
            }
        }
        Resource::TaskStats => {
            let map: BTreeMap<&str, serde_json::Value> = record
                .task
                .containers
                .iter()
                .filter_map(|c| Some((c.runtime_id.as_deref()?, inner.stats(task_id, c))))
                .collect();
            serde_json::to_vec(&map)?
        }
    };
    Ok(Some(body))
}

// ---------------------------------------------------------------------------------------------------------
// Rendering: pure functions of the records

/// The resolver configuration tasks get (`/etc/resolv.conf`: the host's, without loopback nameservers,
/// which a task cannot reach).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub search: Vec<String>,
}

impl DnsConfig {
    /// From the text of a `resolv.conf`.
    pub fn parse(text: &str) -> DnsConfig {
        let mut dns = DnsConfig::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        if !ip.is_loopback() {
                            dns.servers.push(ip.to_string());
                        }
                    }
                }
                Some("search") | Some("domain") => dns.search = words.map(str::to_string).collect(),
                _ => {}
            }
        }
        dns
    }
}

/// Everything the metadata of one task is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct TaskView<'a> {
    pub record: &'a TaskRecord,
    /// The task definition (log configuration, docker labels), if it is still stored.
    pub definition: Option<&'a TaskDefinition>,
    /// The subnet of the task's ENI (its CIDR block), if it is still stored.
    pub subnet: Option<&'a Subnet>,
    pub dns: &'a DnsConfig,
}

/// `Limits` of a container: cpu units and MiB, 0 when the definition sets none (as the ECS agent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerLimits {
    #[serde(rename = "CPU")]
    pub cpu: u64,
    #[serde(rename = "Memory")]
    pub memory: u64,
}

/// `Limits` of a task: vCPUs (a number like 0.25) and MiB.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskLimits {
    #[serde(rename = "CPU")]
    pub cpu: serde_json::Number,
    #[serde(rename = "Memory", skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
}

/// One entry of a container's `Networks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Network {
    #[serde(rename = "NetworkMode")]
    pub network_mode: String,
    #[serde(rename = "IPv4Addresses")]
    pub ipv4_addresses: Vec<String>,
    #[serde(rename = "AttachmentIndex", skip_serializing_if = "Option::is_none")]
    pub attachment_index: Option<u32>,
    #[serde(rename = "MACAddress", skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(rename = "IPv4SubnetCIDRBlock", skip_serializing_if = "Option::is_none")]
    pub ipv4_subnet_cidr_block: Option<String>,
    #[serde(rename = "DomainNameServers", skip_serializing_if = "Option::is_none")]
    pub domain_name_servers: Option<Vec<String>>,
    #[serde(rename = "DomainNameSearchList", skip_serializing_if = "Option::is_none")]
    pub domain_name_search_list: Option<Vec<String>>,
    #[serde(rename = "PrivateDNSName", skip_serializing_if = "Option::is_none")]
    pub private_dns_name: Option<String>,
    #[serde(rename = "SubnetGatewayIpv4Address", skip_serializing_if = "Option::is_none")]
    pub subnet_gateway_ipv4_address: Option<String>,
}

/// A container's metadata (`${ECS_CONTAINER_METADATA_URI_V4}`, and each of the task's `Containers`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerMetadata {
    #[serde(rename = "DockerId")]
    pub docker_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "DockerName")]
    pub docker_name: String,
    #[serde(rename = "Image")]
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    #[serde(rename = "Labels", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "DesiredStatus")]
    pub desired_status: String,
    #[serde(rename = "KnownStatus")]
    pub known_status: String,
    #[serde(rename = "ExitCode", skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(rename = "Limits")]
    pub limits: ContainerLimits,
    #[serde(rename = "CreatedAt", skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(rename = "StartedAt", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(rename = "FinishedAt", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(rename = "Type")]
    pub r#type: String,
    #[serde(rename = "LogDriver", skip_serializing_if = "Option::is_none")]
    pub log_driver: Option<String>,
    #[serde(rename = "LogOptions", skip_serializing_if = "Option::is_none")]
    pub log_options: Option<BTreeMap<String, String>>,
    #[serde(rename = "ContainerARN", skip_serializing_if = "Option::is_none")]
    pub container_arn: Option<String>,
    #[serde(rename = "Networks", skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Network>,
}

/// A task's metadata (`${ECS_CONTAINER_METADATA_URI_V4}/task`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskMetadata {
    #[serde(rename = "Cluster")]
    pub cluster: String,
    #[serde(rename = "ServiceName", skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(rename = "TaskARN")]
    pub task_arn: String,
    #[serde(rename = "Family")]
    pub family: String,
    #[serde(rename = "Revision")]
    pub revision: String,
    #[serde(rename = "DesiredStatus")]
    pub desired_status: String,
    #[serde(rename = "KnownStatus")]
    pub known_status: String,
    #[serde(rename = "Limits", skip_serializing_if = "Option::is_none")]
    pub limits: Option<TaskLimits>,
    #[serde(rename = "PullStartedAt", skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<String>,
    #[serde(rename = "PullStoppedAt", skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<String>,
    #[serde(rename = "ExecutionStoppedAt", skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<String>,
    #[serde(rename = "AvailabilityZone")]
    pub availability_zone: String,
    #[serde(rename = "LaunchType", skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<String>,
    #[serde(rename = "Containers")]
    pub containers: Vec<ContainerMetadata>,
}

fn eni_detail<'a>(record: &'a TaskRecord, name: &str) -> Option<&'a str> {
    record
        .task
        .attachments
        .iter()
        .find(|a| a.r#type == "ElasticNetworkInterface")
        .and_then(|a| a.detail(name))
        .filter(|v| !v.is_empty())
}

/// Timestamps as the endpoint writes them (RFC 3339, UTC).
fn timestamp(ms: Option<EpochMillis>) -> Option<String> {
    ms.map(to_iso8601)
}

/// `a.b.c.d/n` → the subnet's gateway as `GW/n` (the first address after the network's, which is the
/// bridge's address).
fn gateway_with_prefix(cidr: &str) -> Option<String> {
    let (net, prefix) = cidr.split_once('/')?;
    let net: Ipv4Addr = net.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 30)?;
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Some(format!("{}/{prefix}", Ipv4Addr::from((u32::from(net) & mask) + 1)))
}

fn network(view: &TaskView<'_>, container: &Container, version: Version) -> Option<Network> {
    let record = view.record;
    let ip = eni_detail(record, "privateIPv4Address")
        .map(str::to_string)
        .or_else(|| container.network_interfaces.iter().find_map(|n| n.private_ipv4_address.clone()))?;
    let mut net = Network {
        network_mode: "awsvpc".into(),
        ipv4_addresses: vec![ip],
        attachment_index: None,
        mac_address: None,
        ipv4_subnet_cidr_block: None,
        domain_name_servers: None,
        domain_name_search_list: None,
        private_dns_name: None,
        subnet_gateway_ipv4_address: None,
    };
    if version == Version::V3 {
        return Some(net);
    }
    let cidr = view.subnet.map(|s| s.cidr_block.clone()).filter(|c| !c.is_empty());
    net.attachment_index = Some(0);
    net.mac_address = eni_detail(record, "macAddress").map(str::to_string);
    net.subnet_gateway_ipv4_address = cidr.as_deref().and_then(gateway_with_prefix);
    net.ipv4_subnet_cidr_block = cidr;
    net.domain_name_servers = Some(view.dns.servers.clone()).filter(|v| !v.is_empty());
    net.domain_name_search_list = Some(view.dns.search.clone()).filter(|v| !v.is_empty());
    net.private_dns_name = eni_detail(record, "privateDnsName").map(str::to_string);
    Some(net)
}

/// The log options as the container runs with them: for `awslogs`, ECS replaces `awslogs-stream-prefix`
/// with the stream it names, `PREFIX/CONTAINER/TASK-ID`.
fn log_options(
    driver: &str,
    options: Option<&BTreeMap<String, String>>,
    container: &str,
    task_id: &str,
) -> BTreeMap<String, String> {
    let mut options = options.cloned().unwrap_or_default();
    if driver == "awslogs" {
        if let Some(prefix) = options.remove("awslogs-stream-prefix") {
            options.insert("awslogs-stream".into(), format!("{prefix}/{container}/{task_id}"));
        }
    }
    options
}

fn parse_units(s: Option<&str>) -> u64 {
    s.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn render_container(view: &TaskView<'_>, container: &Container, version: Version) -> ContainerMetadata {
    let task = &view.record.task;
    let (family, revision) = family_revision(&task.task_definition_arn).unwrap_or_default();
    let definition = view.definition.and_then(|d| d.container(&container.name));
    let mut labels: BTreeMap<String, String> = definition.and_then(|d| d.docker_labels.clone()).unwrap_or_default();
    labels.insert("com.amazonaws.ecs.cluster".into(), task.cluster_arn.clone());
    labels.insert("com.amazonaws.ecs.container-name".into(), container.name.clone());
    labels.insert("com.amazonaws.ecs.task-arn".into(), task.task_arn.clone());
    labels.insert("com.amazonaws.ecs.task-definition-family".into(), family.to_string());
    labels.insert("com.amazonaws.ecs.task-definition-version".into(), revision.to_string());
    // The container's own times when the record has them; otherwise a container that ran started with the
    // task, and one that stopped finished no later than the task's execution stopped.
    let times = view.record.container_times.get(&container.name).copied().unwrap_or_default();
    let ran = container.runtime_id.is_some() && container.last_status != "PENDING";
    let started_at = timestamp(times.started_at.or(if ran { task.started_at } else { None }));
    let finished_at = if container.last_status == "STOPPED" {
        timestamp(times.finished_at.or(task.execution_stopped_at).or(task.stopped_at))
    } else {
        None
    };
    let log = if version == Version::V4 { definition.and_then(|d| d.log_configuration.as_ref()) } else { None };
    let log_driver = log.map(|l| l.log_driver.as_str().to_string());
    let log_options = log.map(|l| log_options(l.log_driver.as_str(), l.options.as_ref(), &container.name, task.id()));
    ContainerMetadata {
        docker_id: container.runtime_id.clone().unwrap_or_default(),
        name: container.name.clone(),
        docker_name: container.name.clone(),
        image: container.image.clone(),
        image_id: container.image_digest.clone().unwrap_or_default(),
        labels,
        desired_status: task.desired_status.clone(),
        known_status: container.last_status.clone(),
        exit_code: container.exit_code,
        limits: ContainerLimits {
            cpu: parse_units(container.cpu.as_deref()),
            memory: parse_units(container.memory.as_deref()),
        },
        created_at: started_at.clone(),
        started_at,
        finished_at,
        r#type: "NORMAL".into(),
        log_driver,
        log_options,
        container_arn: (version == Version::V4 && !container.container_arn.is_empty())
            .then(|| container.container_arn.clone()),
        networks: network(view, container, version).into_iter().collect(),
    }
}

/// The metadata of container `name` of the task (`None` if the task has no such container).
pub fn container_metadata(view: &TaskView<'_>, name: &str, version: Version) -> Option<ContainerMetadata> {
    let container = view.record.task.containers.iter().find(|c| c.name == name)?;
    Some(render_container(view, container, version))
}

/// The task's metadata with all its containers.
pub fn task_metadata(view: &TaskView<'_>, version: Version) -> TaskMetadata {
    let task = &view.record.task;
    let (family, revision) = family_revision(&task.task_definition_arn).unwrap_or_default();
    let limits = task.cpu.trim().parse::<u64>().ok().map(|units| TaskLimits {
        cpu: if units.is_multiple_of(1024) {
            serde_json::Number::from(units / 1024)
        } else {
            serde_json::Number::from_f64(units as f64 / 1024.0).unwrap_or_else(|| serde_json::Number::from(0))
        },
        memory: task.memory.trim().parse().ok(),
    });
    TaskMetadata {
        cluster: task.cluster_arn.clone(),
        service_name: view.record.service_name.clone(),
        task_arn: task.task_arn.clone(),
        family: family.to_string(),
        revision: revision.to_string(),
        desired_status: task.desired_status.clone(),
        known_status: task.last_status.clone(),
        limits,
        pull_started_at: timestamp(task.pull_started_at),
        pull_stopped_at: timestamp(task.pull_stopped_at),
        execution_stopped_at: if version == Version::V4 { timestamp(task.execution_stopped_at) } else { None },
        availability_zone: task.availability_zone.clone(),
        launch_type: (version == Version::V4)
            .then(|| task.launch_type.clone().unwrap_or_else(|| "FARGATE".to_string())),
        containers: task.containers.iter().map(|c| render_container(view, c, version)).collect(),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Stats

/// CPU counters of one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub total_usage: u64,
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
    /// The host's CPU time, nanoseconds (`/proc/stat`, as Docker computes it).
    pub system_cpu_usage: Option<u64>,
    pub online_cpus: Option<u32>,
    pub throttling: cgroup::CpuThrottling,
}

/// Memory counters of one sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    pub max_usage: Option<u64>,
    /// The binding limit (the container's, the task's, or the host's memory).
    pub limit: Option<u64>,
    pub stats: BTreeMap<String, u64>,
}

/// One interface's counters (`/proc/PID/net/dev` in the task's network namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One reading of a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSample {
    pub read_unix_nanos: i128,
    pub cpu: CpuSample,
    pub memory: Option<MemorySample>,
    pub pids: Option<u64>,
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

/// Docker's `ContainerStats` JSON (the members the metadata endpoint returns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DockerStats {
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsStats,
    pub blkio_stats: BlkioStats,
    pub num_procs: u32,
    pub storage_stats: serde_json::Map<String, serde_json::Value>,
    pub cpu_stats: DockerCpuStats,
    pub precpu_stats: DockerCpuStats,
    pub memory_stats: DockerMemoryStats,
    pub name: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetworkStats>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
}

/// Block I/O: not collected (Docker's lists, empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<serde_json::Value>,
    pub io_serviced_recursive: Vec<serde_json::Value>,
    pub io_queue_recursive: Vec<serde_json::Value>,
    pub io_service_time_recursive: Vec<serde_json::Value>,
    pub io_wait_time_recursive: Vec<serde_json::Value>,
    pub io_merged_recursive: Vec<serde_json::Value>,
    pub io_time_recursive: Vec<serde_json::Value>,
    pub sectors_recursive: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DockerCpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DockerCpuStats {
    pub cpu_usage: DockerCpuUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_cpu_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<u32>,
    pub throttling_data: ThrottlingData,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DockerMemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Go's zero time, which Docker reports as `preread` when there is no previous sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339_nanos(unix_nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(unix_nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

fn docker_cpu(cpu: &CpuSample) -> DockerCpuStats {
    DockerCpuStats {
        cpu_usage: DockerCpuUsage {
            total_usage: cpu.total_usage,
            percpu_usage: cpu.percpu_usage.clone(),
            usage_in_kernelmode: cpu.usage_in_kernelmode,
            usage_in_usermode: cpu.usage_in_usermode,
        },
        system_cpu_usage: cpu.system_cpu_usage,
        online_cpus: cpu.online_cpus,
        throttling_data: ThrottlingData {
            periods: cpu.throttling.periods,
            throttled_periods: cpu.throttling.throttled_periods,
            throttled_time: cpu.throttling.throttled_time_ns,
        },
    }
}

/// Docker's stats JSON of container `name` (`DockerId` `id`) from a sample and the one before it.
pub fn docker_stats(name: &str, id: &str, current: &StatsSample, previous: Option<&StatsSample>) -> DockerStats {
    let memory = current.memory.as_ref();
    DockerStats {
        read: rfc3339_nanos(current.read_unix_nanos),
        preread: previous.map_or_else(|| ZERO_TIME.to_string(), |p| rfc3339_nanos(p.read_unix_nanos)),
        pids_stats: PidsStats { current: current.pids },
        blkio_stats: BlkioStats::default(),
        num_procs: 0,
        storage_stats: serde_json::Map::new(),
        cpu_stats: docker_cpu(&current.cpu),
        precpu_stats: previous.map(|p| docker_cpu(&p.cpu)).unwrap_or_default(),
        memory_stats: DockerMemoryStats {
            usage: memory.map(|m| m.usage),
            max_usage: memory.and_then(|m| m.max_usage),
            stats: memory.map(|m| m.stats.clone()).unwrap_or_default(),
            limit: memory.and_then(|m| m.limit),
        },
        name: name.to_string(),
        id: id.to_string(),
        networks: current.networks.clone(),
    }
}

/// `/proc/stat` → (host CPU time in nanoseconds, online CPUs), as Docker computes them: the first seven
/// fields of the `cpu` line (user … softirq) in USER_HZ ticks (100 per second), and the `cpuN` lines.
pub fn parse_proc_stat(text: &str) -> (Option<u64>, Option<u32>) {
    let mut system = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let ticks: Option<Vec<u64>> = fields.take(7).map(|f| f.parse().ok()).collect();
                system = ticks.filter(|t| t.len() == 7).map(|t| t.iter().sum::<u64>() * 10_000_000);
            }
            Some(name) if name.strip_prefix("cpu").is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) => cpus += 1,
            _ => {}
        }
    }
    (system, (cpus > 0).then_some(cpus))
}

/// `MemTotal` of `/proc/meminfo`, bytes.
fn parse_mem_total(text: &str) -> Option<u64> {
    let kib: u64 =
        text.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// `/proc/PID/net/dev` → the counters of every interface but `lo`.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetworkStats> {
    text.lines()
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let v: Vec<u64> = counters.split_whitespace().map(|f| f.parse().ok()).collect::<Option<_>>()?;
            if name == "lo" || v.len() < 12 {
                return None;
            }
            Some((
                name.to_string(),
                NetworkStats {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_model::task::{Attachment, NameValue, NetworkInterface, Task};
    use skiff_model::task_definition::{ContainerDefinition, LogConfiguration, LogDriver};

    const TASK_ID: &str = "0123456789abcdef0123456789abcdef";

    fn service(key: u8) -> MetadataService {
        let dir = tempfile::tempdir().expect("tmp");
        let store = skiff_store::SqliteStore::open(&dir.path().join("state.db")).expect("store");
        // The store keeps everything in memory once open; the directory may go.
        MetadataService::with_store(Arc::new(store), [key; 32])
    }

    fn record() -> TaskRecord {
        let arn = |r: &str| format!("arn:aws:ecs:us-east-1:123456789012:{r}");
        let container = |name: &str, runtime_id: Option<&str>, status: &str| Container {
            container_arn: arn(&format!("container/default/{TASK_ID}/{name}")),
            task_arn: arn(&format!("task/default/{TASK_ID}")),
            name: name.into(),
            image: "public.ecr.aws/docker/library/nginx:latest".into(),
            image_digest: Some(format!("sha256:{}", "ab".repeat(32))),
            runtime_id: runtime_id.map(str::to_string),
            last_status: status.into(),
            exit_code: (status == "STOPPED").then_some(0),
            network_interfaces: vec![NetworkInterface {
                attachment_id: Some("eni-attach-1".into()),
                private_ipv4_address: Some("172.31.0.5".into()),
            }],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            ..Default::default()
        };
        TaskRecord {
            task: Task {
                task_arn: arn(&format!("task/default/{TASK_ID}")),
                cluster_arn: arn("cluster/default"),
                task_definition_arn: arn("task-definition/web-app:7"),
                attachments: vec![Attachment {
                    id: "eni-attach-1".into(),
                    r#type: "ElasticNetworkInterface".into(),
                    status: "ATTACHED".into(),
                    details: [
                        ("subnetId", "subnet-0123456789abcdef0"),
                        ("networkInterfaceId", "eni-0123456789abcdef0"),
                        ("macAddress", "0a:58:ac:1f:00:05"),
                        ("privateDnsName", "ip-172-31-0-5.ec2.internal"),
                        ("privateIPv4Address", "172.31.0.5"),
                    ]
                    .iter()
                    .map(|(n, v)| NameValue { name: n.to_string(), value: v.to_string() })
                    .collect(),
                }],
                availability_zone: "us-east-1a".into(),
                containers: vec![
                    container("web", Some(&format!("{TASK_ID}-1")), "RUNNING"),
                    container("log-router_1", Some(&format!("{TASK_ID}-2")), "STOPPED"),
                ],
                cpu: "512".into(),
                memory: "1024".into(),
                created_at: Some(1_700_000_000_000),
                desired_status: "RUNNING".into(),
                last_status: "RUNNING".into(),
                launch_type: Some("FARGATE".into()),
                pull_started_at: Some(1_700_000_001_000),
                pull_stopped_at: Some(1_700_000_002_500),
                started_at: Some(1_700_000_003_123),
                execution_stopped_at: Some(1_700_000_009_000),
                version: 3,
                ..Default::default()
            },
            subnet_id: "subnet-0123456789abcdef0".into(),
            service_name: Some("web-svc".into()),
            ..Default::default()
        }
    }

    fn definition() -> TaskDefinition {
        TaskDefinition {
            family: Some("web-app".into()),
            revision: Some(7),
            container_definitions: Some(vec![ContainerDefinition {
                name: Some("web".into()),
                image: Some("nginx".into()),
                docker_labels: Some([("team".to_string(), "edge".to_string())].into()),
                log_configuration: Some(LogConfiguration {
                    log_driver: LogDriver::Awslogs,
                    options: Some(
                        [
                            ("awslogs-group", "/ecs/web"),
                            ("awslogs-region", "us-east-1"),
                            ("awslogs-stream-prefix", "ecs"),
                        ]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ),
                    secret_options: None,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    fn subnet() -> Subnet {
        Subnet {
            subnet_id: "subnet-0123456789abcdef0".into(),
            cidr_block: "172.31.0.0/20".into(),
            ..Default::default()
        }
    }

    #[test]
    fn tokens_round_trip() {
        let s = service(1);
        for (task, container) in [(TASK_ID, "web"), ("a-b-c", "x-y_z"), ("t", "-"), ("t-", "a-0123")] {
            let token = s.token(task, container);
            assert!(token.starts_with(task) && token.ends_with(container), "{token}");
            assert_eq!(s.verify_token(&token), Some((task.to_string(), container.to_string())), "{token}");
        }
        let uri = s.uri(Ipv4Addr::new(172, 31, 0, 1), TASK_ID, "web");
        assert!(uri.starts_with(&format!("http://172.31.0.1:{DEFAULT_PORT}/v4/{TASK_ID}-")), "{uri}");
        assert!(uri.ends_with("-web"));
        let env = s.environment(Ipv4Addr::new(172, 31, 0, 1), TASK_ID, "web");
        assert_eq!(env[0].0, "ECS_CONTAINER_METADATA_URI_V4");
        assert_eq!(env[1].0, "ECS_CONTAINER_METADATA_URI");
        assert_eq!(env[1].1, uri.replace("/v4/", "/v3/"));
    }

    #[test]
    fn forged_tokens_are_rejected() {
        let s = service(1);
        let token = s.token(TASK_ID, "web");
        let mac = &token[TASK_ID.len() + 1..TASK_ID.len() + 1 + MAC_HEX_LEN];
        // Another container or task under the same MAC.
        assert_eq!(s.verify_token(&format!("{TASK_ID}-{mac}-sidecar")), None);
        assert_eq!(s.verify_token(&format!("{}-{mac}-web", "f".repeat(32))), None);
        // A flipped digit, a shortened MAC, upper case, garbage.
        let mut flipped = token.clone().into_bytes();
        let i = TASK_ID.len() + 5;
        flipped[i] = if flipped[i] == b'0' { b'1' } else { b'0' };
        assert_eq!(s.verify_token(std::str::from_utf8(&flipped).unwrap()), None);
        assert_eq!(s.verify_token(&format!("{TASK_ID}-{}-web", &mac[..30])), None);
        assert_eq!(s.verify_token(&format!("{TASK_ID}-{}-web", mac.to_uppercase())), None);
        for bad in ["", "-", "web", &format!("{TASK_ID}--web"), &"a-".repeat(400)] {
            assert_eq!(s.verify_token(bad), None, "{bad}");
        }
        // A token of another key (another server).
        assert_eq!(service(2).verify_token(&token), None);
        // Path characters never verify.
        assert_eq!(s.verify_token(&format!("{TASK_ID}-{mac}-web/../x")), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route("/v4/tok"), Some((Version::V4, "tok", Resource::Container)));
        assert_eq!(route("/v4/tok/task"), Some((Version::V4, "tok", Resource::Task)));
        assert_eq!(route("/v4/tok/stats"), Some((Version::V4, "tok", Resource::ContainerStats)));
        assert_eq!(route("/v4/tok/task/stats"), Some((Version::V4, "tok", Resource::TaskStats)));
        assert_eq!(route("/v3/tok/task"), Some((Version::V3, "tok", Resource::Task)));
        for bad in ["/", "/v4", "/v4/", "/v2/tok", "/v4/tok/tasks", "/v4/tok/task/", "/v4/tok/taskWithTags"] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }

    #[test]
    fn renders_container_metadata_v4() {
        let (record, definition, subnet) = (record(), definition(), subnet());
        let dns = DnsConfig::parse("nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch ec2.internal\n");
        let view = TaskView { record: &record, definition: Some(&definition), subnet: Some(&subnet), dns: &dns };
        let json = serde_json::to_value(container_metadata(&view, "web", Version::V4).unwrap()).unwrap();
        let expected = serde_json::json!({
            "DockerId": format!("{TASK_ID}-1"),
            "Name": "web",
            "DockerName": "web",
            "Image": "public.ecr.aws/docker/library/nginx:latest",
            "ImageID": format!("sha256:{}", "ab".repeat(32)),
            "Labels": {
                "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/default",
                "com.amazonaws.ecs.container-name": "web",
                "com.amazonaws.ecs.task-arn": format!("arn:aws:ecs:us-east-1:123456789012:task/default/{TASK_ID}"),
                "com.amazonaws.ecs.task-definition-family": "web-app",
                "com.amazonaws.ecs.task-definition-version": "7",
                "team": "edge"
            },
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 256, "Memory": 512},
            "CreatedAt": "2023-11-14T22:13:23.123Z",
            "StartedAt": "2023-11-14T22:13:23.123Z",
            "Type": "NORMAL",
            "LogDriver": "awslogs",
            "LogOptions": {
                "awslogs-group": "/ecs/web",
                "awslogs-region": "us-east-1",
                "awslogs-stream": format!("ecs/web/{TASK_ID}")
            },
            "ContainerARN": format!("arn:aws:ecs:us-east-1:123456789012:container/default/{TASK_ID}/web"),
            "Networks": [{
                "NetworkMode": "awsvpc",
                "IPv4Addresses": ["172.31.0.5"],
                "AttachmentIndex": 0,
                "MACAddress": "0a:58:ac:1f:00:05",
                "IPv4SubnetCIDRBlock": "172.31.0.0/20",
                "DomainNameServers": ["192.0.2.53"],
                "DomainNameSearchList": ["ec2.internal"],
                "PrivateDNSName": "ip-172-31-0-5.ec2.internal",
                "SubnetGatewayIpv4Address": "172.31.0.1/20"
            }]
        });
        assert_eq!(json, expected, "{}", serde_json::to_string_pretty(&json).unwrap());
        assert!(container_metadata(&view, "nope", Version::V4).is_none());
    }

    #[test]
    fn renders_task_metadata_and_v3() {
        let (record, subnet) = (record(), subnet());
        let dns = DnsConfig::default();
        // The definition is gone (deleted): no log configuration, no docker labels; the rest still renders.
        let view = TaskView { record: &record, definition: None, subnet: Some(&subnet), dns: &dns };
        let json = serde_json::to_value(task_metadata(&view, Version::V4)).unwrap();
        assert_eq!(json["Cluster"], "arn:aws:ecs:us-east-1:123456789012:cluster/default");
        assert_eq!(json["ServiceName"], "web-svc");
        assert_eq!(json["TaskARN"], format!("arn:aws:ecs:us-east-1:123456789012:task/default/{TASK_ID}"));
        assert_eq!(json["Family"], "web-app");
        assert_eq!(json["Revision"], "7");
        assert_eq!(json["DesiredStatus"], "RUNNING");
        assert_eq!(json["KnownStatus"], "RUNNING");
        assert_eq!(json["Limits"], serde_json::json!({"CPU": 0.5, "Memory": 1024}));
        assert_eq!(json["PullStartedAt"], "2023-11-14T22:13:21.000Z");
        assert_eq!(json["PullStoppedAt"], "2023-11-14T22:13:22.500Z");
        assert_eq!(json["AvailabilityZone"], "us-east-1a");
        assert_eq!(json["LaunchType"], "FARGATE");
        let containers = json["Containers"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        let stopped = &containers[1];
        assert_eq!(stopped["Name"], "log-router_1");
        assert_eq!(stopped["KnownStatus"], "STOPPED");
        assert_eq!(stopped["ExitCode"], 0);
        assert_eq!(stopped["FinishedAt"], "2023-11-14T22:13:29.000Z");
        assert!(stopped.get("LogDriver").is_none() && stopped.get("LogOptions").is_none());
        assert!(stopped["Networks"][0].get("DomainNameServers").is_none());
        assert!(containers[0].get("FinishedAt").is_none() && containers[0].get("ExitCode").is_none());
        assert!(containers[0]["Labels"].get("team").is_none());

        // Whole vCPUs are integers, as ECS prints them.
        let mut whole = record.clone();
        whole.task.cpu = "2048".into();
        let v = TaskView { record: &whole, ..view };
        assert_eq!(serde_json::to_value(task_metadata(&v, Version::V4)).unwrap()["Limits"]["CPU"], 2);

        // Version 3: the network is mode and addresses only; no LaunchType, ContainerARN, log settings.
        let definition = definition();
        let v3 = TaskView { definition: Some(&definition), ..view };
        let json = serde_json::to_value(task_metadata(&v3, Version::V3)).unwrap();
        assert!(json.get("LaunchType").is_none());
        let web = &json["Containers"][0];
        assert_eq!(web["Networks"], serde_json::json!([{"NetworkMode": "awsvpc", "IPv4Addresses": ["172.31.0.5"]}]));
        assert!(web.get("ContainerARN").is_none() && web.get("LogDriver").is_none());
        assert_eq!(web["Labels"]["team"], "edge");
    }

    #[test]
    fn a_pending_container_has_no_times_or_network_before_the_attachment() {
        let mut record = record();
        record.task.attachments.clear();
        record.task.containers[0].runtime_id = None;
        record.task.containers[0].last_status = "PENDING".into();
        record.task.containers[0].network_interfaces.clear();
        let dns = DnsConfig::default();
        let view = TaskView { record: &record, definition: None, subnet: None, dns: &dns };
        let json = serde_json::to_value(container_metadata(&view, "web", Version::V4).unwrap()).unwrap();
        assert_eq!(json["DockerId"], "");
        for absent in ["CreatedAt", "StartedAt", "FinishedAt", "Networks", "ExitCode"] {
            assert!(json.get(absent).is_none(), "{absent}: {json}");
        }
    }

    #[test]
    fn a_container_that_ended_before_the_task_shows_its_own_times() {
        // A non-essential container that ran and exited while the task goes on.
        let mut record = record();
        record.task.containers[0].last_status = "STOPPED".into();
        record.task.containers[0].exit_code = Some(0);
        record.task.execution_stopped_at = None;
        record.task.stopped_at = None;
        record.container_times.insert(
            "web".into(),
            skiff_model::task::ContainerTimes {
                started_at: Some(1_700_000_010_000),
                finished_at: Some(1_700_000_012_500),
            },
        );
        let dns = DnsConfig::default();
        let view = TaskView { record: &record, definition: None, subnet: None, dns: &dns };
        let json = serde_json::to_value(container_metadata(&view, "web", Version::V4).unwrap()).unwrap();
        assert_eq!(json["StartedAt"], "2023-11-14T22:13:30.000Z");
        assert_eq!(json["FinishedAt"], "2023-11-14T22:13:32.500Z");
    }

    fn sample(at: i128, total: u64) -> StatsSample {
        StatsSample {
            read_unix_nanos: at,
            cpu: CpuSample {
                total_usage: total,
                percpu_usage: None,
                usage_in_kernelmode: 10,
                usage_in_usermode: 20,
                system_cpu_usage: Some(1_000_000),
                online_cpus: Some(4),
                throttling: cgroup::CpuThrottling { periods: 5, throttled_periods: 1, throttled_time_ns: 7 },
            },
            memory: Some(MemorySample {
                usage: 4096,
                max_usage: Some(8192),
                limit: Some(1 << 30),
                stats: [("anon".to_string(), 1024)].into(),
            }),
            pids: Some(3),
            networks: Some(parse_net_dev(
                "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n\
                 lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 84 2 0 1 0 0 0 0 168 3 0 2 0 0 0 0\n",
            )),
        }
    }

    #[test]
    fn renders_docker_stats() {
        let first = sample(1_700_000_000_000_000_000, 100);
        let json = serde_json::to_value(docker_stats("web", "id-1", &first, None)).unwrap();
        assert_eq!(json["read"], "2023-11-14T22:13:20Z");
        assert_eq!(json["preread"], ZERO_TIME);
        assert_eq!(json["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert_eq!(json["name"], "web");
        assert_eq!(json["id"], "id-1");
        assert_eq!(json["num_procs"], 0);
        assert_eq!(json["pids_stats"]["current"], 3);
        assert!(json["blkio_stats"]["io_service_bytes_recursive"].as_array().unwrap().is_empty());
        assert_eq!(
            json["memory_stats"],
            serde_json::json!({"usage": 4096, "max_usage": 8192, "stats": {"anon": 1024}, "limit": 1073741824u64})
        );
        assert_eq!(
            json["networks"],
            serde_json::json!({"eth0": {"rx_bytes": 84, "rx_packets": 2, "rx_errors": 0, "rx_dropped": 1,
                "tx_bytes": 168, "tx_packets": 3, "tx_errors": 0, "tx_dropped": 2}})
        );

        let second = sample(1_700_000_001_250_000_000, 300);
        let json = serde_json::to_value(docker_stats("web", "id-1", &second, Some(&first))).unwrap();
        assert_eq!(json["read"], "2023-11-14T22:13:21.25Z");
        assert_eq!(json["preread"], "2023-11-14T22:13:20Z");
        assert_eq!(
            json["cpu_stats"],
            serde_json::json!({
                "cpu_usage": {"total_usage": 300, "usage_in_kernelmode": 10, "usage_in_usermode": 20},
                "system_cpu_usage": 1_000_000, "online_cpus": 4,
                "throttling_data": {"periods": 5, "throttled_periods": 1, "throttled_time": 7}
            })
        );
        assert_eq!(json["precpu_stats"]["cpu_usage"]["total_usage"], 100);
    }

    #[test]
    fn parses_host_files() {
        let stat =
            "cpu  100 5 50 1000 10 1 2 3 0 0\ncpu0 50 2 25 500 5 0 1 1 0 0\ncpu1 50 3 25 500 5 1 1 2 0 0\nintr 1\n";
        assert_eq!(parse_proc_stat(stat), (Some(1168 * 10_000_000), Some(2)));
        assert_eq!(parse_proc_stat(""), (None, None));
        assert_eq!(parse_mem_total("MemTotal:       16314856 kB\nMemFree: 1 kB\n"), Some(16_314_856 * 1024));
        let dns = DnsConfig::parse("# x\nnameserver ::1\nnameserver 10.0.0.2\nnameserver bogus\nsearch a.b c.d\n");
        assert_eq!(dns, DnsConfig { servers: vec!["10.0.0.2".into()], search: vec!["a.b".into(), "c.d".into()] });
        assert_eq!(gateway_with_prefix("172.31.16.0/20").as_deref(), Some("172.31.16.1/20"));
        assert_eq!(gateway_with_prefix("10.0.0.0/8").as_deref(), Some("10.0.0.1/8"));
        assert_eq!(gateway_with_prefix("10.0.0.0/31"), None);
        assert_eq!(gateway_with_prefix("nonsense"), None);
        assert_eq!(family_revision("arn:aws:ecs:us-east-1:1:task-definition/a-b_c:12"), Some(("a-b_c", "12")));
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn samples_a_v2_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        let task = root.join("skiff").join(TASK_ID);
        let web = task.join("web");
        write(
            &web.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n",
        );
        write(&web.join("memory.current"), "4096\n");
        write(&web.join("memory.peak"), "8192\n");
        write(&web.join("memory.max"), "max\n");
        write(&task.join("memory.max"), "1073741824\n");
        write(&web.join("memory.stat"), "anon 1024\nfile 2048\n");
        write(&web.join("pids.current"), "2\n");
        write(&web.join("cgroup.procs"), "4242\n4243\n");
        let proc_root = dir.path().join("proc");
        write(&proc_root.join("stat"), "cpu  1 1 1 1 1 1 1 0\ncpu0 1 1 1 1 1 1 1 0\n");
        write(&proc_root.join("4242/net/dev"), "h\nh\n  eth0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n");
        let s = service(1).with_cgroup_layout(CgroupLayout::V2 { root: root.clone() }).with_proc_root(&proc_root);
        let got = s.inner.sample(TASK_ID, "web").expect("sample");
        assert_eq!(got.cpu.total_usage, 1_500_000);
        assert_eq!((got.cpu.usage_in_usermode, got.cpu.usage_in_kernelmode), (1_000_000, 500_000));
        assert_eq!(
            got.cpu.throttling,
            cgroup::CpuThrottling { periods: 10, throttled_periods: 2, throttled_time_ns: 30_000 }
        );
        assert_eq!((got.cpu.system_cpu_usage, got.cpu.online_cpus), (Some(70_000_000), Some(1)));
        let memory = got.memory.as_ref().expect("memory");
        assert_eq!((memory.usage, memory.max_usage, memory.limit), (4096, Some(8192), Some(1 << 30)));
        assert_eq!(memory.stats.get("file"), Some(&2048));
        assert_eq!(got.pids, Some(2));
        assert_eq!(got.networks.as_ref().unwrap()["eth0"].tx_bytes, 20);
        assert!(s.inner.sample(TASK_ID, "absent").is_none());
    }

    #[test]
    fn samples_v1_hierarchies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        let c = |controller: &str| root.join(controller).join("skiff").join(TASK_ID).join("web");
        write(&c("cpuacct").join("cpuacct.usage"), "123456\n");
        write(&c("cpuacct").join("cpuacct.usage_percpu"), "100000 23456 \n");
        write(&c("cpuacct").join("cpuacct.stat"), "user 3\nsystem 1\n");
        write(&c("cpu").join("cpu.stat"), "nr_periods 4\nnr_throttled 1\nthrottled_time 999\n");
        write(&c("memory").join("memory.usage_in_bytes"), "5000\n");
        write(&c("memory").join("memory.max_usage_in_bytes"), "6000\n");
        write(&c("memory").join("memory.limit_in_bytes"), "9223372036854771712\n");
        write(&root.join("memory/skiff").join(TASK_ID).join("memory.limit_in_bytes"), "536870912\n");
        write(&c("pids").join("pids.current"), "1\n");
        let proc_root = dir.path().join("proc");
        write(&proc_root.join("meminfo"), "MemTotal: 1000 kB\n");
        let s = service(1).with_cgroup_layout(CgroupLayout::V1 { root }).with_proc_root(&proc_root);
        let got = s.inner.sample(TASK_ID, "web").expect("sample");
        assert_eq!(got.cpu.total_usage, 123_456);
        assert_eq!(got.cpu.percpu_usage, Some(vec![100_000, 23_456]));
        assert_eq!((got.cpu.usage_in_usermode, got.cpu.usage_in_kernelmode), (30_000_000, 10_000_000));
        assert_eq!(got.cpu.throttling.throttled_time_ns, 999);
        let memory = got.memory.unwrap();
        assert_eq!((memory.usage, memory.max_usage, memory.limit), (5000, Some(6000), Some(512 << 20)));
        assert_eq!(got.pids, Some(1));
        assert_eq!(got.networks, None);
    }
}
