//! Listings: `GET /v2/<name>/tags/list`, `GET /v2/_catalog` (both paginated with `n`/`last` and a `Link`
//! header), and `GET /v2/<name>/referrers/<digest>` (an OCI index of the manifests whose subject is it).

use super::{full, repository, respond, HandlerResult, Query};
use crate::digest::Digest;
use crate::errors::DistError;
use crate::manifest::OCI_INDEX;
use crate::records::{self, get_json};
use crate::Inner;
use http::{header, StatusCode};
use skiff_model::ecr::{keys, ImageRecord, RepositoryRecord};

/// Page size when the client asks for more than this (it then follows the `Link` header).
const MAX_PAGE: usize = 10_000;

fn page_size(query: &Query) -> Result<usize, DistError> {
    match query.get("n") {
        None => Ok(MAX_PAGE),
        Some(n) => n.parse::<usize>().map(|n| n.min(MAX_PAGE)).map_err(|_| {
            DistError::new(StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", format!("invalid page size n={n}"))
        }),
    }
}

fn listing(body: serde_json::Value, next: Option<String>) -> HandlerResult {
    let body = body.to_string();
    let mut headers =
        vec![(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_LENGTH, body.len().to_string())];
    if let Some(next) = next {
        headers.push((header::LINK, format!("<{next}>; rel=\"next\"")));
    }
    Ok(respond(StatusCode::OK, full(body), &headers))
}

pub async fn tags(inner: &Inner, name: &str, query: &Query) -> HandlerResult {
    repository(inner, name).await?;
    let n = page_size(query)?;
    let prefix = keys::tags_of(name);
    let after = query.get("last").map(|last| format!("{prefix}{last}"));
    let page = if n == 0 { Default::default() } else { inner.store.scan(&prefix, after.as_deref(), n).await? };
    let tags: Vec<&str> = page.items.iter().filter_map(|(k, _)| k.strip_prefix(&prefix)).collect();
    let next = match tags.last() {
        Some(last) if page.more => Some(format!("/v2/{name}/tags/list?n={n}&last={last}")),
        _ => None,
    };
    listing(serde_json::json!({ "name": name, "tags": tags }), next)
}

pub async fn catalog(inner: &Inner, query: &Query) -> HandlerResult {
    let n = page_size(query)?;
    let after = query.get("last").map(keys::repository);
    let page =
        if n == 0 { Default::default() } else { inner.store.scan(keys::REPOSITORIES, after.as_deref(), n).await? };
    let mut names = Vec::with_capacity(page.items.len());
    for (key, v) in &page.items {
        match serde_json::from_slice::<RepositoryRecord>(&v.value) {
            Ok(r) => names.push(r.name),
            Err(e) => tracing::warn!("skipping unreadable repository record {key}: {e}"),
        }
    }
    let next = match names.last() {
        Some(last) if page.more => {
            let last = form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>();
            Some(format!("/v2/_catalog?n={n}&last={last}"))
        }
        _ => None,
    };
    listing(serde_json::json!({ "repositories": names }), next)
}

pub async fn referrers(inner: &Inner, name: &str, digest: &str, query: &Query) -> HandlerResult {
    repository(inner, name).await?;
    let subject = Digest::parse(digest)?.to_string();
    let artifact_type = query.get("artifactType").filter(|a| !a.is_empty());
    let mut manifests = Vec::new();
    for (key, _) in records::scan_all(inner.store.as_ref(), &keys::images_of(name)).await? {
        let Some((image, _)) = get_json::<ImageRecord>(inner.store.as_ref(), &key).await? else { continue };
        if image.subject.as_deref() != Some(subject.as_str()) {
            continue;
        }
        if artifact_type.is_some() && image.artifact_type.as_deref() != artifact_type {
            continue;
        }
        let mut descriptor = serde_json::json!({
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": image.manifest_size,
        });
        if let Some(a) = &image.artifact_type {
            descriptor["artifactType"] = a.clone().into();
        }
        if let Some(annotations) = annotations(inner, &image.digest).await {
            descriptor["annotations"] = annotations;
        }
        manifests.push(descriptor);
    }
    let body = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }).to_string();
    let mut headers =
        vec![(header::CONTENT_TYPE, OCI_INDEX.to_string()), (header::CONTENT_LENGTH, body.len().to_string())];
    if artifact_type.is_some() {
        headers.push((http::HeaderName::from_static("oci-filters-applied"), "artifactType".to_string()));
    }
    Ok(respond(StatusCode::OK, full(body), &headers))
}

/// The `annotations` of a stored manifest, if it has any.
async fn annotations(inner: &Inner, digest: &str) -> Option<serde_json::Value> {
    let bytes = inner.blobs.read(&Digest::parse(digest).ok()?).await.ok()??;
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    doc.get_mut("annotations").map(serde_json::Value::take).filter(|a| a.is_object())
}
