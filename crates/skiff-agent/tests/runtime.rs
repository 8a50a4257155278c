//! Real containers through crun under conmon (root only; skipped with a message otherwise).
//!
//! Every test builds a static-busybox root filesystem in a temporary directory, runs containers from it and
//! removes what it created — containers (`crun delete -f` by id), task cgroups, state and bundle directories —
//! in a Drop guard, so a failing assertion leaves nothing behind. Assertions about isolation and limits are
//! made from inside the container by a checker script (youki's contest style) that exits non-zero with a
//! message when something is off.
//!
//! Run: `cargo test -p skiff-agent --test runtime -- --test-threads=1`

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use skiff_agent::runtime::{
    self, build_oci_spec, cgroup, resolve_container, BundleOptions, ContainerDefinitionInput, ContainerOverrideInput,
    ContainerState, HostLimits, ImageConfig, LogStream, OciRuntime, Runtime, RuntimeConfig, TaskCgroup, TaskContext,
    TaskLimits, Ulimit,
};

const BUSYBOX: &str = "/bin/busybox";

fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root".into());
    }
    for b in ["/usr/bin/crun", "/usr/bin/conmon", BUSYBOX] {
        if !Path::new(b).exists() {
            return Some(format!("{b} missing (make deps)"));
        }
    }
    None
}

macro_rules! require_root {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("SKIPPED: real-container test needs root, crun, conmon and busybox-static: {why}");
            return;
        }
    };
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A busybox root filesystem: /bin/busybox + one symlink per applet, /etc/passwd with root, app, nobody.
fn build_rootfs(root: &Path) {
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "home/app", "root"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir rootfs");
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX).arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n").expect("group");
    std::fs::set_permissions(root.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).expect("chmod");
}

/// One test's world: a runtime over a temporary state dir, a rootfs, and everything to clean up.
struct Fixture {
    tmp: tempfile::TempDir,
    rootfs: PathBuf,
    runtime: Option<Runtime>,
    config: RuntimeConfig,
    containers: Vec<String>,
    tasks: Vec<TaskCgroup>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_runtime(OciRuntime::Crun)
    }

    fn with_runtime(kind: OciRuntime) -> Fixture {
        let tmp = tempfile::Builder::new().prefix("skiff-rt-").tempdir_in("/tmp").expect("tempdir");
        let rootfs = std::fs::canonicalize(tmp.path()).expect("canon").join("rootfs");
        build_rootfs(&rootfs);
        let mut config = RuntimeConfig::new(tmp.path().join("state"));
        config.runtime = kind;
        config.log_size_cap = 1 << 20;
        runtime::prepare_host(&config).expect("prepare_host");
        let rt = Runtime::open(config.clone()).expect("open runtime");
        Fixture { tmp, rootfs, runtime: Some(rt), config, containers: vec![], tasks: vec![] }
    }

    fn rt(&self) -> &Runtime {
        self.runtime.as_ref().expect("runtime open")
    }

    fn task(&mut self, limits: TaskLimits) -> TaskCgroup {
        let t = self.rt().create_task_cgroup(&unique("task"), limits).expect("task cgroup");
        self.tasks.push(t.clone());
        t
    }

    fn spec(&self, def: ContainerDefinitionInput) -> runtime::ContainerSpec {
        let ctx = TaskContext {
            metadata_uri: "http://169.254.170.2/v4/test".into(),
            region: "us-east-1".into(),
            default_hostname: "ip-10-0-0-7".into(),
        };
        resolve_container(
            &ImageConfig { env: vec!["PATH=/bin".into()], ..Default::default() },
            &def,
            &ContainerOverrideInput::default(),
            &ctx,
            &self.rootfs,
            HostLimits::detect(),
        )
        .expect("resolve container")
    }

    /// Resolve, build the bundle and start; the container is registered for cleanup first.
    fn start(&mut self, task: &TaskCgroup, def: ContainerDefinitionInput) -> (String, runtime::ContainerHandle) {
        let name = def.name.clone();
        let spec = self.spec(def);
        let id = unique(&name);
        self.containers.push(id.clone());
        let bundle = self.tmp.path().join("bundles").join(&id);
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        let opts = BundleOptions::new(&self.rootfs, task.container_path(&name).expect("path"));
        let oci = build_oci_spec(&spec, &opts).expect("oci spec");
        let h = self.rt().create_and_start(&id, &bundle, &oci).expect("create_and_start");
        (id, h)
    }

    async fn wait_exit(&self, id: &str, secs: u64) -> ContainerState {
        self.rt()
            .wait(id, Duration::from_secs(secs))
            .await
            .expect("wait")
            .unwrap_or_else(|| panic!("container {id} still running after {secs}s; log: {}", self.log_text(id)))
    }

    fn log_text(&self, id: &str) -> String {
        std::fs::read_to_string(self.config.log_dir.join(format!("{id}.log"))).unwrap_or_default()
    }

    fn lines(&self, id: &str) -> Vec<runtime::LogEntry> {
        self.rt().logs(id).read_to_end().expect("read log")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let rt = match self.runtime.take() {
            Some(rt) => rt,
            None => match Runtime::open(self.config.clone()) {
                Ok(rt) => rt,
                Err(_) => return,
            },
        };
        for id in &self.containers {
            let _ = rt.delete(id);
            // Belt and braces: by id, never by name.
            let _ = Command::new(self.config.runtime.binary())
                .arg("--root")
                .arg(&self.config.crun_root)
                .args(["delete", "-f", id])
                .output();
        }
        for t in &self.tasks {
            let _ = t.remove();
        }
    }
}

