//! `PUT/GET/HEAD/DELETE /v2/<name>/manifests/<reference>`, by tag or by digest.
//!
//! A PUT stores the manifest bytes as a blob file first, then writes the image record, the tag and the
//! manifest's blob link in one transaction (`records::put_image`): a manifest is visible only whole, and
//! only once everything it names is in the repository.

use super::{empty, full, repository, respond, HandlerResult, CONTENT_DIGEST};
use crate::body::{read_limited, BodyError};
use crate::digest::Digest;
use crate::errors::DistError;
use crate::manifest::{self, MAX_MANIFEST_BYTES};
use crate::{records, Inner, RegistryError};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, StatusCode};
use std::sync::Arc;

/// A manifest reference: a tag or a digest.
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

/// Tags as the distribution spec allows them: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

pub fn parse_reference(reference: &str) -> Result<Reference, DistError> {
    if reference.contains(':') {
        return Ok(Reference::Digest(Digest::parse(reference)?));
    }
    if !is_valid_tag(reference) {
        return Err(DistError::tag_invalid(format!(
            "invalid tag '{}': tags are 1-128 characters of [a-zA-Z0-9._-] and do not start with '.' or '-'",
            reference.chars().take(200).collect::<String>()
        )));
    }
    Ok(Reference::Tag(reference.to_string()))
}

pub async fn get(inner: &Arc<crate::Inner>, name: &str, reference: &str, with_body: bool) -> HandlerResult {
    repository(inner, name).await?;
    let store = inner.store.as_ref();
    let digest = match parse_reference(reference)? {
        Reference::Tag(tag) => match records::tag(store, name, &tag).await? {
            Some((t, _)) => t.digest,
            None => return Err(DistError::manifest_unknown(reference)),
        },
        Reference::Digest(d) => d.to_string(),
    };
    let Some((image, _)) = records::image(store, name, &digest).await? else {
        return Err(DistError::manifest_unknown(reference));
    };
    let headers = |len: usize| {
        [
            (header::CONTENT_TYPE, image.media_type.clone()),
            (header::CONTENT_LENGTH, len.to_string()),
            (HeaderName::from_static(CONTENT_DIGEST), digest.clone()),
            (header::ETAG, format!("\"{digest}\"")),
        ]
    };
    if !with_body {
        return Ok(respond(StatusCode::OK, empty(), &headers(image.manifest_size as usize)));
    }
    let parsed = Digest::parse(&digest)?;
    let bytes = inner
        .blobs
        .read(&parsed)
        .await
        .map_err(|source| RegistryError::Io { path: inner.blobs.path(&parsed), source })?;
    let Some(bytes) = bytes else {
        tracing::error!("manifest {digest} of {name} has a record but no blob file");
        return Err(DistError::manifest_unknown(reference));
    };
    let inner2 = inner.clone();
    let (name2, digest2) = (name.to_string(), digest.clone());
    tokio::spawn(async move {
        if let Err(e) = records::record_pull(inner2.store.as_ref(), &name2, &digest2).await {
            tracing::debug!("cannot record the pull of {name2}@{digest2}: {e}");
        }
    });
    Ok(respond(StatusCode::OK, full(bytes), &headers(image.manifest_size as usize)))
}

pub async fn put<B>(inner: &Inner, name: &str, reference: &str, headers: &HeaderMap, body: B) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let reference = parse_reference(reference)?;
    repository(inner, name).await?;
    let too_large = || {
        DistError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MANIFEST_INVALID",
            format!("the manifest exceeds the {MAX_MANIFEST_BYTES}-byte limit"),
        )
    };
    let declared = super::header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
        return Err(too_large());
    }
    let bytes = match read_limited(body, MAX_MANIFEST_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge(_)) => return Err(too_large()),
        Err(e) => return Err(DistError::manifest_invalid(e.to_string())),
    };
    let media_type = manifest::effective_media_type(super::header_str(headers, header::CONTENT_TYPE), &bytes)?;
    let parsed = manifest::parse(&media_type, &bytes)?;
    let (digest, tag) = match reference {
        Reference::Digest(d) => {
            let actual = Digest::of(d.algorithm(), &bytes);
            if actual != d {
                return Err(DistError::digest_invalid(format!("the manifest's digest is {actual}, not {d}"))
                    .with_detail(serde_json::json!({ "digest": d.to_string() })));
            }
            (d, None)
        }
        Reference::Tag(tag) => (Digest::sha256_of(&bytes), Some(tag)),
    };
    let digest_str = digest.to_string();
    let store = inner.store.as_ref();
    let size = bytes.len() as u64;
    // Refuse early what would be refused anyway, before writing the manifest file.
    records::plan_image(store, name, &digest_str, &parsed, size, tag.as_deref()).await?;
    {
        // From the manifest file appearing until its records are written, garbage collection must not run.
        let _shared = inner.gc_lock.read().await;
        let (blobs, tmp, d) = (inner.blobs.clone(), inner.uploads.dir().to_path_buf(), digest.clone());
        let written = tokio::task::spawn_blocking(move || blobs.write_bytes(&tmp, &d, &bytes)).await;
        written
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| RegistryError::Io { path: inner.blobs.path(&digest), source })?;
        records::put_image(store, name, &digest_str, &parsed, size, tag.as_deref()).await?;
    }
    let mut out = vec![
        (header::LOCATION, format!("/v2/{name}/manifests/{digest_str}")),
        (HeaderName::from_static(CONTENT_DIGEST), digest_str),
        (header::CONTENT_LENGTH, "0".to_string()),
    ];
    if let Some(subject) = &parsed.subject {
        out.push((HeaderName::from_static("oci-subject"), subject.clone()));
    }
    Ok(respond(StatusCode::CREATED, empty(), &out))
}

/// By digest: the image and every tag naming it. By tag: just the tag (the image stays, untagged).
pub async fn delete(inner: &Inner, name: &str, reference: &str) -> HandlerResult {
    repository(inner, name).await?;
    let store = inner.store.as_ref();
    let found = match parse_reference(reference)? {
        Reference::Digest(d) => records::delete_image(store, name, &d.to_string()).await?,
        Reference::Tag(tag) => records::delete_tag(store, name, &tag, false).await?.is_some(),
    };
    if !found {
        return Err(DistError::manifest_unknown(reference));
    }
    Ok(respond(StatusCode::ACCEPTED, empty(), &[(header::CONTENT_LENGTH, "0".to_string())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        for ok in ["latest", "v1.2.3", "_x", "A-b_c.d", &"t".repeat(128)] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "a b", "é", &"t".repeat(129)] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
    }
}
