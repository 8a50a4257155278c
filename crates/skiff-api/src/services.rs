//! The service controller: keeps each ECS service's tasks what its record asks for (DESIGN.md §2: desired
//! against observed, idempotent, crash-safe).
//!
//! Each pass reads every service record and the task records of its cluster, decides with the pure
//! [`plan`] which tasks to start and stop and how the deployments move on (rolling updates within
//! minimumHealthyPercent / maximumPercent, the circuit breaker and its rollback, back-off of tasks that keep
//! failing), and commits all of it in one transaction that compares the service record and every task
//! record it stops. A crash therefore leaves either the whole decision or none of it, and the next pass
//! (after a restart too) decides again from the records alone: no task is started twice or forgotten.
//! Passes run when an API handler or the task controller wakes the controller, and every second.

use crate::context::{now_millis, AppState};
use crate::ecs::keys as ecs_keys;
use crate::ecs::task_definitions::{parse_task_definition_arn, TaskDefinitionRecord};
use crate::ecs::tasks::{check_overrides, spread_over_providers, LaunchTemplate};
use crate::records::{encode, load, load_all, load_all_rev, store_error};
use skiff_model::elbv2::{keys as elb_keys, TargetGroupRecord, TargetRecord};
use skiff_model::service::{
    self as model, circuit_breaker_threshold, keys, Deployment, ServiceDeploymentRecord, ServiceRecord,
};
use skiff_model::tag::Tag;
use skiff_model::task::{keys as task_keys, stop_code, AssignPublicIp, PropagateTags, TaskOverride, TaskRecord};
use skiff_model::vpc::{self, Subnet};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often services are reconciled without being woken (back-off timers, health grace periods).
const RESYNC: Duration = Duration::from_secs(1);
/// A task that ends by itself within this long of starting counts as failed (back-off, circuit breaker).
pub const FAILURE_WINDOW_MS: i64 = 10_000;
/// Consecutive failures after which starts are delayed, and the longest delay.
const BACKOFF_AFTER: i32 = 3;
const MAX_BACKOFF_MS: i64 = 300_000;
/// `stoppedReason` of a task the scheduler replaces because it failed its container health checks.
pub const HEALTH_STOP_REASON: &str = "Task failed container health checks";
/// The start of the `stoppedReason` of a task replaced because its load balancer targets are unhealthy.
pub const ELB_STOP_REASON: &str = "Task failed ELB health checks";
/// Most task ids one "has started/stopped N tasks" event names.
const TASKS_PER_EVENT: usize = 10;

/// What [`plan`] needs to know of a task of the service.
#[derive(Debug, Clone, Default)]
pub struct TaskView {
    pub id: String,
    /// The deployment that started it (its `startedBy`).
    pub deployment: String,
    pub last_status: String,
    pub desired_status: String,
    pub health_status: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub capacity_provider: Option<String>,
    pub subnet_id: String,
    /// Set once the scheduler deregistered the task from its target groups to stop it (DEACTIVATING).
    pub draining_since: Option<i64>,
    /// What the load balancers' data plane says of the task's targets (all `false` for a service without
    /// load balancers).
    pub targets: Targets,
}

/// The health of a task's targets in its service's target groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    /// The service has load balancers: the task counts as healthy only once all its targets are.
    pub balanced: bool,
    pub healthy: bool,
    pub unhealthy: bool,
    /// A draining task's targets are gone from the data plane (or the deregistration delay passed).
    pub drained: bool,
}

impl TaskView {
    pub fn of(r: &TaskRecord) -> TaskView {
        let t = &r.task;
        TaskView {
            id: t.id().to_string(),
            deployment: t.started_by.clone().unwrap_or_default(),
            last_status: t.last_status.clone(),
            desired_status: t.desired_status.clone(),
            health_status: t.health_status.clone(),
            created_at: t.created_at.unwrap_or(0),
            started_at: t.started_at,
            ended_at: t.execution_stopped_at.or(t.stopping_at).or(t.stopped_at),
            stop_code: t.stop_code.clone(),
            stopped_reason: t.stopped_reason.clone(),
            capacity_provider: t.capacity_provider_name.clone(),
            subnet_id: r.subnet_id.clone(),
            draining_since: r.draining_since,
            targets: Targets::default(),
        }
    }

    /// Desired RUNNING and not ended: what the service counts as its tasks.
    fn live(&self) -> bool {
        self.desired_status == "RUNNING" && self.last_status != "STOPPED" && self.draining_since.is_none()
    }

    /// Being drained from its target groups before the scheduler stops it.
    fn leaving(&self) -> bool {
        self.desired_status == "RUNNING" && self.last_status != "STOPPED" && self.draining_since.is_some()
    }

    /// RUNNING or pending (PROVISIONING, PENDING, ACTIVATING): what runningCount and pendingCount count.
    fn counted(&self) -> bool {
        self.last_status == "RUNNING" || skiff_model::task::PENDING_STATUSES.contains(&self.last_status.as_str())
    }

    fn running(&self) -> bool {
        self.live() && self.last_status == "RUNNING"
    }

    /// Running, and passing its container health checks when its deployment has any.
    fn healthy(&self, health_checked: bool) -> bool {
        self.running()
            && (!health_checked || self.health_status.as_deref() == Some("HEALTHY"))
            && (!self.targets.balanced || self.targets.healthy)
    }

    /// Whether the task ended as a failure: it stopped by itself before it ran for [`FAILURE_WINDOW_MS`]
    /// (or never started), or the scheduler replaced it for failing its health checks.
    fn failed(&self, now: i64) -> bool {
        if self.live() || self.leaving() {
            return false;
        }
        if self.stopped_reason.as_deref().is_some_and(|r| r == HEALTH_STOP_REASON || r.starts_with(ELB_STOP_REASON)) {
            return true;
        }
        let requested = matches!(
            self.stop_code.as_deref(),
            Some(stop_code::USER_INITIATED) | Some(stop_code::SERVICE_SCHEDULER_INITIATED)
        );
        if requested {
            return false;
        }
        match self.started_at {
            None => true,
            Some(started) => self.ended_at.unwrap_or(now) - started < FAILURE_WINDOW_MS,
        }
    }
}

/// Why the scheduler stops a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopWhy {
    /// Scale-in, a rolling deployment or the service's deletion, on behalf of this deployment.
    Scaling(String),
    /// Failed its container health checks after the grace period.
    Unhealthy,
    /// Its targets failed the load balancer's health checks after the grace period.
    UnhealthyTargets,
}

impl StopWhy {
    pub fn reason(&self) -> String {
        match self {
            StopWhy::Scaling(d) => format!("Scaling activity initiated by (deployment {d})"),
            StopWhy::Unhealthy => HEALTH_STOP_REASON.to_string(),
            StopWhy::UnhealthyTargets => format!("{ELB_STOP_REASON} in the service's target groups"),
        }
    }
}

/// What one pass decided beyond the record changes [`plan`] makes in place.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Tasks to start for the PRIMARY deployment.
    pub launch: usize,
    pub stop: Vec<(String, StopWhy)>,
    /// Tasks to deregister from their target groups (DEACTIVATING) before they are stopped.
    pub drain: Vec<String>,
}

/// Event ids: UUIDs, as ECS's.
fn event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new deployment id: `ecs-svc/` and 19 random digits, as ECS makes them.
pub fn new_deployment_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    }
    let n = u64::from_le_bytes(b) % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

