//! The root credentials: from the environment, or generated once and kept (mode 0600) in the data directory.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// File name of the generated root credentials inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Reads the credentials file of a data directory, if there is one.
pub fn load(data_dir: &Path) -> anyhow::Result<Option<Credentials>> {
    let path = data_dir.join(CREDENTIALS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!("cannot parse {}: {e}; remove it to generate new credentials", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// Loads the data directory's credentials or generates and stores new ones. Returns them and whether they
/// were just generated.
pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<(Credentials, bool)> {
    if let Some(c) = load(data_dir)? {
        return Ok((c, false));
    }
    let creds = Credentials {
        access_key_id: format!("AKIA{}", random_string(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?),
        secret_access_key: random_string(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")?,
    };
    let path = data_dir.join(CREDENTIALS_FILE);
    let tmp = data_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(&creds)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok((creds, true))
}

fn random_string(len: usize, alphabet: &[u8]) -> anyhow::Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("cannot read the OS's randomness: {e}"))?;
    Ok(bytes.iter().map(|b| alphabet[*b as usize % alphabet.len()] as char).collect())
}

/// A ready-to-paste AWS CLI profile for these credentials and this server (for `~/.aws/credentials`).
pub fn profile_text(creds: &Credentials, region: &str, addr: std::net::SocketAddr) -> String {
    format!(
        "# AWS CLI profile for this server: paste into ~/.aws/credentials, then `aws --profile skiff ecs list-clusters`\n\
         [skiff]\n\
         aws_access_key_id = {}\n\
         aws_secret_access_key = {}\n\
         region = {region}\n\
         endpoint_url = http://{addr}\n",
        creds.access_key_id, creds.secret_access_key
    )
}

/// A 32-byte secret kept in `path`: read if it exists, else generated from the OS's randomness and written
/// (mode 0600, synced, renamed into place) — server keys that must survive restarts.
pub fn load_or_generate_secret(path: &Path) -> anyhow::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|_| {
                anyhow::anyhow!("{} is not a 32-byte key; remove it to generate a new one", path.display())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("cannot read the OS's randomness: {e}"))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(&key)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(key)
}
