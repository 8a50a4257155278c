//! ECS resource tags (`Tag {key, value}`) and the rules ECS applies to them.

use serde::{Deserialize, Serialize};
use skiff_proto::ApiError;

/// Most tags one resource may carry.
pub const MAX_TAGS: usize = 50;
/// Longest tag key, in Unicode characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Longest tag value, in Unicode characters.
pub const MAX_VALUE_CHARS: usize = 256;

/// One tag. The model marks both members optional; a tag without a key means nothing, so `key` is required
/// here and a missing `value` reads as the empty string (which ECS allows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { key: key.into(), value: value.into() }
    }
}

/// Validates a list of tags as ECS does on RegisterTaskDefinition, CreateCluster, TagResource, …: at most
/// 50 tags, unique keys, keys of 1–128 and values of 0–256 characters drawn from letters, digits, spaces and
/// `+ - = . _ : / @`, and no key with the reserved `aws:` prefix (in any case). Every failure is an
/// `InvalidParameterException` naming the tag.
pub fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_parameter(format!(
            "too many tags: {} given, a resource can have at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for (i, tag) in tags.iter().enumerate() {
        validate_tag_key(&tag.key)?;
        let value_chars = tag.value.chars().count();
        if value_chars > MAX_VALUE_CHARS {
            return Err(ApiError::invalid_parameter(format!(
                "invalid value for tag '{}': {value_chars} characters, at most {MAX_VALUE_CHARS} are allowed",
                tag.key
            )));
        }
        if let Some(bad) = tag.value.chars().find(|c| !allowed_char(*c)) {
            return Err(ApiError::invalid_parameter(format!(
                "invalid value for tag '{}': character {bad:?} is not allowed (use letters, numbers, spaces and + - = . _ : / @)",
                tag.key
            )));
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(ApiError::invalid_parameter(format!(
                "duplicate tag key '{}': each tag key must be unique",
                tag.key
            )));
        }
    }
    Ok(())
}

/// Validates tag keys alone (UntagResource's `tagKeys`): the key rules of [`validate_tags`].
pub fn validate_tag_keys(keys: &[String]) -> Result<(), ApiError> {
    keys.iter().try_for_each(|k| validate_tag_key(k))
}

fn validate_tag_key(key: &str) -> Result<(), ApiError> {
    let chars = key.chars().count();
    if chars == 0 {
        return Err(ApiError::invalid_parameter("invalid tag key '': a tag key must not be empty"));
    }
    if chars > MAX_KEY_CHARS {
        return Err(ApiError::invalid_parameter(format!(
            "invalid tag key '{key}': {chars} characters, at most {MAX_KEY_CHARS} are allowed"
        )));
    }
    if let Some(bad) = key.chars().find(|c| !allowed_char(*c)) {
        return Err(ApiError::invalid_parameter(format!(
            "invalid tag key '{key}': character {bad:?} is not allowed (use letters, numbers, spaces and + - = . _ : / @)"
        )));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(ApiError::invalid_parameter(format!(
            "invalid tag key '{key}': the 'aws:' prefix is reserved for AWS use"
        )));
    }
    Ok(())
}

/// The model's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: letters, separators (spaces), numbers and a few
/// punctuation characters.
fn allowed_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

/// Adds `new` to `existing`: a tag whose key is already present replaces that tag's value in place, others
/// are appended in order. The caller validates the result (e.g. the 50-tag limit applies to the total).
pub fn merge_tags(existing: &mut Vec<Tag>, new: Vec<Tag>) {
    for tag in new {
        match existing.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value,
            None => existing.push(tag),
        }
    }
}

