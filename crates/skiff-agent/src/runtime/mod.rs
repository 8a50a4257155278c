//! The container runtime: ECS container definitions → OCI bundles → containers run by crun (or runc) under
//! conmon, with cgroup limits, logs, exit codes and OOM detection that survive an agent restart.
//!
//! * [`spec`] resolves what a container runs (image config < task definition < overrides, as ECS/Docker).
//! * [`bundle`] turns that into an OCI runtime spec with Docker's hardening defaults; [`seccomp`] holds the
//!   default seccomp profile.
//! * [`cgroup`] prepares the host (crun's hybrid-mode fix on v1 hosts) and owns the task-level cgroup.
//! * [`Runtime`] (this file) starts containers under a monitor, reports their state and adopts them again
//!   after an agent restart; [`logs`] reads their logs.
//! * [`exits`] turns the exit files conmon writes into wake-ups (one inotify instance per agent), so a task
//!   notices a container's exit at once instead of at its next poll.
//!
//! **Monitor: Debian's `conmon`.** crun/runc leave no shim, so each container gets a `conmon` that holds its
//! stdio pipes, writes the log (k8s-file format, timestamped, line by line, size-capped) and the exit code
//! (`exits/<id>`), and reaps the container. conmon double-forks and calls `setsid`, so it is in no process
//! group or session of the agent: `kill -9` of the agent (or of its group) leaves every container running, and
//! a new agent re-reads `state_dir/containers/*/meta.json` ([`Runtime::adopt`]). The agent makes itself a
//! child subreaper ([`Runtime::open`]) so exited conmons are reaped by it rather than left as zombies under a
//! PID 1 that does not reap (as on the reference machines).
//!
//! **Init.** crun has no `--init`: for `initProcessEnabled` Debian's static `tini` (`/usr/bin/tini-static`,
//! package `tini`) is bind-mounted read-only at `/dev/init` and runs as PID 1 in front of the command (it
//! forwards signals, reaps zombies and exits with the child's status).
//!
//! **Seccomp.** [`seccomp`] states Docker's default policy as a deny list (allow by default, EPERM for the
//! dangerous syscalls, re-allowed per capability as Docker does).
//!
//! The runtime never touches the store; it neither mounts nor unmounts root filesystems (the image store
//! does) and never removes a bundle's `rootfs`.

pub mod bundle;
pub mod cgroup;
pub mod exits;
pub mod logs;
pub mod seccomp;
pub mod spec;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use bundle::{build_oci_spec, write_bundle_config, BindMount, BundleOptions};
pub use cgroup::{prepare_cgroups, CgroupLayout, TaskCgroup, TaskLimits};
pub use exits::{ExitWatch, ExitWatcher};
pub use logs::{LogEntry, LogReader, LogStream};
pub use spec::{
    resolve_container, ContainerDefinitionInput, ContainerOverrideInput, ContainerSpec, HostLimits, ImageConfig,
    ResolvedUser, TaskContext, Tmpfs, Ulimit,
};

/// Errors building a container's spec (bad input: the ECS error is a `CannotStartContainerError` reason or a
/// `ClientException` at registration).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("CannotStartContainerError: unable to find user {user}: no matching entries in passwd file")]
    UnknownUser { user: String },
    #[error("CannotStartContainerError: unable to find group {group}: no matching entries in group file")]
    UnknownGroup { group: String },
    #[error("CannotStartContainerError: container {container}: no command specified")]
    NoCommand { container: String },
    #[error("{0}")]
    Invalid(String),
    #[error("oci spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Errors of cgroup setup and accounting.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup name {0:?}")]
    InvalidName(String),
    #[error("create cgroup {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("write {value:?} to {path}: {source}")]
    Write { path: PathBuf, value: String, source: std::io::Error },
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse {path}")]
    Parse { path: PathBuf },
    #[error("remove cgroup {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("mount cgroup at {path}: {source}")]
    Mount { path: PathBuf, source: std::io::Error },
}

