//! The data plane end to end on loopback: in-test hyper backends, a LoadBalancer, HTTP/1.1 and h2c clients.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use skiff_lb::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// A backend answering with its name; `/slow` waits for a permit on `release` (announcing itself on
/// `started`), `/never` never answers, `/health` answers `health_status`. Request headers come back as
/// `echo-<name>` response headers.
struct Backend {
    name: &'static str,
    addr: SocketAddr,
    hits: AtomicUsize,
    health_status: AtomicU16,
    started: Semaphore,
    release: Semaphore,
}

async fn backend(name: &'static str) -> Arc<Backend> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = Arc::new(Backend {
        name,
        addr: listener.local_addr().unwrap(),
        hits: AtomicUsize::new(0),
        health_status: AtomicU16::new(200),
        started: Semaphore::new(0),
        release: Semaphore::new(0),
    });
    let server = b.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let b = server.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let b = b.clone();
                    async move { Ok::<_, Infallible>(b.answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    b
}

impl Backend {
    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        if path == "/health" {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = http::StatusCode::from_u16(self.health_status.load(Ordering::SeqCst)).unwrap();
            return r;
        }
        self.hits.fetch_add(1, Ordering::SeqCst);
        match path.as_str() {
            "/slow" => {
                self.started.add_permits(1);
                self.release.acquire().await.unwrap().forget();
            }
            "/never" => std::future::pending::<()>().await,
            _ => {}
        }
        let mut r = Response::new(Full::new(Bytes::from(self.name)));
        for (k, v) in req.headers() {
            if let Ok(name) = http::HeaderName::try_from(format!("echo-{k}")) {
                r.headers_mut().append(name, v.clone());
            }
        }
        r
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

async fn request(addr: SocketAddr, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(uri);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", "lb.test");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender.send_request(req.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

async fn get(addr: SocketAddr, uri: &str) -> Reply {
    request(addr, "GET", uri, &[]).await
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn forward(ids: &[(&str, u32)]) -> Action {
    Action::Forward(Forward {
        target_groups: ids.iter().map(|(id, w)| WeightedTargetGroup { id: id.to_string(), weight: *w }).collect(),
        stickiness: None,
    })
}

fn fixed(status: u16, body: &str) -> Action {
    Action::FixedResponse(FixedResponse { status, content_type: Some("text/plain".into()), body: body.into() })
}

fn http_listener(default: Action, rules: Vec<Rule>) -> Listener {
    Listener {
        bind: any_port(),
        protocol: ListenerProtocol::Http,
        idle_timeout: Duration::from_secs(30),
        default_actions: vec![default],
        rules,
    }
}

fn group(id: &str, targets: &[SocketAddr]) -> TargetGroup {
    TargetGroup {
        id: id.into(),
        protocol: TargetProtocol::Http,
        targets: targets.to_vec(),
        health_check: HealthCheck { enabled: false, ..HealthCheck::default() },
        deregistration_delay: Duration::from_secs(60),
        algorithm: Algorithm::RoundRobin,
    }
}

fn checked_group(id: &str, targets: &[SocketAddr]) -> TargetGroup {
    TargetGroup {
        health_check: HealthCheck {
            enabled: true,
            path: "/health".into(),
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(2),
            healthy_threshold: 1,
            unhealthy_threshold: 1,
            matcher: "200-299".into(),
            ..HealthCheck::default()
        },
        ..group(id, targets)
    }
}

fn start(config: Config) -> (Arc<LoadBalancer>, SocketAddr) {
    let lb = LoadBalancer::new();
    let applied = lb.apply(config).unwrap();
    (lb, applied.listeners[0])
}

/// Waits for a change of the health board until `cond` holds (10 s guard against hanging).
async fn wait_health(lb: &LoadBalancer, what: &str, cond: impl Fn(&HashMap<SocketAddr, TargetHealth>) -> bool) {
    let mut rx = lb.watch_health();
    let wait = async {
        loop {
            let now: HashMap<SocketAddr, TargetHealth> =
                lb.target_health().into_iter().map(|((_, a), h)| (a, h)).collect();
            if cond(&now) {
                return;
            }
            rx.changed().await.unwrap();
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait).await.is_err() {
        panic!("target health never reached: {what}; now {:?}", lb.target_health());
    }
}

fn state_of(h: &HashMap<SocketAddr, TargetHealth>, addr: SocketAddr) -> Option<TargetState> {
    h.get(&addr).map(|h| h.state)
}

#[tokio::test]
async fn round_robin_spreads_evenly() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])],
        target_groups: vec![group("tg", &[a.addr, b.addr])],
    });
    let mut bodies = Vec::new();
    for _ in 0..10 {
        let r = get(addr, "/").await;
        assert_eq!(r.status, 200);
        bodies.push(r.body);
    }
    assert_eq!((a.hits(), b.hits()), (5, 5));
    assert!(bodies.windows(2).all(|w| w[0] != w[1]), "not alternating: {bodies:?}");
}

