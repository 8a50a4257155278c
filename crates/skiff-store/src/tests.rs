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

#[tokio::test]
async fn failed_commit_leaves_memory_unchanged_and_reopen_matches_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = SqliteStore::open(&path).unwrap();
    for i in 0..50 {
        s.txn(Txn::new().put(format!("k/{i:03}"), vec![i as u8])).await.unwrap();
    }
    s.txn(Txn::new().delete("k/007")).await.unwrap();
    let before = s.scan("", None, 1000).await.unwrap();
    let rev = s.revision().await.unwrap();
    drop(s);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(reopened.scan("", None, 1000).await.unwrap(), before);
    assert_eq!(reopened.revision().await.unwrap(), rev);
}

#[tokio::test]
async fn concurrent_compare_and_swap_increments_are_never_lost() {
    let (_d, s) = open().await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let cur = s.get("counter").await.unwrap();
                    let (n, rev) = cur
                        .map_or((0u32, 0), |v| (u32::from_le_bytes(v.value[..4].try_into().unwrap()), v.mod_revision));
                    let t = Txn::new().when("counter", rev).put("counter", (n + 1).to_le_bytes().to_vec());
                    if let TxnOutcome::Committed(_) = s.txn(t).await.unwrap() {
                        break;
                    }
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let v = s.get("counter").await.unwrap().unwrap();
    assert_eq!(u32::from_le_bytes(v.value[..4].try_into().unwrap()), 200);
}
