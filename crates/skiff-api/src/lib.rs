//! `skiff-api` is Skiff's API front: one HTTP listener that authenticates every call with SigV4, routes
//! AWS JSON 1.1 calls by `X-Amz-Target` and query-protocol calls by the credential scope's service plus
//! `Action`, and dispatches to the service handlers (ECS, STS). Handlers take typed input and return typed
//! output or an `ApiError`; the wire formats belong to `skiff-proto`, the state to `skiff-store`.
//!
//! It never renders a wire format by hand and never holds state outside the store (a restart loses
//! nothing that was acknowledged).

pub mod auth;
pub mod context;
mod controllers;
pub mod credentials;
mod ec2;
mod ecr;
mod ecs;
mod elbv2;
mod lb;
pub mod metadata;
mod records;
pub mod registry_auth;
pub mod router;
mod server;
mod services;
mod sts;
mod tasks;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use credentials::Credentials;

/// Everything `skiff server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the API listens; port 0 picks a free port (the bound address is printed).
    pub listen: SocketAddr,
    /// The data directory: the store, the generated root credentials.
    pub data_dir: PathBuf,
    pub account_id: String,
    pub region: String,
    /// Root credentials from the environment; generated and kept in the data directory when `None`.
    pub root_credentials: Option<Credentials>,
    /// The host[:port] image references and `repositoryUri`s name for this registry; the bound address
    /// (127.0.0.1 for an unspecified IP) when `None`.
    pub registry_host: Option<String>,
    /// The default VPC's block (a /16; its first two /20s are the default subnets tasks get addresses
    /// from). Fixed when the region's default VPC is first created.
    pub vpc_cidr: String,
    /// The /16 of 127.0.0.0/8 load balancers get their addresses (and DNS names) from.
    pub lb_cidr: String,
    /// The OCI runtime that runs containers (crun by default, runc selectable).
    pub oci_runtime: skiff_agent::runtime::OciRuntime,
    /// How long STOPPED tasks stay describable (ECS: at least an hour).
    pub stopped_task_retention: std::time::Duration,
}

/// Default listen address of `skiff server`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9400";
/// Default data directory of `skiff server`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/skiff";
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
pub const DEFAULT_REGION: &str = "us-east-1";
/// How long STOPPED tasks stay describable by default (ECS keeps them at least an hour).
pub const DEFAULT_STOPPED_TASK_RETENTION: std::time::Duration = std::time::Duration::from_secs(3600);

/// Runs the all-in-one server until `shutdown` resolves. Prints `skiff server listening on http://ADDR`
/// on stdout once it accepts connections.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = skiff_store::SqliteStore::open(&config.data_dir.join("state.db"))?;
    let root = match config.root_credentials.clone() {
        Some(c) => c,
        None => {
            let (creds, generated) = credentials::load_or_generate(&config.data_dir)?;
            if generated {
                tracing::info!(
                    "generated root credentials in {}",
                    config.data_dir.join(credentials::CREDENTIALS_FILE).display()
                );
            }
            creds
        }
    };
    let scope = skiff_proto::arn::ArnScope { region: config.region.clone(), account: config.account_id.clone() };
    let mut keys = auth::KeyRing::default();
    let root_caller = context::Caller {
        access_key_id: root.access_key_id.clone(),
        account: config.account_id.clone(),
        arn: scope.iam("root"),
        user_id: config.account_id.clone(),
    };
    keys.insert(
        root.access_key_id.clone(),
        auth::KeyEntry {
            secret_access_key: root.secret_access_key.clone(),
            session_token: None,
            caller: root_caller.clone(),
        },
    );
    let agent = open_agent(&config.data_dir, config.oci_runtime).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let registry_hosts = skiff_model::ecr::RegistryHosts {
        registry_host: config.registry_host.clone().unwrap_or_else(|| {
            let ip = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
            std::net::SocketAddr::new(ip, addr.port()).to_string()
        }),
        account: config.account_id.clone(),
        region: config.region.clone(),
    };
    let store: std::sync::Arc<dyn skiff_store::Store> = std::sync::Arc::new(store);
    ec2::ensure_default_vpc(store.as_ref(), &scope, &config.vpc_cidr).await.context("cannot create the default VPC")?;
    let registry = skiff_registry::Registry::open(
        skiff_registry::RegistryConfig {
            root: config.data_dir.join("registry"),
            hosts: registry_hosts.clone(),
            upload_ttl: std::time::Duration::from_secs(3600),
        },
        store.clone(),
    )?;
    let state = std::sync::Arc::new(context::AppState {
        store,
        scope,
        keys,
        registry,
        registry_tokens: registry_auth::TokenKey::load_or_generate(&config.data_dir)?,
        registry_hosts,
        task_wake: Default::default(),
        service_wake: Default::default(),
        lb: skiff_lb::LoadBalancer::new(),
        lb_wake: Default::default(),
        lb_block: skiff_model::elbv2::parse_lb_block(&config.lb_cidr).ok_or_else(|| {
            anyhow::anyhow!(
                "load balancer block {} must be a /16 of 127.0.0.0/8 such as 127.200.0.0/16",
                config.lb_cidr
            )
        })?,
        cluster_gate: Default::default(),
        stopped_task_retention_ms: i64::try_from(config.stopped_task_retention.as_millis()).unwrap_or(i64::MAX),
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", credentials::profile_text(&root, &config.region, addr))?;
    writeln!(out, "skiff server listening on http://{addr}")?;
    out.flush()?;
    drop(out);
    controllers::spawn_all(state.clone());
    tokio::spawn(services::ServiceController::new(state.clone()).run());
    tokio::spawn(lb::LbController::new(state.clone()).run());
    let metadata = metadata::MetadataService::new(state.clone(), metadata::load_or_generate_key(&config.data_dir)?)
        .with_agent(agent.clone());
    tokio::spawn(tasks::TaskController::new(state.clone(), agent, metadata, addr, root_caller).run());
    server::run(listener, state, shutdown).await;
    Ok(())
}

/// The node agent under `DATA_DIR/agent`. Its nftables table is named after the data directory, so that
/// servers with different data directories on one host (tests) never rewrite each other's rules.
pub async fn open_agent(
    data_dir: &std::path::Path,
    oci_runtime: skiff_agent::runtime::OciRuntime,
) -> anyhow::Result<std::sync::Arc<skiff_agent::task::Agent>> {
    use sha2::Digest as _;
    // Absolute paths only: conmon and crun run in other working directories than the server's.
    let canonical = std::fs::canonicalize(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot resolve the data directory {}: {e}", data_dir.display()))?;
    let root = canonical.join("agent");
    let mut config = skiff_agent::task::AgentConfig::new(&root);
    config.runtime.runtime = oci_runtime;
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    config.network.nft_table = format!("skiff_{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]);
    skiff_agent::task::Agent::open(config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot start the container agent in {}: {e} (Skiff runs tasks as root with crun, conmon and nftables \
             installed: `make deps`)",
            root.display()
        )
    })
}