fn sh(name: &str, script: &str) -> ContainerDefinitionInput {
    ContainerDefinitionInput {
        name: name.into(),
        command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
        ..Default::default()
    }
}

/// Poll `cond` until true or `timeout`, then fail with `what`.
fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn echo_hello_is_logged_with_timestamps_and_exits_zero() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(256) });
    let (id, _) = f.start(&task, sh("hello", "echo hello; echo oops >&2; printf 'no newline'"));
    let st = f.wait_exit(&id, 10).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 0, oom_killed: false, .. }), "{st:?}");
    let lines = f.lines(&id);
    let hello = lines.iter().find(|l| l.line == "hello").unwrap_or_else(|| panic!("no hello in {lines:?}"));
    assert_eq!(hello.stream, LogStream::Stdout);
    assert!(hello.timestamp.len() >= 20 && hello.timestamp.as_bytes()[10] == b'T', "timestamp {:?}", hello.timestamp);
    assert!(lines.iter().any(|l| l.line == "oops" && l.stream == LogStream::Stderr), "{lines:?}");
    assert!(lines.iter().any(|l| l.line == "no newline"), "{lines:?}");
}

#[tokio::test]
async fn memory_hog_is_oom_killed_with_137() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(1024), memory_mib: Some(512), pids_max: Some(256) });
    let mut def = sh("hog", "x=0123456789abcdef; while true; do x=\"$x$x\"; done");
    def.memory = Some(32);
    let (id, h) = f.start(&task, def);
    let mem_dir = f.rt().cgroup_layout().dir("memory", &h.cgroups_path);
    let limit_file = if f.rt().cgroup_layout().is_v2() { "memory.max" } else { "memory.limit_in_bytes" };
    let limit = std::fs::read_to_string(mem_dir.join(limit_file)).unwrap_or_default();
    assert_eq!(limit.trim(), (32u64 << 20).to_string(), "container memory limit");
    let st = f.wait_exit(&id, 30).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 137, oom_killed: true, .. }), "{st:?}");
    // Recorded: still reported after the cgroup is gone.
    assert_eq!(f.rt().delete(&id).expect("delete"), st);
}

#[tokio::test]
async fn task_memory_limit_oom_is_detected() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(1024), memory_mib: Some(24), pids_max: None });
    let (id, _) = f.start(&task, sh("hog", "x=0123456789abcdef; while true; do x=\"$x$x\"; done"));
    let st = f.wait_exit(&id, 30).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 137, oom_killed: true, .. }), "{st:?}");
    let limit_file = if f.rt().cgroup_layout().is_v2() { "memory.max" } else { "memory.limit_in_bytes" };
    let limit = std::fs::read_to_string(task.dir("memory").join(limit_file)).expect("task memory limit");
    assert_eq!(limit.trim(), (24u64 << 20).to_string());
}

