//! Per-task networking against the real kernel: namespaces, veths, a bridge and an nft table, all named
//! uniquely by each test and removed by a guard even when the test fails. Needs root (skips otherwise).
//! Traffic goes only between the host and namespaces these tests create.
//!
//! Run: `cargo test -p skiff-agent --test network -- --nocapture` (the tests serialize themselves).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use nix::sched::CloneFlags;
use skiff_agent::network::{Ipv4Net, Network, NetworkConfig, NetworkError, SubnetSpec, TaskNetwork};

/// A test's own subnet, bridge prefix, nft table and directories; dropping it removes all of them.
struct TestNet {
    config: NetworkConfig,
    subnets: Vec<SubnetSpec>,
    _dir: tempfile::TempDir,
    /// Released after the cleanup in `drop`.
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The tests of this file run one at a time even without `--test-threads=1`: they count the process's
/// open fds and time attaches.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn random_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

impl TestNet {
    /// `None` (with a message) when not root.
    async fn new() -> Option<TestNet> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: network tests need root (namespaces, veths, bridges, nftables)");
            return None;
        }
        let serial = SERIAL.lock().await;
        let r = random_bytes();
        let dir = tempfile::tempdir().expect("temp dir");
        let tag = hex::encode(&r[..3]);
        let config = NetworkConfig {
            state_dir: dir.path().join("state"),
            netns_dir: dir.path().join("netns"),
            bridge_prefix: format!("t{}", &tag[..5]),
            nft_table: format!("skifftest_{tag}"),
        };
        let cidr: Ipv4Net = format!("10.{}.{}.0/24", 100 + r[3] % 150, r[4]).parse().expect("cidr");
        let subnet = SubnetSpec { id: format!("subnet-test{tag}"), cidr };
        Some(TestNet { config, subnets: vec![subnet], _dir: dir, _serial: serial })
    }

    fn subnet(&self) -> &SubnetSpec {
        &self.subnets[0]
    }

    /// A second, tiny subnet (a /30 holds one task).
    fn tiny_subnet(&mut self) -> SubnetSpec {
        let r = random_bytes();
        let cidr: Ipv4Net = format!("10.{}.{}.{}/30", 100 + r[0] % 150, r[1], (r[2] % 64) * 4).parse().expect("cidr");
        let subnet = SubnetSpec { id: format!("subnet-tiny{}", hex::encode(&r[3..6])), cidr };
        self.subnets.push(subnet.clone());
        subnet
    }

    async fn open(&self) -> Network {
        Network::open(self.config.clone()).await.expect("open network")
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let config = self.config.clone();
        let subnets = self.subnets.clone();
        // Drop may run inside the test's runtime: clean up from a thread with a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let Ok(network) = Network::open(config.clone()).await else { return };
                for task in network.list_attached().await.unwrap_or_default() {
                    if let Err(e) = network.detach(&task).await {
                        eprintln!("cleanup: detach {}: {e}", task.task_id);
                    }
                }
                // Namespace files this test created (its own temp directory).
                if let Ok(entries) = std::fs::read_dir(&config.netns_dir) {
                    for entry in entries.flatten() {
                        let task_id = entry.file_name().to_string_lossy().into_owned();
                        if let Err(e) = network.detach_by_id(&task_id).await {
                            eprintln!("cleanup: detach_by_id {task_id}: {e}");
                        }
                    }
                }
                for subnet in &subnets {
                    if let Err(e) = network.teardown_subnet(&subnet.id).await {
                        eprintln!("cleanup: teardown {}: {e}", subnet.id);
                    }
                }
            });
            // The table this test named, in case teardown did not get that far.
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", &config.nft_table])
                .stderr(std::process::Stdio::null())
                .status();
        });
        let _ = cleanup.join();
    }
}

/// Runs `f` on a thread that entered the namespace at `netns` (the thread ends afterwards).
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).expect("open netns file");
        nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// A TCP echo server inside the namespace: answers `n` connections with "pong:<what was sent>".
