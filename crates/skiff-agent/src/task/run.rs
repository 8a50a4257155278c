//! Carrying a task out: PROVISIONING (network) → PENDING (pull) → ACTIVATING (cgroup, volumes, containers in
//! `dependsOn` order) → RUNNING (watch exits and health) → STOPPING (stop signal, SIGKILL after stopTimeout)
//! → DEPROVISIONING (containers, mounts, cgroup, network removed) → STOPPED.
//!
//! While RUNNING a task waits on its own wake-up, which the agent's exit watcher fires the moment conmon
//! records the exit of one of its containers (the watches are held from a container's start or adoption to
//! the task's end), and on a timer ([`super::TaskPolling`]) that collects health-check results and finds
//! whatever no event announced.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use super::{
    container_id, private_dns_name, Agent, AgentError, Condition, ContainerPlan, ContainerReport, TaskReport, TaskSpec,
};
use crate::images::{Image, NoProgress, Rootfs};
use crate::network::TaskNetwork;
use crate::runtime::cgroup::{valid_name, TaskCgroup};
use crate::runtime::spec::{libc_sig, parse_signal, DEFAULT_STOP_TIMEOUT, MAX_STOP_TIMEOUT};
use crate::runtime::{
    build_oci_spec, resolve_container, BindMount, BundleOptions, ContainerState, ExitWatch, ImageConfig, TaskContext,
    TaskLimits,
};
use skiff_model::task::{stop_code, OOM_REASON};

/// How many times a task's cleanup is tried before its end is reported anyway.
const CLEANUP_ATTEMPTS: u32 = 5;
/// How often a task waiting on `dependsOn` looks again.
const DEPENDENCY_POLL: Duration = Duration::from_millis(20);

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(super) fn initial_report(spec: &TaskSpec) -> TaskReport {
    TaskReport {
        last_status: "PROVISIONING",
        containers: spec
            .containers
            .iter()
            .map(|c| ContainerReport {
                name: c.name().to_string(),
                last_status: "PENDING",
                health_status: c.health_check.as_ref().map(|_| "UNKNOWN"),
                ..Default::default()
            })
            .collect(),
        health_status: Some("UNKNOWN"),
        ..Default::default()
    }
}