#[tokio::test]
async fn busy_loop_in_256_unit_task_gets_a_quarter_core() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(256) });
    if !f.rt().cgroup_layout().is_v2() {
        let cpu = task.dir("cpu");
        let read = |n: &str| std::fs::read_to_string(cpu.join(n)).expect(n).trim().to_string();
        assert_eq!(read("cpu.cfs_quota_us"), "25000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.shares"), "256");
    } else {
        let max = std::fs::read_to_string(task.dir("cpu").join("cpu.max")).expect("cpu.max");
        assert_eq!(max.trim(), "25000 100000");
    }
    let (id, _) = f.start(&task, sh("spin", "while :; do :; done"));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let u0 = task.cpu_usage_ns().expect("usage");
    std::thread::sleep(Duration::from_millis(1500));
    let u1 = task.cpu_usage_ns().expect("usage");
    let cores = (u1 - u0) as f64 / t0.elapsed().as_nanos() as f64;
    eprintln!("busy loop in a 256-unit task: {cores:.3} cores");
    assert!(cores <= 0.30, "used {cores:.3} cores, want ≤ 0.30");
    // How much the loop gets below its quota depends on what else runs on the machine (its cpu.shares are a
    // quarter of a default group's); that it ran at all is what keeps the bound above from passing vacuously.
    assert!(u1 > u0, "the loop used no CPU: did it run?");
    let st = f.rt().stop(&id, 15, Duration::from_millis(200)).await.expect("stop");
    assert!(matches!(st, ContainerState::Exited { exit_code: 137, .. }), "{st:?}");
}

#[tokio::test]
async fn stop_runs_sigterm_trap_then_sigkill_after_timeout() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(512), memory_mib: Some(512), pids_max: Some(256) });
    let (graceful, _) =
        f.start(&task, sh("graceful", "trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.05; done"));
    let (stubborn, _) = f.start(&task, sh("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.05; done"));
    for id in [&graceful, &stubborn] {
        eventually(Duration::from_secs(10), "ready", || f.lines(id).iter().any(|l| l.line == "ready"));
    }
    let t0 = Instant::now();
    let st = f.rt().stop(&graceful, 15, Duration::from_secs(10)).await.expect("stop graceful");
    assert!(matches!(st, ContainerState::Exited { exit_code: 0, oom_killed: false, .. }), "{st:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "trap took {:?}", t0.elapsed());
    assert!(f.lines(&graceful).iter().any(|l| l.line == "bye"), "{}", f.log_text(&graceful));

    let t0 = Instant::now();
    let st = f.rt().stop(&stubborn, 15, Duration::from_secs(1)).await.expect("stop stubborn");
    let took = t0.elapsed();
    assert!(matches!(st, ContainerState::Exited { exit_code: 137, oom_killed: false, .. }), "{st:?}");
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "SIGKILL after {took:?}");
}

/// Docker's default capabilities as a CapEff mask: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DOCKER_DEFAULT_CAPEFF: &str = "00000000a80425fb";

