//! Path tricks in repository names: each is refused with NAME_INVALID before anything is touched.

mod common;

use bytes::Bytes;
use common::*;
use http::Method;
use skiff_model::ecr::TagMutability;

async fn assert_name_invalid(path: &str) {
    let h = Harness::new().await;
    h.create_repo("web", TagMutability::Mutable).await;
    for method in [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let resp = h.send(method.clone(), path, &[], Bytes::new()).await;
        assert_eq!(resp.status.as_u16(), 400, "{method} {path}");
        if method != Method::HEAD {
            assert_eq!(resp.code(), "NAME_INVALID", "{method} {path}");
        }
    }
    assert!(upload_entries(&h).is_empty());
    assert!(blob_files(&h).is_empty());
}

#[tokio::test]
async fn dot_dot_components_are_name_invalid() {
    assert_name_invalid("/v2/../blobs/uploads/").await;
    assert_name_invalid("/v2/web/../../etc/manifests/latest").await;
}

#[tokio::test]
async fn percent_encoded_dots_are_name_invalid() {
    assert_name_invalid("/v2/%2e%2e/blobs/uploads/").await;
    assert_name_invalid("/v2/web/%2E%2E/tags/list").await;
}

#[tokio::test]
async fn percent_encoded_slash_is_name_invalid() {
    assert_name_invalid("/v2/web%2Fsub/manifests/latest").await;
}

#[tokio::test]
async fn uppercase_names_are_name_invalid() {
    assert_name_invalid("/v2/Web/manifests/latest").await;
}

#[tokio::test]
async fn empty_components_are_name_invalid() {
    assert_name_invalid("/v2/team//web/tags/list").await;
    assert_name_invalid("/v2//web/blobs/uploads/").await;
    assert_name_invalid("/v2/web//manifests/latest").await;
}

#[tokio::test]
async fn single_character_names_are_name_invalid() {
    assert_name_invalid("/v2/a/tags/list").await;
}

#[tokio::test]
async fn names_with_separators_at_the_edges_are_name_invalid() {
    assert_name_invalid("/v2/-web/tags/list").await;
    assert_name_invalid("/v2/web./tags/list").await;
    assert_name_invalid("/v2/we___b/tags/list").await;
}

#[tokio::test]
async fn unknown_paths_are_404_unsupported() {
    let h = Harness::new().await;
    for path in ["/v2/web", "/v2/web/unknown/thing", "/v2/web/manifests/"] {
        h.get(path).await.expect_error(404, "UNSUPPORTED");
    }
}

#[tokio::test]
async fn unknown_repository_is_name_unknown() {
    let h = Harness::new().await;
    h.get("/v2/ghost/manifests/latest").await.expect_error(404, "NAME_UNKNOWN");
    h.get(&format!("/v2/ghost/blobs/{}", sha256(b"x"))).await.expect_error(404, "NAME_UNKNOWN");
    h.get("/v2/ghost/tags/list").await.expect_error(404, "NAME_UNKNOWN");
}