/// Decides one pass for service `r` with its tasks `tasks` at `now`. `health_checked(deployment id)` says
/// whether that deployment's tasks have container health checks (and count as healthy only once they
/// pass). Changes the record in place (deployments, events, history, back-off) and returns the tasks to
/// start and stop. Deterministic apart from event and deployment ids.
pub fn plan(r: &mut ServiceRecord, tasks: &[TaskView], now: i64, health_checked: &dyn Fn(&str) -> bool) -> Decision {
    let mut out = Decision::default();
    if r.service.status == "INACTIVE" || r.service.deployments.is_empty() {
        return out;
    }
    let name = r.service.service_name.clone();
    let draining = r.service.status == "DRAINING";
    let desired = if draining { 0 } else { r.service.desired_count.max(0) };
    let config = r.service.deployment_configuration.clone();
    let grace_ms = i64::from(r.service.health_check_grace_period_seconds.unwrap_or(0)) * 1000;
    let mut stopped: Vec<String> = Vec::new();

    // Tasks failing their health checks past the grace period are replaced, whatever the deployment.
    for t in tasks {
        let past_grace = now - t.started_at.unwrap_or(now) >= grace_ms;
        let unhealthy = t.running() && t.health_status.as_deref() == Some("UNHEALTHY") && health_checked(&t.deployment);
        if unhealthy && past_grace {
            r.event(event_id(), now, format!("(service {name}) (task {}) failed container health checks.", t.id));
            out.stop.push((t.id.clone(), StopWhy::Unhealthy));
            stopped.push(t.id.clone());
        } else if t.running() && t.targets.balanced && t.targets.unhealthy && past_grace {
            r.event(event_id(), now, format!("(service {name}) (task {}) failed ELB health checks.", t.id));
            out.stop.push((t.id.clone(), StopWhy::UnhealthyTargets));
            stopped.push(t.id.clone());
        }
    }
    // Replaced for their health: failures of their deployments.
    let replaced = stopped.clone();
    // Tasks drained from their target groups are stopped now.
    for t in tasks.iter().filter(|t| t.leaving() && t.targets.drained) {
        let deployment = r.service.deployments.first().map(|d| d.id.clone()).unwrap_or_default();
        out.stop.push((t.id.clone(), StopWhy::Scaling(deployment)));
        stopped.push(t.id.clone());
    }
    let is_live = |t: &TaskView, stopped: &[String]| t.live() && !stopped.contains(&t.id);

    // Failed tasks per deployment (kept at their highest: old task records are purged) and the back-off.
    let mut new_failures = 0;
    for d in &mut r.service.deployments {
        let failed =
            tasks.iter().filter(|t| t.deployment == d.id && (t.failed(now) || replaced.contains(&t.id))).count();
        let failed = (failed as i32).max(d.failed_tasks);
        new_failures += failed - d.failed_tasks;
        if failed != d.failed_tasks {
            d.failed_tasks = failed;
            d.updated_at = Some(now);
        }
    }
    for i in 0..r.service.deployments.len() {
        let (id, failed) = (r.service.deployments[i].id.clone(), r.service.deployments[i].failed_tasks);
        if let Some(h) = r.history.iter_mut().find(|h| h.deployment_id == id) {
            h.failed_tasks = failed;
        }
    }
    if new_failures > 0 {
        let before = r.launch_failures;
        r.launch_failures += new_failures;
        if r.launch_failures >= BACKOFF_AFTER {
            let exp = (r.launch_failures - BACKOFF_AFTER).min(20) as u32;
            r.next_launch_at = now + (1000i64 << exp).min(MAX_BACKOFF_MS);
            if before < BACKOFF_AFTER {
                r.event(
                    event_id(),
                    now,
                    format!(
                        "(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
                    ),
                );
            }
        }
    }

    // The circuit breaker: the PRIMARY deployment fails once enough of its tasks failed.
    let breaker = config.breaker();
    let primary = &r.service.deployments[0];
    if breaker.enable
        && primary.rollout_state.as_deref() == Some("IN_PROGRESS")
        && primary.failed_tasks >= circuit_breaker_threshold(desired)
    {
        trip_breaker(r, now, breaker.rollback);
    }

    // Counts after the health replacements.
    let primary_id = r.service.deployments[0].id.clone();
    let live_of = |id: &str, stopped: &[String]| {
        tasks.iter().filter(|t| t.deployment == id && is_live(t, stopped)).count() as i32
    };
    let known: Vec<String> = r.service.deployments.iter().map(|d| d.id.clone()).collect();
    let live_total = tasks.iter().filter(|t| is_live(t, &stopped)).count() as i32;
    let primary_live = live_of(&primary_id, &stopped);

    // Start tasks for the PRIMARY deployment, within maximumPercent.
    let max_live = (i64::from(desired) * i64::from(config.maximum()) / 100).max(i64::from(desired)) as i32;
    let primary = &r.service.deployments[0];
    let may_start = !draining && primary.rollout_state.as_deref() != Some("FAILED") && now >= r.next_launch_at;
    if may_start {
        out.launch = (desired - primary_live).min(max_live - live_total).max(0) as usize;
    }

    // Scale-in of the PRIMARY deployment: pending tasks first, then unhealthy ones, then the newest.
    let scaling = StopWhy::Scaling(primary_id.clone());
    let mut healthy_total =
        tasks.iter().filter(|t| is_live(t, &stopped) && t.healthy(health_checked(&t.deployment))).count() as i32;
    if primary_live > desired {
        let mut mine: Vec<&TaskView> =
            tasks.iter().filter(|t| t.deployment == primary_id && is_live(t, &stopped)).collect();
        let hc = health_checked(&primary_id);
        mine.sort_by_key(|t| (t.running(), t.healthy(hc), std::cmp::Reverse(t.created_at)));
        for t in mine.into_iter().take((primary_live - desired) as usize) {
            if t.healthy(hc) {
                healthy_total -= 1;
            }
            retire(&mut out, t, &scaling);
            stopped.push(t.id.clone());
        }
    }

    // Tasks of older deployments (oldest first): those not healthy go at once, healthy ones only as far as
    // minimumHealthyPercent of the desired count stays healthy.
    let min_healthy = ((i64::from(desired) * i64::from(config.minimum_healthy()) + 99) / 100) as i32;
    let mut old: Vec<&TaskView> = tasks.iter().filter(|t| t.deployment != primary_id && is_live(t, &stopped)).collect();
    let age = |t: &TaskView| known.iter().position(|d| *d == t.deployment).unwrap_or(usize::MAX);
    old.sort_by_key(|t| (t.healthy(health_checked(&t.deployment)), std::cmp::Reverse(age(t)), t.created_at));
    for t in old {
        if t.healthy(health_checked(&t.deployment)) {
            if healthy_total <= min_healthy {
                break;
            }
            healthy_total -= 1;
        }
        retire(&mut out, t, &scaling);
        stopped.push(t.id.clone());
    }

    // Older deployments with no task running or pending are finished (as ECS counts them: tasks on their
    // way out, DEACTIVATING to DEPROVISIONING, no longer count). A FAILED one stays listed until the
    // deployment that replaced it completes, so that its failure can be seen.
    let gone = |id: &str| tasks.iter().all(|t| t.deployment != id || (!t.counted() && !t.leaving()));
    let primary_in_progress = r.service.deployments[0].rollout_state.as_deref() == Some("IN_PROGRESS");
    r.service.deployments.retain(|d| {
        d.id == primary_id || !gone(&d.id) || (primary_in_progress && d.rollout_state.as_deref() == Some("FAILED"))
    });

    // The rollout completes when no older deployment has tasks left and all the PRIMARY's are healthy.
    let hc = health_checked(&primary_id);
    let primary_healthy =
        tasks.iter().filter(|t| t.deployment == primary_id && is_live(t, &stopped) && t.healthy(hc)).count() as i32;
    let primary_live = live_of(&primary_id, &stopped);
    let others_gone = r.service.deployments.iter().all(|d| d.id == primary_id || gone(&d.id));
    let settled = others_gone && out.launch == 0 && primary_live == desired && primary_healthy == desired;
    if settled {
        r.service.deployments.truncate(1);
    }
    let primary = &mut r.service.deployments[0];
    if settled && primary.rollout_state.as_deref() == Some("IN_PROGRESS") && !draining {
        primary.rollout_state = Some("COMPLETED".into());
        primary.rollout_state_reason = Some(format!("ECS deployment {primary_id} completed."));
        primary.updated_at = Some(now);
        let completed = primary.clone();
        r.last_completed = Some(completed);
        r.launch_failures = 0;
        r.next_launch_at = 0;
        if let Some(h) = r.history_of(&primary_id) {
            h.status = if h.rollback_to.as_deref() == Some(primary_id.as_str()) {
                "ROLLBACK_SUCCESSFUL".into()
            } else {
                "SUCCESSFUL".into()
            };
            h.finished_at = Some(now);
            h.updated_at = now;
        }
        r.event(event_id(), now, format!("(service {name}) (deployment {primary_id}) deployment completed."));
    }

    // Steady state: said once each time the service gets there.
    let steady = settled && out.stop.is_empty() && out.drain.is_empty();
    if steady && !r.steady {
        r.launch_failures = 0;
        if !draining {
            r.event(event_id(), now, format!("(service {name}) has reached a steady state."));
        }
    }
    r.steady = steady;

    // A draining service with no task running or pending is INACTIVE (the task controller finishes
    // stopping what is on its way out).
    let all_ended = tasks.iter().all(|t| t.desired_status != "RUNNING" && !t.counted());
    if draining && out.stop.is_empty() && out.drain.is_empty() && all_ended {
        r.service.status = "INACTIVE".into();
        r.inactive_at = Some(now);
        for d in &mut r.service.deployments {
            d.status = "INACTIVE".into();
        }
    }
    out
}