/// Errors running containers.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("{binary} not found or not executable (install the Debian package)")]
    MissingBinary { binary: PathBuf },
    #[error("CannotStartContainerError: {id}: {message}")]
    Start { id: String, message: String },
    #[error("{what} of container {id} failed: {message}")]
    Command { id: String, what: &'static str, message: String },
    #[error("signal {signal} to container {id}: {source}")]
    Signal { id: String, signal: i32, source: nix::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::Io { path: path.to_path_buf(), source }
}

/// Which OCI runtime runs the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OciRuntime {
    Crun,
    Runc,
}

impl OciRuntime {
    pub fn binary(self) -> PathBuf {
        match self {
            OciRuntime::Crun => PathBuf::from("/usr/bin/crun"),
            // Debian installs runc in /usr/sbin; other distributions in /usr/bin.
            OciRuntime::Runc => ["/usr/sbin/runc", "/usr/bin/runc"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc")),
        }
    }
}

/// Where the runtime keeps its state and how it runs containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `DATA_DIR/agent/runtime`: one directory per container (meta.json, pid files, exit file).
    pub state_dir: PathBuf,
    /// `--root` of crun/runc (their own container state).
    pub crun_root: PathBuf,
    /// Container logs (`<log_dir>/<container-id>.log`); kept after [`Runtime::delete`].
    pub log_dir: PathBuf,
    pub runtime: OciRuntime,
    /// Path of the runtime binary (defaults to [`OciRuntime::binary`]).
    pub runtime_binary: Option<PathBuf>,
    pub conmon_binary: PathBuf,
    /// Bytes; conmon starts the log over when it would pass this.
    pub log_size_cap: u64,
}

impl RuntimeConfig {
    /// Defaults under `state_dir`: crun state in `state_dir/crun`, logs in `state_dir/logs`, crun, conmon,
    /// 10 MiB of log per container.
    pub fn new(state_dir: impl Into<PathBuf>) -> RuntimeConfig {
        let state_dir = state_dir.into();
        RuntimeConfig {
            crun_root: state_dir.join("crun"),
            log_dir: state_dir.join("logs"),
            state_dir,
            runtime: OciRuntime::Crun,
            runtime_binary: None,
            conmon_binary: PathBuf::from("/usr/bin/conmon"),
            log_size_cap: 10 << 20,
        }
    }

    fn runtime_path(&self) -> PathBuf {
        self.runtime_binary.clone().unwrap_or_else(|| self.runtime.binary())
    }
}

/// Idempotent host preparation: cgroups ([`prepare_cgroups`]: crun's hybrid fix, `/skiff` parents) and the
/// binaries the runtime needs.
pub fn prepare_host(config: &RuntimeConfig) -> Result<CgroupLayout, RuntimeError> {
    for b in [config.runtime_path(), config.conmon_binary.clone()] {
        if !is_executable(&b) {
            return Err(RuntimeError::MissingBinary { binary: b });
        }
    }
    let layout = CgroupLayout::detect();
    prepare_cgroups(&layout)?;
    Ok(layout)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// What the runtime persists per container (`state_dir/containers/<id>/meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerHandle {
    pub id: String,
    pub bundle: PathBuf,
    pub cgroups_path: String,
    pub log_path: PathBuf,
    /// The container's init process on the host (0 before it was created).
    pub pid: i32,
    /// `/proc/<pid>/stat` start time, to tell the process from a later one with the same pid.
    pub pid_start_time: u64,
    pub conmon_pid: i32,
    pub conmon_start_time: u64,
    /// Set once `crun start` succeeded.
    pub started: bool,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A container's observed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created by crun but never started (the agent died between create and start).
    Created,
    Running {
        pid: i32,
    },
    /// `exit_code` is 128 + signal for signal deaths (137 for SIGKILL / OOM).
    Exited {
        exit_code: i32,
        oom_killed: bool,
        finished_at_ms: u64,
    },
    /// Neither the process nor its monitor is alive and no exit code was recorded.
    Lost,
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running { .. })
    }
}

