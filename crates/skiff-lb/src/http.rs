//! The HTTP reverse proxy (an ALB listener): routing, fixed responses, redirects, and forwarding over
//! pooled keep-alive upstream connections with streamed bodies. Clients speak HTTP/1.1, or HTTP/2 with prior
//! knowledge (h2c: the connection opens with the HTTP/2 preface); targets are always spoken to in HTTP/1.1
//! (ALB's default target protocol version).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::idle_timeout::{serve_until_idle, Activity, ClientIo};
use crate::listener::{CompiledAction, FixedAction, ForwardAction, ListenerRuntime, ListenerSlot};
use crate::matching::{canonical_ip, request_host};
use crate::target_group::{InFlight, Target, TargetGroup};

/// What every HTTP connection of a load balancer shares. Upstream connections are pooled per target
/// (`Target::checkout` / `checkin`): a connection goes back to its pool when its response body ends.
pub(crate) struct HttpShared {}

impl HttpShared {
    pub fn new() -> Self {
        HttpShared {}
    }
}

type UpstreamConn = hyper::client::conn::http1::SendRequest<Incoming>;

#[derive(Debug)]
enum UpstreamError {
    /// Refused, reset, garbage: 502.
    BadGateway,
}

async fn connect(target: &Target) -> Result<UpstreamConn, UpstreamError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target.addr))
        .await
        .map_err(|_| UpstreamError::BadGateway)?
        .map_err(|_| UpstreamError::BadGateway)?;
    let _ = stream.set_nodelay(true);
    // Headers and a small body in one buffer and one write (hyper's default queues them for a writev): ~3 %
    // less CPU per request (bench/lb-proxy.sh).
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| UpstreamError::BadGateway)?;
    tokio::spawn(conn);
    Ok(sender)
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `req` on a pooled connection (retrying on a fresh one when a pooled connection closed before the
/// request went out) and returns the response with the connection to give back.
async fn send_upstream(
    target: &Target,
    req: Request<Incoming>,
) -> Result<(Response<Incoming>, UpstreamConn), UpstreamError> {
    let mut req = req;
    while let Some(mut conn) = target.checkout() {
        if conn.ready().await.is_err() {
            continue;
        }
        match conn.try_send_request(req).await {
            Ok(resp) => return Ok((resp, conn)),
            Err(mut e) => match e.take_message() {
                Some(back) => req = back,
                None => return Err(UpstreamError::BadGateway),
            },
        }
    }
    let mut conn = connect(target).await?;
    match conn.send_request(req).await {
        Ok(resp) => Ok((resp, conn)),
        Err(_) => Err(UpstreamError::BadGateway),
    }
}

/// The HTTP/2 connection preface a client with prior knowledge opens with (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Concurrent streams an HTTP/2 client may open on one connection (ALB's limit).
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 128;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ClientProtocol {
    Http1,
    Http2,
}

/// Which protocol the client speaks, from its first bytes, peeked (they stay for the server to read): HTTP/2
/// when they are the HTTP/2 preface, HTTP/1.1 as soon as they differ from it. `None` when the client closed
/// or sent nothing within `idle_timeout`.
async fn client_protocol(stream: &tokio::net::TcpStream, idle_timeout: Duration) -> Option<ClientProtocol> {
    let detect = async {
        let mut buf = [0u8; HTTP2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != HTTP2_PREFACE[..n] {
                return Some(ClientProtocol::Http1);
            }
            if n == HTTP2_PREFACE.len() {
                return Some(ClientProtocol::Http2);
            }
            // Only the start of the preface so far (rare: it fits the first segment). A peek returns the same
            // bytes at once until more arrive, so wait a little before looking again.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(idle_timeout, detect).await.ok().flatten()
}

pub(crate) async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    slot: Arc<ListenerSlot>,
    shared: Arc<HttpShared>,
) {
    let Some(protocol) = client_protocol(&stream, slot.load().idle_timeout).await else { return };
    let peer_ip = canonical_ip(peer.ip());
    let peer_header = HeaderValue::try_from(peer_ip.to_string()).ok();
    let activity = match protocol {
        ClientProtocol::Http1 => Activity::new(),
        ClientProtocol::Http2 => Activity::multiplexed(),
    };
    let io = TokioIo::new(ClientIo::new(stream, activity.clone()));
    let service = {
        let slot = slot.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let slot = slot.clone();
            let shared = shared.clone();
            let peer_header = peer_header.clone();
            let activity = activity.clone();
            async move { Ok::<_, Infallible>(handle(req, peer_ip, peer_header, &slot, &shared, &activity).await) }
        })
    };
    // The idle timeout is one lazily re-armed timer per connection (`idle_timeout`), not hyper's header read
    // timeout: that arms a boxed timer per request, which cost ~25 % of throughput (bench/lb-proxy.sh).
    let idle_timeout = || slot.load().idle_timeout;
    match protocol {
        ClientProtocol::Http1 => {
            // One buffer, one write per response, as on upstream connections (`connect`).
            let conn = hyper::server::conn::http1::Builder::new().writev(false).serve_connection(io, service);
            serve_until_idle(conn, &activity, idle_timeout).await;
        }
        ClientProtocol::Http2 => {
            // Each stream's request runs in a task of its own on this worker (tokio::spawn in a worker's
            // current-thread runtime); an idle connection is dropped, closing the socket.
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_streams(HTTP2_MAX_CONCURRENT_STREAMS)
                .serve_connection(io, service);
            serve_until_idle(conn, &activity, idle_timeout).await;
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: IpAddr,
    peer_header: Option<HeaderValue>,
    slot: &ListenerSlot,
    shared: &HttpShared,
    activity: &Activity,
) -> Response<ProxyBody> {
    let rt = slot.load();
    let (parts, body) = req.into_parts();
    match rt.route(&parts, peer) {
        CompiledAction::Fixed(f) => fixed(f),
        CompiledAction::Redirect(r) => redirect(r, &parts, &rt),
        CompiledAction::Forward(f) => forward(parts, body, f, &rt, peer_header, shared, activity).await,
    }
}

const STICKY_COOKIE: &str = "AWSALB";

async fn forward(
    mut parts: http::request::Parts,
    body: Incoming,
    fwd: &ForwardAction,
    rt: &ListenerRuntime,
    peer_header: Option<HeaderValue>,
    shared: &HttpShared,
    activity: &Activity,
) -> Response<ProxyBody> {
    let sticky = fwd.stickiness.and_then(|_| sticky_target(&parts.headers, fwd));
    let (target, new_cookie) = match sticky {
        Some(t) => (t, false),
        None => {
            let Some(target) = fwd.pick_group().and_then(|g| g.pick()) else {
                return error_page(StatusCode::SERVICE_UNAVAILABLE);
            };
            (target, fwd.stickiness.is_some())
        }
    };
    let inflight = target.into_in_flight();
    let target = inflight.target();

    strip_hop_by_hop(&mut parts.headers);
    let headers = &mut parts.headers;
    if let Some(ip) = peer_header {
        match headers.get(X_FORWARDED_FOR).map(|v| v.as_bytes()) {
            Some(prev) if !prev.is_empty() => {
                let mut v = Vec::with_capacity(prev.len() + 2 + ip.len());
                v.extend_from_slice(prev);
                v.extend_from_slice(b", ");
                v.extend_from_slice(ip.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&v) {
                    headers.insert(X_FORWARDED_FOR, v);
                }
            }
            _ => {
                headers.insert(X_FORWARDED_FOR, ip);
            }
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_FORWARDED_PORT, rt.port_header.clone());
    // ALB: a request without a Root gets a new trace id; one with a Root keeps it and gets a Self field (the
    // load balancer's own segment), put first or replacing an earlier Self.
    let traced = headers
        .get(X_AMZN_TRACE_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.split(';').any(|f| f.trim().starts_with("Root=")))
        .map(with_self);
    headers.insert(X_AMZN_TRACE_ID, traced.unwrap_or_else(trace_id));
    if !headers.contains_key(header::HOST) {
        if let Some(a) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                headers.insert(header::HOST, v);
            }
        }
    }
    // Origin form on the wire: the target sees the path and query only (most requests already are).
    let origin_form = parts.uri.scheme().is_none() && parts.uri.authority().is_none();
    if !origin_form || parts.uri.path_and_query().is_none() {
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        uri.scheme = None;
        uri.authority = None;
        parts.uri = match Uri::from_parts(uri) {
            Ok(u) => u,
            Err(_) => return error_page(StatusCode::BAD_REQUEST),
        };
    }
    parts.version = http::Version::HTTP_11;

    let _ = shared;
    let upstream = send_upstream(target, Request::from_parts(parts, body));
    let (resp, conn) = match activity.within(rt.idle_timeout, upstream).await {
        Some(Ok(r)) => r,
        Some(Err(UpstreamError::BadGateway)) => return error_page(StatusCode::BAD_GATEWAY),
        None => return error_page(StatusCode::GATEWAY_TIMEOUT),
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    if new_cookie {
        if let Some(c) = sticky_cookie(target, fwd.stickiness.unwrap_or_default()) {
            parts.headers.append(header::SET_COOKIE, c);
        }
    }
    if body.is_end_stream() {
        // No body to stream (hyper will not poll it): the connection is free now.
        target.checkin(conn);
        drop(inflight);
        return Response::from_parts(parts, ProxyBody::Upstream { body, conn: None });
    }
    Response::from_parts(parts, ProxyBody::Upstream { body, conn: Some((conn, inflight)) })
}

fn sticky_target(headers: &HeaderMap, fwd: &ForwardAction) -> Option<Arc<Target>> {
    let value = headers.get_all(header::COOKIE).iter().find_map(|h| {
        h.to_str().ok()?.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == STICKY_COOKIE).then_some(v)
        })
    })?;
    let addr = decode_sticky(value)?;
    fwd.groups.iter().find_map(|(g, _): &(Arc<TargetGroup>, u64)| g.routable_target(addr))
}