#[tokio::test]
async fn least_outstanding_prefers_the_idle_target() {
    let (a, b) = (backend("a").await, backend("b").await);
    let mut tg = group("tg", &[a.addr, b.addr]);
    tg.algorithm = Algorithm::LeastOutstandingRequests;
    let (_lb, addr) =
        start(Config { listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])], target_groups: vec![tg] });
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    let busy = tokio::select! {
        p = a.started.acquire() => { p.unwrap().forget(); a.clone() }
        p = b.started.acquire() => { p.unwrap().forget(); b.clone() }
    };
    let idle = if busy.name == "a" { b.clone() } else { a.clone() };
    for _ in 0..6 {
        assert_eq!(get(addr, "/").await.body, idle.name);
    }
    busy.release.add_permits(1);
    assert_eq!(slow.await.unwrap().body, busy.name);
}

#[tokio::test]
async fn rules_by_priority_and_conditions() {
    let rule = |priority, conditions, body: &str| Rule { priority, conditions, actions: vec![fixed(200, body)] };
    let rules = vec![
        rule(10, vec![Condition::PathPattern(vec!["/api/*".into()])], "api"),
        rule(5, vec![Condition::PathPattern(vec!["/api/special".into()])], "special"),
        rule(20, vec![Condition::HostHeader(vec!["*.example.com".into()])], "host"),
        rule(30, vec![Condition::HttpHeader { name: "X-Env".into(), values: vec!["prod*".into()] }], "header"),
        rule(40, vec![Condition::HttpRequestMethod(vec!["DELETE".into()])], "method"),
        rule(
            50,
            vec![Condition::QueryString(vec![QueryPair { key: Some("version".into()), value: "v?".into() }])],
            "query",
        ),
        rule(60, vec![Condition::SourceIp(vec!["10.0.0.0/8".parse().unwrap()])], "ten"),
        rule(
            70,
            vec![
                Condition::SourceIp(vec!["127.0.0.0/8".parse().unwrap()]),
                Condition::PathPattern(vec!["/src".into()]),
            ],
            "loopback",
        ),
        rule(80, vec![Condition::PathPattern(vec!["/img/*.png".into(), "/i?o".into()])], "image"),
    ];
    let (_lb, addr) =
        start(Config { listeners: vec![http_listener(fixed(404, "default"), rules)], target_groups: vec![] });
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case] = &[
        ("GET", "/api/users", &[], 200, "api"),
        ("GET", "/api/special", &[], 200, "special"),
        ("GET", "/", &[("host", "WWW.Example.COM:8080")], 200, "host"),
        ("GET", "/", &[("host", "example.com")], 404, "default"),
        ("GET", "/", &[("x-env", "PRODUCTION")], 200, "header"),
        ("GET", "/", &[("x-env", "staging")], 404, "default"),
        ("DELETE", "/", &[], 200, "method"),
        ("GET", "/?a=1&version=V2", &[], 200, "query"),
        ("GET", "/?version=v10", &[], 404, "default"),
        ("GET", "/src", &[], 200, "loopback"),
        ("GET", "/img/a/b.png", &[], 200, "image"),
        ("GET", "/iio", &[], 200, "image"),
        ("GET", "/API/users", &[], 404, "default"),
    ];
    for (method, uri, headers, status, body) in cases {
        let r = request(addr, method, uri, headers).await;
        assert_eq!((r.status, r.body.as_str()), (*status, *body), "{method} {uri} {headers:?}");
        assert_eq!(r.headers["server"], "awselb/2.0");
    }
}

