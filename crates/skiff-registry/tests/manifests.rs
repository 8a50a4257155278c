//! Manifests, tags and listings through `Registry::handle`, and the API the ECR handlers use.

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use skiff_model::ecr::{keys, ImageRecord, TagMutability};
use skiff_store::Store as _;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

async fn harness() -> Harness {
    let h = Harness::new().await;
    h.create_repo("web", TagMutability::Mutable).await;
    h
}

async fn image_record(h: &Harness, repo: &str, digest: &str) -> Option<ImageRecord> {
    h.store.get(&keys::image(repo, digest)).await.unwrap().map(|v| serde_json::from_slice(&v.value).unwrap())
}

async fn image_count(h: &Harness, repo: &str) -> usize {
    h.store.scan(&keys::images_of(repo), None, 1000).await.unwrap().items.len()
}

#[tokio::test]
async fn push_and_pull_by_tag_and_by_digest() {
    let h = harness().await;
    let (digest, manifest) = h.push_image("web", "v1", &[b"layer one", b"layer two!"]).await;
    assert_eq!(digest, sha256(&manifest));

    for reference in ["v1", digest.as_str()] {
        let resp = h
            .send(Method::GET, &format!("/v2/web/manifests/{reference}"), &[("accept", OCI_MANIFEST)], Bytes::new())
            .await;
        resp.expect(200);
        assert_eq!(resp.body.as_ref(), manifest.as_slice());
        assert_eq!(resp.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
        let head = h.send(Method::HEAD, &format!("/v2/web/manifests/{reference}"), &[], Bytes::new()).await;
        head.expect(200);
        assert_eq!(head.header("content-length"), Some(manifest.len().to_string().as_str()));
        assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    }
    // The manifest is also a blob of the repository.
    assert_eq!(h.get(&format!("/v2/web/blobs/{digest}")).await.expect(200).body.as_ref(), manifest.as_slice());

    let record = image_record(&h, "web", &digest).await.unwrap();
    let config_len = br#"{"architecture":"amd64","os":"linux","tag":"v1","n":2}"#.len() as u64;
    assert_eq!(record.size, manifest.len() as u64 + config_len + 9 + 10);
    assert_eq!(record.manifest_size, manifest.len() as u64);
    assert_eq!(record.media_type, OCI_MANIFEST);
    assert_eq!(record.references.len(), 2);
    assert_eq!(h.registry.manifest("web", &digest).await.unwrap(), Some((manifest, OCI_MANIFEST.to_string())));
    assert_eq!(h.registry.manifest("web", &sha256(b"nope")).await.unwrap(), None);
}

#[tokio::test]
async fn put_response_carries_location_and_digest() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    let resp = h.put_manifest("web", "latest", OCI_MANIFEST, &manifest).await;
    resp.expect(201);
    let digest = sha256(&manifest);
    assert_eq!(resp.header("location"), Some(format!("/v2/web/manifests/{digest}").as_str()));
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(resp.header("oci-subject"), None);
}

#[tokio::test]
async fn docker_schema2_manifest_and_manifest_list() {
    let h = harness().await;
    let config = h.push_blob("web", b"{\"os\":\"linux\"}").await;
    let layer = h.push_blob("web", b"gzipped layer").await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 14 },
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 13 }],
    }))
    .unwrap();
    let resp = h.put_manifest("web", "amd64", DOCKER_MANIFEST, &manifest).await;
    resp.expect(201);
    let child = resp.header("docker-content-digest").unwrap().to_string();
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{ "mediaType": DOCKER_MANIFEST, "digest": child, "size": manifest.len(),
                        "platform": { "architecture": "amd64", "os": "linux" } }],
    }))
    .unwrap();
    let resp = h.put_manifest("web", "multi", DOCKER_LIST, &list).await;
    resp.expect(201);
    let got = h.get("/v2/web/manifests/multi").await;
    got.expect(200);
    assert_eq!(got.header("content-type"), Some(DOCKER_LIST));
    let record = image_record(&h, "web", &sha256(&list)).await.unwrap();
    assert_eq!(record.size, list.len() as u64, "an index counts only itself");
}

#[tokio::test]
async fn oci_index_of_pushed_manifests() {
    let h = harness().await;
    let (child, manifest) = h.push_image("web", "amd64", &[b"x"]).await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": child, "size": manifest.len() }],
    }))
    .unwrap();
    h.put_manifest("web", "latest", OCI_INDEX, &index).await.expect(201);
}