const CHECKER: &str = r#"
fail() { echo "CHECK FAILED: $*"; exit 1; }
[ "$(hostname)" = "$WANT_HOSTNAME" ] || fail "hostname $(hostname) != $WANT_HOSTNAME"
[ "$(id -u)" = "$WANT_UID" ] || fail "uid $(id -u) != $WANT_UID"
capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
[ "$capeff" = "$WANT_CAPEFF" ] || fail "CapEff $capeff != $WANT_CAPEFF"
capbnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
[ "$capbnd" = "$WANT_CAPBND" ] || fail "CapBnd $capbnd != $WANT_CAPBND"
nnp=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)
[ "$nnp" = 1 ] || fail "NoNewPrivs $nnp"
seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status)
[ "$seccomp" = 2 ] || fail "Seccomp mode $seccomp"
[ "$(ulimit -n)" = "$WANT_NOFILE" ] || fail "nofile $(ulimit -n) != $WANT_NOFILE"
if echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; then fail "/proc/sys is writable"; fi
grep -q ' /proc/sys ro\| /proc/sys .*ro,' /proc/self/mountinfo || fail "/proc/sys not mounted read-only"
[ -s /proc/kcore ] && fail "/proc/kcore not masked"
if touch /rootfs-write-test 2>/dev/null; then fail "root filesystem is writable"; fi
touch /scratch/ok || fail "tmpfs /scratch not writable"
if unshare -m true 2>/dev/null; then fail "unshare succeeded"; fi
if mount -t tmpfs none /tmp 2>/dev/null; then fail "mount succeeded"; fi
[ "$$" != 1 ] || [ "$WANT_INIT" = 0 ] || fail "the shell is PID 1 despite initProcessEnabled"
if [ "$WANT_INIT" = 1 ]; then [ "$(cat /proc/1/comm)" = init ] || fail "PID 1 is $(cat /proc/1/comm)"; fi
[ "$AWS_EXECUTION_ENV" = AWS_ECS_FARGATE ] || fail "AWS_EXECUTION_ENV=$AWS_EXECUTION_ENV"
[ "$(pwd)" = "$WANT_CWD" ] || fail "cwd $(pwd) != $WANT_CWD"
echo CHECKS PASSED
"#;

async fn run_checker(user: Option<&str>, init: bool, want_uid: &str, want_capeff: &str, want_capbnd: &str) {
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(128) });
    let mut def = sh("checker", CHECKER);
    def.hostname = Some("checker-host".into());
    def.user = user.map(str::to_string);
    def.readonly_root_filesystem = true;
    def.init_process_enabled = init;
    def.working_directory = Some("/tmp".into());
    def.ulimits = vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }];
    def.cap_add = vec!["SYS_PTRACE".into()];
    def.cap_drop = vec!["NET_RAW".into()];
    def.tmpfs = vec![runtime::Tmpfs {
        container_path: "/scratch".into(),
        size_mib: 8,
        mount_options: vec!["mode=1777".into()],
    }];
    def.environment = vec![
        ("WANT_HOSTNAME".into(), "checker-host".into()),
        ("WANT_UID".into(), want_uid.into()),
        ("WANT_CAPEFF".into(), want_capeff.into()),
        ("WANT_CAPBND".into(), want_capbnd.into()),
        ("WANT_NOFILE".into(), "1024".into()),
        ("WANT_INIT".into(), if init { "1" } else { "0" }.into()),
        ("WANT_CWD".into(), "/tmp".into()),
    ];
    let (id, _) = f.start(&task, def);
    let st = f.wait_exit(&id, 15).await;
    let log = f.log_text(&id);
    assert!(matches!(st, ContainerState::Exited { exit_code: 0, .. }), "{st:?}\n{log}");
    assert!(log.contains("CHECKS PASSED"), "{log}");
}

// Default set + SYS_PTRACE (bit 19) − NET_RAW (bit 13).
const CHECKER_CAPS: &str = "00000000a80c05fb";

#[tokio::test]
async fn checker_inside_asserts_isolation_as_root() {
    require_root!();
    run_checker(None, false, "0", CHECKER_CAPS, CHECKER_CAPS).await;
}

#[tokio::test]
async fn checker_inside_asserts_isolation_as_named_user_with_init() {
    require_root!();
    if !Path::new(runtime::bundle::DEFAULT_INIT_BINARY).exists() {
        eprintln!("SKIPPED: {} missing (Debian package tini)", runtime::bundle::DEFAULT_INIT_BINARY);
        return;
    }
    // A non-root user keeps the bounding set but has no effective capabilities (no ambient caps, as Docker).
    run_checker(Some("app"), true, "1000", "0000000000000000", CHECKER_CAPS).await;
}

#[test]
fn docker_default_capeff_constant_matches_the_set() {
    let caps = runtime::bundle::effective_capabilities(&[], &[]).expect("caps");
    let bits: u64 = [
        ("CHOWN", 0),
        ("DAC_OVERRIDE", 1),
        ("FOWNER", 3),
        ("FSETID", 4),
        ("KILL", 5),
        ("SETGID", 6),
        ("SETUID", 7),
        ("SETPCAP", 8),
        ("NET_BIND_SERVICE", 10),
        ("NET_RAW", 13),
        ("SYS_CHROOT", 18),
        ("MKNOD", 27),
        ("AUDIT_WRITE", 29),
        ("SETFCAP", 31),
    ]
    .iter()
    .map(|(n, b)| {
        assert!(caps.contains(&runtime::bundle::parse_capability(n).expect("cap")), "{n}");
        1u64 << b
    })
    .sum();
    assert_eq!(format!("{bits:016x}"), DOCKER_DEFAULT_CAPEFF);
    assert_eq!(caps.len(), 14);
}

