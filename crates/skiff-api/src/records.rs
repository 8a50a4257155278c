//! Records in the store as the API handlers use them: JSON-encoded values, optimistic read-modify-write,
//! and the opaque pagination tokens of List/Describe calls.

use serde::de::DeserializeOwned;
use serde::Serialize;
use skiff_proto::ApiError;
use skiff_store::{Store, StoreError, Txn, TxnOutcome};

/// The output of operations whose model output shape has no members (TagResource, UntagResource).
#[derive(Debug, serde::Serialize)]
pub struct Empty {}

pub fn store_error(e: StoreError) -> ApiError {
    ApiError::server(format!("the state store failed: {e}"))
}

fn decode_error(key: &str, e: serde_json::Error) -> ApiError {
    ApiError::server(format!("stored record {key} is unreadable: {e}"))
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::server(format!("cannot encode record: {e}")))
}

/// Reads and decodes one record with its revision.
pub async fn load<T: DeserializeOwned>(store: &dyn Store, key: &str) -> Result<Option<(T, i64)>, ApiError> {
    match store.get(key).await.map_err(store_error)? {
        Some(v) => Ok(Some((serde_json::from_slice(&v.value).map_err(|e| decode_error(key, e))?, v.mod_revision))),
        None => Ok(None),
    }
}

/// Every record under `prefix`, in key order.
pub async fn load_all<T: DeserializeOwned>(store: &dyn Store, prefix: &str) -> Result<Vec<(String, T)>, ApiError> {
    Ok(load_all_rev(store, prefix).await?.into_iter().map(|(key, value, _)| (key, value)).collect())
}

/// Every record under `prefix`, in key order, with its revision (for a transaction that compares them).
pub async fn load_all_rev<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<(String, T, i64)>, ApiError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan(prefix, after.as_deref(), 1000).await.map_err(store_error)?;
        for (key, v) in page.items {
            let value = serde_json::from_slice(&v.value).map_err(|e| decode_error(&key, e))?;
            after = Some(key.clone());
            out.push((key, value, v.mod_revision));
        }
        if !page.more {
            return Ok(out);
        }
    }
}

/// Read-modify-write of one existing record under optimistic concurrency: `change` runs on the latest
/// value and is retried if another writer got there first. `missing` is the error when there is none.
pub async fn update<T, F>(
    store: &dyn Store,
    key: &str,
    missing: impl Fn() -> ApiError,
    mut change: F,
) -> Result<T, ApiError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(&mut T) -> Result<(), ApiError>,
{
    for _ in 0..32 {
        let (mut value, rev) = load::<T>(store, key).await?.ok_or_else(&missing)?;
        change(&mut value)?;
        match store.txn(Txn::new().when(key, rev).put(key, encode(&value)?)).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(value),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent updates of {key}; retry the call")))
}

/// Pagination tokens are opaque to clients: the hex of the last item returned.
pub fn next_token(last: &str) -> String {
    last.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a `nextToken` made by [`next_token`].
pub fn parse_next_token(token: &str) -> Result<String, ApiError> {
    let invalid =
        || ApiError::invalid_parameter("Invalid nextToken: pass the nextToken of the previous page unchanged.");
    if !token.len().is_multiple_of(2) || token.len() > 4096 {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// One page of `items` (already filtered and ordered) after the token's item.
pub fn paginate(
    items: Vec<String>,
    token: Option<&str>,
    max: usize,
    descending: bool,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let after = token.map(parse_next_token).transpose()?;
    let mut page: Vec<String> = items
        .into_iter()
        .filter(|i| match &after {
            None => true,
            Some(a) if descending => i < a,
            Some(a) => i > a,
        })
        .take(max + 1)
        .collect();
    let more = page.len() > max;
    page.truncate(max);
    let token = if more { page.last().map(|l| next_token(l)) } else { None };
    Ok((page, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        assert_eq!(parse_next_token(&next_token("cluster/a")).unwrap(), "cluster/a");
        for bad in ["x", "zz", "abc"] {
            assert_eq!(parse_next_token(bad).unwrap_err().code, "InvalidParameterException");
        }
    }

    #[test]
    fn pages_follow_the_order() {
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (p1, t) = paginate(items.clone(), None, 2, false).unwrap();
        assert_eq!(p1, ["a", "b"]);
        let (p2, t2) = paginate(items.clone(), t.as_deref(), 2, false).unwrap();
        assert_eq!((p2, t2), (vec!["c".to_string()], None));
        let desc: Vec<String> = items.into_iter().rev().collect();
        let (p1, t) = paginate(desc.clone(), None, 1, true).unwrap();
        assert_eq!(p1, ["c"]);
        assert_eq!(paginate(desc, t.as_deref(), 5, true).unwrap().0, ["b", "a"]);
    }
}
