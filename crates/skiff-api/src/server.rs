//! The HTTP listener: keep-alive HTTP/1.1 connections served concurrently, bodies capped, every call
//! authenticated and routed, every response stamped with a request id and a `Date`.

use crate::context::{now_secs, AppState, Ctx};
use crate::router::{QueryDialect, QueryService};
use crate::{auth, router};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use skiff_proto::json::WireResponse;
use skiff_proto::query::QueryParams;
use skiff_proto::sigv4::RequestParts;
use skiff_proto::{json, query, ApiError, Protocol};
use skiff_registry::Body;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

/// Largest request body accepted on the API (ECS caps a task definition at 64 KiB; this leaves room).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Serves connections from `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
}

async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == "/v2" || path.starts_with("/v2/") {
        return Ok(registry(state, req).await);
    }
    let request_id = skiff_proto::new_request_id();
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET && parts.uri.path() == "/healthz" {
        return Ok(respond(
            WireResponse { status: 200, content_type: "text/plain", headers: vec![], body: b"ok\n".to_vec() },
            &request_id,
        ));
    }
    let protocol = if parts.headers.contains_key("x-amz-target") { Protocol::Json } else { Protocol::Query };
    // Errors before routing are rendered in the dialect of the query service the credential names, if any.
    let render_error = |err: &ApiError| match protocol {
        Protocol::Json => json::error(err),
        Protocol::Query => query_error(err, scoped_query_service(&parts).unwrap_or(&router::STS), &request_id),
    };

    if parts.uri.path() != "/" || !(parts.method == Method::POST || parts.method == Method::GET) {
        let err = ApiError::new(
            "UnknownOperationException",
            404,
            format!("no API at {} {}: AWS API calls are POST / (or presigned GET /)", parts.method, parts.uri.path()),
        );
        return Ok(respond(render_error(&err), &request_id));
    }
    // A body that cannot be read is a validation error of the service addressed (the code its model lists).
    let validation_error = match protocol {
        Protocol::Json => parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| router::json_service_by_prefix(t.split_once('.').map_or(t, |(p, _)| p)))
            .map_or("SerializationException", |s| s.validation_error),
        Protocol::Query => "ValidationError",
    };
    let body = match read_body(&parts, body, validation_error).await {
        Ok(b) => b,
        Err(err) => return Ok(respond(render_error(&err), &request_id)),
    };
    let response = match protocol {
        Protocol::Json => {
            dispatch_json(state, &parts, body, request_id.clone()).await.unwrap_or_else(|e| json::error(&e))
        }
        Protocol::Query => match dispatch_query(state, &parts, body, request_id.clone()).await {
            Ok(r) => r,
            Err((err, service)) => query_error(&err, service, &request_id),
        },
    };
    if response.status >= 500 {
        tracing::error!(request_id, status = response.status, body = %String::from_utf8_lossy(&response.body), "request failed");
    }
    Ok(respond(response, &request_id))
}

async fn read_body(parts: &http::request::Parts, body: Incoming, code: &'static str) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::new(code, 413, format!("request body exceeds the limit of {MAX_BODY_BYTES} bytes"));
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::client(code, format!("cannot read the request body: {e}"))),
    }
}

fn request_parts<'a>(parts: &'a http::request::Parts, body: &'a [u8]) -> RequestParts<'a> {
    RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    }
}

async fn dispatch_json(
    state: Arc<AppState>,
    parts: &http::request::Parts,
    body: Bytes,
    request_id: String,
) -> Result<WireResponse, ApiError> {
    let req = request_parts(parts, &body);
    let claim = auth::parse(&req, Protocol::Json)?;
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    let unknown = || ApiError::client("UnknownOperationException", format!("unknown operation '{target}'"));
    let service = router::json_service_by_prefix(prefix).ok_or_else(unknown)?;
    let caller = auth::verify(&state.keys, &req, &claim, Protocol::Json, service.signing_name, &state.scope.region)?;
    let op = service.operations.iter().find(|o| o.name == operation).ok_or_else(unknown)?;
    (op.call)(Ctx { state, caller, request_id }, body, service.validation_error).await
}