/// A task the scheduler takes out: a task registered in target groups is drained first (DEACTIVATING), the
/// others are stopped at once.
fn retire(out: &mut Decision, t: &TaskView, why: &StopWhy) {
    if t.targets.balanced && t.last_status == "RUNNING" {
        out.drain.push(t.id.clone());
    } else {
        out.stop.push((t.id.clone(), why.clone()));
    }
}

/// The PRIMARY deployment failed its circuit breaker: it becomes FAILED and, with rollback and a completed
/// deployment to return to, a new PRIMARY deployment of that configuration starts.
fn trip_breaker(r: &mut ServiceRecord, now: i64, rollback: bool) {
    let name = r.service.service_name.clone();
    let failed = &mut r.service.deployments[0];
    let failed_id = failed.id.clone();
    failed.rollout_state = Some("FAILED".into());
    failed.rollout_state_reason = Some("ECS deployment circuit breaker: tasks failed to start.".into());
    failed.updated_at = Some(now);
    r.event(
        event_id(),
        now,
        format!("(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start."),
    );
    let target = r.last_completed.clone().filter(|d| rollback && d.id != failed_id);
    let Some(good) = target else {
        if let Some(h) = r.history_of(&failed_id) {
            h.status = "STOPPED".into();
            h.status_reason =
                Some("Service deployment stopped: the deployment circuit breaker threshold was exceeded.".into());
            h.stopped_at = Some(now);
            h.updated_at = now;
            h.breaker_triggered = true;
        }
        return;
    };
    r.service.deployments[0].status = "ACTIVE".into();
    let id = new_deployment_id();
    let back = Deployment {
        id: id.clone(),
        status: "PRIMARY".into(),
        desired_count: r.service.desired_count,
        pending_count: 0,
        running_count: 0,
        failed_tasks: 0,
        created_at: Some(now),
        updated_at: Some(now),
        rollout_state: Some("IN_PROGRESS".into()),
        rollout_state_reason: Some(format!(
            "ECS deployment circuit breaker: rolling back to deploymentId {}.",
            good.id
        )),
        ..good.clone()
    };
    r.service.task_definition = good.task_definition.clone();
    r.service.deployments.insert(0, back);
    r.launch_failures = 0;
    r.next_launch_at = 0;
    r.steady = false;
    if let Some(h) = r.history_of(&failed_id) {
        h.status = "ROLLBACK_IN_PROGRESS".into();
        h.status_reason =
            Some("Service deployment rolled back because the circuit breaker threshold was exceeded.".into());
        h.rollback_to = Some(id.clone());
        h.rollback_started_at = Some(now);
        h.updated_at = now;
        h.breaker_triggered = true;
    }
    r.event(event_id(), now, format!("(service {name}) rolling back to deployment {}.", good.id));
}

/// The service as described: the record with its counts taken from its tasks (`lastStatus` RUNNING →
/// running, PROVISIONING/PENDING/ACTIVATING → pending), so they agree with DescribeTasks.
pub fn render(r: &ServiceRecord, tasks: &[&TaskRecord]) -> model::Service {
    let mut s = r.service.clone();
    let count = |deployment: Option<&str>, statuses: &[&str]| {
        tasks
            .iter()
            .filter(|t| deployment.is_none_or(|d| t.task.started_by.as_deref() == Some(d)))
            .filter(|t| statuses.contains(&t.task.last_status.as_str()))
            .count() as i32
    };
    let pending = skiff_model::task::PENDING_STATUSES;
    s.running_count = count(None, &["RUNNING"]);
    s.pending_count = count(None, &pending);
    let desired = if s.status == "ACTIVE" { s.desired_count } else { 0 };
    for d in &mut s.deployments {
        d.running_count = count(Some(&d.id), &["RUNNING"]);
        d.pending_count = count(Some(&d.id), &pending);
        d.desired_count = if d.status == "PRIMARY" { desired } else { d.running_count + d.pending_count };
    }
    s
}

/// Runs [`plan`] on every service, for ever.
pub struct ServiceController {
    state: Arc<AppState>,
}

/// Task definitions by ARN, loaded once per pass.
type Definitions = HashMap<String, Option<TaskDefinitionRecord>>;

impl ServiceController {
    pub fn new(state: Arc<AppState>) -> ServiceController {
        ServiceController { state }
    }

