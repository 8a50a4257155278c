//! `HEAD/GET /v2/<name>/blobs/<digest>`: a blob linked into the repository, streamed from its file, with
//! single byte ranges.

use super::{empty, header_str, repository, respond, HandlerResult, CONTENT_DIGEST};
use crate::blobs::FileBody;
use crate::digest::Digest;
use crate::errors::DistError;
use crate::{Inner, RegistryError};
use http::{header, HeaderMap, StatusCode};

pub async fn get(inner: &Inner, name: &str, digest: &str, headers: &HeaderMap, with_body: bool) -> HandlerResult {
    repository(inner, name).await?;
    let digest = Digest::parse(digest)?;
    let digest_str = digest.to_string();
    if crate::records::link(inner.store.as_ref(), name, &digest_str).await?.is_none() {
        return Err(DistError::blob_unknown(&digest_str));
    }
    let io_error = |source| RegistryError::Io { path: inner.blobs.path(&digest), source };
    // HEAD needs only the length; GET opens the file (its length is that of what will be streamed).
    let found = if with_body {
        inner.blobs.open_file(&digest).await.map_err(io_error)?.map(|(file, len)| (Some(file), len))
    } else {
        inner.blobs.len(&digest).await.map_err(io_error)?.map(|len| (None, len))
    };
    let Some((file, len)) = found else {
        tracing::error!("blob {digest_str} is linked into {name} but its file is missing");
        return Err(DistError::blob_unknown(&digest_str));
    };
    let mut out = vec![
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::ETAG, format!("\"{digest_str}\"")),
        (header::CACHE_CONTROL, "max-age=31536000".to_string()),
        (http::HeaderName::from_static(CONTENT_DIGEST), digest_str),
    ];
    let (status, start, count) = match header_str(headers, header::RANGE).map(|r| parse_range(r, len)) {
        None | Some(RangeRequest::Whole) => (StatusCode::OK, 0, len),
        Some(RangeRequest::Unsatisfiable) => {
            let err = DistError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_INVALID",
                format!("the requested range is not within the blob's {len} bytes"),
            );
            let mut resp = err.into_response();
            if let Ok(v) = http::HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
        Some(RangeRequest::Bytes { start, end }) => {
            out.push((header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
    };
    out.push((header::CONTENT_LENGTH, count.to_string()));
    let body = match file {
        Some(file) => http_body_util::combinators::BoxBody::new(FileBody::new(file, start, count)),
        None => empty(),
    };
    Ok(respond(status, body, &out))
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: serve the whole blob (RFC 9110 ignores a Range it does not understand).
    Whole,
    /// Inclusive byte offsets within the blob.
    Bytes {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// One `bytes=` range against a blob of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Whole };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Bytes { start: len - n.min(len), end: len - 1 },
            None => RangeRequest::Whole,
        },
        (false, true) => match num(first) {
            Some(start) if start < len => RangeRequest::Bytes { start, end: len - 1 },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Whole,
        },
        (false, false) => match (num(first), num(last)) {
            (Some(start), Some(end)) if start > end => RangeRequest::Whole,
            (Some(start), Some(_)) if start >= len => RangeRequest::Unsatisfiable,
            (Some(start), Some(end)) => RangeRequest::Bytes { start, end: end.min(len - 1) },
            _ => RangeRequest::Whole,
        },
        (true, true) => RangeRequest::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let cases = [
            ("bytes=0-9", 100, Bytes { start: 0, end: 9 }),
            ("bytes=90-200", 100, Bytes { start: 90, end: 99 }),
            ("bytes=10-", 100, Bytes { start: 10, end: 99 }),
            ("bytes=-10", 100, Bytes { start: 90, end: 99 }),
            ("bytes=-1000", 100, Bytes { start: 0, end: 99 }),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-0", 0, Unsatisfiable),
            ("bytes=5-1", 100, Whole),
            ("bytes=0-1,5-6", 100, Whole),
            ("items=0-1", 100, Whole),
            ("bytes=x-y", 100, Whole),
        ];
        for (h, len, want) in cases {
            assert_eq!(parse_range(h, len), want, "{h} of {len}");
        }
    }
}
