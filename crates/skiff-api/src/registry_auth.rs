//! Registry credentials: the tokens ECR `GetAuthorizationToken` hands out and `/v2/` accepts as Basic auth
//! (`AWS:<token>`). A token is `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`; the payload
//! names the access key it was issued to and when it expires, so a token dies with its key and after 12 h.

use crate::auth::KeyRing;
use crate::context::Caller;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::Path;

/// How long a registry token is valid, as in ECR.
pub const TOKEN_LIFETIME_SECS: i64 = 12 * 3600;
const KEY_FILE: &str = "registry-token.key";

/// The server's secret for signing registry tokens.
pub struct TokenKey([u8; 32]);

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The access key id the token was issued to.
    akid: String,
    /// Expiry, epoch seconds.
    exp: i64,
}

impl TokenKey {
    /// Loads the key from the data directory, or generates and stores one (mode 0600).
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<TokenKey> {
        crate::credentials::load_or_generate_secret(&data_dir.join(KEY_FILE)).map(TokenKey)
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(payload);
        mac
    }

    /// A token for `caller`, valid until `now + 12 h`; returns it and its expiry (epoch seconds).
    pub fn mint(&self, caller: &Caller, now_secs: i64) -> (String, i64) {
        let exp = now_secs + TOKEN_LIFETIME_SECS;
        let payload = serde_json::to_vec(&Payload { akid: caller.access_key_id.clone(), exp }).unwrap_or_default();
        let sig = self.mac(&payload).finalize().into_bytes();
        (format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(sig)), exp)
    }

    /// The caller a token authenticates, if it is genuine, unexpired and its key still exists.
    pub fn verify(&self, token: &str, keys: &KeyRing, now_secs: i64) -> Option<Caller> {
        let (payload_b64, sig_b64) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig_b64).ok()?;
        self.mac(&payload).verify_slice(&sig).ok()?;
        let p: Payload = serde_json::from_slice(&payload).ok()?;
        if p.exp <= now_secs {
            return None;
        }
        Some(keys.get(&p.akid)?.caller.clone())
    }

    /// The caller of a `/v2/` request with `Authorization: Basic base64(AWS:<token>)` (or `Bearer <token>`).
    pub fn authenticate(&self, authorization: Option<&str>, keys: &KeyRing, now_secs: i64) -> Option<Caller> {
        let header = authorization?.trim();
        let (scheme, value) = header.split_once(' ')?;
        let token = if scheme.eq_ignore_ascii_case("basic") {
            let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
            let (user, password) = decoded.split_once(':')?;
            if user != "AWS" {
                return None;
            }
            password.to_string()
        } else if scheme.eq_ignore_ascii_case("bearer") {
            value.trim().to_string()
        } else {
            return None;
        };
        self.verify(&token, keys, now_secs)
    }
}

/// The `authorizationToken` of GetAuthorizationToken: base64 of `AWS:<token>`.
pub fn authorization_token(token: &str) -> String {
    STANDARD.encode(format!("AWS:{token}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyEntry;

    fn caller(akid: &str) -> Caller {
        Caller {
            access_key_id: akid.into(),
            account: "1".into(),
            arn: "arn:aws:iam::1:root".into(),
            user_id: "1".into(),
        }
    }

    fn ring() -> KeyRing {
        let mut keys = KeyRing::default();
        keys.insert(
            "AKID".into(),
            KeyEntry { secret_access_key: "s".into(), session_token: None, caller: caller("AKID") },
        );
        keys
    }

    #[test]
    fn tokens_authenticate_until_they_expire() {
        let key = TokenKey([7; 32]);
        let (token, exp) = key.mint(&caller("AKID"), 1000);
        assert_eq!(exp, 1000 + TOKEN_LIFETIME_SECS);
        let keys = ring();
        let basic = format!("Basic {}", authorization_token(&token));
        assert_eq!(key.authenticate(Some(&basic), &keys, 1001), Some(caller("AKID")));
        assert_eq!(key.authenticate(Some(&format!("Bearer {token}")), &keys, 1001), Some(caller("AKID")));
        assert_eq!(key.authenticate(Some(&basic), &keys, exp), None, "expired");
    }

    #[test]
    fn forged_or_foreign_tokens_are_refused() {
        let key = TokenKey([7; 32]);
        let keys = ring();
        let (token, _) = key.mint(&caller("AKID"), 1000);
        let other = TokenKey([8; 32]);
        assert_eq!(other.verify(&token, &keys, 1001), None, "signed by another server");
        let (payload, sig) = token.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"akid":"AKID","exp":99999999999}"#);
        assert_eq!(key.verify(&format!("{forged}.{sig}"), &keys, 1001), None, "payload changed");
        assert_eq!(key.verify(payload, &keys, 1001), None, "no signature");
        let (gone, _) = key.mint(&caller("DELETED"), 1000);
        assert_eq!(key.verify(&gone, &keys, 1001), None, "key no longer exists");
        for bad in [None, Some(""), Some("Basic"), Some("Basic !!!"), Some("Digest x")] {
            assert_eq!(key.authenticate(bad, &keys, 1001), None, "{bad:?}");
        }
        let wrong_user = format!("Basic {}", STANDARD.encode(format!("admin:{token}")));
        assert_eq!(key.authenticate(Some(&wrong_user), &keys, 1001), None);
    }
}