    pub async fn run(self) {
        // A target turning healthy or finishing its draining moves deployments on.
        let mut health = self.state.lb.watch_health();
        let wake = self.state.service_wake.clone();
        tokio::spawn(async move {
            while health.changed().await.is_ok() {
                wake.notify_one();
            }
        });
        loop {
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "service reconciliation failed");
            }
            tokio::select! {
                () = self.state.service_wake.notified() => {}
                () = tokio::time::sleep(RESYNC) => {}
            }
        }
    }

    async fn reconcile(&self) -> Result<(), ApiError> {
        let store = self.state.store.as_ref();
        let services = load_all_rev::<ServiceRecord>(store, keys::SERVICES).await?;
        let now = now_millis();
        let mut tasks_by_cluster: HashMap<String, Vec<(String, i64, TaskRecord)>> = HashMap::new();
        let mut definitions = Definitions::new();
        for (key, record, rev) in services {
            let cluster = key.strip_prefix(keys::SERVICES).and_then(|k| k.split_once('/')).map(|(c, _)| c.to_string());
            let Some(cluster) = cluster else { continue };
            if record.service.status == "INACTIVE" {
                let expired =
                    record.inactive_at.unwrap_or(0).saturating_add(self.state.stopped_task_retention_ms) < now;
                if expired {
                    store.txn(Txn::new().when(&key, rev).delete(&key)).await.map_err(store_error)?;
                }
                continue;
            }
            if !tasks_by_cluster.contains_key(&cluster) {
                let tasks = self.tasks_of(&cluster).await?;
                tasks_by_cluster.insert(cluster.clone(), tasks);
            }
            let tasks: Vec<&(String, i64, TaskRecord)> = tasks_by_cluster[&cluster]
                .iter()
                .filter(|(_, _, t)| t.service_name.as_deref() == Some(record.name()))
                .collect();
            if let Err(e) = self.reconcile_one(&cluster, &key, rev, record, &tasks, &mut definitions).await {
                tracing::warn!(service = key, error = %e, "service not reconciled");
            }
        }
        Ok(())
    }

    async fn tasks_of(&self, cluster: &str) -> Result<Vec<(String, i64, TaskRecord)>, ApiError> {
        let tasks = load_all_rev::<TaskRecord>(self.state.store.as_ref(), &task_keys::cluster_prefix(cluster)).await?;
        Ok(tasks.into_iter().map(|(key, t, rev)| (key, rev, t)).collect())
    }

    async fn definition<'a>(
        &self,
        definitions: &'a mut Definitions,
        arn: &str,
    ) -> Result<Option<&'a TaskDefinitionRecord>, ApiError> {
        if !definitions.contains_key(arn) {
            let record = match parse_task_definition_arn(&self.state.scope, arn) {
                Ok((family, revision)) => load::<TaskDefinitionRecord>(
                    self.state.store.as_ref(),
                    &ecs_keys::task_definition(&family, revision),
                )
                .await?
                .map(|(r, _)| r),
                Err(_) => None,
            };
            definitions.insert(arn.to_string(), record);
        }
        Ok(definitions[arn].as_ref())
    }

    async fn reconcile_one(
        &self,
        cluster: &str,
        key: &str,
        rev: i64,
        record: ServiceRecord,
        tasks: &[&(String, i64, TaskRecord)],
        definitions: &mut Definitions,
    ) -> Result<(), ApiError> {
        let now = now_millis();
        let mut checked = HashMap::new();
        for d in &record.service.deployments {
            let hc = self.definition(definitions, &d.task_definition).await?.is_some_and(|td| {
                td.task_definition.containers().iter().any(|c| c.essential != Some(false) && c.health_check.is_some())
            });
            checked.insert(d.id.clone(), hc);
        }
        let balancers = self.balancers(&record).await?;
        let health = if balancers.is_empty() { Default::default() } else { self.state.lb.target_health() };
        let views: Vec<TaskView> = tasks
            .iter()
            .map(|(_, _, t)| {
                let mut v = TaskView::of(t);
                v.targets = targets_of(t, &balancers, &health, now);
                v
            })
            .collect();
        let mut next = record.clone();
        let decision = plan(&mut next, &views, now, &|d| checked.get(d).copied().unwrap_or(false));

        let mut txn = Txn::new().when(key, rev);
        let name = next.service.service_name.clone();
        let mut started = Vec::new();
        if decision.launch > 0 {
            // Tasks this pass takes out no longer hold their subnet or capacity provider.
            let leaving =
                |t: &&TaskView| decision.stop.iter().any(|(id, _)| *id == t.id) || decision.drain.contains(&t.id);
            let staying: Vec<TaskView> = views.iter().filter(|t| !leaving(t)).cloned().collect();
            match self.launch(cluster, &next, &staying, decision.launch, definitions, now).await {
                Ok(records) => started = records,
                Err(why) => {
                    let message = format!("(service {name}) was unable to place a task: {why}");
                    if next.service.events.first().is_none_or(|e| e.message != message) {
                        next.event(event_id(), now, message);
                    }
                }
            }
        }
        for t in &started {
            let k = task_keys::task(cluster, t.task.id());
            txn = txn.when(&k, 0).put(k, encode(t)?);
        }
        for chunk in started.chunks(TASKS_PER_EVENT) {
            let ids: Vec<String> = chunk.iter().map(|t| format!("(task {})", t.task.id())).collect();
            next.event(
                event_id(),
                now,
                format!("(service {name}) has started {} tasks: {}.", chunk.len(), ids.join(" ")),
            );
        }
        let mut stopped_ids = Vec::new();
        for (id, why) in &decision.stop {
            let Some((k, task_rev, t)) = tasks.iter().map(|e| (&e.0, e.1, &e.2)).find(|(_, _, t)| t.task.id() == id)
            else {
                continue;
            };
            let mut t = t.clone();
            t.task.desired_status = "STOPPED".into();
            t.task.stop_code.get_or_insert_with(|| stop_code::SERVICE_SCHEDULER_INITIATED.to_string());
            t.task.stopped_reason.get_or_insert_with(|| why.reason());
            t.task.version += 1;
            txn = txn.when(k, task_rev).put(k.clone(), encode(&t)?);
            stopped_ids.push(format!("(task {id})"));
        }
        for chunk in stopped_ids.chunks(TASKS_PER_EVENT) {
            next.event(
                event_id(),
                now,
                format!("(service {name}) has stopped {} running tasks: {}.", chunk.len(), chunk.join(" ")),
            );
        }
        // Tasks to drain: DEACTIVATING, out of their target groups; they stop once drained.
        let mut drained_ids = Vec::new();
        for id in &decision.drain {
            let Some((k, task_rev, t)) = tasks.iter().map(|e| (&e.0, e.1, &e.2)).find(|(_, _, t)| t.task.id() == id)
            else {
                continue;
            };
            let mut t = t.clone();
            t.draining_since = Some(now);
            if skiff_model::task::status_rank("DEACTIVATING") > skiff_model::task::status_rank(&t.task.last_status) {
                t.task.last_status = "DEACTIVATING".into();
            }
            t.task.version += 1;
            txn = txn.when(k, task_rev).put(k.clone(), encode(&t)?);
            drained_ids.push(format!("(task {id})"));
        }
        for chunk in drained_ids.chunks(TASKS_PER_EVENT) {
            next.event(
                event_id(),
                now,
                format!(
                    "(service {name}) has begun draining connections on {} tasks: {}.",
                    chunk.len(),
                    chunk.join(" ")
                ),
            );
        }
        // The target groups hold exactly the service's tasks that are up and not on their way out.
        let leaving: Vec<&str> =
            decision.stop.iter().map(|(id, _)| id.as_str()).chain(decision.drain.iter().map(String::as_str)).collect();
        let members: Vec<&TaskRecord> = tasks
            .iter()
            .map(|e| &e.2)
            .filter(|t| t.task.desired_status == "RUNNING" && t.draining_since.is_none())
            .filter(|t| matches!(t.task.last_status.as_str(), "ACTIVATING" | "RUNNING"))
            .filter(|t| !leaving.contains(&t.task.id()))
            .collect();
        let (txn_with_targets, target_events) = self.sync_targets(txn, &record, &balancers, &members).await?;
        txn = txn_with_targets;
        let targets_changed = !target_events.is_empty();
        for message in target_events {
            next.event(event_id(), now, message);
        }
        if next == record && started.is_empty() && stopped_ids.is_empty() && drained_ids.is_empty() && !targets_changed
        {
            return Ok(());
        }
        txn = txn.put(key, encode(&next)?);
        match self.state.store.txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                if !started.is_empty() || !stopped_ids.is_empty() {
                    self.state.task_wake.notify_one();
                }
                if targets_changed {
                    self.state.lb_wake.notify_one();
                }
            }
            // Someone else changed the service or one of its tasks: decide again with what they wrote.
            TxnOutcome::Conflict => self.state.service_wake.notify_one(),
        }
        Ok(())
    }

    /// The service's target groups with the container port its tasks are registered by.
    async fn balancers(&self, r: &ServiceRecord) -> Result<Vec<(TargetGroupRecord, u16)>, ApiError> {
        let mut out = Vec::new();
        if r.service.load_balancers.is_empty() {
            return Ok(out);
        }
        let groups = load_all::<TargetGroupRecord>(self.state.store.as_ref(), elb_keys::TARGET_GROUPS).await?;
        for lb in &r.service.load_balancers {
            let found = groups.iter().find(|(_, tg)| Some(&tg.target_group_arn) == lb.target_group_arn.as_ref());
            if let (Some((_, tg)), Some(port)) = (found, lb.container_port) {
                out.push((tg.clone(), port as u16));
            }
        }
        Ok(out)
    }

    /// Adds to `txn` the target registrations and deregistrations that make the service's targets in its
    /// target groups exactly `members`' addresses (targets registered by others are left alone); returns
    /// ECS's events for them (none when nothing changes).
    async fn sync_targets(
        &self,
        mut txn: Txn,
        r: &ServiceRecord,
        balancers: &[(TargetGroupRecord, u16)],
        members: &[&TaskRecord],
    ) -> Result<(Txn, Vec<String>), ApiError> {
        let (service_arn, name) = (r.service.service_arn.as_str(), r.name());
        let mut events = Vec::new();
        for (tg, port) in balancers {
            let (mut added, mut removed) = (0, 0);
            let wanted: Vec<(String, String)> = members
                .iter()
                .filter_map(|t| task_address(t))
                .map(|ip| (elb_keys::target(&tg.id, &ip.to_string(), *port), ip.to_string()))
                .collect();
            let existing =
                load_all_rev::<TargetRecord>(self.state.store.as_ref(), &elb_keys::targets_of(&tg.id)).await?;
            for (k, ip) in &wanted {
                if !existing.iter().any(|(ek, _, _)| ek == k) {
                    let record = TargetRecord {
                        target_group_arn: tg.target_group_arn.clone(),
                        id: ip.clone(),
                        port: *port,
                        availability_zone: None,
                        registered_by: Some(service_arn.to_string()),
                    };
                    txn = txn.when(k, 0).put(k.clone(), encode(&record)?);
                    added += 1;
                }
            }
            for (k, t, rev) in &existing {
                let mine = t.registered_by.as_deref() == Some(service_arn);
                if mine && !wanted.iter().any(|(wk, _)| wk == k) {
                    txn = txn.when(k, *rev).delete(k.clone());
                    removed += 1;
                }
            }
            let group = &tg.target_group_arn;
            if added > 0 {
                events.push(format!("(service {name}) registered {added} targets in (target-group {group})"));
            }
            if removed > 0 {
                events.push(format!("(service {name}) deregistered {removed} targets in (target-group {group})"));
            }
        }
        Ok((txn, events))
    }

    /// The records of `count` new tasks of the PRIMARY deployment, spread over its subnets and capacity
    /// providers; `Err` says why none can be placed.
    async fn launch(
        &self,
        cluster: &str,
        r: &ServiceRecord,
        views: &[TaskView],
        count: usize,
        definitions: &mut Definitions,
        now: i64,
    ) -> Result<Vec<TaskRecord>, String> {
        let d = &r.service.deployments[0];
        let cluster_arn = self.state.scope.ecs(&format!("cluster/{cluster}"));
        let td_record = match self.definition(definitions, &d.task_definition).await {
            Ok(Some(td)) => td.clone(),
            Ok(None) => return Err(format!("its task definition {} does not exist.", d.task_definition)),
            Err(e) => return Err(e.message),
        };
        let td = &td_record.task_definition;
        let overrides = TaskOverride::default();
        let sizes = check_overrides(td, &overrides).map_err(|e| e.message)?;
        let vpc = d.network_configuration.as_ref().and_then(|n| n.awsvpc_configuration.as_ref());
        let Some(vpc) = vpc else { return Err("the deployment has no network configuration.".into()) };
        let mut subnets: Vec<Subnet> = Vec::new();
        for id in &vpc.subnets {
            match load::<Subnet>(self.state.store.as_ref(), &vpc::keys::subnet(id)).await {
                Ok(Some((s, _))) => subnets.push(s),
                Ok(None) => {}
                Err(e) => return Err(e.message),
            }
        }
        if subnets.is_empty() {
            return Err(format!("none of its subnets ({}) exists.", vpc.subnets.join(", ")));
        }
        let mut tags: Vec<Tag> = match r.service.propagate_tags {
            Some(PropagateTags::Service) => r.service.tags.clone(),
            Some(PropagateTags::TaskDefinition) => td_record.tags.clone(),
            _ => Vec::new(),
        };
        if r.service.enable_ecs_managed_tags {
            tags.push(Tag::new("aws:ecs:clusterName", cluster.to_string()));
            tags.push(Tag::new("aws:ecs:serviceName", r.name().to_string()));
        }
        let group = format!("service:{}", r.name());
        let security_groups = vpc.security_groups.clone().unwrap_or_default();
        let template = LaunchTemplate {
            cluster_name: cluster,
            cluster_arn: &cluster_arn,
            td,
            sizes: &sizes,
            platform: d.platform_version.as_deref().unwrap_or(crate::ecs::tasks::PLATFORM_VERSION),
            overrides: &overrides,
            security_groups: &security_groups,
            assign_public_ip: vpc.assign_public_ip.unwrap_or(AssignPublicIp::Disabled),
            group: &group,
            started_by: Some(&d.id),
            tags: &tags,
            enable_execute_command: r.service.enable_execute_command,
            service_name: Some(r.name()),
            now,
        };
        let live: Vec<&TaskView> = views.iter().filter(|t| t.live()).collect();
        let providers = match &d.capacity_provider_strategy {
            Some(strategy) if !strategy.is_empty() => {
                let mine: Vec<&&TaskView> = live.iter().filter(|t| t.deployment == d.id).collect();
                providers_for(
                    strategy,
                    &mine.iter().filter_map(|t| t.capacity_provider.clone()).collect::<Vec<_>>(),
                    count,
                )
            }
            _ => vec![None; count],
        };
        let mut per_subnet: BTreeMap<String, usize> = subnets.iter().map(|s| (s.subnet_id.clone(), 0)).collect();
        for t in &live {
            if let Some(n) = per_subnet.get_mut(&t.subnet_id) {
                *n += 1;
            }
        }
        let mut out = Vec::with_capacity(count);
        for provider in providers {
            // The subnet with the fewest of the service's tasks (the first listed on a tie).
            let subnet = subnets.iter().min_by_key(|s| per_subnet[&s.subnet_id]).expect("at least one subnet");
            *per_subnet.get_mut(&subnet.subnet_id).expect("counted") += 1;
            let launch_type =
                if provider.is_some() { "FARGATE" } else { d.launch_type.as_deref().unwrap_or("FARGATE") };
            out.push(template.task(&self.state.scope, subnet, launch_type, provider));
        }
        Ok(out)
    }
}

