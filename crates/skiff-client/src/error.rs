//! What can go wrong with a call, and how an AWS JSON 1.1 error answer is read (as botocore reads it).

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use std::time::Duration;

/// Why a call failed: the server answered with an AWS error, or it could not be asked at all.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an AWS error (`{"__type": …, "message": …}`).
    #[error("{}", api_error_line(code, message, request_id.as_deref()))]
    Api {
        /// HTTP status of the answer.
        status: u16,
        /// The error code, `__type` without any `prefix#` or `:suffix` (for example
        /// `ClusterNotFoundException`); the HTTP status as text when the answer names none.
        code: String,
        message: String,
        /// `x-amzn-RequestId` of the answer.
        request_id: Option<String>,
    },
    /// No answer: the connection could not be made or broke off.
    #[error("cannot reach skiff at {endpoint}: {reason}; is `skiff server` running?")]
    Transport { endpoint: String, reason: String },
    /// The whole exchange took longer than the client's timeout.
    #[error("no answer from skiff at {endpoint} within {}s; is the server overloaded or stuck?", after.as_secs_f64())]
    Timeout { endpoint: String, after: Duration },
    /// A success status, but a body that is not the JSON object an AWS JSON 1.1 service sends.
    #[error("unexpected answer from {endpoint} (HTTP {status}): {detail}")]
    InvalidResponse { endpoint: String, status: u16, detail: String },
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// The request could not be built (a target that is not a valid header value, a body that does not
    /// encode).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

fn api_error_line(code: &str, message: &str, request_id: Option<&str>) -> String {
    let mut line = code.to_string();
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(message);
    }
    if let Some(id) = request_id {
        line.push_str(&format!(" (request id {id})"));
    }
    line
}

impl ClientError {
    /// The AWS error code of an [`ClientError::Api`] error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// A transport error, described by the innermost cause that says something (connection refused, reset,
    /// no such host) rather than hyper's generic wrappers.
    pub(crate) fn transport(endpoint: &str, error: &(dyn std::error::Error + 'static)) -> ClientError {
        ClientError::Transport { endpoint: endpoint.to_string(), reason: transport_reason(error) }
    }
}

fn transport_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            let known = match io.kind() {
                ConnectionRefused => Some("connection refused"),
                ConnectionReset => Some("connection reset by the server"),
                ConnectionAborted => Some("connection aborted"),
                BrokenPipe | UnexpectedEof => Some("the server closed the connection"),
                TimedOut => Some("connection timed out"),
                AddrNotAvailable => Some("address not available"),
                _ => None,
            };
            if let Some(known) = known {
                return known.to_string();
            }
        }
        let text = e.to_string();
        if !text.is_empty() && !chain.contains(&text) {
            chain.push(text);
        }
        current = e.source();
    }
    if chain.is_empty() {
        "unknown transport error".to_string()
    } else {
        chain.join(": ")
    }
}

/// The error code as botocore derives it from `__type` (or `x-amzn-ErrorType`): text after the first `:` is
/// dropped (`X:http://internal.amazon.com/…`), then text up to the last `#` (`com.amazonaws.ecs#X`).
pub fn sanitize_error_code(raw: &str) -> &str {
    let code = raw.split_once(':').map_or(raw, |(head, _)| head);
    let code = code.rsplit_once('#').map_or(code, |(_, tail)| tail);
    code.trim()
}

/// Reads an AWS JSON 1.1 error answer into [`ClientError::Api`]. The code comes from the body's `__type`,
/// else the `x-amzn-ErrorType` header, else a body `code`, else the HTTP status; the message from `message`
/// or `Message`, else the body's text.
pub fn parse_api_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ClientError {
    let json: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(body).ok();
    let field = |names: &[&str]| -> Option<String> {
        let json = json.as_ref()?;
        names.iter().find_map(|n| match json.get(*n)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);

    let raw_code = field(&["__type"])
        .or_else(|| header("x-amzn-errortype"))
        .or_else(|| field(&["code", "Code"]))
        .filter(|c| !sanitize_error_code(c).is_empty());
    let code = match raw_code {
        Some(raw) => sanitize_error_code(&raw).to_string(),
        None => status.as_u16().to_string(),
    };
    let message = match field(&["message", "Message", "errorMessage"]) {
        Some(m) => m,
        None if json.is_some() => String::new(),
        None => body_excerpt(body).unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string()),
    };
    let request_id = header("x-amzn-requestid")
        .or_else(|| header("x-amz-request-id"))
        .or_else(|| field(&["RequestId", "requestId"]));
    ClientError::Api { status: status.as_u16(), code, message, request_id }
}

