//! Arbitrary bytes as a manifest PUT (`PUT /v2/fuzz/manifests/<reference>`) through `Registry::handle`:
//! the registry's manifest parser and checks (`manifest::effective_media_type`, `manifest::parse`, the
//! blob-existence checks) are crate-private, so this is the narrowest public way in (see src/lib.rs). The
//! first byte picks the `Content-Type` (low 3 bits: none, the four accepted types, one with parameters,
//! an unknown one) and whether the reference is the tag `fuzz` or the body's own digest (bit 7); the rest
//! is the body. The repository holds a config, a layer and an empty blob (seeds name them).
//!
//! Properties: no panic; never a 5xx; a refusal is a 4xx with a distribution-spec error body; an accepted
//! manifest is a JSON object with `schemaVersion` 2, its `Docker-Content-Digest` is the body's SHA-256, and
//! GET by that digest returns the same bytes.
#![no_main]

use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use skiff_registry::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use skiff_registry_fuzz::{sha256, Harness, REPO};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type: Option<&str> = match selector & 7 {
        0 => None,
        1 => Some(OCI_MANIFEST),
        2 => Some(OCI_INDEX),
        3 => Some(DOCKER_MANIFEST),
        4 => Some(DOCKER_MANIFEST_LIST),
        5 => Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        6 => Some("application/json"),
        _ => Some("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON"),
    };
    let digest = sha256(body);
    let reference = if selector & 0x80 != 0 { digest.as_str() } else { "fuzz" };
    let h = Harness::get();
    let headers: Vec<(&str, &[u8])> = content_type.map(|c| ("content-type", c.as_bytes())).into_iter().collect();
    let uri = format!("/v2/{REPO}/manifests/{reference}");
    let resp = h.send(Method::PUT, &uri, &headers, body.to_vec());

    if resp.status != StatusCode::CREATED {
        assert!(resp.status.is_client_error(), "PUT answered {}: {:?}", resp.status, resp.body);
        let _ = resp.error_code();
        return;
    }
    let value: serde_json::Value = serde_json::from_slice(body).expect("accepted manifest is not JSON");
    assert_eq!(value["schemaVersion"], 2, "accepted manifest without schemaVersion 2");
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()), "digest header");
    let got = h.send(Method::GET, &format!("/v2/{REPO}/manifests/{digest}"), &[], Vec::new());
    assert_eq!(got.status, StatusCode::OK, "stored manifest unreadable: {:?}", got.body);
    assert_eq!(&got.body[..], body, "stored manifest differs");
});
