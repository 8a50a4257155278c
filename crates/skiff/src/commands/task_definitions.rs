//! `skiff task-definitions …`: ListTaskDefinitions, DescribeTaskDefinition, RegisterTaskDefinition,
//! DeregisterTaskDefinition and DeleteTaskDefinitions.

use super::{failures_error, print, print_json, Context, ECS_SIGNING_NAME, ECS_TARGET_PREFIX};
use crate::table::{self, fields, Table};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::PathBuf;

/// How many DescribeTaskDefinition calls `ls` keeps in flight (there is no batch describe in ECS).
const DESCRIBE_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// List task definitions with their status, size and containers (json: the ListTaskDefinitions response,
    /// pages merged)
    #[command(visible_alias = "list")]
    Ls {
        /// Only the revisions of this family (despite the name, ECS matches the whole family name)
        #[arg(long, value_name = "PREFIX")]
        family_prefix: Option<String>,
        /// Only revisions with this status (the API's default: ACTIVE)
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<Status>,
    },
    /// Show a task definition and its containers (DescribeTaskDefinition with tags)
    Describe {
        /// FAMILY (latest active revision), FAMILY:REVISION or a full ARN
        #[arg(value_name = "FAMILY[:REV]|ARN")]
        task_definition: String,
    },
    /// Register a task definition from a JSON file holding the RegisterTaskDefinition request, as
    /// `aws ecs register-task-definition --cli-input-json file://FILE` takes it; `-` reads stdin
    Register {
        #[arg(value_name = "FILE.json")]
        file: String,
    },
    /// Deregister a revision (DeregisterTaskDefinition); it becomes INACTIVE
    Deregister {
        #[arg(value_name = "FAMILY:REV|ARN")]
        task_definition: String,
    },
    /// Delete INACTIVE revisions (DeleteTaskDefinitions)
    #[command(visible_alias = "rm")]
    Delete {
        #[arg(required = true, value_name = "FAMILY:REV|ARN")]
        task_definitions: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Status {
    #[value(name = "ACTIVE")]
    Active,
    #[value(name = "INACTIVE")]
    Inactive,
    #[value(name = "DELETE_IN_PROGRESS")]
    DeleteInProgress,
}

impl Status {
    fn as_api(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Inactive => "INACTIVE",
            Status::DeleteInProgress => "DELETE_IN_PROGRESS",
        }
    }
}

pub async fn run(ctx: &Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ls { family_prefix, status } => ls(ctx, family_prefix, status).await,
        Command::Describe { task_definition } => describe(ctx, task_definition).await,
        Command::Register { file } => register(ctx, file).await,
        Command::Deregister { task_definition } => deregister(ctx, task_definition).await,
        Command::Delete { task_definitions } => delete(ctx, task_definitions).await,
    }
}

async fn ls(ctx: &Context, family_prefix: Option<String>, status: Option<Status>) -> anyhow::Result<()> {
    let mut body = json!({"maxResults": 100});
    if let Some(prefix) = family_prefix {
        body["familyPrefix"] = Value::String(prefix);
    }
    if let Some(status) = status {
        body["status"] = Value::String(status.as_api().to_string());
    }
    let listed = ctx.ecs_all_pages("ListTaskDefinitions", body, "taskDefinitionArns").await?;
    if ctx.is_json() {
        return print_json(&listed);
    }
    let arns: Vec<String> = listed["taskDefinitionArns"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let described = describe_all(ctx, &arns).await?;
    print(&list_table(&arns, &described).render())
}

/// DescribeTaskDefinition for every ARN, a few at a time on the shared keep-alive client; results in the
/// order of `arns`.
async fn describe_all(ctx: &Context, arns: &[String]) -> anyhow::Result<Vec<Value>> {
    let target = format!("{ECS_TARGET_PREFIX}.DescribeTaskDefinition");
    let mut described = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(DESCRIBE_CONCURRENCY) {
        let mut set = tokio::task::JoinSet::new();
        for (i, arn) in chunk.iter().enumerate() {
            let client = ctx.client.clone();
            let target = target.clone();
            let body = json!({"taskDefinition": arn});
            set.spawn(async move { (i, client.call_json(ECS_SIGNING_NAME, &target, &body).await) });
        }
        let mut results: Vec<Option<Value>> = vec![None; chunk.len()];
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.context("a DescribeTaskDefinition call panicked")?;
            let response = result.with_context(|| format!("cannot describe {}", chunk[i]))?;
            results[i] = Some(response.get("taskDefinition").cloned().unwrap_or(Value::Null));
        }
        described.extend(results.into_iter().map(|r| r.unwrap_or(Value::Null)));
    }
    Ok(described)
}