/// The runtime: starts containers, observes them, stops and deletes them.
#[derive(Debug)]
pub struct Runtime {
    config: RuntimeConfig,
    layout: CgroupLayout,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// (state char, start time) from `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After "pid (comm) ": field 3 (state) is index 0, field 22 (starttime) is index 19.
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

fn alive(pid: i32, start_time: u64) -> bool {
    matches!(proc_stat(pid), Some((st, t)) if st != 'Z' && st != 'X' && (start_time == 0 || t == start_time))
}

fn reap(pid: i32) {
    if pid > 0 {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Runtime {
    /// Open (or create) the runtime's directories and detect the cgroup layout. Makes the calling process a
    /// child subreaper (process-wide) so that exited monitors are reaped by the agent.
    pub fn open(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        for d in [
            config.state_dir.join("containers"),
            config.state_dir.join("sockets"),
            config.crun_root.clone(),
            config.log_dir.clone(),
        ] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        if !is_executable(&config.runtime_path()) {
            return Err(RuntimeError::MissingBinary { binary: config.runtime_path() });
        }
        if !is_executable(&config.conmon_binary) {
            return Err(RuntimeError::MissingBinary { binary: config.conmon_binary.clone() });
        }
        let _ = nix::sys::prctl::set_child_subreaper(true);
        Ok(Runtime { layout: CgroupLayout::detect(), config })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn cgroup_layout(&self) -> &CgroupLayout {
        &self.layout
    }

    /// Create and configure a task's parent cgroup (`/skiff/<task-id>`).
    pub fn create_task_cgroup(&self, task_id: &str, limits: TaskLimits) -> Result<TaskCgroup, RuntimeError> {
        Ok(TaskCgroup::create(&self.layout, task_id, limits)?)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.state_dir.join("containers").join(id)
    }

    /// The log file of a container.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.config.log_dir.join(format!("{id}.log"))
    }

    fn runtime_cmd(&self) -> Command {
        let mut c = Command::new(self.config.runtime_path());
        c.arg("--root").arg(&self.config.crun_root);
        c
    }

    fn run_runtime(&self, id: &str, what: &'static str, args: &[&str]) -> Result<(), RuntimeError> {
        let out =
            self.runtime_cmd().args(args).stdin(Stdio::null()).output().map_err(io_err(&self.config.runtime_path()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Command {
                id: id.to_string(),
                what,
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn save_handle(&self, h: &ContainerHandle) -> Result<(), RuntimeError> {
        let dir = self.container_dir(&h.id);
        let tmp = dir.join("meta.json.tmp");
        let json = serde_json::to_vec(h).map_err(|e| RuntimeError::Io { path: tmp.clone(), source: e.into() })?;
        fs::write(&tmp, json).map_err(io_err(&tmp))?;
        fs::rename(&tmp, dir.join("meta.json")).map_err(io_err(&dir))
    }

    /// The persisted handle of a container.
    pub fn handle(&self, id: &str) -> Result<ContainerHandle, RuntimeError> {
        let p = self.container_dir(id).join("meta.json");
        let bytes = fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RuntimeError::NotFound(id.to_string()),
            _ => RuntimeError::Io { path: p.clone(), source: e },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::Io { path: p, source: e.into() })
    }

    /// Write `spec` as the bundle's `config.json`, create the container under a detached conmon and start it.
    /// Blocking (tens of milliseconds): call it from `spawn_blocking` in async code.
    pub fn create_and_start(
        &self,
        id: &str,
        bundle_dir: &Path,
        spec: &oci_spec::runtime::Spec,
    ) -> Result<ContainerHandle, RuntimeError> {
        if !cgroup::valid_name(id) {
            return Err(RuntimeError::InvalidId(id.to_string()));
        }
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .ok_or_else(|| SpecError::Invalid("the bundle has no explicit cgroupsPath".into()))?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists(id.to_string()))
            }
            Err(e) => return Err(RuntimeError::Io { path: dir, source: e }),
        }
        let result = self.create_and_start_in(id, &dir, bundle_dir, spec, cgroups_path);
        if result.is_err() {
            let _ = self.run_runtime(id, "delete", &["delete", "-f", id]);
            if let Ok(h) = self.handle(id) {
                self.wait_monitor_exit(&h, Duration::from_secs(2));
            }
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn create_and_start_in(
        &self,
        id: &str,
        dir: &Path,
        bundle_dir: &Path,
        spec: &oci_spec::runtime::Spec,
        cgroups_path: String,
    ) -> Result<ContainerHandle, RuntimeError> {
        let bundle_dir = fs::canonicalize(bundle_dir).map_err(io_err(bundle_dir))?;
        write_bundle_config(&bundle_dir, spec)?;
        let exits = dir.join("exits");
        fs::create_dir_all(&exits).map_err(io_err(&exits))?;
        let mut handle = ContainerHandle {
            id: id.to_string(),
            bundle: bundle_dir.clone(),
            cgroups_path,
            log_path: self.log_path(id),
            pid: 0,
            pid_start_time: 0,
            conmon_pid: 0,
            conmon_start_time: 0,
            started: false,
            created_at_ms: now_ms(),
        };
        self.save_handle(&handle)?;

        let (sync_r, sync_w): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| RuntimeError::Io { path: dir.into(), source: e.into() })?;
        let mut cmd = Command::new(&self.config.conmon_binary);
        cmd.arg("--api-version")
            .arg("1")
            .arg("-c")
            .arg(id)
            .arg("-u")
            .arg(id)
            .arg("-n")
            .arg(id)
            .arg("-r")
            .arg(self.config.runtime_path())
            .arg("-b")
            .arg(&bundle_dir)
            .arg("-p")
            .arg(dir.join("pidfile"))
            .arg("-P")
            .arg(dir.join("conmon.pid"))
            .arg("-l")
            .arg(format!("k8s-file:{}", handle.log_path.display()))
            .arg("--log-size-max")
            .arg(self.config.log_size_cap.to_string())
            .arg("--exit-dir")
            .arg(&exits)
            .arg("--persist-dir")
            .arg(dir)
            .arg("--socket-dir-path")
            .arg(self.config.state_dir.join("sockets"))
            .arg("--runtime-arg")
            .arg("--root")
            .arg("--runtime-arg")
            .arg(&self.config.crun_root)
            .arg("--log-level")
            .arg("error")
            .env("_OCI_SYNCPIPE", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // conmon writes files such as `oom` into its working directory: keep them with the container.
            .current_dir(dir);
        let w = sync_w.as_raw_fd();
        // SAFETY: between fork and exec the closure only calls async-signal-safe syscalls (setsid, dup2, fcntl)
        // on file descriptors owned by this process; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let _ = nix::unistd::setsid();
                if w == 3 {
                    if nix::libc::fcntl(w, nix::libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else {
                    // dup2 onto 3 clears FD_CLOEXEC on the copy.
                    if nix::libc::dup2(w, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(io_err(&self.config.conmon_binary))?;
        drop(sync_w);
        // conmon forks: its first process exits at once, the monitor lives on (reparented, own session).
        let _ = child.wait();
        let mut line = String::new();
        BufReader::new(fs::File::from(sync_r)).read_line(&mut line).map_err(io_err(&self.config.conmon_binary))?;
        #[derive(Deserialize)]
        struct Sync {
            data: i64,
            #[serde(default)]
            message: Option<String>,
        }
        let sync: Sync = serde_json::from_str(line.trim()).map_err(|_| RuntimeError::Start {
            id: id.into(),
            message: format!("conmon exited without reporting the container pid ({:?})", line.trim()),
        })?;
        if sync.data <= 0 {
            return Err(RuntimeError::Start {
                id: id.into(),
                message: sync.message.unwrap_or_else(|| "the OCI runtime failed to create the container".into()),
            });
        }
        handle.pid = sync.data as i32;
        handle.pid_start_time = proc_stat(handle.pid).map(|(_, t)| t).unwrap_or(0);
        handle.conmon_pid = read_pid(&dir.join("conmon.pid")).unwrap_or(0);
        handle.conmon_start_time = proc_stat(handle.conmon_pid).map(|(_, t)| t).unwrap_or(0);
        self.save_handle(&handle)?;

        self.run_runtime(id, "start", &["start", id])
            .map_err(|e| RuntimeError::Start { id: id.into(), message: e.to_string() })?;
        handle.started = true;
        self.save_handle(&handle)?;
        Ok(handle)
    }

    /// The directory where conmon writes the container's exit file (`<exit_dir>/<id>`) when it exits: what
    /// an [`ExitWatcher`] watches.
    pub fn exit_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("exits")
    }

    fn exit_code(&self, id: &str) -> Option<i32> {
        fs::read_to_string(self.exit_dir(id).join(id)).ok()?.trim().parse().ok()
    }

    /// The container's state: exit file (written by conmon) first, then whether the process or its monitor
    /// lives. On the first observation of an exit, OOM is decided from the container cgroup's `oom_kill`
    /// counter (or, for exit 137, the task cgroup's: a task-level limit) while the cgroup still exists, and
    /// recorded in `final.json`.
    pub fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let h = self.handle(id)?;
        let dir = self.container_dir(id);
        let final_path = dir.join("final.json");
        if let Ok(bytes) = fs::read(&final_path) {
            if let Ok(s) = serde_json::from_slice::<ContainerState>(&bytes) {
                return Ok(s);
            }
        }
        if let Some(code) = self.exit_code(id) {
            let container_ooms = cgroup::oom_kills(&self.layout, &h.cgroups_path);
            let parent = Path::new(&h.cgroups_path).parent().map(|p| p.to_string_lossy().into_owned());
            let task_ooms = parent.map(|p| cgroup::oom_kills(&self.layout, &p)).unwrap_or(0);
            let oom = container_ooms > 0 || (code == 137 && task_ooms > 0) || dir.join("oom").exists();
            let finished_at_ms = fs::metadata(dir.join("exits").join(id))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or_else(now_ms);
            let s = ContainerState::Exited { exit_code: code, oom_killed: oom, finished_at_ms };
            if let Ok(json) = serde_json::to_vec(&s) {
                let _ = fs::write(&final_path, json);
            }
            reap(h.conmon_pid);
            return Ok(s);
        }
        let monitor = alive(h.conmon_pid, h.conmon_start_time);
        let process = alive(h.pid, h.pid_start_time);
        if !h.started && (monitor || process) {
            return Ok(ContainerState::Created);
        }
        if process || monitor {
            return Ok(ContainerState::Running { pid: h.pid });
        }
        reap(h.conmon_pid);
        // The monitor may have written the exit file between the two checks.
        if self.exit_code(id).is_some() {
            return self.state(id);
        }
        Ok(ContainerState::Lost)
    }

    /// Send `signal` to the container's init process.
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let h = self.handle(id)?;
        let sig = nix::sys::signal::Signal::try_from(signal).map_err(|e| RuntimeError::Signal {
            id: id.into(),
            signal,
            source: e,
        })?;
        match self.state(id)? {
            ContainerState::Running { .. } if alive(h.pid, h.pid_start_time) => {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.pid), sig).map_err(|e| RuntimeError::Signal {
                    id: id.into(),
                    signal,
                    source: e,
                })
            }
            ContainerState::Created => self.run_runtime(id, "kill", &["kill", id, &signal.to_string()]),
            _ => Ok(()),
        }
    }

    /// Wait until the container has exited (polling), up to `timeout`; `None` if it still runs.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<ContainerState>, RuntimeError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let s = self.state(id)?;
            if matches!(s, ContainerState::Exited { .. } | ContainerState::Lost) {
                return Ok(Some(s));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// StopTask: `signal` (SIGTERM or the image's STOPSIGNAL), up to `timeout` for the process to exit, then
    /// SIGKILL. Returns the final state.
    pub async fn stop(&self, id: &str, signal: i32, timeout: Duration) -> Result<ContainerState, RuntimeError> {
        self.kill(id, signal)?;
        if let Some(s) = self.wait(id, timeout).await? {
            return Ok(s);
        }
        self.kill(id, nix::libc::SIGKILL)?;
        match self.wait(id, Duration::from_secs(10)).await? {
            Some(s) => Ok(s),
            None => self.state(id),
        }
    }

    fn wait_monitor_exit(&self, h: &ContainerHandle, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while alive(h.conmon_pid, h.conmon_start_time) && std::time::Instant::now() < deadline {
            reap(h.conmon_pid);
            std::thread::sleep(Duration::from_millis(5));
        }
        reap(h.conmon_pid);
    }

    /// Remove the container: `crun delete -f` (kills it if it still runs), wait for its monitor, remove its
    /// cgroup if the runtime left it, the bundle's `config.json` and conmon's FIFOs (and the bundle directory
    /// if then empty: a mounted `rootfs` in it is the image store's to unmount) and
    /// the runtime's state. The log stays (see [`Runtime::remove_log`]). Returns the last state observed.
    /// Blocking; idempotent for a container the runtime still knows.
    pub fn delete(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let h = self.handle(id)?;
        let mut last = self.state(id)?;
        if !matches!(last, ContainerState::Exited { .. }) && self.config.crun_root.join(id).exists() {
            let _ = self.run_runtime(id, "kill", &["kill", "--all", id, "KILL"]);
        }
        self.wait_monitor_exit(&h, Duration::from_secs(5));
        if !matches!(last, ContainerState::Exited { .. }) {
            last = self.state(id)?;
        }
        if self.config.crun_root.join(id).exists() {
            self.run_runtime(id, "delete", &["delete", "-f", id])?;
        }
        if !h.cgroups_path.is_empty() && cgroup::exists_anywhere(&self.layout, &h.cgroups_path) {
            cgroup::remove_tree(&self.layout, &h.cgroups_path)?;
        }
        // config.json is ours; conmon puts its control FIFOs (ctl, winsz) and attach socket in the bundle.
        for f in ["config.json", "ctl", "winsz", "attach"] {
            let _ = fs::remove_file(h.bundle.join(f));
        }
        let _ = fs::remove_dir(&h.bundle);
        // conmon's attach socket link (`--socket-dir-path`).
        let _ = fs::remove_file(self.config.state_dir.join("sockets").join(id));
        let dir = self.container_dir(id);
        fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(last)
    }

    /// Remove a container's log file.
    pub fn remove_log(&self, id: &str) -> Result<(), RuntimeError> {
        let p = self.log_path(id);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(RuntimeError::Io { path: p, source: e }),
            _ => Ok(()),
        }
    }

    /// The ids of every container the runtime has state for (no state is read).
    pub fn ids(&self) -> Result<Vec<String>, RuntimeError> {
        let dir = self.config.state_dir.join("containers");
        let entries = fs::read_dir(&dir).map_err(io_err(&dir))?;
        Ok(entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
    }

    /// Every container the runtime knows (after an agent restart: running ones keep running, finished ones
    /// report their exit code through [`Runtime::state`]).
    pub fn adopt(&self) -> Result<Vec<ContainerHandle>, RuntimeError> {
        let dir = self.config.state_dir.join("containers");
        let mut out = vec![];
        for e in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            match self.handle(&name) {
                Ok(h) => out.push(h),
                Err(err) => tracing::warn!(container = %name, error = %err, "skipping unreadable container state"),
            }
        }
        out.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Runs `args` inside the running container (`crun exec`: its namespaces, cgroup, user and environment),
    /// as a health check does. `None` when it did not finish within `timeout`: the process started inside
    /// the container is then killed too, not only the `crun exec` that waits for it.
    pub async fn exec(&self, id: &str, args: &[String], timeout: Duration) -> Result<Option<i32>, RuntimeError> {
        let runtime = self.config.runtime_path();
        let pid_file = self.container_dir(id).join(format!("exec-{}.pid", uuid::Uuid::new_v4().simple()));
        let mut child = tokio::process::Command::new(&runtime)
            .arg("--root")
            .arg(&self.config.crun_root)
            .arg("exec")
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(io_err(&runtime))?;
        let result = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => {
                use std::os::unix::process::ExitStatusExt;
                Ok(Some(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))))
            }
            Ok(Err(e)) => Err(RuntimeError::Io { path: runtime, source: e }),
            Err(_) => {
                if let Some(pid) = read_pid(&pid_file).filter(|p| *p > 0) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.kill().await;
                Ok(None)
            }
        };
        let _ = fs::remove_file(&pid_file);
        result
    }

    /// A reader over the container's log from its beginning; call [`LogReader::follow`] to tail it.
    pub fn logs(&self, id: &str) -> LogReader {
        LogReader::open(self.log_path(id))
    }
}
