//! `skiff clusters …`: ListClusters, DescribeClusters, CreateCluster and DeleteCluster.

use super::{failures_error, print, print_json, Context};
use crate::table::{self, fields, Table};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

/// DescribeClusters takes at most this many clusters per call.
const DESCRIBE_BATCH: usize = 100;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// List clusters with their task and service counts (json: the ListClusters response, pages merged)
    #[command(visible_alias = "list")]
    Ls,
    /// Show clusters in detail (DescribeClusters with tags and settings); names or ARNs
    Describe {
        #[arg(required = true, value_name = "NAME")]
        clusters: Vec<String>,
    },
    /// Create a cluster (CreateCluster)
    Create {
        #[arg(value_name = "NAME")]
        name: String,
        /// A tag for the cluster, repeatable
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
        tags: Vec<(String, String)>,
    },
    /// Delete a cluster (DeleteCluster); name or ARN
    #[command(visible_alias = "rm")]
    Delete {
        #[arg(value_name = "NAME")]
        cluster: String,
    },
}

/// `KEY=VALUE` (the value may be empty, and may itself contain `=`).
pub fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some(("", _)) => Err(format!("tag {s:?} has an empty key; use KEY=VALUE")),
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(format!("tag {s:?} has no '='; use KEY=VALUE")),
    }
}

pub async fn run(ctx: &Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ls => ls(ctx).await,
        Command::Describe { clusters } => describe(ctx, clusters).await,
        Command::Create { name, tags } => create(ctx, name, tags).await,
        Command::Delete { cluster } => delete(ctx, cluster).await,
    }
}

async fn ls(ctx: &Context) -> anyhow::Result<()> {
    let listed = ctx.ecs_all_pages("ListClusters", json!({"maxResults": 100}), "clusterArns").await?;
    if ctx.is_json() {
        return print_json(&listed);
    }
    let arns: Vec<Value> = listed["clusterArns"].as_array().cloned().unwrap_or_default();
    let mut clusters = Vec::new();
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let described = ctx.ecs("DescribeClusters", json!({"clusters": batch})).await?;
        // A cluster deleted between the two calls shows up in `failures`; a listing just leaves it out.
        clusters.extend(described["clusters"].as_array().cloned().unwrap_or_default());
    }
    print(&list_table(&clusters).render())
}

/// The `clusters ls` table, sorted by name.
pub fn list_table(clusters: &[Value]) -> Table {
    let mut sorted: Vec<&Value> = clusters.iter().collect();
    sorted.sort_by_key(|c| c["clusterName"].as_str().unwrap_or_default().to_string());
    let mut t = Table::new(&["NAME", "STATUS", "RUNNING", "PENDING", "SERVICES"]);
    for c in sorted {
        t.row([
            table::text(c.get("clusterName")),
            table::text(c.get("status")),
            table::text(c.get("runningTasksCount")),
            table::text(c.get("pendingTasksCount")),
            table::text(c.get("activeServicesCount")),
        ]);
    }
    t
}

async fn describe(ctx: &Context, names: Vec<String>) -> anyhow::Result<()> {
    let mut responses = Vec::new();
    for batch in names.chunks(DESCRIBE_BATCH) {
        responses.push(ctx.ecs("DescribeClusters", json!({"clusters": batch, "include": ["TAGS", "SETTINGS"]})).await?);
    }
    let response = if responses.len() == 1 {
        responses.remove(0)
    } else {
        let mut merged = json!({"clusters": [], "failures": []});
        for r in responses {
            for key in ["clusters", "failures"] {
                if let (Some(all), Some(part)) = (merged[key].as_array_mut(), r[key].as_array()) {
                    all.extend(part.iter().cloned());
                }
            }
        }
        merged
    };
    if ctx.is_json() {
        print_json(&response)?;
    } else {
        let blocks: Vec<String> =
            response["clusters"].as_array().map(|a| a.iter().map(cluster_fields).collect()).unwrap_or_default();
        if !blocks.is_empty() {
            print(&blocks.join("\n"))?;
        }
    }
    failures_error("cluster", &response)
}

