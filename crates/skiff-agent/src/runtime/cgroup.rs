//! Cgroups: host preparation and the task-level cgroup.
//!
//! Layout (the same path on every v1 hierarchy, or once on the v2 tree):
//! ```text
//! /skiff                      created by prepare_host()
//! /skiff/<task-id>            TaskCgroup: the task's cpu (CFS quota + shares), memory hard limit, pids.max
//! /skiff/<task-id>/<name>     created by crun from the bundle's explicit cgroupsPath; container limits
//! ```
//! Task cpu units → `cpu.cfs_quota_us = units × period / 1024` with a 100 ms period and `cpu.shares = units`
//! (v2: `cpu.max` and the matching `cpu.weight`); task memory → `memory.limit_in_bytes` (v2: `memory.max`).

use std::fs;
use std::path::{Path, PathBuf};

use super::CgroupError;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The parent of every task cgroup.
pub const SKIFF_CGROUP: &str = "skiff";
pub const CFS_PERIOD_US: u64 = 100_000;
/// v1 controllers the task cgroup configures (crun creates the container level in every hierarchy).
const TASK_V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids"];

/// Which cgroup hierarchy the host runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// v1 (legacy or hybrid): one mount per controller under `/sys/fs/cgroup/<controller>`.
    V1 { root: PathBuf },
    /// v2 unified at `/sys/fs/cgroup`.
    V2 { root: PathBuf },
}

fn mountinfo() -> Vec<(String, String, String)> {
    // (mount point, fstype, super options)
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mp = pre.split_whitespace().nth(4)?.to_string();
            let mut p = post.split_whitespace();
            let fstype = p.next()?.to_string();
            let _src = p.next();
            let opts = p.next().unwrap_or("").to_string();
            Some((mp, fstype, opts))
        })
        .collect()
}

impl CgroupLayout {
    pub fn detect() -> CgroupLayout {
        let root = PathBuf::from(CGROUP_ROOT);
        let unified = mountinfo().iter().any(|(mp, t, _)| mp == CGROUP_ROOT && t == "cgroup2");
        if unified {
            CgroupLayout::V2 { root }
        } else {
            CgroupLayout::V1 { root }
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, CgroupLayout::V2 { .. })
    }

    fn root(&self) -> &Path {
        match self {
            CgroupLayout::V1 { root } | CgroupLayout::V2 { root } => root,
        }
    }

    /// Every v1 hierarchy's mount point (`/sys/fs/cgroup/memory`, …) and, on hybrid hosts, the cgroup2
    /// mount beside them (`/sys/fs/cgroup/unified`, where crun also creates each container's cgroup); on v2
    /// the single root.
    pub fn hierarchies(&self) -> Vec<PathBuf> {
        match self {
            CgroupLayout::V2 { root } => vec![root.clone()],
            CgroupLayout::V1 { root } => mountinfo()
                .into_iter()
                .filter(|(mp, t, _)| {
                    (t == "cgroup" || t == "cgroup2") && Path::new(mp).parent() == Some(root.as_path())
                })
                .map(|(mp, _, _)| PathBuf::from(mp))
                .collect(),
        }
    }

    /// The directory of `cgroups_path` (absolute, as in a bundle) for a v1 controller, or on v2.
    pub fn dir(&self, controller: &str, cgroups_path: &str) -> PathBuf {
        let rel = cgroups_path.trim_start_matches('/');
        match self {
            CgroupLayout::V2 { root } => root.join(rel),
            CgroupLayout::V1 { root } => root.join(controller).join(rel),
        }
    }
}

/// `a-z A-Z 0-9 _ . -`, not `.`/`..`, at most 128 bytes: safe as one path component.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The `cgroupsPath` of one container of a task.
pub fn container_cgroups_path(task_id: &str, container: &str) -> String {
    format!("/{SKIFF_CGROUP}/{task_id}/{container}")
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|e| CgroupError::Write { path: path.to_path_buf(), value: value.into(), source: e })
}

