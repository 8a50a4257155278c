//! Garbage collection: what goes, what stays, and pushes racing a collection.

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use skiff_model::ecr::TagMutability;
use std::time::Duration;

#[tokio::test]
async fn removes_unreferenced_blobs_and_keeps_referenced_ones() {
    let h = Harness::new().await;
    h.create_repo("web", TagMutability::Mutable).await;
    let (kept, _) = h.push_image("web", "keep", &[b"shared", b"kept only"]).await;
    let (dropped, _) = h.push_image("web", "drop", &[b"shared", b"dropped only"]).await;
    let orphan = h.push_blob("web", b"pushed but never used").await;
    assert!(h.registry.delete_image("web", &dropped).await.unwrap());
    let before = blob_files(&h).len();

    let report = h.registry.collect_garbage_with_grace(Duration::ZERO).await.unwrap();
    // The deleted image's manifest, config and own layer, and the orphan.
    assert_eq!(report.blobs_removed, 4, "{report:?}");
    assert_eq!(blob_files(&h).len(), before - 4);
    assert!(report.bytes_freed > 0);
    assert!(report.links_removed >= 4, "{report:?}");
    h.get(&format!("/v2/web/blobs/{orphan}")).await.expect_error(404, "BLOB_UNKNOWN");
    h.get(&format!("/v2/web/manifests/{dropped}")).await.expect_error(404, "MANIFEST_UNKNOWN");

    // Everything of the kept image is still served.
    let manifest = h.get("/v2/web/manifests/keep").await;
    manifest.expect(200);
    assert_eq!(manifest.header("docker-content-digest"), Some(kept.as_str()));
    let doc = manifest.json();
    for layer in doc["layers"].as_array().unwrap() {
        h.get(&format!("/v2/web/blobs/{}", layer["digest"].as_str().unwrap())).await.expect(200);
    }
    h.get(&format!("/v2/web/blobs/{}", doc["config"]["digest"].as_str().unwrap())).await.expect(200);

    // A second run has nothing left to do.
    let again = h.registry.collect_garbage_with_grace(Duration::ZERO).await.unwrap();
    assert_eq!((again.blobs_removed, again.links_removed), (0, 0), "{again:?}");
}

#[tokio::test]
async fn keeps_blobs_of_pushes_in_progress() {
    let h = Harness::new().await;
    h.create_repo("web", TagMutability::Mutable).await;
    // Layers pushed, manifest not yet: within the grace period they stay.
    let config = h.push_blob("web", b"{}").await;
    let layer = h.push_blob("web", b"a layer").await;
    let report = h.registry.collect_garbage().await.unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    let manifest = manifest_json(
        &config,
        2,
        vec![serde_json::json!({ "mediaType": OCI_LAYER, "digest": layer, "size": 7 })],
        None,
    );
    h.put_manifest("web", "v1", OCI_MANIFEST, &manifest).await.expect(201);
}

#[tokio::test]
async fn a_blob_linked_in_two_repositories_survives_losing_one_link() {
    let h = Harness::new().await;
    h.create_repo("one", TagMutability::Mutable).await;
    h.create_repo("two", TagMutability::Mutable).await;
    let (one, _) = h.push_image("one", "v1", &[b"common layer"]).await;
    h.push_image("two", "v1", &[b"common layer"]).await;
    h.registry.delete_image("one", &one).await.unwrap();
    h.registry.collect_garbage_with_grace(Duration::ZERO).await.unwrap();
    let layer = sha256(b"common layer");
    h.get(&format!("/v2/one/blobs/{layer}")).await.expect_error(404, "BLOB_UNKNOWN");
    h.get(&format!("/v2/two/blobs/{layer}")).await.expect(200);
}

#[tokio::test]
async fn expires_idle_upload_sessions() {
    let h = Harness::with_ttl(Duration::from_millis(1)).await;
    h.create_repo("web", TagMutability::Mutable).await;
    let resp = h.send(Method::POST, "/v2/web/blobs/uploads/", &[], Bytes::new()).await;
    resp.expect(202);
    // A leftover temporary file of a crashed request.
    std::fs::write(h.root().join("uploads").join("manifest-leftover"), b"partial").unwrap();
    assert_eq!(upload_entries(&h).len(), 2);
    // Let the 1 ms TTL pass.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = h.registry.collect_garbage().await.unwrap();
    assert_eq!(report.uploads_expired, 1, "{report:?}");
    assert!(upload_entries(&h).is_empty(), "{:?}", upload_entries(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collections_racing_pushes_never_break_an_acknowledged_image() {
    let h = std::sync::Arc::new(Harness::new().await);
    h.create_repo("web", TagMutability::Mutable).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (h, stop) = (h.clone(), stop.clone());
        tokio::spawn(async move {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                h.registry.collect_garbage_with_grace(Duration::ZERO).await.unwrap();
                runs += 1;
                tokio::task::yield_now().await;
            }
            runs
        })
    };
    let mut pushers = Vec::new();
    for p in 0..4 {
        let h = h.clone();
        pushers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..10 {
                let layer = format!("layer {p}-{i}").into_bytes();
                let config = format!("{{\"p\":{p},\"i\":{i}}}").into_bytes();
                let c = h
                    .send(
                        Method::POST,
                        &format!("/v2/web/blobs/uploads/?digest={}", sha256(&config)),
                        &[],
                        config.clone(),
                    )
                    .await;
                let l = h
                    .send(
                        Method::POST,
                        &format!("/v2/web/blobs/uploads/?digest={}", sha256(&layer)),
                        &[],
                        layer.clone(),
                    )
                    .await;
                if c.status != 201 || l.status != 201 {
                    continue;
                }
                let manifest = manifest_json(
                    &sha256(&config),
                    config.len(),
                    vec![serde_json::json!({ "mediaType": OCI_LAYER, "digest": sha256(&layer), "size": layer.len() })],
                    None,
                );
                // With a zero grace period the collector may take the layers first: then the push is refused
                // (MANIFEST_BLOB_UNKNOWN), never accepted with a blob missing.
                let resp = h.put_manifest("web", &format!("t{p}-{i}"), OCI_MANIFEST, &manifest).await;
                match resp.status.as_u16() {
                    201 => acknowledged.push((format!("t{p}-{i}"), sha256(&config), sha256(&layer))),
                    400 => assert_eq!(resp.code(), "MANIFEST_BLOB_UNKNOWN"),
                    other => panic!("unexpected status {other}: {:?}", resp.body),
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for p in pushers {
        acknowledged.extend(p.await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = collector.await.unwrap();
    assert!(runs > 0);
    h.registry.collect_garbage_with_grace(Duration::ZERO).await.unwrap();
    for (tag, config, layer) in &acknowledged {
        h.get(&format!("/v2/web/manifests/{tag}")).await.expect(200);
        h.get(&format!("/v2/web/blobs/{config}")).await.expect(200);
        h.get(&format!("/v2/web/blobs/{layer}")).await.expect(200);
    }
}