/// Why a task ends.
enum End {
    Requested,
    Failed { code: &'static str, reason: String },
}

/// One container while the task runs.
#[derive(Default)]
struct Slot {
    image: Option<Image>,
    rootfs: Option<Rootfs>,
    /// Created (started or adopted).
    started: bool,
    finished: bool,
    stop_signal: i32,
    stop_timeout: Duration,
    health: Option<tokio::task::JoinHandle<()>>,
}

struct Run {
    agent: Arc<Agent>,
    spec: TaskSpec,
    tx: watch::Sender<TaskReport>,
    stop: watch::Receiver<bool>,
    report: TaskReport,
    dir: PathBuf,
    slots: Vec<Slot>,
    health: Arc<Mutex<Vec<Option<&'static str>>>>,
    cgroup: Option<TaskCgroup>,
    /// Woken when one of the task's containers exits (or may have: a watch was added, events were lost).
    exited: Arc<Notify>,
    /// The watches of the started containers' exit directories, held until the task ends.
    exit_watches: Vec<ExitWatch>,
}

pub(super) async fn run(agent: Arc<Agent>, spec: TaskSpec, tx: watch::Sender<TaskReport>, stop: watch::Receiver<bool>) {
    let report = tx.borrow().clone();
    let n = spec.containers.len();
    let mut run = Run {
        dir: agent.task_dir(&spec.task_id),
        health: Arc::new(Mutex::new(report.containers.iter().map(|c| c.health_status).collect())),
        slots: (0..n).map(|_| Slot::default()).collect(),
        agent,
        spec,
        tx,
        stop,
        report,
        cgroup: None,
        exited: Arc::new(Notify::new()),
        exit_watches: Vec::new(),
    };
    let end = run.provision_and_run().await;
    run.finish(end).await;
}

/// Resolves when a stop is requested (never, if nobody can ask any more).
async fn stop_requested(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A reason as ECS shows it: one line (the OCI runtime's messages end in newlines).
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cannot_start(message: impl std::fmt::Display) -> String {
    let m = one_line(&message.to_string());
    if m.starts_with("CannotStartContainerError") {
        m
    } else {
        format!("CannotStartContainerError: {m}")
    }
}

impl Run {
    fn publish(&self) {
        let report = self.report.clone();
        self.tx.send_if_modified(|current| {
            if *current == report {
                return false;
            }
            *current = report;
            true
        });
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn fail(&mut self, index: Option<usize>, reason: String) -> End {
        if let Some(i) = index {
            self.report.containers[i].reason = Some(reason.clone());
        }
        End::Failed { code: stop_code::TASK_FAILED_TO_START, reason }
    }

    async fn provision_and_run(&mut self) -> End {
        // PROVISIONING: the task's directory, limited to its ephemeral storage, and its network (both adopted
        // when an earlier run made them).
        let created = tokio::task::block_in_place(|| {
            self.agent.storage.create(&self.spec.task_id, self.spec.ephemeral_storage_bytes)
        });
        match created {
            Ok(_) | Err(crate::storage::StorageError::Exists(_)) => {}
            Err(e) => {
                return self
                    .fail(None, format!("ResourceInitializationError: unable to create the task's storage: {e}"))
            }
        }
        let network = match self.attach().await {
            Ok(n) => n,
            Err(e) => {
                return self
                    .fail(None, format!("ResourceInitializationError: unable to attach the task's network: {e}"))
            }
        };
        let hostname = private_dns_name(network.ipv4, &self.spec.region);
        let hosts =
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{hostname}\n", network.ipv4);
        if let Err(e) = std::fs::write(&network.hosts_file, hosts) {
            return self
                .fail(None, format!("ResourceInitializationError: writing {}: {e}", network.hosts_file.display()));
        }
        self.report.hostname = Some(hostname);
        self.report.network = Some(network);
        self.report.connectivity_at = Some(now_ms());
        self.report.last_status = "PENDING";
        self.publish();

        // PENDING: the images.
        self.report.pull_started_at = Some(now_ms());
        self.publish();
        let agent = self.agent.clone();
        let creds = self.spec.credentials.clone();
        let task_id = self.spec.task_id.clone();
        // A container that exists already (the task is resumed after a restart) is not pulled again: its
        // image may have been deleted from the registry meanwhile, which must not end a running task.
        let pulls = futures_util::future::join_all(self.spec.containers.iter().enumerate().map(|(i, c)| {
            let (agent, creds, task_id) = (agent.clone(), creds.clone(), task_id.clone());
            async move {
                if agent.runtime.handle(&container_id(&task_id, i)).is_ok() {
                    return Ok(agent.images.get(&c.image).await.ok().flatten());
                }
                agent.images.pull(&c.image, creds.as_ref(), &NoProgress).await.map(Some)
            }
        }));
        let mut stop = self.stop.clone();
        let pulled = tokio::select! {
            r = pulls => r,
            () = stop_requested(&mut stop) => return End::Requested,
        };
        self.report.pull_stopped_at = Some(now_ms());
        for (i, result) in pulled.into_iter().enumerate() {
            match result {
                Ok(Some(image)) => {
                    self.report.containers[i].image_digest = Some(image.manifest_digest.clone());
                    self.slots[i].image = Some(image);
                }
                Ok(None) => {}
                Err(e) => {
                    let plan = &self.spec.containers[i];
                    let reason = one_line(&e.to_string().replace(&plan.image, &plan.image_as_given));
                    return self.fail(Some(i), reason);
                }
            }
        }
        self.publish();

        // ACTIVATING: cgroup, volumes, containers.
        self.report.last_status = "ACTIVATING";
        self.publish();
        let limits = TaskLimits {
            cpu_units: Some(self.spec.cpu_units),
            memory_mib: Some(self.spec.memory_mib),
            pids_max: self.spec.pids_max,
        };
        match self.agent.runtime.create_task_cgroup(&self.spec.task_id, limits) {
            Ok(cg) => self.cgroup = Some(cg),
            Err(e) => return self.fail(None, format!("ResourceInitializationError: {e}")),
        }
        for v in &self.spec.volumes {
            let path = self.dir.join("volumes").join(v);
            if !valid_name(v) {
                return self.fail(None, format!("ResourceInitializationError: invalid volume name {v:?}"));
            }
            if let Err(e) = std::fs::create_dir_all(&path) {
                return self.fail(None, format!("ResourceInitializationError: creating volume {v}: {e}"));
            }
        }
        if let Some(end) = self.start_containers().await {
            return end;
        }

        // RUNNING.
        self.report.started_at = Some(now_ms());
        self.report.last_status = "RUNNING";
        self.publish();
        let running_since = Instant::now();
        let polling = self.agent.polling;
        loop {
            let mut stop = self.stop.clone();
            let poll = if running_since.elapsed() < polling.settled_after {
                polling.interval
            } else {
                polling.settled_interval
            };
            tokio::select! {
                () = stop_requested(&mut stop) => return End::Requested,
                () = self.exited.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            if let Some(end) = self.observe() {
                return end;
            }
            self.publish();
        }
    }

    /// The task's attachment: adopted if an earlier run made it, else a new one. An attach is never
    /// cancelled half-way (its address allocation runs on a blocking thread); a stop is looked at after it.
    async fn attach(&mut self) -> Result<TaskNetwork, AgentError> {
        let id = self.spec.task_id.clone();
        if let Some(n) = self.agent.network.attached(&id).await? {
            return Ok(n);
        }
        Ok(self.agent.network.attach(&id, &self.spec.subnet, "").await?)
    }

    /// Starts every container once its dependencies allow; `Some` when the task must end instead.
    async fn start_containers(&mut self) -> Option<End> {
        loop {
            if self.stopping() {
                return Some(End::Requested);
            }
            if let Some(end) = self.observe() {
                return Some(end);
            }
            let mut waiting = false;
            for i in 0..self.slots.len() {
                if self.slots[i].started || self.slots[i].finished {
                    continue;
                }
                match self.dependencies(i) {
                    Ok(true) => {
                        if let Err(reason) = self.start_container(i).await {
                            self.report.containers[i].last_status = "STOPPED";
                            self.slots[i].finished = true;
                            if self.spec.containers[i].essential {
                                return Some(self.fail(Some(i), reason));
                            }
                            self.report.containers[i].reason = Some(reason);
                        }
                        self.publish();
                    }
                    Ok(false) => waiting = true,
                    Err(reason) => {
                        self.report.containers[i].last_status = "STOPPED";
                        self.slots[i].finished = true;
                        return Some(self.fail(Some(i), reason));
                    }
                }
            }
            if !waiting {
                return None;
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                () = stop_requested(&mut stop) => return Some(End::Requested),
                () = self.exited.notified() => {}
                () = tokio::time::sleep(DEPENDENCY_POLL) => {}
            }
        }
    }

    /// Whether container `i` may start now; `Err` when it never can.
    fn dependencies(&self, i: usize) -> Result<bool, String> {
        let plan = &self.spec.containers[i];
        for (dep, condition) in &plan.depends_on {
            let Some(j) = self.spec.containers.iter().position(|c| c.name() == dep) else {
                return Err(cannot_start(format!("container {}: dependency {dep} is not in the task", plan.name())));
            };
            let slot = &self.slots[j];
            let r = &self.report.containers[j];
            let never = |why: String| {
                Err(cannot_start(format!(
                    "container {} cannot start: dependency {dep} {why} (condition {condition:?})",
                    plan.name()
                )))
            };
            let ok = match condition {
                Condition::Start => {
                    if slot.finished && !slot.started && r.exit_code.is_none() {
                        return never("failed to start".into());
                    }
                    slot.started
                }
                Condition::Complete => slot.finished,
                Condition::Success => {
                    if slot.finished && r.exit_code != Some(0) {
                        return never(format!("exited with code {:?}", r.exit_code));
                    }
                    slot.finished
                }
                Condition::Healthy => {
                    let h = self.health.lock().unwrap_or_else(|p| p.into_inner())[j];
                    if h == Some("UNHEALTHY") || slot.finished {
                        return never("did not become healthy".into());
                    }
                    h == Some("HEALTHY")
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn start_container(&mut self, i: usize) -> Result<(), String> {
        let plan = self.spec.containers[i].clone();
        let id = container_id(&self.spec.task_id, i);
        let (signal, timeout) = stop_params(&plan, self.slots[i].image.as_ref());
        self.slots[i].stop_signal = signal;
        self.slots[i].stop_timeout = timeout;
        let name = plan.name().to_string();
        if !valid_name(&name) {
            return Err(cannot_start(format!("invalid container name {name:?}")));
        }
        if self.agent.runtime.handle(&id).is_ok() {
            // Resumed after an agent restart: the container exists already.
            match self.agent.runtime.state(&id) {
                // Created but never started (the earlier run died in between): start it afresh, on a fresh
                // root filesystem.
                Ok(ContainerState::Created) => self.discard_container(&id, &name).map_err(cannot_start)?,
                // Running: adopted. Exited (or lost) while nobody watched: `observe` records how it ended.
                _ => {
                    self.slots[i].started = true;
                    self.watch_exit(&id);
                    self.report.containers[i].runtime_id = Some(id.clone());
                    self.report.containers[i].last_status = "RUNNING";
                    self.start_health_check(i, &id);
                    return Ok(());
                }
            }
        }
        let image = self.slots[i].image.clone().ok_or_else(|| cannot_start("the image was not pulled"))?;
        let network = self.report.network.clone().ok_or_else(|| cannot_start("the task has no network"))?;
        let cgroup = self.cgroup.clone().ok_or_else(|| cannot_start("the task has no cgroup"))?;
        let bundle = self.dir.join("containers").join(&name);
        std::fs::create_dir_all(&bundle).map_err(|e| cannot_start(format!("creating {}: {e}", bundle.display())))?;
        let rootfs = self.agent.images.rootfs(&image, &bundle).await.map_err(cannot_start)?;
        let ctx = TaskContext {
            metadata_uri: self.spec.metadata_uri.as_ref().map(|f| f(network.gateway, &name)).unwrap_or_default(),
            region: self.spec.region.clone(),
            default_hostname: self.report.hostname.clone().unwrap_or_default(),
        };
        let cspec = resolve_container(
            &ImageConfig::from(&image.config),
            &plan.definition,
            &plan.overrides,
            &ctx,
            &rootfs.path,
            self.agent.host,
        )
        .map_err(cannot_start)?;
        let mut opts = BundleOptions::new(&rootfs.path, cgroup.container_path(&name).map_err(cannot_start)?);
        opts.netns = Some(network.netns_path.clone());
        opts.hosts_file = Some(network.hosts_file.clone());
        opts.resolv_conf = Some(network.resolv_conf.clone());
        opts.volumes = self.bind_mounts(&plan)?;
        opts.pids_limit = None;
        let oci = build_oci_spec(&cspec, &opts).map_err(cannot_start)?;
        self.slots[i].stop_signal = cspec.stop_signal;
        self.slots[i].stop_timeout = cspec.stop_timeout;
        self.slots[i].rootfs = Some(rootfs);
        let agent = self.agent.clone();
        let cid = id.clone();
        let started = tokio::task::spawn_blocking(move || agent.runtime.create_and_start(&cid, &bundle, &oci))
            .await
            .map_err(cannot_start)?;
        if let Err(e) = started {
            if let Some(r) = self.slots[i].rootfs.take() {
                let _ = tokio::task::spawn_blocking(move || r.unmount()).await;
            }
            return Err(cannot_start(e));
        }
        self.slots[i].started = true;
        self.watch_exit(&id);
        let r = &mut self.report.containers[i];
        r.runtime_id = Some(id.clone());
        r.last_status = "RUNNING";
        r.started_at = Some(now_ms());
        self.start_health_check(i, &id);
        Ok(())
    }

    /// Watches the exit directory of a started (or adopted) container until the task ends; without a watch
    /// (inotify unavailable) the poll finds its exit.
    fn watch_exit(&mut self, id: &str) {
        if let Some(w) = self.agent.exits.watch(id, &self.agent.runtime.exit_dir(id), &self.exited) {
            self.exit_watches.push(w);
        }
    }

    /// Removes a container an earlier run left half-made, with its bundle and overlay root filesystem.
    fn discard_container(&self, id: &str, name: &str) -> Result<(), AgentError> {
        let bundle = self.dir.join("containers").join(name);
        tokio::task::block_in_place(|| {
            self.agent.runtime.delete(id)?;
            match rustix::mount::unmount(bundle.join("rootfs"), rustix::mount::UnmountFlags::DETACH) {
                Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
                Err(e) => return Err(AgentError::Io { op: "unmount", path: bundle.join("rootfs"), source: e.into() }),
            }
            match crate::images::remove::remove_tree(&bundle) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(AgentError::Io { op: "remove", path: bundle, source: e })
                }
                _ => Ok(()),
            }
        })
    }

    /// The container's `mountPoints` and those of its `volumesFrom` sources, as bind mounts of the task's
    /// scratch volume directories.
    fn bind_mounts(&self, plan: &ContainerPlan) -> Result<Vec<BindMount>, String> {
        let mut out = vec![];
        let mut add = |m: &super::MountPlan, read_only: bool| -> Result<(), String> {
            if !self.spec.volumes.contains(&m.volume) {
                return Err(cannot_start(format!(
                    "container {}: mount point source volume {} is not a volume of the task",
                    plan.name(),
                    m.volume
                )));
            }
            out.push(BindMount {
                source: self.dir.join("volumes").join(&m.volume),
                destination: m.container_path.clone(),
                readonly: read_only,
            });
            Ok(())
        };
        for m in &plan.mount_points {
            add(m, m.read_only)?;
        }
        for (source, read_only) in &plan.volumes_from {
            let Some(src) = self.spec.containers.iter().find(|c| c.name() == source) else {
                return Err(cannot_start(format!(
                    "container {}: volumesFrom {source}: no such container",
                    plan.name()
                )));
            };
            for m in &src.mount_points {
                add(m, *read_only || m.read_only)?;
            }
        }
        Ok(out)
    }

    fn start_health_check(&mut self, i: usize, id: &str) {
        let Some(check) = self.spec.containers[i].health_check.clone() else { return };
        let agent = self.agent.clone();
        let health = self.health.clone();
        let id = id.to_string();
        self.slots[i].health = Some(tokio::spawn(async move {
            let began = Instant::now();
            let mut failures = 0;
            loop {
                tokio::time::sleep(check.interval).await;
                let ok = matches!(agent.runtime.exec(&id, &check.args, check.timeout).await, Ok(Some(0)));
                let status = if ok {
                    failures = 0;
                    Some("HEALTHY")
                } else if began.elapsed() < check.start_period {
                    None
                } else {
                    failures += 1;
                    (failures >= check.retries).then_some("UNHEALTHY")
                };
                if let Some(s) = status {
                    health.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(s);
                }
            }
        }));
    }

    /// Looks at every started container; `Some` when an essential one has exited.
    fn observe(&mut self) -> Option<End> {
        let mut essential_exit = false;
        for i in 0..self.slots.len() {
            if !self.slots[i].started || self.slots[i].finished {
                continue;
            }
            let id = container_id(&self.spec.task_id, i);
            let state = self.agent.runtime.state(&id);
            let r = &mut self.report.containers[i];
            match state {
                Ok(ContainerState::Exited { exit_code, oom_killed, finished_at_ms }) => {
                    r.exit_code = Some(exit_code);
                    if oom_killed {
                        r.reason = Some(OOM_REASON.into());
                    }
                    r.finished_at = Some(finished_at_ms as i64);
                }
                Ok(ContainerState::Lost) | Err(_) => {
                    r.reason = Some("the container's process and its monitor are gone without an exit code".into());
                }
                Ok(_) => continue,
            }
            r.last_status = "STOPPED";
            self.slots[i].finished = true;
            if let Some(h) = self.slots[i].health.take() {
                h.abort();
            }
            essential_exit |= self.spec.containers[i].essential;
        }
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut task_health = None;
        for (i, h) in health.iter().enumerate() {
            self.report.containers[i].health_status = *h;
            if let (true, Some(h)) = (self.spec.containers[i].essential, h) {
                task_health = match (task_health, *h) {
                    (_, "UNHEALTHY") | (Some("UNHEALTHY"), _) => Some("UNHEALTHY"),
                    (_, "UNKNOWN") | (Some("UNKNOWN"), _) => Some("UNKNOWN"),
                    _ => Some("HEALTHY"),
                };
            }
        }
        self.report.health_status = Some(task_health.unwrap_or("UNKNOWN"));
        essential_exit.then(|| End::Failed {
            code: stop_code::ESSENTIAL_CONTAINER_EXITED,
            reason: "Essential container in task exited".into(),
        })
    }

    async fn finish(&mut self, end: End) {
        if let End::Failed { code, reason } = end {
            self.report.stop_code = Some(code);
            self.report.stopped_reason = Some(reason);
        }
        self.report.last_status = "STOPPING";
        self.report.stopping_at = Some(now_ms());
        self.publish();
        // Nothing waits for exit events any more: the watches go before the containers' directories do.
        self.exit_watches.clear();
        for slot in &mut self.slots {
            if let Some(h) = slot.health.take() {
                h.abort();
            }
        }
        // Every running container gets its stop signal at once, and SIGKILL after its own stopTimeout.
        let agent = self.agent.clone();
        let stops = self.slots.iter().enumerate().filter(|(_, s)| s.started && !s.finished).map(|(i, s)| {
            let id = container_id(&self.spec.task_id, i);
            let (signal, timeout) = (s.stop_signal, s.stop_timeout);
            let agent = agent.clone();
            async move { (i, agent.runtime.stop(&id, signal, timeout).await) }
        });
        for (i, result) in futures_util::future::join_all(stops).await {
            let r = &mut self.report.containers[i];
            match result {
                Ok(ContainerState::Exited { exit_code, oom_killed, finished_at_ms }) => {
                    r.exit_code = Some(exit_code);
                    if oom_killed {
                        r.reason = Some(OOM_REASON.into());
                    }
                    r.finished_at = Some(finished_at_ms as i64);
                }
                Ok(_) => {}
                Err(e) => r.reason = Some(format!("stopping the container failed: {e}")),
            }
            self.slots[i].finished = true;
        }
        for r in &mut self.report.containers {
            r.last_status = "STOPPED";
        }
        self.report.execution_stopped_at = Some(now_ms());
        self.report.last_status = "DEPROVISIONING";
        self.publish();

        let rootfs: Vec<Rootfs> = self.slots.iter_mut().filter_map(|s| s.rootfs.take()).collect();
        let id = self.spec.task_id.clone();
        let agent = self.agent.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for c in agent.containers_of(&id).unwrap_or_default() {
                if let Err(e) = agent.runtime.delete(&c) {
                    tracing::warn!(container = %c, error = %e, "deleting a container failed");
                }
            }
            for r in rootfs {
                if let Err(e) = r.unmount() {
                    tracing::warn!(task = %id, error = %e, "unmounting a root filesystem failed");
                }
            }
        })
        .await;
        // Cleanup is idempotent: retry what failed (a cgroup busy for a moment, a link still going away);
        // what is left after that the controller's periodic sweep removes.
        for attempt in 1..=CLEANUP_ATTEMPTS {
            match cleanup(&self.agent, &self.spec.task_id).await {
                Ok(()) => break,
                Err(e) if attempt == CLEANUP_ATTEMPTS => {
                    tracing::warn!(task = %self.spec.task_id, error = %e, "task cleanup failed; the sweep will retry")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await,
            }
        }
        self.report.stopped_at = Some(now_ms());
        self.report.last_status = "STOPPED";
        self.publish();
    }
}

/// The stop signal and timeout of an adopted container (the image's STOPSIGNAL if the image is still in the
/// cache, the definition's stopTimeout); a container started by this run takes them from its resolved spec.
fn stop_params(plan: &ContainerPlan, image: Option<&Image>) -> (i32, Duration) {
    let signal = image
        .and_then(|i| i.config.stop_signal.as_deref())
        .filter(|s| !s.is_empty())
        .and_then(|s| parse_signal(s).ok())
        .unwrap_or(libc_sig::SIGTERM);
    let timeout = plan.definition.stop_timeout.map(Duration::from_secs).unwrap_or(DEFAULT_STOP_TIMEOUT);
    (signal, timeout.min(MAX_STOP_TIMEOUT))
}

/// Removes whatever exists of a task on this node: containers, overlay mounts, the cgroup, the network
/// attachment and the task directory. Idempotent.
pub(super) async fn cleanup(agent: &Agent, task_id: &str) -> Result<(), AgentError> {
    if !valid_name(task_id) {
        return Ok(());
    }
    // Every step runs whatever failed before it; the first error is returned.
    let mut first: Option<AgentError> = None;
    let mut note = |r: Result<(), AgentError>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    // Deleting containers waits for their monitors, cgroups may be busy for a moment, storage removal
    // walks the task's tree: blocking work, kept off the async workers.
    tokio::task::block_in_place(|| {
        for c in agent.containers_of(task_id).unwrap_or_default() {
            note(agent.runtime.delete(&c).map(|_| ()).map_err(AgentError::from));
        }
        let cgroup = TaskCgroup::open(agent.runtime.cgroup_layout(), task_id);
        note(cgroup.remove().map_err(|e| AgentError::Runtime(e.into())));
    });
    note(agent.network.detach_by_id(task_id).await.map_err(AgentError::from));
    // Detaches what is still mounted inside (overlays nobody holds a `Rootfs` of after a restart), then
    // deletes the directory with everything the task wrote.
    note(tokio::task::block_in_place(|| agent.storage.remove(task_id)).map_err(AgentError::from));
    first.map_or(Ok(()), Err)
}
