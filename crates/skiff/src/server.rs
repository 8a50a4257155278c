//! `skiff server`: turns flags and environment into a `skiff_api::ServerConfig` and runs the all-in-one
//! server until SIGINT or SIGTERM.

use crate::credentials;
use anyhow::{bail, Context as _};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free one (the bound address is printed on stdout)
    #[arg(long, env = "SKIFF_LISTEN", default_value = skiff_api::DEFAULT_LISTEN, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Directory for the store and the generated root credentials
    #[arg(long, env = "SKIFF_DATA_DIR", default_value = skiff_api::DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,

    /// The AWS account id every ARN carries (12 digits)
    #[arg(long, env = "SKIFF_ACCOUNT_ID", default_value = skiff_api::DEFAULT_ACCOUNT_ID, value_parser = parse_account_id)]
    pub account_id: String,

    /// The region the server answers as
    #[arg(long, env = "SKIFF_REGION", default_value = skiff_api::DEFAULT_REGION)]
    pub region: String,

    /// The HOST[:PORT] clients push images to (repositoryUri); default: the bound address
    #[arg(long, env = "SKIFF_REGISTRY_HOST", value_name = "HOST[:PORT]")]
    pub registry_host: Option<String>,

    /// The default VPC's block, an IPv4 /16 (tasks get addresses from its first two /20s); only used when
    /// the region's default VPC is created (the first start with a data directory)
    #[arg(long, env = "SKIFF_VPC_CIDR", default_value = skiff_model::vpc::DEFAULT_VPC_CIDR, value_name = "CIDR", value_parser = parse_vpc_cidr)]
    pub vpc_cidr: String,

    /// The block load balancers get their host addresses from (each one's address is its DNSName): a /16 of
    /// 127.0.0.0/8
    #[arg(long, env = "SKIFF_LB_CIDR", default_value = skiff_model::elbv2::DEFAULT_LB_BLOCK, value_name = "CIDR", value_parser = parse_lb_cidr)]
    pub lb_cidr: String,

    /// The OCI runtime that runs task containers: crun or runc
    #[arg(long, env = "SKIFF_OCI_RUNTIME", default_value = "crun", value_name = "RUNTIME", value_parser = parse_oci_runtime)]
    pub oci_runtime: skiff_agent::runtime::OciRuntime,

    /// How long stopped tasks stay describable (and their logs kept), in seconds
    #[arg(long, env = "SKIFF_STOPPED_TASK_RETENTION", default_value_t = skiff_api::DEFAULT_STOPPED_TASK_RETENTION.as_secs(), value_name = "SECONDS")]
    pub stopped_task_retention: u64,
}

/// `crun` or `runc`.
pub fn parse_oci_runtime(s: &str) -> Result<skiff_agent::runtime::OciRuntime, String> {
    match s {
        "crun" => Ok(skiff_agent::runtime::OciRuntime::Crun),
        "runc" => Ok(skiff_agent::runtime::OciRuntime::Runc),
        _ => Err(format!("OCI runtime {s:?} is not supported: use crun or runc")),
    }
}

pub fn parse_vpc_cidr(s: &str) -> Result<String, String> {
    skiff_model::vpc::default_subnet_cidrs(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("VPC block {s:?} must be an IPv4 /16 such as 172.31.0.0/16"))
}

pub fn parse_lb_cidr(s: &str) -> Result<String, String> {
    skiff_model::elbv2::parse_lb_block(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("load balancer block {s:?} must be a /16 of 127.0.0.0/8 such as 127.200.0.0/16"))
}

/// `HOST:PORT`: an IP address, or a name resolved once now (the first address wins).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let mut addrs = s.to_socket_addrs().map_err(|e| format!("cannot resolve {s:?}: {e}; use HOST:PORT"))?;
    addrs.next().ok_or_else(|| format!("{s:?} resolves to no address"))
}

pub fn parse_account_id(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("account id {s:?} must be 12 digits"))
    }
}

/// The server's configuration from its arguments and environment (root credentials).
pub fn config(args: ServerArgs, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<skiff_api::ServerConfig> {
    if args.region.trim().is_empty() {
        bail!("the region must not be empty (--region or SKIFF_REGION)");
    }
    Ok(skiff_api::ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        account_id: args.account_id,
        region: args.region,
        root_credentials: credentials::root_from_env(env)?,
        registry_host: args.registry_host,
        vpc_cidr: args.vpc_cidr,
        lb_cidr: args.lb_cidr,
        oci_runtime: args.oci_runtime,
        stopped_task_retention: std::time::Duration::from_secs(args.stopped_task_retention),
    })
}

/// Runs the server on a multi-thread runtime until SIGINT or SIGTERM.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = config(args, &credentials::process_env)?;
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiff-server")
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        skiff_api::serve(config, shutdown).await
    })
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); colours only on a terminal.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only if a subscriber is already installed, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A future that resolves on the first SIGINT or SIGTERM. The handlers are installed now, so a signal that
/// arrives while the server starts is not lost.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutting down");
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn server_args(argv: &[&str]) -> ServerArgs {
        let cli = crate::Cli::try_parse_from(argv).unwrap();
        let crate::Command::Server(args) = cli.command else { panic!("not the server command") };
        args
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("127.0.0.1:0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(parse_listen("[::1]:9400").unwrap(), "[::1]:9400".parse().unwrap());
        assert!(parse_listen("localhost:9400").unwrap().ip().is_loopback());
        assert!(parse_listen("127.0.0.1").unwrap_err().contains("HOST:PORT"));
    }

    #[test]
    fn account_ids() {
        assert!(parse_account_id("123456789012").is_ok());
        assert!(parse_account_id("12345").is_err());
        assert!(parse_account_id("12345678901a").is_err());
    }

    #[test]
    fn config_from_flags_and_root_credentials() {
        let args = server_args(&[
            "skiff",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--account-id",
            "123456789012",
            "--region",
            "eu-west-1",
        ]);
        let env = |name: &str| match name {
            "SKIFF_ROOT_ACCESS_KEY_ID" => Some("AKIAROOT".to_string()),
            "SKIFF_ROOT_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            _ => None,
        };
        let config = config(args.clone(), &env).unwrap();
        assert_eq!(config.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!((config.account_id.as_str(), config.region.as_str()), ("123456789012", "eu-west-1"));
        assert_eq!(config.root_credentials.unwrap().access_key_id, "AKIAROOT");

        let half = |name: &str| (name == "SKIFF_ROOT_ACCESS_KEY_ID").then(|| "AKIAROOT".to_string());
        assert!(super::config(args.clone(), &half).unwrap_err().to_string().contains("SKIFF_ROOT_SECRET_ACCESS_KEY"));
        assert!(super::config(args, &|_| None).unwrap().root_credentials.is_none());
    }

    #[test]
    fn defaults_come_from_skiff_api() {
        // Only meaningful when the environment does not override them.
        if ["SKIFF_LISTEN", "SKIFF_DATA_DIR", "SKIFF_ACCOUNT_ID", "SKIFF_REGION"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
        {
            return;
        }
        let args = server_args(&["skiff", "server"]);
        assert_eq!(args.listen, skiff_api::DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from(skiff_api::DEFAULT_DATA_DIR));
        assert_eq!(args.account_id, skiff_api::DEFAULT_ACCOUNT_ID);
        assert_eq!(args.region, skiff_api::DEFAULT_REGION);
    }
}
