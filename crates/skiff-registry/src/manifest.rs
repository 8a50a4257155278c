//! Manifests as pushed: the four media types accepted (OCI image manifest and index, Docker schema2
//! manifest and manifest list), the checks a manifest must pass before it is stored, and what the image
//! record keeps of it (config, layers or child manifests, subject, artifact type).

use crate::errors::DistError;
use serde::Deserialize;
use skiff_model::ecr::Descriptor;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Largest manifest accepted (the spec asks registries to accept at least 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An image manifest: a config and layers.
    Image,
    /// An index / manifest list: child manifests.
    Index,
}

pub fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(Kind::Index),
        _ => None,
    }
}

/// A manifest that passed the structural checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub media_type: String,
    pub kind: Kind,
    pub config: Option<Descriptor>,
    /// Layers of an image manifest; child manifests of an index.
    pub references: Vec<Descriptor>,
    /// Layers that live outside the registry (`urls` on a non-distributable layer): not required to be pushed.
    pub foreign: Vec<String>,
    pub subject: Option<String>,
    /// As the referrers API reports it: `artifactType`, else (image manifests) the config's media type.
    pub artifact_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    #[serde(default)]
    urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
}

/// The media type a PUT declares: its `Content-Type` without parameters, or the manifest's own `mediaType`
/// when the header is absent. An unknown type is refused.
pub fn effective_media_type(content_type: Option<&str>, body: &[u8]) -> Result<String, DistError> {
    let header = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let declared = match header.filter(|h| !h.is_empty()) {
        Some(h) => h,
        None => std::str::from_utf8(body)
            .ok()
            .and_then(|text| serde_json::from_str::<RawManifest>(text).ok())
            .and_then(|m| m.media_type)
            .ok_or_else(|| DistError::manifest_invalid("unknown media type: the request has no Content-Type"))?,
    };
    if kind_of(&declared).is_none() {
        return Err(DistError::manifest_invalid(format!(
            "unknown media type '{declared}': push {OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST} or {DOCKER_MANIFEST_LIST}"
        )));
    }
    Ok(declared)
}

