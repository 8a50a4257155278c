//! EC2 `Filter.N.Name` / `Filter.N.Value.M` filters with AWS's semantics: a record matches a filter when
//! one of its values for the filter's name matches one of the filter's values (`*` any run of characters,
//! `?` exactly one, `\` escapes either), and it must match every filter. Names EC2 does not know for the
//! resource are refused (`InvalidParameterValue: The filter 'x' is invalid`).

use skiff_model::vpc::Ec2Tag;
use skiff_proto::query::QueryParams;
use skiff_proto::ApiError;

/// One filter of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// A resource the filters of its Describe call apply to.
pub trait Filterable: Default {
    /// The resource's values for filter `name` (several for multi-valued attributes, none when it has no
    /// such attribute), or `None` when EC2 has no filter of that name for this resource.
    fn filter_values(&self, name: &str) -> Option<Vec<String>>;
}

/// The request's filters, for resources of type `T`.
pub fn parse<T: Filterable>(params: &QueryParams) -> Result<Vec<Filter>, ApiError> {
    let probe = T::default();
    let mut out = Vec::new();
    for (n, item) in params.ec2_structs("Filter") {
        let name = item.get("Name").ok_or_else(|| {
            ApiError::client("MissingParameter", format!("The request must contain the parameter Filter.{n}.Name"))
        })?;
        if probe.filter_values(name).is_none() {
            return Err(ApiError::client("InvalidParameterValue", format!("The filter '{name}' is invalid")));
        }
        let values: Vec<String> = item.ec2_list("Value").into_iter().map(str::to_string).collect();
        if values.is_empty() {
            return Err(ApiError::client(
                "InvalidParameterValue",
                format!("The filter '{name}' has no values: give at least one (Filter.{n}.Value.1)"),
            ));
        }
        out.push(Filter { name: name.to_string(), values });
    }
    Ok(out)
}

/// Whether `item` passes every filter.
pub fn matches<T: Filterable>(item: &T, filters: &[Filter]) -> bool {
    filters.iter().all(|f| {
        let have = item.filter_values(&f.name).unwrap_or_default();
        have.iter().any(|h| f.values.iter().any(|pattern| glob_match(pattern, h)))
    })
}

/// `tag:KEY` (the value of the tag KEY) and `tag-key` (every key), the tag filters every resource has.
pub fn tag_values(tags: &[Ec2Tag], name: &str) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(tags.iter().filter(|t| t.key == key).map(|t| t.value.clone()).collect());
    }
    (name == "tag-key").then(|| tags.iter().map(|t| t.key.clone()).collect())
}

/// `"true"` / `"false"`, as filter values spell booleans.
pub fn bool_value(b: bool) -> Vec<String> {
    vec![if b { "true" } else { "false" }.to_string()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    AnyRun,
    AnyOne,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::AnyRun,
            '?' => Token::AnyOne,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    out
}

/// Matches `text` against an EC2 filter value: `*` matches any run of characters (also none), `?` exactly
/// one, `\*`, `\?` and `\\` the character itself; everything else literally (case-sensitive).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern = tokens(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and the text position it has consumed up to (classic backtracking glob).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::AnyOne) => {
                p += 1;
                t += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Token::AnyRun) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == Token::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Thing {
        id: String,
        tags: Vec<Ec2Tag>,
        default: bool,
    }

    impl Filterable for Thing {
        fn filter_values(&self, name: &str) -> Option<Vec<String>> {
            match name {
                "thing-id" => Some(vec![self.id.clone()]),
                "is-default" => Some(bool_value(self.default)),
                _ => tag_values(&self.tags, name),
            }
        }
    }

    fn filters(query: &str) -> Result<Vec<Filter>, ApiError> {
        parse::<Thing>(&QueryParams::parse(query.as_bytes()).unwrap())
    }

    #[test]
    fn wildcards() {
        for (pattern, text, want) in [
            ("vpc-*", "vpc-0123", true),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("vpc-?", "vpc-1", true),
            ("vpc-?", "vpc-12", false),
            ("*-1?", "us-east-1a", true),
            ("us-*-1b", "us-east-1a", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("a\\?c", "a?c", true),
            ("a\\?c", "abc", false),
            ("A*", "abc", false),
            ("**x", "yyx", true),
            ("é?", "éü", true),
        ] {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn values_or_filters_and() {
        let thing =
            Thing { id: "t-1".into(), tags: vec![Ec2Tag { key: "Name".into(), value: "web".into() }], default: true };
        let ok = |q: &str| matches(&thing, &filters(q).unwrap());
        assert!(ok(""));
        assert!(ok("Filter.1.Name=thing-id&Filter.1.Value.1=t-2&Filter.1.Value.2=t-1"));
        assert!(!ok("Filter.1.Name=thing-id&Filter.1.Value.1=t-2"));
        assert!(ok("Filter.1.Name=thing-id&Filter.1.Value.1=t-*&Filter.2.Name=is-default&Filter.2.Value.1=true"));
        assert!(!ok("Filter.1.Name=thing-id&Filter.1.Value.1=t-*&Filter.2.Name=is-default&Filter.2.Value.1=false"));
        assert!(ok("Filter.1.Name=tag:Name&Filter.1.Value.1=w*"));
        assert!(!ok("Filter.1.Name=tag:Other&Filter.1.Value.1=*"));
        assert!(ok("Filter.1.Name=tag-key&Filter.1.Value.1=Name"));
    }

    #[test]
    fn bad_filters_are_refused_with_ec2_codes() {
        let e = filters("Filter.1.Name=nope&Filter.1.Value.1=x").unwrap_err();
        assert_eq!((e.code.as_ref(), e.message.as_str()), ("InvalidParameterValue", "The filter 'nope' is invalid"));
        assert_eq!(filters("Filter.1.Value.1=x").unwrap_err().code, "MissingParameter");
        assert_eq!(filters("Filter.1.Name=thing-id").unwrap_err().code, "InvalidParameterValue");
    }
}
