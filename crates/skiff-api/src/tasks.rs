//! The task controller: the bridge between task records in the store and the node agent.
//!
//! It watches `ecs/tasks/…` (woken by RunTask and StopTask, and every second): a task that is not STOPPED
//! and not yet carried out is turned into a [`TaskSpec`] (its task definition, overrides, subnet, images
//! mapped to this server's registry) and started on the agent; a task whose desiredStatus became STOPPED
//! is asked to stop. Each started task has a supervisor that writes what the agent reports (lastStatus,
//! timestamps, the ENI attachment, containers, health, the end) into the task's record with compare-and-swap,
//! never overwriting what the API decided (desiredStatus, StopTask's stopCode and reason).
//!
//! At start it resumes every task whose record is not STOPPED (the agent adopts its network and
//! containers: tasks outlive the server) and removes whatever the node still holds for tasks that have no
//! such record (nothing orphaned).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use skiff_agent::images::{CredentialProvider, RegistryCredentials};
use skiff_agent::network::SubnetSpec;
use skiff_agent::runtime::ContainerOverrideInput;
use skiff_agent::task::{
    Agent, Condition, ContainerPlan, HealthCheckPlan, MountPlan, TaskHandle, TaskReport, TaskSpec,
};
use skiff_model::task::{keys, stop_code, Container, NetworkInterface, TaskRecord};
use skiff_model::task_definition::TaskDefinition;
use skiff_proto::ApiError;

use crate::context::{AppState, Caller};
use crate::ecs::task_definitions::TaskDefinitionRecord;
use crate::metadata::MetadataService;
use crate::records;

/// How often the controller looks at every task record even when nobody woke it.
const RESYNC: Duration = Duration::from_secs(1);
/// How often what the node still holds for finished or purged tasks is removed (cleanups that failed,
/// logs of purged tasks).
const SWEEP: Duration = Duration::from_secs(60);
/// The pids limit of a task's cgroup (Fargate does not document one; this keeps a fork bomb contained).
const TASK_PIDS_MAX: u64 = 4096;

/// Signs pulls from this server's own registry with a fresh registry token of the root principal.
struct OwnRegistry {
    state: Arc<AppState>,
    host: String,
    caller: Caller,
}

impl CredentialProvider for OwnRegistry {
    fn credentials(&self, registry_host: &str) -> Option<RegistryCredentials> {
        (registry_host == self.host).then(|| {
            let (token, _) = self.state.registry_tokens.mint(&self.caller, crate::context::now_secs());
            RegistryCredentials::Basic { username: "AWS".into(), password: token }
        })
    }
}

pub struct TaskController {
    state: Arc<AppState>,
    agent: Arc<Agent>,
    /// `127.0.0.1:PORT` of this server: where the agent pulls images of its own registry from.
    pull_host: String,
    credentials: Arc<OwnRegistry>,
    /// Tasks being carried out, by task id (`None` while their spec is being built).
    running: Mutex<HashMap<String, Option<TaskHandle>>>,
    metadata: Arc<MetadataService>,
}

impl TaskController {
    pub fn new(
        state: Arc<AppState>,
        agent: Arc<Agent>,
        metadata: MetadataService,
        api_addr: std::net::SocketAddr,
        caller: Caller,
    ) -> Arc<Self> {
        let ip = if api_addr.ip().is_unspecified() { Ipv4Addr::LOCALHOST.into() } else { api_addr.ip() };
        let pull_host = std::net::SocketAddr::new(ip, api_addr.port()).to_string();
        let credentials = Arc::new(OwnRegistry { state: state.clone(), host: pull_host.clone(), caller });
        Arc::new(TaskController {
            state,
            agent,
            pull_host,
            credentials,
            running: Mutex::new(HashMap::new()),
            metadata: Arc::new(metadata),
        })
    }