fn mkdir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(CgroupError::Create { path: path.to_path_buf(), source: e }),
    }
}

/// Idempotent host preparation: on hybrid v1 hosts move `hugetlb` off the v2 tree onto a v1 mount (crun
/// refuses hybrid mode otherwise, DESIGN.md §5), create `/skiff` in the controllers tasks use (v2: with
/// `cpu memory pids` delegated to it).
pub fn prepare_cgroups(layout: &CgroupLayout) -> Result<(), CgroupError> {
    match layout {
        CgroupLayout::V1 { root } => {
            let mounts = mountinfo();
            let hybrid =
                mounts.iter().any(|(mp, t, _)| t == "cgroup2" && Path::new(mp).parent() == Some(root.as_path()));
            let hugetlb_v1 = mounts.iter().any(|(_, t, opts)| t == "cgroup" && opts.split(',').any(|o| o == "hugetlb"));
            if hybrid && !hugetlb_v1 {
                let dir = root.join("hugetlb");
                mkdir(&dir)?;
                rustix::mount::mount("cgroup", &dir, "cgroup", rustix::mount::MountFlags::empty(), c"hugetlb")
                    .map_err(|e| CgroupError::Mount { path: dir.clone(), source: e.into() })?;
            }
            for c in TASK_V1_CONTROLLERS {
                let d = root.join(c);
                if d.is_dir() {
                    mkdir(&d.join(SKIFF_CGROUP))?;
                }
            }
        }
        CgroupLayout::V2 { root } => {
            let enable = |dir: &Path| -> Result<(), CgroupError> {
                let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
                let want: Vec<String> = ["cpu", "memory", "pids"]
                    .iter()
                    .filter(|c| available.split_whitespace().any(|a| a == **c))
                    .map(|c| format!("+{c}"))
                    .collect();
                if want.is_empty() {
                    return Ok(());
                }
                write(&dir.join("cgroup.subtree_control"), &want.join(" "))
            };
            enable(root)?;
            let skiff = root.join(SKIFF_CGROUP);
            mkdir(&skiff)?;
            enable(&skiff)?;
        }
    }
    Ok(())
}

/// A task's resource limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskLimits {
    /// 1024 = one core.
    pub cpu_units: Option<u64>,
    pub memory_mib: Option<u64>,
    pub pids_max: Option<u64>,
}

/// CFS quota (µs per [`CFS_PERIOD_US`]) for cpu units.
pub fn cfs_quota_us(cpu_units: u64) -> u64 {
    (cpu_units * CFS_PERIOD_US / 1024).max(1000)
}

/// cgroup v1 shares → v2 weight (the conversion runc and crun use).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// The parent cgroup of one task's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCgroup {
    layout: CgroupLayout,
    task_id: String,
}

impl TaskCgroup {
    /// Create (or reconfigure) `/skiff/<task-id>` with `limits`.
    pub fn create(layout: &CgroupLayout, task_id: &str, limits: TaskLimits) -> Result<TaskCgroup, CgroupError> {
        if !valid_name(task_id) {
            return Err(CgroupError::InvalidName(task_id.to_string()));
        }
        let cg = TaskCgroup { layout: layout.clone(), task_id: task_id.to_string() };
        let path = cg.cgroups_path();
        match layout {
            CgroupLayout::V1 { .. } => {
                for c in TASK_V1_CONTROLLERS {
                    let d = layout.dir(c, &path);
                    if d.parent().is_some_and(Path::is_dir) {
                        mkdir(&d)?;
                    }
                }
                if let Some(units) = limits.cpu_units {
                    let d = layout.dir("cpu", &path);
                    write(&d.join("cpu.cfs_period_us"), &CFS_PERIOD_US.to_string())?;
                    write(&d.join("cpu.cfs_quota_us"), &cfs_quota_us(units).to_string())?;
                    write(&d.join("cpu.shares"), &units.max(2).to_string())?;
                }
                if let Some(mib) = limits.memory_mib {
                    write(&layout.dir("memory", &path).join("memory.limit_in_bytes"), &(mib << 20).to_string())?;
                }
                if let Some(p) = limits.pids_max {
                    write(&layout.dir("pids", &path).join("pids.max"), &p.to_string())?;
                }
            }
            CgroupLayout::V2 { .. } => {
                let d = layout.dir("", &path);
                mkdir(&d)?;
                let controllers = fs::read_to_string(d.join("cgroup.controllers")).unwrap_or_default();
                let sub: Vec<String> = controllers.split_whitespace().map(|c| format!("+{c}")).collect();
                if !sub.is_empty() {
                    write(&d.join("cgroup.subtree_control"), &sub.join(" "))?;
                }
                if let Some(units) = limits.cpu_units {
                    write(&d.join("cpu.max"), &format!("{} {CFS_PERIOD_US}", cfs_quota_us(units)))?;
                    write(&d.join("cpu.weight"), &shares_to_weight(units).to_string())?;
                }
                if let Some(mib) = limits.memory_mib {
                    write(&d.join("memory.max"), &(mib << 20).to_string())?;
                    let _ = fs::write(d.join("memory.swap.max"), "0");
                }
                if let Some(p) = limits.pids_max {
                    write(&d.join("pids.max"), &p.to_string())?;
                }
            }
        }
        Ok(cg)
    }

