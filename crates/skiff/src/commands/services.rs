//! `skiff services …`: ListServices and DescribeServices as a table of services with their task counts and
//! rollout, one service in detail with its deployments, and a service's events.

use super::{print, print_json, Context};
use crate::commands::task_definitions::family_revision;
use crate::table::{self, fields, Table};
use anyhow::bail;
use serde_json::{json, Value};

/// DescribeServices takes at most this many services per call.
pub const DESCRIBE_BATCH: usize = 10;
/// The cluster ECS uses when a request names none.
pub const DEFAULT_CLUSTER: &str = "default";
/// How many of the newest events `describe` shows (`events` shows them all).
const DESCRIBE_EVENTS: usize = 5;

/// The cluster the services are in; shared by every `services` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArg {
    /// The services' cluster: name or ARN [default: default]
    #[arg(long, global = true, value_name = "CLUSTER")]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// List services with their task counts, task definition and rollout (the default; json: the
    /// ListServices response, pages merged)
    #[command(visible_alias = "list")]
    Ls,
    /// Show services with their deployments and latest events (DescribeServices with tags); names or ARNs
    Describe {
        #[arg(required = true, value_name = "NAME")]
        services: Vec<String>,
    },
    /// A service's events, newest first
    Events {
        #[arg(value_name = "NAME")]
        service: String,
        /// Only the newest N events
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<usize>,
    },
}

pub async fn run(ctx: &Context, cluster: Option<String>, command: Option<Command>) -> anyhow::Result<()> {
    let cluster = cluster.as_deref();
    match command.unwrap_or(Command::Ls) {
        Command::Ls => ls(ctx, cluster).await,
        Command::Describe { services } => describe(ctx, cluster, services).await,
        Command::Events { service, limit } => {
            events(ctx, cluster.or_else(|| cluster_of(&service)), &service, limit).await
        }
    }
}

/// The cluster's name for messages: the last part of an ARN, or ECS's default.
pub fn cluster_name(cluster: Option<&str>) -> &str {
    match cluster {
        Some(c) => c.rsplit_once(":cluster/").map_or(c, |(_, name)| name),
        None => DEFAULT_CLUSTER,
    }
}

/// The cluster named in a service ARN `arn:…:service/CLUSTER/NAME` (none in a name or an old-style ARN).
pub fn cluster_of(service: &str) -> Option<&str> {
    let (_, path) = service.split_once(":service/")?;
    path.split_once('/').map(|(cluster, _)| cluster)
}

/// `--cluster C` as the user would type it again (nothing for the default cluster).
pub fn cluster_flag(cluster: Option<&str>) -> String {
    match cluster {
        Some(c) if cluster_name(Some(c)) != DEFAULT_CLUSTER => format!(" --cluster {}", cluster_name(Some(c))),
        _ => String::new(),
    }
}

/// An API error of a call on `cluster`'s services; a missing cluster says how to find the right one.
pub fn cluster_error(e: skiff_client::ClientError, cluster: Option<&str>, what: &str) -> anyhow::Error {
    let name = cluster_name(cluster);
    if e.code() != Some("ClusterNotFoundException") {
        return anyhow::Error::new(e).context(format!("{what} in cluster {name}"));
    }
    let hint = match cluster {
        None => "no --cluster was given, so ECS looked in `default`; `skiff clusters ls` lists the clusters",
        Some(_) => "`skiff clusters ls` lists the clusters",
    };
    anyhow::anyhow!("{what}: cluster {name} not found ({e}); {hint}")
}

/// A request body with the cluster set when one was given.
fn with_cluster(mut body: Value, cluster: Option<&str>) -> Value {
    if let Some(c) = cluster {
        body["cluster"] = Value::String(c.to_string());
    }
    body
}

