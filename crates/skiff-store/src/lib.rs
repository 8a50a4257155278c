//! `skiff-store` owns Skiff's durable state behind one small trait, [`Store`]: a revisioned key-value
//! store with etcd's semantics (a global revision, per-key `mod_revision`, atomic compare-and-swap
//! transactions, ordered prefix scans), so that the embedded SQLite backend here and an etcd backend
//! later are interchangeable and pass one shared test suite.
//!
//! It knows nothing of ECS or AWS: values are opaque bytes, keys are strings. A write is acknowledged only
//! once it is durable (SQLite WAL with `synchronous=FULL`); reads are served from memory. Holding a revision never means exclusivity:
//! writers that depend on what they read put a [`Compare`] on it in their [`Txn`].

mod sqlite;

pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// A stored value and the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// A precondition of a transaction, on one key's `mod_revision` (0 means "the key does not exist").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub mod_revision: i64,
}

/// A write in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

/// All-or-nothing: if every compare holds, every op is applied under one new revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `key` to be at `mod_revision` (0: absent).
    pub fn when(mut self, key: impl Into<String>, mod_revision: i64) -> Self {
        self.compares.push(Compare { key: key.into(), mod_revision });
        self
    }

    pub fn put(mut self, key: impl Into<String>, value: Vec<u8>) -> Self {
        self.ops.push(Op::Put { key: key.into(), value });
        self
    }

    pub fn delete(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }
}

/// The outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Applied at this revision.
    Committed(i64),
    /// A compare failed; nothing was written.
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store backend failed: {0}")]
    Backend(String),
    #[error("cannot open store at {path}: {reason}")]
    Open { path: String, reason: String },
}

/// A page of an ordered prefix scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<(String, Versioned)>,
    /// Set when more keys follow the last one returned.
    pub more: bool,
}

/// The durable state every controller and API handler works on.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError>;

    /// Keys starting with `prefix`, in byte order, strictly after `start_after` when given, at most `limit`.
    async fn scan(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<Page, StoreError>;

    /// Applies `txn` atomically and durably, or reports the conflict.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome, StoreError>;

    /// The store's current revision.
    async fn revision(&self) -> Result<i64, StoreError>;
}

#[cfg(test)]
mod tests;
