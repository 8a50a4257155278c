//! Address management: one file per allocated address, `ipam/<subnet-id>/<ip>`, holding the owning task id.
//!
//! Creating the file with `O_EXCL` is the allocation, so two attaches (threads or processes) can never get the
//! same address, and the file plus its directory entry are fsynced before the address is handed out, so a crash
//! never forgets an allocation. Release removes the file only if it still names the releasing task, which
//! makes a repeated release harmless even after the address went to another task. The network address, the
//! gateway (the first usable address) and the broadcast address are never handed out. Blocking: call from
//! `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::error::{NetworkError, Result};

/// The address of the subnet's gateway (its bridge): the first usable address.
pub fn gateway(cidr: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

/// The addresses tasks may get: after the gateway, before the broadcast address.
fn task_range(cidr: &Ipv4Net) -> (u32, u32) {
    let first = u32::from(cidr.network()) + 2;
    let last = u32::from(cidr.broadcast()) - 1;
    (first, last)
}

/// A subnet must leave room for a gateway and at least one task.
pub fn validate_cidr(cidr: &Ipv4Net) -> Result<()> {
    if cidr.prefix_len() > 30 || cidr.prefix_len() < 8 || cidr.addr() != cidr.network() {
        return Err(NetworkError::Invalid {
            what: "subnet cidr",
            value: cidr.to_string(),
            reason: "must be a network address with a prefix length from /8 to /30",
        });
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Ipam {
    root: PathBuf,
}

/// One allocated address and the task that holds it ("" if a crash interrupted the allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub subnet_id: String,
    pub ip: Ipv4Addr,
    pub task_id: String,
}

impl Ipam {
    pub fn new(root: PathBuf) -> Ipam {
        Ipam { root }
    }

    fn subnet_dir(&self, subnet_id: &str) -> PathBuf {
        self.root.join(subnet_id)
    }

    /// Allocates a free address of `cidr` for `task_id`, probing from offset `hint` (so consecutive
    /// allocations do not all contend for, or immediately reuse, the lowest free address). Returns the
    /// address and its offset.
    pub fn allocate(&self, subnet_id: &str, cidr: &Ipv4Net, task_id: &str, hint: u32) -> Result<(Ipv4Addr, u32)> {
        let dir = self.subnet_dir(subnet_id);
        fs::create_dir_all(&dir).map_err(|e| NetworkError::io("create ipam directory", &dir, e))?;
        let (first, last) = task_range(cidr);
        let count = last - first + 1;
        for step in 0..count {
            let offset = (hint.wrapping_add(step)) % count;
            let ip = Ipv4Addr::from(first + offset);
            let path = dir.join(ip.to_string());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let written = file.write_all(task_id.as_bytes()).and_then(|()| file.sync_all());
                    if let Err(e) = written.and_then(|()| sync_dir(&dir)) {
                        let _ = fs::remove_file(&path);
                        return Err(NetworkError::io("record address allocation", &path, e));
                    }
                    return Ok((ip, offset));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(NetworkError::io("allocate address", &path, e)),
            }
        }
        Err(NetworkError::SubnetExhausted { subnet_id: subnet_id.to_string(), cidr: cidr.to_string() })
    }

    /// Releases `ip` if `task_id` holds it; `Ok(false)` if it was already free or belongs to someone else.
    pub fn release(&self, subnet_id: &str, ip: Ipv4Addr, task_id: &str) -> Result<bool> {
        let dir = self.subnet_dir(subnet_id);
        let path = dir.join(ip.to_string());
        let owner = match fs::read_to_string(&path) {
            Ok(owner) => owner,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(NetworkError::io("read address allocation", &path, e)),
        };
        if owner != task_id {
            return Ok(false);
        }
        self.remove(&path)?;
        Ok(true)
    }

    /// Removes an allocation unconditionally (used to reclaim orphans at adoption).
    pub fn reclaim(&self, allocation: &Allocation) -> Result<()> {
        self.remove(&self.subnet_dir(&allocation.subnet_id).join(allocation.ip.to_string()))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(NetworkError::io("release address", path, e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| NetworkError::io("sync ipam directory", dir, e))?;
        }
        Ok(())
    }

    /// Every allocation of every subnet, as persisted.
    pub fn allocations(&self) -> Result<Vec<Allocation>> {
        let mut out = Vec::new();
        let subnets = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(NetworkError::io("list ipam subnets", &self.root, e)),
        };
        for subnet in subnets {
            let subnet = subnet.map_err(|e| NetworkError::io("list ipam subnets", &self.root, e))?;
            let subnet_id = subnet.file_name().to_string_lossy().into_owned();
            let dir = subnet.path();
            for entry in fs::read_dir(&dir).map_err(|e| NetworkError::io("list ipam addresses", &dir, e))? {
                let entry = entry.map_err(|e| NetworkError::io("list ipam addresses", &dir, e))?;
                let Ok(ip) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else { continue };
                let task_id = match fs::read_to_string(entry.path()) {
                    Ok(task_id) => task_id,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(NetworkError::io("read address allocation", entry.path(), e)),
                };
                out.push(Allocation { subnet_id: subnet_id.clone(), ip, task_id });
            }
        }
        out.sort_by(|a, b| (&a.subnet_id, a.ip).cmp(&(&b.subnet_id, b.ip)));
        Ok(out)
    }
}