/// DescribeServices for `names` in batches of [`DESCRIBE_BATCH`], merged into one response.
pub async fn describe_services(
    ctx: &Context,
    cluster: Option<&str>,
    names: &[String],
    include_tags: bool,
) -> anyhow::Result<Value> {
    let mut merged = json!({"services": [], "failures": []});
    for batch in names.chunks(DESCRIBE_BATCH) {
        let mut body = with_cluster(json!({"services": batch}), cluster);
        if include_tags {
            body["include"] = json!(["TAGS"]);
        }
        let response = ctx
            .ecs("DescribeServices", body)
            .await
            .map_err(|e| cluster_error(e, cluster, &format!("cannot describe {}", batch.join(", "))))?;
        for key in ["services", "failures"] {
            if let (Some(all), Some(part)) = (merged[key].as_array_mut(), response[key].as_array()) {
                all.extend(part.iter().cloned());
            }
        }
    }
    Ok(merged)
}

/// One service by name or ARN; a service that does not exist (or was deleted: INACTIVE) is an error that
/// says where to look.
pub async fn describe_service(ctx: &Context, cluster: Option<&str>, name: &str) -> anyhow::Result<Value> {
    let response = describe_services(ctx, cluster, &[name.to_string()], false).await?;
    let service = response["services"].as_array().and_then(|s| s.first()).cloned();
    match service {
        Some(s) if s["status"] != "INACTIVE" => Ok(s),
        _ => Err(ServiceNotFound(missing_service(name, cluster, response["failures"].get(0))).into()),
    }
}

/// A service that DescribeServices does not know (or knows as INACTIVE: deleted); the message says where
/// to look.
#[derive(Debug)]
pub struct ServiceNotFound(pub String);

impl std::fmt::Display for ServiceNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServiceNotFound {}

/// Why a named service could not be described, and what to run to find the right name.
fn missing_service(name: &str, cluster: Option<&str>, failure: Option<&Value>) -> String {
    let reason = failure.and_then(|f| f["reason"].as_str()).unwrap_or("MISSING");
    let cluster_name = cluster_name(cluster);
    let list = format!("skiff services ls{}", cluster_flag(cluster));
    if reason == "MISSING" {
        format!("service {name} not found in cluster {cluster_name}: `{list}` lists its services")
    } else {
        let detail = failure.and_then(|f| f["detail"].as_str()).map(|d| format!(" ({d})")).unwrap_or_default();
        format!(
            "cannot describe service {name} in cluster {cluster_name}: {reason}{detail}; `{list}` lists its services"
        )
    }
}

