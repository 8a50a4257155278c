//! The client commands: each talks to a skiff server over the public AWS API (ECS over JSON 1.1, signed
//! with SigV4) exactly as the AWS CLI would, and prints either a readable table or the raw response.

pub mod api;
pub mod clusters;
pub mod deploy;
pub mod images;
pub mod logs;
pub mod node;
pub mod services;
pub mod task_definitions;

use crate::credentials;
use anyhow::{bail, Context as _};
use serde_json::Value;
use std::io::Write as _;
use std::path::PathBuf;

/// The endpoint the client commands use unless told otherwise: the server's default listen address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9400";
/// The region the client commands sign for unless `--region`, `AWS_REGION` or `AWS_DEFAULT_REGION` say.
pub const DEFAULT_REGION: &str = "us-east-1";
/// `X-Amz-Target` prefix of ECS operations.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// SigV4 service name of ECS.
pub const ECS_SIGNING_NAME: &str = "ecs";

/// How the client commands reach a server; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// URL of the skiff server's API
    #[arg(long, global = true, env = "SKIFF_ENDPOINT", default_value = DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,

    /// Region to sign requests for [env: AWS_REGION, then AWS_DEFAULT_REGION] [default: us-east-1]
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// Output format: a readable table, or the raw API response as pretty-printed JSON
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// The server's data directory, read for its generated root credentials when no credentials are in the
    /// environment
    #[arg(long, global = true, env = "SKIFF_DATA_DIR", default_value = skiff_api::DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// The region: `--region`, else `AWS_REGION`, else `AWS_DEFAULT_REGION`, else us-east-1.
pub fn resolve_region(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    flag.map(str::to_string)
        .filter(|r| !r.is_empty())
        .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
        .or_else(|| env("AWS_DEFAULT_REGION").filter(|r| !r.is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// A connected (lazily) client plus how to print.
pub struct Context {
    pub client: skiff_client::Client,
    pub output: OutputFormat,
}

impl Context {
    /// Resolves region and credentials from the arguments and the process environment. Must run inside a
    /// tokio runtime.
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Context> {
        let region = resolve_region(args.region.as_deref(), &credentials::process_env);
        let (creds, source) = credentials::resolve_client(&credentials::process_env, &args.data_dir)?;
        tracing::debug!(?source, access_key_id = %creds.access_key_id, %region, "client credentials");
        let client = skiff_client::Client::new(&args.endpoint, &region, creds)?;
        Ok(Context { client, output: args.output })
    }

    /// Calls one ECS operation (`ListClusters`, …).
    pub async fn ecs(&self, operation: &str, body: Value) -> Result<Value, skiff_client::ClientError> {
        self.client.call_json(ECS_SIGNING_NAME, &format!("{ECS_TARGET_PREFIX}.{operation}"), &body).await
    }

    /// Calls a paginated ECS list operation until `nextToken` runs out and returns one response with the
    /// pages' `list_member` arrays concatenated (as the AWS CLI does).
    pub async fn ecs_all_pages(&self, operation: &str, mut body: Value, list_member: &str) -> anyhow::Result<Value> {
        let mut items = Vec::new();
        let mut seen_tokens = std::collections::HashSet::new();
        loop {
            let mut page = self.ecs(operation, body.clone()).await?;
            if let Some(Value::Array(page_items)) = page.get_mut(list_member).map(Value::take) {
                items.extend(page_items);
            }
            match page.get("nextToken").and_then(Value::as_str) {
                Some(token) if !token.is_empty() => {
                    if !seen_tokens.insert(token.to_string()) {
                        bail!("{operation} returned the nextToken {token:?} twice; the server's pagination is broken");
                    }
                    body["nextToken"] = Value::String(token.to_string());
                }
                _ => break,
            }
        }
        Ok(serde_json::json!({ list_member: items }))
    }

    pub fn is_json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// Prints a JSON value pretty-printed, with a final newline.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot encode the response")?;
    text.push('\n');
    print(&text)
}

/// Writes text to stdout; an error (a closed pipe) is returned rather than panicking like `print!`.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The reasons in a Describe*/Delete* call's `failures` as one error, after the successes were printed.
pub fn failures_error(noun: &str, response: &Value) -> anyhow::Result<()> {
    let failures: Vec<String> = response
        .get("failures")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|f| {
                    let mut line =
                        format!("{noun} {}: {}", crate::table::text(f.get("arn")), crate::table::text(f.get("reason")));
                    if let Some(detail) = f.get("detail").and_then(Value::as_str).filter(|d| !d.is_empty()) {
                        line.push_str(&format!(" ({detail})"));
                    }
                    line
                })
                .collect()
        })
        .unwrap_or_default();
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{}", failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn default_endpoint_is_the_servers_default_listen_address() {
        assert_eq!(DEFAULT_ENDPOINT, format!("http://{}", skiff_api::DEFAULT_LISTEN));
    }

    #[test]
    fn region_resolution_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let both = env(&[("AWS_REGION", "eu-west-1"), ("AWS_DEFAULT_REGION", "eu-west-2")]);
        assert_eq!(resolve_region(Some("ap-south-1"), &both), "ap-south-1");
        assert_eq!(resolve_region(None, &both), "eu-west-1");
        assert_eq!(resolve_region(None, &env(&[("AWS_DEFAULT_REGION", "eu-west-2")])), "eu-west-2");
        assert_eq!(resolve_region(None, &env(&[("AWS_REGION", "")])), "us-east-1");
        assert_eq!(resolve_region(None, &env(&[])), "us-east-1");
    }

    #[test]
    fn failures_become_one_error() {
        let ok = serde_json::json!({"clusters": [], "failures": []});
        assert!(failures_error("cluster", &ok).is_ok());
        let bad = serde_json::json!({"failures": [
            {"arn": "arn:aws:ecs:us-east-1:000000000000:cluster/nope", "reason": "MISSING"},
            {"arn": "x", "reason": "DELETE_FAILED", "detail": "in use"}
        ]});
        assert_eq!(
            failures_error("cluster", &bad).unwrap_err().to_string(),
            "cluster arn:aws:ecs:us-east-1:000000000000:cluster/nope: MISSING; cluster x: DELETE_FAILED (in use)"
        );
    }

    #[test]
    fn client_flags_parse_after_the_subcommand() {
        let cli = crate::Cli::try_parse_from([
            "skiff",
            "clusters",
            "ls",
            "--endpoint",
            "http://127.0.0.1:1",
            "-o",
            "json",
            "--region",
            "eu-west-1",
        ])
        .unwrap();
        let crate::Command::Clusters { client, .. } = cli.command else { panic!("not clusters") };
        assert_eq!(client.endpoint, "http://127.0.0.1:1");
        assert_eq!(client.output, OutputFormat::Json);
        assert_eq!(client.region.as_deref(), Some("eu-west-1"));
    }
}
