//! `skiff-api-load`: drives one AWS JSON 1.1 operation against a running skiff server from N concurrent
//! clients, each on its own keep-alive HTTP/1.1 connection and signing every request afresh as an SDK does,
//! for a fixed time; prints one JSON line with the throughput and latency percentiles.
//!
//! It only ever talks to a loopback endpoint and always stops by itself (warmup + duration, plus at most
//! one request timeout).

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Parser;
use http::Uri;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// One request may take at most this long; a slower one counts as an error and its connection is replaced.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Parser)]
#[command(name = "skiff-api-load", about = "Signed AWS JSON 1.1 load against a skiff server on loopback")]
struct Args {
    /// The server's API endpoint (loopback only), e.g. http://127.0.0.1:9400
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    access_key_id: String,
    #[arg(long)]
    secret_access_key: String,
    #[arg(long)]
    session_token: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// SigV4 service name of the target's API
    #[arg(long, default_value = "ecs")]
    service: String,
    /// Concurrent clients, each with its own connection
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,
    /// Seconds to measure
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    duration: f64,
    /// Seconds of load before measuring starts
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds_or_zero)]
    warmup: f64,
    /// The X-Amz-Target, e.g. AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition
    #[arg(long)]
    target: String,
    /// The JSON request body
    #[arg(long, default_value = "{}")]
    body: String,
    /// Tokio worker threads of the load generator [default: one per CPU]
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?} is not a number of seconds: {e}"))?;
    if v > 0.0 && v <= 3600.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be more than 0 and at most 3600 seconds"))
    }
}

fn parse_seconds_or_zero(s: &str) -> Result<f64, String> {
    if s.parse::<f64>().ok() == Some(0.0) {
        return Ok(0.0);
    }
    parse_seconds(s)
}

/// What one client saw in the measured window.
#[derive(Debug, Default)]
struct WorkerReport {
    requests: u64,
    errors: u64,
    /// Latency of every measured request, in microseconds.
    latencies_us: Vec<u32>,
    /// When its last measured request finished.
    last_done: Option<Instant>,
    first_error: Option<String>,
}

impl WorkerReport {
    /// A request that failed before it was sent (no connection, cannot sign).
    fn record_failure(&mut self, what: String) {
        self.requests += 1;
        self.errors += 1;
        self.last_done = Some(Instant::now());
        self.first_error.get_or_insert(what);
    }
}

/// Everything a client needs; shared by all of them.
struct Plan {
    client: skiff_client::Client,
    addr: SocketAddr,
    /// The request target in origin form (`/`).
    origin: Uri,
    service: String,
    target: String,
    body: Bytes,
    measure_from: Instant,
    stop_at: Instant,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    serde_json::from_str::<serde_json::Value>(&args.body).context("--body is not valid JSON")?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.build().context("cannot start the tokio runtime")?;
    let summary = runtime.block_on(run(args))?;
    println!("{summary}");
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<String> {
    let credentials = skiff_client::Credentials {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: args.secret_access_key.clone(),
        session_token: args.session_token.clone(),
    };
    let client = skiff_client::Client::new(&args.endpoint, &args.region, credentials)?;
    let (addr, origin) = loopback_target(&args.endpoint).await?;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let plan = std::sync::Arc::new(Plan {
        client,
        addr,
        origin,
        service: args.service.clone(),
        target: args.target.clone(),
        body: Bytes::from(args.body.clone()),
        measure_from,
        stop_at: measure_from + Duration::from_secs_f64(args.duration),
    });
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(worker(plan.clone()));
    }
    let mut total = WorkerReport::default();
    while let Some(report) = workers.join_next().await {
        let report = report.context("a load client panicked")?;
        total.requests += report.requests;
        total.errors += report.errors;
        total.latencies_us.extend(report.latencies_us);
        total.last_done = total.last_done.max(report.last_done);
        if total.first_error.is_none() {
            total.first_error = report.first_error;
        }
    }
    if let Some(e) = &total.first_error {
        eprintln!("skiff-api-load: {} of {} requests failed; first: {e}", total.errors, total.requests);
    }
    let seconds =
        total.last_done.map_or(args.duration, |done| done.saturating_duration_since(measure_from).as_secs_f64());
    Ok(summarize(args.concurrency, &mut total, seconds))
}

