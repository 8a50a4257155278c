//! The parameters of an EC2 Describe call as EC2 reads them: only the operation's own (`UnknownParameter`
//! otherwise), booleans and numbers that parse, `MaxResults` in its range and never with explicit ids,
//! `NextToken`s this server made, and `DryRun`.

use crate::records;
use skiff_proto::query::QueryParams;
use skiff_proto::ApiError;

pub fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterValue", message)
}

/// Refuses any parameter the operation does not have. `allowed` are patterns of parameter names in which
/// `#` stands for a list index (`Filter.#.Value.#`); `Action`, `Version` and presigning's `X-Amz-*` are
/// always allowed.
pub fn check_known(params: &QueryParams, allowed: &[&str]) -> Result<(), ApiError> {
    for key in params.keys() {
        if key == "Action" || key == "Version" || key.starts_with("X-Amz-") {
            continue;
        }
        if !allowed.iter().any(|pattern| name_matches(pattern, key)) {
            return Err(ApiError::client("UnknownParameter", format!("The parameter {key} is not recognized")));
        }
    }
    Ok(())
}

fn name_matches(pattern: &str, key: &str) -> bool {
    let (mut p, mut k) = (pattern.split('.'), key.split('.'));
    loop {
        match (p.next(), k.next()) {
            (None, None) => return true,
            (Some("#"), Some(n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n != "0" => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// A boolean parameter (`true` / `false`, as SDKs send them; EC2 ignores the case).
pub fn boolean(params: &QueryParams, name: &str) -> Result<Option<bool>, ApiError> {
    params
        .get(name)
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid_value(format!("Invalid value '{v}' for {name}: expecting true or false"))),
        })
        .transpose()
}

/// `DryRun=true` answers `DryRunOperation` once the request has been checked, and nothing is looked up.
pub fn dry_run(params: &QueryParams) -> Result<(), ApiError> {
    if boolean(params, "DryRun")? == Some(true) {
        return Err(ApiError::new("DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set."));
    }
    Ok(())
}

/// The `MaxResults` / `NextToken` of a paginated Describe call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paging {
    pub max_results: Option<usize>,
    /// The id the previous page ended with.
    pub after: Option<String>,
}

/// `MaxResults`' range in DescribeVpcs, DescribeSubnets and DescribeSecurityGroups.
pub const MAX_RESULTS: std::ops::RangeInclusive<i64> = 5..=1000;

impl Paging {
    /// Reads `MaxResults` and `NextToken`. `ids` names the id-list parameters given, by their names in
    /// EC2's messages (`vpcIds`): EC2 refuses `MaxResults` together with any of them.
    pub fn parse(params: &QueryParams, ids: &[&str]) -> Result<Paging, ApiError> {
        let max_results = match params.get("MaxResults") {
            None => None,
            Some(text) => {
                let n: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| invalid_value(format!("Invalid value '{text}' for maxResults: expecting a number")))?;
                if !MAX_RESULTS.contains(&n) {
                    return Err(invalid_value(format!(
                        "Value ( {n} ) for parameter maxResults is invalid. Expecting a value from {} to {}.",
                        MAX_RESULTS.start(),
                        MAX_RESULTS.end()
                    )));
                }
                if let Some(ids) = ids.first() {
                    return Err(ApiError::client(
                        "InvalidParameterCombination",
                        format!("The parameter {ids} cannot be used with the parameter maxResults"),
                    ));
                }
                Some(n as usize)
            }
        };
        let after = params
            .get("NextToken")
            .map(|t| {
                records::parse_next_token(t).map_err(|_| {
                    ApiError::client(
                        "InvalidPaginationToken",
                        format!("The pagination token '{t}' is invalid: pass the NextToken of the previous page"),
                    )
                })
            })
            .transpose()?;
        Ok(Paging { max_results, after })
    }

    /// This page of `items` (in id order) and the token of the next one.
    pub fn page<T>(&self, items: Vec<T>, id: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        let mut rest: Vec<T> =
            items.into_iter().filter(|i| self.after.as_deref().is_none_or(|after| id(i) > after)).collect();
        let Some(max) = self.max_results else { return (rest, None) };
        if rest.len() <= max {
            return (rest, None);
        }
        rest.truncate(max);
        let token = rest.last().map(|last| records::next_token(id(last)));
        (rest, token)
    }
}

/// The ids asked for, each once, in the order given.
pub fn unique_ids(ids: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// `'a'` or `'a, b'`, as EC2 quotes the ids it did not find.
pub fn quoted_list(ids: &[&str]) -> String {
    format!("'{}'", ids.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> QueryParams {
        QueryParams::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn only_the_operations_parameters() {
        let allowed = ["VpcId.#", "Filter.#.Name", "Filter.#.Value.#", "MaxResults"];
        let ok = q("Action=DescribeVpcs&Version=2016-11-15&VpcId.1=a&Filter.2.Name=x&Filter.2.Value.10=y&X-Amz-Date=1");
        check_known(&ok, &allowed).unwrap();
        for bad in ["VpcId=a", "VpcId.0=a", "VpcId.x=a", "Filter.1.Values.1=a", "Filter.1.Name.1=a", "Nope=1"] {
            let e = check_known(&q(bad), &allowed).unwrap_err();
            assert_eq!(e.code, "UnknownParameter", "{bad}");
        }
    }

    #[test]
    fn booleans_and_dry_run() {
        assert_eq!(boolean(&q("DryRun=TRUE"), "DryRun").unwrap(), Some(true));
        assert_eq!(boolean(&q(""), "DryRun").unwrap(), None);
        assert_eq!(boolean(&q("DryRun=maybe"), "DryRun").unwrap_err().code, "InvalidParameterValue");
        let e = dry_run(&q("DryRun=true")).unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("DryRunOperation", 412));
        dry_run(&q("DryRun=false")).unwrap();
    }

    #[test]
    fn paging_rules() {
        assert_eq!(Paging::parse(&q("MaxResults=4"), &[]).unwrap_err().code, "InvalidParameterValue");
        assert_eq!(Paging::parse(&q("MaxResults=1001"), &[]).unwrap_err().code, "InvalidParameterValue");
        assert_eq!(Paging::parse(&q("MaxResults=x"), &[]).unwrap_err().code, "InvalidParameterValue");
        let e = Paging::parse(&q("MaxResults=5"), &["vpcIds"]).unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        assert!(e.message.contains("vpcIds"));
        assert_eq!(Paging::parse(&q("NextToken=zz"), &[]).unwrap_err().code, "InvalidPaginationToken");

        let items: Vec<String> = (1..=7).map(|i| format!("id-{i}")).collect();
        let p = Paging::parse(&q("MaxResults=5"), &[]).unwrap();
        let (page, token) = p.page(items.clone(), |s| s);
        assert_eq!(page.len(), 5);
        let p2 = Paging::parse(&q(&format!("MaxResults=5&NextToken={}", token.unwrap())), &[]).unwrap();
        let (page2, token2) = p2.page(items.clone(), |s| s);
        assert_eq!((page2, token2), (vec!["id-6".to_string(), "id-7".to_string()], None));
        assert_eq!(Paging::default().page(items, |s| s).0.len(), 7);
    }

    #[test]
    fn ids_once_each() {
        assert_eq!(unique_ids(vec!["a", "b", "a"]), ["a", "b"]);
        assert_eq!(quoted_list(&["a", "b"]), "'a, b'");
    }
}
