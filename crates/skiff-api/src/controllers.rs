//! Background reconcilers of the all-in-one server. Each holds no state of its own (everything it needs is
//! in the store), so stopping or restarting the server at any point loses nothing.

use crate::context::AppState;
use std::sync::Arc;
use std::time::Duration;

/// How often the registry housekeeping runs: lifecycle policies, then garbage collection.
pub const REGISTRY_HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(300);

/// Starts every controller on the current runtime.
pub fn spawn_all(state: Arc<AppState>) {
    tokio::spawn(registry_housekeeping(state.clone()));
    tokio::spawn(task_housekeeping(state));
}

/// Applies every repository's lifecycle policy, then collects unreferenced blobs (the collector keeps
/// blobs of pushes still in progress), every [`REGISTRY_HOUSEKEEPING_PERIOD`].
async fn registry_housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(REGISTRY_HOUSEKEEPING_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        match crate::ecr::lifecycle::apply_lifecycle_policies(&state).await {
            Ok(r) if r.images_expired > 0 => {
                tracing::info!(
                    repositories = r.repositories_evaluated,
                    images = r.images_expired,
                    "lifecycle policies expired images"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("lifecycle policies not applied: {e}"),
        }
        match state.registry.collect_garbage().await {
            Ok(r) if r.blobs_removed > 0 => {
                tracing::info!(blobs = r.blobs_removed, bytes = r.bytes_freed, "registry garbage collected")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("registry garbage collection failed: {e}"),
        }
    }
}

/// How often stopped tasks past their retention (and expired RunTask client tokens) are removed.
pub const TASK_HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(60);

/// Removes STOPPED tasks older than the server's retention (`--stopped-task-retention`, default
/// [`crate::DEFAULT_STOPPED_TASK_RETENTION`]) every [`TASK_HOUSEKEEPING_PERIOD`].
async fn task_housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(TASK_HOUSEKEEPING_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = crate::context::now_millis();
        let retention = state.stopped_task_retention_ms;
        match crate::ecs::tasks::purge_stopped(state.store.as_ref(), now, retention).await {
            Ok(n) if n > 0 => tracing::info!(tasks = n, "purged stopped tasks"),
            Ok(_) => {}
            Err(e) => tracing::warn!("stopped tasks not purged: {e}"),
        }
    }
}

/// After a manifest push, the repository's lifecycle policy runs at once (ECR evaluates on push too).
pub fn after_manifest_push(state: Arc<AppState>, repository: String) {
    tokio::spawn(async move {
        if let Err(e) = crate::ecr::lifecycle::apply_lifecycle_policy(&state, &repository).await {
            tracing::warn!(repository, "lifecycle policy not applied after push: {e}");
        }
    });
}
