//! Per-task networking, awsvpc style: every task gets its own network namespace, a veth pair into its
//! subnet's bridge, an address from the subnet (persisted IPAM), a default route via the subnet's gateway
//! (the bridge), outbound NAT, and its own `/etc/hosts` and `/etc/resolv.conf`. The host reaches a task at
//! its address; the containers of one task share its namespace.
//!
//! Everything is done over netlink (rtnetlink) and namespace syscalls, never by running `ip`; the only
//! process run is one `nft -f -` per subnet preparation (not per task). An attach first claims the task's
//! state directory (`state_dir/tasks/<task-id>`: what makes a second attach of the same task fail, and
//! what tells a restarted agent that something may exist for it — every host name is derived from the task
//! id), then allocates the address (the one fsync'd step) while it creates the namespace and links, which
//! need no address. Detach removes the record and the directory last, so both can be repeated after a crash
//! at any point, and a restarted agent finds every attached task with [`Network::list_attached`] /
//! [`Network::adopt`]. [`Network::warm`] pre-creates namespaces so an attach only creates the veth pair and
//! sets an address and a route.
//!
//! This module owns host links whose names it derives (bridges `<bridge_prefix><hash>`, veths
//! `sk<hash>`), files under `state_dir` and `netns_dir`, and the nft table `nft_table`; it never touches
//! links, files or tables it did not name.

mod error;
mod etc_files;
mod ipam;
mod links;
mod names;
mod nat;
mod netns;
mod pool;
mod records;

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use error::{NetworkError, Result};
pub use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use ipam::Ipam;
use nat::NatSubnet;
use netns::Namespace;
use pool::NamespacePool;

/// Where the network keeps its state and how it names what it creates on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// IPAM and attachment records, e.g. `DATA_DIR/agent/network`.
    pub state_dir: PathBuf,
    /// Where namespaces are bind-mounted (named) for the OCI runtime: `/run/netns` by default.
    pub netns_dir: PathBuf,
    /// The bridges' name prefix, 1 to 7 letters or digits: `skb` by default.
    pub bridge_prefix: String,
    /// The nftables table (family `ip`) holding the NAT and forward rules: `skiff` by default.
    pub nft_table: String,
}

impl NetworkConfig {
    /// The defaults, with state under `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> NetworkConfig {
        NetworkConfig {
            state_dir: state_dir.into(),
            netns_dir: PathBuf::from("/run/netns"),
            bridge_prefix: "skb".to_string(),
            nft_table: "skiff".to_string(),
        }
    }
}

/// A subnet tasks are attached to: its gateway is the first usable address, on a bridge the agent creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// `subnet-…`
    pub id: String,
    /// e.g. `172.31.0.0/20`
    pub cidr: Ipv4Net,
}

impl SubnetSpec {
    pub fn gateway(&self) -> Ipv4Addr {
        ipam::gateway(&self.cidr)
    }
}

/// A task's attachment, as persisted (`state_dir/tasks/<task-id>/network.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    pub task_id: String,
    /// The named namespace for the OCI runtime's `linux.namespaces[{type: network, path}]`.
    pub netns_path: PathBuf,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// `0a:…`, the MAC of the task's `eth0`.
    pub mac: String,
    pub host_veth: String,
    pub subnet_id: String,
    /// Bind-mount on the containers' `/etc/hosts`.
    pub hosts_file: PathBuf,
    /// Bind-mount on the containers' `/etc/resolv.conf`.
    pub resolv_conf: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SubnetRecord {
    subnet: SubnetSpec,
    bridge: String,
}

#[derive(Debug, Clone)]
struct PreparedSubnet {
    cidr: Ipv4Net,
    bridge_index: u32,
}

/// The host's task networking. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Network {
    config: NetworkConfig,
    handle: rtnetlink::Handle,
    ipam: Ipam,
    subnets: tokio::sync::Mutex<HashMap<String, PreparedSubnet>>,
    hints: std::sync::Mutex<HashMap<String, u32>>,
    pool: NamespacePool,
}

const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| NetworkError::sys("blocking task", std::io::Error::other(e)))?
}