/// The cookie names the target (hex of `ip:port`); ALB's is opaque too.
fn sticky_cookie(target: &Target, duration: Duration) -> Option<HeaderValue> {
    let encoded: String = target.addr.to_string().bytes().map(|b| format!("{b:02X}")).collect();
    HeaderValue::try_from(format!("{STICKY_COOKIE}={encoded}; Max-Age={}; Path=/", duration.as_secs())).ok()
}

fn decode_sticky(value: &str) -> Option<SocketAddr> {
    let bytes = value.as_bytes();
    if bytes.len() % 2 != 0 || bytes.len() > 128 {
        return None;
    }
    let raw: Option<Vec<u8>> =
        bytes.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()).collect();
    String::from_utf8(raw?).ok()?.parse().ok()
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers besides Connection and those it names.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ]
    .contains(&name)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        // Headers the Connection header names are hop-by-hop too.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|s| s.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    // One pass over the (few) names present instead of a lookup per hop-by-hop name; removal is rare.
    while let Some(name) = headers.keys().find(|n| is_hop_by_hop(n)).cloned() {
        headers.remove(name);
    }
}

/// `Self=<new id>;` followed by the fields of `value` other than an earlier Self.
fn with_self(value: &str) -> HeaderValue {
    let id = trace_id();
    let id = id.to_str().unwrap_or_default().strip_prefix("Root=").unwrap_or_default();
    let mut out = format!("Self={id}");
    for field in value.split(';').map(str::trim).filter(|f| !f.is_empty() && !f.starts_with("Self=")) {
        out.push(';');
        out.push_str(field);
    }
    HeaderValue::from_str(&out).unwrap_or_else(|_| trace_id())
}