/// fsyncs a directory so that entries created or removed in it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn cidr(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn skips_network_gateway_and_broadcast_until_exhausted() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path().join("ipam"));
        let net = cidr("10.9.0.0/29");
        assert_eq!(gateway(&net), Ipv4Addr::new(10, 9, 0, 1));
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(ipam.allocate("subnet-a", &net, &format!("task-{i}"), 0).unwrap().0);
        }
        let expected: Vec<Ipv4Addr> = (2..=6).map(|d| Ipv4Addr::new(10, 9, 0, d)).collect();
        assert_eq!(got, expected);
        let err = ipam.allocate("subnet-a", &net, "task-x", 0).unwrap_err();
        assert!(matches!(err, NetworkError::SubnetExhausted { .. }), "{err}");
    }

    #[test]
    fn release_only_by_owner_and_twice_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path().join("ipam"));
        let net = cidr("10.9.0.0/30");
        let (ip, _) = ipam.allocate("s", &net, "task-a", 0).unwrap();
        assert!(!ipam.release("s", ip, "task-b").unwrap());
        assert!(ipam.release("s", ip, "task-a").unwrap());
        assert!(!ipam.release("s", ip, "task-a").unwrap());
        // The freed address goes to the next task; the old owner's late release leaves it alone.
        let (again, _) = ipam.allocate("s", &net, "task-c", 0).unwrap();
        assert_eq!(again, ip);
        assert!(!ipam.release("s", ip, "task-a").unwrap());
        assert_eq!(
            ipam.allocations().unwrap(),
            vec![Allocation { subnet_id: "s".into(), ip, task_id: "task-c".into() }]
        );
    }

    #[test]
    fn hint_spreads_allocations_and_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path().join("ipam"));
        let net = cidr("10.9.0.0/29");
        assert_eq!(ipam.allocate("s", &net, "a", 4).unwrap(), (Ipv4Addr::new(10, 9, 0, 6), 4));
        assert_eq!(ipam.allocate("s", &net, "b", 4).unwrap(), (Ipv4Addr::new(10, 9, 0, 2), 0));
        assert_eq!(ipam.allocate("s", &net, "c", 7).unwrap(), (Ipv4Addr::new(10, 9, 0, 4), 2));
    }

    #[test]
    fn concurrent_allocations_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Arc::new(Ipam::new(dir.path().join("ipam")));
        let net = cidr("10.9.0.0/24");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let ipam = Arc::clone(&ipam);
                std::thread::spawn(move || {
                    (0..25).map(|i| ipam.allocate("s", &net, &format!("t{t}-{i}"), 0).unwrap().0).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Ipv4Addr> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        assert_eq!(all.len(), 200);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 200);
        assert_eq!(ipam.allocations().unwrap().len(), 200);
    }

    #[test]
    fn cidrs_without_room_are_refused() {
        assert!(validate_cidr(&cidr("10.0.0.0/31")).is_err());
        assert!(validate_cidr(&cidr("10.0.0.1/24")).is_err());
        assert!(validate_cidr(&cidr("10.0.0.0/30")).is_ok());
    }
}
