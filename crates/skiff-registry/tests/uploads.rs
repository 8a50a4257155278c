//! Blob uploads and downloads through `Registry::handle`: monolithic, chunked, resumed, mounted, ranged, and
//! every way an upload can go wrong.

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use skiff_model::ecr::TagMutability;
use std::time::Duration;

async fn harness() -> Harness {
    let h = Harness::new().await;
    h.create_repo("team/web", TagMutability::Mutable).await;
    h
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Starts a session; returns its Location.
async fn start(h: &Harness, repo: &str) -> String {
    let resp = h.send(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], Bytes::new()).await;
    resp.expect(202);
    assert_eq!(resp.header("range"), Some("0-0"));
    assert!(resp.header("docker-upload-uuid").is_some());
    assert!(resp.header("oci-chunk-min-length").is_some());
    let location = resp.header("location").unwrap().to_string();
    assert!(location.starts_with(&format!("/v2/{repo}/blobs/uploads/")), "{location}");
    location
}

#[tokio::test]
async fn api_base_answers_with_the_version_header() {
    let h = harness().await;
    let resp = h.get("/v2/").await;
    resp.expect(200);
    assert_eq!(resp.header("docker-distribution-api-version"), Some("registry/2.0"));
    assert_eq!(resp.json(), serde_json::json!({}));
}

#[tokio::test]
async fn monolithic_upload_stores_and_serves_the_blob() {
    let h = harness().await;
    let blob = data(300_000);
    let digest = sha256(&blob);
    let resp = h.send(Method::POST, &format!("/v2/team/web/blobs/uploads/?digest={digest}"), &[], blob.clone()).await;
    resp.expect(201);
    assert_eq!(resp.header("location"), Some(format!("/v2/team/web/blobs/{digest}").as_str()));
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));

    let got = h.get(&format!("/v2/team/web/blobs/{digest}")).await;
    got.expect(200);
    assert_eq!(got.body.as_ref(), blob.as_slice());
    assert_eq!(got.header("content-length"), Some("300000"));
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert_eq!(got.header("docker-content-digest"), Some(digest.as_str()));

    let head = h.send(Method::HEAD, &format!("/v2/team/web/blobs/{digest}"), &[], Bytes::new()).await;
    head.expect(200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("300000"));
    assert_eq!(blob_files(&h).len(), 1);
    assert!(upload_entries(&h).is_empty(), "session left behind: {:?}", upload_entries(&h));
}

#[tokio::test]
async fn chunked_upload_patches_then_puts_the_last_chunk() {
    let h = harness().await;
    let blob = data(1_000_000);
    let digest = sha256(&blob);
    let location = start(&h, "team/web").await;
    let (a, rest) = blob.split_at(400_000);
    let (b, c) = rest.split_at(400_000);
    let resp = h
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-399999"), ("content-type", "application/octet-stream")],
            a.to_vec(),
        )
        .await;
    resp.expect(202);
    assert_eq!(resp.header("range"), Some("0-399999"));
    // Without Content-Range (the Docker "stream" style) too.
    let resp = h.send(Method::PATCH, &location, &[], b.to_vec()).await;
    resp.expect(202);
    assert_eq!(resp.header("range"), Some("0-799999"));
    let status = h.get(&location).await;
    status.expect(204);
    assert_eq!(status.header("range"), Some("0-799999"));

    let resp = h
        .send(Method::PUT, &format!("{location}?digest={digest}"), &[("content-range", "800000-999999")], c.to_vec())
        .await;
    resp.expect(201);
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect(200).body.as_ref(), blob.as_slice());
    // The session is gone once finished.
    h.get(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn chunked_upload_resumes_after_a_restart() {
    let h = harness().await;
    let blob = data(200_000);
    let digest = sha256(&blob);
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[], blob[..150_000].to_vec()).await.expect(202);
    // A new registry over the same directory has no hash state: it rehashes the file at the end.
    let restarted = h.reopen();
    let status = send(&restarted, request(Method::GET, &location, &[], Bytes::new())).await;
    status.expect(204);
    assert_eq!(status.header("range"), Some("0-149999"));
    send(
        &restarted,
        request(Method::PATCH, &location, &[("content-range", "150000-199999")], blob[150_000..].to_vec()),
    )
    .await
    .expect(202);
    send(&restarted, request(Method::PUT, &format!("{location}?digest={digest}"), &[], Bytes::new())).await.expect(201);
    assert_eq!(
        send(&restarted, request(Method::GET, &format!("/v2/team/web/blobs/{digest}"), &[], Bytes::new()))
            .await
            .body
            .len(),
        200_000
    );
}

