//! Upload sessions: `ROOT/uploads/<uuid>/data` (the bytes so far) and `ROOT/uploads/<uuid>/state` (the
//! repository and creation time). In memory each session also keeps its offset and the running sha256, so a
//! chunk is hashed once as it arrives; after a restart the state is rebuilt from the files (the hash by
//! rereading the data at the end). One request at a time works on a session: each holds its lock.
//!
//! A session idle for longer than the TTL is gone: removed when next touched, or by [`Uploads::expire_idle`].

use crate::digest::{Algorithm, Hasher};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

const DATA: &str = "data";
const STATE: &str = "state";

#[derive(Serialize, Deserialize)]
struct StateFile {
    repository: String,
    created_at: i64,
}

/// A live session, as the request holding its lock sees it.
pub struct Session {
    pub id: Uuid,
    pub repository: String,
    /// Bytes received so far (the data file's length).
    pub offset: u64,
    /// The sha256 of those bytes, while it is known; `None` after a restart.
    pub hasher: Option<Hasher>,
    last_active: SystemTime,
}

enum Slot {
    /// Not read from disk yet.
    Unloaded,
    Live(Box<Session>),
    /// Finished, cancelled or expired.
    Gone,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

pub struct Uploads {
    dir: PathBuf,
    ttl: Duration,
    slots: Mutex<HashMap<Uuid, SlotRef>>,
}

/// Exclusive access to one live session.
pub struct SessionGuard {
    guard: tokio::sync::OwnedMutexGuard<Slot>,
    dir: PathBuf,
}

impl Uploads {
    pub fn open(dir: PathBuf, ttl: Duration) -> io::Result<Uploads> {
        std::fs::create_dir_all(&dir)?;
        Ok(Uploads { dir, ttl, slots: Mutex::new(HashMap::new()) })
    }

    /// Where temporary files live (the same filesystem as the blobs, so a rename moves them into place).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn slot(&self, id: Uuid) -> SlotRef {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(id).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Unloaded))).clone()
    }

