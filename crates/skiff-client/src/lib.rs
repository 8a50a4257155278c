//! `skiff-client` is the client side of Skiff's AWS JSON 1.1 wire: it builds a request for one operation,
//! signs it with SigV4 (through `skiff_proto::sigv4::sign`), sends it over plain HTTP/1.1 with keep-alive
//! connection reuse, and turns the answer into a JSON value or a [`ClientError`] that tells an AWS error
//! (`__type`, `message`, request id) apart from a server that cannot be reached. The `skiff` CLI and the
//! benchmarks in `bench/` use it.
//!
//! It knows only what any AWS SDK knows: endpoints, targets, signatures and error bodies. It never knows a
//! server's internals (no store, no model types, no routing tables), never speaks TLS (Skiff's endpoints are
//! plain `http://`) and never retries on its own: a caller that wants retries decides when they are safe.

mod error;

pub use error::{parse_api_error, sanitize_error_code, ClientError};

use bytes::Bytes;
use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// `Content-Type` of every AWS JSON 1.1 request and response.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// How long [`Client::call_json`] waits for a whole answer before giving up, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An access key pair, with the session token of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// A parsed `http://host:port[/path]` endpoint.
#[derive(Debug, Clone)]
struct Endpoint {
    /// As the user gave it, without a trailing `/`; used in messages.
    display: String,
    /// The `Host` header value: the authority exactly as it appears in the URL (port included if given).
    host: HeaderValue,
    /// The request target: the endpoint's path, `/` when it has none.
    path: String,
    /// The absolute URI requests are sent to.
    uri: Uri,
}

impl Endpoint {
    fn parse(endpoint: &str) -> Result<Endpoint, ClientError> {
        let invalid =
            |reason: &str| ClientError::InvalidEndpoint { endpoint: endpoint.to_string(), reason: reason.to_string() };
        let uri: Uri = endpoint.parse().map_err(|e| invalid(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(invalid("https is not supported; skiff serves plain http (use http://…)")),
            Some(other) => return Err(invalid(&format!("unsupported scheme {other:?}; use http://HOST:PORT"))),
            None => return Err(invalid("missing scheme; use http://HOST:PORT")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("missing host; use http://HOST:PORT"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(invalid("a query string is not allowed in the endpoint"));
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| invalid(&format!("{e}")))?;
        let path = match uri.path() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
            .map_err(|e| invalid(&format!("{e}")))?;
        Ok(Endpoint { display: endpoint.trim_end_matches('/').to_string(), host, path, uri })
    }
}

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A signed AWS JSON 1.1 client for one endpoint, region and identity. Cheap to clone; clones share one
/// keep-alive connection pool, so one client serves many concurrent tasks.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    http: HttpClient,
}

#[derive(Clone)]
struct Inner {
    endpoint: Endpoint,
    region: String,
    credentials: Credentials,
    timeout: Duration,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.display)
            .field("region", &self.inner.region)
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint` (`http://HOST:PORT`). Fails only on an endpoint it cannot use; nothing is
    /// connected until the first call. Must be called inside a tokio runtime before the first request.
    pub fn new(endpoint: &str, region: &str, credentials: Credentials) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(endpoint)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let user_agent = HeaderValue::from_static(concat!("skiff-client/", env!("CARGO_PKG_VERSION")));
        Ok(Client {
            inner: Arc::new(Inner {
                endpoint,
                region: region.to_string(),
                credentials,
                timeout: DEFAULT_TIMEOUT,
                user_agent,
            }),
            http,
        })
    }

    /// The same client with another limit on how long one call may take (connect, send, read the answer).
    pub fn with_timeout(self, timeout: Duration) -> Client {
        let mut inner = (*self.inner).clone();
        inner.timeout = timeout;
        Client { inner: Arc::new(inner), http: self.http }
    }

