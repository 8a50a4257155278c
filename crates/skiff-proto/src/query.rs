//! The AWS query protocol (STS, IAM, ELBv2) and its EC2 dialect: form-encoded parameters in, XML out.

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

    /// Every parameter name, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }

    /// The members of an EC2-dialect list parameter `NAME.N` (no `.member.`), in order of N.
    pub fn ec2_list(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}.");
        let mut items: Vec<(u32, &str)> = self
            .params
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).and_then(list_index).map(|n| (n, v.as_str())))
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// The structures of an EC2-dialect list parameter `NAME.N.MEMBER…`, in order of N, each as the
    /// parameters under its `NAME.N.` prefix (`Filter.1.Value.2` → item 1's `Value.2`).
    pub fn ec2_structs(&self, name: &str) -> Vec<(u32, QueryParams)> {
        let prefix = format!("{name}.");
        let mut items: BTreeMap<u32, QueryParams> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some((n, rest)) = k.strip_prefix(&prefix).and_then(|r| r.split_once('.')) else { continue };
            let Some(n) = list_index(n) else { continue };
            items.entry(n).or_default().params.insert(rest.to_string(), v.clone());
        }
        items.into_iter().collect()
    }
}

/// A list index of the EC2 dialect: a decimal number from 1.
fn list_index(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| *n >= 1)
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

// ---------------------------------------------------------------------------------------------------------
// The EC2 dialect of the query protocol: `NAME.N` lists in, `<ActionResponse><requestId/>…` out (no Result
// wrapper, lowerCamel member names, lists of `<item>`), `<Response><Errors><Error>` errors.

/// Escapes text for an XML 1.0 element body (not attributes: quotes stay as they are): `&`, `<` and `>` as
/// entities, carriage returns as a character reference (parsers would fold them into newlines), and the
/// characters XML 1.0 cannot carry at all (NUL and the other C0 controls but tab and newline, U+FFFE, U+FFFF)
/// as U+FFFD, so that any message, even one quoting a malformed parameter, stays well-formed.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Builds the body of an EC2-dialect response: elements with escaped text, structures and `<item>` lists.
/// Element names are the model's `locationName`s and are written as given.
#[derive(Debug, Default, Clone)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>text</name>`, the text escaped.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name}>{}</{name}>", escape_text(text));
        self
    }

    /// [`XmlWriter::text`] when there is a value; nothing otherwise (absent members are left out).
    pub fn opt_text(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.text(name, t);
        }
        self
    }

    /// `<name>true</name>` / `<name>false</name>`.
    pub fn bool(&mut self, name: &str, value: bool) -> &mut Self {
        self.text(name, if value { "true" } else { "false" })
    }

    /// A number.
    pub fn int(&mut self, name: &str, value: i64) -> &mut Self {
        let _ = write!(self.buf, "<{name}>{value}</{name}>");
        self
    }

    /// `<name>…</name>` around what `body` writes.
    pub fn structure(&mut self, name: &str, body: impl FnOnce(&mut XmlWriter)) -> &mut Self {
        let _ = write!(self.buf, "<{name}>");
        body(self);
        let _ = write!(self.buf, "</{name}>");
        self
    }

    /// `<name><item>…</item>…</name>`: one `<item>` per element, its content written by `body`. An empty
    /// list is `<name/>`, which SDKs read as an empty list.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut body: impl FnMut(&mut XmlWriter, T),
    ) -> &mut Self {
        let mut items = items.into_iter().peekable();
        if items.peek().is_none() {
            let _ = write!(self.buf, "<{name}/>");
            return self;
        }
        let _ = write!(self.buf, "<{name}>");
        for item in items {
            self.buf.push_str("<item>");
            body(self, item);
            self.buf.push_str("</item>");
        }
        let _ = write!(self.buf, "</{name}>");
        self
    }

    /// A list of strings: `<name><item>text</item>…</name>`.
    pub fn text_list<'a>(&mut self, name: &str, items: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.list(name, items, |w, t| {
            w.buf.push_str(&escape_text(t));
        })
    }

    pub fn finish(self) -> String {
        self.buf
    }
}

/// `<ActionResponse xmlns=…><requestId>…</requestId>{body}</ActionResponse>`: EC2 puts the output members
/// straight under the root, after the request id.
pub fn ec2_success(action: &str, xmlns: &str, body_xml: &str, request_id: &str) -> WireResponse {
    let mut body = String::with_capacity(body_xml.len() + 160);
    let _ = write!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{xmlns}\">\
         <requestId>{}</requestId>{body_xml}</{action}Response>",
        escape_text(request_id)
    );
    WireResponse { status: 200, content_type: CONTENT_TYPE, headers: Vec::new(), body: body.into_bytes() }
}

/// `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`, EC2's error body
/// (no namespace, no `Type`, and `RequestID` spelled so).
pub fn ec2_error(err: &ApiError, request_id: &str) -> WireResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message>\
         </Error></Errors><RequestID>{}</RequestID></Response>",
        escape_text(&err.code),
        escape_text(&err.message),
        escape_text(request_id)
    );
    WireResponse { status: err.status, content_type: CONTENT_TYPE, headers: Vec::new(), body: body.into_bytes() }
}