fn listen_in(netns: &Path, n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = in_netns(netns, move || {
        let listener = TcpListener::bind("0.0.0.0:0").expect("bind in netns");
        tx.send(listener.local_addr().expect("local addr").port()).expect("send port");
        listener.set_nonblocking(true).expect("nonblocking");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut served = 0;
        while served < n {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking");
                    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                    let mut buf = [0u8; 64];
                    let len = stream.read(&mut buf).expect("read");
                    let mut reply = b"pong:".to_vec();
                    reply.extend_from_slice(&buf[..len]);
                    stream.write_all(&reply).expect("write");
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "listener in netns got {served} of {n} connections in 10 s");
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    let port = rx.recv_timeout(Duration::from_secs(5)).expect("listener port");
    (port, server)
}

/// The MAC of `eth0` inside the namespace, asked over a netlink socket opened inside it.
fn eth0_mac_in(netns: &Path) -> String {
    in_netns(netns, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection().expect("netlink in netns");
            tokio::spawn(connection);
            let link = handle.link().get().match_name("eth0").execute().try_next().await;
            let link = link.expect("get eth0").expect("eth0 exists");
            let mac = link.attributes.iter().find_map(|a| match a {
                LinkAttribute::Address(mac) => Some(mac.clone()),
                _ => None,
            });
            mac.expect("eth0 has a MAC").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
        })
    })
    .join()
    .expect("netns thread")
}

fn exchange(addr: SocketAddr, message: &str) -> String {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.write_all(message.as_bytes()).expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    reply
}

/// Nothing of the test's tasks remains: no bridge port, veth, namespace file, record or address.
async fn assert_clean(network: &Network, env: &TestNet, veths: &[String]) {
    for subnet in &env.subnets {
        let ports = network.bridge_ports(&subnet.id).await.expect("bridge ports");
        assert!(ports.is_empty(), "bridge of {} still has ports {ports:?}", subnet.id);
        let ipam = env.config.state_dir.join("ipam").join(&subnet.id);
        let left: Vec<_> =
            std::fs::read_dir(&ipam).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "addresses still allocated in {}: {left:?}", ipam.display());
    }
    for veth in veths {
        assert!(!network.link_exists(veth).await.expect("link lookup"), "veth {veth} still exists");
    }
    let netns: Vec<_> =
        std::fs::read_dir(&env.config.netns_dir).expect("netns dir").flatten().map(|e| e.file_name()).collect();
    assert!(netns.is_empty(), "namespace files left: {netns:?}");
    let tasks: Vec<_> = std::fs::read_dir(env.config.state_dir.join("tasks"))
        .expect("tasks dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tasks.is_empty(), "task records left: {tasks:?}");
    assert!(network.list_attached().await.expect("list").is_empty());
}

