//! Arbitrary `Range` and `Content-Range` header values through `Registry::handle` (their parsers,
//! `http_api::blobs::parse_range` and `http_api::uploads::parse_content_range`, are crate-private). The
//! first byte picks the mode: even, `GET /v2/fuzz/blobs/<digest>` with `Range: <rest>` against the empty,
//! the config or the 4099-byte layer blob (`(byte >> 1) % 3`); odd, a fresh upload session `PATCH`ed with
//! a 3-byte chunk and `Content-Range: <rest>`, then cancelled.
//!
//! Properties (GET): no panic; 200 serves the whole blob; 206 carries `Content-Range: bytes S-E/LEN` with
//! S <= E < LEN and exactly bytes S..=E; 416 is `RANGE_INVALID` with `Content-Range: bytes */LEN`; a plain
//! `bytes=S-E` with S <= E < LEN is always a 206 for S..=E; nothing else. (PATCH): no panic; 202 only when
//! the value reads as a range starting at 0 (the session's offset), else 400/416 with an error body; never
//! a 5xx. A `Content-Range` that is not visible ASCII counts as absent (`header_str`), so it may be a 202.
#![no_main]

use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use skiff_registry_fuzz::{layer, sha256, Harness, CONFIG, REPO};

fn get(h: &Harness, blob: &[u8], range: &[u8]) {
    let uri = format!("/v2/{REPO}/blobs/{}", sha256(blob));
    let Some(resp) = h.try_send(Method::GET, &uri, &[("range", range)], Vec::new()) else { return };
    let len = blob.len();
    match resp.status {
        StatusCode::OK => {
            assert_eq!(&resp.body[..], blob, "200 without the whole blob");
            assert!(resp.header("content-range").is_none());
        }
        StatusCode::PARTIAL_CONTENT => {
            let cr = resp.header("content-range").expect("206 without Content-Range");
            let (span, total) = cr.strip_prefix("bytes ").and_then(|r| r.split_once('/')).expect("Content-Range form");
            let (s, e) = span.split_once('-').expect("Content-Range span");
            let (s, e, total): (usize, usize, usize) = (s.parse().unwrap(), e.parse().unwrap(), total.parse().unwrap());
            assert!(s <= e && e < len && total == len, "bad Content-Range {cr} for {len} bytes");
            assert_eq!(&resp.body[..], &blob[s..=e], "206 body does not match {cr}");
            assert_eq!(resp.header("content-length"), Some((e - s + 1).to_string().as_str()));
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            assert_eq!(resp.error_code(), "RANGE_INVALID");
            assert_eq!(resp.header("content-range"), Some(format!("bytes */{len}").as_str()));
        }
        other => panic!("GET with Range {:?} answered {other}: {:?}", String::from_utf8_lossy(range), resp.body),
    }
    // A plain, satisfiable range must be served exactly.
    let plain = std::str::from_utf8(range).ok().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.split_once('-'));
    if let Some((a, b)) = plain {
        let digits = |t: &str| !t.is_empty() && t.len() < 19 && t.bytes().all(|c| c.is_ascii_digit());
        if digits(a) && digits(b) {
            let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
            if a <= b && b < len {
                assert_eq!(resp.status, StatusCode::PARTIAL_CONTENT, "bytes={a}-{b} of {len} not served");
                assert_eq!(&resp.body[..], &blob[a..=b]);
            }
        }
    }
}

fn patch(h: &Harness, content_range: &[u8]) {
    let start = h.send(Method::POST, &format!("/v2/{REPO}/blobs/uploads/"), &[], Vec::new());
    assert_eq!(start.status, StatusCode::ACCEPTED, "upload start: {:?}", start.body);
    let location = start.header("location").expect("upload location").to_string();
    let resp = h.try_send(Method::PATCH, &location, &[("content-range", content_range)], b"abc".to_vec());
    if let Some(resp) = resp {
        match resp.status {
            // A value that is not visible ASCII is unreadable and ignored, like an absent header.
            StatusCode::ACCEPTED if std::str::from_utf8(content_range).map_or(true, |v| !v.is_ascii()) => {}
            StatusCode::ACCEPTED => {
                let v = std::str::from_utf8(content_range).expect("checked above");
                let v = v.trim();
                let v = v.strip_prefix("bytes").map_or(v, |r| r.trim_start_matches([' ', '=']));
                let v = v.split_once('/').map_or(v, |(r, _)| r);
                let (s, e) = v.split_once('-').expect("202 for a Content-Range without '-'");
                assert_eq!(s.trim().parse::<u64>().ok(), Some(0), "202 for a chunk not starting at 0: {v}");
                assert!(e.trim().parse::<u64>().is_ok(), "202 for a Content-Range without an end: {v}");
                assert_eq!(resp.header("range"), Some("0-2"));
            }
            s if s == StatusCode::BAD_REQUEST || s == StatusCode::RANGE_NOT_SATISFIABLE => {
                let _ = resp.error_code();
            }
            other => panic!("PATCH answered {other}: {:?}", resp.body),
        }
    }
    let cancel = h.send(Method::DELETE, &location, &[], Vec::new());
    assert_eq!(cancel.status, StatusCode::NO_CONTENT, "upload cancel: {:?}", cancel.body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, value)) = data.split_first() else { return };
    let h = Harness::get();
    if mode & 1 == 0 {
        let layer = layer();
        let blob: &[u8] = match (mode >> 1) % 3 {
            0 => &[],
            1 => CONFIG,
            _ => &layer,
        };
        get(h, blob, value);
    } else {
        patch(h, value);
    }
});