#[tokio::test]
async fn manifest_pushed_by_digest_is_untagged() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    let digest = sha256(&manifest);
    h.put_manifest("web", &digest, OCI_MANIFEST, &manifest).await.expect(201);
    assert!(image_record(&h, "web", &digest).await.is_some());
    assert_eq!(h.get("/v2/web/tags/list").await.expect(200).json()["tags"], serde_json::json!([]));
    // sha512 references are verified as well.
    let d512 = sha512(&manifest);
    h.put_manifest("web", &d512, OCI_MANIFEST, &manifest).await.expect(201);
    h.get(&format!("/v2/web/manifests/{d512}")).await.expect(200);
}

// ---- hostile manifests ----

#[tokio::test]
async fn manifest_naming_a_missing_blob_is_refused_and_nothing_is_stored() {
    let h = harness().await;
    let config = h.push_blob("web", b"{}").await;
    let missing = sha256(b"never pushed");
    let manifest = manifest_json(
        &config,
        2,
        vec![serde_json::json!({ "mediaType": OCI_LAYER, "digest": missing, "size": 12 })],
        None,
    );
    let files_before = blob_files(&h);
    let resp = h.put_manifest("web", "v1", OCI_MANIFEST, &manifest).await;
    resp.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(resp.json()["errors"][0]["detail"]["digest"], missing.as_str());
    assert_eq!(image_count(&h, "web").await, 0);
    assert!(h.store.get(&keys::tag("web", "v1")).await.unwrap().is_none());
    assert_eq!(blob_files(&h), files_before, "the refused manifest must not be stored as a blob");
    h.get("/v2/web/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn manifest_naming_a_blob_of_another_repository_is_refused() {
    let h = harness().await;
    h.create_repo("other", TagMutability::Mutable).await;
    let manifest = h.push_parts("other", b"{}", &[b"layer"], None).await;
    h.put_manifest("web", "v1", OCI_MANIFEST, &manifest).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifest_declaring_the_wrong_blob_size_is_refused() {
    let h = harness().await;
    let config = h.push_blob("web", b"{}").await;
    let layer = h.push_blob("web", b"12345").await;
    let manifest = manifest_json(
        &config,
        2,
        vec![serde_json::json!({ "mediaType": OCI_LAYER, "digest": layer, "size": 6 })],
        None,
    );
    h.put_manifest("web", "v1", OCI_MANIFEST, &manifest).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn index_naming_a_missing_manifest_is_refused() {
    let h = harness().await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": sha256(b"no such manifest"), "size": 100 }],
    }))
    .unwrap();
    h.put_manifest("web", "latest", OCI_INDEX, &index).await.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn manifest_over_4_mib_is_413() {
    let h = harness().await;
    let config = h.push_blob("web", b"{}").await;
    let padding = "x".repeat(4 * 1024 * 1024);
    let manifest = manifest_json(&config, 2, vec![], Some(&format!(r#"{{"annotations":{{"pad":"{padding}"}}}}"#)));
    let resp = h.put_manifest("web", "big", OCI_MANIFEST, &manifest).await;
    resp.expect_error(413, "MANIFEST_INVALID");
    // Also when the body streams in without a Content-Length.
    let body = ChunkedBody::new(manifest.chunks(65536).map(Bytes::copy_from_slice).collect(), false);
    let req = http::Request::builder()
        .method(Method::PUT)
        .uri("/v2/web/manifests/big")
        .header("content-type", OCI_MANIFEST)
        .body(body)
        .unwrap();
    h.send_request(req).await.expect_error(413, "MANIFEST_INVALID");
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn manifest_with_declared_length_over_4_mib_is_refused_before_reading() {
    let h = harness().await;
    let big = (5 * 1024 * 1024).to_string();
    let resp = h
        .send(
            Method::PUT,
            "/v2/web/manifests/big",
            &[("content-type", OCI_MANIFEST), ("content-length", &big)],
            Bytes::new(),
        )
        .await;
    resp.expect_error(413, "MANIFEST_INVALID");
}

#[tokio::test]
async fn unknown_media_type_is_manifest_invalid() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    let resp = h.put_manifest("web", "v1", "application/vnd.example.unknown+json", &manifest).await;
    resp.expect_error(400, "MANIFEST_INVALID");
    assert!(resp.message().contains("unknown media type"), "{}", resp.message());
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn schema1_manifest_is_manifest_invalid() {
    let h = harness().await;
    let body = br#"{"schemaVersion":1,"name":"web","tag":"v1","fsLayers":[]}"#;
    h.put_manifest("web", "v1", "application/vnd.docker.distribution.manifest.v1+prettyjws", body)
        .await
        .expect_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn content_type_contradicting_the_manifest_is_manifest_invalid() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    h.put_manifest("web", "v1", DOCKER_MANIFEST, &manifest).await.expect_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn manifest_that_is_not_json_is_manifest_invalid() {
    let h = harness().await;
    h.put_manifest("web", "v1", OCI_MANIFEST, b"\x00\x01 not json").await.expect_error(400, "MANIFEST_INVALID");
}

#[tokio::test]
async fn manifest_put_by_the_wrong_digest_is_digest_invalid() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    let wrong = sha256(b"other");
    h.put_manifest("web", &wrong, OCI_MANIFEST, &manifest).await.expect_error(400, "DIGEST_INVALID");
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn invalid_tags_are_tag_invalid() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    let long = "t".repeat(129);
    for tag in [".hidden", "-dash", "a%2Fb", long.as_str(), "tag%20space"] {
        h.put_manifest("web", tag, OCI_MANIFEST, &manifest).await.expect_error(400, "TAG_INVALID");
    }
    assert_eq!(image_count(&h, "web").await, 0);
}

#[tokio::test]
async fn immutable_tag_refuses_a_new_digest_but_accepts_the_same_one() {
    let h = Harness::new().await;
    h.create_repo("frozen", TagMutability::Immutable).await;
    let (digest, manifest) = h.push_image("frozen", "v1", &[b"first"]).await;
    // Same manifest again: idempotent.
    h.put_manifest("frozen", "v1", OCI_MANIFEST, &manifest).await.expect(201);
    let other = h.push_parts("frozen", b"{\"x\":1}", &[b"second"], None).await;
    let resp = h.put_manifest("frozen", "v1", OCI_MANIFEST, &other).await;
    resp.expect_error(400, "TAG_INVALID");
    assert_eq!(
        resp.message(),
        "The image tag 'v1' already exists in the 'frozen' repository and cannot be overwritten because the repository is immutable."
    );
    assert_eq!(
        h.get("/v2/frozen/manifests/v1").await.expect(200).header("docker-content-digest"),
        Some(digest.as_str())
    );
    // A new tag, or the other manifest by digest, is fine.
    h.put_manifest("frozen", "v2", OCI_MANIFEST, &other).await.expect(201);
}

#[tokio::test]
async fn concurrent_pushes_to_an_immutable_tag_let_exactly_one_win() {
    let h = Harness::new().await;
    h.create_repo("frozen", TagMutability::Immutable).await;
    let mut manifests = Vec::new();
    for i in 0..6 {
        manifests.push(h.push_parts("frozen", format!("{{\"i\":{i}}}").as_bytes(), &[b"shared layer"], None).await);
    }
    let results = join_all(manifests.iter().map(|m| h.put_manifest("frozen", "release", OCI_MANIFEST, m))).await;
    let won: Vec<_> = results.iter().filter(|r| r.status == 201).collect();
    assert_eq!(won.len(), 1, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(results.iter().filter(|r| r.status != 201).all(|r| r.code() == "TAG_INVALID"));
    let winner = won[0].header("docker-content-digest").unwrap();
    assert_eq!(h.get("/v2/frozen/manifests/release").await.header("docker-content-digest"), Some(winner));
}

#[tokio::test]
async fn mutable_tag_moves_and_the_old_image_stays_untagged() {
    let h = harness().await;
    let (first, _) = h.push_image("web", "latest", &[b"a"]).await;
    let (second, _) = h.push_image("web", "latest", &[b"b"]).await;
    assert_ne!(first, second);
    assert_eq!(h.get("/v2/web/manifests/latest").await.header("docker-content-digest"), Some(second.as_str()));
    h.get(&format!("/v2/web/manifests/{first}")).await.expect(200);
}

#[tokio::test]
async fn unknown_manifest_is_manifest_unknown() {
    let h = harness().await;
    h.get("/v2/web/manifests/nope").await.expect_error(404, "MANIFEST_UNKNOWN");
    h.get(&format!("/v2/web/manifests/{}", sha256(b"x"))).await.expect_error(404, "MANIFEST_UNKNOWN");
    h.send(Method::HEAD, "/v2/web/manifests/nope", &[], Bytes::new()).await.expect(404);
}

// ---- deletes ----

#[tokio::test]
async fn delete_by_digest_removes_the_image_and_its_tags() {
    let h = harness().await;
    let (digest, manifest) = h.push_image("web", "v1", &[b"a"]).await;
    h.put_manifest("web", "v1-alias", OCI_MANIFEST, &manifest).await.expect(201);
    h.send(Method::DELETE, &format!("/v2/web/manifests/{digest}"), &[], Bytes::new()).await.expect(202);
    h.get("/v2/web/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
    h.get("/v2/web/manifests/v1-alias").await.expect_error(404, "MANIFEST_UNKNOWN");
    h.get(&format!("/v2/web/manifests/{digest}")).await.expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(h.get("/v2/web/tags/list").await.json()["tags"], serde_json::json!([]));
    h.send(Method::DELETE, &format!("/v2/web/manifests/{digest}"), &[], Bytes::new())
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_by_tag_removes_only_the_tag() {
    let h = harness().await;
    let (digest, manifest) = h.push_image("web", "v1", &[b"a"]).await;
    h.put_manifest("web", "stable", OCI_MANIFEST, &manifest).await.expect(201);
    h.send(Method::DELETE, "/v2/web/manifests/v1", &[], Bytes::new()).await.expect(202);
    h.get("/v2/web/manifests/v1").await.expect_error(404, "MANIFEST_UNKNOWN");
    h.get("/v2/web/manifests/stable").await.expect(200);
    h.get(&format!("/v2/web/manifests/{digest}")).await.expect(200);
    h.send(Method::DELETE, "/v2/web/manifests/v1", &[], Bytes::new()).await.expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_tag_api_deletes_the_image_with_its_last_tag() {
    let h = harness().await;
    let (digest, manifest) = h.push_image("web", "a", &[b"x"]).await;
    h.put_manifest("web", "b", OCI_MANIFEST, &manifest).await.expect(201);
    assert_eq!(h.registry.delete_tag("web", "a", true).await.unwrap(), Some(digest.clone()));
    assert!(image_record(&h, "web", &digest).await.is_some(), "tag b still names it");
    assert_eq!(h.registry.delete_tag("web", "b", true).await.unwrap(), Some(digest.clone()));
    assert!(image_record(&h, "web", &digest).await.is_none());
    assert_eq!(h.registry.delete_tag("web", "b", true).await.unwrap(), None);
}

#[tokio::test]
async fn delete_image_api_removes_the_image_and_its_tags() {
    let h = harness().await;
    let (digest, _) = h.push_image("web", "v1", &[b"x"]).await;
    assert!(h.registry.delete_image("web", &digest).await.unwrap());
    assert!(!h.registry.delete_image("web", &digest).await.unwrap());
    assert!(h.store.get(&keys::tag("web", "v1")).await.unwrap().is_none());
}

#[tokio::test]
async fn delete_repository_contents_removes_everything_of_that_repository_only() {
    let h = harness().await;
    h.create_repo("web/sub", TagMutability::Mutable).await;
    h.push_image("web", "v1", &[b"x"]).await;
    h.push_image("web", "v2", &[b"y"]).await;
    h.push_image("web/sub", "v1", &[b"x"]).await;
    assert_eq!(h.registry.delete_repository_contents("web").await.unwrap(), 2);
    for prefix in [keys::images_of("web"), keys::tags_of("web"), keys::blobs_of("web")] {
        assert!(h.store.scan(&prefix, None, 10).await.unwrap().items.is_empty(), "{prefix}");
    }
    h.get("/v2/web/sub/manifests/v1").await.expect(200);
}

// ---- listings ----

#[tokio::test]
async fn tags_list_paginates_with_a_link_header() {
    let h = harness().await;
    let manifest = h.push_parts("web", b"{}", &[b"l"], None).await;
    for tag in ["c", "a", "e", "b", "d"] {
        h.put_manifest("web", tag, OCI_MANIFEST, &manifest).await.expect(201);
    }
    let all = h.get("/v2/web/tags/list").await;
    assert_eq!(all.json(), serde_json::json!({ "name": "web", "tags": ["a", "b", "c", "d", "e"] }));
    assert_eq!(all.header("link"), None);
    let first = h.get("/v2/web/tags/list?n=2").await;
    assert_eq!(first.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(first.header("link"), Some(r#"</v2/web/tags/list?n=2&last=b>; rel="next""#));
    let second = h.get("/v2/web/tags/list?n=2&last=b").await;
    assert_eq!(second.json()["tags"], serde_json::json!(["c", "d"]));
    let third = h.get("/v2/web/tags/list?n=2&last=d").await;
    assert_eq!(third.json()["tags"], serde_json::json!(["e"]));
    assert_eq!(third.header("link"), None);
    assert_eq!(h.get("/v2/web/tags/list?n=0").await.json()["tags"], serde_json::json!([]));
    h.get("/v2/web/tags/list?n=-1").await.expect(400);
    h.get("/v2/nope/tags/list").await.expect_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn catalog_lists_repositories_with_pagination() {
    let h = harness().await;
    for name in ["alpha", "team/api", "zeta"] {
        h.create_repo(name, TagMutability::Mutable).await;
    }
    let all = h.get("/v2/_catalog").await;
    assert_eq!(all.expect(200).json(), serde_json::json!({ "repositories": ["alpha", "team/api", "web", "zeta"] }));
    let first = h.get("/v2/_catalog?n=2").await;
    assert_eq!(first.json()["repositories"], serde_json::json!(["alpha", "team/api"]));
    assert_eq!(first.header("link"), Some(r#"</v2/_catalog?n=2&last=team%2Fapi>; rel="next""#));
    let second = h.get("/v2/_catalog?n=2&last=team%2Fapi").await;
    assert_eq!(second.json()["repositories"], serde_json::json!(["web", "zeta"]));
    assert_eq!(second.header("link"), None);
}

#[tokio::test]
async fn referrers_with_and_without_an_artifact_type_filter() {
    let h = harness().await;
    let (subject, subject_manifest) = h.push_image("web", "v1", &[b"app"]).await;
    let subject_desc = format!(
        r#"{{"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":{}}}}}"#,
        subject_manifest.len()
    );
    let sig = h.push_parts("web", b"{\"sig\":1}", &[b"signature"], None).await;
    let mut sig_doc: serde_json::Value = serde_json::from_slice(&sig).unwrap();
    sig_doc["artifactType"] = "application/vnd.example.signature".into();
    sig_doc["subject"] = serde_json::from_str::<serde_json::Value>(&subject_desc).unwrap()["subject"].clone();
    sig_doc["annotations"] = serde_json::json!({ "org.example.signed-by": "me" });
    let sig = serde_json::to_vec(&sig_doc).unwrap();
    let resp = h.put_manifest("web", &sha256(&sig), OCI_MANIFEST, &sig).await;
    resp.expect(201);
    assert_eq!(resp.header("oci-subject"), Some(subject.as_str()));
    // An SBOM typed by its config media type only.
    let sbom_config = h.push_blob("web", b"{\"sbom\":true}").await;
    let mut sbom: serde_json::Value =
        serde_json::from_slice(&manifest_json(&sbom_config, 13, vec![], Some(&subject_desc))).unwrap();
    sbom["config"]["mediaType"] = "application/vnd.example.sbom".into();
    let sbom = serde_json::to_vec(&sbom).unwrap();
    h.put_manifest("web", &sha256(&sbom), OCI_MANIFEST, &sbom).await.expect(201);

    let all = h.get(&format!("/v2/web/referrers/{subject}")).await;
    all.expect(200);
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    assert_eq!(all.header("oci-filters-applied"), None);
    let doc = all.json();
    assert_eq!(doc["mediaType"], OCI_INDEX);
    let mut types: Vec<_> =
        doc["manifests"].as_array().unwrap().iter().map(|m| m["artifactType"].as_str().unwrap().to_string()).collect();
    types.sort();
    assert_eq!(types, ["application/vnd.example.sbom", "application/vnd.example.signature"]);

    let filtered = h.get(&format!("/v2/web/referrers/{subject}?artifactType=application/vnd.example.signature")).await;
    filtered.expect(200);
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let manifests = filtered.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], sha256(&sig).as_str());
    assert_eq!(manifests[0]["size"], sig.len());
    assert_eq!(manifests[0]["annotations"]["org.example.signed-by"], "me");

    // A subject nothing refers to: an empty index, not an error.
    let none = h.get(&format!("/v2/web/referrers/{}", sha256(b"lonely"))).await;
    assert_eq!(none.expect(200).json()["manifests"], serde_json::json!([]));
}