/// `Root=1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`.
fn trace_id() -> HeaderValue {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as u32;
    let (a, b) = (random_u64(), random_u64() as u32);
    // Formatted on the stack: the header value is the only allocation.
    let mut buf = *b"Root=1-00000000-000000000000000000000000";
    hex(&mut buf[7..15], u64::from(secs));
    hex(&mut buf[16..32], a);
    hex(&mut buf[32..40], u64::from(b));
    HeaderValue::from_bytes(&buf)
        .unwrap_or_else(|_| HeaderValue::from_static("Root=1-00000000-000000000000000000000000"))
}

/// Writes the low `out.len()` nibbles of `v` as lowercase hex.
fn hex(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// xorshift64* per thread, seeded from the std hasher's random keys: fast, and good enough for trace ids.
fn random_u64() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9E37_79B9_7F4A_7C15);
            h.finish() | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

fn fixed(f: &FixedAction) -> Response<ProxyBody> {
    let mut resp = Response::new(ProxyBody::Full(Some(f.body.clone())));
    *resp.status_mut() = f.status;
    let h = resp.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    if let Some(ct) = &f.content_type {
        h.insert(header::CONTENT_TYPE, ct.clone());
    }
    resp
}

fn redirect(r: &crate::config::Redirect, req: &http::request::Parts, rt: &ListenerRuntime) -> Response<ProxyBody> {
    let host = request_host(req);
    let port = rt.port.to_string();
    let path = req.uri.path().strip_prefix('/').unwrap_or(req.uri.path());
    let query = req.uri.query().unwrap_or("");
    let subst = |template: &str| {
        template
            .replace("#{protocol}", "HTTP")
            .replace("#{host}", host)
            .replace("#{port}", &port)
            .replace("#{path}", path)
            .replace("#{query}", query)
    };
    let protocol = subst(&r.protocol).to_ascii_lowercase();
    let to_host = subst(&r.host);
    let to_port = subst(&r.port);
    let mut to_path = subst(&r.path);
    if !to_path.starts_with('/') {
        to_path.insert(0, '/');
    }
    let to_query = subst(&r.query);
    let default_port = matches!((protocol.as_str(), to_port.as_str()), ("http", "80") | ("https", "443"));
    let mut location = format!("{protocol}://{to_host}");
    if !default_port && !to_port.is_empty() {
        location.push(':');
        location.push_str(&to_port);
    }
    location.push_str(&to_path);
    if !to_query.is_empty() {
        location.push('?');
        location.push_str(&to_query);
    }
    let mut resp = Response::new(ProxyBody::Full(None));
    *resp.status_mut() = r.status.code();
    let h = resp.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    match HeaderValue::try_from(location) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => return error_page(StatusCode::BAD_REQUEST),
    }
    resp
}

