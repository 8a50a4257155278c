//! Where the `skiff` binary finds credentials: the server's root keys from the environment, and the chain
//! the client commands follow (AWS environment variables, the server's root keys, the data directory).
//! Environment lookups go through a function so the rules are testable without touching the process's
//! environment.

use anyhow::{bail, Context as _};
use std::path::Path;

pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
pub const AWS_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
pub const SKIFF_ROOT_ACCESS_KEY_ID: &str = "SKIFF_ROOT_ACCESS_KEY_ID";
pub const SKIFF_ROOT_SECRET_ACCESS_KEY: &str = "SKIFF_ROOT_SECRET_ACCESS_KEY";

/// Where resolved client credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    AwsEnvironment,
    SkiffRootEnvironment,
    DataDirectory(std::path::PathBuf),
}

/// The process environment, with empty values treated as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An access key pair from two environment variables: both set → the pair, neither → `None`, one without
/// the other → an error naming the missing one.
fn key_pair(
    env: &dyn Fn(&str) -> Option<String>,
    id_var: &str,
    secret_var: &str,
) -> anyhow::Result<Option<(String, String)>> {
    let id = env(id_var).filter(|v| !v.is_empty());
    let secret = env(secret_var).filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{id_var} is set but {secret_var} is not; set both or neither"),
        (None, Some(_)) => bail!("{secret_var} is set but {id_var} is not; set both or neither"),
    }
}

/// The server's root credentials from `SKIFF_ROOT_ACCESS_KEY_ID` and `SKIFF_ROOT_SECRET_ACCESS_KEY`; `None`
/// when neither is set (the server then generates its own and keeps them in the data directory).
pub fn root_from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<skiff_api::Credentials>> {
    Ok(key_pair(env, SKIFF_ROOT_ACCESS_KEY_ID, SKIFF_ROOT_SECRET_ACCESS_KEY)?
        .map(|(access_key_id, secret_access_key)| skiff_api::Credentials { access_key_id, secret_access_key }))
}

/// The client commands' credentials, first found wins:
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`),
/// 2. `SKIFF_ROOT_ACCESS_KEY_ID` + `SKIFF_ROOT_SECRET_ACCESS_KEY`,
/// 3. the root credentials the server generated in its data directory.
pub fn resolve_client(
    env: &dyn Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(skiff_client::Credentials, Source)> {
    if let Some((access_key_id, secret_access_key)) = key_pair(env, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)? {
        let session_token = env(AWS_SESSION_TOKEN).filter(|v| !v.is_empty());
        return Ok((
            skiff_client::Credentials { access_key_id, secret_access_key, session_token },
            Source::AwsEnvironment,
        ));
    }
    if let Some(root) = root_from_env(env)? {
        return Ok((client_credentials(root), Source::SkiffRootEnvironment));
    }
    let file = data_dir.join(skiff_api::credentials::CREDENTIALS_FILE);
    match skiff_api::credentials::load(data_dir).context("cannot read the server's root credentials")? {
        Some(root) => Ok((client_credentials(root), Source::DataDirectory(file))),
        None => bail!(
            "no credentials: set {AWS_ACCESS_KEY_ID} and {AWS_SECRET_ACCESS_KEY} (plus {AWS_SESSION_TOKEN} for \
             temporary credentials), or {SKIFF_ROOT_ACCESS_KEY_ID} and {SKIFF_ROOT_SECRET_ACCESS_KEY} (the \
             server's root keys), or run where the server's generated {} is readable (looked for it in {}; \
             set --data-dir or SKIFF_DATA_DIR if the server keeps it elsewhere)",
            skiff_api::credentials::CREDENTIALS_FILE,
            file.display()
        ),
    }
}

fn client_credentials(root: skiff_api::Credentials) -> skiff_client::Credentials {
    skiff_client::Credentials {
        access_key_id: root.access_key_id,
        secret_access_key: root.secret_access_key,
        session_token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn write_creds(dir: &Path, id: &str) {
        let body = serde_json::json!({"accessKeyId": id, "secretAccessKey": "s3cret"});
        std::fs::write(dir.join(skiff_api::credentials::CREDENTIALS_FILE), body.to_string()).unwrap();
    }

    #[test]
    fn aws_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        write_creds(dir.path(), "FILE");
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIA1"),
            ("AWS_SECRET_ACCESS_KEY", "s1"),
            ("AWS_SESSION_TOKEN", "tok"),
            ("SKIFF_ROOT_ACCESS_KEY_ID", "ROOT"),
            ("SKIFF_ROOT_SECRET_ACCESS_KEY", "s2"),
        ]);
        let (c, source) = resolve_client(&env, dir.path()).unwrap();
        assert_eq!(source, Source::AwsEnvironment);
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_deref()),
            ("AKIA1", "s1", Some("tok"))
        );
    }

    #[test]
    fn then_root_environment_then_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        write_creds(dir.path(), "FILE");
        let env = env_of(&[("SKIFF_ROOT_ACCESS_KEY_ID", "ROOT"), ("SKIFF_ROOT_SECRET_ACCESS_KEY", "s2")]);
        let (c, source) = resolve_client(&env, dir.path()).unwrap();
        assert_eq!((c.access_key_id.as_str(), source), ("ROOT", Source::SkiffRootEnvironment));

        let (c, source) = resolve_client(&env_of(&[]), dir.path()).unwrap();
        assert_eq!(c.access_key_id, "FILE");
        assert_eq!(c.session_token, None);
        assert_eq!(source, Source::DataDirectory(dir.path().join("credentials.json")));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        write_creds(dir.path(), "FILE");
        let env = env_of(&[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")]);
        assert_eq!(resolve_client(&env, dir.path()).unwrap().0.access_key_id, "FILE");
    }

    #[test]
    fn half_a_pair_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_client(&env_of(&[("AWS_ACCESS_KEY_ID", "A")]), dir.path()).unwrap_err();
        assert_eq!(err.to_string(), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both or neither");
        let err = root_from_env(&env_of(&[("SKIFF_ROOT_SECRET_ACCESS_KEY", "s")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SKIFF_ROOT_SECRET_ACCESS_KEY is set but SKIFF_ROOT_ACCESS_KEY_ID is not; set both or neither"
        );
        assert!(root_from_env(&env_of(&[])).unwrap().is_none());
    }

    #[test]
    fn nothing_found_says_what_to_provide() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_client(&env_of(&[]), dir.path()).unwrap_err().to_string();
        for needle in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "SKIFF_ROOT_ACCESS_KEY_ID",
            "SKIFF_ROOT_SECRET_ACCESS_KEY",
            &dir.path().join("credentials.json").display().to_string(),
            "SKIFF_DATA_DIR",
        ] {
            assert!(err.contains(needle), "{needle:?} missing from: {err}");
        }
    }

    #[test]
    fn unreadable_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("credentials.json"), "not json").unwrap();
        let err = resolve_client(&env_of(&[]), dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("credentials.json"), "{err:#}");
    }
}