#[tokio::test]
async fn sha512_digests_are_verified_too() {
    let h = harness().await;
    let blob = data(70_000);
    let digest = sha512(&blob);
    h.send(Method::POST, &format!("/v2/team/web/blobs/uploads/?digest={digest}"), &[], blob.clone()).await.expect(201);
    assert_eq!(h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect(200).body.len(), 70_000);
    // Chunked, finished with a sha512 digest: the running sha256 does not apply, the file is rehashed.
    let other = data(5_000);
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[], other.clone()).await.expect(202);
    h.send(Method::PUT, &format!("{location}?digest={}", sha512(&other)), &[], Bytes::new()).await.expect(201);
    // And a wrong sha512 is refused.
    h.send(Method::POST, &format!("/v2/team/web/blobs/uploads/?digest={}", sha512(b"other")), &[], blob)
        .await
        .expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn upload_can_be_cancelled() {
    let h = harness().await;
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[], data(10)).await.expect(202);
    h.send(Method::DELETE, &location, &[], Bytes::new()).await.expect(204);
    h.get(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(upload_entries(&h).is_empty());
}

// ---- hostile and broken uploads ----

#[tokio::test]
async fn wrong_digest_stores_nothing_and_removes_the_session() {
    let h = harness().await;
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[], data(1000)).await.expect(202);
    let wrong = sha256(b"something else");
    let resp = h.send(Method::PUT, &format!("{location}?digest={wrong}"), &[], Bytes::new()).await;
    resp.expect_error(400, "DIGEST_INVALID");
    assert!(blob_files(&h).is_empty(), "{:?}", blob_files(&h));
    assert!(upload_entries(&h).is_empty(), "{:?}", upload_entries(&h));
    h.get(&location).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    h.get(&format!("/v2/team/web/blobs/{wrong}")).await.expect_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn monolithic_upload_with_wrong_digest_stores_nothing() {
    let h = harness().await;
    let resp =
        h.send(Method::POST, &format!("/v2/team/web/blobs/uploads/?digest={}", sha256(b"x")), &[], data(100)).await;
    resp.expect_error(400, "DIGEST_INVALID");
    assert!(blob_files(&h).is_empty());
    assert!(upload_entries(&h).is_empty());
}

#[tokio::test]
async fn malformed_digest_is_digest_invalid() {
    let h = harness().await;
    for digest in ["sha256:abc", "sha256:../../etc/passwd", "nonsense", "SHA256:AB"] {
        h.send(Method::POST, &format!("/v2/team/web/blobs/uploads/?digest={digest}"), &[], data(10))
            .await
            .expect_error(400, "DIGEST_INVALID");
    }
    assert!(blob_files(&h).is_empty());
}

#[tokio::test]
async fn unsupported_digest_algorithm_is_digest_invalid() {
    let h = harness().await;
    let resp = h
        .send(Method::POST, "/v2/team/web/blobs/uploads/?digest=md5:d41d8cd98f00b204e9800998ecf8427e", &[], data(10))
        .await;
    resp.expect_error(400, "DIGEST_INVALID");
    assert!(resp.message().contains("not supported"), "{}", resp.message());
}

