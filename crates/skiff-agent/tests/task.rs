//! Whole tasks through the agent against the real kernel: a loop-backed btrfs for the task directories, a
//! bridge, namespaces and an nft table named by the test, a busybox image served by a local registry, and
//! containers run by crun under conmon. Root only (skipped with a message otherwise).
//!
//! What these tests hold the agent to: a container's exit is noticed at once — through the agent's one
//! inotify instance, not at the next poll (the poll is set to seconds here) —, also for a container adopted
//! after an agent restart; the watches go with the tasks; without inotify, polling alone still finds exits.
//!
//! Each test runs the agent on a runtime of its own and, in a guard, stops its tasks and removes everything
//! the agent made (`Agent::reset`: containers, mounts, cgroups, network, the storage mount), also when an
//! assertion failed.
//!
//! Run: `cargo test -p skiff-agent --test task -- --nocapture` (prints the measured exit-to-STOPPING times).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_agent::images::NoCredentials;
use skiff_agent::network::SubnetSpec;
use skiff_agent::runtime::ContainerDefinitionInput;
use skiff_agent::storage::StorageConfig;
use skiff_agent::task::{
    container_id, Agent, AgentConfig, ContainerPlan, TaskHandle, TaskPolling, TaskReport, TaskSpec,
};
use support::{LayoutRegistry, TestLayer};
use tokio::sync::watch;

const BUSYBOX: &str = "/bin/busybox";

/// The poll interval of the tests that time exits: far longer than an event takes, so that an exit noticed
/// in under half of it was not found by the poll.
const SLOW_POLL: Duration = Duration::from_secs(4);

/// One test at a time: they time exits on a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for b in ["/usr/bin/crun", "/usr/bin/conmon", BUSYBOX] {
        if !Path::new(b).exists() {
            return Some(format!("{b} missing (make deps)"));
        }
    }
    for tool in ["mkfs.btrfs", "nft"] {
        if std::process::Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} missing (make deps)"));
        }
    }
    None
}

macro_rules! require_root {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED: task tests need root, crun, conmon, busybox-static, btrfs-progs and nft: {why}");
            return;
        }
    };
}

/// A busybox image as one uncompressed layer: `/bin/busybox` with `sh` and `sleep`, passwd and group.
fn busybox_layer() -> TestLayer {
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = |path: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).expect("tar dir");
    };
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "root"] {
        dir(d);
    }
    let busybox = std::fs::read(BUSYBOX).expect("read busybox");
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice()).expect("tar busybox");
    for applet in ["sh", "sleep"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox").expect("tar symlink");
    }
    for (path, text) in [("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(text.len() as u64);
        b.append_data(&mut h, path, text.as_bytes()).expect("tar file");
    }
    TestLayer::tar(b.into_inner().expect("tar"))
}

/// A container that idles until killed (and exits 0 at once on SIGTERM).
fn idler(name: &str) -> ContainerDefinitionInput {
    shell(name, "trap 'exit 0' TERM; /bin/sleep 3600 & wait")
}

fn shell(name: &str, script: &str) -> ContainerDefinitionInput {
    ContainerDefinitionInput {
        name: name.into(),
        command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        stop_timeout: Some(2),
        ..Default::default()
    }
}

/// One test's node: the agent's data directory, a registry with the busybox image, a subnet, the agent on a
/// runtime of its own, and every task started (stopped and removed by the guard).
struct Node {
    _serial: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    registry: LayoutRegistry,
    subnet: SubnetSpec,
    bridge_prefix: String,
    nft_table: String,
    rt: Option<tokio::runtime::Runtime>,
    agent: Option<Arc<Agent>>,
    tasks: Vec<TaskHandle>,
}

