//! The agent's persisted view of its networking, under `state_dir`:
//! `subnets/<subnet-id>.json` (every prepared subnet: rebuilt into bridges and the nft table after a restart),
//! `tasks/<task-id>/network.json` (a task's attachment, written before anything is created on the host and
//! removed last on detach, so a crash at any line leaves a record to finish the job from) and, beside it, the
//! task's `hosts` and `resolv.conf`. Records are replaced atomically (temporary file + rename). Subnet
//! records are fsynced; task records are not, to keep fsyncs off the task-start path: the durable commit of
//! an attachment is its IPAM file, and only a power loss (which also ends every task and removes every
//! namespace and veth) can tear a task record — [`super::Network::adopt`] then cleans up by derived names
//! and reclaims the address. Blocking.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{NetworkError, Result};
use super::ipam::sync_dir;

pub const TASK_RECORD: &str = "network.json";

pub fn subnets_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("subnets")
}

pub fn tasks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("tasks")
}

/// Writes `bytes` to `path` atomically (temporary file + rename) and, if `durable`, fsyncs the file and
/// its directory.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        NetworkError::io("write", path, e)
    })
}

/// Writes `bytes` to `path` without fsync (for files that can be rendered again).
pub fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| NetworkError::io("write", path, e))
}

pub fn write_json<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(value).map_err(|e| NetworkError::Record { path: path.to_path_buf(), source: e })?;
    write_atomic(path, &bytes, durable)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(NetworkError::io("read", path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| NetworkError::Record { path: path.to_path_buf(), source: e })
}

/// Every `*.json` directly under `dir` (`subnets/`), or every `<dir>/*/network.json` (`tasks/`), decoded.
pub fn read_all<T: DeserializeOwned>(dir: &Path, nested: bool) -> Result<Vec<T>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetworkError::io("list", dir, e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| NetworkError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if nested {
            paths.push(entry.path().join(TASK_RECORD));
        } else if name.ends_with(".json") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        match read_json(&path) {
            Ok(Some(value)) => out.push(value),
            Ok(None) => {}
            // Task records are not fsynced (see the module comment): after a power loss one may be torn.
            Err(e @ NetworkError::Record { .. }) if nested => {
                tracing::warn!(error = %e, "skipping an unreadable task record");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Removes a file; a missing one is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("remove", path, e)),
    }
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("remove", path, e)),
    }
}
