//! The distribution-spec HTTP surface: routes a `/v2/` request to its handler and renders the result.
//! Handlers return a response or a [`DistError`]; nothing here touches files or records directly except
//! through `blobs`, `uploads` and `records`.

mod blobs;
mod listings;
mod manifests;
mod uploads;

use crate::errors::DistError;
use crate::routes::{self, Route};
use crate::{Body, Inner};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use skiff_model::ecr::{is_valid_repository_name, RepositoryRecord};
use std::collections::HashMap;
use std::sync::Arc;

pub const API_VERSION: &str = "docker-distribution-api-version";
pub const CONTENT_DIGEST: &str = "docker-content-digest";
pub const UPLOAD_UUID: &str = "docker-upload-uuid";

type HandlerResult = Result<Response<Body>, DistError>;

pub async fn dispatch<B>(inner: &Arc<Inner>, req: http::Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let mut resp = match route(inner, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn route<B>(inner: &Arc<Inner>, req: http::Request<B>) -> HandlerResult
where
    B: hyper::body::Body<Data = Bytes> + Send,
    B::Error: std::fmt::Display,
{
    let (parts, body) = req.into_parts();
    let Some(route) = routes::parse(parts.uri.path()) else {
        return Err(DistError::unsupported(
            StatusCode::NOT_FOUND,
            format!("no registry endpoint at {}", parts.uri.path().chars().take(300).collect::<String>()),
        ));
    };
    if let Some(name) = route.name() {
        if !is_valid_repository_name(name) {
            return Err(DistError::name_invalid(name));
        }
    }
    let query = Query::parse(parts.uri.query());
    let method = &parts.method;
    let not_allowed = || {
        Err(DistError::unsupported(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", parts.uri.path()),
        ))
    };
    match (route, method.clone()) {
        (Route::Base, Method::GET | Method::HEAD) => Ok(json(StatusCode::OK, "{}".to_string())),
        (Route::Catalog, Method::GET) => listings::catalog(inner, &query).await,
        (Route::Tags { name }, Method::GET) => listings::tags(inner, &name, &query).await,
        (Route::Referrers { name, digest }, Method::GET) => listings::referrers(inner, &name, &digest, &query).await,
        (Route::Manifest { name, reference }, Method::GET) => manifests::get(inner, &name, &reference, true).await,
        (Route::Manifest { name, reference }, Method::HEAD) => manifests::get(inner, &name, &reference, false).await,
        (Route::Manifest { name, reference }, Method::PUT) => {
            manifests::put(inner, &name, &reference, &parts.headers, body).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => manifests::delete(inner, &name, &reference).await,
        (Route::Blob { name, digest }, Method::GET) => blobs::get(inner, &name, &digest, &parts.headers, true).await,
        (Route::Blob { name, digest }, Method::HEAD) => blobs::get(inner, &name, &digest, &parts.headers, false).await,
        (Route::Blob { name, .. }, Method::DELETE) => {
            repository(inner, &name).await?;
            Err(DistError::unsupported(
                StatusCode::METHOD_NOT_ALLOWED,
                "blobs cannot be deleted directly: delete the images that use them (BatchDeleteImage) and garbage collection removes them",
            ))
        }
        (Route::Uploads { name }, Method::POST) => uploads::start(inner, &name, &query, &parts.headers, body).await,
        (Route::Upload { name, id }, Method::GET) => uploads::status(inner, &name, &id).await,
        (Route::Upload { name, id }, Method::PATCH) => uploads::patch(inner, &name, &id, &parts.headers, body).await,
        (Route::Upload { name, id }, Method::PUT) => {
            uploads::put(inner, &name, &id, &query, &parts.headers, body).await
        }
        (Route::Upload { name, id }, Method::DELETE) => uploads::cancel(inner, &name, &id).await,
        _ => not_allowed(),
    }
}

/// The repository's record; NAME_UNKNOWN when ECR has no such repository (a push needs CreateRepository).
pub async fn repository(inner: &Inner, name: &str) -> Result<RepositoryRecord, DistError> {
    match crate::records::repository(inner.store.as_ref(), name).await? {
        Some((record, _)) => Ok(record),
        None => Err(DistError::name_unknown(name)),
    }
}

/// Query parameters (the last of repeated ones wins).
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    http_body_util::Empty::new().map_err(|never| match never {}).boxed()
}

pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    json(status, body)
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    let len = body.len();
    respond(
        status,
        full(body),
        &[(header::CONTENT_TYPE, "application/json".into()), (header::CONTENT_LENGTH, len.to_string())],
    )
}

/// A response with `headers`; header values come from validated names, digests and numbers.
pub fn respond(status: StatusCode, body: Body, headers: &[(HeaderName, String)]) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(name.clone(), v);
        }
    }
    resp
}

pub fn header_str(headers: &http::HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
