//! A standalone HTTP (or TCP) load balancer over fixed targets, for benchmarks and trying things out:
//!
//!     lb --listen 127.0.0.1:8080 --target 127.0.0.1:9001 --target 127.0.0.1:9002 \
//!        [--protocol http|tcp] [--algorithm round_robin|least_outstanding_requests] [--threads N (workers; default one per core)] \
//!        [--health-check PATH]
//!
//! Health checks are off unless --health-check is given (every 5 s, 2/2 thresholds, matcher 200-399).

use std::net::SocketAddr;
use std::time::Duration;

use skiff_lb::{
    Action, Algorithm, Config, Forward, HealthCheck, HealthCheckPort, Listener, ListenerProtocol, LoadBalancer,
    TargetGroup, TargetProtocol, WeightedTargetGroup,
};

fn main() -> anyhow::Result<()> {
    let mut listen: Option<SocketAddr> = None;
    let mut targets = Vec::new();
    let mut protocol = ListenerProtocol::Http;
    let mut algorithm = Algorithm::RoundRobin;
    let mut threads = 0usize;
    let mut check_path: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => listen = Some(value()?.parse()?),
            "--target" => targets.push(value()?.parse::<SocketAddr>()?),
            "--protocol" => {
                protocol = match value()?.as_str() {
                    "http" => ListenerProtocol::Http,
                    "tcp" => ListenerProtocol::Tcp,
                    other => anyhow::bail!("unknown protocol {other}"),
                }
            }
            "--algorithm" => {
                algorithm = match value()?.as_str() {
                    "round_robin" => Algorithm::RoundRobin,
                    "least_outstanding_requests" => Algorithm::LeastOutstandingRequests,
                    other => anyhow::bail!("unknown algorithm {other}"),
                }
            }
            "--threads" => threads = value()?.parse()?,
            "--health-check" => check_path = Some(value()?),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let listen = listen.ok_or_else(|| anyhow::anyhow!("--listen is required"))?;
    let target_protocol = match protocol {
        ListenerProtocol::Http => TargetProtocol::Http,
        ListenerProtocol::Tcp => TargetProtocol::Tcp,
    };
    let config = Config {
        listeners: vec![Listener {
            bind: listen,
            protocol,
            idle_timeout: Duration::from_secs(60),
            default_actions: vec![Action::Forward(Forward {
                target_groups: vec![WeightedTargetGroup { id: "tg".into(), weight: 1 }],
                stickiness: None,
            })],
            rules: vec![],
        }],
        target_groups: vec![TargetGroup {
            id: "tg".into(),
            protocol: target_protocol,
            targets,
            health_check: HealthCheck {
                enabled: check_path.is_some(),
                protocol: target_protocol,
                path: check_path.unwrap_or_else(|| "/".into()),
                port: HealthCheckPort::TrafficPort,
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(2),
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                matcher: "200-399".into(),
            },
            deregistration_delay: Duration::from_secs(5),
            algorithm,
        }],
    };
    // The load balancer runs on worker threads of its own; this runtime only waits for Ctrl-C.
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async move {
        let lb = LoadBalancer::with_workers(threads);
        let applied = lb.apply(config)?;
        println!("skiff-lb listening on {}", applied.listeners[0]);
        tokio::signal::ctrl_c().await?;
        Ok(())
    })
}
