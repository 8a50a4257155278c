//! GetAuthorizationToken: a registry token for the caller, usable as Basic auth (`AWS:<token>`) on `/v2/`.

use super::{registry_id, timestamp};
use crate::context::{now_secs, Ctx};
use crate::registry_auth::authorization_token;
use serde::{Deserialize, Serialize};
use skiff_proto::ApiError;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetAuthorizationTokenRequest {
    /// Deprecated in ECR (a token works for every registry the caller may access); each id must be this
    /// registry's.
    registry_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    authorization_token: String,
    expires_at: serde_json::Value,
    proxy_endpoint: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenResponse {
    authorization_data: Vec<AuthorizationData>,
}

pub async fn get_authorization_token(
    ctx: &Ctx,
    req: GetAuthorizationTokenRequest,
) -> Result<GetAuthorizationTokenResponse, ApiError> {
    let ids = match req.registry_ids {
        None => vec![None],
        Some(ids) if ids.is_empty() || ids.len() > 10 => {
            return Err(super::invalid_parameter("registryIds", "must name between 1 and 10 registries"))
        }
        Some(ids) => ids.into_iter().map(Some).collect(),
    };
    let (token, expires) = ctx.state.registry_tokens.mint(&ctx.caller, now_secs());
    let mut authorization_data = Vec::new();
    for id in ids {
        registry_id(ctx, id.as_deref())?;
        authorization_data.push(AuthorizationData {
            authorization_token: authorization_token(&token),
            expires_at: timestamp(expires * 1000),
            proxy_endpoint: format!("http://{}", ctx.state.registry_hosts.registry_host),
        });
    }
    Ok(GetAuthorizationTokenResponse { authorization_data })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{server, ACCOUNT};
    use super::*;
    use base64::Engine as _;

    #[tokio::test]
    async fn token_is_basic_auth_for_the_registry() {
        let s = server();
        let ctx = &s.ctx;
        let out = get_authorization_token(ctx, GetAuthorizationTokenRequest { registry_ids: None }).await.unwrap();
        assert_eq!(out.authorization_data.len(), 1);
        let data = &out.authorization_data[0];
        assert_eq!(data.proxy_endpoint, "http://127.0.0.1:9400");
        let decoded = base64::engine::general_purpose::STANDARD.decode(&data.authorization_token).unwrap();
        let text = String::from_utf8(decoded).unwrap();
        let token = text.strip_prefix("AWS:").expect("AWS:<token>");
        let expires = data.expires_at.as_i64().unwrap();
        assert!((expires - now_secs() - 12 * 3600).abs() < 5);
        // The token verifies only against keys the server knows; here the ring is empty, so it is refused,
        // but it is well-formed (two base64url parts).
        assert_eq!(token.split('.').count(), 2);

        let out =
            get_authorization_token(ctx, GetAuthorizationTokenRequest { registry_ids: Some(vec![ACCOUNT.into()]) })
                .await
                .unwrap();
        assert_eq!(out.authorization_data.len(), 1);
        for bad in [vec![], vec!["999999999999".to_string()], vec!["x".to_string()]] {
            let e = get_authorization_token(ctx, GetAuthorizationTokenRequest { registry_ids: Some(bad.clone()) })
                .await
                .unwrap_err();
            assert_eq!(e.code, "InvalidParameterException", "{bad:?}");
        }
    }
}
