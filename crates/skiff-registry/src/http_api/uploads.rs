//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a session, a monolithic upload with `?digest=`, or a
//! cross-repository mount with `?mount=&from=`), `PATCH`/`PUT`/`GET`/`DELETE …/uploads/<id>`.
//!
//! A blob becomes visible only when its digest matched: the session's data file is fsynced and renamed into
//! the blob store, the directory fsynced, and only then the repository's link written. A wrong digest
//! removes the session; a body cut off midway leaves the session as it was before that request.

use super::{empty, header_str, repository, respond, HandlerResult, Query, CONTENT_DIGEST, UPLOAD_UUID};
use crate::body::{append_to_file, BodyError};
use crate::digest::{hash_file, Digest, Hasher};
use crate::errors::DistError;
use crate::uploads::SessionGuard;
use crate::{Inner, RegistryError};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, StatusCode};
use skiff_model::ecr::is_valid_repository_name;

/// Advertised to clients as the smallest useful chunk (OCI-Chunk-Min-Length); not enforced.
pub const CHUNK_MIN_LENGTH: u64 = 1 << 20;

fn upload_location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_created(name: &str, digest: &str) -> HandlerResult {
    Ok(respond(
        StatusCode::CREATED,
        empty(),
        &[
            (header::LOCATION, format!("/v2/{name}/blobs/{digest}")),
            (HeaderName::from_static(CONTENT_DIGEST), digest.to_string()),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    ))
}

/// The headers that describe a session's progress.
fn progress(status: StatusCode, name: &str, session: &SessionGuard) -> HandlerResult {
    let s = session.session();
    let id = s.id.to_string();
    Ok(respond(
        status,
        empty(),
        &[
            (header::LOCATION, upload_location(name, &id)),
            (header::RANGE, format!("0-{}", s.offset.saturating_sub(1))),
            (HeaderName::from_static(UPLOAD_UUID), id),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    ))
}

fn io_error(inner: &Inner, source: std::io::Error) -> DistError {
    DistError::internal(&RegistryError::Io { path: inner.uploads.dir().to_path_buf(), source })
}

pub async fn start<B>(inner: &Inner, name: &str, query: &Query, headers: &HeaderMap, body: B) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    repository(inner, name).await?;
    if let Some(mount) = query.get("mount") {
        let digest = Digest::parse(mount)?.to_string();
        let store = inner.store.as_ref();
        match query.get("from").filter(|from| is_valid_repository_name(from)) {
            Some(from) => {
                let _shared = inner.gc_lock.read().await;
                let file_present = inner.blobs.len(&Digest::parse(&digest)?).await.map_err(|e| io_error(inner, e))?;
                if file_present.is_some() && crate::records::mount(store, name, from, &digest).await?.is_some() {
                    return blob_created(name, &digest);
                }
            }
            // No source named: the blob counts as mounted if this repository already has it.
            None => {
                if crate::records::link(store, name, &digest).await?.is_some() {
                    return blob_created(name, &digest);
                }
            }
        }
        // Not mountable: fall back to an ordinary upload session, as the spec asks.
    } else if let Some(digest) = query.get("digest") {
        return monolithic(inner, name, digest, headers, body).await;
    }
    let session = inner.uploads.create(name).await.map_err(|e| io_error(inner, e))?;
    let mut resp = progress(StatusCode::ACCEPTED, name, &session)?;
    if let Ok(v) = http::HeaderValue::from_str(&CHUNK_MIN_LENGTH.to_string()) {
        resp.headers_mut().insert("oci-chunk-min-length", v);
    }
    Ok(resp)
}

/// `POST …/uploads/?digest=` with the whole blob as the body.
async fn monolithic<B>(inner: &Inner, name: &str, digest: &str, headers: &HeaderMap, body: B) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let digest = Digest::parse(digest)?;
    let mut session = inner.uploads.create(name).await.map_err(|e| io_error(inner, e))?;
    session.session_mut().hasher = Some(Hasher::new(digest.algorithm()));
    if let Err(e) = append(inner, &mut session, headers, body).await {
        let _ = inner.uploads.finish(session).await;
        return Err(e);
    }
    complete(inner, name, session, &digest).await
}

/// Appends a request body to the session, checking `Content-Range` when the client sent one.
async fn append<B>(inner: &Inner, session: &mut SessionGuard, headers: &HeaderMap, body: B) -> Result<(), DistError>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let offset = session.session().offset;
    let mut declared_len = None;
    if let Some(range) = header_str(headers, header::CONTENT_RANGE) {
        let Some((start, end)) = parse_content_range(range) else {
            return Err(DistError::blob_upload_invalid(format!(
                "malformed Content-Range '{range}': expected <start>-<end>"
            )));
        };
        if start != offset || end < start {
            return Err(DistError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                format!(
                    "chunk {start}-{end} is out of order: the upload has {offset} bytes, the next chunk starts there"
                ),
            ));
        }
        declared_len = Some(end - start + 1);
    }
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(());
    }
    let hasher = session.session().hasher.clone();
    match append_to_file(body, session.data_path(), offset, hasher).await {
        Ok(appended) if declared_len.is_some_and(|n| n != appended.len) => {
            // Not committed: the session stays at `offset` and the next append cuts the extra bytes off.
            session.touch();
            Err(DistError::blob_upload_invalid(format!(
                "the chunk carried {} bytes but its Content-Range declared {}; the upload is unchanged at {offset} bytes",
                appended.len,
                declared_len.unwrap_or_default()
            )))
        }
        Ok(appended) => {
            let s = session.session_mut();
            s.offset += appended.len;
            s.hasher = appended.hasher;
            session.touch();
            Ok(())
        }
        Err(BodyError::Io(e)) => {
            // The data file may now hold bytes past the offset; the next append cuts them off.
            Err(io_error(inner, e))
        }
        Err(e @ (BodyError::Client(_) | BodyError::TooLarge(_))) => {
            session.touch();
            Err(DistError::blob_upload_invalid(format!("{e}; the upload is unchanged at {offset} bytes")))
        }
    }
}