#[tokio::test]
async fn fixed_response_and_redirects() {
    let redirect = |path: &str, r: Redirect| Rule {
        priority: 1 + path.len() as u32,
        conditions: vec![Condition::PathPattern(vec![path.into()])],
        actions: vec![Action::Redirect(r)],
    };
    let rules = vec![
        redirect(
            "/old/*",
            Redirect {
                path: "/new/#{path}".into(),
                query: "#{query}&from=#{host}".into(),
                status: RedirectStatus::Http302,
                ..Redirect::default()
            },
        ),
        redirect(
            "/secure",
            Redirect {
                protocol: "HTTPS".into(),
                port: "443".into(),
                host: "secure.#{host}".into(),
                ..Redirect::default()
            },
        ),
        redirect("/same", Redirect::default()),
    ];
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(
            Action::FixedResponse(FixedResponse {
                status: 418,
                content_type: Some("application/json".into()),
                body: "{\"teapot\":true}".into(),
            }),
            rules,
        )],
        target_groups: vec![],
    });
    let r = get(addr, "/anything").await;
    assert_eq!((r.status, r.body.as_str()), (418, "{\"teapot\":true}"));
    assert_eq!(r.headers["content-type"], "application/json");

    let r = request(addr, "GET", "/old/a/b?x=1", &[("host", "shop.test")]).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], format!("http://shop.test:{}/new/old/a/b?x=1&from=shop.test", addr.port()));

    let r = request(addr, "GET", "/secure", &[("host", "shop.test:1234")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "https://secure.shop.test/secure");

    let r = request(addr, "GET", "/same", &[("host", "shop.test")]).await;
    assert_eq!(r.headers["location"], format!("http://shop.test:{}/same", addr.port()));
}

#[tokio::test]
async fn weighted_forward_splits_by_weight() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(forward(&[("blue", 80), ("green", 20)]), vec![])],
        target_groups: vec![group("blue", &[a.addr]), group("green", &[b.addr])],
    });
    for _ in 0..200 {
        assert_eq!(get(addr, "/").await.status, 200);
    }
    let a_share = a.hits() as f64 / 200.0;
    assert!((0.75..=0.85).contains(&a_share), "blue got {a_share}");
    assert_eq!(a.hits() + b.hits(), 200);
}

#[tokio::test]
async fn sticky_cookie_pins_the_target() {
    let (a, b) = (backend("a").await, backend("b").await);
    let action = Action::Forward(Forward {
        target_groups: vec![WeightedTargetGroup { id: "tg".into(), weight: 1 }],
        stickiness: Some(Duration::from_secs(3600)),
    });
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(action, vec![])],
        target_groups: vec![group("tg", &[a.addr, b.addr])],
    });
    let first = get(addr, "/").await;
    let cookie = first.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("AWSALB=") && cookie.contains("Max-Age=3600"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    for _ in 0..8 {
        let r = request(addr, "GET", "/", &[("cookie", &format!("other=1; {pair}"))]).await;
        assert_eq!(r.body, first.body);
        assert!(r.headers.get("set-cookie").is_none());
    }
    // Without the cookie requests spread again.
    let bodies: Vec<String> = futures_bodies(addr, 4).await;
    assert!(bodies.iter().any(|b| b != &first.body));
}

async fn futures_bodies(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(addr, "/").await.body);
    }
    out
}

