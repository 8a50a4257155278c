//! The embedded backend: SQLite in WAL mode is the durable record (every write synced before it is
//! acknowledged), and the whole key space is also kept in memory, written through after each commit, so
//! reads never touch the disk or wait for a writer.

use crate::{Op, Page, Store, StoreError, Txn, TxnOutcome, Versioned};
use async_trait::async_trait;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: the key space and the global revision counter.
    "CREATE TABLE kv (
         key TEXT PRIMARY KEY NOT NULL,
         value BLOB NOT NULL,
         create_revision INTEGER NOT NULL,
         mod_revision INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
     INSERT INTO meta (name, value) VALUES ('revision', 0);",
];

/// The in-memory copy of the key space and its revision; changed only after SQLite committed.
#[derive(Default)]
struct Snapshot {
    kv: BTreeMap<String, Versioned>,
    revision: i64,
}

struct Inner {
    /// The one writer connection; holding it serialises transactions.
    conn: Mutex<Connection>,
    snapshot: RwLock<Snapshot>,
    path: PathBuf,
}

/// SQLite-backed [`Store`]. Cheap to clone; all clones share one database and one in-memory copy.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn poisoned() -> StoreError {
    StoreError::Backend("store lock poisoned by an earlier panic".into())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, brings its schema up to date and loads the key
    /// space into memory.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        let mut conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| open_err(e.to_string()))?;
        // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| open_err(e.to_string()))?;
        migrate(&mut conn).map_err(|e| open_err(format!("schema migration failed: {e}")))?;
        let snapshot = load(&conn).map_err(|e| open_err(format!("cannot read the key space: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                snapshot: RwLock::new(snapshot),
                path: path.to_path_buf(),
            }),
        })
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn load(conn: &Connection) -> rusqlite::Result<Snapshot> {
    let revision = conn.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| r.get(0))?;
    let mut stmt = conn.prepare("SELECT key, value, mod_revision FROM kv")?;
    let kv = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, Versioned { value: r.get(1)?, mod_revision: r.get(2)? })))?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(Snapshot { kv, revision })
}

/// The smallest string greater than every string starting with `prefix` (for range scans).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// Writes `txn` to SQLite at `revision`; the caller holds the writer connection.
fn commit(conn: &mut Connection, txn: &Txn, revision: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("UPDATE meta SET value = ?1 WHERE name = 'revision'", params![revision])?;
    for op in &txn.ops {
        match op {
            Op::Put { key, value } => tx
                .prepare_cached(
                    "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision",
                )?
                .execute(params![key, value, revision])?,
            Op::Delete { key } => tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?.execute(params![key])?,
        };
    }
    tx.commit()
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(self.inner.snapshot.read().map_err(|_| poisoned())?.kv.get(key).cloned())
    }

    async fn scan(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let lower = match start_after {
            Some(s) if s >= prefix => Bound::Excluded(s.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let upper = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        let snapshot = self.inner.snapshot.read().map_err(|_| poisoned())?;
        let mut items: Vec<(String, Versioned)> = snapshot
            .kv
            .range((lower, upper))
            .take(limit.saturating_add(1))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        let inner = self.inner.clone();
        // SQLite calls, and the fsync of the commit above all, block: run them off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().map_err(|_| poisoned())?;
            // Holding the writer connection, nothing else changes the snapshot: compare against it.
            let revision = {
                let snapshot = inner.snapshot.read().map_err(|_| poisoned())?;
                let holds = txn
                    .compares
                    .iter()
                    .all(|c| snapshot.kv.get(&c.key).map_or(0, |v| v.mod_revision) == c.mod_revision);
                if !holds {
                    return Ok(TxnOutcome::Conflict);
                }
                snapshot.revision + 1
            };
            commit(&mut conn, &txn, revision).map_err(backend)?;
            let mut snapshot = inner.snapshot.write().map_err(|_| poisoned())?;
            for op in txn.ops {
                match op {
                    Op::Put { key, value } => {
                        snapshot.kv.insert(key, Versioned { value, mod_revision: revision });
                    }
                    Op::Delete { key } => {
                        snapshot.kv.remove(&key);
                    }
                }
            }
            snapshot.revision = revision;
            Ok(TxnOutcome::Committed(revision))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store writer failed: {e}")))?
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        Ok(self.inner.snapshot.read().map_err(|_| poisoned())?.revision)
    }
}