/// The endpoint's address, which must be loopback, and its path as the request target.
async fn loopback_target(endpoint: &str) -> anyhow::Result<(SocketAddr, Uri)> {
    let uri: Uri = endpoint.parse().with_context(|| format!("invalid --endpoint {endpoint:?}"))?;
    let authority = uri.authority().with_context(|| format!("--endpoint {endpoint:?} has no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.with_context(|| format!("cannot resolve {host}"))?.collect();
    let Some(addr) = addrs.iter().find(|a| a.ip().is_loopback()).copied() else {
        bail!("refusing to load {endpoint}: it is not a loopback address (this tool is for local benchmarks only)");
    };
    let origin = match uri.path() {
        "" => Uri::from_static("/"),
        p => p.parse().with_context(|| format!("invalid path in {endpoint:?}"))?,
    };
    Ok((addr, origin))
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the server closes; either is handled by the worker.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One client: one connection at a time, one request at a time, until `stop_at`.
async fn worker(plan: std::sync::Arc<Plan>) -> WorkerReport {
    let mut report = WorkerReport::default();
    let mut sender: Option<Sender> = None;
    loop {
        let now = Instant::now();
        if now >= plan.stop_at {
            break;
        }
        let measured = now >= plan.measure_from;
        let mut conn = match sender.take() {
            Some(s) if !s.is_closed() => s,
            _ => match connect(plan.addr).await {
                Ok(s) => s,
                Err(e) => {
                    if measured {
                        report.record_failure(format!("{e:#}"));
                    }
                    // Do not spin on a server that refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let mut request = match plan.client.signed_request(&plan.service, &plan.target, plan.body.clone()) {
            Ok(r) => r,
            Err(e) => {
                report.record_failure(e.to_string());
                break;
            }
        };
        *request.uri_mut() = plan.origin.clone();

        let started = Instant::now();
        let exchange = async {
            conn.ready().await?;
            let response = conn.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
        let done = Instant::now();
        let latency = done.duration_since(started);
        let (ok, keep, error) = match outcome {
            Ok(Ok((status, _))) if status == http::StatusCode::OK => (true, true, None),
            Ok(Ok((status, body))) => {
                let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                (false, true, Some(format!("HTTP {status}: {excerpt}")))
            }
            Ok(Err(e)) => (false, false, Some(format!("transport error: {e}"))),
            Err(_) => (false, false, Some(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))),
        };
        if keep {
            sender = Some(conn);
        }
        if started >= plan.measure_from {
            report.requests += 1;
            report.last_done = Some(done);
            report.latencies_us.push(latency.as_micros().min(u32::MAX as u128) as u32);
            if !ok {
                report.errors += 1;
                if let Some(e) = error {
                    report.first_error.get_or_insert(e);
                }
            }
        }
    }
    report
}

/// The nearest-rank percentile `p` (0–100) of sorted values.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The one-line JSON summary, members in a fixed order.
fn summarize(concurrency: u32, total: &mut WorkerReport, seconds: f64) -> String {
    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    let ms = |us: u32| us as f64 / 1000.0;
    let rps = if seconds > 0.0 { total.requests as f64 / seconds } else { 0.0 };
    format!(
        r#"{{"concurrency":{concurrency},"requests":{},"errors":{},"seconds":{:.3},"rps":{rps:.0},"p50_ms":{},"p90_ms":{},"p99_ms":{},"max_ms":{}}}"#,
        total.requests,
        total.errors,
        seconds,
        ms(percentile(l, 50.0)),
        ms(percentile(l, 90.0)),
        ms(percentile(l, 99.0)),
        ms(l.last().copied().unwrap_or(0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_line() {
        let mut total =
            WorkerReport { requests: 4, errors: 1, latencies_us: vec![4000, 1000, 3000, 2000], ..Default::default() };
        let line = summarize(8, &mut total, 2.0);
        assert_eq!(
            line,
            r#"{"concurrency":8,"requests":4,"errors":1,"seconds":2.000,"rps":2,"p50_ms":2,"p90_ms":4,"p99_ms":4,"max_ms":4}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["p50_ms"], 2.0);
        total.latencies_us = vec![412];
        assert!(summarize(1, &mut total, 1.0).contains(r#""p50_ms":0.412"#));
    }

    #[tokio::test]
    async fn only_loopback_endpoints() {
        let (addr, origin) = loopback_target("http://127.0.0.1:9400").await.unwrap();
        assert_eq!((addr.to_string(), origin.to_string()), ("127.0.0.1:9400".to_string(), "/".to_string()));
        assert!(loopback_target("http://[::1]:9400/").await.unwrap().0.ip().is_loopback());
        let err = loopback_target("http://192.0.2.1:9400").await.unwrap_err().to_string();
        assert!(err.contains("not a loopback address"), "{err}");
    }

    #[test]
    fn seconds_are_bounded() {
        assert!(parse_seconds("10").is_ok());
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("86400").is_err());
        assert_eq!(parse_seconds_or_zero("0"), Ok(0.0));
    }
}