/// A task's address (its ENI's `privateIPv4Address`), once it has one.
fn task_address(t: &TaskRecord) -> Option<std::net::IpAddr> {
    t.task.attachments.iter().find_map(|a| a.detail("privateIPv4Address")).and_then(|ip| ip.parse().ok())
}

/// What the data plane's `health` says of task `t`'s targets in `balancers`.
fn targets_of(
    t: &TaskRecord,
    balancers: &[(TargetGroupRecord, u16)],
    health: &BTreeMap<(String, std::net::SocketAddr), skiff_lb::TargetHealth>,
    now: i64,
) -> Targets {
    if balancers.is_empty() {
        return Targets::default();
    }
    let Some(ip) = task_address(t) else {
        return Targets { balanced: true, drained: true, ..Targets::default() };
    };
    let states: Vec<Option<skiff_lb::TargetState>> = balancers
        .iter()
        .map(|(tg, port)| health.get(&(tg.id.clone(), std::net::SocketAddr::new(ip, *port))).map(|h| h.state))
        .collect();
    let delay_ms = balancers
        .iter()
        .map(|(tg, _)| {
            tg.attributes.get("deregistration_delay.timeout_seconds").and_then(|v| v.parse::<i64>().ok()).unwrap_or(300)
        })
        .max()
        .unwrap_or(300)
        * 1000;
    let gone = states.iter().all(|s| s.is_none());
    Targets {
        balanced: true,
        healthy: states.iter().all(|s| *s == Some(skiff_lb::TargetState::Healthy)),
        unhealthy: states.contains(&Some(skiff_lb::TargetState::Unhealthy)),
        drained: t.draining_since.is_some_and(|since| gone || now - since >= delay_ms),
    }
}

