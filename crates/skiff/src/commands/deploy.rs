//! `skiff deploy SERVICE --image REF`: a new revision of the service's task definition with one container's
//! image replaced (DescribeServices → DescribeTaskDefinition → RegisterTaskDefinition), the service moved to
//! it (UpdateService), then — unless `--no-wait` — the rollout followed until ECS calls it COMPLETED or
//! FAILED: a progress line of the new deployment (redrawn in place on a terminal, a line per change
//! otherwise) and each new service event once.
//!
//! Everything here is what `aws ecs …` could do by hand; the server decides the rollout (deployments,
//! circuit breaker, rollback), this command only watches it.

use super::services::{self, cluster_flag, cluster_name, task_definition_name};
use super::{print, print_json, Context};
use crate::table;
use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::io::IsTerminal as _;
use tokio::time::{Duration, Instant};

/// How often the rollout is looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// DescribeServices failures in a row after which following the rollout gives up.
const MAX_POLL_FAILURES: u32 = 20;
/// Polls a deployment must be seen no longer PRIMARY (without a rolloutState saying why) before it counts
/// as replaced, so a rollback caught between two writes is not misreported.
const SUPERSEDED_POLLS: u32 = 2;

/// Members of a `TaskDefinition` (as DescribeTaskDefinition returns it) that RegisterTaskDefinition does
/// not take: what ECS fills in at registration. Every other member is copied into the new revision.
const OUTPUT_ONLY: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
    "deleteRequestedAt",
];

#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// The service: name or ARN
    #[arg(value_name = "SERVICE")]
    pub service: String,

    /// The new image reference (REPOSITORY[:TAG] or REPOSITORY@sha256:DIGEST)
    #[arg(long, value_name = "REF", value_parser = parse_image)]
    pub image: String,

    /// The container whose image is replaced [default: the task definition's only container]
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,

    /// The service's cluster: name or ARN [default: default]
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Return once the service is updated instead of following the rollout
    #[arg(long)]
    pub no_wait: bool,

    /// Give up following the rollout after this many seconds (the rollout itself goes on)
    #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
}

fn parse_image(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("the image reference is empty".to_string())
    } else if s.contains(char::is_whitespace) {
        Err(format!("image reference {s:?} contains whitespace"))
    } else {
        Ok(s.to_string())
    }
}

/// Which container's image changed, from what to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    pub container: String,
    pub from: String,
    pub to: String,
}

/// The RegisterTaskDefinition request for a new revision of `td` (a DescribeTaskDefinition
/// `taskDefinition`) with the image of `container` (or of its only container) replaced by `image`: every
/// registrable member copied, [`OUTPUT_ONLY`] ones and nulls dropped, the revision's `tags` kept.
pub fn register_request(
    td: &Value,
    tags: Option<&Value>,
    container: Option<&str>,
    image: &str,
) -> anyhow::Result<(Value, ImageChange)> {
    let name = task_definition_name(td.get("taskDefinitionArn"));
    let Some(members) = td.as_object() else {
        bail!("DescribeTaskDefinition answered without a taskDefinition object for {name}");
    };
    let mut request: Map<String, Value> = members
        .iter()
        .filter(|(k, v)| !OUTPUT_ONLY.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let change = replace_image(&mut request, &name, container, image)?;
    if let Some(tags) = tags.filter(|t| t.as_array().is_some_and(|a| !a.is_empty())) {
        request.insert("tags".to_string(), tags.clone());
    }
    Ok((Value::Object(request), change))
}

/// Sets the image of the chosen container in `request["containerDefinitions"]`.
fn replace_image(
    request: &mut Map<String, Value>,
    td_name: &str,
    container: Option<&str>,
    image: &str,
) -> anyhow::Result<ImageChange> {
    let containers = request.get_mut("containerDefinitions").and_then(Value::as_array_mut);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        bail!("task definition {td_name} has no containers, so there is no image to replace");
    };
    let names: Vec<String> = containers.iter().map(|c| c["name"].as_str().unwrap_or_default().to_string()).collect();
    let index = match container {
        Some(wanted) => names.iter().position(|n| n == wanted).with_context(|| {
            format!("task definition {td_name} has no container {wanted} (its containers: {})", names.join(", "))
        })?,
        None if containers.len() == 1 => 0,
        None => bail!(
            "task definition {td_name} has {} containers ({}): name the one whose image to replace with --container NAME",
            names.len(),
            names.join(", ")
        ),
    };
    let from = containers[index]["image"].as_str().unwrap_or_default().to_string();
    containers[index]["image"] = Value::String(image.to_string());
    Ok(ImageChange { container: names[index].clone(), from, to: image.to_string() })
}

/// The deployment started for `task_definition`: the PRIMARY one with it, else the newest with it.
pub fn deployment_for<'a>(service: &'a Value, task_definition: &str) -> Option<&'a Value> {
    let deployments = service["deployments"].as_array()?;
    let mut matching: Vec<&Value> = deployments.iter().filter(|d| d["taskDefinition"] == task_definition).collect();
    if let Some(primary) = matching.iter().find(|d| d["status"] == "PRIMARY") {
        return Some(primary);
    }
    matching.sort_by(|a, b| {
        let t = |d: &Value| d["createdAt"].as_f64().unwrap_or_default();
        t(b).total_cmp(&t(a))
    });
    matching.first().copied()
}