    /// A handle on an existing task cgroup (after an agent restart).
    pub fn open(layout: &CgroupLayout, task_id: &str) -> TaskCgroup {
        TaskCgroup { layout: layout.clone(), task_id: task_id.to_string() }
    }

    /// `/skiff/<task-id>`.
    pub fn cgroups_path(&self) -> String {
        format!("/{SKIFF_CGROUP}/{}", self.task_id)
    }

    /// The `cgroupsPath` for one of the task's containers.
    pub fn container_path(&self, container: &str) -> Result<String, CgroupError> {
        if !valid_name(container) {
            return Err(CgroupError::InvalidName(container.to_string()));
        }
        Ok(container_cgroups_path(&self.task_id, container))
    }

    /// The task cgroup's directory for a controller (v2: ignored).
    pub fn dir(&self, controller: &str) -> PathBuf {
        self.layout.dir(controller, &self.cgroups_path())
    }

    /// Total CPU time used by the task, nanoseconds.
    pub fn cpu_usage_ns(&self) -> Result<u64, CgroupError> {
        cpu_usage_ns(&self.layout, &self.cgroups_path())
    }

    /// OOM kills inside the task's memory cgroup (task-level limit).
    pub fn oom_kills(&self) -> u64 {
        oom_kills(&self.layout, &self.cgroups_path())
    }

    /// Remove the task cgroup (and any container cgroup crun left) from every hierarchy. Idempotent.
    pub fn remove(&self) -> Result<(), CgroupError> {
        remove_tree(&self.layout, &self.cgroups_path())
    }
}

/// CPU time of any cgroup (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`), nanoseconds.
pub fn cpu_usage_ns(layout: &CgroupLayout, cgroups_path: &str) -> Result<u64, CgroupError> {
    let (file, v2) = match layout {
        CgroupLayout::V1 { .. } => (layout.dir("cpuacct", cgroups_path).join("cpuacct.usage"), false),
        CgroupLayout::V2 { .. } => (layout.dir("", cgroups_path).join("cpu.stat"), true),
    };
    let text = fs::read_to_string(&file).map_err(|e| CgroupError::Read { path: file.clone(), source: e })?;
    let parsed = if v2 {
        text.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|u| u * 1000)
    } else {
        text.trim().parse::<u64>().ok()
    };
    parsed.ok_or(CgroupError::Parse { path: file })
}

