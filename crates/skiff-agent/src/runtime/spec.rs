//! What a container runs, resolved from its image's config, its ECS container definition and RunTask's
//! overrides exactly as ECS (through Docker) combines them. Pure: no root, no processes; the only I/O is
//! reading the image's `/etc/passwd` and `/etc/group` from the root filesystem (confined to it).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use super::SpecError;

/// `PATH` Docker sets when the image does not.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// ECS's default and maximum `stopTimeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Docker's minimum container memory (ECS rejects less too).
pub const MIN_MEMORY_MIB: u64 = 6;
/// Fargate's default `nofile` ulimit (soft and hard), clamped to the host's maximum.
pub const DEFAULT_NOFILE: u64 = 65535;

/// The parts of an OCI image config (`config` of the image configuration) a container start uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
}

/// One ECS ulimit (`{"name": "nofile", "softLimit": …, "hardLimit": …}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// One `linuxParameters.tmpfs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    pub container_path: String,
    pub size_mib: u64,
    pub mount_options: Vec<String>,
}

/// The members of an ECS container definition that decide how its process runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDefinitionInput {
    pub name: String,
    pub entry_point: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// `environment` as (name, value) pairs in definition order.
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub readonly_root_filesystem: bool,
    pub ulimits: Vec<Ulimit>,
    /// `linuxParameters.capabilities.add` / `.drop` (names with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init_process_enabled: bool,
    pub tmpfs: Vec<Tmpfs>,
    pub hostname: Option<String>,
    /// Hard limit in MiB.
    pub memory: Option<u64>,
    /// Soft limit in MiB.
    pub memory_reservation: Option<u64>,
    /// CPU units (1024 = one core).
    pub cpu: Option<u64>,
    /// Seconds.
    pub stop_timeout: Option<u64>,
}

/// A RunTask `containerOverrides` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerOverrideInput {
    pub command: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub cpu: Option<u64>,
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
}