/// The capacity provider of each of `count` new tasks of a deployment whose live tasks run on `existing`:
/// what brings the deployment closest to the strategy's split of all its tasks.
pub fn providers_for(
    strategy: &[skiff_model::cluster::CapacityProviderStrategyItem],
    existing: &[String],
    count: usize,
) -> Vec<Option<String>> {
    let target = spread_over_providers(strategy, existing.len() + count);
    let mut have: HashMap<&str, usize> = HashMap::new();
    for p in existing {
        *have.entry(p.as_str()).or_default() += 1;
    }
    let mut out = Vec::with_capacity(count);
    for p in &target {
        match have.get_mut(p.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(Some(p.clone())),
        }
    }
    // Existing tasks off the split leave fewer slots than tasks to start: fill with the split's order.
    let mut i = 0;
    while out.len() < count {
        out.push(Some(target[i % target.len()].clone()));
        i += 1;
    }
    out.truncate(count);
    out
}

/// The service deployment history entry of a new deployment replacing `sources`.
pub fn history_entry(
    deployment: &Deployment,
    sources: Vec<(String, i32)>,
    config: &skiff_model::service::DeploymentConfiguration,
    now: i64,
) -> ServiceDeploymentRecord {
    ServiceDeploymentRecord {
        deployment_id: deployment.id.clone(),
        sources,
        status: "IN_PROGRESS".into(),
        status_reason: None,
        created_at: now,
        finished_at: None,
        stopped_at: None,
        updated_at: now,
        deployment_configuration: config.clone(),
        rollback_to: None,
        rollback_started_at: None,
        breaker_triggered: false,
        failed_tasks: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_model::cluster::CapacityProviderStrategyItem;
    use skiff_model::service::{DeploymentCircuitBreaker, DeploymentConfiguration, Service};

    const NOW: i64 = 1_800_000_000_000;

    fn deployment(id: &str, status: &str, td: &str) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            task_definition: td.into(),
            rollout_state: Some(if status == "PRIMARY" { "IN_PROGRESS" } else { "COMPLETED" }.into()),
            ..Deployment::default()
        }
    }

    fn service(desired: i32, min: i32, max: i32, deployments: Vec<Deployment>) -> ServiceRecord {
        let history = deployments
            .iter()
            .map(|d| history_entry(d, Vec::new(), &DeploymentConfiguration::default(), NOW - 60_000))
            .collect();
        ServiceRecord {
            service: Service {
                service_name: "web".into(),
                status: "ACTIVE".into(),
                desired_count: desired,
                deployment_configuration: DeploymentConfiguration {
                    minimum_healthy_percent: Some(min),
                    maximum_percent: Some(max),
                    ..Default::default()
                },
                deployments,
                ..Service::default()
            },
            history,
            ..ServiceRecord::default()
        }
    }

    fn task(id: &str, deployment: &str, status: &str) -> TaskView {
        TaskView {
            id: id.into(),
            deployment: deployment.into(),
            last_status: status.into(),
            desired_status: "RUNNING".into(),
            created_at: NOW - 30_000,
            started_at: (status == "RUNNING").then_some(NOW - 20_000),
            ..TaskView::default()
        }
    }

    fn healthy(id: &str, deployment: &str) -> TaskView {
        TaskView { health_status: Some("HEALTHY".into()), ..task(id, deployment, "RUNNING") }
    }

    /// A task that ended by itself without ever running (e.g. CannotPullContainerError).
    fn failed(id: &str, deployment: &str) -> TaskView {
        TaskView {
            desired_status: "STOPPED".into(),
            stop_code: Some(stop_code::TASK_FAILED_TO_START.into()),
            ended_at: Some(NOW - 1_000),
            ..task(id, deployment, "STOPPED")
        }
    }

    fn no_checks(_: &str) -> bool {
        false
    }

    fn checks(_: &str) -> bool {
        true
    }

    fn stopped_ids(d: &Decision) -> Vec<&str> {
        d.stop.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn a_new_service_starts_its_desired_count_and_then_is_steady() {
        let mut r = service(3, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        let d = plan(&mut r, &[], NOW, &no_checks);
        assert_eq!(d, Decision { launch: 3, ..Decision::default() });
        assert!(!r.steady);

        let tasks =
            [task("a", "ecs-svc/1", "RUNNING"), task("b", "ecs-svc/1", "RUNNING"), task("c", "ecs-svc/1", "RUNNING")];
        let d = plan(&mut r, &tasks, NOW, &no_checks);
        assert_eq!(d, Decision::default());
        assert_eq!(r.service.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
        assert_eq!(r.last_completed.as_ref().map(|d| d.id.as_str()), Some("ecs-svc/1"));
        assert_eq!(r.history[0].status, "SUCCESSFUL");
        let messages: Vec<&str> = r.service.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["(service web) has reached a steady state.", "(service web) (deployment ecs-svc/1) deployment completed."]
        );

        // Said once: another pass in the same state adds nothing.
        plan(&mut r, &tasks, NOW, &no_checks);
        assert_eq!(r.service.events.len(), 2);
    }

    #[test]
    fn a_stopped_task_is_replaced_and_scale_in_stops_pending_tasks_first() {
        let mut r = service(2, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        let gone = TaskView { desired_status: "STOPPED".into(), ..task("a", "ecs-svc/1", "STOPPING") };
        let d = plan(&mut r, &[gone, task("b", "ecs-svc/1", "RUNNING")], NOW, &no_checks);
        assert_eq!(d.launch, 1, "the task on its way out no longer counts");

        r.service.desired_count = 1;
        let tasks = [task("old", "ecs-svc/1", "RUNNING"), task("new", "ecs-svc/1", "PENDING")];
        let d = plan(&mut r, &tasks, NOW, &no_checks);
        assert_eq!(stopped_ids(&d), ["new"]);
        assert_eq!(d.stop[0].1, StopWhy::Scaling("ecs-svc/1".into()));
    }

    #[test]
    fn a_rolling_update_never_goes_below_minimum_healthy() {
        let deployments = vec![deployment("ecs-svc/2", "PRIMARY", "td:2"), deployment("ecs-svc/1", "ACTIVE", "td:1")];
        let mut r = service(4, 100, 200, deployments);
        let old: Vec<TaskView> = ["o1", "o2", "o3", "o4"].iter().map(|id| healthy(id, "ecs-svc/1")).collect();

        // Room for 4 more (200 %): all new tasks start at once, no old one stops before they are healthy.
        let d = plan(&mut r, &old, NOW, &checks);
        assert_eq!(d, Decision { launch: 4, ..Decision::default() });

        // Two new tasks healthy, two still starting: exactly two old ones may go.
        let mut tasks = old.clone();
        tasks.extend([healthy("n1", "ecs-svc/2"), healthy("n2", "ecs-svc/2")]);
        tasks.push(task("n3", "ecs-svc/2", "RUNNING")); // running, health unknown yet
        tasks.push(task("n4", "ecs-svc/2", "PENDING"));
        let d = plan(&mut r, &tasks, NOW, &checks);
        assert_eq!(d.launch, 0);
        assert_eq!(d.stop.len(), 2, "{:?}", d.stop);
        assert!(d.stop.iter().all(|(id, _)| id.starts_with('o')));
        assert_eq!(r.service.deployments.len(), 2);

        // All new tasks healthy and the old ones gone: the rollout completes.
        let tasks: Vec<TaskView> = ["n1", "n2", "n3", "n4"].iter().map(|id| healthy(id, "ecs-svc/2")).collect();
        let d = plan(&mut r, &tasks, NOW, &checks);
        assert_eq!(d, Decision::default());
        assert_eq!(r.service.deployments.len(), 1);
        assert_eq!(r.service.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
    }

    #[test]
    fn without_room_above_desired_old_tasks_stop_first() {
        // min 50 % / max 100 % of 4: two old tasks go, then two new ones start.
        let deployments = vec![deployment("ecs-svc/2", "PRIMARY", "td:2"), deployment("ecs-svc/1", "ACTIVE", "td:1")];
        let mut r = service(4, 50, 100, deployments);
        let old: Vec<TaskView> = ["o1", "o2", "o3", "o4"].iter().map(|id| healthy(id, "ecs-svc/1")).collect();
        let d = plan(&mut r, &old, NOW, &no_checks);
        assert_eq!(d.launch, 0);
        assert_eq!(d.stop.len(), 2);
    }

    #[test]
    fn the_circuit_breaker_rolls_back_to_the_last_completed_deployment() {
        let mut good = deployment("ecs-svc/1", "ACTIVE", "td:1");
        good.network_configuration = None;
        let deployments = vec![deployment("ecs-svc/2", "PRIMARY", "td:2"), good.clone()];
        let mut r = service(2, 100, 200, deployments);
        r.service.task_definition = "td:2".into();
        r.service.deployment_configuration.deployment_circuit_breaker =
            Some(DeploymentCircuitBreaker { enable: true, rollback: true });
        r.last_completed = Some(good);
        let mut tasks = vec![healthy("o1", "ecs-svc/1"), healthy("o2", "ecs-svc/1")];
        tasks.extend([failed("f1", "ecs-svc/2"), failed("f2", "ecs-svc/2")]);
        // Two failures: under the threshold of 3.
        plan(&mut r, &tasks, NOW, &no_checks);
        assert_eq!(r.service.deployments[0].id, "ecs-svc/2");
        assert_eq!(r.service.deployments[0].failed_tasks, 2);

        tasks.push(failed("f3", "ecs-svc/2"));
        let d = plan(&mut r, &tasks, NOW, &no_checks);
        let ids: Vec<&str> = r.service.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{ids:?}: the failed deployment stays listed while the rollback runs");
        let back = &r.service.deployments[0];
        assert_eq!((back.status.as_str(), back.task_definition.as_str()), ("PRIMARY", "td:1"));
        assert_eq!(r.service.deployments[1].rollout_state.as_deref(), Some("FAILED"));
        assert_eq!(r.service.task_definition, "td:1");
        assert_eq!(d.launch, 2, "the rollback deployment starts its tasks at once");
        let h = r.history.iter().find(|h| h.deployment_id == "ecs-svc/2").unwrap();
        assert_eq!((h.status.as_str(), h.failed_tasks), ("ROLLBACK_IN_PROGRESS", 3));
        assert!(r.service.events.iter().any(|e| e.message.contains("deployment failed: tasks failed to start.")));
    }

    #[test]
    fn without_rollback_a_failed_deployment_stops_starting_tasks() {
        let mut r = service(1, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        r.service.deployment_configuration.deployment_circuit_breaker =
            Some(DeploymentCircuitBreaker { enable: true, rollback: false });
        let tasks = [failed("f1", "ecs-svc/1"), failed("f2", "ecs-svc/1"), failed("f3", "ecs-svc/1")];
        let d = plan(&mut r, &tasks, NOW, &no_checks);
        assert_eq!(d.launch, 0);
        assert_eq!(r.service.deployments[0].rollout_state.as_deref(), Some("FAILED"));
        assert_eq!(r.history[0].status, "STOPPED");
    }

    #[test]
    fn repeated_failures_back_off() {
        let mut r = service(1, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        let tasks = [failed("f1", "ecs-svc/1"), failed("f2", "ecs-svc/1")];
        assert_eq!(plan(&mut r, &tasks, NOW, &no_checks).launch, 1, "two failures: no back-off yet");
        let tasks = [failed("f1", "ecs-svc/1"), failed("f2", "ecs-svc/1"), failed("f3", "ecs-svc/1")];
        assert_eq!(plan(&mut r, &tasks, NOW, &no_checks).launch, 0);
        assert_eq!(r.next_launch_at, NOW + 1000);
        assert!(r.service.events[0].message.contains("unable to consistently start tasks"));
        assert_eq!(plan(&mut r, &tasks, NOW + 1000, &no_checks).launch, 1, "after the delay");
        // A task that ran a long time and then exited is no failure: no more delay.
        let long = TaskView {
            desired_status: "STOPPED".into(),
            stop_code: Some(stop_code::ESSENTIAL_CONTAINER_EXITED.into()),
            started_at: Some(NOW - 600_000),
            ended_at: Some(NOW),
            ..task("l", "ecs-svc/1", "STOPPED")
        };
        assert!(!long.failed(NOW));
        let quick = TaskView { started_at: Some(NOW - 2_000), ..long.clone() };
        assert!(quick.failed(NOW));
        let asked = TaskView { stop_code: Some(stop_code::USER_INITIATED.into()), ..quick };
        assert!(!asked.failed(NOW));
    }

    #[test]
    fn unhealthy_tasks_are_replaced_after_the_grace_period() {
        let mut r = service(1, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        r.service.health_check_grace_period_seconds = Some(60);
        let sick = TaskView { health_status: Some("UNHEALTHY".into()), ..task("s", "ecs-svc/1", "RUNNING") };
        assert_eq!(
            plan(&mut r, std::slice::from_ref(&sick), NOW, &checks),
            Decision::default(),
            "within the grace period"
        );
        r.service.health_check_grace_period_seconds = Some(10);
        let d = plan(&mut r, &[sick], NOW, &checks);
        assert_eq!(d.stop, vec![("s".to_string(), StopWhy::Unhealthy)]);
        assert_eq!(d.launch, 1);
        assert_eq!(r.service.deployments[0].failed_tasks, 1);
    }

    #[test]
    fn a_draining_service_stops_everything_and_becomes_inactive() {
        let mut r = service(2, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        r.service.status = "DRAINING".into();
        let d = plan(&mut r, &[healthy("a", "ecs-svc/1"), task("b", "ecs-svc/1", "PENDING")], NOW, &no_checks);
        assert_eq!(d.stop.len(), 2);
        assert_eq!(r.service.status, "DRAINING");
        let leaving = TaskView { desired_status: "STOPPED".into(), ..task("a", "ecs-svc/1", "STOPPING") };
        plan(&mut r, &[leaving], NOW, &no_checks);
        assert_eq!(r.service.status, "INACTIVE");
        assert_eq!(r.inactive_at, Some(NOW));
    }

    #[test]
    fn tasks_behind_a_load_balancer_are_drained_before_they_stop() {
        let deployments = vec![deployment("ecs-svc/2", "PRIMARY", "td:2"), deployment("ecs-svc/1", "ACTIVE", "td:1")];
        let mut r = service(1, 100, 200, deployments);
        let up = Targets { balanced: true, healthy: true, ..Targets::default() };
        let old = TaskView { targets: up, ..healthy("o1", "ecs-svc/1") };
        let new = TaskView { targets: up, ..healthy("n1", "ecs-svc/2") };
        let d = plan(&mut r, &[old.clone(), new.clone()], NOW, &no_checks);
        assert_eq!((d.drain.as_slice(), d.stop.len()), (["o1".to_string()].as_slice(), 0));

        // Draining: the old deployment stays, nothing else happens.
        let leaving = TaskView { draining_since: Some(NOW), last_status: "DEACTIVATING".into(), ..old };
        let d = plan(&mut r, &[leaving.clone(), new.clone()], NOW + 100, &no_checks);
        assert_eq!(d, Decision::default());
        assert_eq!(r.service.deployments.len(), 2);

        // Drained: stopped, and the rollout completes once it is gone.
        let drained = TaskView { targets: Targets { drained: true, ..up }, ..leaving };
        let d = plan(&mut r, &[drained, new.clone()], NOW + 200, &no_checks);
        assert_eq!(stopped_ids(&d), ["o1"]);
        assert_eq!(d.stop[0].1, StopWhy::Scaling("ecs-svc/2".into()));
        let d = plan(&mut r, &[new], NOW + 300, &no_checks);
        assert_eq!(d, Decision::default());
        assert_eq!(r.service.deployments[0].rollout_state.as_deref(), Some("COMPLETED"));
    }

    #[test]
    fn a_task_behind_a_load_balancer_is_healthy_only_with_healthy_targets() {
        let mut r = service(1, 100, 200, vec![deployment("ecs-svc/1", "PRIMARY", "td:1")]);
        let initial =
            TaskView { targets: Targets { balanced: true, ..Targets::default() }, ..task("a", "ecs-svc/1", "RUNNING") };
        assert_eq!(plan(&mut r, std::slice::from_ref(&initial), NOW, &no_checks), Decision::default());
        assert_eq!(r.service.deployments[0].rollout_state.as_deref(), Some("IN_PROGRESS"), "targets not healthy yet");

        let sick = TaskView { targets: Targets { balanced: true, unhealthy: true, ..Targets::default() }, ..initial };
        r.service.health_check_grace_period_seconds = Some(60);
        assert_eq!(plan(&mut r, std::slice::from_ref(&sick), NOW, &no_checks), Decision::default(), "grace period");
        r.service.health_check_grace_period_seconds = Some(0);
        let d = plan(&mut r, &[sick], NOW, &no_checks);
        assert_eq!(d.stop, vec![("a".to_string(), StopWhy::UnhealthyTargets)]);
        assert_eq!(d.launch, 1);
    }

    #[test]
    fn capacity_providers_follow_the_strategy_across_passes() {
        let item = |p: &str, w: i32, b: i32| CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight: Some(w),
            base: Some(b),
        };
        let s = [item("FARGATE", 1, 1), item("FARGATE_SPOT", 3, 0)];
        let first = providers_for(&s, &[], 2);
        assert_eq!(first, [Some("FARGATE".into()), Some("FARGATE_SPOT".into())]);
        let existing: Vec<String> = first.into_iter().flatten().collect();
        let next = providers_for(&s, &existing, 3);
        let spot = next.iter().filter(|p| p.as_deref() == Some("FARGATE_SPOT")).count();
        assert_eq!((next.len(), spot), (3, 2), "{next:?}: 2 FARGATE / 3 FARGATE_SPOT in all");
    }

    #[test]
    fn counts_come_from_the_task_records() {
        let mut r = service(
            2,
            100,
            200,
            vec![deployment("ecs-svc/2", "PRIMARY", "td:2"), deployment("ecs-svc/1", "ACTIVE", "td:1")],
        );
        r.service.deployments[1].status = "ACTIVE".into();
        let rec = |by: &str, status: &str| {
            let mut t = TaskRecord::default();
            t.task.started_by = Some(by.into());
            t.task.last_status = status.into();
            t
        };
        let tasks = [
            rec("ecs-svc/2", "RUNNING"),
            rec("ecs-svc/2", "PROVISIONING"),
            rec("ecs-svc/1", "RUNNING"),
            rec("ecs-svc/1", "STOPPED"),
        ];
        let s = render(&r, &tasks.iter().collect::<Vec<_>>());
        assert_eq!((s.running_count, s.pending_count), (2, 1));
        let d = &s.deployments;
        assert_eq!((d[0].desired_count, d[0].running_count, d[0].pending_count), (2, 1, 1));
        assert_eq!((d[1].desired_count, d[1].running_count), (1, 1));
    }
}