/// Where the followed deployment stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollout {
    InProgress,
    Completed,
    /// ECS marked it FAILED; `rolled_back_to` is the deployment that replaced it as PRIMARY, if any.
    Failed {
        reason: Option<String>,
        rolled_back_to: Option<Value>,
    },
    /// Another deployment became PRIMARY while this one was still in progress (another deploy).
    Superseded {
        by: Value,
    },
    /// The deployment is no longer among the service's deployments.
    Gone {
        primary: Option<Value>,
    },
}

/// Where deployment `id` of `service` stands.
pub fn assess(service: &Value, id: &str) -> Rollout {
    let deployments = service["deployments"].as_array().map(Vec::as_slice).unwrap_or_default();
    let primary = services::primary_deployment(service).filter(|p| p["status"] == "PRIMARY");
    let other_primary = primary.filter(|p| p["id"] != id).cloned();
    let Some(d) = deployments.iter().find(|d| d["id"] == id) else {
        return Rollout::Gone { primary: other_primary };
    };
    match d["rolloutState"].as_str() {
        Some("COMPLETED") => Rollout::Completed,
        Some("FAILED") => Rollout::Failed {
            reason: d["rolloutStateReason"].as_str().filter(|r| !r.is_empty()).map(str::to_string),
            rolled_back_to: other_primary,
        },
        state => match other_primary {
            Some(by) if d["status"] != "PRIMARY" => Rollout::Superseded { by },
            // Without a rolloutState (a rollout ECS does not track), done is: the only deployment left, all
            // its tasks running.
            _ if state.is_none()
                && deployments.len() == 1
                && d["runningCount"] == d["desiredCount"]
                && d["pendingCount"].as_i64().unwrap_or_default() == 0 =>
            {
                Rollout::Completed
            }
            _ => Rollout::InProgress,
        },
    }
}

/// Where a deployment that left the service's deployments stands, from its service deployment (a
/// DescribeServiceDeployments `serviceDeployment`): ECS drops a failed deployment as soon as its tasks are
/// gone, often before a poll sees it FAILED. `primary` is the service's PRIMARY deployment now.
pub fn assess_finished(service_deployment: &Value, primary: Option<Value>) -> Rollout {
    let reason = service_deployment["statusReason"].as_str().filter(|r| !r.is_empty()).map(str::to_string);
    let status = service_deployment["status"].as_str().unwrap_or_default();
    let triggered = service_deployment["deploymentCircuitBreaker"]["status"] == "TRIGGERED";
    match status {
        "SUCCESSFUL" => Rollout::Completed,
        s if s.starts_with("ROLLBACK_") => Rollout::Failed { reason, rolled_back_to: primary },
        "STOPPED" | "STOP_REQUESTED" if triggered => Rollout::Failed { reason, rolled_back_to: None },
        "STOPPED" | "STOP_REQUESTED" => match primary {
            Some(by) => Rollout::Superseded { by },
            None => Rollout::Gone { primary: None },
        },
        _ => Rollout::Gone { primary },
    }
}

/// `ecs-svc/12345678…  web:7  running 3/4  pending 1  failed 0  IN_PROGRESS` (the id shortened so the line
/// fits a terminal; the full id is printed when the deployment starts).
pub fn progress_line(d: &Value) -> String {
    let count = |k: &str| d[k].as_i64().unwrap_or_default();
    format!(
        "{}  {}  running {}/{}  pending {}  failed {}  {}",
        short_id(d["id"].as_str().unwrap_or(table::NONE)),
        task_definition_name(d.get("taskDefinition")),
        count("runningCount"),
        count("desiredCount"),
        count("pendingCount"),
        count("failedTasks"),
        d["rolloutState"].as_str().unwrap_or("IN_PROGRESS"),
    )
}

/// `ecs-svc/` and the first 8 digits of a deployment id, then `…`.
fn short_id(id: &str) -> String {
    const DIGITS: usize = 8;
    match id.strip_prefix("ecs-svc/") {
        Some(digits) if digits.chars().count() > DIGITS + 1 => {
            format!("ecs-svc/{}…", digits.chars().take(DIGITS).collect::<String>())
        }
        _ => id.to_string(),
    }
}

/// A service event as printed while following: `TIME  MESSAGE`.
pub fn event_line(e: &Value) -> String {
    format!("{}  {}", table::timestamp(e.get("createdAt")), table::text(e.get("message")))
}

/// The service's events not printed yet, oldest first.
#[derive(Debug, Default)]
pub struct EventFeed {
    seen: HashSet<String>,
}

impl EventFeed {
    /// A feed that treats the events `service` already has as printed.
    pub fn after(service: &Value) -> EventFeed {
        let mut feed = EventFeed::default();
        feed.take_new(service);
        feed
    }

