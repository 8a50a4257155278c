//! `skiff logs TASK`: a task's container logs. The task and its containers come from the API
//! (DescribeTasks, and DescribeTaskDefinition for the awslogs stream prefixes); the lines come from the log
//! files conmon writes under `DATA_DIR/agent/runtime/logs/<runtimeId>.log`, read directly with
//! [`LogReader`] — so the command runs on the server's host, with the server's data directory.
//!
//! Several containers' lines are merged by time, each line led by the name the awslogs driver gives the
//! container's stream: `PREFIX/CONTAINER/TASK_ID` (`CONTAINER/TASK_ID` without an `awslogs-stream-prefix`).
//! Both stdout and stderr go to standard output, in the order conmon read them, as in one awslogs stream.

use super::{print, Context};
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use skiff_agent::runtime::{LogEntry, LogReader, LogStream};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often `--follow` asks the server whether the task has stopped (and for containers that started).
const DESCRIBE_INTERVAL: Duration = Duration::from_secs(1);
/// How often `--follow` looks at the log files for new lines.
const READ_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// The task: its id or its ARN
    #[arg(value_name = "TASK")]
    pub task: String,

    /// Keep printing new lines until the task is STOPPED (containers that start later are picked up)
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Only this container's lines (no stream name before them)
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,

    /// The task's cluster [default: the cluster in TASK's ARN, else "default"]
    #[arg(long, value_name = "CLUSTER")]
    pub cluster: Option<String>,

    /// Start each line with the time conmon read it (RFC 3339, nanoseconds)
    #[arg(long, short = 't')]
    pub timestamps: bool,
}

/// One container whose log is printed.
struct Source {
    container: String,
    /// The awslogs stream name.
    stream_name: String,
    runtime_id: Option<String>,
    reader: Option<LogReader>,
}

/// How lines are printed.
#[derive(Debug, Clone, Copy)]
struct Format {
    /// Lead each line with its stream's name (several containers).
    stream_names: bool,
    timestamps: bool,
    /// One JSON object per line (`--output json`).
    json: bool,
}

pub async fn run(ctx: &Context, data_dir: &Path, args: LogsArgs) -> anyhow::Result<()> {
    let cluster = cluster_of(&args.task, args.cluster.as_deref());
    let log_dir = data_dir.join("agent").join("runtime").join("logs");
    let task = describe_task(ctx, &cluster, &args.task).await?.with_context(|| {
        format!("task {} not found in cluster {cluster}: check `aws ecs list-tasks --cluster {cluster}`", args.task)
    })?;
    let task_arn = task["taskArn"].as_str().unwrap_or(&args.task).to_string();
    let task_id = task_arn.rsplit('/').next().unwrap_or(&task_arn).to_string();
    if !log_dir.is_dir() {
        bail!(
            "no container logs under {}: `skiff logs` reads the log files in the server's data directory, so run \
             it on the server's host with --data-dir (or SKIFF_DATA_DIR) set to the server's --data-dir",
            log_dir.display()
        );
    }

    let prefixes = match task["taskDefinitionArn"].as_str() {
        Some(td) => stream_prefixes(ctx, td).await,
        None => HashMap::new(),
    };
    let mut sources = select_sources(&task, &task_id, &prefixes, args.container.as_deref())?;
    let format = Format { stream_names: sources.len() > 1, timestamps: args.timestamps, json: ctx.is_json() };

    if args.follow {
        return follow(ctx, &cluster, &task_arn, &log_dir, &mut sources, format).await;
    }

    let status = task["lastStatus"].as_str().unwrap_or("UNKNOWN");
    let not_started: Vec<&str> =
        sources.iter().filter(|s| s.runtime_id.is_none()).map(|s| s.container.as_str()).collect();
    if not_started.len() == sources.len() {
        let stopped = status == "STOPPED";
        let which = match (not_started.as_slice(), stopped) {
            ([one], false) => format!("container {one} of task {task_id} has not started yet"),
            ([one], true) => format!("container {one} of task {task_id} never started"),
            (_, false) => format!("no container of task {task_id} has started yet"),
            (_, true) => format!("no container of task {task_id} ever started"),
        };
        if stopped {
            let reason = task["stoppedReason"].as_str().unwrap_or("no reason given");
            bail!("{which}, so it logged nothing: the task stopped ({reason})");
        }
        let again = match cluster.as_str() {
            "default" => format!("skiff logs -f {task_id}"),
            other => format!("skiff logs -f {task_id} --cluster {other}"),
        };
        bail!("{which} (the task is {status}), so nothing is logged yet: `{again}` waits for it");
    }
    for name in &not_started {
        eprintln!("note: container {name} of task {task_id} has not started (the task is {status}): no lines from it");
    }
    for s in sources.iter_mut() {
        let Some(id) = &s.runtime_id else { continue };
        let path = log_path(&log_dir, id)?;
        if !path.exists() {
            bail!(
                "container {} of task {task_id} has no log file at {}: is --data-dir (or SKIFF_DATA_DIR) the \
                 server's --data-dir, and does this host run the task?",
                s.container,
                path.display()
            );
        }
        s.reader = Some(LogReader::open(path));
    }
    print_batch(&mut sources, format, true)
}

