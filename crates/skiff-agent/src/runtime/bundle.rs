//! A resolved [`ContainerSpec`] → an OCI runtime spec (`config.json`) with Docker's hardening defaults:
//! the default capability set ± adds/drops, `noNewPrivileges`, the default seccomp profile, masked and
//! read-only `/proc` paths, Docker's default mounts and device rules, an explicit `cgroupsPath`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::spec::ContainerSpec;
use super::SpecError;

/// Where the init binary is bind-mounted when `initProcessEnabled` (Docker uses `/sbin/docker-init`; `/dev`
/// is the runtime's own tmpfs, so nothing is written into the image's filesystem).
pub const INIT_PATH_IN_CONTAINER: &str = "/dev/init";
/// Debian's `tini` package: a static tini that runs in any rootfs.
pub const DEFAULT_INIT_BINARY: &str = "/usr/bin/tini-static";
/// Default pids limit of a container when the caller gives none.
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Docker's / runc's default masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's / runc's default read-only paths.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A bind mount into the container (a task volume, `/etc/hosts`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// The host side of a bundle: everything that is not in the [`ContainerSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOptions {
    /// Absolute, not a symlink (DESIGN.md §5).
    pub rootfs: PathBuf,
    /// e.g. `/skiff/<task-id>/<container>` (see [`super::cgroup::container_cgroups_path`]).
    pub cgroups_path: String,
    /// The task's network namespace (`/run/netns/…`); `None` → a fresh, empty one.
    pub netns: Option<PathBuf>,
    pub hosts_file: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    pub volumes: Vec<BindMount>,
    /// Static init binary on the host, bind-mounted at [`INIT_PATH_IN_CONTAINER`] for `initProcessEnabled`.
    pub init_binary: PathBuf,
    pub pids_limit: Option<i64>,
    /// Adds a cgroup namespace (cgroup v2 hosts, as Docker does there).
    pub cgroup_v2: bool,
}

impl BundleOptions {
    pub fn new(rootfs: impl Into<PathBuf>, cgroups_path: impl Into<String>) -> BundleOptions {
        BundleOptions {
            rootfs: rootfs.into(),
            cgroups_path: cgroups_path.into(),
            netns: None,
            hosts_file: None,
            resolv_conf: None,
            volumes: vec![],
            init_binary: PathBuf::from(DEFAULT_INIT_BINARY),
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
            cgroup_v2: super::cgroup::CgroupLayout::detect().is_v2(),
        }
    }
}

/// `SYS_PTRACE` / `CAP_SYS_PTRACE` (any case) → the capability.
pub fn parse_capability(name: &str) -> Result<Capability, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    Capability::from_str(bare).map_err(|_| SpecError::Invalid(format!("unknown capability {name:?}")))
}

fn all_capabilities() -> HashSet<Capability> {
    // Every name the kernels we run on know (the oci-spec enum may know newer ones: harmless).
    [
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
    ]
    .iter()
    .filter_map(|c| Capability::from_str(c).ok())
    .collect()
}