    /// Resumes and cleans up after an earlier run, then reconciles for ever.
    pub async fn run(self: Arc<Self>) {
        if let Err(e) = self.remove_orphans().await {
            tracing::error!(error = %e, "cleaning up tasks of an earlier run failed");
        }
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "task reconciliation failed");
            }
            if last_sweep.elapsed() >= SWEEP {
                last_sweep = tokio::time::Instant::now();
                if let Err(e) = self.remove_orphans().await {
                    tracing::warn!(error = %e, "sweeping finished tasks' leftovers failed");
                }
            }
            tokio::select! {
                () = self.state.task_wake.notified() => {}
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    /// Removes what the node holds for tasks whose record is STOPPED or gone and that no supervisor is
    /// carrying out, and the logs of tasks whose record is gone (purged).
    async fn remove_orphans(&self) -> Result<(), ApiError> {
        let live: HashMap<String, TaskRecord> = records::load_all::<TaskRecord>(self.state.store.as_ref(), keys::TASKS)
            .await?
            .into_iter()
            .map(|(_, r)| (r.task.id().to_string(), r))
            .collect();
        let known = self.agent.known_tasks().await.map_err(|e| ApiError::server(e.to_string()))?;
        for id in known {
            let busy = self.running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&id);
            match live.get(&id) {
                Some(r) if r.task.last_status != "STOPPED" => continue,
                _ if busy => continue,
                _ => {}
            }
            tracing::info!(task = %id, "removing what is left of a finished task");
            if let Err(e) = self.agent.cleanup(&id).await {
                tracing::warn!(task = %id, error = %e, "cleanup failed");
            }
        }
        for id in self.agent.logged_tasks().map_err(|e| ApiError::server(e.to_string()))? {
            if !live.contains_key(&id) {
                if let Err(e) = self.agent.remove_logs(&id) {
                    tracing::warn!(task = %id, error = %e, "removing the logs of a purged task failed");
                }
            }
        }
        Ok(())
    }

    async fn reconcile(self: &Arc<Self>) -> Result<(), ApiError> {
        let tasks = records::load_all::<TaskRecord>(self.state.store.as_ref(), keys::TASKS).await?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        for (key, record) in tasks {
            if record.task.last_status == "STOPPED" {
                continue;
            }
            let id = record.task.id().to_string();
            let stopping = record.task.desired_status == "STOPPED";
            match running.get(&id) {
                Some(Some(handle)) if stopping => handle.stop(),
                Some(_) => {}
                None => {
                    running.insert(id.clone(), None);
                    let this = self.clone();
                    if stopping {
                        // Asked to stop and carried out by nobody (stopped before it started, or the server
                        // restarted while it stopped): never (re)start it, remove whatever exists of it.
                        tokio::spawn(async move { this.finish_unsupervised(key, id).await });
                    } else {
                        tokio::spawn(async move { this.supervise(key, id, record).await });
                    }
                }
            }
        }
        Ok(())
    }

    async fn supervise(self: Arc<Self>, key: String, id: String, record: TaskRecord) {
        let spec = match self.plan(&record).await {
            Ok(spec) => spec,
            Err(reason) => {
                self.fail_unstarted(&key, &id, reason).await;
                self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                return;
            }
        };
        // The metadata endpoint listens on the subnet's gateway, which exists once the subnet is prepared.
        let gateway = spec.subnet.gateway();
        let ready = match self.agent.network.ensure_subnet(&spec.subnet).await {
            Ok(()) => self.metadata.ensure_listener(gateway).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = ready {
            tracing::warn!(task = %id, %gateway, error = %e, "the task metadata endpoint is not reachable");
        }
        let handle = self.agent.start(spec);
        let mut reports = handle.reports.clone();
        self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone(), Some(handle));
        // StopTask may have come while the spec was built.
        self.state.task_wake.notify_one();
        loop {
            let report = reports.borrow_and_update().clone();
            let stopped = report.last_status == "STOPPED";
            if stopped {
                self.update_until_recorded(&key, &id, |r| merge(r, &report)).await;
                break;
            }
            if let Err(e) = self.apply(&key, &report).await {
                tracing::warn!(task = %id, error = %e, "recording the task's state failed");
            }
            if reports.changed().await.is_err() {
                break;
            }
        }
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Applies `change` to the task's record until the store takes it (with back-off), or the record is
    /// gone: the end of a task must be recorded, or it would look unfinished (and be resumed) later.
    async fn update_until_recorded(&self, key: &str, id: &str, mut change: impl FnMut(&mut TaskRecord)) {
        let mut delay = Duration::from_millis(50);
        loop {
            let missing = || ApiError::server("the task record is gone");
            let result = records::update::<TaskRecord, _>(self.state.store.as_ref(), key, missing, |r| {
                change(r);
                Ok(())
            })
            .await;
            let Err(e) = result else {
                self.state.service_wake.notify_one();
                return;
            };
            if matches!(self.state.store.get(key).await, Ok(None)) {
                return;
            }
            tracing::warn!(task = %id, error = %e, "recording the task's end failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Ends a task no supervisor carries out although its desiredStatus is STOPPED: removes what the node
    /// holds of it (containers are killed) and records it STOPPED.
    async fn finish_unsupervised(self: Arc<Self>, key: String, id: String) {
        if let Err(e) = self.agent.cleanup(&id).await {
            tracing::warn!(task = %id, error = %e, "cleanup of a stopped task failed; the sweep will retry");
        }
        let now = crate::context::now_millis();
        self.update_until_recorded(&key, &id, |r| stop_now(r, now, None)).await;
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// A task that cannot even be described to the agent (its definition or subnet vanished) ends at once.
    async fn fail_unstarted(&self, key: &str, id: &str, reason: String) {
        let now = crate::context::now_millis();
        self.update_until_recorded(key, id, |r| stop_now(r, now, Some(&reason))).await;
    }

    /// Writes the agent's report into the record (CAS), keeping what the API decided.
    async fn apply(&self, key: &str, report: &TaskReport) -> Result<(), ApiError> {
        let missing = || ApiError::server("the task record is gone");
        let r = records::update::<TaskRecord, _>(self.state.store.as_ref(), key, missing, |r| {
            merge(r, report);
            Ok(())
        })
        .await?;
        if r.service_name.is_some() {
            self.state.service_wake.notify_one();
        }
        Ok(())
    }

    /// Everything the agent needs to run the task, from its record, its task definition and its subnet.
    async fn plan(&self, record: &TaskRecord) -> Result<TaskSpec, String> {
        let store = self.state.store.as_ref();
        let arn = &record.task.task_definition_arn;
        let (family, revision) = arn
            .rsplit_once('/')
            .and_then(|(_, fr)| fr.rsplit_once(':'))
            .and_then(|(f, r)| Some((f.to_string(), r.parse::<i32>().ok()?)))
            .ok_or_else(|| format!("ResourceInitializationError: bad task definition ARN {arn}"))?;
        let td = records::load::<TaskDefinitionRecord>(store, &crate::ecs::keys::task_definition(&family, revision))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("ResourceInitializationError: task definition {arn} no longer exists"))?
            .0
            .task_definition;
        let subnet =
            records::load::<skiff_model::vpc::Subnet>(store, &skiff_model::vpc::keys::subnet(&record.subnet_id))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("ResourceInitializationError: subnet {} no longer exists", record.subnet_id))?
                .0;
        let cidr = subnet.cidr_block.parse().map_err(|e| {
            format!("ResourceInitializationError: subnet {} block {}: {e}", subnet.subnet_id, subnet.cidr_block)
        })?;
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("ResourceInitializationError: task {what} {s:?} is not a number"))
        };
        Ok(TaskSpec {
            task_id: record.task.id().to_string(),
            subnet: SubnetSpec { id: subnet.subnet_id.clone(), cidr },
            region: self.state.scope.region.clone(),
            cpu_units: number(&record.task.cpu, "cpu")?,
            memory_mib: number(&record.task.memory, "memory")?,
            pids_max: Some(TASK_PIDS_MAX),
            ephemeral_storage_bytes: ephemeral_gib(record) << 30,
            volumes: td.volumes.iter().flatten().filter_map(|v| v.name.clone()).collect(),
            containers: self.container_plans(&td, record).await,
            metadata_uri: Some({
                let metadata = self.metadata.clone();
                let task_id = record.task.id().to_string();
                Arc::new(move |gateway, container| metadata.uri(gateway, &task_id, container))
            }),
            credentials: self.credentials.clone(),
        })
    }

    async fn container_plans(&self, td: &TaskDefinition, record: &TaskRecord) -> Vec<ContainerPlan> {
        let mut pulls = Vec::new();
        for def in td.container_definitions.iter().flatten() {
            let name = def.name.as_deref().unwrap_or_default();
            let pinned = record.task.containers.iter().find(|c| c.name == name).and_then(|c| c.image_digest.as_deref());
            pulls.push(self.pull_reference(def.image.as_deref().unwrap_or_default(), pinned).await);
        }
        td.container_definitions
            .iter()
            .flatten()
            .zip(pulls)
            .map(|(def, image)| {
                let name = def.name.clone().unwrap_or_default();
                let overrides = record.task.overrides.container(&name).map(|o| ContainerOverrideInput {
                    command: o.command.clone(),
                    environment: o
                        .environment
                        .iter()
                        .flatten()
                        .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
                        .collect(),
                    cpu: o.cpu.and_then(|n| u64::try_from(n).ok()),
                    memory: o.memory.and_then(|n| u64::try_from(n).ok()),
                    memory_reservation: o.memory_reservation.and_then(|n| u64::try_from(n).ok()),
                });
                ContainerPlan {
                    image,
                    image_as_given: def.image.clone().unwrap_or_default(),
                    definition: def.into(),
                    overrides: overrides.unwrap_or_default(),
                    essential: def.essential.unwrap_or(true),
                    depends_on: def
                        .depends_on
                        .iter()
                        .flatten()
                        .filter_map(|d| Some((d.container_name.clone(), Condition::from_wire(d.condition.as_str())?)))
                        .collect(),
                    health_check: def.health_check.as_ref().and_then(HealthCheckPlan::from_model),
                    mount_points: def
                        .mount_points
                        .iter()
                        .flatten()
                        .filter_map(|m| {
                            Some(MountPlan {
                                volume: m.source_volume.clone()?,
                                container_path: m.container_path.clone()?,
                                read_only: m.read_only.unwrap_or(false),
                            })
                        })
                        .collect(),
                    volumes_from: def
                        .volumes_from
                        .iter()
                        .flatten()
                        .filter_map(|v| Some((v.source_container.clone()?, v.read_only.unwrap_or(false))))
                        .collect(),
                }
            })
            .collect()
    }

    /// Images of this server's registry (by its public name or the ECR form) are pulled over loopback, by
    /// digest: a tag is resolved from the registry's records now (as ECS pins `imageDigest` at launch), so
    /// an image already in the node's cache starts without a registry round trip.
    /// A task that already has a digest (resumed after a restart) keeps it, even if the tag moved since.
    async fn pull_reference(&self, image: &str, pinned: Option<&str>) -> String {
        let Some((name, reference)) = self.state.registry_hosts.resolve(image) else { return image.to_string() };
        if let Some(digest) = pinned.or(reference.starts_with("sha256:").then_some(reference.as_str())) {
            return format!("{}/{name}@{digest}", self.pull_host);
        }
        let key = skiff_model::ecr::keys::tag(&name, &reference);
        match records::load::<skiff_model::ecr::TagRecord>(self.state.store.as_ref(), &key).await {
            Ok(Some((t, _))) => format!("{}/{name}@{}", self.pull_host, t.digest),
            // Unknown tag: the pull reports it as ECS does (CannotPullContainerError … not found).
            _ => format!("{}/{name}:{reference}", self.pull_host),
        }
    }
}