/// `--follow`: prints what is there, then new lines as they come, until the task is STOPPED; then the rest.
async fn follow(
    ctx: &Context,
    cluster: &str,
    task_arn: &str,
    log_dir: &Path,
    sources: &mut [Source],
    format: Format,
) -> anyhow::Result<()> {
    let mut last_describe: Option<Instant> = None;
    loop {
        let mut stopped = None;
        if last_describe.is_none_or(|t| t.elapsed() >= DESCRIBE_INTERVAL) {
            last_describe = Some(Instant::now());
            match describe_task(ctx, cluster, task_arn).await? {
                // A task record that went away has stopped long ago.
                None => stopped = Some(Value::Null),
                Some(task) => {
                    note_runtime_ids(sources, &task);
                    if task["lastStatus"] == "STOPPED" {
                        stopped = Some(task);
                    }
                }
            }
            for s in sources.iter_mut().filter(|s| s.reader.is_none()) {
                if let Some(id) = &s.runtime_id {
                    s.reader = Some(LogReader::open(log_path(log_dir, id)?));
                }
            }
        }
        if let Some(task) = stopped {
            // Every container has exited (conmon synced its log): the rest, with unterminated last lines.
            print_batch(sources, format, true)?;
            if sources.iter().all(|s| s.runtime_id.is_none()) {
                let reason = task["stoppedReason"].as_str().unwrap_or("no reason given");
                eprintln!("note: task {task_arn} stopped before any of these containers started: {reason}");
            }
            return Ok(());
        }
        print_batch(sources, format, false)?;
        tokio::time::sleep(READ_INTERVAL).await;
    }
}

/// Reads what each source's log holds beyond what was printed, and prints it merged by time. `to_end`: the
/// containers have exited, so unterminated last lines are complete.
fn print_batch(sources: &mut [Source], format: Format, to_end: bool) -> anyhow::Result<()> {
    let mut batches = Vec::with_capacity(sources.len());
    for s in sources.iter_mut() {
        let entries = match s.reader.as_mut() {
            None => Ok(vec![]),
            Some(r) if to_end => r.read_to_end(),
            Some(r) => r.read_available(),
        }
        .with_context(|| format!("cannot read the log of container {}", s.container))?;
        batches.push(entries);
    }
    let mut out = String::new();
    for (i, entry) in merge_by_time(batches) {
        out.push_str(&render(&entry, &sources[i].stream_name, format));
    }
    if out.is_empty() {
        return Ok(());
    }
    print(&out)
}

/// One line as printed: `[TIMESTAMP ][STREAM ]LINE`, or a JSON object (`--output json`).
fn render(entry: &LogEntry, stream_name: &str, format: Format) -> String {
    if format.json {
        let source = match entry.stream {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        };
        let v = json!({"logStreamName": stream_name, "timestamp": entry.timestamp, "source": source,
                       "message": entry.line});
        return format!("{v}\n");
    }
    let mut line = String::with_capacity(entry.line.len() + 64);
    if format.timestamps {
        line.push_str(&entry.timestamp);
        line.push(' ');
    }
    if format.stream_names {
        line.push_str(stream_name);
        line.push(' ');
    }
    line.push_str(&entry.line);
    line.push('\n');
    line
}