async fn dispatch_query(
    state: Arc<AppState>,
    parts: &http::request::Parts,
    body: Bytes,
    request_id: String,
) -> Result<WireResponse, (ApiError, &'static QueryService)> {
    let default = &router::STS;
    let req = request_parts(parts, &body);
    let claim = auth::parse(&req, Protocol::Query).map_err(|e| (e, default))?;
    let service = router::query_service_by_signing_name(&claim.service).ok_or_else(|| {
        let err = ApiError::new(
            "SignatureDoesNotMatch",
            403,
            format!("Credential should be scoped to a service this endpoint serves, not '{}'.", claim.service),
        );
        (err, default)
    })?;
    let fail = |e: ApiError| (e, service);
    let ec2 = service.dialect == QueryDialect::Ec2;
    let caller = auth::verify(&state.keys, &req, &claim, Protocol::Query, service.signing_name, &state.scope.region)
        .map_err(|e| fail(if ec2 { query::ec2_auth_error(e) } else { e }))?;
    // Parameters come from the URL (GET, presigned requests) and the form body; the body wins.
    let mut params = QueryParams::parse(parts.uri.query().unwrap_or("").as_bytes()).map_err(fail)?;
    params.extend(QueryParams::parse(&body).map_err(fail)?);
    let action = params
        .action()
        .ok_or_else(|| fail(ApiError::client("MissingAction", "the request has no Action parameter")))?
        .to_string();
    let op = service.operations.iter().find(|o| o.name == action).ok_or_else(|| {
        fail(if ec2 {
            let served: Vec<&str> = service.operations.iter().map(|o| o.name).collect();
            ApiError::client(
                "InvalidAction",
                format!(
                    "The action {action} is not valid for this web service (Skiff serves these EC2 actions: {}).",
                    served.join(", ")
                ),
            )
        } else {
            ApiError::client("InvalidAction", format!("Could not find operation {action} for {}", service.signing_name))
        })
    })?;
    let result = (op.call)(Ctx { state, caller, request_id: request_id.clone() }, params).await.map_err(fail)?;
    Ok(match service.dialect {
        QueryDialect::Query => query::success(&action, service.xmlns, &result, &request_id),
        QueryDialect::Ec2 => query::ec2_success(&action, service.xmlns, &result, &request_id),
    })
}

/// The query service a request's credential scope names (header or presigned form), if it names one.
fn scoped_query_service(parts: &http::request::Parts) -> Option<&'static QueryService> {
    let claim = auth::parse(&request_parts(parts, b""), Protocol::Query).ok()?;
    router::query_service_by_signing_name(&claim.service)
}

/// A query-protocol error in the service's dialect.
fn query_error(err: &ApiError, service: &QueryService, request_id: &str) -> WireResponse {
    match service.dialect {
        QueryDialect::Query => query::error(err, service.xmlns, request_id),
        QueryDialect::Ec2 => query::ec2_error(err, request_id),
    }
}

/// The registry: every `/v2/` request needs a token from ECR `GetAuthorizationToken` (Basic `AWS:<token>`).
async fn registry(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if state.registry_tokens.authenticate(authorization, &state.keys, now_secs()).is_none() {
        let message = if authorization.is_some() {
            "authentication failed: the registry token is invalid or expired; get a new one with `aws ecr get-login-password`"
        } else {
            "authentication required: log in with `aws ecr get-login-password | podman login --username AWS --password-stdin HOST`"
        };
        let mut resp = skiff_registry::error_response(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        let challenge = format!("Basic realm=\"{}\",service=\"ecr\"", state.registry_hosts.registry_host);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return resp;
    }
    let manifest_push = (req.method() == Method::PUT)
        .then(|| req.uri().path().strip_prefix("/v2/")?.rsplit_once("/manifests/").map(|(repo, _)| repo.to_string()))
        .flatten();
    let resp = state.registry.handle(req).await;
    if let (Some(repository), StatusCode::CREATED) = (manifest_push, resp.status()) {
        crate::controllers::after_manifest_push(state, repository);
    }
    resp
}

fn respond(wire: WireResponse, request_id: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(wire.body)).map_err(|never| match never {}).boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(wire.content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate(SystemTime::now())) {
        headers.insert(header::DATE, v);
    }
    for (name, value) in wire.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    resp
}

/// RFC 7231 IMF-fixdate, e.g. `Sat, 28 Nov 2026 06:49:46 GMT`.
fn httpdate(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    dt.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_848_586);
        assert_eq!(httpdate(t), "Sat, 28 Nov 2026 06:49:46 GMT");
    }
}