#[tokio::test]
async fn unknown_user_is_a_start_error() {
    require_root!();
    let f = Fixture::new();
    let mut def = sh("u", "true");
    def.user = Some("ghost".into());
    let err = resolve_container(
        &ImageConfig::default(),
        &def,
        &ContainerOverrideInput::default(),
        &TaskContext::default(),
        &f.rootfs,
        HostLimits::detect(),
    )
    .expect_err("unknown user");
    assert!(err.to_string().contains("CannotStartContainerError: unable to find user ghost"), "{err}");
}

#[tokio::test]
async fn missing_entrypoint_binary_is_a_start_error_and_leaves_nothing() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits::default());
    let spec = f.spec(ContainerDefinitionInput {
        name: "missing".into(),
        command: Some(vec!["/no/such/binary".into()]),
        ..Default::default()
    });
    let id = unique("missing");
    f.containers.push(id.clone());
    let bundle = f.tmp.path().join("bundles").join(&id);
    std::fs::create_dir_all(&bundle).expect("bundle");
    let oci = build_oci_spec(&spec, &BundleOptions::new(&f.rootfs, task.container_path("missing").expect("p")))
        .expect("spec");
    match f.rt().create_and_start(&id, &bundle, &oci) {
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("CannotStartContainerError"), "{msg}");
            assert!(matches!(f.rt().state(&id), Err(runtime::RuntimeError::NotFound(_))));
            assert!(!f.config.crun_root.join(&id).exists(), "crun state left");
            assert!(!cgroup::exists_anywhere(f.rt().cgroup_layout(), &task.container_path("missing").expect("p")));
        }
        // crun may report exec failures after start: then it exits 127 right away.
        Ok(_) => {
            let st = f.wait_exit(&id, 10).await;
            assert!(matches!(st, ContainerState::Exited { exit_code: 127, .. }), "{st:?}");
        }
    }
}

#[tokio::test]
async fn containers_outlive_the_runtime_object_and_are_adopted() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(256) });
    let (id, h) =
        f.start(&task, sh("long", "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 3"));
    let (sleeper, _) = f.start(&task, sh("sleeper", "echo up; exec sleep 1000"));
    // "Agent restart": the Runtime goes away, conmon and the containers stay.
    drop(f.runtime.take());
    assert!(Path::new(&format!("/proc/{}", h.conmon_pid)).exists(), "conmon gone with the runtime");
    let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(h.conmon_pid))).expect("pgid");
    assert_ne!(pgid, nix::unistd::getpgrp(), "conmon must not be in the agent's process group");
    let rt = Runtime::open(f.config.clone()).expect("reopen");
    let adopted = rt.adopt().expect("adopt");
    let ids: Vec<&str> = adopted.iter().map(|h| h.id.as_str()).collect();
    assert!(ids.contains(&id.as_str()) && ids.contains(&sleeper.as_str()), "{ids:?}");
    assert!(rt.state(&sleeper).expect("state").is_running());
    f.runtime = Some(rt);
    let st = f.wait_exit(&id, 20).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 3, oom_killed: false, .. }), "{st:?}");
    let lines = f.lines(&id);
    assert!(lines.iter().any(|l| l.line == "tick 39"), "log continued: {lines:?}");
    let st = f.rt().stop(&sleeper, 15, Duration::from_millis(300)).await.expect("stop");
    assert!(matches!(st, ContainerState::Exited { exit_code: 137, .. }), "{st:?}");
}