    fn forget(&self, id: Uuid, slot: &SlotRef) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&id);
        }
    }

    /// Starts a session for `repository` and returns it locked. The files are created under the session's
    /// lock, so nothing else ever sees a half-created session.
    pub async fn create(&self, repository: &str) -> io::Result<SessionGuard> {
        let id = Uuid::new_v4();
        let dir = self.dir.join(id.to_string());
        let slot = self.slot(id);
        let mut guard = slot.clone().lock_owned().await;
        let state =
            serde_json::to_vec(&StateFile { repository: repository.to_string(), created_at: crate::now_millis() })
                .map_err(io::Error::other)?;
        let dir2 = dir.clone();
        let created = tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::create_dir(&dir2)?;
            std::fs::File::create(dir2.join(DATA))?;
            std::fs::write(dir2.join(STATE), state)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        if let Err(e) = created {
            let _ = remove_dir(&dir).await;
            *guard = Slot::Gone;
            self.forget(id, &slot);
            return Err(e);
        }
        *guard = Slot::Live(Box::new(Session {
            id,
            repository: repository.to_string(),
            offset: 0,
            hasher: Some(Hasher::new(Algorithm::Sha256)),
            last_active: SystemTime::now(),
        }));
        Ok(SessionGuard { guard, dir })
    }

    /// Locks the session `id` of `repository`; `None` when it does not exist, expired, or belongs to another
    /// repository.
    pub async fn acquire(&self, id: &str, repository: &str) -> io::Result<Option<SessionGuard>> {
        let Ok(id) = Uuid::parse_str(id) else { return Ok(None) };
        let slot = self.slot(id);
        let guard = slot.clone().lock_owned().await;
        let session = self.settle(id, &slot, guard).await?;
        Ok(session.filter(|s| s.session().repository == repository))
    }

    /// Loads an unloaded slot and expires an idle one; returns the guard if the session is live.
    async fn settle(
        &self,
        id: Uuid,
        slot: &SlotRef,
        mut guard: tokio::sync::OwnedMutexGuard<Slot>,
    ) -> io::Result<Option<SessionGuard>> {
        let dir = self.dir.join(id.to_string());
        if matches!(*guard, Slot::Unloaded) {
            *guard = match load(&dir).await? {
                Some(session) => Slot::Live(Box::new(Session { id, ..session })),
                None => {
                    // Absent, or left half-created by a crash (creation happens under this lock).
                    remove_dir(&dir).await?;
                    Slot::Gone
                }
            };
        }
        let expired = match &*guard {
            Slot::Live(s) => SystemTime::now().duration_since(s.last_active).unwrap_or_default() > self.ttl,
            _ => false,
        };
        if expired {
            tracing::debug!("upload session {id} expired");
            remove_dir(&dir).await?;
            *guard = Slot::Gone;
        }
        if matches!(*guard, Slot::Gone) {
            self.forget(id, slot);
            return Ok(None);
        }
        Ok(Some(SessionGuard { guard, dir }))
    }

    /// Removes the session and its files (finished, cancelled or failed).
    pub async fn finish(&self, mut session: SessionGuard) -> io::Result<()> {
        let id = session.session().id;
        let result = remove_dir(&session.dir).await;
        *session.guard = Slot::Gone;
        // Requests parked on this slot see `Gone`; later ones find no slot and nothing on disk.
        let slot = tokio::sync::OwnedMutexGuard::mutex(&session.guard).clone();
        self.forget(id, &slot);
        result
    }

    /// Removes sessions idle longer than the TTL, and stray files in the uploads directory older than it.
    /// Sessions in use right now are skipped. Returns how many were removed.
    pub async fn expire_idle(&self) -> io::Result<u64> {
        let dir = self.dir.clone();
        let entries = tokio::task::spawn_blocking(move || -> io::Result<Vec<(String, bool, SystemTime)>> {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let Ok(meta) = entry.metadata() else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                out.push((name, meta.is_dir(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
            }
            Ok(out)
        })
        .await
        .map_err(io::Error::other)??;
        let mut removed = 0;
        for (name, is_dir, modified) in entries {
            let idle = SystemTime::now().duration_since(modified).unwrap_or_default() > self.ttl;
            match Uuid::parse_str(&name) {
                Ok(id) if is_dir => {
                    let slot = self.slot(id);
                    let Ok(guard) = slot.clone().try_lock_owned() else { continue };
                    if self.settle(id, &slot, guard).await?.is_none() {
                        removed += 1;
                    }
                }
                _ if idle => {
                    // A temporary file of a request that never finished (a crash).
                    let path = self.dir.join(&name);
                    let result = if is_dir { remove_dir(&path).await } else { remove_file(&path).await };
                    result?;
                }
                _ => {}
            }
        }
        Ok(removed)
    }

    /// Cancels every session of `repository` (its repository is being deleted). Sessions in use are skipped.
    pub async fn cancel_repository(&self, repository: &str) -> io::Result<()> {
        let dir = self.dir.clone();
        let names = tokio::task::spawn_blocking(move || -> io::Result<Vec<String>> {
            Ok(std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect())
        })
        .await
        .map_err(io::Error::other)??;
        for name in names {
            if let Some(session) = self.acquire(&name, repository).await? {
                self.finish(session).await?;
            }
        }
        Ok(())
    }
}

impl SessionGuard {
    pub fn session(&self) -> &Session {
        match &*self.guard {
            Slot::Live(s) => s,
            // A guard is only handed out for a live slot and dropped when it stops being one.
            Slot::Unloaded | Slot::Gone => unreachable!("session guard over a slot that is not live"),
        }
    }

    pub fn session_mut(&mut self) -> &mut Session {
        match &mut *self.guard {
            Slot::Live(s) => s,
            Slot::Unloaded | Slot::Gone => unreachable!("session guard over a slot that is not live"),
        }
    }

    pub fn data_path(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    /// Records that the session was used now.
    pub fn touch(&mut self) {
        self.session_mut().last_active = SystemTime::now();
    }
}

/// Reads a session back from disk: `None` when it is not there (or half-created by a crash).
async fn load(dir: &Path) -> io::Result<Option<Session>> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> io::Result<Option<Session>> {
        let state = match std::fs::read(dir.join(STATE)) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Ok(state) = serde_json::from_slice::<StateFile>(&state) else { return Ok(None) };
        let data = match std::fs::metadata(dir.join(DATA)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let created = SystemTime::UNIX_EPOCH + Duration::from_millis(state.created_at.max(0) as u64);
        let last_active = data.modified().unwrap_or(created).max(created);
        Ok(Some(Session {
            id: Uuid::nil(),
            repository: state.repository,
            offset: data.len(),
            hasher: None,
            last_active,
        }))
    })
    .await
    .map_err(io::Error::other)?
}

async fn remove_dir(dir: &Path) -> io::Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn remove_file(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
