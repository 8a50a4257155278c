//! AWS JSON 1.1: request bodies decoded into typed input, outputs and errors encoded as AWS clients expect.

use crate::error::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A rendered response, protocol-specific but transport-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (besides content type, request id and date).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Decodes a JSON 1.1 request body into `T`. An empty body counts as `{}` (some clients send nothing for
/// operations without input). Every failure names the member path and uses `code` (the service's
/// validation error, e.g. `InvalidParameterException` for ECS).
pub fn decode<T: DeserializeOwned>(body: &[u8], code: &'static str) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::client(code, format!("request body is not valid UTF-8: {e}")))?;
    // The top level must be an object: a JSON array or scalar is not a request.
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::client(code, "request body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(crate::strict::Strict(&mut de)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." && (inner.is_syntax() || inner.is_eof()) {
            ApiError::client(code, format!("request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::client(code, format!("invalid request: {}", strip_position(&inner.to_string())))
        } else {
            ApiError::client(code, format!("invalid value for '{path}': {}", strip_position(&inner.to_string())))
        }
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C", which means nothing to an API caller.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
}

/// A 200 response carrying `output`.
pub fn success<T: Serialize>(output: &T) -> Result<WireResponse, ApiError> {
    let body = serde_json::to_vec(output).map_err(|e| ApiError::server(format!("cannot encode response: {e}")))?;
    Ok(WireResponse { status: 200, content_type: CONTENT_TYPE, headers: Vec::new(), body })
}

/// The error body botocore and the Go SDK both parse: `__type` in the body and `x-amzn-ErrorType`.
pub fn error(err: &ApiError) -> WireResponse {
    let body = serde_json::json!({ "__type": err.code, "message": err.message });
    WireResponse {
        status: err.status,
        content_type: CONTENT_TYPE,
        headers: vec![("x-amzn-ErrorType", err.code.to_string())],
        body: body.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Input {
        family: String,
        count: Option<u32>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Nested {
        #[allow(dead_code)]
        inner: Input,
        #[serde(default)]
        list: Vec<Input>,
    }

    #[test]
    fn errors_name_the_member() {
        let e = decode::<Input>(br#"{"family": "x", "count": "many"}"#, "InvalidParameterException").unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("'count'"), "{}", e.message);
        let e = decode::<Input>(br#"{"count": 1}"#, "InvalidParameterException").unwrap_err();
        assert!(e.message.contains("missing field `family`"), "{}", e.message);
        let e = decode::<Input>(br#"{"family": "x", "bogus": 1}"#, "X").unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
        let e = decode::<Input>(br#"{"family": "#, "X").unwrap_err();
        assert!(e.message.contains("'family'"), "{}", e.message);
        let e = decode::<Input>(br#"{"family": "x", "count": 1e999}"#, "X").unwrap_err();
        assert!(e.message.contains("'count'"), "{}", e.message);
        let e = decode::<Input>(br#"{"family" "x"}"#, "X").unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let e = decode::<Input>(b"[1]", "X").unwrap_err();
        assert!(e.message.contains("JSON object"), "{}", e.message);
        let e = decode::<Nested>(br#"{"inner": ["x", 1]}"#, "X").unwrap_err();
        assert!(e.message.contains("'inner'"), "{}", e.message);
        let e = decode::<Nested>(br#"{"inner": {"family": "x"}, "list": [["y"]]}"#, "X").unwrap_err();
        assert!(e.message.contains("'list[0]'"), "{}", e.message);
        let ok =
            decode::<Nested>(br#"{"inner": {"family": "x"}, "list": [{"family": "y", "count": 2}]}"#, "X").unwrap();
        assert_eq!(ok.list[0].count, Some(2));
        let e = decode::<Input>(b"[1]", "X").unwrap_err();
        assert!(e.message.contains("JSON object"), "{}", e.message);
        let e = decode::<Input>(b"{\"family\": \"\xff\"}", "X").unwrap_err();
        assert!(e.message.contains("UTF-8"), "{}", e.message);
    }

    #[test]
    fn error_body_has_type_and_header() {
        let r = error(&ApiError::client("ClusterNotFoundException", "Cluster not found."));
        assert_eq!(r.status, 400);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"__type":"ClusterNotFoundException","message":"Cluster not found."}"#
        );
        assert_eq!(r.headers, vec![("x-amzn-ErrorType", "ClusterNotFoundException".to_string())]);
    }
}
