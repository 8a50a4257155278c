//! Rule conditions: ALB's wildcard patterns and the request facts they are matched against.

use std::net::IpAddr;

use http::request::Parts;
use ipnet::IpNet;

use crate::config::{Condition, QueryPair};

/// Whether `text` matches `pattern`, where `*` matches any run of bytes and `?` exactly one character.
/// Iterative with one backtrack point: linear in practice, never exponential.
pub fn wildcard_match(pattern: &[u8], text: &[u8], ignore_case: bool) -> bool {
    let eq = |a: u8, b: u8| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || eq(pattern[p], text[t])) {
            if pattern[p] == b'?' {
                // `?` is one character: step over a whole UTF-8 sequence.
                t += utf8_len(text[t]);
            } else {
                t += 1;
            }
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            let next = st + utf8_len(text[st]);
            star = Some((sp, next));
            t = next;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len() && t == text.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// A condition ready to be evaluated: header names parsed, patterns kept as bytes.
#[derive(Debug, Clone)]
pub enum CompiledCondition {
    Path(Vec<String>),
    Host(Vec<String>),
    Header { name: http::HeaderName, values: Vec<String> },
    Method(Vec<String>),
    Query(Vec<QueryPair>),
    SourceIp(Vec<IpNet>),
}

impl CompiledCondition {
    pub fn compile(c: &Condition) -> Result<Self, String> {
        Ok(match c {
            Condition::PathPattern(v) => CompiledCondition::Path(v.clone()),
            Condition::HostHeader(v) => CompiledCondition::Host(v.clone()),
            Condition::HttpHeader { name, values } => CompiledCondition::Header {
                name: http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid http-header name {name:?}"))?,
                values: values.clone(),
            },
            Condition::HttpRequestMethod(v) => CompiledCondition::Method(v.clone()),
            Condition::QueryString(v) => CompiledCondition::Query(v.clone()),
            Condition::SourceIp(v) => CompiledCondition::SourceIp(v.clone()),
        })
    }

    pub fn matches(&self, req: &Parts, peer: IpAddr) -> bool {
        match self {
            CompiledCondition::Path(pats) => {
                let path = req.uri.path().as_bytes();
                pats.iter().any(|p| wildcard_match(p.as_bytes(), path, false))
            }
            CompiledCondition::Host(pats) => {
                let host = request_host(req);
                pats.iter().any(|p| wildcard_match(p.as_bytes(), host.as_bytes(), true))
            }
            CompiledCondition::Header { name, values } => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| values.iter().any(|p| wildcard_match(p.as_bytes(), v.as_bytes(), true))),
            CompiledCondition::Method(methods) => methods.iter().any(|m| m.as_str() == req.method.as_str()),
            CompiledCondition::Query(pairs) => {
                let query = req.uri.query().unwrap_or("");
                pairs.iter().any(|pair| {
                    query.split('&').filter(|s| !s.is_empty()).any(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        let key_ok = match &pair.key {
                            Some(key) => wildcard_match(key.as_bytes(), k.as_bytes(), true),
                            None => true,
                        };
                        key_ok && wildcard_match(pair.value.as_bytes(), v.as_bytes(), true)
                    })
                })
            }
            CompiledCondition::SourceIp(nets) => {
                let peer = canonical_ip(peer);
                nets.iter().any(|n| n.contains(&peer))
            }
        }
    }
}

/// IPv4-mapped IPv6 peers (a dual-stack socket) compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The Host header (or the URI's authority) without its port.
pub fn request_host(req: &Parts) -> &str {
    let raw = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    strip_port(raw)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [v6]:port
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("/api/*", "/api/users", false, true),
            ("/api/*", "/api/", false, true),
            ("/api/*", "/api", false, false),
            ("/img/*.png", "/img/a/b.png", false, true),
            ("/img/*.png", "/img/a/b.jpg", false, false),
            ("/v?/x", "/v1/x", false, true),
            ("/v?/x", "/v12/x", false, false),
            ("*", "", false, true),
            ("*.example.com", "WWW.Example.com", true, true),
            ("*.example.com", "WWW.Example.com", false, false),
            ("a*b*c", "aXXbYYc", false, true),
            ("a*b*c", "aXXbYY", false, false),
            ("/é?", "/éü", false, true),
        ];
        for (p, t, ci, want) in cases {
            assert_eq!(wildcard_match(p.as_bytes(), t.as_bytes(), *ci), *want, "{p} ~ {t}");
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