/// What the agent injects into every container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskContext {
    /// `ECS_CONTAINER_METADATA_URI_V4` (and the v3 `ECS_CONTAINER_METADATA_URI`).
    pub metadata_uri: String,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` unless the definition sets them.
    pub region: String,
    /// Hostname when the definition gives none (Fargate: `ip-10-0-1-23.ec2.internal` style).
    pub default_hostname: String,
}

/// The resolved user a process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From `/etc/passwd`, for `HOME` when the environment does not set it.
    pub home: Option<String>,
}

/// Everything the OCI bundle builder needs about one container's process and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub args: Vec<String>,
    /// `KEY=value`, sorted by key (deterministic specs).
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub hostname: String,
    pub readonly_rootfs: bool,
    /// (name, soft, hard) already clamped to the host's maximums.
    pub rlimits: Vec<Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init: bool,
    pub tmpfs: Vec<Tmpfs>,
    pub memory_limit_bytes: Option<u64>,
    pub memory_reservation_bytes: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// Signal number for StopTask (the image's `STOPSIGNAL`, else SIGTERM).
    pub stop_signal: i32,
    pub stop_timeout: Duration,
}

impl From<&crate::images::ImageConfig> for ImageConfig {
    fn from(c: &crate::images::ImageConfig) -> ImageConfig {
        ImageConfig {
            env: c.env.clone(),
            entrypoint: c.entrypoint.clone(),
            cmd: c.cmd.clone(),
            working_dir: c.working_dir.clone(),
            user: c.user.clone(),
            stop_signal: c.stop_signal.clone(),
        }
    }
}

impl From<&skiff_model::task_definition::ContainerDefinition> for ContainerDefinitionInput {
    /// The members that decide how the process runs (negative numbers from the wire count as absent).
    fn from(d: &skiff_model::task_definition::ContainerDefinition) -> ContainerDefinitionInput {
        let pos = |v: Option<i32>| v.and_then(|n| u64::try_from(n).ok());
        let lp = d.linux_parameters.as_ref();
        let caps = lp.and_then(|l| l.capabilities.as_ref());
        ContainerDefinitionInput {
            name: d.name.clone().unwrap_or_default(),
            entry_point: d.entry_point.clone(),
            command: d.command.clone(),
            environment: d
                .environment
                .iter()
                .flatten()
                .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
                .collect(),
            working_directory: d.working_directory.clone(),
            user: d.user.clone(),
            readonly_root_filesystem: d.readonly_root_filesystem.unwrap_or(false),
            ulimits: d
                .ulimits
                .iter()
                .flatten()
                .map(|u| Ulimit {
                    name: u.name.as_str().to_string(),
                    soft: u64::try_from(u.soft_limit).unwrap_or(0),
                    hard: u64::try_from(u.hard_limit).unwrap_or(0),
                })
                .collect(),
            cap_add: caps.and_then(|c| c.add.clone()).unwrap_or_default(),
            cap_drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
            init_process_enabled: lp.and_then(|l| l.init_process_enabled).unwrap_or(false),
            tmpfs: lp
                .and_then(|l| l.tmpfs.as_ref())
                .into_iter()
                .flatten()
                .map(|t| Tmpfs {
                    container_path: t.container_path.clone(),
                    size_mib: u64::try_from(t.size).unwrap_or(0),
                    mount_options: t.mount_options.clone().unwrap_or_default(),
                })
                .collect(),
            hostname: d.hostname.clone(),
            memory: pos(d.memory),
            memory_reservation: pos(d.memory_reservation),
            cpu: pos(d.cpu),
            stop_timeout: pos(d.stop_timeout),
        }
    }
}

/// The largest rlimits this host lets the agent hand out (without CAP_SYS_RESOURCE the hard limits of the
/// agent itself: nofile 20000 / nproc 96365 on the reference machines, DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub nofile_max: u64,
    pub nproc_max: u64,
}

impl HostLimits {
    /// The agent process's own hard limits.
    pub fn detect() -> HostLimits {
        use nix::sys::resource::{getrlimit, Resource};
        let hard = |r| getrlimit(r).map(|(_, h)| h).unwrap_or(u64::MAX);
        HostLimits { nofile_max: hard(Resource::RLIMIT_NOFILE), nproc_max: hard(Resource::RLIMIT_NPROC) }
    }
}

/// Resolve one container: image defaults < task definition < overrides, as ECS and Docker do.
///
/// * `entryPoint` replaces the image's ENTRYPOINT and clears its CMD; `command` (override first) replaces CMD.
/// * environment: image < definition < override; then `ECS_CONTAINER_METADATA_URI(_V4)` and
///   `AWS_EXECUTION_ENV=AWS_ECS_FARGATE` (always the agent's), `AWS_REGION` / `AWS_DEFAULT_REGION` (unless set),
///   `PATH` (Docker's default unless set), `HOSTNAME`, and `HOME` from `/etc/passwd` unless set.
/// * `user` is `name`, `uid`, `name:group`, `uid:gid` (any mix), resolved against `rootfs`'s `/etc/passwd` and
///   `/etc/group`; supplementary groups come from `/etc/group` as Docker does.
pub fn resolve_container(
    image: &ImageConfig,
    def: &ContainerDefinitionInput,
    ovr: &ContainerOverrideInput,
    ctx: &TaskContext,
    rootfs: &Path,
    host: HostLimits,
) -> Result<ContainerSpec, SpecError> {
    let args = resolve_args(image, def, ovr);
    if args.is_empty() {
        return Err(SpecError::NoCommand { container: def.name.clone() });
    }

    let user_str = def.user.clone().or_else(|| image.user.clone()).filter(|u| !u.is_empty());
    let user = match user_str {
        Some(u) => resolve_user(rootfs, &u)?,
        None => resolve_user(rootfs, "0").unwrap_or(ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: Some("/root".into()),
        }),
    };
    let hostname = def.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| ctx.default_hostname.clone());

    let mut env = BTreeMap::new();
    for kv in &image.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.insert(k.to_string(), v.to_string());
    }
    for (k, v) in def.environment.iter().chain(ovr.environment.iter()) {
        env.insert(k.clone(), v.clone());
    }
    if !ctx.metadata_uri.is_empty() {
        env.insert("ECS_CONTAINER_METADATA_URI_V4".into(), ctx.metadata_uri.clone());
        // v3 (Fargate platform 1.4 sets both): the same token under /v3/.
        env.insert("ECS_CONTAINER_METADATA_URI".into(), ctx.metadata_uri.replacen("/v4/", "/v3/", 1));
    }
    env.insert("AWS_EXECUTION_ENV".into(), "AWS_ECS_FARGATE".into());
    if !ctx.region.is_empty() {
        env.entry("AWS_REGION".into()).or_insert_with(|| ctx.region.clone());
        env.entry("AWS_DEFAULT_REGION".into()).or_insert_with(|| ctx.region.clone());
    }
    env.entry("PATH".into()).or_insert_with(|| DEFAULT_PATH.to_string());
    env.insert("HOSTNAME".into(), hostname.clone());
    env.entry("HOME".into()).or_insert_with(|| user.home.clone().unwrap_or_else(|| "/".into()));
    let env = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();

    let cwd = def
        .working_directory
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::Invalid(format!("workingDirectory {cwd:?} is not an absolute path")));
    }

    let rlimits = resolve_ulimits(&def.ulimits, host)?;
    for cap in def.cap_add.iter().chain(def.cap_drop.iter()) {
        super::bundle::parse_capability(cap)?;
    }

    let memory = ovr.memory.or(def.memory);
    let reservation = ovr.memory_reservation.or(def.memory_reservation);
    for m in [memory, reservation].into_iter().flatten() {
        if m < MIN_MEMORY_MIB {
            return Err(SpecError::Invalid(format!(
                "container {}: memory {m} MiB is below the minimum of {MIN_MEMORY_MIB} MiB",
                def.name
            )));
        }
    }
    if let (Some(m), Some(r)) = (memory, reservation) {
        if r > m {
            return Err(SpecError::Invalid(format!(
                "container {}: memoryReservation {r} MiB exceeds memory {m} MiB",
                def.name
            )));
        }
    }
    let cpu = ovr.cpu.or(def.cpu).filter(|c| *c > 0).map(|c| c.max(2));
    for t in &def.tmpfs {
        if !t.container_path.starts_with('/') || t.size_mib == 0 {
            return Err(SpecError::Invalid(format!(
                "tmpfs {:?}: containerPath must be absolute and size positive",
                t.container_path
            )));
        }
    }

    let stop_signal = match image.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s)?,
        None => libc_sig::SIGTERM,
    };
    let stop_timeout = def.stop_timeout.map(Duration::from_secs).unwrap_or(DEFAULT_STOP_TIMEOUT).min(MAX_STOP_TIMEOUT);

    Ok(ContainerSpec {
        name: def.name.clone(),
        args,
        env,
        cwd,
        user,
        hostname,
        readonly_rootfs: def.readonly_root_filesystem,
        rlimits,
        cap_add: def.cap_add.clone(),
        cap_drop: def.cap_drop.clone(),
        init: def.init_process_enabled,
        tmpfs: def.tmpfs.clone(),
        memory_limit_bytes: memory.map(|m| m * 1024 * 1024),
        memory_reservation_bytes: reservation.map(|m| m * 1024 * 1024),
        cpu_shares: cpu,
        stop_signal,
        stop_timeout,
    })
}

/// ENTRYPOINT + CMD after Docker's rules (ECS passes `entryPoint` as Docker's `Entrypoint`, `command` as `Cmd`).
pub fn resolve_args(image: &ImageConfig, def: &ContainerDefinitionInput, ovr: &ContainerOverrideInput) -> Vec<String> {
    let command =
        ovr.command.clone().filter(|c| !c.is_empty()).or_else(|| def.command.clone().filter(|c| !c.is_empty()));
    let (entrypoint, cmd) = match &def.entry_point {
        // An explicit entrypoint resets the image's CMD (Docker: "--entrypoint clears CMD").
        Some(ep) => (ep.clone(), command.unwrap_or_default()),
        None => {
            (image.entrypoint.clone().unwrap_or_default(), command.or_else(|| image.cmd.clone()).unwrap_or_default())
        }
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// ECS ulimits plus Fargate's default nofile, clamped to what the host allows.
pub fn resolve_ulimits(ulimits: &[Ulimit], host: HostLimits) -> Result<Vec<Ulimit>, SpecError> {
    let mut out: BTreeMap<String, Ulimit> = BTreeMap::new();
    out.insert("nofile".into(), Ulimit { name: "nofile".into(), soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE });
    for u in ulimits {
        if skiff_model::task_definition::UlimitName::from_wire(&u.name).is_none() {
            return Err(SpecError::Invalid(format!("unknown ulimit name {:?}", u.name)));
        }
        if u.soft > u.hard {
            return Err(SpecError::Invalid(format!(
                "ulimit {}: softLimit {} exceeds hardLimit {}",
                u.name, u.soft, u.hard
            )));
        }
        out.insert(u.name.clone(), u.clone());
    }
    Ok(out
        .into_values()
        .map(|mut u| {
            let max = match u.name.as_str() {
                "nofile" => host.nofile_max,
                "nproc" => host.nproc_max,
                _ => u64::MAX,
            };
            u.hard = u.hard.min(max);
            u.soft = u.soft.min(u.hard);
            u
        })
        .collect())
}

/// Signal numbers this module names (Linux x86_64/aarch64 numbering).
pub mod libc_sig {
    pub const SIGHUP: i32 = 1;
    pub const SIGINT: i32 = 2;
    pub const SIGQUIT: i32 = 3;
    pub const SIGKILL: i32 = 9;
    pub const SIGUSR1: i32 = 10;
    pub const SIGUSR2: i32 = 12;
    pub const SIGTERM: i32 = 15;
}

/// `SIGTERM`, `TERM` or `15` → 15.
pub fn parse_signal(s: &str) -> Result<i32, SpecError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| SpecError::Invalid(format!("unknown stop signal {s:?}")))
}

fn open_in_root(rootfs: &Path, rel: &str) -> Option<String> {
    let root: OwnedFd =
        rustix::fs::open(rootfs, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let fd = rustix::fs::openat2(
        &root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&mut f, 16 << 20), &mut s).ok()?;
    Some(s)
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
            })
        })
        .collect()
}

/// (name, gid, members)
fn parse_group(text: &str) -> Vec<(String, u32, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
            Some((f[0].to_string(), f[2].parse().ok()?, members))
        })
        .collect()
}

/// Resolve `user[:group]` the way Docker (runc's libcontainer/user) does.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, SpecError> {
    let passwd = open_in_root(rootfs, "etc/passwd").map(|t| parse_passwd(&t)).unwrap_or_default();
    let groups = open_in_root(rootfs, "etc/group").map(|t| parse_group(&t)).unwrap_or_default();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => passwd.iter().find(|e| e.name == user_part),
    };
    let (uid, mut gid, name, home) = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name.clone()), Some(e.home.clone())),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => return Err(SpecError::UnknownUser { user: user_part.to_string() }),
    };
    if let Some(g) = group_part {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|(n, _, _)| n == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| SpecError::UnknownGroup { group: g.to_string() })?,
        };
    }
    let mut additional_gids: Vec<u32> = match &name {
        Some(n) if group_part.is_none() => {
            groups.iter().filter(|(_, _, members)| members.contains(n)).map(|(_, gid, _)| *gid).collect()
        }
        _ => vec![],
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("etc")).expect("mkdir");
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .expect("passwd");
        std::fs::write(d.path().join("etc/group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app\nnogroup:x:65534:\n")
            .expect("group");
        d
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn host() -> HostLimits {
        HostLimits { nofile_max: 20000, nproc_max: 96365 }
    }

    #[test]
    fn args_follow_docker_rules() {
        let image = ImageConfig { entrypoint: Some(s(&["/ep"])), cmd: Some(s(&["img-cmd"])), ..Default::default() };
        type Case<'a> = (Option<Vec<String>>, Option<Vec<String>>, Option<Vec<String>>, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (None, None, None, vec!["/ep", "img-cmd"]),
            (None, Some(s(&["def"])), None, vec!["/ep", "def"]),
            (None, Some(s(&["def"])), Some(s(&["ovr"])), vec!["/ep", "ovr"]),
            (Some(s(&["/new"])), None, None, vec!["/new"]),
            (Some(s(&["/new"])), Some(s(&["def"])), None, vec!["/new", "def"]),
            (Some(s(&["/new"])), None, Some(s(&["ovr"])), vec!["/new", "ovr"]),
            (Some(vec![]), Some(s(&["sh"])), None, vec!["sh"]),
        ];
        for (ep, cmd, ocmd, want) in cases {
            let def = ContainerDefinitionInput { entry_point: ep.clone(), command: cmd.clone(), ..Default::default() };
            let ovr = ContainerOverrideInput { command: ocmd.clone(), ..Default::default() };
            assert_eq!(resolve_args(&image, &def, &ovr), s(&want), "ep={ep:?} cmd={cmd:?} ovr={ocmd:?}");
        }
    }

    #[test]
    fn env_layers_and_injected() {
        let r = rootfs();
        let image = ImageConfig {
            env: s(&["A=image", "B=image", "PATH=/img/bin"]),
            cmd: Some(s(&["x"])),
            ..Default::default()
        };
        let def = ContainerDefinitionInput {
            name: "web".into(),
            environment: vec![
                ("B".into(), "def".into()),
                ("C".into(), "def".into()),
                ("AWS_REGION".into(), "eu-west-1".into()),
            ],
            ..Default::default()
        };
        let ovr = ContainerOverrideInput { environment: vec![("C".into(), "ovr".into())], ..Default::default() };
        let ctx = TaskContext {
            metadata_uri: "http://169.254.170.2/v4/abc".into(),
            region: "us-east-1".into(),
            default_hostname: "ip-10-0-0-5".into(),
        };
        let spec = resolve_container(&image, &def, &ovr, &ctx, r.path(), host()).expect("resolve");
        let get = |k: &str| spec.env.iter().find_map(|e| e.strip_prefix(&format!("{k}=")).map(str::to_string));
        assert_eq!(get("A").as_deref(), Some("image"));
        assert_eq!(get("B").as_deref(), Some("def"));
        assert_eq!(get("C").as_deref(), Some("ovr"));
        assert_eq!(get("PATH").as_deref(), Some("/img/bin"));
        assert_eq!(get("AWS_REGION").as_deref(), Some("eu-west-1"));
        assert_eq!(get("AWS_DEFAULT_REGION").as_deref(), Some("us-east-1"));
        assert_eq!(get("AWS_EXECUTION_ENV").as_deref(), Some("AWS_ECS_FARGATE"));
        assert_eq!(get("ECS_CONTAINER_METADATA_URI_V4").as_deref(), Some("http://169.254.170.2/v4/abc"));
        assert_eq!(get("HOME").as_deref(), Some("/root"));
        assert_eq!(get("HOSTNAME").as_deref(), Some("ip-10-0-0-5"));
        assert_eq!(spec.cwd, "/");
        assert_eq!(spec.stop_signal, 15);
        assert_eq!(spec.stop_timeout, DEFAULT_STOP_TIMEOUT);
    }

    #[test]
    fn users_resolve_against_rootfs() {
        let r = rootfs();
        let app = resolve_user(r.path(), "app").expect("app");
        assert_eq!((app.uid, app.gid, app.additional_gids.clone()), (1000, 1000, vec![10]));
        assert_eq!(app.home.as_deref(), Some("/home/app"));
        let u = resolve_user(r.path(), "app:nogroup").expect("app:nogroup");
        assert_eq!((u.uid, u.gid), (1000, 65534));
        let u = resolve_user(r.path(), "4242:4243").expect("numeric");
        assert_eq!((u.uid, u.gid), (4242, 4243));
        let u = resolve_user(r.path(), "65534").expect("numeric known");
        assert_eq!((u.uid, u.gid), (65534, 65534));
        let e = resolve_user(r.path(), "ghost").expect_err("unknown");
        assert!(e.to_string().contains("unable to find user ghost"), "{e}");
        assert!(e.to_string().starts_with("CannotStartContainerError"), "{e}");
        assert!(resolve_user(r.path(), "app:nogrp").is_err());
    }

    #[test]
    fn passwd_symlink_cannot_escape_rootfs() {
        let r = rootfs();
        std::fs::remove_file(r.path().join("etc/passwd")).expect("rm");
        std::os::unix::fs::symlink("/etc/passwd", r.path().join("etc/passwd")).expect("symlink");
        // Resolved inside the root: /etc/passwd → <rootfs>/etc/passwd → itself → no host file read.
        // (The host's /etc/passwd has root; reading it would resolve "root".)
        assert!(resolve_user(r.path(), "root").is_err());
    }

    #[test]
    fn maps_the_model_container_definition() {
        let d: skiff_model::task_definition::ContainerDefinition = serde_json::from_value(serde_json::json!({
            "name": "web",
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["echo hi"],
            "environment": [{"name": "A", "value": "1"}],
            "user": "app",
            "readonlyRootFilesystem": true,
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}, "initProcessEnabled": true,
                                "tmpfs": [{"containerPath": "/t", "size": 8}]},
            "memory": 64, "memoryReservation": 32, "cpu": 256, "stopTimeout": 10
        }))
        .expect("model");
        let i = ContainerDefinitionInput::from(&d);
        assert_eq!(i.name, "web");
        assert_eq!(i.environment, vec![("A".to_string(), "1".to_string())]);
        assert_eq!(i.ulimits, vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }]);
        assert_eq!(i.cap_add, vec!["SYS_PTRACE".to_string()]);
        assert!(i.init_process_enabled && i.readonly_root_filesystem);
        assert_eq!(i.tmpfs[0].size_mib, 8);
        assert_eq!((i.memory, i.memory_reservation, i.cpu, i.stop_timeout), (Some(64), Some(32), Some(256), Some(10)));
    }

    #[test]
    fn ulimits_clamped_and_validated() {
        let u = resolve_ulimits(&[Ulimit { name: "nproc".into(), soft: 200000, hard: 200000 }], host()).expect("ok");
        assert_eq!(
            u,
            vec![
                Ulimit { name: "nofile".into(), soft: 20000, hard: 20000 },
                Ulimit { name: "nproc".into(), soft: 96365, hard: 96365 },
            ]
        );
        assert!(resolve_ulimits(&[Ulimit { name: "bogus".into(), soft: 1, hard: 1 }], host()).is_err());
        assert!(resolve_ulimits(&[Ulimit { name: "nofile".into(), soft: 2, hard: 1 }], host()).is_err());
        let u = resolve_ulimits(&[Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 }], host()).expect("ok");
        assert_eq!(u, vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 4096 }]);
    }

    #[test]
    fn limits_overrides_and_errors() {
        let r = rootfs();
        let image = ImageConfig {
            cmd: Some(s(&["x"])),
            stop_signal: Some("SIGQUIT".into()),
            user: Some("app".into()),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        let def = ContainerDefinitionInput {
            name: "c".into(),
            memory: Some(64),
            memory_reservation: Some(32),
            cpu: Some(256),
            stop_timeout: Some(500),
            ..Default::default()
        };
        let ovr = ContainerOverrideInput { memory: Some(128), cpu: Some(1), ..Default::default() };
        let spec = resolve_container(&image, &def, &ovr, &TaskContext::default(), r.path(), host()).expect("ok");
        assert_eq!(spec.memory_limit_bytes, Some(128 << 20));
        assert_eq!(spec.memory_reservation_bytes, Some(32 << 20));
        assert_eq!(spec.cpu_shares, Some(2));
        assert_eq!(spec.stop_signal, 3);
        assert_eq!(spec.stop_timeout, MAX_STOP_TIMEOUT);
        assert_eq!(spec.user.uid, 1000);
        assert_eq!(spec.cwd, "/srv");

        let none = ImageConfig::default();
        let e = resolve_container(
            &none,
            &def,
            &ContainerOverrideInput::default(),
            &TaskContext::default(),
            r.path(),
            host(),
        );
        assert!(matches!(e, Err(SpecError::NoCommand { .. })));
        let tiny = ContainerDefinitionInput { memory: Some(4), command: Some(s(&["x"])), ..Default::default() };
        assert!(resolve_container(
            &none,
            &tiny,
            &ContainerOverrideInput::default(),
            &TaskContext::default(),
            r.path(),
            host()
        )
        .is_err());
        let badcap = ContainerDefinitionInput {
            cap_add: vec!["NOT_A_CAP".into()],
            command: Some(s(&["x"])),
            ..Default::default()
        };
        assert!(resolve_container(
            &none,
            &badcap,
            &ContainerOverrideInput::default(),
            &TaskContext::default(),
            r.path(),
            host()
        )
        .is_err());
        assert_eq!(parse_signal("TERM").expect("TERM"), 15);
        assert_eq!(parse_signal("9").expect("9"), 9);
        assert!(parse_signal("SIGBOGUS").is_err());
    }
}