#[tokio::test]
async fn forwarded_headers_and_trace_id() {
    let a = backend("a").await;
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])],
        target_groups: vec![group("tg", &[a.addr])],
    });
    let root = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let r = request(
        addr,
        "GET",
        "/",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-amzn-trace-id", root),
            ("connection", "x-hop"),
            ("x-hop", "secret"),
            ("host", "app.test"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["echo-x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(r.headers["echo-x-forwarded-proto"], "http");
    assert_eq!(r.headers["echo-x-forwarded-port"], addr.port().to_string().as_str());
    // ALB keeps an incoming Root and puts its own Self field first.
    let traced = r.headers["echo-x-amzn-trace-id"].to_str().unwrap();
    let (own, rest) = traced.split_once(';').unwrap();
    assert!(own.starts_with("Self=1-"), "{traced}");
    assert_eq!(rest, root);
    assert_eq!(r.headers["echo-host"], "app.test");
    assert!(r.headers.get("echo-x-hop").is_none(), "hop-by-hop header forwarded");

    let r = get(addr, "/").await;
    assert_eq!(r.headers["echo-x-forwarded-for"], "127.0.0.1");
    let trace = r.headers["echo-x-amzn-trace-id"].to_str().unwrap();
    let parts: Vec<&str> = trace.strip_prefix("Root=1-").unwrap().split('-').collect();
    assert_eq!((parts[0].len(), parts[1].len()), (8, 24), "{trace}");
    assert!(parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[tokio::test]
async fn error_pages_502_503_504() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let never = backend("never").await;
    let mut config = Config {
        listeners: vec![
            http_listener(forward(&[("dead", 1)]), vec![]),
            http_listener(forward(&[("empty", 1)]), vec![]),
            http_listener(forward(&[("never", 1)]), vec![]),
        ],
        target_groups: vec![group("dead", &[dead]), group("empty", &[]), group("never", &[never.addr])],
    };
    config.listeners[1].bind = any_port_distinct(1);
    config.listeners[2].bind = any_port_distinct(2);
    config.listeners[2].idle_timeout = Duration::from_millis(200);
    let lb = LoadBalancer::new();
    let addrs = lb.apply(config).unwrap().listeners;

    let r = get(addrs[0], "/").await;
    assert_eq!(r.status, 502);
    assert!(r.body.contains("<title>502 Bad Gateway</title>"), "{}", r.body);
    assert_eq!(r.headers["server"], "awselb/2.0");
    assert_eq!(r.headers["content-type"], "text/html");

    let r = get(addrs[1], "/").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("503 Service Temporarily Unavailable"));

    let r = get(addrs[2], "/never").await;
    assert_eq!(r.status, 504);
    assert!(r.body.contains("504 Gateway Time-out"));
}

/// Listeners are keyed by their bind address: distinct port-0 binds on distinct loopback addresses.
fn any_port_distinct(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1 + i], 0))
}

#[tokio::test]
async fn health_checks_move_traffic_and_fail_open() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (lb, addr) = start(Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])],
        target_groups: vec![checked_group("tg", &[a.addr, b.addr])],
    });
    wait_health(&lb, "both healthy", |h| {
        state_of(h, a.addr) == Some(TargetState::Healthy) && state_of(h, b.addr) == Some(TargetState::Healthy)
    })
    .await;

    a.health_status.store(500, Ordering::SeqCst);
    wait_health(&lb, "a unhealthy", |h| state_of(h, a.addr) == Some(TargetState::Unhealthy)).await;
    let health = lb.target_health();
    let ha = &health[&("tg".to_string(), a.addr)];
    assert_eq!(ha.reason, Some(ReasonCode::ResponseCodeMismatch));
    assert_eq!(ha.reason.unwrap().as_str(), "Target.ResponseCodeMismatch");
    for _ in 0..6 {
        assert_eq!(get(addr, "/").await.body, "b");
    }

    // Every target unhealthy: ALB fails open and routes to all of them.
    b.health_status.store(503, Ordering::SeqCst);
    wait_health(&lb, "b unhealthy", |h| state_of(h, b.addr) == Some(TargetState::Unhealthy)).await;
    let bodies = futures_bodies(addr, 4).await;
    assert!(bodies.contains(&"a".to_string()) && bodies.contains(&"b".to_string()), "{bodies:?}");

    a.health_status.store(200, Ordering::SeqCst);
    wait_health(&lb, "a healthy again", |h| state_of(h, a.addr) == Some(TargetState::Healthy)).await;
    for _ in 0..4 {
        assert_eq!(get(addr, "/").await.body, "a");
    }
}