/// The task's ephemeral storage in GiB: what RunTask recorded (overrides, the definition), else Fargate's 20.
fn ephemeral_gib(record: &TaskRecord) -> u64 {
    let t = &record.task;
    let size = t.ephemeral_storage.as_ref().map(|e| e.size_in_gib);
    let size = size.or(t.fargate_ephemeral_storage.as_ref().map(|e| e.size_in_gib));
    size.and_then(|g| u64::try_from(g).ok()).filter(|g| *g > 0).unwrap_or(DEFAULT_EPHEMERAL_GIB)
}

/// Fargate's ephemeral storage when nothing asks for more.
const DEFAULT_EPHEMERAL_GIB: u64 = 20;

/// The id of a task's (simulated) elastic network interface: stable, derived from the task id.
fn eni_id(task_id: &str) -> String {
    let digest = Sha256::digest(task_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("eni-{}", &hex[..17])
}

/// Records a task STOPPED now without the agent (it never ran, or nothing of it runs any more); `failure`
/// is the stoppedReason of a task that could not start.
fn stop_now(r: &mut TaskRecord, now: i64, failure: Option<&str>) {
    let t = &mut r.task;
    t.last_status = "STOPPED".into();
    t.desired_status = "STOPPED".into();
    if let Some(reason) = failure {
        t.stop_code.get_or_insert_with(|| stop_code::TASK_FAILED_TO_START.into());
        t.stopped_reason.get_or_insert_with(|| reason.to_string());
    }
    for at in [&mut t.stopping_at, &mut t.execution_stopped_at, &mut t.stopped_at] {
        at.get_or_insert(now);
    }
    for c in &mut t.containers {
        c.last_status = "STOPPED".into();
    }
    if let Some(eni) = t.eni_mut() {
        eni.status = "DELETED".into();
    }
    t.version += 1;
}

/// Folds an agent report into a task record: status only moves forward; what the API set (desiredStatus,
/// StopTask's stopCode and reason) is kept; a task that ended by itself gets desiredStatus STOPPED.
pub(crate) fn merge(r: &mut TaskRecord, report: &TaskReport) {
    use skiff_model::task::status_rank;
    for cr in &report.containers {
        if cr.started_at.is_some() || cr.finished_at.is_some() {
            let times = r.container_times.entry(cr.name.clone()).or_default();
            times.started_at = times.started_at.or(cr.started_at);
            times.finished_at = times.finished_at.or(cr.finished_at);
        }
    }
    let t = &mut r.task;
    let before = t.clone();
    if status_rank(report.last_status) > status_rank(&t.last_status) {
        t.last_status = report.last_status.to_string();
    }
    for (field, value) in [
        (&mut t.connectivity_at, report.connectivity_at),
        (&mut t.pull_started_at, report.pull_started_at),
        (&mut t.pull_stopped_at, report.pull_stopped_at),
        (&mut t.started_at, report.started_at),
        (&mut t.stopping_at, report.stopping_at),
        (&mut t.execution_stopped_at, report.execution_stopped_at),
        (&mut t.stopped_at, report.stopped_at),
    ] {
        if field.is_none() {
            *field = value;
        }
    }
    if t.connectivity_at.is_some() {
        t.connectivity = Some("CONNECTED".into());
    }
    merge_health(&mut t.health_status, report.health_status);
    if t.stop_code.is_none() {
        t.stop_code = report.stop_code.map(String::from);
    }
    if t.stopped_reason.is_none() {
        t.stopped_reason = report.stopped_reason.clone();
    }
    if report.stop_code.is_some() || report.last_status == "STOPPED" {
        t.desired_status = "STOPPED".into();
    }
    let task_id = t.id().to_string();
    let attachment_status = match report.last_status {
        "STOPPED" => "DELETED",
        "DEPROVISIONING" => "DETACHED",
        _ if report.network.is_some() => "ATTACHED",
        _ => "PRECREATED",
    };
    let mut attachment_id = None;
    if let Some(eni) = t.eni_mut() {
        eni.status = attachment_status.into();
        attachment_id = Some(eni.id.clone());
        if let Some(n) = &report.network {
            eni.set_detail("networkInterfaceId", eni_id(&task_id));
            eni.set_detail("macAddress", n.mac.clone());
            eni.set_detail("privateDnsName", report.hostname.clone().unwrap_or_default());
            eni.set_detail("privateIPv4Address", n.ipv4.to_string());
        }
    }
    for c in &mut t.containers {
        let Some(cr) = report.containers.iter().find(|cr| cr.name == c.name) else { continue };
        merge_container(c, cr);
        if let (Some(n), true) = (&report.network, c.network_interfaces.is_empty()) {
            c.network_interfaces.push(NetworkInterface {
                attachment_id: attachment_id.clone(),
                private_ipv4_address: Some(n.ipv4.to_string()),
            });
        }
    }
    if *t != before {
        t.version += 1;
    }
}

/// A health status only leaves UNKNOWN, never returns to it: after a restart the agent reports UNKNOWN
/// until its first check of an adopted container, and the status recorded before stays the truth until then
/// (a service would otherwise count its healthy tasks as unhealthy and stop them).
fn merge_health(recorded: &mut Option<String>, reported: Option<&str>) {
    let known = matches!(recorded.as_deref(), Some("HEALTHY") | Some("UNHEALTHY"));
    if !(known && reported == Some("UNKNOWN")) {
        *recorded = reported.map(String::from);
    }
}

fn merge_container(c: &mut Container, cr: &skiff_agent::task::ContainerReport) {
    let rank = |s: &str| ["PENDING", "RUNNING", "STOPPED"].iter().position(|x| *x == s).unwrap_or(0);
    if rank(cr.last_status) > rank(&c.last_status) {
        c.last_status = cr.last_status.to_string();
    }
    c.exit_code = cr.exit_code.or(c.exit_code);
    if cr.reason.is_some() {
        c.reason = cr.reason.clone();
    }
    merge_health(&mut c.health_status, cr.health_status);
    c.runtime_id = cr.runtime_id.clone().or(c.runtime_id.take());
    c.image_digest = cr.image_digest.clone().or(c.image_digest.take());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_health_status_survives_the_unknown_of_an_adoption() {
        let mut r = TaskRecord::default();
        r.task.last_status = "RUNNING".into();
        let report =
            |h: &'static str| TaskReport { last_status: "RUNNING", health_status: Some(h), ..Default::default() };
        merge(&mut r, &report("UNKNOWN"));
        assert_eq!(r.task.health_status.as_deref(), Some("UNKNOWN"));
        merge(&mut r, &report("HEALTHY"));
        merge(&mut r, &report("UNKNOWN"));
        assert_eq!(r.task.health_status.as_deref(), Some("HEALTHY"), "a restart's first report keeps HEALTHY");
        merge(&mut r, &report("UNHEALTHY"));
        assert_eq!(r.task.health_status.as_deref(), Some("UNHEALTHY"));
    }
}
