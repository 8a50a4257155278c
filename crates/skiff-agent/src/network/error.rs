//! The one error type of task networking: every variant names the task, subnet, path or link it failed on.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// What went wrong while preparing a subnet or attaching / detaching a task.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: &'static str },
    #[error("subnet {subnet_id} was prepared as {existing}, not {requested}")]
    SubnetConflict { subnet_id: String, existing: String, requested: String },
    #[error("task {task_id} is already attached (detach it first)")]
    AlreadyAttached { task_id: String },
    #[error("subnet {subnet_id} ({cidr}) has no free address")]
    SubnetExhausted { subnet_id: String, cidr: String },
    #[error("{op} {target}: {source}")]
    Netlink {
        op: &'static str,
        target: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nft -f - for table {table} failed: {stderr}")]
    Nft { table: String, stderr: String },
    #[error("persisted record {} is unreadable: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("address {ip} of task {task_id} is outside subnet {subnet_id}")]
    AddressOutsideSubnet { task_id: String, ip: Ipv4Addr, subnet_id: String },
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

impl NetworkError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        NetworkError::Io { op, path: path.into(), source }
    }

    pub(crate) fn netlink(op: &'static str, target: impl Into<String>, source: rtnetlink::Error) -> Self {
        NetworkError::Netlink { op, target: target.into(), source }
    }

    pub(crate) fn sys(op: &'static str, source: impl Into<std::io::Error>) -> Self {
        NetworkError::Sys { op, source: source.into() }
    }
}

/// The errno a netlink request failed with, if it was the kernel that refused it.
pub(crate) fn netlink_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}
