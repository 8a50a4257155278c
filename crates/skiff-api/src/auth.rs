//! Authentication: which access keys exist, and SigV4 verification of every call against them.

use crate::context::Caller;
use skiff_proto::sigv4::{self, AuthError, ParsedAuth, RequestParts, SigningKeyCache};
use skiff_proto::{ApiError, Protocol};
use std::collections::HashMap;
use std::time::SystemTime;

/// A secret and the principal it authenticates.
#[derive(Clone)]
pub struct KeyEntry {
    pub secret_access_key: String,
    /// The session token temporary credentials must present (None for long-term keys).
    pub session_token: Option<String>,
    pub caller: Caller,
}

/// The access keys the server accepts, and the derived signing keys of recent requests.
#[derive(Default)]
pub struct KeyRing {
    keys: HashMap<String, KeyEntry>,
    signing_keys: SigningKeyCache,
}

impl KeyRing {
    pub fn insert(&mut self, access_key_id: String, entry: KeyEntry) {
        self.keys.insert(access_key_id, entry);
    }

    pub fn get(&self, access_key_id: &str) -> Option<&KeyEntry> {
        self.keys.get(access_key_id)
    }
}

/// Parses the request's SigV4 claim (header or presigned query). The credential scope's service is
/// needed for routing query-protocol calls, so this runs before the signature check.
pub fn parse(req: &RequestParts<'_>, protocol: Protocol) -> Result<ParsedAuth, ApiError> {
    sigv4::parse(req).map_err(|e| e.to_api_error(protocol))
}

/// Verifies the signature, the clock, the session token and that the scope names `service` in `region`.
pub fn verify(
    keys: &KeyRing,
    req: &RequestParts<'_>,
    auth: &ParsedAuth,
    protocol: Protocol,
    service: &str,
    region: &str,
) -> Result<Caller, ApiError> {
    let entry = keys
        .get(&auth.access_key_id)
        .ok_or_else(|| AuthError::UnknownKey(auth.access_key_id.clone()).to_api_error(protocol))?;
    sigv4::verify_with_cache(
        req,
        auth,
        &entry.secret_access_key,
        entry.session_token.as_deref(),
        SystemTime::now(),
        &keys.signing_keys,
    )
    .and_then(|()| sigv4::check_scope(auth, region, service))
    .map_err(|e| e.to_api_error(protocol))?;
    Ok(entry.caller.clone())
}
