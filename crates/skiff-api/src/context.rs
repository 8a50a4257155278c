//! What every handler gets: the shared state and who is calling.

use skiff_proto::arn::ArnScope;
use skiff_store::Store;
use std::sync::Arc;

/// The server's shared state.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub scope: ArnScope,
    pub keys: crate::auth::KeyRing,
    pub registry: skiff_registry::Registry,
    pub registry_tokens: crate::registry_auth::TokenKey,
    pub registry_hosts: skiff_model::ecr::RegistryHosts,
    /// Wakes the task controller after a handler wrote a task record (RunTask, StopTask).
    pub task_wake: Arc<tokio::sync::Notify>,
    /// The load balancers' data plane (listeners on the node), fed from the ELBv2 records by `lb.rs`.
    pub lb: Arc<skiff_lb::LoadBalancer>,
    /// The /16 of 127.0.0.0/8 load balancer addresses come from (its network address).
    pub lb_block: std::net::Ipv4Addr,
    /// Wakes the load balancer controller after an ELBv2 record was written.
    pub lb_wake: Arc<tokio::sync::Notify>,
    /// Wakes the service controller after a service record was written or a service's task changed.
    pub service_wake: Arc<tokio::sync::Notify>,
    /// RunTask (read) against DeleteCluster (write): a cluster is never deleted between its task count and
    /// a RunTask's commit. The store is embedded, so one process holds every writer.
    pub cluster_gate: tokio::sync::RwLock<()>,
    /// How long STOPPED tasks stay describable.
    pub stopped_task_retention_ms: i64,
}

/// The authenticated principal of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

/// Handler context: state, caller and the request id of this call.
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<AppState>,
    pub caller: Caller,
    pub request_id: String,
}

impl Ctx {
    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    pub fn scope(&self) -> &ArnScope {
        &self.state.scope
    }
}

/// Wall-clock seconds since the epoch.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}

/// Wall-clock milliseconds since the epoch, the precision records keep.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