impl Node {
    fn new() -> Node {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new().prefix("skiff-task-test").tempdir().expect("temp dir");
        let layout = dir.path().join("layout");
        support::write_layout(&layout, "latest", &[busybox_layer()]);
        let registry = LayoutRegistry::serve(&layout);
        let r = *uuid::Uuid::new_v4().as_bytes();
        let tag = hex::encode(&r[..3]);
        // 10.252/16: away from the e2e servers' 10.100-10.249 and the benchmarks' 10.250 and 10.251.
        let cidr = format!("10.252.{}.0/24", r[3]).parse().expect("cidr");
        Node {
            _serial: serial,
            registry,
            subnet: SubnetSpec { id: format!("subnet-task{tag}"), cidr },
            bridge_prefix: format!("k{}", &tag[..5]),
            nft_table: format!("skifftask_{tag}"),
            rt: None,
            agent: None,
            tasks: vec![],
            dir,
        }
    }

    fn config(&self, polling: TaskPolling, watch_exits: bool) -> AgentConfig {
        let root = std::fs::canonicalize(self.dir.path()).expect("temp dir").join("agent");
        let mut config = AgentConfig::new(&root);
        config.network.netns_dir = root.join("netns");
        config.network.bridge_prefix = self.bridge_prefix.clone();
        config.network.nft_table = self.nft_table.clone();
        config.storage = StorageConfig { image_size: Some(4 << 30), ..StorageConfig::new(root.join("storage")) };
        config.warm_namespaces = 0;
        config.polling = polling;
        config.watch_exits = watch_exits;
        config
    }

    /// Opens the agent on a fresh runtime (as a server start would).
    fn open(&mut self, polling: TaskPolling, watch_exits: bool) -> Arc<Agent> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let config = self.config(polling, watch_exits);
        let agent = rt.block_on(Agent::open(config)).expect("open the agent");
        self.rt = Some(rt);
        self.agent = Some(agent.clone());
        agent
    }

    /// An agent restart: the runtime goes, with every task's run and the agent (containers keep running).
    fn kill_agent(&mut self) {
        self.tasks.clear();
        self.agent = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(10));
        }
    }

    fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.as_ref().expect("agent open").block_on(f)
    }

    fn agent(&self) -> &Arc<Agent> {
        self.agent.as_ref().expect("agent open")
    }

    fn spec(&self, task_id: &str, containers: &[(ContainerDefinitionInput, bool)]) -> TaskSpec {
        let image = format!("{}/busybox:latest", self.registry.host());
        TaskSpec {
            task_id: task_id.into(),
            subnet: self.subnet.clone(),
            region: "us-east-1".into(),
            cpu_units: 256,
            memory_mib: 512,
            pids_max: None,
            ephemeral_storage_bytes: 1 << 30,
            volumes: vec![],
            containers: containers
                .iter()
                .map(|(definition, essential)| ContainerPlan {
                    image: image.clone(),
                    image_as_given: image.clone(),
                    definition: definition.clone(),
                    overrides: Default::default(),
                    essential: *essential,
                    depends_on: vec![],
                    health_check: None,
                    mount_points: vec![],
                    volumes_from: vec![],
                })
                .collect(),
            metadata_uri: None,
            credentials: Arc::new(NoCredentials),
        }
    }

    /// Starts a task and returns its reports.
    fn start(&mut self, spec: TaskSpec) -> watch::Receiver<TaskReport> {
        let agent = self.agent().clone();
        let handle = self.block_on(async move { agent.start(spec) });
        let reports = handle.reports.clone();
        self.tasks.push(handle);
        reports
    }

    /// Waits (up to `timeout`) for a report that satisfies `done`.
    fn until(
        &self,
        reports: &mut watch::Receiver<TaskReport>,
        timeout: Duration,
        what: &str,
        done: impl Fn(&TaskReport) -> bool,
    ) -> TaskReport {
        self.block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let report = reports.borrow_and_update().clone();
                if done(&report) {
                    return report;
                }
                match tokio::time::timeout_at(deadline, reports.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => panic!("the task's reports ended before {what}: {report:?}"),
                    Err(_) => panic!("timed out after {timeout:?} waiting for {what}: {report:?}"),
                }
            }
        })
    }

    fn running(&self, reports: &mut watch::Receiver<TaskReport>) -> TaskReport {
        let r = self.until(reports, Duration::from_secs(60), "RUNNING", |r| {
            r.last_status == "RUNNING" || r.stopped_at.is_some()
        });
        assert_eq!(r.last_status, "RUNNING", "the task did not start: {r:?}");
        r
    }

    fn stopped(&self, reports: &mut watch::Receiver<TaskReport>) -> TaskReport {
        self.until(reports, Duration::from_secs(60), "STOPPED", |r| r.last_status == "STOPPED")
    }

    /// SIGKILL to the init process of a task's container, as the benchmark does from outside.
    fn kill_container(&self, task_id: &str, index: usize) -> Instant {
        let id = container_id(task_id, index);
        let pid = self.agent().runtime.handle(&id).expect("container handle").pid;
        assert!(pid > 0, "container {id} has no pid");
        let t0 = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
            .expect("SIGKILL the container");
        t0
    }

    /// Kills the only container of a running task and returns how long until the task reported STOPPING (or
    /// later), with the report.
    fn time_kill_to_stopping(
        &self,
        task_id: &str,
        reports: &mut watch::Receiver<TaskReport>,
    ) -> (Duration, TaskReport) {
        let killed_at_ms = unix_ms();
        let t0 = self.kill_container(task_id, 0);
        let r = self.until(reports, Duration::from_secs(30), "STOPPING after the kill", |r| r.stopping_at.is_some());
        let observed = t0.elapsed();
        let recorded = r.stopping_at.map(|at| Duration::from_millis((at - killed_at_ms).max(0) as u64));
        (recorded.unwrap_or(observed).min(observed), r)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        let tasks = std::mem::take(&mut self.tasks);
        let agent = self.agent.take();
        rt.block_on(async {
            for t in &tasks {
                t.stop();
            }
            for t in &tasks {
                let mut reports = t.reports.clone();
                let _ = tokio::time::timeout(Duration::from_secs(30), reports.wait_for(|r| r.last_status == "STOPPED"))
                    .await;
            }
            if let Some(agent) = agent {
                if let Err(e) = agent.reset().await {
                    eprintln!("cleanup: agent reset: {e}");
                }
            }
        });
        rt.shutdown_timeout(Duration::from_secs(10));
        // The table this test named, in case the reset did not get that far.
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.nft_table])
            .stderr(std::process::Stdio::null())
            .status();
        let root = std::fs::canonicalize(self.dir.path()).unwrap_or_else(|_| self.dir.path().to_path_buf());
        unmount_under(&root);
    }
}