fn task_id(n: usize) -> String {
    format!("{}{n:04}", hex::encode(&random_bytes()[..12]))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reaches_tasks_and_tasks_reach_each_other() {
    let Some(env) = TestNet::new().await else { return };
    let network = env.open().await;
    let subnet = env.subnet().clone();
    network.prepare_subnet(&subnet).await.expect("prepare subnet");
    network.prepare_subnet(&subnet).await.expect("prepare subnet again (idempotent)");

    // One table with the subnet's masquerade and forward rules.
    let listed = std::process::Command::new("nft")
        .args(["list", "table", "ip", &env.config.nft_table])
        .output()
        .expect("run nft list");
    let ruleset = String::from_utf8_lossy(&listed.stdout);
    let bridge = network.bridge_name(&subnet.id);
    assert!(ruleset.contains(&format!("ip saddr {} oifname != \"{bridge}\" masquerade", subnet.cidr)), "{ruleset}");
    assert!(ruleset.contains(&format!("iifname \"{bridge}\" accept")), "{ruleset}");
    assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim(), "1");

    let a = network.attach(&task_id(1), &subnet, "task-a.internal").await.expect("attach a");
    let b = network.attach(&task_id(2), &subnet, "task-b.internal").await.expect("attach b");

    assert_ne!(a.ipv4, b.ipv4);
    for task in [&a, &b] {
        assert!(subnet.cidr.contains(&task.ipv4), "{} outside {}", task.ipv4, subnet.cidr);
        assert_ne!(task.ipv4, subnet.cidr.network());
        assert_ne!(task.ipv4, subnet.cidr.broadcast());
        assert_ne!(task.ipv4, subnet.gateway());
        assert_eq!(task.gateway, subnet.gateway());
        assert_eq!(task.prefix_len, 24);
        assert!(task.mac.starts_with("0a:") && task.mac.len() == 17, "mac {}", task.mac);
        assert!(task.host_veth.len() <= 15);
        assert!(network.link_exists(&task.host_veth).await.unwrap(), "veth {} missing", task.host_veth);
        assert!(task.netns_path.starts_with(&env.config.netns_dir));
        assert!(task.netns_path.exists());
    }
    let mut ports = network.bridge_ports(&subnet.id).await.unwrap();
    ports.sort();
    let mut veths = vec![a.host_veth.clone(), b.host_veth.clone()];
    veths.sort();
    assert_eq!(ports, veths);

    // /etc/hosts and /etc/resolv.conf.
    let hosts = std::fs::read_to_string(&a.hosts_file).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains(&format!("{}\ttask-a.internal\n", a.ipv4)), "{hosts}");
    let resolv = std::fs::read_to_string(&a.resolv_conf).unwrap();
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for line in
        host_resolv.lines().filter(|l| l.starts_with("nameserver") && !l.contains(" 127.") && !l.contains("::1"))
    {
        assert!(resolv.contains(line.trim()), "{line:?} missing from {resolv}");
    }

    // Inside A: eth0 carries A's MAC (what DescribeTasks reports).
    assert_eq!(eth0_mac_in(&a.netns_path), a.mac);

    // The host reaches each task at IP:port.
    for task in [&a, &b] {
        let (port, server) = listen_in(&task.netns_path, 1);
        let reply = exchange(SocketAddr::V4(SocketAddrV4::new(task.ipv4, port)), "from-host");
        assert_eq!(reply, "pong:from-host");
        server.join().expect("server");
    }

    // Task A reaches task B by IP (through the bridge), and a task reaches itself on localhost.
    let (port, server) = listen_in(&b.netns_path, 2);
    let b_addr = SocketAddr::V4(SocketAddrV4::new(b.ipv4, port));
    let reply = in_netns(&a.netns_path, move || exchange(b_addr, "from-a")).join().expect("client in a");
    assert_eq!(reply, "pong:from-a");
    let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let reply = in_netns(&b.netns_path, move || exchange(local, "from-b")).join().expect("client in b");
    assert_eq!(reply, "pong:from-b");
    server.join().expect("server");

    // Detach is idempotent, by record or by id.
    network.detach(&a).await.expect("detach a");
    network.detach(&a).await.expect("detach a twice");
    network.detach_by_id(&b.task_id).await.expect("detach b by id");
    network.detach_by_id(&b.task_id).await.expect("detach b by id twice");
    network.detach(&b).await.expect("detach b by record after by id");
    assert_clean(&network, &env, &veths).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_is_unique_under_concurrency_persisted_and_released() {
    let Some(env) = TestNet::new().await else { return };
    let network = Arc::new(env.open().await);
    let subnet = env.subnet().clone();

    network.prepare_subnet(&subnet).await.expect("prepare");
    let started = Instant::now();
    let attaches: Vec<_> = (0..50)
        .map(|n| {
            let network = Arc::clone(&network);
            let subnet = subnet.clone();
            tokio::spawn(async move { network.attach(&task_id(n), &subnet, &format!("task-{n}")).await })
        })
        .collect();
    let mut tasks: Vec<TaskNetwork> = Vec::new();
    for attach in attaches {
        tasks.push(attach.await.expect("join").expect("attach"));
    }
    eprintln!("50 concurrent attaches (cold) took {:?}", started.elapsed());
    let ips: HashSet<Ipv4Addr> = tasks.iter().map(|t| t.ipv4).collect();
    assert_eq!(ips.len(), 50, "duplicate addresses among 50 concurrent attaches");
    assert!(!ips.contains(&subnet.gateway()));
    let ipam_dir = env.config.state_dir.join("ipam").join(&subnet.id);
    assert_eq!(std::fs::read_dir(&ipam_dir).unwrap().count(), 50);
    for task in &tasks {
        let owner = std::fs::read_to_string(ipam_dir.join(task.ipv4.to_string())).unwrap();
        assert_eq!(owner, task.task_id);
    }

    // A second agent on the same state directory (a restart) knows every task and reuses no address.
    let restarted = env.open().await;
    let mut listed = restarted.list_attached().await.expect("list");
    let mut expected = tasks.clone();
    listed.sort_by(|x, y| x.task_id.cmp(&y.task_id));
    expected.sort_by(|x, y| x.task_id.cmp(&y.task_id));
    assert_eq!(listed, expected);
    let adopted = restarted.adopt().await.expect("adopt");
    assert_eq!(adopted.len(), 50);
    let extra = restarted.attach(&task_id(99), &subnet, "extra").await.expect("attach after restart");
    assert!(!ips.contains(&extra.ipv4), "{} reused while allocated", extra.ipv4);

    // An attach of a task already attached fails and leaves the attached one alone.
    let again = restarted.attach(&extra.task_id, &subnet, "extra").await.unwrap_err();
    assert!(matches!(again, NetworkError::AlreadyAttached { .. }), "{again}");
    assert!(restarted.link_exists(&extra.host_veth).await.unwrap());

    // Released on detach: the address file goes, and the address can be handed out again.
    restarted.detach(&tasks[0]).await.expect("detach");
    assert!(!ipam_dir.join(tasks[0].ipv4.to_string()).exists());
    let mut veths: Vec<String> = tasks.iter().map(|t| t.host_veth.clone()).collect();
    veths.push(extra.host_veth.clone());
    for task in tasks.iter().chain([&extra]) {
        restarted.detach(task).await.expect("detach");
    }
    assert_clean(&restarted, &env, &veths).await;
    drop(network);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_subnet_refuses_and_leaves_nothing() {
    let Some(mut env) = TestNet::new().await else { return };
    let network = env.open().await;
    let tiny = env.tiny_subnet();
    let only = network.attach(&task_id(1), &tiny, "only").await.expect("attach the only address");
    assert_eq!(u32::from(only.ipv4), u32::from(tiny.cidr.network()) + 2);
    let refused_id = task_id(2);
    let err = network.attach(&refused_id, &tiny, "refused").await.unwrap_err();
    assert!(matches!(err, NetworkError::SubnetExhausted { .. }), "{err}");
    assert!(!env.config.state_dir.join("tasks").join(&refused_id).exists());
    let conflicting = SubnetSpec { id: tiny.id.clone(), cidr: env.subnet().cidr };
    assert!(matches!(network.attach(&task_id(3), &conflicting, "x").await, Err(NetworkError::SubnetConflict { .. })));
    network.detach(&only).await.expect("detach");
    assert_clean(&network, &env, std::slice::from_ref(&only.host_veth)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_leaks_after_200_attach_detach_cycles() {
    let Some(env) = TestNet::new().await else { return };
    let network = env.open().await;
    let subnet = env.subnet().clone();
    network.prepare_subnet(&subnet).await.expect("prepare");
    // Warm up once so lazily opened runtime fds are not counted as leaks.
    let first = network.attach(&task_id(0), &subnet, "warmup").await.expect("attach");
    network.detach(&first).await.expect("detach");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fds_before = open_fds();
    let mut veths = Vec::new();
    for n in 0..200 {
        if n % 2 == 0 {
            network.warm(1).await.expect("warm");
        }
        let task = network.attach(&task_id(n), &subnet, "cycle").await.expect("attach");
        network.detach(&task).await.expect("detach");
        veths.push(task.host_veth);
    }
    network.warm(0).await.expect("empty the pool");
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > fds_before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fds_after = open_fds();
    assert!(fds_after <= fds_before + 2, "fds grew from {fds_before} to {fds_after} over 200 cycles");
    assert_clean(&network, &env, &veths).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_after_restart_reclaims_orphans_and_torn_records() {
    let Some(env) = TestNet::new().await else { return };
    let subnet = env.subnet().clone();
    let (task, torn) = {
        let network = env.open().await;
        let task = network.attach(&task_id(1), &subnet, "survivor").await.expect("attach");
        let torn = network.attach(&task_id(2), &subnet, "torn").await.expect("attach");
        (task, torn)
    };
    // Task records are not fsynced: a power loss may tear one. Adopt cleans that task up by derived names.
    std::fs::write(env.config.state_dir.join("tasks").join(&torn.task_id).join("network.json"), "{\"task_id\":")
        .unwrap();
    // A crash between allocating an address and recording the task leaves an orphaned address file.
    let orphan = env.config.state_dir.join("ipam").join(&subnet.id).join(subnet.cidr.broadcast().to_string());
    let orphan = orphan.with_file_name(Ipv4Addr::from(u32::from(subnet.cidr.broadcast()) - 1).to_string());
    std::fs::write(&orphan, "crashed-task").unwrap();

    let network = env.open().await;
    let adopted = network.adopt().await.expect("adopt");
    assert_eq!(adopted, vec![task.clone()]);
    assert!(!orphan.exists(), "orphaned address {} not reclaimed", orphan.display());
    assert!(network.link_exists(&task.host_veth).await.unwrap(), "adopt must not disturb attached tasks");
    assert!(!network.link_exists(&torn.host_veth).await.unwrap(), "the torn record's veth survived adopt");
    assert!(!torn.netns_path.exists(), "the torn record's namespace survived adopt");
    let torn_address = env.config.state_dir.join("ipam").join(&subnet.id).join(torn.ipv4.to_string());
    assert!(!torn_address.exists(), "the torn record's address was not released");
    let (port, server) = listen_in(&task.netns_path, 1);
    assert_eq!(exchange(SocketAddr::V4(SocketAddrV4::new(task.ipv4, port)), "after-restart"), "pong:after-restart");
    server.join().expect("server");

    network.detach_by_id(&task.task_id).await.expect("detach by id");
    network.detach_by_id(&task.task_id).await.expect("detach by id twice");
    assert_clean(&network, &env, &[task.host_veth.clone(), torn.host_veth.clone()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pool_refills_in_the_background() {
    let Some(env) = TestNet::new().await else { return };
    let network = env.open().await;
    let subnet = env.subnet().clone();
    assert_eq!(network.warm(3).await.expect("warm"), 3);
    let task = network.attach(&task_id(1), &subnet, "pooled").await.expect("attach");
    let deadline = Instant::now() + Duration::from_secs(10);
    while network.warm_ready() < 3 {
        assert!(Instant::now() < deadline, "pool not refilled to 3 in 10 s: {}", network.warm_ready());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (port, server) = listen_in(&task.netns_path, 1);
    assert_eq!(exchange(SocketAddr::V4(SocketAddrV4::new(task.ipv4, port)), "pooled"), "pong:pooled");
    server.join().expect("server");
    assert_eq!(network.warm(0).await.expect("drain"), 0);
    assert_eq!(network.warm_ready(), 0);
    network.detach(&task).await.expect("detach");
    assert_clean(&network, &env, std::slice::from_ref(&task.host_veth)).await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_latency() {
    let Some(env) = TestNet::new().await else { return };
    let network = env.open().await;
    let subnet = env.subnet().clone();
    network.prepare_subnet(&subnet).await.expect("prepare");
    // Cold (namespace created during the attach) and warm (taken from the pool) attaches interleaved, so
    // load from anything else on the machine hits both alike.
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut detach = Vec::new();
    for n in 0..100 {
        let pooled = n % 2 == 1;
        network.warm(usize::from(pooled)).await.expect("warm");
        let started = Instant::now();
        let task = network.attach(&task_id(n), &subnet, "bench").await.expect("attach");
        if pooled { &mut warm } else { &mut cold }.push(started.elapsed());
        let started = Instant::now();
        network.detach(&task).await.expect("detach");
        detach.push(started.elapsed());
    }
    for samples in [&mut cold, &mut warm, &mut detach] {
        samples.sort();
    }
    eprintln!(
        "attach over 50 each: cold p50 {:?} p90 {:?}; warm pool p50 {:?} p90 {:?}; detach p50 {:?} (over 100)",
        percentile(&cold, 0.5),
        percentile(&cold, 0.9),
        percentile(&warm, 0.5),
        percentile(&warm, 0.9),
        percentile(&detach, 0.5)
    );
    assert_clean(&network, &env, &[]).await;
}
