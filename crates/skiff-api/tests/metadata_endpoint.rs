//! The task metadata endpoint over HTTP: a listener on 127.0.0.1, records in a SQLite store, the four
//! paths GETted with a plain HTTP client.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use skiff_agent::runtime::cgroup::CgroupLayout;
use skiff_api::metadata::MetadataService;
use skiff_model::task::{Attachment, Container, NameValue, Task, TaskRecord};
use skiff_store::{Store, Txn, TxnOutcome};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

const TASK_ID: &str = "5c1a5e9d0b4f4e5c8d3a2b1c0f9e8d7c";
const CLUSTER: &str = "default";

type Client = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn send(client: &Client, method: http::Method, url: &str) -> (http::StatusCode, Option<String>, Vec<u8>) {
    let req = http::Request::builder().method(method).uri(url).body(Empty::new()).unwrap();
    let resp = client.request(req).await.expect("request");
    let status = resp.status();
    let ctype = resp.headers().get(http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
    (status, ctype, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

async fn get_json(client: &Client, url: &str) -> serde_json::Value {
    let (status, ctype, body) = send(client, http::Method::GET, url).await;
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    assert_eq!(ctype.as_deref(), Some("application/json"));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}: {}", String::from_utf8_lossy(&body)))
}

async fn put(store: &dyn Store, key: &str, value: serde_json::Value) {
    let outcome = store.txn(Txn::new().put(key, serde_json::to_vec(&value).unwrap())).await.unwrap();
    assert!(matches!(outcome, TxnOutcome::Committed(_)));
}

fn task_record() -> TaskRecord {
    let arn = |r: &str| format!("arn:aws:ecs:us-east-1:000000000000:{r}");
    let container = |name: &str, n: u32| Container {
        container_arn: arn(&format!("container/{CLUSTER}/{TASK_ID}/{name}")),
        task_arn: arn(&format!("task/{CLUSTER}/{TASK_ID}")),
        name: name.into(),
        image: "busybox:latest".into(),
        image_digest: Some(format!("sha256:{}", "cd".repeat(32))),
        runtime_id: Some(format!("{TASK_ID}-{n}")),
        last_status: "RUNNING".into(),
        cpu: Some("0".into()),
        memory: Some("256".into()),
        ..Default::default()
    };
    TaskRecord {
        task: Task {
            task_arn: arn(&format!("task/{CLUSTER}/{TASK_ID}")),
            cluster_arn: arn(&format!("cluster/{CLUSTER}")),
            task_definition_arn: arn("task-definition/probe:3"),
            attachments: vec![Attachment {
                id: "att-1".into(),
                r#type: "ElasticNetworkInterface".into(),
                status: "ATTACHED".into(),
                details: [
                    ("subnetId", "subnet-00000000000000001"),
                    ("macAddress", "0a:58:0a:00:00:07"),
                    ("privateDnsName", "ip-10-0-0-7.ec2.internal"),
                    ("privateIPv4Address", "10.0.0.7"),
                ]
                .iter()
                .map(|(n, v)| NameValue { name: n.to_string(), value: v.to_string() })
                .collect(),
            }],
            availability_zone: "us-east-1b".into(),
            containers: vec![container("app", 1), container("side-car_2", 2)],
            cpu: "256".into(),
            memory: "512".into(),
            desired_status: "RUNNING".into(),
            last_status: "RUNNING".into(),
            launch_type: Some("FARGATE".into()),
            pull_started_at: Some(1_700_000_000_000),
            pull_stopped_at: Some(1_700_000_001_000),
            started_at: Some(1_700_000_002_000),
            version: 1,
            ..Default::default()
        },
        subnet_id: "subnet-00000000000000001".into(),
        ..Default::default()
    }
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn serves_the_four_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(skiff_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
    put(store.as_ref(), &skiff_model::task::keys::task(CLUSTER, TASK_ID), serde_json::to_value(task_record()).unwrap())
        .await;
    // A task in another cluster that sorts first: the lookup must pick the right one.
    let mut other = task_record();
    other.task.task_arn = "arn:aws:ecs:us-east-1:000000000000:task/aaa/ffffffffffffffffffffffffffffffff".into();
    put(
        store.as_ref(),
        &skiff_model::task::keys::task("aaa", "ffffffffffffffffffffffffffffffff"),
        serde_json::to_value(other).unwrap(),
    )
    .await;
    put(
        store.as_ref(),
        &skiff_model::vpc::keys::subnet("subnet-00000000000000001"),
        serde_json::to_value(skiff_model::vpc::Subnet {
            subnet_id: "subnet-00000000000000001".into(),
            cidr_block: "10.0.0.0/24".into(),
            ..Default::default()
        })
        .unwrap(),
    )
    .await;
    put(
        store.as_ref(),
        "ecs/taskdefs/probe/0000000003",
        serde_json::json!({
            "taskDefinition": {
                "family": "probe",
                "revision": 3,
                "containerDefinitions": [{
                    "name": "app",
                    "image": "busybox:latest",
                    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/probe", "awslogs-stream-prefix": "p"}}
                }]
            },
            "tags": []
        }),
    )
    .await;

    // A cgroup v2 tree for "app"; "side-car_2" has none (its stats are null).
    let cg = dir.path().join("cgroup");
    let app = cg.join("skiff").join(TASK_ID).join("app");
    write(
        &app.join("cpu.stat"),
        "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    );
    write(&app.join("memory.current"), "1048576\n");
    write(&app.join("memory.max"), "268435456\n");
    write(&app.join("memory.stat"), "anon 4096\n");
    write(&app.join("pids.current"), "1\n");
    let resolv = dir.path().join("resolv.conf");
    write(&resolv, "nameserver 127.0.0.53\nnameserver 10.0.0.2\n");

    let service = MetadataService::with_store(store.clone(), [7; 32])
        .with_cgroup_layout(CgroupLayout::V2 { root: cg })
        .with_resolv_conf(&resolv);
    let addr = service.ensure_listener_at("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let again = service.ensure_listener_at(addr).await.unwrap();
    assert_eq!(again, addr, "a second call for a bound address reuses the listener");

    let SocketAddr::V4(v4) = addr else { panic!("{addr}") };
    let base =
        service.uri(*v4.ip(), TASK_ID, "app").replace(&format!(":{}/", service.port()), &format!(":{}/", addr.port()));
    assert!(base.starts_with(&format!("http://127.0.0.1:{}/v4/{TASK_ID}-", addr.port())), "{base}");
    let client = client();

    let container = get_json(&client, &base).await;
    for member in [
        "DockerId",
        "Name",
        "DockerName",
        "Image",
        "ImageID",
        "Labels",
        "DesiredStatus",
        "KnownStatus",
        "Limits",
        "CreatedAt",
        "StartedAt",
        "Type",
        "LogDriver",
        "LogOptions",
        "ContainerARN",
        "Networks",
    ] {
        assert!(container.get(member).is_some(), "{member} missing: {container}");
    }
    assert_eq!(container["DockerId"], format!("{TASK_ID}-1"));
    assert_eq!(container["Labels"]["com.amazonaws.ecs.task-definition-family"], "probe");
    assert_eq!(container["LogOptions"]["awslogs-stream"], format!("p/app/{TASK_ID}"));
    let net = &container["Networks"][0];
    assert_eq!(net["IPv4Addresses"][0], "10.0.0.7");
    assert_eq!(net["IPv4SubnetCIDRBlock"], "10.0.0.0/24");
    assert_eq!(net["SubnetGatewayIpv4Address"], "10.0.0.1/24");
    assert_eq!(net["DomainNameServers"], serde_json::json!(["10.0.0.2"]));
    assert_eq!(net["MACAddress"], "0a:58:0a:00:00:07");
    assert_eq!(net["PrivateDNSName"], "ip-10-0-0-7.ec2.internal");

    let task = get_json(&client, &format!("{base}/task")).await;
    for member in [
        "Cluster",
        "TaskARN",
        "Family",
        "Revision",
        "DesiredStatus",
        "KnownStatus",
        "Limits",
        "PullStartedAt",
        "PullStoppedAt",
        "AvailabilityZone",
        "LaunchType",
        "Containers",
    ] {
        assert!(task.get(member).is_some(), "{member} missing: {task}");
    }
    assert_eq!(task["TaskARN"], format!("arn:aws:ecs:us-east-1:000000000000:task/{CLUSTER}/{TASK_ID}"));
    assert_eq!(task["Limits"], serde_json::json!({"CPU": 0.25, "Memory": 512}));
    assert_eq!(task["Containers"].as_array().unwrap().len(), 2);

    let stats = get_json(&client, &format!("{base}/stats")).await;
    for member in ["read", "preread", "pids_stats", "cpu_stats", "precpu_stats", "memory_stats", "name", "id"] {
        assert!(stats.get(member).is_some(), "{member} missing: {stats}");
    }
    assert_eq!(stats["cpu_stats"]["cpu_usage"]["total_usage"], 2_500_000);
    assert_eq!(stats["memory_stats"]["usage"], 1_048_576);
    assert_eq!(stats["memory_stats"]["limit"], 268_435_456);
    assert_eq!(stats["pids_stats"]["current"], 1);
    assert_eq!(stats["id"], format!("{TASK_ID}-1"));
    assert!(stats["cpu_stats"]["system_cpu_usage"].as_u64().is_some_and(|v| v > 0), "real /proc/stat: {stats}");
    // The second read has the first as its previous sample.
    let stats2 = get_json(&client, &format!("{base}/stats")).await;
    assert_eq!(stats2["preread"], stats["read"]);
    assert_eq!(stats2["precpu_stats"]["cpu_usage"]["total_usage"], 2_500_000);

    let task_stats = get_json(&client, &format!("{base}/task/stats")).await;
    let map = task_stats.as_object().unwrap();
    assert_eq!(map.len(), 2, "{task_stats}");
    assert_eq!(map[&format!("{TASK_ID}-1")]["id"], format!("{TASK_ID}-1"));
    assert!(map[&format!("{TASK_ID}-2")].is_null());

    // The sidecar's own token and version 3.
    let side = service
        .uri_v3(*v4.ip(), TASK_ID, "side-car_2")
        .replace(&format!(":{}/", service.port()), &format!(":{}/", addr.port()));
    let v3 = get_json(&client, &side).await;
    assert_eq!(v3["Name"], "side-car_2");
    assert!(v3.get("ContainerARN").is_none());
    assert_eq!(get_json(&client, &format!("{side}/stats")).await, serde_json::json!({}));

    // Unknown paths, forged tokens, other methods.
    let root = format!("http://{addr}");
    let forged = base.replace("-app", "-side-car_2");
    for url in
        [format!("{root}/"), format!("{root}/v4/"), format!("{base}/nope"), forged, format!("{root}/v4/{TASK_ID}")]
    {
        let (status, _, _) = send(&client, http::Method::GET, &url).await;
        assert_eq!(status, 404, "{url}");
    }
    let (status, _, _) = send(&client, http::Method::POST, &base).await;
    assert_eq!(status, 405);
    // A token for a task that does not exist (yet, or any more).
    let ghost =
        service.uri(*v4.ip(), "0000", "app").replace(&format!(":{}/", service.port()), &format!(":{}/", addr.port()));
    let (status, _, _) = send(&client, http::Method::GET, &ghost).await;
    assert_eq!(status, 404);
}
