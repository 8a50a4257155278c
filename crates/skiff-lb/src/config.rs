//! The configuration a [`crate::LoadBalancer`] serves: listeners, their rules and actions, target groups. Plain
//! data, validated by [`crate::LoadBalancer::apply`]; the ELBv2 API translates its records into it.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

/// Everything one load balancer (or all of a node's load balancers) serves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub listeners: Vec<Listener>,
    pub target_groups: Vec<TargetGroup>,
}

/// A listening socket. Listeners are keyed by `bind`: a listener whose `bind` stays the same across
/// [`crate::LoadBalancer::apply`] keeps its socket and connections and only gets the new rules.
#[derive(Debug, Clone)]
pub struct Listener {
    pub bind: SocketAddr,
    pub protocol: ListenerProtocol,
    /// ALB's idle timeout: how long a target may take to answer (504 past it), and how long an idle client
    /// connection is kept.
    pub idle_timeout: Duration,
    /// The first action is the one taken (ELBv2's authenticate actions have no data-plane meaning here).
    pub default_actions: Vec<Action>,
    /// Evaluated by ascending priority; the first whose conditions all match wins. HTTP listeners only.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerProtocol {
    /// HTTP/1.1 reverse proxy (an Application Load Balancer's listener).
    Http,
    /// Bytes spliced both ways to a target (a Network Load Balancer's listener); only a forward action.
    Tcp,
}

#[derive(Debug, Clone)]
pub enum Action {
    Forward(Forward),
    FixedResponse(FixedResponse),
    Redirect(Redirect),
}

#[derive(Debug, Clone)]
pub struct Forward {
    /// Weighted target groups; a single group with any weight takes all requests.
    pub target_groups: Vec<WeightedTargetGroup>,
    /// `lb_cookie` stickiness: the `AWSALB` cookie's lifetime. `None` when stickiness is off.
    pub stickiness: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct WeightedTargetGroup {
    pub id: String,
    pub weight: u32,
}

#[derive(Debug, Clone)]
pub struct FixedResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// A redirect; every component may use `#{protocol}`, `#{host}`, `#{port}`, `#{path}` (without its leading
/// `/`) and `#{query}`. [`Redirect::default`] keeps every component (AWS's defaults).
#[derive(Debug, Clone)]
pub struct Redirect {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    pub status: RedirectStatus,
}

impl Default for Redirect {
    fn default() -> Self {
        Redirect {
            protocol: "#{protocol}".into(),
            host: "#{host}".into(),
            port: "#{port}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status: RedirectStatus::Http301,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectStatus {
    Http301,
    Http302,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub priority: u32,
    /// All must match; within one condition any value may match.
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

/// ALB's rule conditions. Wildcards are `*` (any run of characters) and `?` (exactly one).
#[derive(Debug, Clone)]
pub enum Condition {
    /// The path (without the query string), case-sensitive.
    PathPattern(Vec<String>),
    /// The Host header without its port, case-insensitive.
    HostHeader(Vec<String>),
    /// A header's value, case-insensitive.
    HttpHeader { name: String, values: Vec<String> },
    /// The method, exactly.
    HttpRequestMethod(Vec<String>),
    /// Query parameters, case-insensitive; a pair without key matches any parameter's value.
    QueryString(Vec<QueryPair>),
    /// The client's address (the TCP peer, not X-Forwarded-For).
    SourceIp(Vec<IpNet>),
}

#[derive(Debug, Clone)]
pub struct QueryPair {
    pub key: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct TargetGroup {
    pub id: String,
    pub protocol: TargetProtocol,
    pub targets: Vec<SocketAddr>,
    pub health_check: HealthCheck,
    /// How long a deregistered target may keep its in-flight requests before it is dropped.
    pub deregistration_delay: Duration,
    pub algorithm: Algorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetProtocol {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    RoundRobin,
    LeastOutstandingRequests,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    /// When false every registered target counts as healthy at once.
    pub enabled: bool,
    pub protocol: TargetProtocol,
    /// The GET path of HTTP checks.
    pub path: String,
    pub port: HealthCheckPort,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
    /// HTTP codes that pass: `"200"`, `"200,302"`, `"200-299"`.
    pub matcher: String,
}

impl Default for HealthCheck {
    /// ALB's defaults for an HTTP target group.
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            protocol: TargetProtocol::Http,
            path: "/".into(),
            port: HealthCheckPort::TrafficPort,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            healthy_threshold: 5,
            unhealthy_threshold: 2,
            matcher: "200".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckPort {
    TrafficPort,
    Port(u16),
}