/// Lazily detaches every mount under `root`, deepest first (what a failed test left).
fn unmount_under(root: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(root))
        .collect();
    points.sort();
    for p in points.iter().rev() {
        let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn task_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn slow_polling() -> TaskPolling {
    TaskPolling { interval: SLOW_POLL, settled_interval: SLOW_POLL, settled_after: Duration::ZERO }
}

fn assert_essential_exit(r: &TaskReport) {
    assert_eq!(r.stop_code, Some("EssentialContainerExited"), "{r:?}");
    assert_eq!(r.containers[0].exit_code, Some(137), "{r:?}");
}

#[test]
fn a_killed_container_is_noticed_at_once_not_at_the_next_poll() {
    require_root!();
    let mut node = Node::new();
    let agent = node.open(slow_polling(), true);
    assert!(agent.watches_exits(), "inotify unavailable on the test machine");
    for round in 0..3 {
        let id = task_id();
        let mut reports = node.start(node.spec(&id, &[(idler("app"), true)]));
        node.running(&mut reports);
        assert_eq!(agent.exit_watches(), 1, "one watch per running container");
        let (took, r) = node.time_kill_to_stopping(&id, &mut reports);
        eprintln!("round {round}: SIGKILL -> STOPPING in {took:?} (poll interval {SLOW_POLL:?})");
        assert_essential_exit(&r);
        assert!(took < SLOW_POLL / 2, "the exit was noticed after {took:?}: by the {SLOW_POLL:?} poll, not at once");
        node.stopped(&mut reports);
        assert_eq!(agent.exit_watches(), 0, "the ended task's watch was left behind");
    }
}

#[test]
fn watches_come_with_started_containers_and_go_with_their_tasks() {
    require_root!();
    let mut node = Node::new();
    let agent = node.open(slow_polling(), true);
    // Three tasks of two containers each, ending three ways: StopTask, an essential container killed, and a
    // non-essential container exiting by itself (its watch stays until the task ends) before StopTask.
    let ids: Vec<String> = (0..3).map(|_| task_id()).collect();
    let mut reports: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let sidecar = if i == 2 { shell("sidecar", "/bin/sleep 1; exit 3") } else { idler("sidecar") };
            node.start(node.spec(id, &[(idler("app"), true), (sidecar, false)]))
        })
        .collect();
    for r in &mut reports {
        node.running(r);
    }
    assert_eq!(agent.exit_watches(), 6, "one watch per started container");

    node.tasks[0].stop();
    let r = node.stopped(&mut reports[0]);
    assert_eq!(r.stop_code, None, "{r:?}");
    assert_eq!(agent.exit_watches(), 4);

    node.kill_container(&ids[1], 0);
    let r = node.stopped(&mut reports[1]);
    assert_essential_exit(&r);
    assert_eq!(agent.exit_watches(), 2);

    let t0 = Instant::now();
    let r = node
        .until(&mut reports[2], Duration::from_secs(30), "the sidecar's exit", |r| r.containers[1].exit_code.is_some());
    assert_eq!((r.last_status, r.containers[1].exit_code), ("RUNNING", Some(3)), "{r:?}");
    assert!(t0.elapsed() < SLOW_POLL, "a non-essential exit was noticed by the poll only ({:?})", t0.elapsed());
    assert_eq!(agent.exit_watches(), 2, "watches are held until the task ends");
    node.tasks[2].stop();
    node.stopped(&mut reports[2]);
    assert_eq!(agent.exit_watches(), 0, "watches left behind by ended tasks");
}