/// `family` and `revision` from `arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION`.
pub fn family_revision(arn: &str) -> (String, String) {
    let name = arn.rsplit_once("task-definition/").map_or(arn, |(_, n)| n);
    match name.rsplit_once(':') {
        Some((family, revision)) => (family.to_string(), revision.to_string()),
        None => (name.to_string(), table::NONE.to_string()),
    }
}

/// The `task-definitions ls` table; `described[i]` is the task definition of `arns[i]`.
pub fn list_table(arns: &[String], described: &[Value]) -> Table {
    let mut t = Table::new(&["FAMILY", "REVISION", "STATUS", "CPU", "MEMORY", "CONTAINERS"]);
    for (arn, td) in arns.iter().zip(described) {
        let (family, revision) = family_revision(arn);
        t.row([
            family,
            revision,
            table::text(td.get("status")),
            table::text(td.get("cpu")),
            table::text(td.get("memory")),
            container_names(td),
        ]);
    }
    t
}

fn container_names(td: &Value) -> String {
    let names: Vec<String> = td["containerDefinitions"]
        .as_array()
        .map(|a| a.iter().map(|c| table::text(c.get("name"))).collect())
        .unwrap_or_default();
    if names.is_empty() {
        table::NONE.to_string()
    } else {
        names.join(",")
    }
}

async fn describe(ctx: &Context, task_definition: String) -> anyhow::Result<()> {
    let response =
        ctx.ecs("DescribeTaskDefinition", json!({"taskDefinition": task_definition, "include": ["TAGS"]})).await?;
    if ctx.is_json() {
        return print_json(&response);
    }
    let td = response.get("taskDefinition").context("DescribeTaskDefinition answered without a taskDefinition")?;
    print(&task_definition_view(td, response.get("tags")))
}

/// A task definition as `key: value` lines followed by a table of its containers.
pub fn task_definition_view(td: &Value, tags: Option<&Value>) -> String {
    let mut pairs = vec![
        ("arn", table::text(td.get("taskDefinitionArn"))),
        ("family", table::text(td.get("family"))),
        ("revision", table::text(td.get("revision"))),
        ("status", table::text(td.get("status"))),
        ("compatibilities", table::list(td.get("requiresCompatibilities"), ", ")),
        ("network mode", table::text(td.get("networkMode"))),
        ("cpu", table::text(td.get("cpu"))),
        ("memory", table::text(td.get("memory"))),
        ("task role", table::text(td.get("taskRoleArn"))),
        ("execution role", table::text(td.get("executionRoleArn"))),
    ];
    if let Some(platform) = td.get("runtimePlatform").filter(|p| p.is_object()) {
        let os = table::text(platform.get("operatingSystemFamily"));
        let arch = table::text(platform.get("cpuArchitecture"));
        pairs.push(("runtime platform", format!("{os}/{arch}")));
    }
    if let Some(gib) = td.get("ephemeralStorage").and_then(|e| e.get("sizeInGiB")) {
        pairs.push(("ephemeral storage", format!("{} GiB", table::text(Some(gib)))));
    }
    pairs.push(("registered at", table::timestamp(td.get("registeredAt"))));
    if td.get("deregisteredAt").is_some_and(|v| !v.is_null()) {
        pairs.push(("deregistered at", table::timestamp(td.get("deregisteredAt"))));
    }
    pairs.push(("tags", table::pairs(tags, "key", "value")));

    let mut containers = Table::new(&["NAME", "IMAGE", "ESSENTIAL", "CPU", "MEMORY", "PORTS", "COMMAND"]);
    for c in td["containerDefinitions"].as_array().into_iter().flatten() {
        let memory = match (c.get("memory").filter(|v| !v.is_null()), c.get("memoryReservation")) {
            (Some(hard), _) => table::text(Some(hard)),
            (None, Some(soft)) if !soft.is_null() => format!("{} (soft)", table::text(Some(soft))),
            _ => table::NONE.to_string(),
        };
        containers.row([
            table::text(c.get("name")),
            table::text(c.get("image")),
            // ECS's default for `essential` is true.
            c.get("essential").and_then(Value::as_bool).unwrap_or(true).to_string(),
            table::text(c.get("cpu")),
            memory,
            ports(c),
            command_line(c),
        ]);
    }
    format!("{}\ncontainers:\n{}", fields(&pairs), containers.render())
}