/// conmon's exit file wakes an exit watch the moment the container dies (it is renamed into place: the
/// watcher must see `IN_MOVED_TO`), and the state is final by then.
#[tokio::test]
async fn conmon_exit_file_wakes_the_exit_watcher_at_once() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(256) });
    let watcher = runtime::ExitWatcher::open();
    assert!(watcher.is_active(), "inotify unavailable");
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut watches = vec![];
    for round in 0..5 {
        let (id, h) = f.start(&task, sh(&format!("victim{round}"), "exec sleep 1000"));
        watches.push(watcher.watch(&id, &f.rt().exit_dir(&id), &wake).expect("watch"));
        // The wake-up every new watch gives (an exit before the watch is looked at).
        tokio::time::timeout(Duration::from_secs(1), wake.notified()).await.expect("initial wake");
        assert!(f.rt().state(&id).expect("state").is_running());
        let t0 = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .unwrap_or_else(|_| panic!("no exit event within 5 s (round {round})"));
        let took = t0.elapsed();
        let st = f.rt().state(&id).expect("state");
        assert!(matches!(st, ContainerState::Exited { exit_code: 137, .. }), "woken before the exit file: {st:?}");
        eprintln!("round {round}: SIGKILL -> exit event in {took:?}");
        assert!(took < Duration::from_millis(500), "exit event after {took:?}");
    }
    assert_eq!(watcher.watches(), 5);
    watches.clear();
    assert_eq!(watcher.watches(), 0);
}

#[tokio::test]
async fn log_follow_sees_new_lines() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits::default());
    let (id, _) = f.start(&task, sh("talker", "sleep 0.3; echo one; sleep 0.3; echo two"));
    let mut reader = f.rt().logs(&id);
    let mut seen = vec![];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.iter().any(|l: &runtime::LogEntry| l.line == "two") {
        assert!(Instant::now() < deadline, "follow saw {seen:?}");
        let got = tokio::time::timeout(Duration::from_secs(5), reader.follow(Duration::from_millis(20)))
            .await
            .expect("follow timed out")
            .expect("follow");
        seen.extend(got);
    }
    assert_eq!(seen.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(), vec!["one", "two"]);
    f.wait_exit(&id, 10).await;
}

#[tokio::test]
async fn fifty_start_delete_cycles_leave_nothing_behind() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(256), pids_max: Some(64) });
    let mut created = vec![];
    for i in 0..50 {
        let (id, h) = f.start(&task, sh(&format!("c{i}"), "echo cycle"));
        let st = f.wait_exit(&id, 10).await;
        assert!(matches!(st, ContainerState::Exited { exit_code: 0, .. }), "{st:?}");
        f.rt().delete(&id).expect("delete");
        f.rt().remove_log(&id).expect("remove log");
        created.push((id, h));
    }
    let layout = f.rt().cgroup_layout().clone();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    for (id, h) in &created {
        assert!(!cgroup::exists_anywhere(&layout, &h.cgroups_path), "cgroup {} left", h.cgroups_path);
        assert!(!f.config.crun_root.join(id).exists(), "crun state {id} left");
        assert!(!f.config.state_dir.join("containers").join(id).exists(), "runtime state {id} left");
        assert!(
            !h.bundle.exists(),
            "bundle {} left: {:?}",
            h.bundle.display(),
            std::fs::read_dir(&h.bundle).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        assert!(
            !Path::new(&format!("/proc/{}", h.conmon_pid)).exists(),
            "conmon {} of {id} left (or a zombie)",
            h.conmon_pid
        );
        assert!(!Path::new(&format!("/proc/{}", h.pid)).exists() || h.pid == 0, "container pid {} of {id} left", h.pid);
        assert!(!mountinfo.contains(id.as_str()), "a mount of {id} left");
    }
    task.remove().expect("remove task cgroup");
    assert!(!cgroup::exists_anywhere(&layout, &task.cgroups_path()), "task cgroup left");
}

