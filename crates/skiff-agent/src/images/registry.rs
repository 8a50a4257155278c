//! The registry v2 client: manifests and blobs over HTTP(S), with the Distribution spec's authentication
//! (anonymous first; on 401 the `WWW-Authenticate` challenge: Basic with the provider's credentials, or
//! Bearer's token flow against the challenge's realm), redirects for blobs (never carrying credentials to
//! another host), and plain http only for insecure registries (configured, or on a loopback address).

use super::media::MANIFEST_ACCEPT;
use super::reference::{host_without_port, Reference};
use super::RegistryCredentials;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// How long a request may wait for response headers, and a body for its next chunk.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 5;
/// Manifests, indexes, configs and token responses are small documents; larger ones are refused.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 4 << 20;
const USER_AGENT_VALUE: &str = concat!("skiff/", env!("CARGO_PKG_VERSION"));

/// Why a registry request failed, in words fit for `CannotPullContainerError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    NotFound(String),
    Unauthorized(String),
    /// Worth one retry: connection failures, timeouts, 5xx, 429.
    Transient(String),
    Other(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::NotFound(detail) => write!(f, "not found{detail}"),
            FetchError::Unauthorized(detail) => {
                write!(f, "pull access denied, repository does not exist or may require authorization: {detail}")
            }
            FetchError::Transient(s) | FetchError::Other(s) => f.write_str(s),
        }
    }
}

/// The HTTP client of the image store: one connection pool for every registry.
#[derive(Clone)]
pub(crate) struct RegistryClient {
    http: Client<Https, Empty<Bytes>>,
    insecure: Arc<Vec<String>>,
}

impl RegistryClient {
    pub(crate) fn new(insecure_registries: &[String]) -> Result<RegistryClient, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(RegistryClient { http: client, insecure: Arc::new(insecure_registries.to_vec()) })
    }

    /// Plain http is allowed for configured insecure registries (by `host` or `host:port`) and loopback.
    pub(crate) fn is_insecure(&self, registry: &str) -> bool {
        is_loopback(registry)
            || self.insecure.iter().any(|r| r == registry || r.as_str() == host_without_port(registry))
    }

    pub(crate) fn session(&self, reference: &Reference, creds: Option<RegistryCredentials>) -> Session {
        let scheme = if self.is_insecure(&reference.registry) { "http" } else { "https" };
        Session {
            client: self.clone(),
            base: format!("{scheme}://{}", reference.api_host()),
            repository: reference.repository.clone(),
            creds,
            auth: Mutex::new(None),
        }
    }
}

pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_without_port(registry);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Requests against one repository of one registry, sharing the authorization they earned.
pub(crate) struct Session {
    client: RegistryClient,
    base: String,
    repository: String,
    creds: Option<RegistryCredentials>,
    auth: Mutex<Option<HeaderValue>>,
}

/// A manifest as the registry served it.
pub(crate) struct FetchedManifest {
    pub body: Bytes,
    pub content_type: Option<String>,
    /// `Docker-Content-Digest`, when sent.
    pub digest_header: Option<String>,
}