/// Merges each source's lines (each already in its file's order) by timestamp; ties keep source order.
fn merge_by_time(batches: Vec<Vec<LogEntry>>) -> Vec<(usize, LogEntry)> {
    let mut queues: Vec<VecDeque<(i128, LogEntry)>> =
        batches.into_iter().map(|b| b.into_iter().map(|e| (timestamp_key(&e.timestamp), e)).collect()).collect();
    let mut out = Vec::with_capacity(queues.iter().map(VecDeque::len).sum());
    loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|(k, _)| (*k, i)))
            .min_by_key(|(k, i)| (*k, *i));
        let Some((_, i)) = next else { return out };
        if let Some((_, e)) = queues[i].pop_front() {
            out.push((i, e));
        }
    }
}

/// Nanoseconds since the epoch of an RFC 3339 timestamp; an unreadable one sorts first.
fn timestamp_key(ts: &str) -> i128 {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp_nanos())
        .unwrap_or(i128::MIN)
}

/// The cluster to ask: `--cluster`, else the one TASK's (long) ARN names, else `default`.
fn cluster_of(task: &str, cluster: Option<&str>) -> String {
    let from_arn = skiff_model::task::parse_task_reference(task).and_then(|r| r.cluster);
    cluster.map(str::to_string).or(from_arn).unwrap_or_else(|| "default".to_string())
}

/// The task (`None` when the cluster has no such task).
async fn describe_task(ctx: &Context, cluster: &str, task: &str) -> anyhow::Result<Option<Value>> {
    let response = match ctx.ecs("DescribeTasks", json!({"cluster": cluster, "tasks": [task]})).await {
        Ok(r) => r,
        Err(e) if e.code() == Some("ClusterNotFoundException") => {
            return Err(e).with_context(|| format!("cluster {cluster} not found: check `aws ecs list-clusters`"));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot describe task {task} in cluster {cluster}")),
    };
    Ok(response["tasks"].as_array().and_then(|t| t.first()).cloned())
}

/// `awslogs-stream-prefix` by container name, from the task's definition (none when it cannot be read).
async fn stream_prefixes(ctx: &Context, task_definition: &str) -> HashMap<String, String> {
    match ctx.ecs("DescribeTaskDefinition", json!({"taskDefinition": task_definition})).await {
        Ok(r) => prefixes_of(&r["taskDefinition"]),
        Err(e) => {
            tracing::debug!(error = %e, task_definition, "no stream prefixes");
            HashMap::new()
        }
    }
}

fn prefixes_of(task_definition: &Value) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for c in task_definition["containerDefinitions"].as_array().into_iter().flatten() {
        let lc = &c["logConfiguration"];
        if lc["logDriver"] != "awslogs" {
            continue;
        }
        if let (Some(name), Some(prefix)) = (c["name"].as_str(), lc["options"]["awslogs-stream-prefix"].as_str()) {
            if !prefix.is_empty() {
                out.insert(name.to_string(), prefix.to_string());
            }
        }
    }
    out
}

/// The awslogs stream name of a container of a task.
fn stream_name(prefix: Option<&str>, container: &str, task_id: &str) -> String {
    match prefix {
        Some(p) => format!("{p}/{container}/{task_id}"),
        None => format!("{container}/{task_id}"),
    }
}

/// The task's containers to print (all, or the one `--container` names).
fn select_sources(
    task: &Value,
    task_id: &str,
    prefixes: &HashMap<String, String>,
    only: Option<&str>,
) -> anyhow::Result<Vec<Source>> {
    let containers: Vec<&Value> = task["containers"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let names: Vec<&str> = containers.iter().filter_map(|c| c["name"].as_str()).collect();
    if let Some(only) = only {
        if !names.contains(&only) {
            bail!("task {task_id} has no container {only} (its containers: {})", names.join(", "));
        }
    }
    Ok(containers
        .iter()
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            if only.is_some_and(|o| o != name) {
                return None;
            }
            Some(Source {
                container: name.to_string(),
                stream_name: stream_name(prefixes.get(name).map(String::as_str), name, task_id),
                runtime_id: c["runtimeId"].as_str().filter(|id| !id.is_empty()).map(str::to_string),
                reader: None,
            })
        })
        .collect())
}

/// Takes the runtime ids of containers that started since the last look.
fn note_runtime_ids(sources: &mut [Source], task: &Value) {
    for c in task["containers"].as_array().into_iter().flatten() {
        let (Some(name), Some(id)) = (c["name"].as_str(), c["runtimeId"].as_str()) else { continue };
        if let Some(s) = sources.iter_mut().find(|s| s.container == name && s.runtime_id.is_none()) {
            if !id.is_empty() {
                s.runtime_id = Some(id.to_string());
            }
        }
    }
}