    /// The events of `service` (ECS lists them newest first) not seen before, oldest first.
    pub fn take_new(&mut self, service: &Value) -> Vec<Value> {
        let events = service["events"].as_array().map(Vec::as_slice).unwrap_or_default();
        let mut new: Vec<Value> = events.iter().filter(|e| self.seen.insert(event_key(e))).cloned().collect();
        new.reverse();
        new
    }
}

fn event_key(e: &Value) -> String {
    match e["id"].as_str() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => format!("{}|{}", e["createdAt"], e["message"]),
    }
}

/// How progress is shown: a line redrawn in place on a terminal, a line per change otherwise, nothing
/// with `--output json`.
enum Display {
    /// On a terminal: the bar appears with the first progress line.
    Terminal {
        bar: Option<ProgressBar>,
        last: Option<String>,
    },
    Lines {
        last: Option<String>,
    },
    Quiet,
}

impl Display {
    fn new(json: bool) -> Display {
        if json {
            Display::Quiet
        } else if std::io::stdout().is_terminal() {
            Display::Terminal { bar: None, last: None }
        } else {
            Display::Lines { last: None }
        }
    }

    /// A line printed once (above the progress line on a terminal).
    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        match self {
            Display::Terminal { bar: Some(bar), .. } => {
                bar.println(text);
                Ok(())
            }
            Display::Terminal { bar: None, .. } | Display::Lines { .. } => print(&format!("{text}\n")),
            Display::Quiet => Ok(()),
        }
    }

    fn progress(&mut self, text: String) -> anyhow::Result<()> {
        match self {
            Display::Terminal { bar, last } => {
                let bar = bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                });
                bar.set_message(text.clone());
                *last = Some(text);
                Ok(())
            }
            Display::Lines { last } => match changed(last, text) {
                Some(text) => print(&format!("{text}\n")),
                None => Ok(()),
            },
            Display::Quiet => Ok(()),
        }
    }

    /// Stops redrawing; the last progress line stays on the terminal.
    fn finish(&mut self) -> anyhow::Result<()> {
        if let Display::Terminal { bar, last } = self {
            if let Some(bar) = bar.take() {
                bar.finish_and_clear();
            }
            if let Some(text) = last.take() {
                print(&format!("{text}\n"))?;
            }
        }
        Ok(())
    }
}

/// `text` if it differs from the last line printed (which it then becomes).
fn changed(last: &mut Option<String>, text: String) -> Option<String> {
    if last.as_deref() == Some(text.as_str()) {
        return None;
    }
    *last = Some(text.clone());
    Some(text)
}

pub async fn run(ctx: &Context, args: DeployArgs) -> anyhow::Result<()> {
    let cluster = args.cluster.as_deref().or_else(|| services::cluster_of(&args.service));
    let cluster_label = cluster_name(cluster);
    let service_name = args.service.rsplit('/').next().unwrap_or(&args.service).to_string();
    let before = services::describe_service(ctx, cluster, &args.service).await?;
    if before["status"] != "ACTIVE" {
        bail!(
            "service {service_name} in cluster {cluster_label} is {} (being deleted), so it cannot be deployed to",
            table::text(before.get("status"))
        );
    }
    let Some(current_td) = before["taskDefinition"].as_str().filter(|t| !t.is_empty()).map(str::to_string) else {
        bail!("service {service_name} in cluster {cluster_label} has no taskDefinition to start the new revision from");
    };
    let current_name = task_definition_name(Some(&Value::String(current_td.clone())));

    let described = ctx
        .ecs("DescribeTaskDefinition", json!({"taskDefinition": current_td, "include": ["TAGS"]}))
        .await
        .with_context(|| format!("cannot read task definition {current_td} of service {service_name}"))?;
    let td = described.get("taskDefinition").with_context(|| {
        format!("DescribeTaskDefinition answered without a taskDefinition for {current_td} of service {service_name}")
    })?;
    let (request, change) = register_request(td, described.get("tags"), args.container.as_deref(), &args.image)
        .with_context(|| format!("cannot deploy {} to service {service_name}", args.image))?;
    let family = request["family"].as_str().unwrap_or_default().to_string();

    let registered = ctx.ecs("RegisterTaskDefinition", request).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot register a new revision of {family} with image {} for container {}: {e}; the service still \
             runs {current_name}",
            change.to,
            change.container
        )
    })?;
    let new_td = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .with_context(|| format!("RegisterTaskDefinition answered without a taskDefinitionArn for {family}"))?
        .to_string();
    let new_name = task_definition_name(Some(&Value::String(new_td.clone())));
    let mut display = Display::new(ctx.is_json());
    let unchanged = if change.from == change.to { " (unchanged: a new revision starts fresh tasks)" } else { "" };
    display.line(&format!(
        "registered {new_name} from {current_name}: container {} image {} -> {}{unchanged}",
        change.container, change.from, change.to
    ))?;

    let mut update = json!({"service": args.service, "taskDefinition": new_td});
    if let Some(c) = cluster {
        update["cluster"] = Value::String(c.to_string());
    }
    let updated = ctx.ecs("UpdateService", update).await.map_err(|e| {
        anyhow::anyhow!(
            "registered {new_name} but cannot update service {service_name} in cluster {cluster_label} to it: {e}; \
             the service still runs {current_name}; retry with `skiff deploy {service_name} --image {}{}` (and \
             `skiff td deregister {new_name}` to drop the unused revision)",
            change.to,
            cluster_flag(cluster)
        )
    })?;
    let service = updated.get("service").cloned().unwrap_or(Value::Null);
    let deployment_id = deployment_for(&service, &new_td).and_then(|d| d["id"].as_str()).map(str::to_string);
    display.line(&format!(
        "updated service {service_name} (cluster {cluster_label}) to {new_name}: deployment {}",
        deployment_id.as_deref().unwrap_or("pending")
    ))?;

    if args.no_wait {
        if ctx.is_json() {
            return print_json(&updated);
        }
        return display.line(&format!(
            "not waiting for the rollout: `skiff services describe {service_name}{}` shows it",
            cluster_flag(cluster)
        ));
    }

    let follow = Follow {
        ctx,
        cluster,
        service: &args.service,
        service_name: &service_name,
        new_td: &new_td,
        previous_td: &current_td,
        service_deployment: service["currentServiceDeployment"].as_str().map(str::to_string),
        timeout: Duration::from_secs(args.timeout),
    };
    let mut events = EventFeed::after(&before);
    let result = follow.run(&mut display, &mut events, deployment_id).await;
    display.finish()?;
    let (last, outcome) = result?;
    if ctx.is_json() {
        print_json(&json!({"taskDefinitionArn": new_td, "service": last}))?;
    } else if outcome.is_ok() {
        let d = deployment_for(&last, &new_td).cloned().unwrap_or(Value::Null);
        print(&format!(
            "deployment {} completed: service {service_name} runs {new_name} ({}/{} tasks running)\n",
            table::text(d.get("id")),
            table::text(d.get("runningCount")),
            table::text(d.get("desiredCount"))
        ))?;
    }
    outcome
}

