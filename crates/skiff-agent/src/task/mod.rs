//! Tasks: what runs a whole ECS task on this node — its network, its images, its cgroup, its containers in
//! `dependsOn` order, their health checks, its end and its cleanup — and reports what it observes.
//!
//! [`Agent::start`] takes a [`TaskSpec`] (everything decided: images, resolved definitions, overrides,
//! limits, subnet) and returns a [`TaskHandle`]: a `watch` of [`TaskReport`]s (lastStatus with the ECS
//! timestamps, per-container status, exit codes and reasons, health) and a way to ask the task to stop. The
//! agent never touches the store: the caller turns reports into task records.
//!
//! Every step is idempotent and keyed by the task id, so a restarted agent given the same spec picks the task
//! up where it is (network adopted, running containers adopted, exited ones' codes collected) and
//! [`Agent::cleanup`] removes whatever exists for a task id — containers, overlay mounts, the cgroup, the
//! network attachment, the task directory — after a crash at any point.

mod run;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::images::{CredentialProvider, ImageStore, ImageStoreConfig, ImageStoreError};
use crate::network::{Network, NetworkConfig, NetworkError, SubnetSpec, TaskNetwork};
use crate::runtime::{
    ContainerDefinitionInput, ContainerOverrideInput, ExitWatcher, HostLimits, Runtime, RuntimeConfig, RuntimeError,
};
use crate::storage::{StorageConfig, StorageError, TaskStorage};

/// `dependsOn` conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl Condition {
    /// From the ECS wire value (`START`, `COMPLETE`, `SUCCESS`, `HEALTHY`).
    pub fn from_wire(s: &str) -> Option<Condition> {
        Some(match s {
            "START" => Condition::Start,
            "COMPLETE" => Condition::Complete,
            "SUCCESS" => Condition::Success,
            "HEALTHY" => Condition::Healthy,
            _ => return None,
        })
    }
}

/// A container's health check, with ECS's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckPlan {
    /// What runs inside the container (`CMD-SHELL x` → `/bin/sh -c x`, `CMD a b` → `a b`).
    pub args: Vec<String>,
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub retries: u32,
    pub start_period: std::time::Duration,
}

impl HealthCheckPlan {
    /// From an ECS `healthCheck` (defaults: interval 30 s, timeout 5 s, retries 3, no start period).
    pub fn from_model(h: &skiff_model::task_definition::HealthCheck) -> Option<HealthCheckPlan> {
        use skiff_model::task_definition::{
            DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_RETRIES, DEFAULT_HEALTH_CHECK_TIMEOUT,
        };
        let secs =
            |v: Option<i32>, default: u64| std::time::Duration::from_secs(v.map_or(default, |n| n.max(0) as u64));
        let args = match h.command.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => vec!["/bin/sh".into(), "-c".into(), rest.join(" ")],
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            Some((kind, _)) if kind == "NONE" => return None,
            _ => h.command.clone(),
        };
        if args.is_empty() {
            return None;
        }
        Some(HealthCheckPlan {
            args,
            interval: secs(h.interval, DEFAULT_HEALTH_CHECK_INTERVAL as u64),
            timeout: secs(h.timeout, DEFAULT_HEALTH_CHECK_TIMEOUT as u64),
            retries: h.retries.unwrap_or(DEFAULT_HEALTH_CHECK_RETRIES).max(1) as u32,
            start_period: secs(h.start_period, 0),
        })
    }
}

/// A mount of a task volume into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    pub volume: String,
    pub container_path: String,
    pub read_only: bool,
}

/// One container of a task, decided.
#[derive(Debug, Clone)]
pub struct ContainerPlan {
    /// The image reference to pull (registry host already mapped).
    pub image: String,
    /// The image as the task definition names it (what error messages show).
    pub image_as_given: String,
    pub definition: ContainerDefinitionInput,
    pub overrides: ContainerOverrideInput,
    pub essential: bool,
    pub depends_on: Vec<(String, Condition)>,
    pub health_check: Option<HealthCheckPlan>,
    pub mount_points: Vec<MountPlan>,
    /// (source container, read only).
    pub volumes_from: Vec<(String, bool)>,
}

impl ContainerPlan {
    pub fn name(&self) -> &str {
        &self.definition.name
    }
}