/// `LOG_DIR/<runtimeId>.log`; a runtime id that is not a plain file name is refused.
fn log_path(log_dir: &Path, runtime_id: &str) -> anyhow::Result<PathBuf> {
    if runtime_id.is_empty() || runtime_id.starts_with('.') || runtime_id.contains(['/', '\0']) {
        bail!("the server reported the runtime id {runtime_id:?}, which is not a log file name");
    }
    Ok(log_dir.join(format!("{runtime_id}.log")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: &str, line: &str) -> LogEntry {
        LogEntry { timestamp: ts.into(), stream: LogStream::Stdout, line: line.into() }
    }

    #[test]
    fn task_references() {
        let arn = "arn:aws:ecs:us-east-1:123456789012:task/web/0123456789abcdef0123456789abcdef";
        assert_eq!(cluster_of(arn, None), "web");
        assert_eq!(cluster_of(arn, Some("other")), "other");
        assert_eq!(cluster_of("0123456789abcdef0123456789abcdef", None), "default");
        assert_eq!(cluster_of("abc", Some("x")), "x");
        assert_eq!(cluster_of("arn:aws:ecs:us-east-1:1:task/0123456789abcdef0123456789abcdef", None), "default");
    }

    #[test]
    fn stream_names_follow_awslogs() {
        let td = json!({"containerDefinitions": [
            {"name": "app", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-stream-prefix": "web"}}},
            {"name": "side", "logConfiguration": {"logDriver": "splunk", "options": {"awslogs-stream-prefix": "no"}}},
            {"name": "bare"}
        ]});
        let p = prefixes_of(&td);
        assert_eq!(p.len(), 1);
        assert_eq!(stream_name(p.get("app").map(String::as_str), "app", "t1"), "web/app/t1");
        assert_eq!(stream_name(p.get("side").map(String::as_str), "side", "t1"), "side/t1");
    }

    #[test]
    fn selection_and_unknown_container() {
        let task = json!({"containers": [{"name": "a", "runtimeId": "t-0"}, {"name": "b"}]});
        let all = select_sources(&task, "t", &HashMap::new(), None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].runtime_id.as_deref(), Some("t-0"));
        assert!(all[1].runtime_id.is_none());
        assert_eq!(select_sources(&task, "t", &HashMap::new(), Some("b")).unwrap().len(), 1);
        let err = select_sources(&task, "t", &HashMap::new(), Some("c")).err().unwrap().to_string();
        assert_eq!(err, "task t has no container c (its containers: a, b)");
    }

    #[test]
    fn merges_by_time_keeping_each_files_order() {
        let a = vec![
            entry("2026-01-01T00:00:01.000000000+00:00", "a1"),
            entry("2026-01-01T00:00:03.000000000+00:00", "a2"),
        ];
        let b = vec![
            entry("2026-01-01T00:00:00.500000000+00:00", "b1"),
            entry("2026-01-01T01:00:02.000000000+01:00", "b2"),
            entry("2026-01-01T00:00:04.000000000+00:00", "b3"),
        ];
        let got: Vec<String> = merge_by_time(vec![a, b]).into_iter().map(|(i, e)| format!("{i}{}", e.line)).collect();
        assert_eq!(got, ["1b1", "0a1", "1b2", "0a2", "1b3"]);
    }

    #[test]
    fn lines_render() {
        let e = entry("2026-01-01T00:00:01.000000000+00:00", "hello");
        let plain = Format { stream_names: false, timestamps: false, json: false };
        assert_eq!(render(&e, "p/c/t", plain), "hello\n");
        let both = Format { stream_names: true, timestamps: true, ..plain };
        assert_eq!(render(&e, "p/c/t", both), "2026-01-01T00:00:01.000000000+00:00 p/c/t hello\n");
        let j: Value = serde_json::from_str(&render(&e, "p/c/t", Format { json: true, ..plain })).unwrap();
        assert_eq!(j["logStreamName"], "p/c/t");
        assert_eq!(j["source"], "stdout");
        assert_eq!(j["message"], "hello");
    }

    #[test]
    fn log_paths_stay_in_the_log_directory() {
        assert_eq!(log_path(Path::new("/d"), "t-0").unwrap(), PathBuf::from("/d/t-0.log"));
        assert!(log_path(Path::new("/d"), "../x").is_err());
        assert!(log_path(Path::new("/d"), "a/b").is_err());
    }
}