/// Start latency: create_and_start (conmon + crun create + crun start) of a prepared bundle, p50 over 30
/// runs, next to plain `crun run` of the same bundle, interleaved run by run.
#[tokio::test]
async fn start_latency_against_crun_run() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits::default());
    let spec = f.spec(ContainerDefinitionInput {
        name: "lat".into(),
        command: Some(vec!["/bin/true".into()]),
        ..Default::default()
    });
    let mut ours = vec![];
    let mut bare = vec![];
    for i in 0..30 {
        let id = unique("lat");
        f.containers.push(id.clone());
        let bundle = f.tmp.path().join("bundles").join(&id);
        std::fs::create_dir_all(&bundle).expect("bundle");
        let oci =
            build_oci_spec(&spec, &BundleOptions::new(&f.rootfs, task.container_path(&format!("lat{i}")).expect("p")))
                .expect("spec");
        let t0 = Instant::now();
        f.rt().create_and_start(&id, &bundle, &oci).expect("start");
        ours.push(t0.elapsed());
        f.wait_exit(&id, 10).await;
        f.rt().delete(&id).expect("delete");
        f.rt().remove_log(&id).expect("rm log");

        let bid = unique("bare");
        let bbundle = f.tmp.path().join("bundles").join(&bid);
        std::fs::create_dir_all(&bbundle).expect("bundle");
        let oci =
            build_oci_spec(&spec, &BundleOptions::new(&f.rootfs, task.container_path(&format!("bare{i}")).expect("p")))
                .expect("spec");
        runtime::write_bundle_config(&bbundle, &oci).expect("config");
        let t0 = Instant::now();
        let out = Command::new("/usr/bin/crun")
            .arg("--root")
            .arg(&f.config.crun_root)
            .args(["run", "--bundle"])
            .arg(&bbundle)
            .arg(&bid)
            .output()
            .expect("crun run");
        bare.push(t0.elapsed());
        assert!(out.status.success(), "crun run: {}", String::from_utf8_lossy(&out.stderr));
        let _ =
            Command::new("/usr/bin/crun").arg("--root").arg(&f.config.crun_root).args(["delete", "-f", &bid]).output();
        let _ = cgroup::remove_tree(f.rt().cgroup_layout(), &task.container_path(&format!("bare{i}")).expect("p"));
        let _ = std::fs::remove_dir_all(&bbundle);
    }
    ours.sort();
    bare.sort();
    let p50 = |v: &[Duration]| v[v.len() / 2];
    eprintln!(
        "start latency p50 over 30: create_and_start {:?} (create+start, returns while running); crun run {:?} (to exit); ratio {:.2}",
        p50(&ours),
        p50(&bare),
        p50(&ours).as_secs_f64() / p50(&bare).as_secs_f64()
    );
}

#[tokio::test]
async fn runc_is_selectable() {
    require_root!();
    if !OciRuntime::Runc.binary().exists() {
        eprintln!("SKIPPED: runc is not installed (Debian package runc)");
        return;
    }
    let mut f = Fixture::with_runtime(OciRuntime::Runc);
    let task = f.task(TaskLimits::default());
    let (id, _) = f.start(&task, sh("runc", "echo from runc"));
    let st = f.wait_exit(&id, 10).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 0, .. }), "{st:?}");
    assert!(f.lines(&id).iter().any(|l| l.line == "from runc"));
}

#[tokio::test]
async fn log_is_capped_in_size_and_keeps_the_newest_lines() {
    require_root!();
    let mut f = Fixture::new();
    f.config.log_size_cap = 16 * 1024;
    f.runtime = Some(Runtime::open(f.config.clone()).expect("reopen with a small cap"));
    let task = f.task(TaskLimits::default());
    let (id, h) = f.start(&task, sh("chatty", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done"));
    let st = f.wait_exit(&id, 20).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 0, .. }), "{st:?}");
    let size = std::fs::metadata(&h.log_path).expect("log").len();
    assert!(size <= 16 * 1024 + 512, "log is {size} bytes, cap 16 KiB");
    let lines = f.lines(&id);
    assert_eq!(lines.last().map(|l| l.line.as_str()), Some("line 2999"), "newest line kept");
}

const CHILD_ENV: &str = "SKIFF_RT_TEST_AGENT_STATE";

