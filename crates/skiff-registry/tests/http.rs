//! The registry behind a real hyper server on loopback, the way `skiff server` runs it: headers survive
//! HEAD, large blobs stream both ways, and connections cut off mid-body leave nothing behind.

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use skiff_model::ecr::TagMutability;
use skiff_registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

async fn serve(registry: Arc<Registry>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let registry = registry.clone();
                    async move { Ok::<_, std::convert::Infallible>(registry.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn call(addr: SocketAddr, method: Method, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    Resp { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

/// Waits until `cond` holds, failing with `what` after 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn setup() -> (Harness, SocketAddr) {
    let h = Harness::new().await;
    h.create_repo("web", TagMutability::Mutable).await;
    let addr = serve(Arc::new(h.reopen())).await;
    (h, addr)
}

#[tokio::test]
async fn large_blob_round_trips_and_head_keeps_its_length() {
    let (_h, addr) = setup().await;
    let blob: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let digest = sha256(&blob);
    call(addr, Method::POST, &format!("/v2/web/blobs/uploads/?digest={digest}"), &[], blob.clone()).await.expect(201);
    let head = call(addr, Method::HEAD, &format!("/v2/web/blobs/{digest}"), &[], vec![]).await;
    head.expect(200);
    assert_eq!(head.header("content-length"), Some("5000000"));
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    let got = call(addr, Method::GET, &format!("/v2/web/blobs/{digest}"), &[], vec![]).await;
    got.expect(200);
    assert_eq!(got.body.len(), blob.len());
    assert!(got.body.as_ref() == blob.as_slice());
    let part =
        call(addr, Method::GET, &format!("/v2/web/blobs/{digest}"), &[("range", "bytes=4999990-")], vec![]).await;
    part.expect(206);
    assert_eq!(part.body.as_ref(), &blob[4_999_990..]);
}

#[tokio::test]
async fn manifest_head_over_http_keeps_its_length() {
    let (h, addr) = setup().await;
    let manifest = h.push_parts("web", b"{}", &[b"layer"], None).await;
    call(addr, Method::PUT, "/v2/web/manifests/v1", &[("content-type", OCI_MANIFEST)], manifest.clone())
        .await
        .expect(201);
    let head = call(addr, Method::HEAD, "/v2/web/manifests/v1", &[], vec![]).await;
    head.expect(200);
    assert_eq!(head.header("content-length"), Some(manifest.len().to_string().as_str()));
    assert_eq!(head.header("content-type"), Some(OCI_MANIFEST));
}

/// Sends a request head announcing `declared` bytes, then only `sent` of them, and hangs up.
async fn cut_off(addr: SocketAddr, method: &str, path: &str, declared: usize, sent: &[u8]) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {declared}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    stream.flush().await.unwrap();
    drop(stream);
}

#[tokio::test]
async fn chunked_upload_cut_off_halfway_leaves_nothing_visible() {
    let (h, addr) = setup().await;
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i % 249) as u8).collect();
    let digest = sha256(&blob);
    let start = call(addr, Method::POST, "/v2/web/blobs/uploads/", &[], vec![]).await;
    let location = start.expect(202).header("location").unwrap().to_string();
    cut_off(addr, "PATCH", &location, blob.len(), &blob[..400_000]).await;
    // Whatever the cut-off PATCH did, the session still starts at 0: a whole PATCH from 0 is accepted.
    let range = format!("0-{}", blob.len() - 1);
    call(addr, Method::PATCH, &location, &[("content-range", &range)], blob.clone()).await.expect(202);
    let status = call(addr, Method::GET, &location, &[], vec![]).await;
    assert_eq!(status.expect(204).header("range"), Some(range.as_str()));
    assert!(blob_files(&h).is_empty());
    call(addr, Method::GET, &format!("/v2/web/blobs/{digest}"), &[], vec![]).await.expect(404);
    call(addr, Method::PUT, &format!("{location}?digest={digest}"), &[], vec![]).await.expect(201);
    let got = call(addr, Method::GET, &format!("/v2/web/blobs/{digest}"), &[], vec![]).await;
    assert!(got.expect(200).body.as_ref() == blob.as_slice());
}

#[tokio::test]
async fn monolithic_upload_cut_off_halfway_leaves_nothing() {
    let (h, addr) = setup().await;
    let blob = vec![42u8; 2_000_000];
    let path = format!("/v2/web/blobs/uploads/?digest={}", sha256(&blob));
    cut_off(addr, "POST", &path, blob.len(), &blob[..700_000]).await;
    eventually("the cut-off upload is cleaned up", || upload_entries(&h).is_empty()).await;
    assert!(blob_files(&h).is_empty());
    call(addr, Method::GET, &format!("/v2/web/blobs/{}", sha256(&blob)), &[], vec![]).await.expect(404);
}

#[tokio::test]
async fn manifest_put_cut_off_stores_nothing() {
    let (h, addr) = setup().await;
    let manifest = h.push_parts("web", b"{}", &[b"layer"], None).await;
    let files = blob_files(&h);
    cut_off(addr, "PUT", "/v2/web/manifests/v1", manifest.len(), &manifest[..manifest.len() / 2]).await;
    // The server answers other requests meanwhile, and the tag never appears.
    let resp = call(addr, Method::GET, "/v2/web/manifests/v1", &[], vec![]).await;
    resp.expect(404);
    tokio::task::yield_now().await;
    assert_eq!(blob_files(&h), files);
    call(addr, Method::GET, "/v2/web/manifests/v1", &[], vec![]).await.expect(404);
}