/// Following one deployment of one service until it completes, fails or the time is up.
struct Follow<'a> {
    ctx: &'a Context,
    cluster: Option<&'a str>,
    service: &'a str,
    service_name: &'a str,
    new_td: &'a str,
    previous_td: &'a str,
    /// The service deployment UpdateService started (`currentServiceDeployment`), asked about a deployment
    /// that disappeared.
    service_deployment: Option<String>,
    timeout: Duration,
}

impl Follow<'_> {
    /// Polls until the rollout ends. The outer error is a failure to follow; the inner result is the
    /// rollout's (with the last service described, for `--output json`).
    async fn run(
        &self,
        display: &mut Display,
        events: &mut EventFeed,
        mut deployment_id: Option<String>,
    ) -> anyhow::Result<(Value, anyhow::Result<()>)> {
        let deadline = Instant::now() + self.timeout;
        let new_name = task_definition_name(Some(&Value::String(self.new_td.to_string())));
        let again = format!("skiff services describe {}{}", self.service_name, cluster_flag(self.cluster));
        let mut failures = 0;
        let mut not_primary = 0;
        loop {
            let service = match services::describe_service(self.ctx, self.cluster, self.service).await {
                Ok(s) => {
                    failures = 0;
                    s
                }
                Err(e) if failures + 1 < MAX_POLL_FAILURES && !is_missing(&e) => {
                    failures += 1;
                    tracing::debug!(error = %format!("{e:#}"), failures, "DescribeServices failed while following");
                    tokio::time::sleep(POLL_INTERVAL).await;
                    continue;
                }
                Err(e) => {
                    return Err(
                        e.context(format!("lost track of the rollout of {new_name} to service {}", self.service_name))
                    )
                }
            };
            for e in events.take_new(&service) {
                display.line(&event_line(&e))?;
            }
            if service["status"] != "ACTIVE" {
                let status = table::text(service.get("status"));
                return Ok((
                    service,
                    Err(anyhow::anyhow!(
                        "service {} became {status} (it is being deleted) during the rollout of {new_name}",
                        self.service_name
                    )),
                ));
            }
            if deployment_id.is_none() {
                deployment_id =
                    deployment_for(&service, self.new_td).and_then(|d| d["id"].as_str()).map(str::to_string);
            }
            if let Some(id) = &deployment_id {
                if let Some(d) =
                    service["deployments"].as_array().into_iter().flatten().find(|d| d["id"] == id.as_str())
                {
                    display.progress(progress_line(d))?;
                }
                let rollout = match assess(&service, id) {
                    Rollout::Gone { primary } => {
                        not_primary = SUPERSEDED_POLLS;
                        self.finished(primary).await
                    }
                    rollout => {
                        not_primary = if matches!(rollout, Rollout::Superseded { .. }) { not_primary + 1 } else { 0 };
                        rollout
                    }
                };
                let stopped = match rollout {
                    Rollout::Failed { .. } => self.last_stopped_task(id).await,
                    _ => None,
                };
                if let Some(outcome) = self.outcome(id, &new_name, rollout, not_primary, stopped) {
                    return Ok((service, outcome));
                }
            }
            if Instant::now() >= deadline {
                let stopped = match &deployment_id {
                    Some(id) => self.last_stopped_task(id).await,
                    None => None,
                };
                let error = self.timed_out(deployment_id.as_deref(), &new_name, &service, &again, stopped);
                return Ok((service, Err(error)));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// What became of the followed deployment once it left the service's deployments, from its service
    /// deployment; [`Rollout::Gone`] when that cannot be told.
    async fn finished(&self, primary: Option<Value>) -> Rollout {
        let Some(arn) = &self.service_deployment else {
            return Rollout::Gone { primary };
        };
        match self.ctx.ecs("DescribeServiceDeployments", json!({"serviceDeploymentArns": [arn]})).await {
            Ok(response) => match response["serviceDeployments"].get(0) {
                Some(sd) => assess_finished(sd, primary),
                None => Rollout::Gone { primary },
            },
            Err(e) => {
                tracing::debug!(error = %e, %arn, "DescribeServiceDeployments failed");
                Rollout::Gone { primary }
            }
        }
    }

    /// Why the deployment's last task stopped (ListTasks by its `startedBy`, then DescribeTasks), if one
    /// did; best effort, for the failure message.
    async fn last_stopped_task(&self, deployment_id: &str) -> Option<String> {
        let cluster = |mut body: Value| {
            if let Some(c) = self.cluster {
                body["cluster"] = Value::String(c.to_string());
            }
            body
        };
        let listed = self
            .ctx
            .ecs(
                "ListTasks",
                cluster(json!({"startedBy": deployment_id, "desiredStatus": "STOPPED", "maxResults": 100})),
            )
            .await
            .ok()?;
        let arns = listed["taskArns"].as_array().filter(|a| !a.is_empty())?;
        let described = self.ctx.ecs("DescribeTasks", cluster(json!({"tasks": arns}))).await.ok()?;
        last_stop_reason(described["tasks"].as_array()?)
    }

    /// The end of the rollout, if `rollout` is one.
    fn outcome(
        &self,
        id: &str,
        new_name: &str,
        rollout: Rollout,
        not_primary: u32,
        stopped: Option<String>,
    ) -> Option<anyhow::Result<()>> {
        let previous_name = task_definition_name(Some(&Value::String(self.previous_td.to_string())));
        let events = format!("skiff services events {}{}", self.service_name, cluster_flag(self.cluster));
        let svc = self.service_name;
        match rollout {
            Rollout::InProgress => None,
            Rollout::Superseded { .. } if not_primary < SUPERSEDED_POLLS => None,
            Rollout::Completed => Some(Ok(())),
            Rollout::Failed { reason, rolled_back_to } => {
                let reason = reason.unwrap_or_else(|| "no reason given".to_string());
                let reason = reason.trim_end_matches('.');
                let stopped = stopped.map(|s| format!("; {s}")).unwrap_or_default();
                let what = match rolled_back_to {
                    Some(back) => format!(
                        "the service was rolled back to {} (deployment {}); fix the image or the task definition \
                         and deploy again (`{events}` shows what happened)",
                        task_definition_name(back.get("taskDefinition")),
                        table::text(back.get("id"))
                    ),
                    None => format!(
                        "the service was not rolled back and stays on {new_name}; deploy a working image, or go \
                         back with `aws ecs update-service --cluster {} --service {svc} --task-definition \
                         {previous_name}` (`{events}` shows what happened)",
                        cluster_name(self.cluster)
                    ),
                };
                Some(Err(anyhow::anyhow!(
                    "deployment {id} of {new_name} to service {svc} failed: {reason}{stopped}; {what}"
                )))
            }
            Rollout::Superseded { by } => Some(Err(anyhow::anyhow!(
                "deployment {id} of {new_name} to service {svc} was replaced by deployment {} ({}) before it \
                 completed (another deploy or update-service); `{events}` shows what happened",
                table::text(by.get("id")),
                task_definition_name(by.get("taskDefinition"))
            ))),
            Rollout::Gone { primary } => {
                let now = match primary {
                    Some(p) => format!(
                        "the service now runs deployment {} ({})",
                        table::text(p.get("id")),
                        task_definition_name(p.get("taskDefinition"))
                    ),
                    None => "the service has no PRIMARY deployment".to_string(),
                };
                Some(Err(anyhow::anyhow!(
                    "deployment {id} of {new_name} to service {svc} disappeared before it completed; {now}; \
                     `{events}` shows what happened"
                )))
            }
        }
    }

    fn timed_out(
        &self,
        id: Option<&str>,
        new_name: &str,
        service: &Value,
        again: &str,
        stopped: Option<String>,
    ) -> anyhow::Error {
        let secs = self.timeout.as_secs();
        let svc = self.service_name;
        let stopped = stopped.map(|s| format!("; {s}")).unwrap_or_default();
        match id.and_then(|id| service["deployments"].as_array()?.iter().find(|d| d["id"] == id)) {
            Some(d) => anyhow::anyhow!(
                "deployment {} of {new_name} to service {svc} has not completed within {secs} s (running {}/{}, \
                 pending {}, failed {}){stopped}; it goes on on the server: `{again}` shows it, or wait longer with \
                 --timeout",
                table::text(d.get("id")),
                table::text(d.get("runningCount")),
                table::text(d.get("desiredCount")),
                table::text(d.get("pendingCount")),
                table::text(d.get("failedTasks")),
            ),
            None => anyhow::anyhow!(
                "service {svc} showed no deployment of {new_name} within {secs} s; `{again}` shows its deployments"
            ),
        }
    }
}

/// `task ID stopped: REASON (container NAME: REASON)` of the task that stopped last, if any.
pub fn last_stop_reason(tasks: &[Value]) -> Option<String> {
    let when = |t: &Value| ["stoppedAt", "stoppingAt", "createdAt"].iter().find_map(|k| t[*k].as_f64()).unwrap_or(0.0);
    let task = tasks.iter().max_by(|a, b| when(a).total_cmp(&when(b)))?;
    let arn = task["taskArn"].as_str().unwrap_or_default();
    let id = arn.rsplit('/').next().unwrap_or(arn);
    let reason = task["stoppedReason"].as_str().filter(|r| !r.is_empty()).unwrap_or("no reason given");
    let mut line = format!("task {id} stopped: {reason}");
    for c in task["containers"].as_array().into_iter().flatten() {
        if let Some(r) = c["reason"].as_str().filter(|r| !r.is_empty() && !reason.contains(r)) {
            line.push_str(&format!(" (container {}: {r})", table::text(c.get("name"))));
        }
    }
    Some(line)
}

/// Whether `e` says the service is gone (not worth retrying).
fn is_missing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<services::ServiceNotFound>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:6";
    const NEW: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:7";

    fn described() -> Value {
        json!({
            "taskDefinitionArn": OLD,
            "family": "web", "revision": 6, "status": "ACTIVE",
            "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "compatibilities": ["EC2", "FARGATE"],
            "cpu": "256", "memory": "512",
            "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
            "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
            "registeredAt": 1795848586.5, "registeredBy": "arn:aws:iam::000000000000:root",
            "deregisteredAt": null,
            "volumes": [],
            "containerDefinitions": [
                {"name": "app", "image": "registry/app:1", "essential": true,
                 "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]},
                {"name": "sidecar", "image": "busybox", "essential": false}
            ]
        })
    }

    #[test]
    fn request_copies_registrable_members_and_replaces_one_image() {
        let tags = json!([{"key": "team", "value": "core"}]);
        let (request, change) = register_request(&described(), Some(&tags), Some("app"), "registry/app:2").unwrap();
        assert_eq!(
            change,
            ImageChange { container: "app".into(), from: "registry/app:1".into(), to: "registry/app:2".into() }
        );
        assert_eq!(
            request,
            json!({
                "family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
                "cpu": "256", "memory": "512", "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
                "volumes": [],
                "containerDefinitions": [
                    {"name": "app", "image": "registry/app:2", "essential": true,
                     "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]},
                    {"name": "sidecar", "image": "busybox", "essential": false}
                ],
                "tags": [{"key": "team", "value": "core"}]
            })
        );
        // No tags, or none: no `tags` member.
        let (request, _) = register_request(&described(), Some(&json!([])), Some("sidecar"), "busybox:2").unwrap();
        assert!(request.get("tags").is_none());
        assert_eq!(request["containerDefinitions"][1]["image"], "busybox:2");
        assert_eq!(request["containerDefinitions"][0]["image"], "registry/app:1");
    }

    #[test]
    fn choosing_the_container() {
        let err = register_request(&described(), None, None, "x").unwrap_err().to_string();
        assert_eq!(
            err,
            "task definition web:6 has 2 containers (app, sidecar): name the one whose image to replace with \
             --container NAME"
        );
        let err = register_request(&described(), None, Some("db"), "x").unwrap_err().to_string();
        assert_eq!(err, "task definition web:6 has no container db (its containers: app, sidecar)");

        let mut single = described();
        single["containerDefinitions"].as_array_mut().unwrap().truncate(1);
        let (request, change) = register_request(&single, None, None, "registry/app@sha256:abc").unwrap();
        assert_eq!(change.container, "app");
        assert_eq!(request["containerDefinitions"][0]["image"], "registry/app@sha256:abc");

        let mut none = described();
        none["containerDefinitions"] = json!([]);
        assert!(register_request(&none, None, None, "x").unwrap_err().to_string().contains("has no containers"));
    }

    /// A DescribeTaskDefinition answer as Skiff's model renders it turns into a request the model accepts
    /// (it refuses unknown members) and that registers the same definition with the new image.
    #[test]
    fn request_round_trips_through_the_models_registration() {
        use skiff_model::task_definition::{RegisterTaskDefinitionRequest, RegistrationContext};
        let original: RegisterTaskDefinitionRequest = serde_json::from_value(json!({
            "family": "web",
            "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "512", "memory": "1024",
            "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
            "taskRoleArn": "arn:aws:iam::000000000000:role/task",
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            "ephemeralStorage": {"sizeInGiB": 30},
            "volumes": [{"name": "scratch"}],
            "tags": [{"key": "team", "value": "core"}],
            "containerDefinitions": [{
                "name": "app", "image": "registry/app:1", "essential": true, "memory": 256,
                "portMappings": [{"containerPort": 8080}],
                "environment": [{"name": "A", "value": "1"}],
                "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}],
                "healthCheck": {"command": ["CMD-SHELL", "true"]},
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g",
                    "awslogs-region": "us-east-1", "awslogs-stream-prefix": "p"}},
                "command": ["httpd", "-f"]
            }]
        }))
        .unwrap();
        let register = |request: RegisterTaskDefinitionRequest, revision: i32| {
            request
                .into_task_definition(RegistrationContext {
                    arn: format!("arn:aws:ecs:us-east-1:000000000000:task-definition/web:{revision}"),
                    revision,
                    registered_at: 1_795_848_586_500,
                    registered_by: "arn:aws:iam::000000000000:root".into(),
                })
                .unwrap()
        };
        let (td, tags) = register(original, 6);
        let wire = serde_json::to_value(&td).unwrap();
        let (request, _) =
            register_request(&wire, Some(&serde_json::to_value(&tags).unwrap()), None, "registry/app:2").unwrap();
        let parsed: RegisterTaskDefinitionRequest = serde_json::from_value(request)
            .unwrap_or_else(|e| panic!("the model refuses the request built from {wire:#}: {e}"));
        let (again, again_tags) = register(parsed, 7);
        assert_eq!(again_tags, tags);
        let mut expected = serde_json::to_value(&td).unwrap();
        expected["containerDefinitions"][0]["image"] = json!("registry/app:2");
        expected["taskDefinitionArn"] = json!("arn:aws:ecs:us-east-1:000000000000:task-definition/web:7");
        expected["revision"] = json!(7);
        assert_eq!(serde_json::to_value(&again).unwrap(), expected);
    }

    fn deployment(id: &str, status: &str, td: &str, rollout: &str) -> Value {
        json!({"id": id, "status": status, "taskDefinition": td, "desiredCount": 4, "runningCount": 3,
               "pendingCount": 1, "failedTasks": 0, "rolloutState": rollout, "createdAt": 1795848586})
    }

    fn with(deployments: Vec<Value>) -> Value {
        json!({"status": "ACTIVE", "deployments": deployments})
    }

    #[test]
    fn the_deployment_followed_is_the_new_definitions() {
        let s = with(vec![
            deployment("ecs-svc/2", "PRIMARY", NEW, "IN_PROGRESS"),
            deployment("ecs-svc/1", "ACTIVE", OLD, "COMPLETED"),
        ]);
        assert_eq!(deployment_for(&s, NEW).unwrap()["id"], "ecs-svc/2");
        assert_eq!(deployment_for(&s, OLD).unwrap()["id"], "ecs-svc/1");
        assert!(deployment_for(&s, "other").is_none());
        // Rolled back: the newest PRIMARY is for the old definition; the new one is ACTIVE, FAILED.
        let mut rolled = with(vec![
            deployment("ecs-svc/3", "PRIMARY", OLD, "IN_PROGRESS"),
            deployment("ecs-svc/2", "ACTIVE", NEW, "FAILED"),
        ]);
        assert_eq!(deployment_for(&rolled, NEW).unwrap()["id"], "ecs-svc/2");
        assert_eq!(deployment_for(&rolled, OLD).unwrap()["id"], "ecs-svc/3");
        rolled["deployments"][1]["rolloutStateReason"] = json!("circuit breaker: 3 tasks failed");
        assert_eq!(
            assess(&rolled, "ecs-svc/2"),
            Rollout::Failed {
                reason: Some("circuit breaker: 3 tasks failed".into()),
                rolled_back_to: Some(rolled["deployments"][0].clone())
            }
        );
    }

    #[test]
    fn assessing_a_rollout() {
        let s = with(vec![
            deployment("ecs-svc/2", "PRIMARY", NEW, "IN_PROGRESS"),
            deployment("ecs-svc/1", "ACTIVE", OLD, "COMPLETED"),
        ]);
        assert_eq!(assess(&s, "ecs-svc/2"), Rollout::InProgress);
        let done = with(vec![deployment("ecs-svc/2", "PRIMARY", NEW, "COMPLETED")]);
        assert_eq!(assess(&done, "ecs-svc/2"), Rollout::Completed);
        // Failed without rollback: still PRIMARY.
        let failed = with(vec![deployment("ecs-svc/2", "PRIMARY", NEW, "FAILED")]);
        assert_eq!(assess(&failed, "ecs-svc/2"), Rollout::Failed { reason: None, rolled_back_to: None });
        // Another deploy took over.
        let next = deployment("ecs-svc/3", "PRIMARY", OLD, "IN_PROGRESS");
        let replaced = with(vec![next.clone(), deployment("ecs-svc/2", "ACTIVE", NEW, "IN_PROGRESS")]);
        assert_eq!(assess(&replaced, "ecs-svc/2"), Rollout::Superseded { by: next.clone() });
        assert_eq!(assess(&with(vec![next.clone()]), "ecs-svc/2"), Rollout::Gone { primary: Some(next) });
        // No rolloutState: done when it is the only deployment and everything runs.
        let mut untracked = with(vec![json!({"id": "ecs-svc/2", "status": "PRIMARY", "taskDefinition": NEW,
                                             "desiredCount": 2, "runningCount": 1, "pendingCount": 1})]);
        assert_eq!(assess(&untracked, "ecs-svc/2"), Rollout::InProgress);
        untracked["deployments"][0]["runningCount"] = json!(2);
        untracked["deployments"][0]["pendingCount"] = json!(0);
        assert_eq!(assess(&untracked, "ecs-svc/2"), Rollout::Completed);
    }

    #[test]
    fn assessing_a_deployment_that_is_gone() {
        let back = deployment("ecs-svc/3", "PRIMARY", OLD, "IN_PROGRESS");
        let sd = |status: &str, breaker: &str| {
            json!({"status": status, "statusReason": "the reason",
                   "deploymentCircuitBreaker": {"status": breaker, "failureCount": 3, "threshold": 3}})
        };
        assert_eq!(
            assess_finished(&sd("ROLLBACK_IN_PROGRESS", "TRIGGERED"), Some(back.clone())),
            Rollout::Failed { reason: Some("the reason".into()), rolled_back_to: Some(back.clone()) }
        );
        assert_eq!(
            assess_finished(&sd("ROLLBACK_SUCCESSFUL", "TRIGGERED"), Some(back.clone())),
            Rollout::Failed { reason: Some("the reason".into()), rolled_back_to: Some(back.clone()) }
        );
        assert_eq!(
            assess_finished(&sd("STOPPED", "TRIGGERED"), Some(back.clone())),
            Rollout::Failed { reason: Some("the reason".into()), rolled_back_to: None }
        );
        assert_eq!(
            assess_finished(&sd("STOPPED", "MONITORING_COMPLETE"), Some(back.clone())),
            Rollout::Superseded { by: back.clone() }
        );
        assert_eq!(assess_finished(&sd("SUCCESSFUL", "MONITORING_COMPLETE"), None), Rollout::Completed);
        assert_eq!(assess_finished(&json!({}), None), Rollout::Gone { primary: None });
    }

    #[test]
    fn the_last_stopped_task_says_why() {
        let tasks = [
            json!({"taskArn": "arn:aws:ecs:us-east-1:0:task/c/aaa", "stoppedAt": 10, "stoppedReason": "old",
                   "containers": []}),
            json!({"taskArn": "arn:aws:ecs:us-east-1:0:task/c/bbb", "stoppedAt": 20,
                   "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 1 time(s)",
                   "containers": [{"name": "app", "reason": "CannotPullContainerError: pull image manifest"},
                                  {"name": "side", "reason": "exited early"}]}),
        ];
        assert_eq!(
            last_stop_reason(&tasks).unwrap(),
            "task bbb stopped: CannotPullContainerError: pull image manifest has been retried 1 time(s) \
             (container side: exited early)"
        );
        assert!(last_stop_reason(&[]).is_none());
    }

    #[test]
    fn progress_lines() {
        let d = deployment("ecs-svc/1234567890123456789", "PRIMARY", NEW, "IN_PROGRESS");
        assert_eq!(progress_line(&d), "ecs-svc/12345678…  web:7  running 3/4  pending 1  failed 0  IN_PROGRESS");
        let bare = json!({"id": "ecs-svc/1", "taskDefinition": NEW});
        assert_eq!(progress_line(&bare), "ecs-svc/1  web:7  running 0/0  pending 0  failed 0  IN_PROGRESS");

        // Off a terminal a line is printed only when it changes.
        let mut last = None;
        assert_eq!(changed(&mut last, "a".into()).as_deref(), Some("a"));
        assert_eq!(changed(&mut last, "a".into()), None);
        assert_eq!(changed(&mut last, "b".into()).as_deref(), Some("b"));
    }

    #[test]
    fn events_are_printed_once_oldest_first() {
        let ev = |id: &str, t: i64, m: &str| json!({"id": id, "createdAt": t, "message": m});
        let before = json!({"events": [ev("e1", 1795848586, "old")]});
        let mut feed = EventFeed::after(&before);
        let now = json!({"events": [ev("e3", 1795848590, "third"), ev("e2", 1795848588, "second"),
                                    ev("e1", 1795848586, "old")]});
        let lines: Vec<String> = feed.take_new(&now).iter().map(event_line).collect();
        assert_eq!(lines, ["2026-11-28T06:49:48Z  second", "2026-11-28T06:49:50Z  third"]);
        assert!(feed.take_new(&now).is_empty());
    }

    #[test]
    fn image_references_are_checked() {
        assert_eq!(parse_image("busybox:1").unwrap(), "busybox:1");
        assert!(parse_image("").is_err());
        assert!(parse_image("a b").unwrap_err().contains("whitespace"));
    }
}