impl Network {
    /// Opens the network state under `config.state_dir` (creating directories) and a netlink connection.
    pub async fn open(config: NetworkConfig) -> Result<Network> {
        names::validate_bridge_prefix(&config.bridge_prefix)?;
        names::validate_nft_table(&config.nft_table)?;
        let dirs = [
            config.state_dir.join("ipam"),
            records::subnets_dir(&config.state_dir),
            records::tasks_dir(&config.state_dir),
            config.netns_dir.clone(),
        ];
        blocking(move || {
            for dir in dirs {
                fs::create_dir_all(&dir).map_err(|e| NetworkError::io("create directory", &dir, e))?;
            }
            Ok(())
        })
        .await?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetworkError::sys("open netlink socket", e))?;
        tokio::spawn(connection);
        Ok(Network {
            ipam: Ipam::new(config.state_dir.join("ipam")),
            config,
            handle,
            subnets: tokio::sync::Mutex::new(HashMap::new()),
            hints: std::sync::Mutex::new(HashMap::new()),
            pool: NamespacePool::default(),
        })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The bridge a subnet's tasks are attached to.
    pub fn bridge_name(&self, subnet_id: &str) -> String {
        names::bridge_name(&self.config.bridge_prefix, subnet_id)
    }

    /// Makes the subnet usable (idempotent): its bridge up with the gateway address, IPv4 forwarding on,
    /// and the nft table rewritten with masquerading for traffic from the subnet leaving through any other
    /// interface and forward-accept rules for the bridge.
    pub async fn prepare_subnet(&self, subnet: &SubnetSpec) -> Result<()> {
        self.prepared(subnet, true).await.map(|_| ())
    }

    /// Prepares the subnet unless this agent already did (cheap then): its bridge and gateway address exist
    /// afterwards, so listeners can bind on the gateway.
    pub async fn ensure_subnet(&self, subnet: &SubnetSpec) -> Result<()> {
        self.prepared(subnet, false).await.map(|_| ())
    }

    async fn prepared(&self, subnet: &SubnetSpec, force: bool) -> Result<PreparedSubnet> {
        let mut subnets = self.subnets.lock().await;
        if let Some(prepared) = subnets.get(&subnet.id) {
            if prepared.cidr != subnet.cidr {
                return Err(NetworkError::SubnetConflict {
                    subnet_id: subnet.id.clone(),
                    existing: prepared.cidr.to_string(),
                    requested: subnet.cidr.to_string(),
                });
            }
            if !force {
                return Ok(prepared.clone());
            }
        }
        names::validate_id("subnet id", &subnet.id)?;
        ipam::validate_cidr(&subnet.cidr)?;
        let bridge = self.bridge_name(&subnet.id);
        let state_dir = self.config.state_dir.clone();
        let spec = subnet.clone();
        blocking(move || {
            let others: Vec<SubnetRecord> = records::read_all(&records::subnets_dir(&state_dir), false)?;
            for other in others {
                let same = other.subnet.id == spec.id;
                if (same && other.subnet.cidr != spec.cidr)
                    || (!same && (other.subnet.cidr.contains(&spec.cidr) || spec.cidr.contains(&other.subnet.cidr)))
                {
                    return Err(NetworkError::SubnetConflict {
                        subnet_id: spec.id.clone(),
                        existing: format!("{} ({})", other.subnet.cidr, other.subnet.id),
                        requested: spec.cidr.to_string(),
                    });
                }
            }
            Ok(())
        })
        .await?;
        let bridge_index =
            links::ensure_bridge(&self.handle, &bridge, subnet.gateway(), subnet.cidr.prefix_len()).await?;
        let state_dir = self.config.state_dir.clone();
        let table = self.config.nft_table.clone();
        let record = SubnetRecord { subnet: subnet.clone(), bridge };
        blocking(move || {
            enable_ip_forward()?;
            ignore_routes_while_down(&record.bridge)?;
            let path = records::subnets_dir(&state_dir).join(format!("{}.json", record.subnet.id));
            records::write_json(&path, &record, true)?;
            apply_nat(&state_dir, &table)
        })
        .await?;
        let prepared = PreparedSubnet { cidr: subnet.cidr, bridge_index };
        subnets.insert(subnet.id.clone(), prepared.clone());
        Ok(prepared)
    }

    /// Removes a subnet's bridge, record and NAT rules (detach its tasks first). Idempotent.
    pub async fn teardown_subnet(&self, subnet_id: &str) -> Result<()> {
        names::validate_id("subnet id", subnet_id)?;
        let mut subnets = self.subnets.lock().await;
        subnets.remove(subnet_id);
        links::delete_link(&self.handle, &self.bridge_name(subnet_id)).await?;
        let state_dir = self.config.state_dir.clone();
        let table = self.config.nft_table.clone();
        let subnet_id = subnet_id.to_string();
        blocking(move || {
            records::remove_file(&records::subnets_dir(&state_dir).join(format!("{subnet_id}.json")))?;
            let _ = fs::remove_dir(state_dir.join("ipam").join(&subnet_id));
            apply_nat(&state_dir, &table)
        })
        .await
    }

