//! The behaviour every [`Store`] backend must have; run here against SQLite.

use super::*;

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn put_get_delete_with_revisions() {
    let (_d, s) = open().await;
    assert_eq!(s.get("a").await.unwrap(), None);
    let TxnOutcome::Committed(r1) = s.txn(Txn::new().put("a", b"1".to_vec())).await.unwrap() else {
        panic!("conflict")
    };
    assert_eq!(s.get("a").await.unwrap(), Some(Versioned { value: b"1".to_vec(), mod_revision: r1 }));
    assert_eq!(s.revision().await.unwrap(), r1);
    s.txn(Txn::new().delete("a")).await.unwrap();
    assert_eq!(s.get("a").await.unwrap(), None);
}

#[tokio::test]
async fn compare_and_swap_is_all_or_nothing() {
    let (_d, s) = open().await;
    // Create-if-absent succeeds once.
    assert!(matches!(s.txn(Txn::new().when("k", 0).put("k", b"x".to_vec())).await.unwrap(), TxnOutcome::Committed(_)));
    let out = s.txn(Txn::new().when("k", 0).put("k", b"y".to_vec()).put("other", b"z".to_vec())).await.unwrap();
    assert_eq!(out, TxnOutcome::Conflict);
    assert_eq!(s.get("k").await.unwrap().unwrap().value, b"x");
    assert_eq!(s.get("other").await.unwrap(), None, "a failed txn must write nothing");
    let rev = s.get("k").await.unwrap().unwrap().mod_revision;
    assert!(matches!(
        s.txn(Txn::new().when("k", rev).put("k", b"y".to_vec())).await.unwrap(),
        TxnOutcome::Committed(_)
    ));
}

#[tokio::test]
async fn scans_are_ordered_paged_and_prefix_bounded() {
    let (_d, s) = open().await;
    let mut txn = Txn::new();
    for k in ["a/1", "a/2", "a/3", "a0", "b/1", "a/"] {
        txn = txn.put(k, k.as_bytes().to_vec());
    }
    s.txn(txn).await.unwrap();
    let keys = |p: &Page| p.items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    let p = s.scan("a/", None, 2).await.unwrap();
    assert_eq!(keys(&p), ["a/", "a/1"]);
    assert!(p.more);
    let p = s.scan("a/", Some("a/1"), 10).await.unwrap();
    assert_eq!(keys(&p), ["a/2", "a/3"]);
    assert!(!p.more);
    let p = s.scan("", None, 100).await.unwrap();
    assert_eq!(p.items.len(), 6);
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.txn(Txn::new().put("k", b"v".to_vec())).await.unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get("k").await.unwrap().unwrap().value, b"v");
    assert_eq!(s.revision().await.unwrap(), 1);
}

#[test]
fn prefix_end_bounds() {
    assert_eq!(crate::sqlite::prefix_end("a/"), Some("a0".to_string()));
    assert_eq!(crate::sqlite::prefix_end(""), None);
}