async fn ls(ctx: &Context, cluster: Option<&str>) -> anyhow::Result<()> {
    let listed = ctx
        .ecs_all_pages("ListServices", with_cluster(json!({"maxResults": 100}), cluster), "serviceArns")
        .await
        .map_err(|e| match e.downcast::<skiff_client::ClientError>() {
            Ok(e) => cluster_error(e, cluster, "cannot list services"),
            Err(e) => e.context(format!("cannot list the services of cluster {}", cluster_name(cluster))),
        })?;
    if ctx.is_json() {
        return print_json(&listed);
    }
    let arns: Vec<String> = listed["serviceArns"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    // A service deleted between the two calls shows up in `failures`; a listing just leaves it out.
    let described = describe_services(ctx, cluster, &arns, false).await?;
    print(&list_table(described["services"].as_array().map(Vec::as_slice).unwrap_or_default()).render())
}

/// `family:revision` of a task definition ARN.
pub fn task_definition_name(arn: Option<&Value>) -> String {
    match arn.and_then(Value::as_str).filter(|a| !a.is_empty()) {
        Some(arn) => {
            let (family, revision) = family_revision(arn);
            format!("{family}:{revision}")
        }
        None => table::NONE.to_string(),
    }
}

/// The PRIMARY deployment (the one new tasks are started for), else the first one.
pub fn primary_deployment(service: &Value) -> Option<&Value> {
    let deployments = service["deployments"].as_array()?;
    deployments.iter().find(|d| d["status"] == "PRIMARY").or_else(|| deployments.first())
}

/// The `services ls` table, sorted by name.
pub fn list_table(services: &[Value]) -> Table {
    let mut sorted: Vec<&Value> = services.iter().collect();
    sorted.sort_by_key(|s| s["serviceName"].as_str().unwrap_or_default().to_string());
    let mut t = Table::new(&["NAME", "STATUS", "DESIRED", "RUNNING", "PENDING", "TASK DEFINITION", "ROLLOUT"]);
    for s in sorted {
        t.row([
            table::text(s.get("serviceName")),
            table::text(s.get("status")),
            table::text(s.get("desiredCount")),
            table::text(s.get("runningCount")),
            table::text(s.get("pendingCount")),
            task_definition_name(s.get("taskDefinition")),
            table::text(primary_deployment(s).and_then(|d| d.get("rolloutState"))),
        ]);
    }
    t
}

async fn describe(ctx: &Context, cluster: Option<&str>, names: Vec<String>) -> anyhow::Result<()> {
    let response = describe_services(ctx, cluster, &names, true).await?;
    if ctx.is_json() {
        print_json(&response)?;
    } else {
        let blocks: Vec<String> =
            response["services"].as_array().map(|a| a.iter().map(service_view).collect()).unwrap_or_default();
        if !blocks.is_empty() {
            print(&blocks.join("\n"))?;
        }
    }
    let failures: Vec<String> = response["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let arn = f["arn"].as_str().unwrap_or_default();
            let name = arn.rsplit('/').next().unwrap_or(arn);
            missing_service(name, cluster, Some(f))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        bail!("{}", failures.join("; "))
    }
}

/// A service as `key: value` lines, a table of its deployments and its newest events.
pub fn service_view(s: &Value) -> String {
    let config = &s["deploymentConfiguration"];
    let breaker = match config.get("deploymentCircuitBreaker") {
        Some(b) if b["enable"] == true => {
            if b["rollback"] == true {
                "enabled, rolls back".to_string()
            } else {
                "enabled, no rollback".to_string()
            }
        }
        _ => "disabled".to_string(),
    };
    let mut pairs = vec![
        ("name", table::text(s.get("serviceName"))),
        ("arn", table::text(s.get("serviceArn"))),
        ("cluster", table::text(s.get("clusterArn"))),
        ("status", table::text(s.get("status"))),
        ("task definition", table::text(s.get("taskDefinition"))),
        ("launch type", table::text(s.get("launchType"))),
        ("desired", table::text(s.get("desiredCount"))),
        ("running", table::text(s.get("runningCount"))),
        ("pending", table::text(s.get("pendingCount"))),
        (
            "healthy percent",
            format!(
                "min {}, max {}",
                table::text(config.get("minimumHealthyPercent")),
                table::text(config.get("maximumPercent"))
            ),
        ),
        ("circuit breaker", breaker),
    ];
    if let Some(vpc) = s.get("networkConfiguration").and_then(|n| n.get("awsvpcConfiguration")) {
        pairs.push(("subnets", table::list(vpc.get("subnets"), ", ")));
        pairs.push(("security groups", table::list(vpc.get("securityGroups"), ", ")));
        pairs.push(("public ip", table::text(vpc.get("assignPublicIp"))));
    }
    pairs.push(("created at", table::timestamp(s.get("createdAt"))));
    pairs.push(("tags", table::pairs(s.get("tags"), "key", "value")));

    let mut out = fields(&pairs);
    out.push_str("\ndeployments:\n");
    out.push_str(&deployments_table(s).render());
    let reasons: Vec<String> = s["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let reason = d["rolloutStateReason"].as_str().filter(|r| !r.is_empty())?;
            Some(format!("  {}: {reason}\n", table::text(d.get("id"))))
        })
        .collect();
    if !reasons.is_empty() {
        out.push_str("rollout reasons:\n");
        out.push_str(&reasons.concat());
    }
    let events = s["events"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !events.is_empty() {
        let shown = events.len().min(DESCRIBE_EVENTS);
        out.push_str(&format!("\nevents (newest {shown} of {}):\n", events.len()));
        out.push_str(&events_table(&events[..shown]).render());
    }
    out
}

/// The deployments of a service, PRIMARY first as ECS lists them.
pub fn deployments_table(s: &Value) -> Table {
    let mut t = Table::new(&[
        "ID",
        "STATUS",
        "TASK DEFINITION",
        "DESIRED",
        "RUNNING",
        "PENDING",
        "FAILED",
        "ROLLOUT",
        "CREATED",
    ]);
    for d in s["deployments"].as_array().into_iter().flatten() {
        t.row([
            table::text(d.get("id")),
            table::text(d.get("status")),
            task_definition_name(d.get("taskDefinition")),
            table::text(d.get("desiredCount")),
            table::text(d.get("runningCount")),
            table::text(d.get("pendingCount")),
            table::text(d.get("failedTasks")),
            table::text(d.get("rolloutState")),
            table::timestamp(d.get("createdAt")),
        ]);
    }
    t
}

/// Events as given (ECS lists them newest first): time and message.
pub fn events_table(events: &[Value]) -> Table {
    let mut t = Table::new(&["TIME", "MESSAGE"]);
    for e in events {
        t.row([table::timestamp(e.get("createdAt")), table::text(e.get("message"))]);
    }
    t
}

async fn events(ctx: &Context, cluster: Option<&str>, name: &str, limit: Option<usize>) -> anyhow::Result<()> {
    let service = describe_service(ctx, cluster, name).await?;
    let mut events = service["events"].as_array().cloned().unwrap_or_default();
    if let Some(limit) = limit {
        events.truncate(limit);
    }
    if ctx.is_json() {
        return print_json(&json!({ "events": events }));
    }
    if events.is_empty() {
        return print(&format!("service {name} has no events yet\n"));
    }
    print(&events_table(&events).render())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD: &str = "arn:aws:ecs:us-east-1:000000000000:task-definition/web:7";

    fn service() -> Value {
        json!({
            "serviceArn": "arn:aws:ecs:us-east-1:000000000000:service/prod/web",
            "serviceName": "web",
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/prod",
            "status": "ACTIVE", "desiredCount": 4, "runningCount": 3, "pendingCount": 1,
            "launchType": "FARGATE",
            "taskDefinition": TD,
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                "maximumPercent": 200, "minimumHealthyPercent": 100
            },
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}},
            "deployments": [
                {"id": "ecs-svc/1111111111111111111", "status": "PRIMARY", "taskDefinition": TD,
                 "desiredCount": 4, "runningCount": 3, "pendingCount": 1, "failedTasks": 0,
                 "createdAt": 1795848586.5, "rolloutState": "IN_PROGRESS",
                 "rolloutStateReason": "ECS deployment ecs-svc/1111111111111111111 in progress."},
                {"id": "ecs-svc/2222222222222222222", "status": "ACTIVE",
                 "taskDefinition": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:6",
                 "desiredCount": 0, "runningCount": 1, "pendingCount": 0, "failedTasks": 2,
                 "createdAt": 1795840000, "rolloutState": "COMPLETED"}
            ],
            "events": [
                {"id": "e2", "createdAt": 1795848590, "message": "(service web) has started 1 tasks: (task b)."},
                {"id": "e1", "createdAt": 1795848586, "message": "(service web) has started 3 tasks: (task a)."}
            ],
            "createdAt": 1795840000,
            "tags": [{"key": "team", "value": "core"}]
        })
    }

    #[test]
    fn ls_table_shows_counts_definition_and_rollout() {
        let other = json!({"serviceName": "api", "status": "DRAINING", "desiredCount": 0, "runningCount": 0,
                           "pendingCount": 0, "taskDefinition": "arn:aws:ecs:us-east-1:0:task-definition/api:12",
                           "deployments": []});
        assert_eq!(
            list_table(&[service(), other]).render(),
            "NAME  STATUS    DESIRED  RUNNING  PENDING  TASK DEFINITION  ROLLOUT\n\
             api   DRAINING  0        0        0        api:12           -\n\
             web   ACTIVE    4        3        1        web:7            IN_PROGRESS\n"
        );
    }

    #[test]
    fn primary_is_the_primary_deployment() {
        let mut s = service();
        s["deployments"].as_array_mut().unwrap().reverse();
        assert_eq!(primary_deployment(&s).unwrap()["id"], "ecs-svc/1111111111111111111");
        assert!(primary_deployment(&json!({})).is_none());
    }

    #[test]
    fn describe_view() {
        assert_eq!(
            service_view(&service()),
            "name:             web\n\
             arn:              arn:aws:ecs:us-east-1:000000000000:service/prod/web\n\
             cluster:          arn:aws:ecs:us-east-1:000000000000:cluster/prod\n\
             status:           ACTIVE\n\
             task definition:  arn:aws:ecs:us-east-1:000000000000:task-definition/web:7\n\
             launch type:      FARGATE\n\
             desired:          4\n\
             running:          3\n\
             pending:          1\n\
             healthy percent:  min 100, max 200\n\
             circuit breaker:  enabled, rolls back\n\
             subnets:          subnet-1\n\
             security groups:  sg-1\n\
             public ip:        DISABLED\n\
             created at:       2026-11-28T04:26:40Z\n\
             tags:             team=core\n\
             \n\
             deployments:\n\
             ID                           STATUS   TASK DEFINITION  DESIRED  RUNNING  PENDING  FAILED  ROLLOUT      CREATED\n\
             ecs-svc/1111111111111111111  PRIMARY  web:7            4        3        1        0       IN_PROGRESS  2026-11-28T06:49:46Z\n\
             ecs-svc/2222222222222222222  ACTIVE   web:6            0        1        0        2       COMPLETED    2026-11-28T04:26:40Z\n\
             rollout reasons:\n  \
               ecs-svc/1111111111111111111: ECS deployment ecs-svc/1111111111111111111 in progress.\n\
             \n\
             events (newest 2 of 2):\n\
             TIME                  MESSAGE\n\
             2026-11-28T06:49:50Z  (service web) has started 1 tasks: (task b).\n\
             2026-11-28T06:49:46Z  (service web) has started 3 tasks: (task a).\n"
        );
    }

    #[test]
    fn cluster_names_and_flags() {
        assert_eq!(cluster_name(None), "default");
        assert_eq!(cluster_name(Some("prod")), "prod");
        assert_eq!(cluster_name(Some("arn:aws:ecs:us-east-1:0:cluster/prod")), "prod");
        assert_eq!(cluster_of("arn:aws:ecs:us-east-1:0:service/prod/web"), Some("prod"));
        assert_eq!(cluster_of("arn:aws:ecs:us-east-1:0:service/web"), None);
        assert_eq!(cluster_of("web"), None);
        assert_eq!(cluster_flag(None), "");
        assert_eq!(cluster_flag(Some("default")), "");
        assert_eq!(cluster_flag(Some("arn:aws:ecs:us-east-1:0:cluster/prod")), " --cluster prod");
    }

    #[test]
    fn missing_clusters_say_where_to_look() {
        let missing = || skiff_client::ClientError::Api {
            status: 400,
            code: "ClusterNotFoundException".into(),
            message: "Cluster not found.".into(),
            request_id: None,
        };
        assert_eq!(
            cluster_error(missing(), Some("prod"), "cannot list services").to_string(),
            "cannot list services: cluster prod not found (ClusterNotFoundException: Cluster not found.); \
             `skiff clusters ls` lists the clusters"
        );
        assert!(cluster_error(missing(), None, "x").to_string().contains("no --cluster was given"));
        let other = skiff_client::ClientError::InvalidRequest("bad".into());
        assert_eq!(
            format!("{:#}", cluster_error(other, None, "cannot describe web")),
            "cannot describe web in cluster default: invalid request: bad"
        );
    }

    #[test]
    fn missing_services_say_where_to_look() {
        assert_eq!(
            missing_service("web", Some("prod"), Some(&json!({"arn": "x", "reason": "MISSING"}))),
            "service web not found in cluster prod: `skiff services ls --cluster prod` lists its services"
        );
        assert_eq!(
            missing_service("web", None, None),
            "service web not found in cluster default: `skiff services ls` lists its services"
        );
    }
}