impl Session {
    /// GET /v2/<name>/manifests/<reference>.
    pub(crate) async fn manifest(&self, reference: &str) -> Result<FetchedManifest, FetchError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = self.get(&path, Some(MANIFEST_ACCEPT)).await?;
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header(CONTENT_TYPE.as_str());
        let digest_header = header("docker-content-digest");
        let body = read_limited(resp.into_body(), MAX_DOCUMENT_BYTES).await?;
        Ok(FetchedManifest { body, content_type, digest_header })
    }

    /// GET /v2/<name>/blobs/<digest>: the response, status 200, body unread.
    pub(crate) async fn blob(&self, digest: &str) -> Result<Response<Incoming>, FetchError> {
        self.get(&format!("/v2/{}/blobs/{digest}", self.repository), None).await
    }

    /// A small blob (a config), read whole (at most `max` bytes).
    pub(crate) async fn small_blob(&self, digest: &str, max: usize) -> Result<Bytes, FetchError> {
        let resp = self.blob(digest).await?;
        read_limited(resp.into_body(), max).await
    }

    /// A GET that authenticates on demand and follows redirects; any status but 200 is an error.
    async fn get(&self, path: &str, accept: Option<&str>) -> Result<Response<Incoming>, FetchError> {
        let url = format!("{}{}", self.base, path);
        let mut reauthenticated = false;
        loop {
            let auth = self.auth.lock().map(|a| a.clone()).unwrap_or(None);
            let resp = self.send_following(&url, accept, auth.as_ref()).await?;
            match resp.status() {
                StatusCode::OK => return Ok(resp),
                StatusCode::UNAUTHORIZED if !reauthenticated => {
                    reauthenticated = true;
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_challenge)
                        .ok_or_else(|| {
                            FetchError::Unauthorized(format!(
                                "{url} answered 401 without a usable WWW-Authenticate challenge"
                            ))
                        })?;
                    let value = self.authorize(&challenge).await?;
                    if let Ok(mut slot) = self.auth.lock() {
                        *slot = Some(value);
                    }
                }
                status => {
                    let body = read_limited(resp.into_body(), 64 * 1024).await.unwrap_or_default();
                    return Err(status_error(status, &body));
                }
            }
        }
    }

    /// Sends a GET, following up to five redirects; credentials go only to the registry's own host.
    async fn send_following(
        &self,
        url: &str,
        accept: Option<&str>,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>, FetchError> {
        let origin: Uri = url.parse().map_err(|e| FetchError::Other(format!("bad registry URL {url}: {e}")))?;
        let mut uri = origin.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_host = uri.authority() == origin.authority();
            let resp = self.send(&uri, accept, if same_host { auth } else { None }).await?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| FetchError::Other(format!("{uri} answered {} without a Location", resp.status())))?;
            let next = resolve_location(&uri, location)
                .ok_or_else(|| FetchError::Other(format!("{uri} redirected to an invalid location {location:?}")))?;
            if next.scheme_str() == Some("http")
                && !next.authority().is_some_and(|a| self.client.is_insecure(a.as_str()))
            {
                return Err(FetchError::Other(format!("{uri} redirected to plain http ({next}); refused")));
            }
            uri = next;
        }
        Err(FetchError::Other(format!("{url}: more than {MAX_REDIRECTS} redirects")))
    }

    async fn send(
        &self,
        uri: &Uri,
        accept: Option<&str>,
        auth: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>, FetchError> {
        let mut req = Request::get(uri.clone()).header(USER_AGENT, USER_AGENT_VALUE);
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        if let Some(auth) = auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let req =
            req.body(Empty::new()).map_err(|e| FetchError::Other(format!("cannot build a request for {uri}: {e}")))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.client.http.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(FetchError::Transient(format!("{uri}: {}", error_chain(&e)))),
            Err(_) => Err(FetchError::Transient(format!("{uri}: no response within {} s", REQUEST_TIMEOUT.as_secs()))),
        }
    }

    /// The Authorization header that answers `challenge`.
    async fn authorize(&self, challenge: &Challenge) -> Result<HeaderValue, FetchError> {
        let header = |s: String| {
            HeaderValue::from_str(&s).map_err(|_| FetchError::Other("credentials are not a valid header value".into()))
        };
        match (&self.creds, challenge.scheme.as_str()) {
            // A registry token (ECR's, Skiff's) is good for either scheme.
            (Some(RegistryCredentials::Bearer(token)), _) => header(format!("Bearer {token}")),
            (Some(RegistryCredentials::Basic { username, password }), "basic") => header(basic(username, password)),
            (None, "basic") => {
                Err(FetchError::Unauthorized(format!("{} wants Basic credentials and none were given", self.base)))
            }
            (_, "bearer") => {
                let token = self.bearer_token(challenge).await?;
                header(format!("Bearer {token}"))
            }
            (_, other) => Err(FetchError::Unauthorized(format!("unsupported authentication scheme {other:?}"))),
        }
    }

    /// The token flow: GET realm?service=…&scope=…, with Basic credentials when given.
    async fn bearer_token(&self, challenge: &Challenge) -> Result<String, FetchError> {
        let realm = challenge
            .params
            .get("realm")
            .ok_or_else(|| FetchError::Unauthorized("the Bearer challenge has no realm".into()))?;
        let realm_uri: Uri =
            realm.parse().map_err(|_| FetchError::Unauthorized(format!("invalid token realm {realm:?}")))?;
        let secure = realm_uri.scheme_str() == Some("https")
            || (realm_uri.scheme_str() == Some("http")
                && realm_uri.authority().is_some_and(|a| self.client.is_insecure(a.as_str())));
        if !secure {
            return Err(FetchError::Unauthorized(format!("token realm {realm} is not https; refused")));
        }
        let scope =
            challenge.params.get("scope").cloned().unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(service) = challenge.params.get("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope);
            query.finish()
        };
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{query}");
        let uri: Uri = url.parse().map_err(|_| FetchError::Unauthorized(format!("invalid token URL {url}")))?;
        let auth = match &self.creds {
            Some(RegistryCredentials::Basic { username, password }) => {
                HeaderValue::from_str(&basic(username, password)).ok()
            }
            _ => None,
        };
        let resp = self.send(&uri, Some("application/json"), auth.as_ref()).await?;
        let status = resp.status();
        let body = read_limited(resp.into_body(), MAX_DOCUMENT_BYTES).await?;
        if status != StatusCode::OK {
            return Err(FetchError::Unauthorized(format!(
                "token server {realm} answered {status}{}",
                server_message(&body)
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| FetchError::Unauthorized(format!("token server {realm} sent an invalid response: {e}")))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| FetchError::Unauthorized(format!("token server {realm} sent no token")))
    }
}

fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

/// Reads a body up to `max` bytes (more is an error), each chunk within the request timeout.
pub(crate) async fn read_limited(mut body: Incoming, max: usize) -> Result<Bytes, FetchError> {
    let mut out = Vec::new();
    loop {
        let frame = match tokio::time::timeout(REQUEST_TIMEOUT, body.frame()).await {
            Err(_) => return Err(FetchError::Transient("the registry stopped sending".into())),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(FetchError::Transient(format!("reading the response: {}", error_chain(&e))))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > max {
                return Err(FetchError::Other(format!("response larger than {max} bytes; refused")));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

fn status_error(status: StatusCode, body: &[u8]) -> FetchError {
    let msg = server_message(body);
    match status {
        StatusCode::NOT_FOUND => FetchError::NotFound(msg),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            FetchError::Unauthorized(format!("server answered {status}{msg}"))
        }
        StatusCode::TOO_MANY_REQUESTS => FetchError::Transient(format!("server answered {status}{msg}")),
        s if s.is_server_error() => FetchError::Transient(format!("server answered {status}{msg}")),
        s => FetchError::Other(format!("server answered {s}{msg}")),
    }
}

/// `: server message: CODE: message` from a Distribution-spec error body, or nothing.
fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let items: Vec<String> = e
                .errors
                .iter()
                .map(|i| {
                    if i.message.is_empty() {
                        i.code.to_lowercase()
                    } else {
                        format!("{}: {}", i.code.to_lowercase(), i.message)
                    }
                })
                .collect();
            format!(": server message: {}", items.join("; "))
        }
        _ => String::new(),
    }
}

fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?;
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}").parse().ok();
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    format!("{scheme}://{authority}{dir}{location}").parse().ok()
}

