//! The embedded backend: one SQLite database in WAL mode, writes synced before they are acknowledged.

use crate::{Op, Page, Store, StoreError, Txn, TxnOutcome, Versioned};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// SQLite-backed [`Store`]. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |reason: String| StoreError::Open { path: path.display().to_string(), reason };
        let mut conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| open_err(e.to_string()))?;
        // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
        conn.pragma_update(None, "synchronous", "FULL").map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| open_err(e.to_string()))?;
        migrate(&mut conn).map_err(|e| open_err(format!("schema migration failed: {e}")))?;
        Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), path: path.to_path_buf() })
    }

    /// Runs `f` on the connection on a blocking thread (SQLite calls, and fsync above all, block).
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard =
                conn.lock().map_err(|_| StoreError::Backend("store connection poisoned by an earlier panic".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store worker failed: {e}")))?
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

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let key = key.to_string();
        self.with_conn(move |c| {
            c.prepare_cached("SELECT value, mod_revision FROM kv WHERE key = ?1")
                .and_then(|mut s| {
                    s.query_row(params![key], |r| Ok(Versioned { value: r.get(0)?, mod_revision: r.get(1)? }))
                        .optional()
                })
                .map_err(backend)
        })
        .await
    }

    async fn scan(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let lower = match start_after {
            Some(s) if s >= prefix => s.to_string(),
            _ => prefix.to_string(),
        };
        let inclusive = start_after.is_none_or(|s| s < prefix);
        let upper = prefix_end(prefix);
        let limit = limit.min(i64::MAX as usize - 1) as i64;
        self.with_conn(move |c| {
            let sql = match (inclusive, upper.is_some()) {
                (true, true) => {
                    "SELECT key, value, mod_revision FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                }
                (false, true) => {
                    "SELECT key, value, mod_revision FROM kv WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                }
                (true, false) => {
                    "SELECT key, value, mod_revision FROM kv WHERE key >= ?1 AND ?2 IS NULL ORDER BY key LIMIT ?3"
                }
                (false, false) => {
                    "SELECT key, value, mod_revision FROM kv WHERE key > ?1 AND ?2 IS NULL ORDER BY key LIMIT ?3"
                }
            };
            let mut stmt = c.prepare_cached(sql).map_err(backend)?;
            let rows = stmt
                .query_map(params![lower, upper, limit + 1], |r| {
                    Ok((r.get::<_, String>(0)?, Versioned { value: r.get(1)?, mod_revision: r.get(2)? }))
                })
                .map_err(backend)?;
            let mut items = rows.collect::<Result<Vec<_>, _>>().map_err(backend)?;
            let more = items.len() as i64 > limit;
            items.truncate(limit as usize);
            Ok(Page { items, more })
        })
        .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError> {
        self.with_conn(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            for cmp in &txn.compares {
                let current: i64 = tx
                    .prepare_cached("SELECT mod_revision FROM kv WHERE key = ?1")
                    .and_then(|mut s| s.query_row(params![cmp.key], |r| r.get(0)).optional())
                    .map_err(backend)?
                    .unwrap_or(0);
                if current != cmp.mod_revision {
                    return Ok(TxnOutcome::Conflict);
                }
            }
            let revision: i64 = tx
                .query_row("UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value", [], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            for op in &txn.ops {
                match op {
                    Op::Put { key, value } => tx
                        .prepare_cached(
                            "INSERT INTO kv (key, value, create_revision, mod_revision) VALUES (?1, ?2, ?3, ?3)
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision",
                        )
                        .and_then(|mut s| s.execute(params![key, value, revision]))
                        .map_err(backend)?,
                    Op::Delete { key } => tx
                        .prepare_cached("DELETE FROM kv WHERE key = ?1")
                        .and_then(|mut s| s.execute(params![key]))
                        .map_err(backend)?,
                };
            }
            tx.commit().map_err(backend)?;
            Ok(TxnOutcome::Committed(revision))
        })
        .await
    }

    async fn revision(&self) -> Result<i64, StoreError> {
        self.with_conn(|c| {
            c.query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| r.get(0)).map_err(backend)
        })
        .await
    }
}
