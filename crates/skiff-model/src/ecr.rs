//! ECR: repositories and images as Skiff stores them (shared by the registry, which writes images on push,
//! and the ECR API, which manages repositories and reads images), their store keys, and how an image
//! reference in a task definition maps to a repository of this registry.

use crate::tag::Tag;
use serde::{Deserialize, Serialize};
use skiff_proto::timestamp::EpochMillis;

/// Store keys of ECR records. Repository names may contain `/`, which is escaped to `:` (a character
/// repository names cannot contain) so that a prefix scan of one repository never reaches another.
pub mod keys {
    pub const REPOSITORIES: &str = "ecr/repositories/";

    fn escape(repository: &str) -> String {
        repository.replace('/', ":")
    }

    pub fn repository(name: &str) -> String {
        format!("{REPOSITORIES}{}", escape(name))
    }

    /// `ImageRecord`s of a repository, by manifest digest.
    pub fn images_of(repository: &str) -> String {
        format!("ecr/images/{}/", escape(repository))
    }

    pub fn image(repository: &str, digest: &str) -> String {
        format!("{}{digest}", images_of(repository))
    }

    /// `TagRecord`s of a repository, by tag.
    pub fn tags_of(repository: &str) -> String {
        format!("ecr/tags/{}/", escape(repository))
    }

    pub fn tag(repository: &str, tag: &str) -> String {
        format!("{}{tag}", tags_of(repository))
    }

    /// `BlobLink`s: the blobs (layers, configs) pushed to or mounted into a repository.
    pub fn blobs_of(repository: &str) -> String {
        format!("ecr/blobs/{}/", escape(repository))
    }

    pub fn blob(repository: &str, digest: &str) -> String {
        format!("{}{digest}", blobs_of(repository))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    Mutable,
    Immutable,
}

/// A repository. `status` is always present: deleting removes the record (ECR keeps nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRecord {
    pub name: String,
    pub arn: String,
    /// The account id.
    pub registry_id: String,
    pub created_at: EpochMillis,
    pub image_tag_mutability: TagMutability,
    #[serde(default)]
    pub scan_on_push: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The lifecycle policy JSON text, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_policy_updated_at: Option<EpochMillis>,
}

/// A blob an image refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// An image (a manifest or an index) in a repository, keyed by its manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub digest: String,
    pub media_type: String,
    /// Size of the manifest itself in bytes.
    pub manifest_size: u64,
    /// Manifest + config + layers (for an index: the manifest only), as `imageSizeInBytes` reports.
    pub size: u64,
    pub pushed_at: EpochMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// Layers of a manifest; child manifests of an index.
    #[serde(default)]
    pub references: Vec<Descriptor>,
    /// `subject` of the manifest (for the referrers API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pulled_at: Option<EpochMillis>,
}

/// A tag of a repository, pointing at a manifest digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagRecord {
    pub digest: String,
    pub pushed_at: EpochMillis,
}

/// A blob pushed to (or mounted into) a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobLink {
    pub size: u64,
    pub linked_at: EpochMillis,
}

/// Repository names as ECR and the distribution spec allow: 2–256 characters, `/`-separated components
/// of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn is_valid_repository_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let separators_ok = b
            .windows(2)
            .all(|w| alnum(w[0]) || alnum(w[1]) || (w[0] == b'_' && w[1] == b'_') || (w[0] == b'-' && w[1] == b'-'));
        !b.is_empty()
            && alnum(b[0])
            && alnum(b[b.len() - 1])
            && b.iter().all(|&x| alnum(x) || matches!(x, b'.' | b'_' | b'-'))
            && separators_ok
            && !c.contains("___")
    };
    (2..=256).contains(&name.len()) && name.split('/').all(component_ok)
}

/// Where this registry answers: the host[:port] clients push to, and the ECR-style host
/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` that task definitions may name instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryHosts {
    pub registry_host: String,
    pub account: String,
    pub region: String,
}

impl RegistryHosts {
    pub fn ecr_host(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.account, self.region)
    }

    /// `repositoryUri`: `REGISTRY_HOST/NAME`, a form skopeo and podman accept.
    pub fn repository_uri(&self, name: &str) -> String {
        format!("{}/{name}", self.registry_host)
    }

    /// If `image` names a repository of this registry (by its host or its ECR-style host), the repository
    /// and the reference (`tag` or `sha256:…` digest; `latest` when absent).
    pub fn resolve(&self, image: &str) -> Option<(String, String)> {
        let (host, rest) = image.split_once('/')?;
        if host != self.registry_host && host != self.ecr_host() {
            return None;
        }
        let (name, reference) = match rest.split_once('@') {
            Some((name, digest)) => (name, digest.to_string()),
            None => match rest.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => (name, tag.to_string()),
                _ => (rest, "latest".to_string()),
            },
        };
        is_valid_repository_name(name).then(|| (name.to_string(), reference))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["ab", "web", "team/web-app", "a.b_c-d/e__f", "0x", "a--b"] {
            assert!(is_valid_repository_name(ok), "{ok}");
        }
        for bad in
            ["a", "Web", "web/", "/web", "web//x", "-web", "web-", "a..b", "a/../b", "a._b", "a b", &"x".repeat(257)]
        {
            assert!(!is_valid_repository_name(bad), "{bad}");
        }
    }

    #[test]
    fn keys_never_overlap_between_repositories() {
        assert!(!keys::image("a/b", "sha256:x").starts_with(&keys::images_of("a")));
        assert!(!keys::tag("a", "t").starts_with(&keys::tags_of("a/b")));
    }

    #[test]
    fn image_references_resolve_to_this_registry() {
        let hosts = RegistryHosts {
            registry_host: "127.0.0.1:9400".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(hosts.resolve("127.0.0.1:9400/web:v1"), Some(("web".into(), "v1".into())));
        assert_eq!(
            hosts.resolve("000000000000.dkr.ecr.us-east-1.amazonaws.com/team/web"),
            Some(("team/web".into(), "latest".into()))
        );
        assert_eq!(hosts.resolve("127.0.0.1:9400/web@sha256:abc"), Some(("web".into(), "sha256:abc".into())));
        assert_eq!(hosts.resolve("docker.io/library/busybox:1"), None);
        assert_eq!(hosts.resolve("busybox"), None);
        assert_eq!(hosts.repository_uri("web"), "127.0.0.1:9400/web");
    }
}