/// The `oom_kill` counter of a memory cgroup (0 when it is gone or unreadable).
pub fn oom_kills(layout: &CgroupLayout, cgroups_path: &str) -> u64 {
    let file = match layout {
        CgroupLayout::V1 { .. } => layout.dir("memory", cgroups_path).join("memory.oom_control"),
        CgroupLayout::V2 { .. } => layout.dir("", cgroups_path).join("memory.events"),
    };
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `cgroups_path` exists in any hierarchy.
pub fn exists_anywhere(layout: &CgroupLayout, cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    layout.hierarchies().iter().any(|h| h.join(rel).exists())
}

/// rmdir `cgroups_path` and its children, bottom-up, in every hierarchy. Idempotent.
pub fn remove_tree(layout: &CgroupLayout, cgroups_path: &str) -> Result<(), CgroupError> {
    let rel = cgroups_path.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(CgroupError::InvalidName(cgroups_path.to_string()));
    }
    for h in layout.hierarchies() {
        rmdir_recursive(&h.join(rel))?;
    }
    let _ = layout.root();
    Ok(())
}

fn rmdir_recursive(dir: &Path) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::Remove { path: dir.to_path_buf(), source: e }),
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            rmdir_recursive(&e.path())?;
        }
    }
    // A cgroup whose last process just exited can report EBUSY for a moment.
    let mut last = None;
    for _ in 0..50 {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(CgroupError::Remove { path: dir.to_path_buf(), source: last.unwrap_or_else(|| std::io::Error::other("busy")) })
}

/// A v1 memory limit at or above this is "unlimited" (the kernel reports `PAGE_COUNTER_MAX` pages).
const V1_UNLIMITED: u64 = 1 << 62;

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat) as a map; lines that do not parse are skipped.
fn read_flat_keyed(path: &Path) -> std::collections::BTreeMap<String, u64> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Memory charged to a cgroup now, bytes (v1 `memory.usage_in_bytes`, v2 `memory.current`).
pub fn memory_usage_bytes(layout: &CgroupLayout, cgroups_path: &str) -> Result<u64, CgroupError> {
    let file = match layout {
        CgroupLayout::V1 { .. } => layout.dir("memory", cgroups_path).join("memory.usage_in_bytes"),
        CgroupLayout::V2 { .. } => layout.dir("", cgroups_path).join("memory.current"),
    };
    let text = fs::read_to_string(&file).map_err(|e| CgroupError::Read { path: file.clone(), source: e })?;
    text.trim().parse().map_err(|_| CgroupError::Parse { path: file })
}

/// The most memory the cgroup has been charged, bytes (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`,
/// which kernels before 5.19 lack): `None` when unavailable.
pub fn memory_max_usage_bytes(layout: &CgroupLayout, cgroups_path: &str) -> Option<u64> {
    match layout {
        CgroupLayout::V1 { .. } => read_u64(&layout.dir("memory", cgroups_path).join("memory.max_usage_in_bytes")),
        CgroupLayout::V2 { .. } => read_u64(&layout.dir("", cgroups_path).join("memory.peak")),
    }
}

/// The cgroup's own memory limit, bytes (v1 `memory.limit_in_bytes`, v2 `memory.max`): `None` when it is
/// unlimited or unreadable.
pub fn memory_limit_bytes(layout: &CgroupLayout, cgroups_path: &str) -> Option<u64> {
    match layout {
        CgroupLayout::V1 { .. } => {
            read_u64(&layout.dir("memory", cgroups_path).join("memory.limit_in_bytes")).filter(|v| *v < V1_UNLIMITED)
        }
        CgroupLayout::V2 { .. } => read_u64(&layout.dir("", cgroups_path).join("memory.max")),
    }
}

/// The limit that binds a cgroup: the smallest memory limit on it and its ancestors (`/skiff/t/c`,
/// `/skiff/t`, `/skiff`), `None` when none of them is limited.
pub fn effective_memory_limit_bytes(layout: &CgroupLayout, cgroups_path: &str) -> Option<u64> {
    let mut path = cgroups_path.trim_end_matches('/').to_string();
    let mut limit: Option<u64> = None;
    while !path.trim_start_matches('/').is_empty() {
        if let Some(l) = memory_limit_bytes(layout, &path) {
            limit = Some(limit.map_or(l, |m| m.min(l)));
        }
        path.truncate(path.rfind('/').unwrap_or(0));
    }
    limit
}

