//! Timestamps on the wire: epoch seconds as JSON numbers (JSON 1.1; Go SDK clients reject strings) and
//! ISO 8601 in query-protocol XML.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the epoch, the precision Skiff stores timestamps in.
pub type EpochMillis = i64;

/// The JSON 1.1 wire form: seconds with millisecond precision, as a number.
pub fn to_json_number(ms: EpochMillis) -> serde_json::Value {
    if ms % 1000 == 0 {
        serde_json::Value::from(ms / 1000)
    } else {
        serde_json::Value::from(ms as f64 / 1000.0)
    }
}

/// The query-protocol wire form, e.g. `2026-11-28T06:49:46.123Z`.
pub fn to_iso8601(ms: EpochMillis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let s = t.format(&Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    // RFC 3339 from `time` prints nanoseconds when present; AWS prints milliseconds.
    match s.find('.') {
        Some(dot) => format!("{}.{:03}Z", &s[..dot], ms.rem_euclid(1000)),
        None => format!("{}.{:03}Z", s.trim_end_matches('Z'), 0),
    }
}

/// Serde helpers for `Option<EpochMillis>` fields that go out as JSON 1.1 timestamps.
pub mod json_opt {
    use super::EpochMillis;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<EpochMillis>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) if ms % 1000 == 0 => s.serialize_i64(ms / 1000),
            Some(ms) => s.serialize_f64(*ms as f64 / 1000.0),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EpochMillis>, D::Error> {
        let v: Option<f64> = Option::deserialize(d)?;
        Ok(v.map(|secs| (secs * 1000.0).round() as EpochMillis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_keep_milliseconds() {
        assert_eq!(to_json_number(1_795_848_586_000).to_string(), "1795848586");
        assert_eq!(to_json_number(1_795_848_586_051).to_string(), "1795848586.051");
    }

    #[test]
    fn iso8601_has_milliseconds() {
        assert_eq!(to_iso8601(1_795_848_586_051), "2026-11-28T06:49:46.051Z");
        assert_eq!(to_iso8601(1_795_848_586_000), "2026-11-28T06:49:46.000Z");
    }
}