/// What EC2 says when it cannot authenticate a request, for the query-protocol authentication error `err`
/// (from `AuthError::to_api_error(Protocol::Query)`): an unknown access key, a wrong session token, a
/// signature that does not match and a credential scoped elsewhere are all `AuthFailure` (401); a request
/// outside the clock window is `RequestExpired` (400); the rest keep their codes. Other errors pass through.
pub fn ec2_auth_error(err: ApiError) -> ApiError {
    const AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";
    const CLOCK: [&str; 3] = ["Signature expired", "Signature not yet current", "Request has expired"];
    match err.code.as_ref() {
        "InvalidClientTokenId" => ApiError::new("AuthFailure", 401, AUTH_FAILURE),
        "SignatureDoesNotMatch" if CLOCK.iter().any(|p| err.message.starts_with(p)) => {
            ApiError::new("RequestExpired", 400, format!("Request has expired. {}", err.message))
        }
        "SignatureDoesNotMatch" if err.message.starts_with("The request signature we calculated") => {
            ApiError::new("AuthFailure", 401, AUTH_FAILURE)
        }
        "SignatureDoesNotMatch" => ApiError::new("AuthFailure", 401, format!("{AUTH_FAILURE}: {}", err.message)),
        "MissingAuthenticationToken" => ApiError::new(err.code, 401, err.message),
        _ => err,
    }
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

    #[test]
    fn parses_ec2_lists_and_structures_in_index_order() {
        let q = QueryParams::parse(
            b"VpcId.2=b&VpcId.10=c&VpcId.1=a&VpcId.x=no&VpcId.0=no&VpcIdX.1=no\
              &Filter.2.Name=vpc-id&Filter.2.Value.1=v&Filter.1.Name=is-default&Filter.1.Value.2=y&Filter.1.Value.1=x",
        )
        .unwrap();
        assert_eq!(q.ec2_list("VpcId"), vec!["a", "b", "c"]);
        let filters = q.ec2_structs("Filter");
        assert_eq!(filters.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(filters[0].1.get("Name"), Some("is-default"));
        assert_eq!(filters[0].1.ec2_list("Value"), vec!["x", "y"]);
        assert_eq!(filters[1].1.ec2_list("Value"), vec!["v"]);
        assert!(q.ec2_list("Filter").is_empty());
    }

    #[test]
    fn xml_writer_renders_items_and_escapes() {
        let mut w = XmlWriter::new();
        w.list("vpcSet", ["a<b", "c"], |w, id| {
            w.text("vpcId", id).bool("isDefault", true).int("count", 4091);
        });
        w.list("tagSet", Vec::<&str>::new(), |_, _| {});
        w.text_list("values", ["x&y"]);
        w.opt_text("absent", None).opt_text("present", Some("\u{0}'\r"));
        w.structure("state", |w| {
            w.text("code", "ok");
        });
        assert_eq!(
            w.finish(),
            "<vpcSet><item><vpcId>a&lt;b</vpcId><isDefault>true</isDefault><count>4091</count></item>\
             <item><vpcId>c</vpcId><isDefault>true</isDefault><count>4091</count></item></vpcSet><tagSet/>\
             <values><item>x&amp;y</item></values><present>\u{FFFD}'&#13;</present><state><code>ok</code></state>"
        );
    }

    #[test]
    fn ec2_envelopes() {
        let ok = ec2_success("DescribeVpcs", "http://ec2.amazonaws.com/doc/2016-11-15/", "<vpcSet/>", "rid");
        let body = String::from_utf8(ok.body).unwrap();
        assert!(body.ends_with(
            "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId>\
             <vpcSet/></DescribeVpcsResponse>"
        ));
        let err = ApiError::client("InvalidVpcID.NotFound", "The vpc ID 'vpc-\u{0}<x>' does not exist");
        let r = ec2_error(&err, "rid");
        assert_eq!(r.status, 400);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.ends_with(
            "<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>The vpc ID 'vpc-\u{FFFD}&lt;x&gt;' \
             does not exist</Message></Error></Errors><RequestID>rid</RequestID></Response>"
        ));
    }

    #[test]
    fn ec2_auth_errors() {
        use crate::sigv4::AuthError;
        use crate::Protocol;
        let ec2 = |e: AuthError| ec2_auth_error(e.to_api_error(Protocol::Query));
        let e = ec2(AuthError::Mismatch);
        assert_eq!((e.code.as_ref(), e.status), ("AuthFailure", 401));
        assert_eq!(e.message, "AWS was not able to validate the provided access credentials");
        assert_eq!(ec2(AuthError::UnknownKey("AKIA".into())).code, "AuthFailure");
        assert_eq!(ec2(AuthError::BadToken).code, "AuthFailure");
        let e = ec2(AuthError::Invalid("Credential should be scoped to a valid region, not 'eu-west-1'. ".into()));
        assert_eq!(e.code, "AuthFailure");
        assert!(e.message.contains("eu-west-1"), "{}", e.message);
        let e = ec2(AuthError::Expired("Signature expired: 20261128T064946Z is now earlier than …".into()));
        assert_eq!((e.code.as_ref(), e.status), ("RequestExpired", 400));
        assert_eq!(ec2(AuthError::Missing).status, 401);
        assert_eq!(ec2(AuthError::Incomplete("x".into())).code, "IncompleteSignature");
        let other = ApiError::client("InvalidParameterValue", "x");
        assert_eq!(ec2_auth_error(other.clone()), other);
    }
}