#[tokio::test]
async fn put_without_digest_is_digest_invalid() {
    let h = harness().await;
    let location = start(&h, "team/web").await;
    h.send(Method::PUT, &location, &[], data(10)).await.expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn chunk_out_of_order_is_refused_with_416() {
    let h = harness().await;
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[("content-range", "0-99")], data(100)).await.expect(202);
    let resp = h.send(Method::PATCH, &location, &[("content-range", "200-299")], data(100)).await;
    resp.expect(416);
    assert_eq!(resp.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(resp.header("range"), Some("0-99"));
    // Re-sending the first chunk is out of order too.
    h.send(Method::PATCH, &location, &[("content-range", "0-99")], data(100)).await.expect(416);
    // The session is intact.
    assert_eq!(h.get(&location).await.expect(204).header("range"), Some("0-99"));
}

#[tokio::test]
async fn chunk_shorter_than_its_content_range_is_refused() {
    // Regression (found by the range fuzz target): `Content-Range: 0-999` with a 3-byte body was accepted.
    let h = harness().await;
    let location = start(&h, "team/web").await;
    let resp = h.send(Method::PATCH, &location, &[("content-range", "0-999")], data(3)).await;
    resp.expect_error(400, "BLOB_UPLOAD_INVALID");
    assert_eq!(h.get(&location).await.expect(204).header("range"), Some("0-0"), "the upload is unchanged");
    // The session goes on from where it was.
    h.send(Method::PATCH, &location, &[("content-range", "0-99")], data(100)).await.expect(202);
    assert_eq!(h.get(&location).await.expect(204).header("range"), Some("0-99"));
}

#[tokio::test]
async fn patch_to_unknown_session_is_blob_upload_unknown() {
    let h = harness().await;
    let resp =
        h.send(Method::PATCH, "/v2/team/web/blobs/uploads/0b9f8f6e-1d8e-4c1e-9d52-3f6bfa3c7e11", &[], data(10)).await;
    resp.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(upload_entries(&h).is_empty());
}

#[tokio::test]
async fn session_id_that_is_not_a_uuid_is_blob_upload_unknown() {
    let h = harness().await;
    for id in ["..", "%2e%2e", "not-a-uuid", "..%2F..%2Fblobs"] {
        h.send(Method::PATCH, &format!("/v2/team/web/blobs/uploads/{id}"), &[], data(10))
            .await
            .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    }
}

#[tokio::test]
async fn session_of_another_repository_is_unknown() {
    let h = harness().await;
    h.create_repo("other", TagMutability::Mutable).await;
    let location = start(&h, "team/web").await;
    let id = location.rsplit('/').next().unwrap();
    h.send(Method::PATCH, &format!("/v2/other/blobs/uploads/{id}"), &[], data(10))
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // The owner can still use it.
    h.send(Method::PATCH, &location, &[], data(10)).await.expect(202);
}

#[tokio::test]
async fn patch_cut_off_halfway_leaves_no_blob_and_the_session_as_it_was() {
    let h = harness().await;
    let blob = data(600_000);
    let digest = sha256(&blob);
    let location = start(&h, "team/web").await;
    h.send(Method::PATCH, &location, &[], blob[..200_000].to_vec()).await.expect(202);
    // The next chunk's body breaks after 150 KB (the client went away).
    let body = ChunkedBody::new(vec![Bytes::copy_from_slice(&blob[200_000..350_000])], true);
    let req = http::Request::builder().method(Method::PATCH).uri(&location).body(body).unwrap();
    let resp = h.send_request(req).await;
    resp.expect_error(400, "BLOB_UPLOAD_INVALID");
    assert!(blob_files(&h).is_empty());
    h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect_error(404, "BLOB_UNKNOWN");
    // The session still ends at 200 000 bytes: the client can resend the chunk and finish.
    assert_eq!(h.get(&location).await.expect(204).header("range"), Some("0-199999"));
    h.send(Method::PATCH, &location, &[("content-range", "200000-599999")], blob[200_000..].to_vec()).await.expect(202);
    h.send(Method::PUT, &format!("{location}?digest={digest}"), &[], Bytes::new()).await.expect(201);
    assert_eq!(h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect(200).body.as_ref(), blob.as_slice());
}

#[tokio::test]
async fn monolithic_upload_cut_off_leaves_nothing() {
    let h = harness().await;
    let blob = data(100_000);
    let body = ChunkedBody::new(vec![Bytes::copy_from_slice(&blob[..50_000])], true);
    let uri = format!("/v2/team/web/blobs/uploads/?digest={}", sha256(&blob));
    let req = http::Request::builder().method(Method::POST).uri(uri).body(body).unwrap();
    h.send_request(req).await.expect_error(400, "BLOB_UPLOAD_INVALID");
    assert!(blob_files(&h).is_empty());
    assert!(upload_entries(&h).is_empty(), "{:?}", upload_entries(&h));
}

#[tokio::test]
async fn idle_sessions_expire() {
    let h = Harness::with_ttl(Duration::ZERO).await;
    h.create_repo("web", TagMutability::Mutable).await;
    let resp = h.send(Method::POST, "/v2/web/blobs/uploads/", &[], Bytes::new()).await;
    let location = resp.expect(202).header("location").unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.send(Method::PATCH, &location, &[], data(10)).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    assert!(upload_entries(&h).is_empty());
}

#[tokio::test]
async fn upload_to_a_repository_that_does_not_exist_is_name_unknown() {
    let h = harness().await;
    h.send(Method::POST, "/v2/nope/blobs/uploads/", &[], Bytes::new()).await.expect_error(404, "NAME_UNKNOWN");
    h.send(Method::POST, &format!("/v2/nope/blobs/uploads/?digest={}", sha256(b"x")), &[], "x")
        .await
        .expect_error(404, "NAME_UNKNOWN");
    assert!(upload_entries(&h).is_empty());
}

// ---- mounts ----

#[tokio::test]
async fn cross_repository_mount_links_an_existing_blob() {
    let h = harness().await;
    h.create_repo("other", TagMutability::Mutable).await;
    let blob = data(1000);
    let digest = h.push_blob("team/web", &blob).await;
    h.get(&format!("/v2/other/blobs/{digest}")).await.expect_error(404, "BLOB_UNKNOWN");
    let resp = h
        .send(Method::POST, &format!("/v2/other/blobs/uploads/?mount={digest}&from=team/web"), &[], Bytes::new())
        .await;
    resp.expect(201);
    assert_eq!(resp.header("location"), Some(format!("/v2/other/blobs/{digest}").as_str()));
    assert_eq!(h.get(&format!("/v2/other/blobs/{digest}")).await.expect(200).body.as_ref(), blob.as_slice());
}

#[tokio::test]
async fn mount_of_a_blob_the_source_lacks_falls_back_to_an_upload() {
    let h = harness().await;
    h.create_repo("other", TagMutability::Mutable).await;
    // Present in team/web's blob store only through another repository: not mountable from "other".
    let digest = h.push_blob("team/web", b"layer").await;
    for from in ["other", "missing", "BAD..name"] {
        let resp = h
            .send(
                Method::POST,
                &format!("/v2/team/web/blobs/uploads/?mount={}&from={from}", sha256(b"zzz")),
                &[],
                Bytes::new(),
            )
            .await;
        resp.expect(202);
        assert!(resp.header("docker-upload-uuid").is_some());
    }
    let resp =
        h.send(Method::POST, &format!("/v2/other/blobs/uploads/?mount={digest}&from=other"), &[], Bytes::new()).await;
    resp.expect(202);
}

// ---- downloads ----

#[tokio::test]
async fn range_requests_get_206_or_416() {
    let h = harness().await;
    let blob = data(1000);
    let digest = h.push_blob("team/web", &blob).await;
    let uri = format!("/v2/team/web/blobs/{digest}");
    let resp = h.send(Method::GET, &uri, &[("range", "bytes=100-199")], Bytes::new()).await;
    resp.expect(206);
    assert_eq!(resp.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(resp.header("content-length"), Some("100"));
    assert_eq!(resp.body.as_ref(), &blob[100..200]);
    let resp = h.send(Method::GET, &uri, &[("range", "bytes=-10")], Bytes::new()).await;
    resp.expect(206);
    assert_eq!(resp.body.as_ref(), &blob[990..]);
    let resp = h.send(Method::GET, &uri, &[("range", "bytes=1000-")], Bytes::new()).await;
    resp.expect(416);
    assert_eq!(resp.header("content-range"), Some("bytes */1000"));
}

#[tokio::test]
async fn unknown_blob_is_blob_unknown() {
    let h = harness().await;
    let digest = sha256(b"never pushed");
    h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect_error(404, "BLOB_UNKNOWN");
    let head = h.send(Method::HEAD, &format!("/v2/team/web/blobs/{digest}"), &[], Bytes::new()).await;
    head.expect(404);
}

#[tokio::test]
async fn blobs_cannot_be_deleted_directly() {
    let h = harness().await;
    let digest = h.push_blob("team/web", b"data").await;
    h.send(Method::DELETE, &format!("/v2/team/web/blobs/{digest}"), &[], Bytes::new())
        .await
        .expect_error(405, "UNSUPPORTED");
    h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect(200);
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_blob_are_safe() {
    let h = harness().await;
    let blob = data(500_000);
    let digest = sha256(&blob);
    let uri = format!("/v2/team/web/blobs/uploads/?digest={digest}");
    let pushes = (0..8).map(|_| h.send(Method::POST, &uri, &[], blob.clone()));
    for resp in join_all(pushes).await {
        resp.expect(201);
    }
    assert_eq!(h.get(&format!("/v2/team/web/blobs/{digest}")).await.expect(200).body.as_ref(), blob.as_slice());
    assert_eq!(blob_files(&h).len(), 1);
    assert!(upload_entries(&h).is_empty());
}
