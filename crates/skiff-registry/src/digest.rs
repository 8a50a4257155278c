//! Content digests (`algorithm:hex`) as the distribution spec names blobs and manifests, and the streaming
//! hashers that compute them. sha256 and sha512 are supported; anything else is refused.

use sha2::{Digest as _, Sha256, Sha512};
use std::fmt;
use std::io::Read as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest: a supported algorithm and its lowercase hex encoding, so that it is safe to use as a
/// file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest '{0}' is not of the form algorithm:encoded")]
    Malformed(String),
    #[error("digest algorithm '{0}' is not supported (use sha256 or sha512)")]
    Unsupported(String),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let malformed = || DigestError::Malformed(s.chars().take(200).collect());
        let (algorithm, encoded) = s.split_once(':').ok_or_else(malformed)?;
        // The spec's grammar: algorithm components of [a-z0-9] joined by [+._-], encoded [a-zA-Z0-9=_-]+.
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .split(['+', '.', '_', '-'])
                .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let encoded_ok = !encoded.is_empty()
            && encoded.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !algorithm_ok || !encoded_ok {
            return Err(malformed());
        }
        let algorithm = match algorithm {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(DigestError::Unsupported(other.to_string())),
        };
        let hex_ok = encoded.len() == algorithm.hex_len()
            && encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok {
            return Err(malformed());
        }
        Ok(Digest { algorithm, hex: encoded.to_string() })
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(bytes);
        h.finish()
    }

    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(bytes);
        h.finish()
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// A streaming hasher for one algorithm. Cloning it snapshots the state (a few hundred bytes).
#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let algorithm = self.algorithm();
        let hex = match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        };
        Digest { algorithm, hex }
    }
}

/// Hashes a whole file (blocking): the fallback when no running hash state is at hand.
pub fn hash_file(path: &Path, algorithm: Algorithm) -> std::io::Result<(Digest, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finish(), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_supported_digests() {
        let d = Digest::sha256_of(b"");
        assert_eq!(d.to_string(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(&d.to_string()), Ok(d));
        let d512 = Digest::of(Algorithm::Sha512, b"abc");
        assert!(d512.to_string().starts_with("sha512:ddaf35a193617aba"));
        assert_eq!(Digest::parse(&d512.to_string()), Ok(d512));
    }

    #[test]
    fn refuses_bad_digests() {
        let ok_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:abc",
            &format!("sha256:{}", ok_hex.to_uppercase()),
            &format!("sha256:{ok_hex}0"),
            &format!("sha256:../{}", &ok_hex[3..]),
            &format!("SHA256:{ok_hex}"),
            &format!("sha256:{}/x", &ok_hex[..62]),
        ] {
            assert!(matches!(Digest::parse(bad), Err(DigestError::Malformed(_))), "{bad}");
        }
        assert_eq!(Digest::parse("md5:abc"), Err(DigestError::Unsupported("md5".into())));
        assert_eq!(
            Digest::parse("multihash+base58:QmRZxt2b1"),
            Err(DigestError::Unsupported("multihash+base58".into()))
        );
    }

    #[test]
    fn hashing_a_file_matches_hashing_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = vec![7u8; 3 << 20];
        std::fs::write(&path, &data).unwrap();
        assert_eq!(hash_file(&path, Algorithm::Sha512).unwrap(), (Digest::of(Algorithm::Sha512, &data), 3 << 20));
    }
}