    /// The endpoint as given to [`Client::new`], without a trailing `/`.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint.display
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    /// Calls one AWS JSON 1.1 operation: `target` is `<prefix>.<Operation>` (for example
    /// `AmazonEC2ContainerServiceV20141113.ListClusters`) and `service_signing_name` the SigV4 service of
    /// the credential scope (`ecs`). Returns the response body, `{}` when it is empty.
    pub async fn call_json(
        &self,
        service_signing_name: &str,
        target: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| ClientError::InvalidRequest(format!("cannot encode body: {e}")))?;
        let request = self.signed_request(service_signing_name, target, Bytes::from(bytes))?;
        let response = self.send(request).await?;
        self.json_result(response)
    }

    /// Builds a `POST` of `body` to the endpoint with `X-Amz-Target: target`, signed now for
    /// `service_signing_name` in this client's region. Send it with [`Client::send`] or on a connection of
    /// your own (it carries an absolute URI and a `Host` header, so either works).
    pub fn signed_request(
        &self,
        service_signing_name: &str,
        target: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        self.signed_request_at(service_signing_name, target, body, SystemTime::now())
    }

    /// [`Client::signed_request`] with the signing time given (tests, pre-built requests).
    pub fn signed_request_at(
        &self,
        service_signing_name: &str,
        target: &str,
        body: Bytes,
        time: SystemTime,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let inner = &*self.inner;
        let target_value = HeaderValue::from_str(target)
            .map_err(|_| ClientError::InvalidRequest(format!("invalid X-Amz-Target {target:?}")))?;
        let mut headers = HeaderMap::with_capacity(10);
        headers.insert(HOST, inner.endpoint.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
        headers.insert("x-amz-target", target_value);
        let creds = &inner.credentials;
        skiff_proto::sigv4::sign(
            "POST",
            &inner.endpoint.path,
            "",
            &mut headers,
            &body,
            &skiff_proto::sigv4::SigningParams {
                access_key_id: &creds.access_key_id,
                secret_access_key: &creds.secret_access_key,
                session_token: creds.session_token.as_deref(),
                region: &inner.region,
                service: service_signing_name,
                time,
            },
        );
        // Unsigned, as SDKs send them.
        headers.insert(USER_AGENT, inner.user_agent.clone());
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = inner.endpoint.uri.clone();
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// Sends a request over the shared connection pool and reads the whole answer, within the client's
    /// timeout. Any HTTP status is a success here; see [`Client::json_result`] to interpret it.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Bytes>, ClientError> {
        let endpoint = &self.inner.endpoint.display;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| ClientError::transport(endpoint, &e))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| ClientError::transport(endpoint, &e))?.to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        match tokio::time::timeout(self.inner.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout { endpoint: endpoint.clone(), after: self.inner.timeout }),
        }
    }

    /// Interprets an AWS JSON 1.1 answer: the body of a 2xx as JSON (`{}` when empty), anything else as the
    /// AWS error it carries.
    pub fn json_result(&self, response: Response<Bytes>) -> Result<serde_json::Value, ClientError> {
        error::json_result(&self.inner.endpoint.display, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:9400").unwrap();
        assert_eq!((e.host.to_str().unwrap(), e.path.as_str()), ("127.0.0.1:9400", "/"));
        assert_eq!(e.uri.to_string(), "http://127.0.0.1:9400/");
        let e = Endpoint::parse("http://localhost/").unwrap();
        assert_eq!((e.host.to_str().unwrap(), e.display.as_str()), ("localhost", "http://localhost"));
        for bad in ["127.0.0.1:9400", "https://127.0.0.1:9400", "ftp://x", "http://u:p@h:1", "http://h:1/?a=b", ""] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{bad:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn signed_request_carries_what_sigv4_covers() {
        let client = Client::new("http://127.0.0.1:9400", "us-east-1", creds()).unwrap();
        let req = client
            .signed_request("ecs", "AmazonEC2ContainerServiceV20141113.ListClusters", Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:9400/");
        let h = req.headers();
        assert_eq!(h["host"], "127.0.0.1:9400");
        assert_eq!(h["content-type"], JSON_1_1);
        assert_eq!(h["x-amz-target"], "AmazonEC2ContainerServiceV20141113.ListClusters");
        assert!(h.get("x-amz-security-token").is_none());
        let err = client.signed_request("ecs", "bad\ntarget", Bytes::new()).unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");

        let temporary = Credentials { session_token: Some("token-1".into()), ..creds() };
        let client = Client::new("http://127.0.0.1:9400", "us-east-1", temporary).unwrap();
        let req = client.signed_request("ecs", "X.Y", Bytes::new()).unwrap();
        assert_eq!(req.headers()["x-amz-security-token"], "token-1");
        let err = client.signed_request("ecs", "bad\ntarget", Bytes::new()).unwrap_err();
        assert!(matches!(err, ClientError::InvalidRequest(_)), "{err:?}");
    }

    /// The boto3 request captured in AWS-PROTOCOLS.md §3.2 (ECS ListClusters at 20261128T064946Z): the
    /// same inputs must give boto3's signature, so a server that accepts boto3 accepts this client.
    #[tokio::test]
    async fn signs_like_boto3() {
        let client = Client::new("http://127.0.0.1:18080", "us-east-1", creds()).unwrap();
        let time = std::time::UNIX_EPOCH + Duration::from_secs(1795848586);
        let req = client
            .signed_request_at(
                "ecs",
                "AmazonEC2ContainerServiceV20141113.ListClusters",
                Bytes::from_static(b"{}"),
                time,
            )
            .unwrap();
        assert_eq!(req.headers()["x-amz-date"], "20261128T064946Z");
        assert_eq!(
            req.headers()["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/us-east-1/ecs/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
             Signature=75aeffbdd56589c01c6929527b60ea7e05e9e1333d29d214524bec788e4cdba6"
        );
    }

    #[tokio::test]
    async fn connection_refused_names_the_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let endpoint = format!("http://{addr}");
        let client = Client::new(&endpoint, "us-east-1", creds()).unwrap();
        let err = client.call_json("ecs", "X.Y", &serde_json::json!({})).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot reach skiff at {endpoint}: connection refused; is `skiff server` running?")
        );
    }

    /// A canned HTTP/1.1 server: answers every request on one connection with `response`, counting
    /// connections, so keep-alive reuse and error answers can be checked end to end.
    async fn canned_server(response: &'static str) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        // One request per read cycle: headers, then Content-Length bytes of body.
                        let Some(end) = find(&buf, b"\r\n\r\n") else {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + 4 + len {
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..end + 4 + len);
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}"), connections)
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[tokio::test]
    async fn reuses_one_connection_for_sequential_calls() {
        let (endpoint, connections) = canned_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 18\r\n\r\n{\"clusterArns\":[]}",
        )
        .await;
        let client = Client::new(&endpoint, "us-east-1", creds()).unwrap();
        for _ in 0..5 {
            let out = client.call_json("ecs", "X.ListClusters", &serde_json::json!({})).await.unwrap();
            assert_eq!(out, serde_json::json!({"clusterArns": []}));
        }
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn api_errors_come_back_typed() {
        let (endpoint, _) = canned_server(
            "HTTP/1.1 400 Bad Request\r\nx-amzn-RequestId: r-1\r\ncontent-length: 86\r\n\r\n{\"__type\":\"com.amazonaws.ecs#ClusterNotFoundException\",\"message\":\"Cluster not found.\"}",
        )
        .await;
        let client = Client::new(&endpoint, "us-east-1", creds()).unwrap();
        let err = client.call_json("ecs", "X.DeleteCluster", &serde_json::json!({"cluster": "x"})).await.unwrap_err();
        assert_eq!(err.to_string(), "ClusterNotFoundException: Cluster not found. (request id r-1)");
        assert_eq!(err.code(), Some("ClusterNotFoundException"));
    }
}