#[tokio::test]
async fn closed_port_fails_health_checks_and_unused_groups_are_not_checked() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let a = backend("a").await;
    let (lb, _addr) = start(Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])],
        target_groups: vec![checked_group("tg", &[dead]), checked_group("spare", &[a.addr])],
    });
    wait_health(&lb, "dead unhealthy", |h| state_of(h, dead) == Some(TargetState::Unhealthy)).await;
    let health = lb.target_health();
    assert_eq!(health[&("tg".to_string(), dead)].reason, Some(ReasonCode::FailedHealthChecks));
    let spare = &health[&("spare".to_string(), a.addr)];
    assert_eq!((spare.state, spare.reason), (TargetState::Unused, Some(ReasonCode::NotInUse)));
}

#[tokio::test]
async fn draining_target_finishes_in_flight_and_gets_nothing_new() {
    let (a, b) = (backend("a").await, backend("b").await);
    let config = |targets: &[SocketAddr]| Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), vec![])],
        target_groups: vec![group("tg", targets)],
    };
    let lb = LoadBalancer::new();
    let addr = lb.apply(config(&[a.addr])).unwrap().listeners[0];
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    a.started.acquire().await.unwrap().forget();

    lb.apply(config(&[b.addr])).unwrap();
    let health = lb.target_health();
    let ha = &health[&("tg".to_string(), a.addr)];
    assert_eq!((ha.state, ha.reason), (TargetState::Draining, Some(ReasonCode::DeregistrationInProgress)));
    for _ in 0..5 {
        assert_eq!(get(addr, "/").await.body, "b");
    }
    assert_eq!(a.hits(), 1);

    a.release.add_permits(1);
    let r = slow.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "a"));
    wait_health(&lb, "a gone after draining", |h| !h.contains_key(&a.addr)).await;
}

#[tokio::test]
async fn apply_keeps_in_flight_requests() {
    let (a, b) = (backend("a").await, backend("b").await);
    let lb = LoadBalancer::new();
    let listener = http_listener(forward(&[("tg", 1)]), vec![]);
    let addr = lb
        .apply(Config { listeners: vec![listener.clone()], target_groups: vec![group("tg", &[a.addr])] })
        .unwrap()
        .listeners[0];
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    a.started.acquire().await.unwrap().forget();

    // New rules, a new group, changed settings of the old one; same listener.
    let mut changed = listener.clone();
    changed.rules = vec![Rule {
        priority: 1,
        conditions: vec![Condition::PathPattern(vec!["/new".into()])],
        actions: vec![forward(&[("tg2", 1)])],
    }];
    let mut tg = group("tg", &[a.addr]);
    tg.algorithm = Algorithm::LeastOutstandingRequests;
    let again =
        lb.apply(Config { listeners: vec![changed], target_groups: vec![tg, group("tg2", &[b.addr])] }).unwrap();
    assert_eq!(again.listeners[0], addr);
    assert_eq!(get(addr, "/new").await.body, "b");

    a.release.add_permits(1);
    let r = slow.await.unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "a"));
}

#[tokio::test]
async fn removed_listener_stops_accepting() {
    let lb = LoadBalancer::new();
    let addr = lb
        .apply(Config { listeners: vec![http_listener(fixed(200, "x"), vec![])], target_groups: vec![] })
        .unwrap()
        .listeners[0];
    assert_eq!(get(addr, "/").await.body, "x");
    lb.apply(Config::default()).unwrap();
    // The accept task is aborted; its socket closes once the runtime drops the task.
    let refused = async {
        loop {
            if TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refused).await.expect("listener still accepting");
}

#[tokio::test]
async fn tcp_listener_splices_bytes() {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = echo.accept().await else { return };
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let mut tg = group("nlb", &[echo_addr]);
    tg.protocol = TargetProtocol::Tcp;
    let mut listener = http_listener(forward(&[("nlb", 1)]), vec![]);
    listener.protocol = ListenerProtocol::Tcp;
    let (_lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![tg] });
    let mut s = TcpStream::connect(addr).await.unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let recv = r.read_to_end(&mut back);
    let (_, n) = tokio::join!(send, recv);
    n.unwrap();
    assert_eq!(back, payload);
}