/// Builds a container's `ECS_CONTAINER_METADATA_URI_V4` once the task's gateway is known.
pub type MetadataUri = Arc<dyn Fn(Ipv4Addr, &str) -> String + Send + Sync>;

/// A whole task, decided: the agent only carries it out.
#[derive(Clone)]
pub struct TaskSpec {
    /// 32 lowercase hex digits (the last part of the task ARN).
    pub task_id: String,
    pub subnet: SubnetSpec,
    pub region: String,
    /// Task CPU units (1024 = one core) and memory MiB: the task cgroup's limits.
    pub cpu_units: u64,
    pub memory_mib: u64,
    pub pids_max: Option<u64>,
    /// The task's ephemeral storage (writable layers and scratch volumes together), bytes.
    pub ephemeral_storage_bytes: u64,
    /// Task volumes without a host path (per-task scratch directories).
    pub volumes: Vec<String>,
    pub containers: Vec<ContainerPlan>,
    pub metadata_uri: Option<MetadataUri>,
    pub credentials: Arc<dyn CredentialProvider>,
}

/// What the agent observed of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerReport {
    pub name: String,
    /// PENDING, RUNNING, STOPPED.
    pub last_status: &'static str,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// HEALTHY, UNHEALTHY, UNKNOWN (only for containers with a health check).
    pub health_status: Option<&'static str>,
    pub runtime_id: Option<String>,
    pub image_digest: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// What the agent observed of a task. Timestamps are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskReport {
    /// PROVISIONING … STOPPED (DESIGN.md §4).
    pub last_status: &'static str,
    pub network: Option<TaskNetwork>,
    /// The task's hostname (`ip-a-b-c-d.…`), also its private DNS name.
    pub hostname: Option<String>,
    pub connectivity_at: Option<i64>,
    pub pull_started_at: Option<i64>,
    pub pull_stopped_at: Option<i64>,
    pub started_at: Option<i64>,
    pub stopping_at: Option<i64>,
    pub execution_stopped_at: Option<i64>,
    pub stopped_at: Option<i64>,
    pub containers: Vec<ContainerReport>,
    pub health_status: Option<&'static str>,
    /// Set when the task ended by itself (failure to start, essential container exited).
    pub stop_code: Option<&'static str>,
    pub stopped_reason: Option<String>,
}

/// A started task: its reports, and the way to stop it.
pub struct TaskHandle {
    pub reports: watch::Receiver<TaskReport>,
    stop: watch::Sender<bool>,
}

impl TaskHandle {
    /// Asks the task to stop (SIGTERM or the image's STOPSIGNAL, SIGKILL after stopTimeout). Idempotent; why
    /// it stops is the caller's to record.
    pub fn stop(&self) {
        self.stop.send_if_modified(|stopping| !std::mem::replace(stopping, true));
    }
}

/// Errors opening the agent or cleaning a task up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Images(#[from] ImageStoreError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
}

/// How often a running task looks at its containers. Exits are signalled at once (inotify, see
/// [`crate::runtime::exits`]); the poll is the safety net that also collects health-check results, and the
/// only way exits are found where inotify is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPolling {
    /// While the task is young (short tasks end fast): 100 ms.
    pub interval: std::time::Duration,
    /// Once it has run for `settled_after`: 500 ms (long-running tasks cost little to watch).
    pub settled_interval: std::time::Duration,
    /// 10 s.
    pub settled_after: std::time::Duration,
}

impl Default for TaskPolling {
    fn default() -> TaskPolling {
        TaskPolling {
            interval: std::time::Duration::from_millis(100),
            settled_interval: std::time::Duration::from_millis(500),
            settled_after: std::time::Duration::from_secs(10),
        }
    }
}

/// Where the agent keeps everything, and how it runs containers.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `DATA_DIR/agent`: `images/`, `network/`, `runtime/`, `storage/` (the tasks' directories).
    pub root: PathBuf,
    pub images: ImageStoreConfig,
    pub network: NetworkConfig,
    pub runtime: RuntimeConfig,
    pub storage: StorageConfig,
    /// Network namespaces kept ready so a task's attach only creates its veth and address.
    pub warm_namespaces: usize,
    pub polling: TaskPolling,
    /// Whether container exits are watched with inotify (true by default; false: polling alone).
    pub watch_exits: bool,
}

