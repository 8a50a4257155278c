//! Image references normalised as Docker does (`distribution/reference`'s `ParseNormalizedNamed`): a bare
//! name is on `docker.io`, a one-component name there is under `library/`, the tag defaults to `latest` unless
//! a digest is given, `index.docker.io` is `docker.io`, and the first component is a registry host only when
//! it has a `.` or a `:` or is `localhost` (so `127.0.0.1:9400/web` and ECR-style hosts are hosts,
//! `team/web` is a Docker Hub repository).

use std::fmt;

/// The registry Docker calls `docker.io`; its API lives on [`DOCKER_HUB_API_HOST`].
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const MAX_NAME_LEN: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `127.0.0.1:9400`, `123456789012.dkr.ecr.us-east-1.amazonaws.com`, `[::1]:5000`.
    pub registry: String,
    /// The repository path: `library/busybox`, `team/web`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<64 hex>` when the reference pins a manifest.
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: the reference is empty")]
    Empty,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("invalid reference format: repository name {0:?} is not valid")]
    Name(String),
    #[error("invalid reference format: registry host {0:?} is not valid")]
    Host(String),
    #[error("invalid reference format: tag {0:?} is not valid")]
    Tag(String),
    #[error("invalid reference format: digest {0:?} is not a sha256 digest (sha256:<64 lowercase hex>)")]
    Digest(String),
    #[error("invalid reference format: repository name is longer than 255 characters")]
    TooLong,
}

impl Reference {
    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What goes after `/manifests/`: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The host (and port) the registry API is served on: Docker Hub's differs from its name.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The same repository pinned to `digest` (tag dropped).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference { digest: Some(digest.to_string()), tag: None, ..self.clone() }
    }

    /// The host without its port, brackets removed (`[::1]:5000` → `::1`).
    pub fn host_without_port(&self) -> &str {
        host_without_port(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        normalize_reference(s)
    }
}

/// Parses and normalises an image reference the way `docker pull` does.
pub fn normalize_reference(r: &str) -> Result<Reference, ReferenceError> {
    let r = r.trim();
    if r.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (rest, digest) = match r.split_once('@') {
        Some((rest, digest)) => {
            if !is_sha256_digest(digest) {
                return Err(ReferenceError::Digest(digest.to_string()));
            }
            (rest, Some(digest.to_string()))
        }
        None => (r, None),
    };
    let (registry, remainder) = split_domain(rest);
    let (path, tag) = match remainder.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (remainder, None),
    };
    if let Some(tag) = tag {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::Tag(tag.to_string()));
        }
    }
    if !is_valid_host(&registry) {
        return Err(ReferenceError::Host(registry));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase);
    }
    let repository =
        if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_string() };
    if !is_valid_path(&repository) {
        return Err(ReferenceError::Name(path.to_string()));
    }
    if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong);
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_string()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference { registry, repository, tag, digest })
}

/// Docker's `splitDockerDomain`.
fn split_domain(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" || first.contains('[') =>
        {
            let host = if first == "index.docker.io" { DOCKER_HUB } else { first };
            (host.to_string(), rest)
        }
        _ => (DOCKER_HUB.to_string(), name),
    }
}

pub(crate) fn host_without_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map(|(h, _)| h).unwrap_or(rest);
    }
    registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry)
}

fn is_valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else { return false };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match name {
        None => true,
        Some(n) => {
            !n.is_empty()
                && n.split('.').all(|label| {
                    !label.is_empty()
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                })
        }
    }
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`.
fn is_valid_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_valid_component)
}

fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// `sha256:` and 64 lowercase hex digits: the only digest algorithm Skiff verifies.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalization_table() {
        let cases: &[(&str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1"),
            ("team/web", "docker.io/team/web:latest"),
            ("team/sub/web:v2", "docker.io/team/sub/web:v2"),
            ("localhost/web", "localhost/web:latest"),
            ("localhost:5000/web:v1", "localhost:5000/web:v1"),
            ("127.0.0.1:9400/web:v9", "127.0.0.1:9400/web:v9"),
            ("127.0.0.1:9400/team/web", "127.0.0.1:9400/team/web:latest"),
            ("[::1]:5000/web", "[::1]:5000/web:latest"),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1",
            ),
            ("quay.io/a_b/c.d__e---f:T_1.x-y", "quay.io/a_b/c.d__e---f:T_1.x-y"),
            ("ghcr.io/x/y", "ghcr.io/x/y:latest"),
        ];
        for (input, want) in cases {
            let r = normalize_reference(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *want, "{input}");
            // Normalising is idempotent.
            assert_eq!(normalize_reference(&r.to_string()).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn digests() {
        let r = normalize_reference(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(D)));
        let r = normalize_reference(&format!("127.0.0.1:9400/web:v1@{D}")).unwrap();
        assert_eq!(r.manifest_ref(), D, "the digest wins over the tag");
        assert_eq!(r.to_string(), format!("127.0.0.1:9400/web:v1@{D}"));
        assert_eq!(r.with_digest(D).to_string(), format!("127.0.0.1:9400/web@{D}"));
    }

    #[test]
    fn refused() {
        let cases: &[(&str, ReferenceError)] = &[
            ("", ReferenceError::Empty),
            ("Busybox", ReferenceError::Uppercase),
            ("127.0.0.1:9400/Web", ReferenceError::Uppercase),
            ("web:", ReferenceError::Tag("".into())),
            ("web:-x", ReferenceError::Tag("-x".into())),
            ("web@sha256:abc", ReferenceError::Digest("sha256:abc".into())),
            (
                "web@md5:d41d8cd98f00b204e9800998ecf8427e",
                ReferenceError::Digest("md5:d41d8cd98f00b204e9800998ecf8427e".into()),
            ),
            ("a//b", ReferenceError::Name("a//b".into())),
            ("-a", ReferenceError::Name("-a".into())),
            ("a..b", ReferenceError::Name("a..b".into())),
            ("a___b", ReferenceError::Name("a___b".into())),
            ("host:99999999/web", ReferenceError::Host("host:99999999".into())),
            ("bad_host.io/web", ReferenceError::Host("bad_host.io".into())),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reference(input).as_ref(), Err(want), "{input:?}");
        }
        assert_eq!(normalize_reference(&"a".repeat(300)), Err(ReferenceError::TooLong));
        assert_eq!(normalize_reference(&format!("web:{}", "t".repeat(129))), Err(ReferenceError::Tag("t".repeat(129))));
    }

    #[test]
    fn hosts() {
        let r = normalize_reference("busybox").unwrap();
        assert_eq!((r.api_host(), r.host_without_port()), (DOCKER_HUB_API_HOST, "docker.io"));
        let r = normalize_reference("127.0.0.1:9400/web").unwrap();
        assert_eq!((r.api_host(), r.host_without_port()), ("127.0.0.1:9400", "127.0.0.1"));
        let r = normalize_reference("[::1]:5000/web").unwrap();
        assert_eq!(r.host_without_port(), "::1");
        assert_eq!(r.name(), "[::1]:5000/web");
    }
}