#[tokio::test]
async fn invalid_config_changes_nothing() {
    let lb = LoadBalancer::new();
    let addr = lb
        .apply(Config { listeners: vec![http_listener(fixed(200, "x"), vec![])], target_groups: vec![] })
        .unwrap()
        .listeners[0];
    let err = lb
        .apply(Config { listeners: vec![http_listener(forward(&[("missing", 1)]), vec![])], target_groups: vec![] })
        .unwrap_err();
    assert!(err.to_string().contains("unknown target group missing"), "{err}");
    assert_eq!(get(addr, "/").await.body, "x");
}

#[tokio::test]
async fn idle_client_connections_are_closed() {
    let mut listener = http_listener(fixed(200, "x"), vec![]);
    listener.idle_timeout = Duration::from_millis(300);
    let (_lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![] });

    // A connection that never sends a byte.
    let started = tokio::time::Instant::now();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await.expect("never closed");
    assert_eq!(n.unwrap_or(0), 0, "expected the connection closed");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed after {:?}", started.elapsed());

    // A keep-alive connection stays open while used more often than the timeout, then closes when idle.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let conn = tokio::spawn(conn);
    for _ in 0..5 {
        let req = Request::get("/").header("host", "lb.test").body(Empty::<Bytes>::new()).unwrap();
        let resp = sender.send_request(req).await.expect("connection closed while in use");
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "x");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::timeout(Duration::from_secs(10), conn).await.expect("idle keep-alive connection never closed").ok();
    assert!(sender.is_closed());
}

#[tokio::test]
async fn idle_time_counts_from_the_last_byte() {
    let a = backend("a").await;
    let mut listener = http_listener(forward(&[("tg", 1)]), vec![]);
    listener.idle_timeout = Duration::from_millis(1000);
    let (_lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![group("tg", &[a.addr])] });
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    // Idle for 600 ms, then a request the target holds for 700 ms: 1.3 s after the connection opened, but
    // 0.7 s after its last byte, so the connection stays (and the request is within its own timeout).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let req = Request::get("/slow").header("host", "lb.test").body(Empty::<Bytes>::new()).unwrap();
    let pending = tokio::spawn(async move { sender.send_request(req).await.map(|r| r.status().as_u16()) });
    a.started.acquire().await.unwrap().forget();
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.release.add_permits(1);
    assert_eq!(pending.await.unwrap().expect("connection closed during the request"), 200);
}

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// An HTTP/2 client with prior knowledge (h2c): the connection opens with the HTTP/2 preface.
async fn h2_connect(addr: SocketAddr) -> (H2Sender, tokio::task::JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    (sender, tokio::spawn(conn))
}