    /// Tears down every prepared subnet (detach their tasks first): bridges, records, the nft table.
    pub async fn teardown_all(&self) -> Result<()> {
        let subnets_dir = records::subnets_dir(&self.config.state_dir);
        let subnets: Vec<SubnetRecord> = blocking(move || records::read_all(&subnets_dir, false)).await?;
        for record in subnets {
            self.teardown_subnet(&record.subnet.id).await?;
        }
        Ok(())
    }

    /// The names of the links attached to a subnet's bridge (the host ends of its tasks' veths).
    pub async fn bridge_ports(&self, subnet_id: &str) -> Result<Vec<String>> {
        match links::link_index(&self.handle, &self.bridge_name(subnet_id)).await? {
            Some(index) => links::ports_of(&self.handle, index).await,
            None => Ok(Vec::new()),
        }
    }

    /// Whether a link of this name exists on the host.
    pub async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(links::link_index(&self.handle, name).await?.is_some())
    }

    /// Keeps `count` namespaces ready (loopback up, netlink connection open), so attaches only create a
    /// veth pair and set an address and a route; each attach that takes one starts a background refill.
    /// Waits until `count` are ready and returns that number; `warm(0)` empties the pool. Pooled
    /// namespaces are held by fds only: they vanish with the agent and leave nothing to clean up.
    pub async fn warm(&self, count: usize) -> Result<usize> {
        self.pool.warm(count).await
    }

    /// How many namespaces the pool holds ready now.
    pub fn warm_ready(&self) -> usize {
        self.pool.ready()
    }

    fn task_dir(&self, task_id: &str) -> PathBuf {
        records::tasks_dir(&self.config.state_dir).join(task_id)
    }

    fn netns_path(&self, task_id: &str) -> PathBuf {
        self.config.netns_dir.join(task_id)
    }

    /// Attaches a task to `subnet` (preparing the subnet on first use): a named namespace
    /// (`netns_dir/<task-id>`) with `lo` and `eth0` up, an address from the subnet, a default route via the
    /// gateway, and the task's hosts and resolv.conf files. On failure everything created is removed again.
    pub async fn attach(&self, task_id: &str, subnet: &SubnetSpec, hostname: &str) -> Result<TaskNetwork> {
        names::validate_id("task id", task_id)?;
        names::validate_hostname(hostname)?;
        let prepared = self.prepared(subnet, false).await?;
        let hint = {
            let mut hints = self.hints.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let next = hints.entry(subnet.id.clone()).or_insert(0);
            let hint = *next;
            *next = next.wrapping_add(1);
            hint
        };
        let task_dir = self.task_dir(task_id);
        let mac = names::task_mac(task_id);
        let draft = TaskNetwork {
            task_id: task_id.to_string(),
            netns_path: self.netns_path(task_id),
            ipv4: Ipv4Addr::UNSPECIFIED,
            prefix_len: subnet.cidr.prefix_len(),
            gateway: subnet.gateway(),
            mac: names::format_mac(&mac),
            host_veth: names::host_veth_name(&self.config.bridge_prefix, task_id),
            subnet_id: subnet.id.clone(),
            hosts_file: task_dir.join("hosts"),
            resolv_conf: task_dir.join("resolv.conf"),
        };
        // Claiming the task directory is what makes a second attach of the same task fail; from here on the
        // task id is this attach's, and a failure anywhere is undone by `detach`.
        let claim = task_dir.clone();
        let claimant = task_id.to_string();
        blocking(move || claim_task_dir(&claim, &claimant)).await?;
        // The address allocation (the one fsync'd step) runs while the namespace and links, which need no
        // address, are set up.
        let ipam = self.ipam.clone();
        let cidr = subnet.cidr;
        let hostname = hostname.to_string();
        let pooled = self.pool.take();
        let record_draft = draft.clone();
        let (recorded, linked) = tokio::join!(
            blocking(move || record_attachment(&ipam, &task_dir, record_draft, &cidr, hint, &hostname)),
            self.link(&draft, prepared.bridge_index, mac, pooled)
        );
        let cleanup = recorded.as_ref().map(Clone::clone).unwrap_or(draft);
        let attached = match (recorded, linked) {
            (Ok(task), Ok((namespace, eth0))) => {
                netns::address_eth0(&namespace.handle, eth0, task.ipv4, task.prefix_len, task.gateway)
                    .await
                    .map(|()| task)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if attached.is_err() {
            if let Err(e) = self.detach(&cleanup).await {
                tracing::warn!(task_id, error = %e, "cleanup after a failed attach failed");
            }
        }
        attached
    }

    /// The namespace (pooled or new), named under `netns_dir`, and the veth pair into it with `eth0` up.
    /// Returns the namespace and eth0's index in it.
    async fn link(
        &self,
        task: &TaskNetwork,
        bridge_index: u32,
        mac: [u8; 6],
        pooled: Option<Namespace>,
    ) -> Result<(Namespace, u32)> {
        let namespace = match pooled {
            Some(namespace) => namespace,
            None => netns::create().await?,
        };
        let fd = namespace.fd.try_clone().map_err(|e| NetworkError::sys("dup netns fd", e))?;
        let path = task.netns_path.clone();
        let (eth0, bound) = tokio::join!(
            async {
                links::create_veth(&self.handle, &task.host_veth, bridge_index, mac, &namespace.fd).await?;
                netns::bring_up_eth0(&namespace.handle).await
            },
            blocking(move || netns::bind(&fd, &path))
        );
        bound?;
        Ok((namespace, eth0?))
    }

    /// Removes a task's veth pair, namespace file, address and records. Idempotent.
    pub async fn detach(&self, task: &TaskNetwork) -> Result<()> {
        names::validate_id("task id", &task.task_id)?;
        links::delete_link(&self.handle, &task.host_veth).await?;
        let ipam = self.ipam.clone();
        let task = task.clone();
        let task_dir = self.task_dir(&task.task_id);
        let netns_path = self.netns_path(&task.task_id);
        blocking(move || {
            netns::unbind(&netns_path)?;
            if task.ipv4 != Ipv4Addr::UNSPECIFIED {
                ipam.release(&task.subnet_id, task.ipv4, &task.task_id)?;
            }
            records::remove_file(&task_dir.join("hosts"))?;
            records::remove_file(&task_dir.join("resolv.conf"))?;
            // The record goes last: until then a repeated detach knows what to release.
            records::remove_file(&task_dir.join(records::TASK_RECORD))?;
            records::remove_dir(&task_dir)
        })
        .await
    }

    /// Detaches a task known only by id (after a restart): from its record, or, without a readable one, by
    /// the names derived from the id and the addresses IPAM records for it. Idempotent.
    pub async fn detach_by_id(&self, task_id: &str) -> Result<()> {
        names::validate_id("task id", task_id)?;
        let path = self.task_dir(task_id).join(records::TASK_RECORD);
        let record: Option<TaskNetwork> = blocking(move || match records::read_json(&path) {
            Err(NetworkError::Record { .. }) => Ok(None),
            other => other,
        })
        .await?;
        match record {
            Some(task) => self.detach(&task).await,
            None => {
                links::delete_link(&self.handle, &names::host_veth_name(&self.config.bridge_prefix, task_id)).await?;
                let netns_path = self.netns_path(task_id);
                let task_dir = self.task_dir(task_id);
                let ipam = self.ipam.clone();
                let task_id = task_id.to_string();
                blocking(move || {
                    netns::unbind(&netns_path)?;
                    for allocation in ipam.allocations()? {
                        if allocation.task_id == task_id {
                            ipam.release(&allocation.subnet_id, allocation.ip, &task_id)?;
                        }
                    }
                    records::remove_dir(&task_dir)
                })
                .await
            }
        }
    }

    /// The attachment of one task, if it has one (from its persisted record).
    pub async fn attached(&self, task_id: &str) -> Result<Option<TaskNetwork>> {
        names::validate_id("task id", task_id)?;
        let path = self.task_dir(task_id).join(records::TASK_RECORD);
        blocking(move || records::read_json(&path)).await
    }

    /// Every attached task, from the persisted records.
    pub async fn list_attached(&self) -> Result<Vec<TaskNetwork>> {
        let dir = records::tasks_dir(&self.config.state_dir);
        blocking(move || records::read_all(&dir, true)).await
    }

    /// For an agent that (re)starts: re-prepares every persisted subnet (bridges and NAT are gone after a
    /// reboot), finishes interrupted attaches (task directories without a record are removed, addresses
    /// held by no recorded task are reclaimed) and returns every attached task. Call it before attaching.
    pub async fn adopt(&self) -> Result<Vec<TaskNetwork>> {
        let subnets_dir = records::subnets_dir(&self.config.state_dir);
        let subnets: Vec<SubnetRecord> = blocking(move || records::read_all(&subnets_dir, false)).await?;
        for record in &subnets {
            self.prepare_subnet(&record.subnet).await?;
        }
        let tasks_dir = records::tasks_dir(&self.config.state_dir);
        let unrecorded = blocking(move || {
            let mut out = Vec::new();
            for entry in fs::read_dir(&tasks_dir).map_err(|e| NetworkError::io("list", &tasks_dir, e))? {
                let entry = entry.map_err(|e| NetworkError::io("list", &tasks_dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let record = entry.path().join(records::TASK_RECORD);
                if !name.starts_with('.') && !matches!(records::read_json::<TaskNetwork>(&record), Ok(Some(_))) {
                    out.push(name);
                }
            }
            Ok(out)
        })
        .await?;
        for task_id in unrecorded {
            if names::validate_id("task id", &task_id).is_ok() {
                self.detach_by_id(&task_id).await?;
            }
        }
        let attached = self.list_attached().await?;
        let ipam = self.ipam.clone();
        let held: Vec<(String, Ipv4Addr, String)> =
            attached.iter().map(|t| (t.subnet_id.clone(), t.ipv4, t.task_id.clone())).collect();
        blocking(move || {
            for allocation in ipam.allocations()? {
                let key = (allocation.subnet_id.clone(), allocation.ip, allocation.task_id.clone());
                if !held.contains(&key) {
                    tracing::info!(subnet = %allocation.subnet_id, ip = %allocation.ip, task = %allocation.task_id,
                        "reclaiming an address no attached task holds");
                    ipam.reclaim(&allocation)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(attached)
    }
}

/// Creates the task's directory exclusively (blocking).
fn claim_task_dir(task_dir: &Path, task_id: &str) -> Result<()> {
    match fs::create_dir(task_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            Err(NetworkError::AlreadyAttached { task_id: task_id.to_string() })
        }
        Err(e) => Err(NetworkError::io("create task directory", task_dir, e)),
    }
}

/// Allocates the task's address and writes its files and record into its (claimed) directory (blocking).
/// On failure the address is released again; the directory is left for the caller's cleanup.
fn record_attachment(
    ipam: &Ipam,
    task_dir: &Path,
    mut task: TaskNetwork,
    cidr: &Ipv4Net,
    hint: u32,
    hostname: &str,
) -> Result<TaskNetwork> {
    let written = (|| {
        let (ip, _) = ipam.allocate(&task.subnet_id, cidr, &task.task_id, hint)?;
        task.ipv4 = ip;
        let host_resolv = match fs::read_to_string(HOST_RESOLV_CONF) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(NetworkError::io("read", HOST_RESOLV_CONF, e)),
        };
        // No fsyncs here: the IPAM file is the durable commit (see `records`).
        records::write_plain(&task.hosts_file, etc_files::render_hosts(hostname, ip).as_bytes())?;
        records::write_plain(&task.resolv_conf, etc_files::render_resolv_conf(&host_resolv).as_bytes())?;
        records::write_json(&task_dir.join(records::TASK_RECORD), &task, false)
    })();
    if let Err(e) = written {
        if task.ipv4 != Ipv4Addr::UNSPECIFIED {
            let _ = ipam.release(&task.subnet_id, task.ipv4, &task.task_id);
        }
        return Err(e);
    }
    Ok(task)
}

fn enable_ip_forward() -> Result<()> {
    match fs::read_to_string(IP_FORWARD) {
        Ok(value) if value.trim() == "1" => Ok(()),
        _ => fs::write(IP_FORWARD, "1").map_err(|e| NetworkError::io("enable forwarding in", IP_FORWARD, e)),
    }
}

/// A bridge without tasks has no carrier; its subnet route must then not win over another link's (a
/// bridge of the same block left by a server whose data directory is gone would otherwise swallow the
/// traffic of this one's tasks).
fn ignore_routes_while_down(bridge: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv4/conf/{bridge}/ignore_routes_with_linkdown");
    fs::write(&path, "1").map_err(|e| NetworkError::io("set", &path, e))
}

/// Rewrites the nft table from every persisted subnet (blocking).
fn apply_nat(state_dir: &Path, table: &str) -> Result<()> {
    let subnets: Vec<SubnetRecord> = records::read_all(&records::subnets_dir(state_dir), false)?;
    let nat: Vec<NatSubnet> =
        subnets.into_iter().map(|r| NatSubnet { bridge: r.bridge, cidr: r.subnet.cidr }).collect();
    nat::apply(table, &nat::render(table, &nat))
}
