//! AWS Signature Version 4: verifying what clients sign (header and presigned-query forms) and signing
//! Skiff's own outgoing requests (the `skiff` CLI, benchmarks).
//!
//! PLACEHOLDER: the implementation is being written; the public API below is the contract.

use crate::error::ApiError;
use crate::Protocol;
use std::time::SystemTime;

/// The parts of an HTTP request that SigV4 covers.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The raw path as received, still percent-encoded (`/` for every API Skiff serves).
    pub path: &'a str,
    /// The raw query string without the `?` (empty when there is none).
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// What the client claims: credential scope, signed headers and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    pub access_key_id: String,
    /// `yyyymmdd` from the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `yyyymmddTHHMMSSZ` from `X-Amz-Date` (header, or query when presigned).
    pub amz_date: String,
    pub session_token: Option<String>,
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned request, in seconds.
    pub expires: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing authentication token")]
    Missing,
    #[error("incomplete signature: {0}")]
    Incomplete(String),
    #[error("unknown access key id {0}")]
    UnknownKey(String),
    #[error("{0}")]
    Expired(String),
    #[error("signature mismatch")]
    Mismatch,
    #[error("invalid security token")]
    BadToken,
}

pub fn parse(_req: &RequestParts<'_>) -> Result<ParsedAuth, AuthError> {
    Err(AuthError::Missing)
}

pub fn verify(
    _req: &RequestParts<'_>,
    _auth: &ParsedAuth,
    _secret: &str,
    _expected_session_token: Option<&str>,
    _now: SystemTime,
) -> Result<(), AuthError> {
    Err(AuthError::Mismatch)
}

impl AuthError {
    pub fn to_api_error(&self, _protocol: Protocol) -> ApiError {
        ApiError::new("MissingAuthenticationTokenException", 403, self.to_string())
    }
}

pub struct SigningParams<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SystemTime,
}

pub fn sign(
    _method: &str,
    _path: &str,
    _query: &str,
    _headers: &mut http::HeaderMap,
    _body: &[u8],
    _params: &SigningParams<'_>,
) {
}