/// A request on its own stream of `sender`'s connection; `uri` is absolute (its authority is `:authority`).
async fn h2_get(sender: &H2Sender, uri: &str) -> Reply {
    let mut sender = sender.clone();
    sender.ready().await.expect("connection closed");
    let req = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    let resp = sender.send_request(req).await.expect("stream failed");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

#[tokio::test]
async fn http2_prior_knowledge_is_proxied_to_http1_targets() {
    let (a, b) = (backend("a").await, backend("b").await);
    let rules = vec![
        Rule {
            priority: 1,
            conditions: vec![Condition::PathPattern(vec!["/fixed".into()])],
            actions: vec![fixed(418, "fixed")],
        },
        Rule {
            priority: 2,
            conditions: vec![Condition::HostHeader(vec!["*.example.com".into()])],
            actions: vec![fixed(200, "by host")],
        },
    ];
    let (_lb, addr) = start(Config {
        listeners: vec![http_listener(forward(&[("tg", 1)]), rules)],
        target_groups: vec![group("tg", &[a.addr, b.addr])],
    });
    let (sender, _conn) = h2_connect(addr).await;

    // Eight requests in flight at once on one connection, spread round robin over the HTTP/1.1 targets.
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let sender = sender.clone();
        pending.spawn(async move { h2_get(&sender, "http://app.test:8080/slow").await });
    }
    for backend in [&a, &b] {
        let all_started = backend.started.acquire_many(4);
        tokio::time::timeout(Duration::from_secs(10), all_started)
            .await
            .expect("requests not concurrent")
            .unwrap()
            .forget();
    }
    a.release.add_permits(4);
    b.release.add_permits(4);
    let mut bodies = Vec::new();
    while let Some(r) = pending.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 200);
        // :authority becomes Host; the forwarded headers are ALB's.
        assert_eq!(r.headers["echo-host"], "app.test:8080");
        assert_eq!(r.headers["echo-x-forwarded-for"], "127.0.0.1");
        assert_eq!(r.headers["echo-x-forwarded-proto"], "http");
        assert_eq!(r.headers["echo-x-forwarded-port"], addr.port().to_string().as_str());
        assert!(r.headers["echo-x-amzn-trace-id"].to_str().unwrap().starts_with("Root=1-"));
        bodies.push(r.body);
    }
    bodies.sort();
    assert_eq!(bodies, ["a", "a", "a", "a", "b", "b", "b", "b"]);
    assert_eq!((a.hits(), b.hits()), (4, 4));

    // Rules and fixed responses on the same connection; the host rule reads :authority.
    let r = h2_get(&sender, "http://app.test/fixed").await;
    assert_eq!((r.status, r.body.as_str()), (418, "fixed"));
    assert_eq!(r.headers["server"], "awselb/2.0");
    assert_eq!(r.headers["content-type"], "text/plain");
    let r = h2_get(&sender, "http://www.example.com/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "by host"));

    // HTTP/1.1 clients on the same listener are served as before.
    let r = get(addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["echo-host"], "lb.test");
    let r = get(addr, "/fixed").await;
    assert_eq!((r.status, r.body.as_str()), (418, "fixed"));
}

#[tokio::test]
async fn http2_streams_time_out_alone_and_idle_connections_close() {
    let never = backend("never").await;
    let mut listener = http_listener(forward(&[("tg", 1)]), vec![]);
    listener.idle_timeout = Duration::from_millis(300);
    let (_lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![group("tg", &[never.addr])] });
    let (sender, conn) = h2_connect(addr).await;

    // A stream whose target never answers gets its 504; another stream meanwhile is answered.
    let waiting = {
        let sender = sender.clone();
        tokio::spawn(async move { h2_get(&sender, "http://app.test/never").await })
    };
    let r = h2_get(&sender, "http://app.test/").await;
    assert_eq!((r.status, r.body.as_str()), (200, "never"));
    let r = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("no 504").unwrap();
    assert_eq!(r.status, 504);
    assert!(r.body.contains("504 Gateway Time-out"));

    // Idle past the timeout: the connection is closed.
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), conn).await.expect("idle HTTP/2 connection never closed").ok();
    assert!(started.elapsed() >= Duration::from_millis(200), "closed after {:?}", started.elapsed());
    assert!(sender.is_closed());
}

#[tokio::test]
async fn http2_connection_stays_while_a_stream_waits() {
    let a = backend("a").await;
    let mut listener = http_listener(forward(&[("tg", 1)]), vec![]);
    listener.idle_timeout = Duration::from_millis(1000);
    let (_lb, addr) = start(Config { listeners: vec![listener], target_groups: vec![group("tg", &[a.addr])] });
    let (sender, _conn) = h2_connect(addr).await;
    // As for HTTP/1.1: idle 600 ms, then a request the target holds for 700 ms keeps the connection open.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let pending = {
        let sender = sender.clone();
        tokio::spawn(async move { h2_get(&sender, "http://app.test/slow").await.status })
    };
    a.started.acquire().await.unwrap().forget();
    tokio::time::sleep(Duration::from_millis(700)).await;
    a.release.add_permits(1);
    assert_eq!(pending.await.expect("connection closed during the request"), 200);
}

#[tokio::test]
async fn http1_request_starting_like_the_http2_preface_is_served_as_http1() {
    let (_lb, addr) = start(Config { listeners: vec![http_listener(fixed(200, "x"), vec![])], target_groups: vec![] });
    // "P" could still open the preface: the listener waits for the next bytes before it picks HTTP/1.1.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream
        .write_all(b"OST / HTTP/1.1\r\nhost: lb.test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await.expect("no answer").unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nx"), "{out}");
}