#[test]
fn an_adopted_container_is_watched_after_an_agent_restart() {
    require_root!();
    let mut node = Node::new();
    node.open(slow_polling(), true);
    let id = task_id();
    let spec = node.spec(&id, &[(idler("app"), true)]);
    let mut reports = node.start(spec.clone());
    node.running(&mut reports);
    let pid = node.agent().runtime.handle(&container_id(&id, 0)).expect("handle").pid;

    node.kill_agent();
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "the container died with the agent");
    let agent = node.open(slow_polling(), true);
    let mut reports = node.start(spec);
    node.running(&mut reports);
    assert_eq!(agent.runtime.handle(&container_id(&id, 0)).expect("handle").pid, pid, "not the adopted container");
    assert_eq!(agent.exit_watches(), 1, "the adopted container is not watched");
    let (took, r) = node.time_kill_to_stopping(&id, &mut reports);
    eprintln!("adopted: SIGKILL -> STOPPING in {took:?} (poll interval {SLOW_POLL:?})");
    assert_essential_exit(&r);
    assert!(took < SLOW_POLL / 2, "the adopted container's exit was noticed after {took:?}");
    node.stopped(&mut reports);
    assert_eq!(agent.exit_watches(), 0);
}

#[test]
fn without_inotify_the_poll_still_finds_exits() {
    require_root!();
    let mut node = Node::new();
    let poll = Duration::from_millis(300);
    let agent = node.open(TaskPolling { interval: poll, settled_interval: poll, settled_after: Duration::ZERO }, false);
    assert!(!agent.watches_exits());
    let id = task_id();
    let mut reports = node.start(node.spec(&id, &[(idler("app"), true)]));
    node.running(&mut reports);
    assert_eq!(agent.exit_watches(), 0);
    let (took, r) = node.time_kill_to_stopping(&id, &mut reports);
    eprintln!("polling alone: SIGKILL -> STOPPING in {took:?} (poll interval {poll:?})");
    assert_essential_exit(&r);
    assert!(took < Duration::from_secs(5), "the poll did not find the exit ({took:?})");
    node.stopped(&mut reports);
}