/// Docker's default set, then adds, then drops (`ALL` allowed in both, as Docker).
pub fn effective_capabilities(add: &[String], drop: &[String]) -> Result<HashSet<Capability>, SpecError> {
    let mut caps: HashSet<Capability> =
        DEFAULT_CAPABILITIES.iter().map(|c| parse_capability(c)).collect::<Result<_, _>>()?;
    for a in add {
        if a.eq_ignore_ascii_case("ALL") {
            caps.extend(all_capabilities());
        } else {
            caps.insert(parse_capability(a)?);
        }
    }
    for d in drop {
        if d.eq_ignore_ascii_case("ALL") {
            caps.clear();
            // Docker: with drop ALL, explicit adds still apply.
            for a in add.iter().filter(|a| !a.eq_ignore_ascii_case("ALL")) {
                caps.insert(parse_capability(a)?);
            }
        } else {
            caps.remove(&parse_capability(d)?);
        }
    }
    Ok(caps)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// The OCI runtime spec of one container.
pub fn build_oci_spec(spec: &ContainerSpec, opts: &BundleOptions) -> Result<Spec, SpecError> {
    if !opts.rootfs.is_absolute() {
        return Err(SpecError::Invalid(format!("rootfs {} is not absolute", opts.rootfs.display())));
    }
    if !opts.cgroups_path.starts_with('/') {
        return Err(SpecError::Invalid(format!("cgroupsPath {:?} is not absolute", opts.cgroups_path)));
    }

    let caps = effective_capabilities(&spec.cap_add, &spec.cap_drop)?;
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(HashSet::new())
        .ambient(HashSet::new())
        .build()?;

    let rlimits = spec
        .rlimits
        .iter()
        .filter_map(|u| {
            rlimit_type(&u.name).map(|t| PosixRlimitBuilder::default().typ(t).soft(u.soft).hard(u.hard).build())
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut args = spec.args.clone();
    if spec.init {
        if !opts.init_binary.is_file() {
            return Err(SpecError::Invalid(format!(
                "initProcessEnabled needs an init binary at {} (Debian package tini)",
                opts.init_binary.display()
            )));
        }
        // tini as PID 1: forwards signals to the child, reaps zombies, exits with the child's status.
        let mut with_init = vec![INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()];
        with_init.append(&mut args);
        args = with_init;
    }

    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(spec.user.uid)
                .gid(spec.user.gid)
                .additional_gids(spec.user.additional_gids.clone())
                .build()?,
        )
        .args(args)
        .env(spec.env.clone())
        .cwd(spec.cwd.clone())
        .capabilities(capabilities)
        .rlimits(rlimits)
        .no_new_privileges(true)
        .build()?;

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"])?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        )?,
        mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"])?,
        mount("/sys/fs/cgroup", "cgroup", "cgroup", &["nosuid", "noexec", "nodev", "relatime", "ro"])?,
        mount("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"])?,
        mount("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])?,
    ];
    for t in &spec.tmpfs {
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into()];
        o.extend(t.mount_options.iter().cloned());
        o.push(format!("size={}m", t.size_mib));
        mounts.push(
            MountBuilder::default().destination(&t.container_path).typ("tmpfs").source("tmpfs").options(o).build()?,
        );
    }
    let bind = |src: &Path, dest: &str, ro: bool| -> Result<Mount, SpecError> {
        let mut o = vec!["rbind".to_string(), "rprivate".to_string()];
        if ro {
            o.push("ro".into());
        }
        Ok(MountBuilder::default().destination(dest).typ("bind").source(src).options(o).build()?)
    };
    if let Some(h) = &opts.hosts_file {
        mounts.push(bind(h, "/etc/hosts", false)?);
    }
    if let Some(r) = &opts.resolv_conf {
        mounts.push(bind(r, "/etc/resolv.conf", false)?);
    }
    for v in &opts.volumes {
        if !v.destination.starts_with('/') {
            return Err(SpecError::Invalid(format!("volume destination {:?} is not absolute", v.destination)));
        }
        mounts.push(bind(&v.source, &v.destination, v.readonly)?);
    }
    if spec.init {
        mounts.push(bind(&opts.init_binary, INIT_PATH_IN_CONTAINER, true)?);
    }

    let mut namespaces = vec![
        LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Pid).build()?,
        LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Ipc).build()?,
        LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Uts).build()?,
        LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Mount).build()?,
    ];
    namespaces.push(match &opts.netns {
        Some(p) => LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).path(p).build()?,
        None => LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network).build()?,
    });
    if opts.cgroup_v2 {
        namespaces.push(LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Cgroup).build()?);
    }

    let dev = |allow: bool, typ: Option<LinuxDeviceType>, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default().allow(allow).access(access);
        if let Some(t) = typ {
            b = b.typ(t);
        }
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build()
    };
    let c = Some(LinuxDeviceType::C);
    let devices = vec![
        dev(false, None, None, None, "rwm")?,
        dev(true, c, None, None, "m")?,
        dev(true, Some(LinuxDeviceType::B), None, None, "m")?,
        dev(true, c, Some(1), Some(3), "rwm")?, // null
        dev(true, c, Some(1), Some(5), "rwm")?, // zero
        dev(true, c, Some(1), Some(7), "rwm")?, // full
        dev(true, c, Some(1), Some(8), "rwm")?, // random
        dev(true, c, Some(1), Some(9), "rwm")?, // urandom
        dev(true, c, Some(5), Some(0), "rwm")?, // tty
        dev(true, c, Some(5), Some(2), "rwm")?, // ptmx
        dev(true, c, Some(136), None, "rwm")?,  // pts
    ];

    let mut resources = LinuxResourcesBuilder::default().devices(devices);
    if spec.memory_limit_bytes.is_some() || spec.memory_reservation_bytes.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(l) = spec.memory_limit_bytes {
            // No swap beyond the limit (ECS: swap only with maxSwap, which Fargate lacks).
            m = m.limit(l as i64).swap(l as i64);
        }
        if let Some(r) = spec.memory_reservation_bytes {
            m = m.reservation(r as i64);
        }
        resources = resources.memory(m.build()?);
    }
    if let Some(shares) = spec.cpu_shares {
        resources = resources.cpu(LinuxCpuBuilder::default().shares(shares).build()?);
    }
    if let Some(p) = opts.pids_limit {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }

    let linux = LinuxBuilder::default()
        .cgroups_path(PathBuf::from(&opts.cgroups_path))
        .namespaces(namespaces)
        .resources(resources.build()?)
        .masked_paths(MASKED_PATHS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .readonly_paths(READONLY_PATHS.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .seccomp(super::seccomp::default_profile(&effective_capabilities(&spec.cap_add, &spec.cap_drop)?)?)
        .build()?;

    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(RootBuilder::default().path(&opts.rootfs).readonly(spec.readonly_rootfs).build()?)
        .hostname(spec.hostname.clone())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}

/// Write `config.json` into `bundle_dir`.
pub fn write_bundle_config(bundle_dir: &Path, spec: &Spec) -> Result<(), SpecError> {
    let json = serde_json::to_vec_pretty(spec).map_err(|e| SpecError::Invalid(format!("serialize spec: {e}")))?;
    let tmp = bundle_dir.join("config.json.tmp");
    std::fs::write(&tmp, json).map_err(|e| SpecError::Io { path: tmp.clone(), source: e })?;
    std::fs::rename(&tmp, bundle_dir.join("config.json"))
        .map_err(|e| SpecError::Io { path: bundle_dir.join("config.json"), source: e })
}

#[cfg(test)]
mod tests {
    use super::super::spec::{ResolvedUser, Tmpfs, Ulimit};
    use super::*;
    use std::time::Duration;

    fn cspec() -> ContainerSpec {
        ContainerSpec {
            name: "web".into(),
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: ResolvedUser { uid: 1000, gid: 1000, additional_gids: vec![10], home: None },
            hostname: "ip-10-0-0-9".into(),
            readonly_rootfs: true,
            rlimits: vec![Ulimit { name: "nofile".into(), soft: 1024, hard: 2048 }],
            cap_add: vec!["SYS_PTRACE".into()],
            cap_drop: vec!["NET_RAW".into()],
            init: false,
            tmpfs: vec![Tmpfs {
                container_path: "/scratch".into(),
                size_mib: 16,
                mount_options: vec!["noexec".into()],
            }],
            memory_limit_bytes: Some(32 << 20),
            memory_reservation_bytes: None,
            cpu_shares: Some(256),
            stop_signal: 15,
            stop_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn capabilities_add_drop_all() {
        let c = effective_capabilities(&["SYS_PTRACE".into()], &["NET_RAW".into()]).expect("caps");
        assert!(c.contains(&Capability::SysPtrace) && !c.contains(&Capability::NetRaw));
        assert_eq!(c.len(), DEFAULT_CAPABILITIES.len());
        let c = effective_capabilities(&["CAP_KILL".into()], &["ALL".into()]).expect("caps");
        assert_eq!(c, HashSet::from([Capability::Kill]));
        assert!(effective_capabilities(&["ALL".into()], &[]).expect("all").contains(&Capability::SysAdmin));
        assert!(parse_capability("net_admin").is_ok());
        assert!(parse_capability("NOPE").is_err());
    }

    #[test]
    fn spec_has_hardening_and_limits() {
        let mut o = BundleOptions::new("/var/lib/skiff/rootfs", "/skiff/t1/web");
        o.netns = Some("/run/netns/t1".into());
        o.hosts_file = Some("/tmp/hosts".into());
        o.cgroup_v2 = false;
        let s = build_oci_spec(&cspec(), &o).expect("spec");
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["process"]["noNewPrivileges"], true);
        assert_eq!(v["process"]["user"]["uid"], 1000);
        assert_eq!(v["process"]["user"]["additionalGids"][0], 10);
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["hostname"], "ip-10-0-0-9");
        assert_eq!(v["linux"]["cgroupsPath"], "/skiff/t1/web");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 32 << 20);
        assert_eq!(v["linux"]["resources"]["cpu"]["shares"], 256);
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], DEFAULT_PIDS_LIMIT);
        assert!(v["linux"]["maskedPaths"].as_array().expect("masked").iter().any(|p| p == "/proc/kcore"));
        assert!(v["linux"]["readonlyPaths"].as_array().expect("ro").iter().any(|p| p == "/proc/sys"));
        let ns = v["linux"]["namespaces"].as_array().expect("ns");
        assert!(ns.iter().any(|n| n["type"] == "network" && n["path"] == "/run/netns/t1"));
        assert!(!ns.iter().any(|n| n["type"] == "cgroup"));
        let mounts = v["mounts"].as_array().expect("mounts");
        assert!(mounts.iter().any(|m| m["destination"] == "/etc/hosts" && m["type"] == "bind"));
        assert!(mounts
            .iter()
            .any(|m| m["destination"] == "/scratch"
                && m["options"].as_array().expect("o").iter().any(|x| x == "size=16m")));
        let caps = v["process"]["capabilities"]["bounding"].as_array().expect("caps");
        assert!(caps.iter().any(|c| c == "CAP_SYS_PTRACE"));
        assert!(!caps.iter().any(|c| c == "CAP_NET_RAW"));
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        // Round-trips through the oci-spec types.
        let back: Spec = serde_json::from_value(v).expect("parse back");
        assert_eq!(back, s);
    }

    #[test]
    fn init_wraps_args_and_requires_binary() {
        let mut c = cspec();
        c.init = true;
        let mut o = BundleOptions::new("/r", "/skiff/t/c");
        o.init_binary = "/nonexistent/tini".into();
        assert!(build_oci_spec(&c, &o).is_err());
        o.init_binary = std::env::current_exe().expect("exe");
        let s = build_oci_spec(&c, &o).expect("spec");
        let v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["process"]["args"][0], INIT_PATH_IN_CONTAINER);
        assert_eq!(v["process"]["args"][1], "--");
        assert_eq!(v["process"]["args"][2], "/bin/sh");
        assert!(v["mounts"].as_array().expect("m").iter().any(|m| m["destination"] == INIT_PATH_IN_CONTAINER));
    }

    #[test]
    fn relative_paths_rejected() {
        assert!(build_oci_spec(&cspec(), &BundleOptions::new("rootfs", "/skiff/a/b")).is_err());
        assert!(build_oci_spec(&cspec(), &BundleOptions::new("/r", "skiff/a/b")).is_err());
    }
}
