//! Arbitrary SigV4 material into `sigv4::parse` and, when it parses, `sigv4::verify` with a fixed secret
//! and a fixed clock. The input is split on `\n` into: `Authorization` value, raw query string, `X-Amz-Date`
//! value, `Host` value, `X-Amz-Content-Sha256` value, `X-Amz-Security-Token` value, raw path, and the rest
//! is the body (an empty line leaves that header out; header values that `http` refuses skip the input).
//!
//! Properties: neither function panics; `verify` returns `Ok` only when the claimed signature is the HMAC
//! under [`SECRET`] of the string to sign, recomputed here from the public `canonical_request` and
//! `signing_key` (so a random signature never verifies); and the streaming canonicaliser `verify` uses
//! agrees with `canonical_request`: re-verifying with the recomputed signature never yields `Mismatch`.
//! The seeds in corpus/sigv4_parse are requests signed with [`SECRET`] at [`NOW`] (see README.md).
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use skiff_proto::sigv4::{self, AuthError, RequestParts};
use std::time::{Duration, UNIX_EPOCH};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 2026-01-01T00:00:00Z, the time the seeds were signed at.
const NOW: u64 = 1_767_225_600;
const TOKEN: &str = "fuzz-session-token";

/// The signature a correct signer with [`SECRET`] produces for `canonical`.
fn expected_signature(auth: &sigv4::ParsedAuth, canonical: &str) -> [u8; 32] {
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let string_to_sign = format!(
        "{}\n{}\n{}\n{}",
        sigv4::ALGORITHM,
        auth.amz_date,
        scope,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = sigv4::signing_key(SECRET, &auth.date, &auth.region, &auth.service);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("hmac takes any key");
    mac.update(string_to_sign.as_bytes());
    mac.finalize().into_bytes().into()
}

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(8, |b| *b == b'\n');
    let mut next = || fields.next().unwrap_or(b"");
    let (authorization, query, amz_date, host, content_sha, token, path) =
        (next(), next(), next(), next(), next(), next(), next());
    let body = next();
    let (Ok(query), Ok(path)) = (std::str::from_utf8(query), std::str::from_utf8(path)) else { return };
    let path = if path.is_empty() { "/" } else { path };

    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        (http::header::AUTHORIZATION.as_str(), authorization),
        ("x-amz-date", amz_date),
        ("host", host),
        ("x-amz-content-sha256", content_sha),
        ("x-amz-security-token", token),
    ] {
        if value.is_empty() {
            continue;
        }
        let Ok(v) = http::HeaderValue::from_bytes(value) else { return };
        headers.insert(name, v);
    }
    headers.insert("content-type", http::HeaderValue::from_static("application/x-amz-json-1.1"));
    let req = RequestParts { method: "POST", path, query, headers: &headers, body };

    let Ok(auth) = sigv4::parse(&req) else { return };
    assert!(
        auth.signature.len() == 64 && auth.signature.bytes().all(|b| b.is_ascii_hexdigit()),
        "parse accepted a signature that is not 64 hex digits: {:?}",
        auth.signature
    );
    let now = UNIX_EPOCH + Duration::from_secs(NOW);
    let expected_token = auth.session_token.as_ref().map(|_| TOKEN);
    let verdict = sigv4::verify(&req, &auth, SECRET, expected_token, now);

    let Ok(canonical) = sigv4::canonical_request(&req, &auth) else {
        assert!(verdict.is_err(), "verify accepted a request whose canonical form cannot be built: {auth:?}");
        return;
    };
    // `canonical_request` renders bytes lossily; only compare when it had nothing to replace.
    if canonical.contains('\u{FFFD}') {
        return;
    }
    let expected = expected_signature(&auth, &canonical);
    let claimed = hex::decode(&auth.signature).expect("checked above");
    if verdict.is_ok() {
        assert_eq!(claimed, expected, "verify accepted a signature the fixed secret does not produce: {auth:?}");
    }
    // The right signature must never be a mismatch: anything else (clock, token, payload hash) may fail.
    let mut corrected = auth.clone();
    corrected.signature = hex::encode(expected);
    let corrected_verdict = sigv4::verify(&req, &corrected, SECRET, expected_token, now);
    assert_ne!(
        corrected_verdict,
        Err(AuthError::Mismatch),
        "verify disagrees with canonical_request:\n{canonical}\nauth: {corrected:?}"
    );
});
