//! Human-readable output of the client commands: aligned column tables, aligned `key: value` blocks and the
//! small value formatters they use (timestamps, lists, missing values).

use std::fmt::Write as _;

/// What a missing or empty value shows as.
pub const NONE: &str = "-";

/// A table with a header row and columns padded to their widest cell, two spaces apart. The last column
/// is not padded, so no line ends in spaces.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells render as [`NONE`], extra ones are an error of the caller and dropped.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut row: Vec<String> = cells.into_iter().map(|c| cell(c.into())).take(self.headers.len()).collect();
        row.resize(self.headers.len(), NONE.to_string());
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(c));
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            render_line(&mut out, line, &widths);
        }
        out
    }
}

fn render_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let last = cells.len().saturating_sub(1);
    for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
        out.push_str(c);
        if i < last {
            out.extend(std::iter::repeat_n(' ', w - width(c) + 2));
        }
    }
    out.push('\n');
}

/// A cell on one line: newlines and tabs become spaces, an empty value becomes [`NONE`].
fn cell(s: String) -> String {
    if s.is_empty() {
        return NONE.to_string();
    }
    if s.contains(['\n', '\r', '\t']) {
        return s.replace(['\n', '\r', '\t'], " ");
    }
    s
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// `key: value` lines with the values aligned:
///
/// ```text
/// name:    default
/// status:  ACTIVE
/// ```
pub fn fields(pairs: &[(&str, String)]) -> String {
    let key_width = pairs.iter().map(|(k, _)| width(k) + 1).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let key = format!("{k}:");
        let _ = writeln!(out, "{key:<key_width$}  {}", cell(v.clone()));
    }
    out
}

/// A JSON string or number as text; [`NONE`] for null, absent or empty.
pub fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => NONE.to_string(),
        Some(serde_json::Value::String(s)) if s.is_empty() => NONE.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A list of JSON strings joined with `sep`; [`NONE`] when absent or empty.
pub fn list(v: Option<&serde_json::Value>, sep: &str) -> String {
    let items: Vec<String> =
        v.and_then(|v| v.as_array()).map(|a| a.iter().map(|i| text(Some(i))).collect()).unwrap_or_default();
    if items.is_empty() {
        NONE.to_string()
    } else {
        items.join(sep)
    }
}

/// An AWS JSON 1.1 timestamp (epoch seconds, possibly fractional) as UTC RFC 3339 to the second.
pub fn timestamp(v: Option<&serde_json::Value>) -> String {
    let Some(secs) = v.and_then(|v| v.as_f64()) else {
        return text(v);
    };
    match time::OffsetDateTime::from_unix_timestamp(secs.floor() as i64) {
        Ok(t) => t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| secs.to_string()),
        Err(_) => secs.to_string(),
    }
}

/// `[{key, value}]` pairs (tags, settings under other names) as `k=v, k=v`.
pub fn pairs(v: Option<&serde_json::Value>, key: &str, value: &str) -> String {
    let items: Vec<String> = v
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|p| format!("{}={}", text(p.get(key)), p.get(value).and_then(|v| v.as_str()).unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if items.is_empty() {
        NONE.to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_aligned_without_trailing_spaces() {
        let mut t = Table::new(&["NAME", "STATUS", "RUNNING"]);
        t.row(["default", "ACTIVE", "0"]);
        t.row(["a-much-longer-name", "INACTIVE", "12"]);
        assert_eq!(
            t.render(),
            "NAME                STATUS    RUNNING\n\
             default             ACTIVE    0\n\
             a-much-longer-name  INACTIVE  12\n"
        );
        assert!(t.render().lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn empty_missing_and_multiline_cells() {
        let mut t = Table::new(&["A", "B", "C"]);
        t.row(["", "x\ny"]);
        assert_eq!(t.render(), "A  B    C\n-  x y  -\n");
        assert_eq!(Table::new(&["ONLY"]).render(), "ONLY\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(&["K", "V"]);
        t.row(["été", "1"]);
        t.row(["e", "2"]);
        assert_eq!(t.render(), "K    V\nété  1\ne    2\n");
    }

    #[test]
    fn fields_align_values() {
        let out = fields(&[("name", "default".into()), ("running tasks", "3".into()), ("tags", String::new())]);
        assert_eq!(out, "name:           default\nrunning tasks:  3\ntags:           -\n");
    }

    #[test]
    fn value_formatters() {
        assert_eq!(text(Some(&json!("x"))), "x");
        assert_eq!(text(Some(&json!(3))), "3");
        assert_eq!(text(Some(&json!(null))), "-");
        assert_eq!(text(None), "-");
        assert_eq!(list(Some(&json!(["FARGATE", "EC2"])), ","), "FARGATE,EC2");
        assert_eq!(list(Some(&json!([])), ","), "-");
        assert_eq!(timestamp(Some(&json!(1795848586))), "2026-11-28T06:49:46Z");
        assert_eq!(timestamp(Some(&json!(1795848586.789))), "2026-11-28T06:49:46Z");
        assert_eq!(timestamp(None), "-");
        assert_eq!(
            pairs(Some(&json!([{"key": "team", "value": "a"}, {"key": "env", "value": ""}])), "key", "value"),
            "team=a, env="
        );
        assert_eq!(pairs(Some(&json!([])), "key", "value"), "-");
    }
}