fn ports(c: &Value) -> String {
    let ports: Vec<String> = c["portMappings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("tcp");
                    format!("{}/{protocol}", table::text(p.get("containerPort")))
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        table::NONE.to_string()
    } else {
        ports.join(",")
    }
}

/// `entryPoint` then `command`, words quoted when they hold spaces.
fn command_line(c: &Value) -> String {
    let words: Vec<String> = ["entryPoint", "command"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_array))
        .flatten()
        .map(|w| {
            let w = w.as_str().map_or_else(|| w.to_string(), str::to_string);
            if w.is_empty() || w.contains(char::is_whitespace) || w.contains('"') {
                format!("{w:?}")
            } else {
                w
            }
        })
        .collect();
    if words.is_empty() {
        table::NONE.to_string()
    } else {
        words.join(" ")
    }
}

/// The RegisterTaskDefinition request in `file` (`file://` prefix allowed; `-` for stdin).
pub fn read_register_input(file: &str) -> anyhow::Result<Value> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the task definition from stdin")?;
        text
    } else {
        let path = PathBuf::from(file.strip_prefix("file://").unwrap_or(file));
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{file} is not valid JSON"))?;
    if !value.is_object() {
        bail!("{file} must hold a JSON object (the RegisterTaskDefinition request), not {}", json_kind(&value));
    }
    Ok(value)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

async fn register(ctx: &Context, file: String) -> anyhow::Result<()> {
    let body = read_register_input(&file)?;
    let response = ctx.ecs("RegisterTaskDefinition", body).await?;
    if ctx.is_json() {
        return print_json(&response);
    }
    let td = response.get("taskDefinition").context("RegisterTaskDefinition answered without a taskDefinition")?;
    print(&task_definition_view(td, response.get("tags")))
}

async fn deregister(ctx: &Context, task_definition: String) -> anyhow::Result<()> {
    let response = ctx.ecs("DeregisterTaskDefinition", json!({"taskDefinition": task_definition})).await?;
    if ctx.is_json() {
        return print_json(&response);
    }
    let td = response.get("taskDefinition").context("DeregisterTaskDefinition answered without a taskDefinition")?;
    print(&format!(
        "deregistered {} (status {})\n",
        table::text(td.get("taskDefinitionArn")),
        table::text(td.get("status"))
    ))
}

async fn delete(ctx: &Context, task_definitions: Vec<String>) -> anyhow::Result<()> {
    let response = ctx.ecs("DeleteTaskDefinitions", json!({"taskDefinitions": task_definitions})).await?;
    if ctx.is_json() {
        print_json(&response)?;
    } else {
        let mut out = String::new();
        for td in response["taskDefinitions"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "deleted {} (status {})\n",
                table::text(td.get("taskDefinitionArn")),
                table::text(td.get("status"))
            ));
        }
        print(&out)?;
    }
    failures_error("task definition", &response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_revision_from_arns() {
        assert_eq!(
            family_revision("arn:aws:ecs:us-east-1:000000000000:task-definition/web-app:12"),
            ("web-app".into(), "12".into())
        );
        assert_eq!(family_revision("web:3"), ("web".into(), "3".into()));
        assert_eq!(family_revision("odd"), ("odd".into(), "-".into()));
    }

    fn sample() -> Value {
        json!({
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
            "family": "web", "revision": 3, "status": "ACTIVE",
            "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512",
            "registeredAt": 1795848586.5,
            "containerDefinitions": [
                {"name": "app", "image": "busybox:latest", "essential": true, "memory": 256,
                 "portMappings": [{"containerPort": 80, "protocol": "tcp"}, {"containerPort": 53, "protocol": "udp"}],
                 "command": ["httpd", "-f", "-p", "80"]},
                {"name": "sidecar", "image": "busybox", "essential": false, "memoryReservation": 64,
                 "entryPoint": ["sh", "-c"], "command": ["sleep 3600"]}
            ]
        })
    }

    #[test]
    fn ls_table() {
        let arns = vec![
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3".to_string(),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/batch:1".to_string(),
        ];
        let described = vec![sample(), json!({"status": "INACTIVE", "cpu": "1024", "memory": "2048"})];
        assert_eq!(
            list_table(&arns, &described).render(),
            "FAMILY  REVISION  STATUS    CPU   MEMORY  CONTAINERS\n\
             web     3         ACTIVE    256   512     app,sidecar\n\
             batch   1         INACTIVE  1024  2048    -\n"
        );
    }

    #[test]
    fn describe_view() {
        let tags = json!([{"key": "team", "value": "core"}]);
        assert_eq!(
            task_definition_view(&sample(), Some(&tags)),
            "arn:              arn:aws:ecs:us-east-1:000000000000:task-definition/web:3\n\
             family:           web\n\
             revision:         3\n\
             status:           ACTIVE\n\
             compatibilities:  FARGATE\n\
             network mode:     awsvpc\n\
             cpu:              256\n\
             memory:           512\n\
             task role:        -\n\
             execution role:   -\n\
             registered at:    2026-11-28T06:49:46Z\n\
             tags:             team=core\n\
             \n\
             containers:\n\
             NAME     IMAGE           ESSENTIAL  CPU  MEMORY     PORTS          COMMAND\n\
             app      busybox:latest  true       -    256        80/tcp,53/udp  httpd -f -p 80\n\
             sidecar  busybox         false      -    64 (soft)  -              sh -c \"sleep 3600\"\n"
        );
    }

    #[test]
    fn register_input_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("td.json");
        std::fs::write(&good, r#"{"family": "web", "containerDefinitions": []}"#).unwrap();
        let path = good.display().to_string();
        assert_eq!(read_register_input(&path).unwrap()["family"], "web");
        assert_eq!(read_register_input(&format!("file://{path}")).unwrap()["family"], "web");

        let array = dir.path().join("array.json");
        std::fs::write(&array, "[]").unwrap();
        let err = read_register_input(&array.display().to_string()).unwrap_err().to_string();
        assert!(err.contains("must hold a JSON object") && err.contains("an array"), "{err}");

        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{").unwrap();
        assert!(read_register_input(&broken.display().to_string()).unwrap_err().to_string().contains("not valid JSON"));

        let missing = dir.path().join("missing.json");
        let err = format!("{:#}", read_register_input(&missing.display().to_string()).unwrap_err());
        assert!(err.contains("cannot read") && err.contains("missing.json"), "{err}");
    }
}