impl AgentConfig {
    pub fn new(root: impl Into<PathBuf>) -> AgentConfig {
        let root = root.into();
        AgentConfig {
            images: ImageStoreConfig::new(root.join("images")),
            network: NetworkConfig::new(root.join("network")),
            runtime: RuntimeConfig::new(root.join("runtime")),
            storage: StorageConfig::new(root.join("storage")),
            warm_namespaces: 8,
            polling: TaskPolling::default(),
            watch_exits: true,
            root,
        }
    }
}

/// The node agent: image store, task networking, the container runtime and the tasks' size-limited
/// directories, and the tasks it runs.
pub struct Agent {
    pub images: ImageStore,
    pub network: Network,
    pub runtime: Runtime,
    /// Each task's directory (container bundles with their overlay upper layers, scratch volumes) is a
    /// subvolume limited to the task's ephemeral storage.
    pub storage: TaskStorage,
    /// The agent's one inotify instance: wakes a task when one of its containers exits.
    exits: ExitWatcher,
    polling: TaskPolling,
    host: HostLimits,
    /// `agent.lock`, flocked for the agent's lifetime: one agent per data directory (a second server, or
    /// `skiff node reset` while the server runs, is refused).
    _lock: std::fs::File,
}

impl Agent {
    /// Prepares the host (cgroups, binaries), opens the three stores and adopts the network state of an
    /// earlier run (bridges and NAT re-created; interrupted attaches finished).
    pub async fn open(config: AgentConfig) -> Result<Arc<Agent>, AgentError> {
        let lock = lock_root(&config.root)?;
        crate::runtime::prepare_host(&config.runtime)?;
        let runtime = Runtime::open(config.runtime)?;
        let images = ImageStore::open(config.images)?;
        let network = Network::open(config.network).await?;
        network.adopt().await?;
        let storage_dir = config.storage.state_dir.clone();
        std::fs::create_dir_all(&storage_dir).map_err(|e| AgentError::Io {
            op: "create",
            path: storage_dir.clone(),
            source: e,
        })?;
        // Bundles need absolute root paths (DESIGN.md §5), whatever the data directory was given as.
        let mut storage_config = config.storage;
        storage_config.state_dir = std::fs::canonicalize(&storage_dir).map_err(|e| AgentError::Io {
            op: "resolve",
            path: storage_dir,
            source: e,
        })?;
        let storage = tokio::task::spawn_blocking(move || TaskStorage::open(storage_config)).await.map_err(|e| {
            AgentError::Io { op: "open", path: PathBuf::from("storage"), source: std::io::Error::other(e) }
        })??;
        let exits = if config.watch_exits { ExitWatcher::open() } else { ExitWatcher::disabled() };
        let agent = Arc::new(Agent {
            images,
            network,
            runtime,
            storage,
            exits,
            polling: config.polling,
            host: HostLimits::detect(),
            _lock: lock,
        });
        if config.warm_namespaces > 0 {
            let warm = agent.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.network.warm(config.warm_namespaces).await {
                    tracing::warn!(error = %e, "warming the network namespace pool failed");
                }
            });
        }
        Ok(agent)
    }

    fn task_dir(&self, task_id: &str) -> PathBuf {
        self.storage.path(task_id).unwrap_or_else(|_| self.storage.mount_point().join("invalid-task-id"))
    }

    /// Starts (or, after a restart, resumes) a task in the background.
    pub fn start(self: &Arc<Self>, spec: TaskSpec) -> TaskHandle {
        let (report_tx, reports) = watch::channel(run::initial_report(&spec));
        let (stop, stop_rx) = watch::channel(false);
        let agent = self.clone();
        tokio::spawn(async move { run::run(agent, spec, report_tx, stop_rx).await });
        TaskHandle { reports, stop }
    }

    /// How many container exit directories are watched now (one per running container of a running task;
    /// 0 when exits are found by polling alone).
    pub fn exit_watches(&self) -> usize {
        self.exits.watches()
    }

    /// Whether container exits are signalled by inotify (false: polling alone).
    pub fn watches_exits(&self) -> bool {
        self.exits.is_active()
    }

    /// Task ids that have something on this node (a task directory, a container, a network attachment).
    pub async fn known_tasks(&self) -> Result<Vec<String>, AgentError> {
        let mut ids: std::collections::BTreeSet<String> = self.storage.list()?.into_iter().collect();
        for id in self.runtime.ids()? {
            if let Some(task) = task_of_container(&id) {
                ids.insert(task.to_string());
            }
        }
        for n in self.network.list_attached().await? {
            ids.insert(n.task_id);
        }
        Ok(ids.into_iter().filter(|id| crate::runtime::cgroup::valid_name(id)).collect())
    }

    /// Removes everything of a task on this node (idempotent; safe after a crash at any point): its
    /// containers (killed if still running), overlay mounts, cgroup, network attachment and directory.
    /// Container logs stay until [`Agent::remove_logs`].
    pub async fn cleanup(&self, task_id: &str) -> Result<(), AgentError> {
        run::cleanup(self, task_id).await
    }

    /// Removes everything the agent holds on the host for this data directory: every task's containers,
    /// mounts, cgroup, network attachment and directory, then the subnets' bridges, the nft table and the
    /// storage filesystem's mount (detached lazily: freed when this process exits). Images and logs stay.
    /// Returns how many tasks were removed. The agent is unusable afterwards.
    pub async fn reset(&self) -> Result<usize, AgentError> {
        let tasks = self.known_tasks().await?;
        // Everything is tried; the first failure is reported.
        let mut first = None;
        for id in &tasks {
            if let Err(e) = self.cleanup(id).await {
                first.get_or_insert(e);
            }
        }
        if let Err(e) = self.network.teardown_all().await {
            first.get_or_insert(e.into());
        }
        if let Err(e) = self.storage.detach_node() {
            first.get_or_insert(e.into());
        }
        first.map_or(Ok(tasks.len()), Err)
    }

    /// The container ids of a task (`<task-id>-<index>`), from the runtime's state.
    pub fn containers_of(&self, task_id: &str) -> Result<Vec<String>, AgentError> {
        let prefix = format!("{task_id}-");
        Ok(self.runtime.ids()?.into_iter().filter(|id| id.starts_with(&prefix)).collect())
    }

    /// The task ids that have container logs.
    pub fn logged_tasks(&self) -> Result<Vec<String>, AgentError> {
        let dir = &self.runtime.config().log_dir;
        let entries =
            std::fs::read_dir(dir).map_err(|e| AgentError::Io { op: "read", path: dir.clone(), source: e })?;
        let mut ids = std::collections::BTreeSet::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(task) = name.strip_suffix(".log").and_then(task_of_container) {
                ids.insert(task.to_string());
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// Removes the logs of a task's containers (when its record is gone).
    pub fn remove_logs(&self, task_id: &str) -> Result<(), AgentError> {
        let dir = &self.runtime.config().log_dir;
        let prefix = format!("{task_id}-");
        for e in
            std::fs::read_dir(dir).map_err(|e| AgentError::Io { op: "read", path: dir.clone(), source: e })?.flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && name.ends_with(".log") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }
}

/// Takes the agent's lock in `root` (created if needed), or fails naming what holds it.
fn lock_root(root: &std::path::Path) -> Result<std::fs::File, AgentError> {
    let io = |op, source| AgentError::Io { op, path: root.join("agent.lock"), source };
    std::fs::create_dir_all(root).map_err(|e| io("create", e))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("agent.lock"))
        .map_err(|e| io("open", e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io(
            "lock",
            std::io::Error::other(
                "another skiff process uses this data directory's agent (is `skiff server` running on it? stop it first)",
            ),
        )),
        Err(e) => Err(io("lock", e.into())),
    }
}

/// The runtime id of container `index` of a task.
pub fn container_id(task_id: &str, index: usize) -> String {
    format!("{task_id}-{index}")
}

/// The task id of a container id made by [`container_id`].
fn task_of_container(id: &str) -> Option<&str> {
    id.rsplit_once('-').map(|(task, _)| task)
}

/// The Fargate-style hostname of a task address: `ip-10-0-1-23.ec2.internal` in us-east-1,
/// `ip-10-0-1-23.REGION.compute.internal` elsewhere.
pub fn private_dns_name(ip: Ipv4Addr, region: &str) -> String {
    let dashed = ip.to_string().replace('.', "-");
    if region == "us-east-1" {
        format!("ip-{dashed}.ec2.internal")
    } else {
        format!("ip-{dashed}.{region}.compute.internal")
    }
}