/// Not a test on its own: run by `kill_9_of_the_agent_leaves_containers_running` as a separate "agent"
/// process (the test binary re-executed with `CHILD_ENV` set). Starts a container, reports it, then idles
/// until it is killed.
#[tokio::test]
async fn agent_child_process() {
    let Ok(state) = std::env::var(CHILD_ENV) else { return };
    let state = PathBuf::from(state);
    let rootfs = state.parent().expect("parent").join("rootfs");
    let mut config = RuntimeConfig::new(&state);
    config.log_size_cap = 1 << 20;
    let rt = Runtime::open(config).expect("child: open");
    let task = rt.create_task_cgroup(&unique("task"), TaskLimits::default()).expect("child: task");
    let spec = resolve_container(
        &ImageConfig::default(),
        &sh("survivor", "i=0; while [ $i -lt 60 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done; exit 7"),
        &ContainerOverrideInput::default(),
        &TaskContext::default(),
        &rootfs,
        HostLimits::detect(),
    )
    .expect("child: resolve");
    let id = unique("survivor");
    let bundle = state.parent().expect("parent").join("bundles").join(&id);
    std::fs::create_dir_all(&bundle).expect("child: bundle");
    let oci = build_oci_spec(&spec, &BundleOptions::new(&rootfs, task.container_path("survivor").expect("p")))
        .expect("child: spec");
    rt.create_and_start(&id, &bundle, &oci).expect("child: start");
    std::fs::write(state.parent().expect("parent").join("child-started"), format!("{id} {}", task.cgroups_path()))
        .expect("child: marker");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[tokio::test]
async fn kill_9_of_the_agent_leaves_containers_running() {
    require_root!();
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let mut f = Fixture::new();
    let marker = f.tmp.path().join("child-started");
    /// The agent child is killed (by pid) even when an assertion fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "agent_child_process", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, &f.config.state_dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn agent child"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("agent child exited early: {status}");
        }
        assert!(Instant::now() < deadline, "agent child did not start its container");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&marker).expect("marker");
    let (id, task_path) = text.split_once(' ').expect("marker format");
    let (id, task_id) = (id.to_string(), task_path.rsplit('/').next().expect("task id").to_string());
    f.containers.push(id.clone());
    f.tasks.push(TaskCgroup::open(f.rt().cgroup_layout(), &task_id));

    // kill -9 the "agent" (by its pid) while the container runs.
    child.0.kill().expect("kill -9");
    child.0.wait().expect("reap agent child");
    assert!(f.rt().state(&id).expect("state").is_running(), "container died with its agent");
    let before = f.lines(&id).len();
    let adopted = f.rt().adopt().expect("adopt");
    assert!(adopted.iter().any(|h| h.id == id), "not adopted");
    let st = f.wait_exit(&id, 20).await;
    assert!(matches!(st, ContainerState::Exited { exit_code: 7, .. }), "{st:?}");
    let lines = f.lines(&id);
    assert!(lines.len() > before && lines.iter().any(|l| l.line == "tick 59"), "log continued: {before} → {lines:?}");
    // The orphaned monitor was reparented to this process (a subreaper) and is reaped on delete.
    let h = f.rt().handle(&id).expect("handle");
    f.rt().delete(&id).expect("delete");
    assert!(!Path::new(&format!("/proc/{}", h.conmon_pid)).exists(), "conmon {} left", h.conmon_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_inside_and_a_timed_out_exec_leaves_no_process_behind() {
    require_root!();
    let mut f = Fixture::new();
    let task = f.task(TaskLimits { cpu_units: Some(256), memory_mib: Some(256), pids_max: Some(64) });
    let (id, h) = f.start(&task, sh("health", "sleep 60"));
    let ok = f.rt().exec(&id, &["/bin/sh".into(), "-c".into(), "exit 3".into()], Duration::from_secs(10)).await;
    assert_eq!(ok.expect("exec"), Some(3));
    // A health check that hangs: the exec times out and its process inside the container is killed too.
    let hung = f.rt().exec(&id, &["/bin/sleep".into(), "30".into()], Duration::from_millis(300)).await;
    assert_eq!(hung.expect("exec"), None);
    let procs = || {
        let dir = f.rt().cgroup_layout().dir("pids", &h.cgroups_path);
        let file = if f.rt().cgroup_layout().is_v2() { dir.join("cgroup.procs") } else { dir.join("tasks") };
        std::fs::read_to_string(file).unwrap_or_default().lines().count()
    };
    eventually(Duration::from_secs(5), "only the container's own process left", || procs() == 1);
}