/// Parses and checks a manifest of `media_type` (one of the four).
pub fn parse(media_type: &str, body: &[u8]) -> Result<Parsed, DistError> {
    let kind =
        kind_of(media_type).ok_or_else(|| DistError::manifest_invalid(format!("unknown media type '{media_type}'")))?;
    // serde_json skips ignored members without checking their UTF-8: check the whole document first, or a
    // manifest with invalid bytes in an annotation would be stored and served (found by the fuzz target).
    let text = std::str::from_utf8(body)
        .map_err(|e| DistError::manifest_invalid(format!("manifest is not valid UTF-8: {e}")))?;
    let raw: RawManifest = serde_json::from_str(text)
        .map_err(|e| DistError::manifest_invalid(format!("manifest is not a valid JSON document: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(DistError::manifest_invalid("manifest schemaVersion must be 2"));
    }
    if let Some(declared) = &raw.media_type {
        if declared != media_type {
            return Err(DistError::manifest_invalid(format!(
                "manifest mediaType '{declared}' does not match the Content-Type '{media_type}'"
            )));
        }
    }
    let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?.map(|d| d.digest);
    match kind {
        Kind::Image => {
            if raw.manifests.is_some() {
                return Err(DistError::manifest_invalid("an image manifest has no 'manifests' field"));
            }
            let config =
                descriptor(raw.config.ok_or_else(|| DistError::manifest_invalid("manifest has no config"))?, "config")?;
            let mut references = Vec::new();
            let mut foreign = Vec::new();
            for (i, layer) in raw.layers.unwrap_or_default().into_iter().enumerate() {
                let external = !layer.urls.is_empty();
                let d = descriptor(layer, &format!("layers[{i}]"))?;
                if external && (d.media_type.contains("foreign") || d.media_type.contains("nondistributable")) {
                    foreign.push(d.digest.clone());
                }
                references.push(d);
            }
            let artifact_type = raw.artifact_type.or_else(|| Some(config.media_type.clone()));
            Ok(Parsed {
                media_type: media_type.to_string(),
                kind,
                config: Some(config),
                references,
                foreign,
                subject,
                artifact_type,
            })
        }
        Kind::Index => {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(DistError::manifest_invalid("an index has no 'config' or 'layers' field"));
            }
            let manifests =
                raw.manifests.ok_or_else(|| DistError::manifest_invalid("index has no 'manifests' field"))?;
            let references = manifests
                .into_iter()
                .enumerate()
                .map(|(i, m)| descriptor(m, &format!("manifests[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Parsed {
                media_type: media_type.to_string(),
                kind,
                config: None,
                references,
                foreign: Vec::new(),
                subject,
                artifact_type: raw.artifact_type,
            })
        }
    }
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, DistError> {
    let media_type = raw.media_type.ok_or_else(|| DistError::manifest_invalid(format!("{what} has no mediaType")))?;
    let digest = raw.digest.ok_or_else(|| DistError::manifest_invalid(format!("{what} has no digest")))?;
    crate::digest::Digest::parse(&digest)
        .map_err(|e| DistError::manifest_invalid(format!("{what} has an invalid digest: {e}")))?;
    let size = raw.size.ok_or_else(|| DistError::manifest_invalid(format!("{what} has no size")))?;
    let size = u64::try_from(size).map_err(|_| DistError::manifest_invalid(format!("{what} has a negative size")))?;
    Ok(Descriptor { media_type, digest, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn invalid_utf8_in_an_ignored_member_is_refused() {
        let mut body = image(r#","annotations":{"a":"X"}"#).into_bytes();
        let x = body.iter().rposition(|&b| b == b'X').unwrap();
        body[x] = 0xff;
        let Err(err) = parse(OCI_MANIFEST, &body) else { panic!("a manifest with invalid UTF-8 was accepted") };
        assert!(format!("{err:?}").contains("UTF-8"), "{err:?}");
        assert!(effective_media_type(None, &body).is_err());
    }

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":10}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":20}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_an_image_manifest() {
        let p = parse(
            OCI_MANIFEST,
            image(&format!(r#","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":3}}"#)).as_bytes(),
        )
        .unwrap();
        assert_eq!(p.kind, Kind::Image);
        assert_eq!(p.config.unwrap().size, 10);
        assert_eq!(p.references.len(), 1);
        assert_eq!(p.subject.as_deref(), Some(D2));
        assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
    }

    #[test]
    fn parses_an_index() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","artifactType":"x/y","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let p = parse(OCI_INDEX, body.as_bytes()).unwrap();
        assert_eq!((p.kind, p.references.len(), p.artifact_type.as_deref()), (Kind::Index, 1, Some("x/y")));
    }

    #[test]
    fn refuses_malformed_manifests() {
        let cases = [
            ("not json", "{".to_string()),
            ("schema 1", image("").replace("\"schemaVersion\":2", "\"schemaVersion\":1")),
            ("media type mismatch", image("").replace(OCI_MANIFEST, DOCKER_MANIFEST)),
            ("no config", r#"{"schemaVersion":2,"layers":[]}"#.to_string()),
            ("bad digest", image("").replace(D2, "sha256:zz")),
            ("negative size", image("").replace("\"size\":20", "\"size\":-1")),
            ("image with manifests", image(r#","manifests":[]"#)),
        ];
        for (what, body) in cases {
            let err = parse(OCI_MANIFEST, body.as_bytes()).unwrap_err();
            assert_eq!(err.code, "MANIFEST_INVALID", "{what}");
        }
    }

    #[test]
    fn media_type_comes_from_the_header_or_the_body() {
        let body = image("");
        assert_eq!(effective_media_type(Some(OCI_MANIFEST), body.as_bytes()).unwrap(), OCI_MANIFEST);
        assert_eq!(
            effective_media_type(Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"), b"").unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(effective_media_type(None, body.as_bytes()).unwrap(), OCI_MANIFEST);
        assert_eq!(
            effective_media_type(Some("application/x-foo"), body.as_bytes()).unwrap_err().code,
            "MANIFEST_INVALID"
        );
        assert_eq!(effective_media_type(None, b"{}").unwrap_err().code, "MANIFEST_INVALID");
    }
}