/// The first few hundred characters of a non-JSON body, on one line.
fn body_excerpt(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    const MAX: usize = 300;
    Some(match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

/// A 2xx answer's body as JSON (`{}` when empty); any other answer as its AWS error.
pub(crate) fn json_result(endpoint: &str, response: Response<Bytes>) -> Result<serde_json::Value, ClientError> {
    let (parts, body) = response.into_parts();
    if !parts.status.is_success() {
        return Err(parse_api_error(parts.status, &parts.headers, &body));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::InvalidResponse {
        endpoint: endpoint.to_string(),
        status: parts.status.as_u16(),
        detail: format!("body is not JSON ({e}): {}", body_excerpt(&body).unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, headers: &[(&str, &str)], body: &str) -> (u16, String, String, Option<String>) {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        match parse_api_error(StatusCode::from_u16(status).unwrap(), &map, body.as_bytes()) {
            ClientError::Api { status, code, message, request_id } => (status, code, message, request_id),
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[test]
    fn error_codes_are_sanitized_like_botocore() {
        // (raw __type, code botocore reports)
        let cases = [
            ("ClusterNotFoundException", "ClusterNotFoundException"),
            ("com.amazonaws.ecs#ClusterNotFoundException", "ClusterNotFoundException"),
            ("ClusterNotFoundException:http://internal.amazon.com/coral/", "ClusterNotFoundException"),
            ("com.amazon.coral.service#AccessDeniedException:http://x#y", "AccessDeniedException"),
            ("a.b#c#ThrottlingException", "ThrottlingException"),
        ];
        for (raw, want) in cases {
            assert_eq!(sanitize_error_code(raw), want, "for {raw:?}");
            let body = serde_json::json!({"__type": raw, "message": "m"}).to_string();
            assert_eq!(api(400, &[], &body).1, want, "body with __type {raw:?}");
        }
    }

    #[test]
    fn reads_code_message_and_request_id() {
        let got = api(
            400,
            &[("x-amzn-RequestId", "req-1"), ("x-amzn-ErrorType", "Ignored")],
            r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#,
        );
        assert_eq!(got, (400, "ClusterNotFoundException".into(), "Cluster not found.".into(), Some("req-1".into())));
    }

    #[test]
    fn capitalised_message_key_is_accepted() {
        let got = api(400, &[], r#"{"__type":"X:http://internal","Message":"boom"}"#);
        assert_eq!((got.1.as_str(), got.2.as_str()), ("X", "boom"));
    }

    #[test]
    fn falls_back_to_the_error_type_header_then_the_status() {
        let got = api(400, &[("x-amzn-ErrorType", "ClientException:http://x")], r#"{"message":"bad"}"#);
        assert_eq!((got.1.as_str(), got.2.as_str()), ("ClientException", "bad"));

        let got = api(500, &[], "");
        assert_eq!((got.1.as_str(), got.2.as_str()), ("500", "Internal Server Error"));

        let got = api(502, &[], "<html><body>\n  Bad   gateway </body></html>");
        assert_eq!((got.1.as_str(), got.2.as_str()), ("502", "<html><body> Bad gateway </body></html>"));
    }

    #[test]
    fn display_is_one_readable_line() {
        let e = ClientError::Api {
            status: 400,
            code: "ClusterNotFoundException".into(),
            message: "Cluster not found.".into(),
            request_id: Some("abc".into()),
        };
        assert_eq!(e.to_string(), "ClusterNotFoundException: Cluster not found. (request id abc)");
        let e = ClientError::Api { status: 400, code: "X".into(), message: String::new(), request_id: None };
        assert_eq!(e.to_string(), "X");
    }

    #[test]
    fn connection_refused_is_named() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = ClientError::transport("http://127.0.0.1:9400", &io);
        assert_eq!(
            e.to_string(),
            "cannot reach skiff at http://127.0.0.1:9400: connection refused; is `skiff server` running?"
        );
    }

    #[test]
    fn success_bodies() {
        let ok = |body: &str| json_result("http://e", Response::new(Bytes::from(body.to_string())));
        assert_eq!(ok("").unwrap(), serde_json::json!({}));
        assert_eq!(ok(r#"{"clusterArns":[]}"#).unwrap(), serde_json::json!({"clusterArns": []}));
        let err = ok("not json").unwrap_err();
        assert!(matches!(err, ClientError::InvalidResponse { status: 200, .. }), "{err:?}");
    }
}