/// Removes every tag whose key is in `keys`; keys that are not present are ignored, as ECS ignores them.
pub fn remove_tag_keys(existing: &mut Vec<Tag>, keys: &[String]) {
    existing.retain(|t| !keys.contains(&t.key));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> Tag {
        Tag::new(k, v)
    }

    fn err(tags: &[Tag]) -> ApiError {
        match validate_tags(tags) {
            Err(e) => e,
            Ok(()) => panic!("expected {tags:?} to be refused"),
        }
    }

    #[test]
    fn valid_tags() {
        let ok = [
            t("env", "prod"),
            t("Team Name", ""),
            t("a+b-c=d.e_f:g/h@i", "x+y-z=.:_/@ with spaces"),
            t("ключ", "значение"),
            t("数字123", "١٢٣"),
            t(&"k".repeat(128), &"v".repeat(256)),
            t("awsome", "aws:allowed-in-value"),
            t("xaws:", "v"),
        ];
        validate_tags(&ok).unwrap();
        validate_tags(&[]).unwrap();
        let fifty: Vec<Tag> = (0..50).map(|i| t(&format!("k{i}"), "v")).collect();
        validate_tags(&fifty).unwrap();
    }

    #[test]
    fn refused_tags() {
        let fifty_one: Vec<Tag> = (0..51).map(|i| t(&format!("k{i}"), "v")).collect();
        let cases: Vec<(Vec<Tag>, &str)> = vec![
            (fifty_one, "too many tags: 51"),
            (vec![t("", "v")], "must not be empty"),
            (vec![t(&"k".repeat(129), "v")], "at most 128"),
            (vec![t("k", &"v".repeat(257))], "invalid value for tag 'k'"),
            (vec![t("a", "1"), t("b", "2"), t("a", "3")], "duplicate tag key 'a'"),
            (vec![t("aws:foo", "v")], "'aws:' prefix is reserved"),
            (vec![t("AWS:foo", "v")], "invalid tag key 'AWS:foo'"),
            (vec![t("Aws:foo", "v")], "reserved"),
            (vec![t("bad*key", "v")], "invalid tag key 'bad*key'"),
            (vec![t("tab\tkey", "v")], "not allowed"),
            (vec![t("k", "semi;colon")], "invalid value for tag 'k'"),
            (vec![t("k", "new\nline")], "invalid value for tag 'k'"),
            (vec![t("k#", "v")], "'#'"),
        ];
        for (tags, want) in cases {
            let e = err(&tags);
            assert_eq!(e.code, "InvalidParameterException", "{tags:?}");
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{tags:?}: {:?} does not contain {want:?}", e.message);
        }
    }

    #[test]
    fn key_lengths_count_characters_not_bytes() {
        validate_tags(&[t(&"é".repeat(128), &"ü".repeat(256))]).unwrap();
        assert!(validate_tags(&[t(&"é".repeat(129), "")]).is_err());
    }

    #[test]
    fn tag_keys_alone() {
        validate_tag_keys(&["a".into(), "b c".into()]).unwrap();
        assert!(validate_tag_keys(&["".into()]).is_err());
        assert!(validate_tag_keys(&["aws:x".into()]).is_err());
    }

    #[test]
    fn merge_replaces_and_appends() {
        let mut tags = vec![t("a", "1"), t("b", "2")];
        merge_tags(&mut tags, vec![t("b", "20"), t("c", "3"), t("a", "10")]);
        assert_eq!(tags, vec![t("a", "10"), t("b", "20"), t("c", "3")]);
    }

    #[test]
    fn remove_ignores_missing_keys() {
        let mut tags = vec![t("a", "1"), t("b", "2"), t("c", "3")];
        remove_tag_keys(&mut tags, &["b".into(), "zzz".into()]);
        assert_eq!(tags, vec![t("a", "1"), t("c", "3")]);
    }

    #[test]
    fn wire_form() {
        let tag: Tag = serde_json::from_str(r#"{"key":"k","value":"v"}"#).unwrap();
        assert_eq!(tag, t("k", "v"));
        assert_eq!(serde_json::to_string(&tag).unwrap(), r#"{"key":"k","value":"v"}"#);
        let tag: Tag = serde_json::from_str(r#"{"key":"k"}"#).unwrap();
        assert_eq!(tag.value, "");
        assert!(serde_json::from_str::<Tag>(r#"{"value":"v"}"#).is_err());
        assert!(serde_json::from_str::<Tag>(r#"{"key":"k","value":"v","Key":"x"}"#).is_err());
    }
}
