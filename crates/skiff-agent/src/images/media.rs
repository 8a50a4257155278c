//! Manifests, indexes and image configs as the OCI image spec and Docker's schema 2 define them: media
//! types, the JSON documents (only the fields the store uses), platform selection and the config defaults
//! handed to the task builder.

use serde::Deserialize;
use std::collections::BTreeMap;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The `Accept` header of a manifest request: every manifest and index type Skiff understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What a layer media type means for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerKind {
    /// A tar stream, compressed so.
    Tar(Compression),
    /// Foreign (Docker) or non-distributable (OCI) layers: their blobs live outside the registry.
    NonDistributable,
    Unknown,
}

/// Classifies a layer descriptor's media type (OCI image-spec and Docker schema 2).
pub fn layer_kind(media_type: &str) -> LayerKind {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar" | "application/vnd.docker.image.rootfs.diff.tar" => {
            LayerKind::Tar(Compression::None)
        }
        "application/vnd.oci.image.layer.v1.tar+gzip" | "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            LayerKind::Tar(Compression::Gzip)
        }
        "application/vnd.oci.image.layer.v1.tar+zstd" | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            LayerKind::Tar(Compression::Zstd)
        }
        "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar" => LayerKind::NonDistributable,
        _ => LayerKind::Unknown,
    }
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// An image index or a Docker manifest list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// What a manifest document turned out to be.
#[derive(Debug)]
pub enum ManifestDocument {
    Index(Index),
    Manifest(Manifest),
}

/// Parses a manifest response. The media type comes from the body's `mediaType`, else the response's
/// `Content-Type`, else from the shape (`manifests` → index).
pub fn parse_manifest(body: &[u8], content_type: Option<&str>) -> Result<ManifestDocument, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let declared = value
        .get("mediaType")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()))
        .filter(|m| !m.is_empty() && m != "application/json" && m != "application/octet-stream");
    let is_index = match declared.as_deref() {
        Some(OCI_INDEX | DOCKER_MANIFEST_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(m) if m.starts_with("application/vnd.docker.distribution.manifest.v1") => {
            return Err(format!("unsupported manifest media type {m}: Docker schema 1 images are not supported"))
        }
        Some(m) => return Err(format!("unsupported manifest media type {m}")),
        None => value.get("manifests").is_some(),
    };
    if is_index {
        serde_json::from_value(value).map(ManifestDocument::Index).map_err(|e| format!("invalid image index: {e}"))
    } else {
        let m: Manifest = serde_json::from_value(value).map_err(|e| format!("invalid image manifest: {e}"))?;
        if m.schema_version != 2 {
            return Err(format!("unsupported manifest schemaVersion {}", m.schema_version));
        }
        Ok(ManifestDocument::Manifest(m))
    }
}

/// The manifest of an index for linux/amd64 (the only platform Skiff runs). Entries without a platform
/// are skipped (attestations and other artifacts carry none or `unknown/unknown`).
pub fn select_platform<'a>(index: &'a Index, os: &str, architecture: &str) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| {
        d.platform.as_ref().is_some_and(|p| p.os == os && p.architecture == architecture)
            && matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST | "")
    })
}

/// The image configuration, reduced to what the store and the task builder use.
#[derive(Debug, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RawConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawConfig {
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The image config defaults a task starts from (the image's `config` object): environment, entrypoint
/// and command, working directory, user, exposed ports, stop signal and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl From<RawConfig> for ImageConfig {
    fn from(c: RawConfig) -> ImageConfig {
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        ImageConfig {
            env: c.env.unwrap_or_default(),
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            working_dir: non_empty(c.working_dir),
            user: non_empty(c.user),
            exposed_ports: c.exposed_ports.map(|p| p.into_keys().collect()).unwrap_or_default(),
            stop_signal: non_empty(c.stop_signal),
            labels: c.labels.unwrap_or_default(),
        }
    }
}

/// Parses and checks an image config blob: `rootfs.type` is `layers` and there is one diff_id per layer.
pub fn parse_config(body: &[u8], layer_count: usize) -> Result<(ConfigFile, ImageConfig), String> {
    let mut file: ConfigFile = serde_json::from_slice(body).map_err(|e| format!("invalid image config: {e}"))?;
    if file.rootfs.kind != "layers" {
        return Err(format!("image config rootfs.type is {:?}, not \"layers\"", file.rootfs.kind));
    }
    if file.rootfs.diff_ids.len() != layer_count {
        return Err(format!(
            "image config lists {} diff_ids for {} layers in the manifest",
            file.rootfs.diff_ids.len(),
            layer_count
        ));
    }
    if let Some(bad) = file.rootfs.diff_ids.iter().find(|d| !super::reference::is_sha256_digest(d)) {
        return Err(format!("image config diff_id {bad:?} is not a sha256 digest"));
    }
    let config = file.config.take().unwrap_or_default().into();
    Ok((file, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", LayerKind::Tar(Compression::None)),
            ("application/vnd.oci.image.layer.v1.tar+gzip", LayerKind::Tar(Compression::Gzip)),
            ("application/vnd.oci.image.layer.v1.tar+zstd", LayerKind::Tar(Compression::Zstd)),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", LayerKind::Tar(Compression::Gzip)),
            ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LayerKind::NonDistributable),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LayerKind::NonDistributable),
            ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", LayerKind::Unknown),
            ("", LayerKind::Unknown),
        ];
        for (mt, want) in cases {
            assert_eq!(layer_kind(mt), want, "{mt}");
        }
    }

    #[test]
    fn manifests_and_indexes() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":2,"platform":{{"architecture":"unknown","os":"unknown"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":3,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let ManifestDocument::Index(i) = parse_manifest(index.as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(select_platform(&i, "linux", "amd64").map(|d| d.size), Some(3));
        assert!(select_platform(&i, "windows", "amd64").is_none());

        // Docker lists are told by Content-Type when the body has no mediaType.
        let list = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(parse_manifest(list.as_bytes(), Some(DOCKER_MANIFEST_LIST)), Ok(ManifestDocument::Index(_))));
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":2}},"layers":[]}}"#
        );
        assert!(matches!(parse_manifest(m.as_bytes(), Some(DOCKER_MANIFEST)), Ok(ManifestDocument::Manifest(_))));
        let e = parse_manifest(b"{}", Some("application/vnd.docker.distribution.manifest.v1+prettyjws")).unwrap_err();
        assert!(e.contains("schema 1"), "{e}");
        assert!(parse_manifest(b"nope", None).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn config_defaults() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let body = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Env":["PATH=/bin"],"Entrypoint":null,"Cmd":["sh"],
            "WorkingDir":"","User":"1000:1000","ExposedPorts":{{"8080/tcp":{{}}}},"StopSignal":"SIGQUIT",
            "Labels":{{"a":"b"}}}},"rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        let (_, c) = parse_config(body.as_bytes(), 1).unwrap();
        assert_eq!(
            c,
            ImageConfig {
                env: vec!["PATH=/bin".into()],
                entrypoint: None,
                cmd: Some(vec!["sh".into()]),
                working_dir: None,
                user: Some("1000:1000".into()),
                exposed_ports: vec!["8080/tcp".into()],
                stop_signal: Some("SIGQUIT".into()),
                labels: [("a".to_string(), "b".to_string())].into(),
            }
        );
        assert!(parse_config(body.as_bytes(), 2).unwrap_err().contains("1 diff_ids for 2 layers"));
        let bad = r#"{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}"#;
        assert!(parse_config(bad.as_bytes(), 1).unwrap_err().contains("not a sha256"));
    }
}