/// `Content-Range: <start>-<end>` (also accepting a `bytes ` prefix and a `/<total>` suffix).
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let v = value.trim();
    let v = v.strip_prefix("bytes").map_or(v, |r| r.trim_start_matches([' ', '=']));
    let v = v.split_once('/').map_or(v, |(range, _)| range);
    let (start, end) = v.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
}

/// Checks the digest of a finished upload and moves it into the blob store.
async fn complete(inner: &Inner, name: &str, mut session: SessionGuard, digest: &Digest) -> HandlerResult {
    let data = session.data_path();
    let running = session.session_mut().hasher.take().filter(|h| h.algorithm() == digest.algorithm());
    let (actual, size) = match running {
        Some(hasher) => (hasher.finish(), session.session().offset),
        None => {
            let (algorithm, path) = (digest.algorithm(), data.clone());
            let hashed = tokio::task::spawn_blocking(move || hash_file(&path, algorithm)).await;
            match hashed.map_err(std::io::Error::other).and_then(|r| r) {
                Ok(v) => v,
                Err(e) => {
                    let _ = inner.uploads.finish(session).await;
                    return Err(io_error(inner, e));
                }
            }
        }
    };
    if actual != *digest {
        let _ = inner.uploads.finish(session).await;
        return Err(DistError::digest_invalid(format!(
            "the uploaded content has digest {actual}, not {digest}; the upload was discarded"
        ))
        .with_detail(serde_json::json!({ "digest": digest.to_string() })));
    }
    let digest_str = digest.to_string();
    let stored = {
        // Between the file appearing and its link being written, garbage collection must not run.
        let _shared = inner.gc_lock.read().await;
        let (blobs, digest2) = (inner.blobs.clone(), digest.clone());
        let placed = tokio::task::spawn_blocking(move || blobs.commit(&data, &digest2)).await;
        match placed.map_err(std::io::Error::other).and_then(|r| r) {
            Ok(_) => {
                crate::records::write_link(inner.store.as_ref(), name, &digest_str, size).await.map_err(DistError::from)
            }
            Err(e) => Err(DistError::internal(&RegistryError::Io { path: inner.blobs.path(digest), source: e })),
        }
    };
    if let Err(e) = inner.uploads.finish(session).await {
        tracing::warn!("cannot remove the finished upload session: {e}");
    }
    match stored? {
        true => blob_created(name, &digest_str),
        false => Err(DistError::name_unknown(name)),
    }
}

async fn session(inner: &Inner, name: &str, id: &str) -> Result<SessionGuard, DistError> {
    repository(inner, name).await?;
    match inner.uploads.acquire(id, name).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(DistError::blob_upload_unknown(id)),
        Err(e) => Err(io_error(inner, e)),
    }
}

pub async fn patch<B>(inner: &Inner, name: &str, id: &str, headers: &HeaderMap, body: B) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let mut session = session(inner, name, id).await?;
    match append(inner, &mut session, headers, body).await {
        Ok(()) => progress(StatusCode::ACCEPTED, name, &session),
        Err(e) if e.status == StatusCode::RANGE_NOT_SATISFIABLE => {
            // Tell the client where the upload stands so it can resume.
            let mut resp = e.into_response();
            let s = session.session();
            for (k, v) in [
                (header::LOCATION, upload_location(name, &s.id.to_string())),
                (header::RANGE, format!("0-{}", s.offset.saturating_sub(1))),
            ] {
                if let Ok(v) = http::HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(k, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Err(e),
    }
}

pub async fn put<B>(inner: &Inner, name: &str, id: &str, query: &Query, headers: &HeaderMap, body: B) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let digest = query
        .get("digest")
        .ok_or_else(|| DistError::digest_invalid("the digest query parameter is required to finish an upload"))?;
    let digest = Digest::parse(digest)?;
    let mut session = session(inner, name, id).await?;
    if session.session().hasher.as_ref().is_some_and(|h| h.algorithm() != digest.algorithm()) {
        // The running hash is of another algorithm: don't compute it for the last chunk, rehash at the end.
        session.session_mut().hasher = None;
    }
    append(inner, &mut session, headers, body).await?;
    complete(inner, name, session, &digest).await
}

pub async fn status(inner: &Inner, name: &str, id: &str) -> HandlerResult {
    let session = session(inner, name, id).await?;
    progress(StatusCode::NO_CONTENT, name, &session)
}

pub async fn cancel(inner: &Inner, name: &str, id: &str) -> HandlerResult {
    let session = session(inner, name, id).await?;
    inner.uploads.finish(session).await.map_err(|e| io_error(inner, e))?;
    Ok(respond(StatusCode::NO_CONTENT, empty(), &[(header::CONTENT_LENGTH, "0".to_string())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/*"), Some((100, 199)));
        assert_eq!(parse_content_range("bytes=5-6"), Some((5, 6)));
        assert_eq!(parse_content_range("x"), None);
        assert_eq!(parse_content_range("-5"), None);
    }
}