/// The cgroup's `memory.stat` (v1 and v2 name different counters; both are returned as the kernel names
/// them). Empty when unreadable.
pub fn memory_stat(layout: &CgroupLayout, cgroups_path: &str) -> std::collections::BTreeMap<String, u64> {
    read_flat_keyed(&layout.dir("memory", cgroups_path).join("memory.stat"))
}

/// Tasks (processes and threads) in the cgroup now (`pids.current`); `None` when unavailable.
pub fn pids_current(layout: &CgroupLayout, cgroups_path: &str) -> Option<u64> {
    read_u64(&layout.dir("pids", cgroups_path).join("pids.current"))
}

/// The process ids in the cgroup itself (`cgroup.procs`; on v1 from the first controller that has it).
pub fn procs(layout: &CgroupLayout, cgroups_path: &str) -> Vec<u32> {
    let candidates: Vec<PathBuf> = match layout {
        CgroupLayout::V1 { .. } => ["pids", "memory", "cpuacct", "cpu"]
            .iter()
            .map(|c| layout.dir(c, cgroups_path).join("cgroup.procs"))
            .collect(),
        CgroupLayout::V2 { .. } => vec![layout.dir("", cgroups_path).join("cgroup.procs")],
    };
    candidates
        .iter()
        .find_map(|f| fs::read_to_string(f).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// CPU time split into user and kernel mode, nanoseconds: v2 `cpu.stat` `user_usec`/`system_usec`, v1
/// `cpuacct.stat` `user`/`system` (in USER_HZ ticks, 100 per second on Linux). `None` when unavailable.
pub fn cpu_user_system_ns(layout: &CgroupLayout, cgroups_path: &str) -> Option<(u64, u64)> {
    match layout {
        CgroupLayout::V1 { .. } => {
            let stat = read_flat_keyed(&layout.dir("cpuacct", cgroups_path).join("cpuacct.stat"));
            Some((stat.get("user")? * 10_000_000, stat.get("system")? * 10_000_000))
        }
        CgroupLayout::V2 { .. } => {
            let stat = read_flat_keyed(&layout.dir("", cgroups_path).join("cpu.stat"));
            Some((stat.get("user_usec")? * 1000, stat.get("system_usec")? * 1000))
        }
    }
}

/// Per-CPU usage, nanoseconds (v1 `cpuacct.usage_percpu`; v2 has no per-CPU accounting: `None`).
pub fn cpu_usage_percpu_ns(layout: &CgroupLayout, cgroups_path: &str) -> Option<Vec<u64>> {
    match layout {
        CgroupLayout::V1 { .. } => {
            let text = read_trimmed(&layout.dir("cpuacct", cgroups_path).join("cpuacct.usage_percpu"))?;
            text.split_whitespace().map(|v| v.parse().ok()).collect()
        }
        CgroupLayout::V2 { .. } => None,
    }
}

/// CFS bandwidth throttling of a cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuThrottling {
    /// Enforcement periods elapsed.
    pub periods: u64,
    /// Periods in which the cgroup was throttled.
    pub throttled_periods: u64,
    /// Total time throttled, nanoseconds.
    pub throttled_time_ns: u64,
}

/// Throttling counters (v1 `cpu.stat` `nr_periods`/`nr_throttled`/`throttled_time`, v2 `cpu.stat`
/// `nr_periods`/`nr_throttled`/`throttled_usec`); `None` when unavailable.
pub fn cpu_throttling(layout: &CgroupLayout, cgroups_path: &str) -> Option<CpuThrottling> {
    let stat = read_flat_keyed(&layout.dir("cpu", cgroups_path).join("cpu.stat"));
    let throttled_time_ns = match layout {
        CgroupLayout::V1 { .. } => *stat.get("throttled_time")?,
        CgroupLayout::V2 { .. } => stat.get("throttled_usec")? * 1000,
    };
    Some(CpuThrottling {
        periods: *stat.get("nr_periods")?,
        throttled_periods: *stat.get("nr_throttled")?,
        throttled_time_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_units_to_cfs() {
        assert_eq!(cfs_quota_us(256), 25_000);
        assert_eq!(cfs_quota_us(1024), 100_000);
        assert_eq!(cfs_quota_us(4096), 400_000);
        assert_eq!(cfs_quota_us(1), 1000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
    }

    fn read(p: PathBuf) -> String {
        fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
    }

    #[test]
    fn task_limits_on_a_v2_tree() {
        // A plain directory stands in for /sys/fs/cgroup: the files written are what the kernel would get.
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().to_path_buf();
        fs::create_dir(root.join(SKIFF_CGROUP)).expect("skiff");
        let layout = CgroupLayout::V2 { root: root.clone() };
        let t = TaskCgroup::create(
            &layout,
            "t1",
            TaskLimits { cpu_units: Some(256), memory_mib: Some(512), pids_max: Some(100) },
        )
        .expect("create");
        let dir = root.join("skiff/t1");
        assert_eq!(read(dir.join("cpu.max")), "25000 100000");
        assert_eq!(read(dir.join("cpu.weight")), "10");
        assert_eq!(read(dir.join("memory.max")), (512u64 << 20).to_string());
        assert_eq!(read(dir.join("pids.max")), "100");
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").expect("events");
        assert_eq!(t.oom_kills(), 1);
        fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").expect("stat");
        assert_eq!(t.cpu_usage_ns().expect("usage"), 1_500_000);
        assert_eq!(t.container_path("web").expect("path"), "/skiff/t1/web");
        assert!(t.container_path("../x").is_err());
        assert!(TaskCgroup::create(&layout, "../evil", TaskLimits::default()).is_err());
    }

    #[test]
    fn task_limits_on_v1_hierarchies() {
        let d = tempfile::tempdir().expect("tmp");
        let root = d.path().to_path_buf();
        for c in TASK_V1_CONTROLLERS {
            fs::create_dir_all(root.join(c).join(SKIFF_CGROUP)).expect("controller");
        }
        let layout = CgroupLayout::V1 { root: root.clone() };
        let t = TaskCgroup::create(
            &layout,
            "t2",
            TaskLimits { cpu_units: Some(2048), memory_mib: Some(1024), pids_max: None },
        )
        .expect("create");
        assert_eq!(read(root.join("cpu/skiff/t2/cpu.cfs_quota_us")), "200000");
        assert_eq!(read(root.join("cpu/skiff/t2/cpu.cfs_period_us")), "100000");
        assert_eq!(read(root.join("cpu/skiff/t2/cpu.shares")), "2048");
        assert_eq!(read(root.join("memory/skiff/t2/memory.limit_in_bytes")), (1024u64 << 20).to_string());
        assert!(!root.join("pids/skiff/t2/pids.max").exists());
        fs::write(root.join("memory/skiff/t2/memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
            .expect("oom_control");
        assert_eq!(t.oom_kills(), 2);
        fs::write(root.join("cpuacct/skiff/t2/cpuacct.usage"), "123456\n").expect("usage");
        assert_eq!(t.cpu_usage_ns().expect("usage"), 123_456);
    }

    #[test]
    fn names_and_paths() {
        assert!(valid_name("3f2a-task_1.web"));
        assert!(!valid_name("..") && !valid_name("a/b") && !valid_name(""));
        assert_eq!(container_cgroups_path("t1", "web"), "/skiff/t1/web");
        let v1 = CgroupLayout::V1 { root: "/sys/fs/cgroup".into() };
        assert_eq!(v1.dir("memory", "/skiff/t1"), PathBuf::from("/sys/fs/cgroup/memory/skiff/t1"));
        let v2 = CgroupLayout::V2 { root: "/sys/fs/cgroup".into() };
        assert_eq!(v2.dir("memory", "/skiff/t1"), PathBuf::from("/sys/fs/cgroup/skiff/t1"));
        assert!(remove_tree(&v1, "/").is_err());
        assert!(remove_tree(&v1, "/skiff/../x").is_err());
    }
}