/// ALB's own error pages.
pub(crate) fn error_page(status: StatusCode) -> Response<ProxyBody> {
    let body: &'static str = match status.as_u16() {
        400 => "<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n",
        502 => "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
        503 => "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
        504 => "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n",
        _ => "<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n",
    };
    let mut resp = Response::new(ProxyBody::Full(Some(Bytes::from_static(body.as_bytes()))));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::SERVER, HeaderValue::from_static("awselb/2.0"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    resp
}

/// A response body: the target's, streamed (counting the request in flight until it ends), or our own.
pub(crate) enum ProxyBody {
    Upstream { body: Incoming, conn: Option<(UpstreamConn, InFlight)> },
    Full(Option<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ProxyBody::Upstream { body, conn } => {
                let r = Pin::new(&mut *body).poll_frame(cx);
                // Done (hyper stops polling once a sized body reports its end): the connection goes back to
                // the pool and the target is free at once.
                let done = match &r {
                    Poll::Ready(None) => true,
                    Poll::Ready(Some(Ok(_))) => body.is_end_stream(),
                    _ => false,
                };
                if done {
                    if let Some((c, inflight)) = conn.take() {
                        inflight.target().checkin(c);
                    }
                }
                r
            }
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream { body, .. } => body.is_end_stream(),
            ProxyBody::Full(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream { body, .. } => body.size_hint(),
            ProxyBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ProxyBody::Full(None) => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_roundtrip() {
        let addr: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let encoded: String = addr.to_string().bytes().map(|b| format!("{b:02X}")).collect();
        assert_eq!(decode_sticky(&encoded), Some(addr));
        assert_eq!(decode_sticky("zz"), None);
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("trailer", "x"),
            ("proxy-authorization", "Basic x"),
            ("host", "a.test"),
            ("x-end", "2"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-end"]);
    }

    #[test]
    fn an_incoming_root_is_kept_and_gets_a_self_field() {
        let v = with_self("Root=1-5f84c7a1-0123456789abcdef01234567;CalledFrom=app");
        let s = v.to_str().unwrap();
        let (own, rest) = s.split_once(';').unwrap();
        assert!(own.starts_with("Self=1-") && own.len() == "Self=1-00000000-000000000000000000000000".len(), "{s}");
        assert_eq!(rest, "Root=1-5f84c7a1-0123456789abcdef01234567;CalledFrom=app");
        let again = with_self(s);
        let again = again.to_str().unwrap();
        assert_eq!(again.matches("Self=").count(), 1, "an earlier Self is replaced: {again}");
        assert!(again.ends_with(rest), "{again}");
    }

    #[test]
    fn trace_ids_have_alb_shape() {
        let v = trace_id();
        let s = v.to_str().unwrap();
        let parts: Vec<&str> = s.strip_prefix("Root=").unwrap().split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "1");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(parts[2].len(), 24);
        assert!(parts[1..].iter().all(|p| p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))));
        let mut buf = [0u8; 4];
        hex(&mut buf, 0xbeef);
        assert_eq!(&buf, b"beef");
    }
}
