//! The AWS query protocol (STS, IAM, ELBv2): form-encoded parameters in, XML out.

use crate::error::ApiError;
use crate::json::WireResponse;
use std::collections::BTreeMap;
use std::fmt::Write;

pub const CONTENT_TYPE: &str = "text/xml";

/// The decoded form parameters of a query-protocol request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    params: BTreeMap<String, String>,
}

impl QueryParams {
    /// Parses a form-encoded body (or URL query string). Repeated keys keep the last value, as AWS does.
    pub fn parse(body: &[u8]) -> Result<QueryParams, ApiError> {
        if std::str::from_utf8(body).is_err() {
            return Err(ApiError::client("MalformedQueryString", "the query parameters are not valid UTF-8"));
        }
        let params = form_urlencoded::parse(body).into_owned().collect();
        Ok(QueryParams { params })
    }

    /// Adds `other`'s parameters, replacing those with the same name.
    pub fn extend(&mut self, other: QueryParams) {
        self.params.extend(other.params);
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// The members of a list parameter `NAME.member.N`, in order of N.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}.member.");
        let mut items: Vec<(u32, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix)?.parse().ok().map(|n| (n, v.as_str())))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }
}

/// Escapes text for an XML element body or attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `<ActionResponse xmlns=…><ActionResult>{result}</ActionResult><ResponseMetadata>…` around the
/// already-rendered `result` XML.
pub fn success(action: &str, xmlns: &str, result_xml: &str, request_id: &str) -> WireResponse {
    let mut body = String::with_capacity(result_xml.len() + 256);
    let _ = write!(
        body,
        "<{action}Response xmlns=\"{xmlns}\"><{action}Result>{result_xml}</{action}Result>\
         <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    );
    WireResponse { status: 200, content_type: CONTENT_TYPE, headers: Vec::new(), body: body.into_bytes() }
}

/// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
pub fn error(err: &ApiError, xmlns: &str, request_id: &str) -> WireResponse {
    let kind = if err.is_sender_fault() { "Sender" } else { "Receiver" };
    let body = format!(
        "<ErrorResponse xmlns=\"{xmlns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(&err.code),
        escape(&err.message)
    );
    WireResponse { status: err.status, content_type: CONTENT_TYPE, headers: Vec::new(), body: body.into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_in_member_order() {
        let q = QueryParams::parse(b"Action=X&Names.member.2=b&Names.member.1=a&Names.member.10=c").unwrap();
        assert_eq!(q.action(), Some("X"));
        assert_eq!(q.list("Names"), vec!["a", "b", "c"]);
    }

    #[test]
    fn error_xml_escapes_message() {
        let e = ApiError::client("InvalidAction", "no <such> action");
        let r = error(&e, "https://sts.amazonaws.com/doc/2011-06-15/", "rid");
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("<Type>Sender</Type><Code>InvalidAction</Code><Message>no &lt;such&gt; action</Message>"));
        assert!(body.contains("<RequestId>rid</RequestId>"));
    }
}