/// A cluster as `key: value` lines.
pub fn cluster_fields(c: &Value) -> String {
    fields(&[
        ("name", table::text(c.get("clusterName"))),
        ("arn", table::text(c.get("clusterArn"))),
        ("status", table::text(c.get("status"))),
        ("running tasks", table::text(c.get("runningTasksCount"))),
        ("pending tasks", table::text(c.get("pendingTasksCount"))),
        ("active services", table::text(c.get("activeServicesCount"))),
        ("container instances", table::text(c.get("registeredContainerInstancesCount"))),
        ("capacity providers", table::list(c.get("capacityProviders"), ", ")),
        ("settings", table::pairs(c.get("settings"), "name", "value")),
        ("tags", table::pairs(c.get("tags"), "key", "value")),
    ])
}

async fn create(ctx: &Context, name: String, tags: Vec<(String, String)>) -> anyhow::Result<()> {
    let mut body = json!({"clusterName": name});
    if !tags.is_empty() {
        body["tags"] = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
    }
    let response = ctx.ecs("CreateCluster", body).await?;
    if ctx.is_json() {
        return print_json(&response);
    }
    let cluster = response.get("cluster").context("CreateCluster answered without a cluster")?;
    print(&cluster_fields(cluster))
}

async fn delete(ctx: &Context, cluster: String) -> anyhow::Result<()> {
    let response = ctx.ecs("DeleteCluster", json!({"cluster": cluster})).await?;
    if ctx.is_json() {
        return print_json(&response);
    }
    let Some(deleted) = response.get("cluster") else {
        bail!("DeleteCluster answered without a cluster");
    };
    print(&format!(
        "deleted cluster {} (status {})\n",
        table::text(deleted.get("clusterArn")),
        table::text(deleted.get("status"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse() {
        assert_eq!(parse_tag("team=core").unwrap(), ("team".into(), "core".into()));
        assert_eq!(parse_tag("empty=").unwrap(), ("empty".into(), "".into()));
        assert_eq!(parse_tag("expr=a=b").unwrap(), ("expr".into(), "a=b".into()));
        assert!(parse_tag("novalue").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_tag("=v").is_err());
    }

    #[test]
    fn ls_table() {
        let clusters = [
            json!({"clusterName": "web", "status": "ACTIVE", "runningTasksCount": 3, "pendingTasksCount": 1, "activeServicesCount": 2}),
            json!({"clusterName": "default", "status": "ACTIVE", "runningTasksCount": 0, "pendingTasksCount": 0, "activeServicesCount": 0}),
        ];
        assert_eq!(
            list_table(&clusters).render(),
            "NAME     STATUS  RUNNING  PENDING  SERVICES\n\
             default  ACTIVE  0        0        0\n\
             web      ACTIVE  3        1        2\n"
        );
    }

    #[test]
    fn describe_block() {
        let c = json!({
            "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/web",
            "clusterName": "web", "status": "ACTIVE",
            "registeredContainerInstancesCount": 0, "runningTasksCount": 3, "pendingTasksCount": 0,
            "activeServicesCount": 1, "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "settings": [{"name": "containerInsights", "value": "disabled"}],
            "tags": [{"key": "team", "value": "core"}]
        });
        assert_eq!(
            cluster_fields(&c),
            "name:                 web\n\
             arn:                  arn:aws:ecs:us-east-1:000000000000:cluster/web\n\
             status:               ACTIVE\n\
             running tasks:        3\n\
             pending tasks:        0\n\
             active services:      1\n\
             container instances:  0\n\
             capacity providers:   FARGATE, FARGATE_SPOT\n\
             settings:             containerInsights=disabled\n\
             tags:                 team=core\n"
        );
    }
}