/// A parsed `WWW-Authenticate` challenge (the first one of the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Lowercase: `basic`, `bearer`.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull,push"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = match header.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((s, r)) => (s, r.trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() {
        return None;
    }
    let mut params = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge { scheme: scheme.to_ascii_lowercase(), params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["service"], "registry.docker.io");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull,push");
        let c = parse_challenge(r#"Basic realm="127.0.0.1:9400",service="ecr""#).unwrap();
        assert_eq!((c.scheme.as_str(), c.params["service"].as_str()), ("basic", "ecr"));
        let c = parse_challenge(r#"Bearer realm=https://x/token, service=reg ,scope="a\"b""#).unwrap();
        assert_eq!(c.params["realm"], "https://x/token");
        assert_eq!(c.params["service"], "reg");
        assert_eq!(c.params["scope"], "a\"b");
        assert_eq!(parse_challenge("Basic").unwrap().params.len(), 0);
        assert!(parse_challenge("").is_none());
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }

    #[test]
    fn loopback_and_insecure() {
        for host in ["127.0.0.1:9400", "127.1.2.3", "localhost:5000", "[::1]:5000", "localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1:5000", "example.com", "docker.io", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
        let c = RegistryClient::new(&["reg.internal:5000".into(), "plain.lan".into()]).unwrap();
        assert!(c.is_insecure("reg.internal:5000"));
        assert!(!c.is_insecure("reg.internal:5001"));
        assert!(c.is_insecure("plain.lan:443"));
        assert!(!c.is_insecure("docker.io"));
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://127.0.0.1:5000/v2/web/blobs/sha256:x".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "https://cdn.example/b?sig=1").unwrap().to_string(),
            "https://cdn.example/b?sig=1"
        );
        assert_eq!(resolve_location(&base, "/other/blob").unwrap().to_string(), "http://127.0.0.1:5000/other/blob");
        assert_eq!(resolve_location(&base, "//cdn/x").unwrap().to_string(), "http://cdn/x");
        assert_eq!(resolve_location(&base, "y").unwrap().to_string(), "http://127.0.0.1:5000/v2/web/blobs/y");
    }

    #[test]
    fn error_bodies() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert_eq!(
            status_error(StatusCode::NOT_FOUND, body).to_string(),
            "not found: server message: manifest_unknown: manifest unknown"
        );
        assert_eq!(status_error(StatusCode::NOT_FOUND, b"").to_string(), "not found");
        assert!(matches!(status_error(StatusCode::BAD_GATEWAY, b""), FetchError::Transient(_)));
    }
}
