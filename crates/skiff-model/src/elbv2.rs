//! Elastic Load Balancing v2 (control plane): load balancers, listeners, rules, target groups and their
//! targets as Skiff keeps them, with the member names of the `elbv2` model, their store keys and ARNs, and
//! the validation and defaults AWS applies (names, attributes, health checks, actions, rule conditions).
//!
//! **Where a load balancer listens.** Every load balancer gets its own loopback host address from
//! the server's load balancer block (`--lb-cidr`, default [`DEFAULT_LB_BLOCK`]), allocated by the API when it is created (unique: the
//! [`keys::address`] record names its owner and is written on condition that it is absent), stored in the
//! record and freed when the load balancer is deleted. Its `DNSName` *is* that dotted address
//! (`127.200.0.7`), so `curl http://$DNSName/` works without any DNS; the address also appears as
//! `AvailabilityZones[].LoadBalancerAddresses[].IpAddress`. The state is reported `active` at once: the
//! data plane (`skiff-lb`) binds the address's listeners from these records.
//!
//! Records live under `elbv2/…` ([`keys`]) so that a controller can scan every load balancer, listener,
//! rule, target group and target with one prefix scan each. Nothing here does I/O: ids are made from
//! random bytes the caller supplies, times are passed in.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Store keys of ELBv2 records.
pub mod keys {
    pub const LOAD_BALANCERS: &str = "elbv2/load-balancers/";
    pub const TARGET_GROUPS: &str = "elbv2/target-groups/";
    pub const LISTENERS: &str = "elbv2/listeners/";
    pub const RULES: &str = "elbv2/rules/";
    pub const TARGETS: &str = "elbv2/targets/";
    pub const ADDRESSES: &str = "elbv2/addresses/";

    /// A load balancer, by name (names are unique per region and account, so a create writes it on
    /// condition that it is absent).
    pub fn load_balancer(name: &str) -> String {
        format!("{LOAD_BALANCERS}{name}")
    }

    /// A target group, by name (unique as load balancer names are).
    pub fn target_group(name: &str) -> String {
        format!("{TARGET_GROUPS}{name}")
    }

    /// A listener, under its load balancer's id (a load balancer's listeners are one prefix).
    pub fn listener(lb_id: &str, listener_id: &str) -> String {
        format!("{LISTENERS}{lb_id}/{listener_id}")
    }

    pub fn listeners_of(lb_id: &str) -> String {
        format!("{LISTENERS}{lb_id}/")
    }

    /// A (non-default) rule, under its listener's id.
    pub fn rule(listener_id: &str, rule_id: &str) -> String {
        format!("{RULES}{listener_id}/{rule_id}")
    }

    pub fn rules_of(listener_id: &str) -> String {
        format!("{RULES}{listener_id}/")
    }

    /// A registered target of a target group: `ID:PORT` under the group's id.
    pub fn target(tg_id: &str, id: &str, port: u16) -> String {
        format!("{TARGETS}{tg_id}/{id}:{port}")
    }

    pub fn targets_of(tg_id: &str) -> String {
        format!("{TARGETS}{tg_id}/")
    }

    /// The owner of a load balancer address (`127.200.x.y`).
    pub fn address(ip: &str) -> String {
        format!("{ADDRESSES}{ip}")
    }
}

/// The default block load balancer addresses come from (`skiff server --lb-cidr`).
pub const DEFAULT_LB_BLOCK: &str = "127.200.0.0/16";

/// The network address of a load balancer block: a /16 of 127.0.0.0/8 (`127.X.0.0/16`).
pub fn parse_lb_block(cidr: &str) -> Option<Ipv4Addr> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let o = ip.octets();
    (len == "16" && o[0] == 127 && o[2] == 0 && o[3] == 0).then_some(ip)
}

/// The `n`th load balancer address of `block` (1 ≤ n ≤ 65534): `127.X.(n/256).(n%256)`; `None` outside the
/// block's usable range (the block's network and broadcast addresses are never handed out).
pub fn lb_address(block: Ipv4Addr, n: u32) -> Option<Ipv4Addr> {
    let o = block.octets();
    (1..=65534).contains(&n).then(|| Ipv4Addr::new(o[0], o[1], (n >> 8) as u8, (n & 0xff) as u8))
}

/// The lowest load balancer address of `block` not in `used`.
pub fn free_lb_address<'a>(block: Ipv4Addr, used: impl IntoIterator<Item = &'a str>) -> Option<Ipv4Addr> {
    let used: std::collections::HashSet<&str> = used.into_iter().collect();
    (1..=65534).filter_map(|n| lb_address(block, n)).find(|a| !used.contains(a.to_string().as_str()))
}

/// Random bytes an ELB id is made from (16 hex digits).
pub type IdBytes = [u8; 8];

pub fn resource_id(random: IdBytes) -> String {
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// `app` or `net`, the ARN's word for a load balancer type.
pub fn type_word(lb_type: &str) -> &'static str {
    if lb_type == "network" {
        "net"
    } else {
        "app"
    }
}

/// The parts of an ELBv2 ARN Skiff mints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElbArn {
    /// `loadbalancer/app/NAME/ID`
    LoadBalancer { name: String, id: String },
    /// `targetgroup/NAME/ID`
    TargetGroup { name: String, id: String },
    /// `listener/app/NAME/LBID/ID`
    Listener { lb_name: String, lb_id: String, id: String },
    /// `listener-rule/app/NAME/LBID/LISTENERID/ID`
    Rule { lb_name: String, lb_id: String, listener_id: String, id: String },
}

/// Parses an ELBv2 ARN of the given region and account; `None` for anything else (another service,
/// account or region, another shape).
pub fn parse_arn(arn: &str, region: &str, account: &str) -> Option<ElbArn> {
    let prefix = format!("arn:aws:elasticloadbalancing:{region}:{account}:");
    let rest = arn.strip_prefix(&prefix)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ok = |s: &&str| !s.is_empty();
    if !parts.iter().all(ok) {
        return None;
    }
    let kind = |t: &str| t == "app" || t == "net";
    match parts.as_slice() {
        ["loadbalancer", t, name, id] if kind(t) => {
            Some(ElbArn::LoadBalancer { name: name.to_string(), id: id.to_string() })
        }
        ["targetgroup", name, id] => Some(ElbArn::TargetGroup { name: name.to_string(), id: id.to_string() }),
        ["listener", t, name, lb, id] if kind(t) => {
            Some(ElbArn::Listener { lb_name: name.to_string(), lb_id: lb.to_string(), id: id.to_string() })
        }
        ["listener-rule", t, name, lb, l, id] if kind(t) => Some(ElbArn::Rule {
            lb_name: name.to_string(),
            lb_id: lb.to_string(),
            listener_id: l.to_string(),
            id: id.to_string(),
        }),
        _ => None,
    }
}

/// What the API refuses, with the AWS error code it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
}

fn validation(message: impl Into<String>) -> Invalid {
    Invalid { code: "ValidationError", message: message.into() }
}

fn config(message: impl Into<String>) -> Invalid {
    Invalid { code: "InvalidConfigurationRequest", message: message.into() }
}

fn action_error(message: impl Into<String>) -> Invalid {
    Invalid { code: "InvalidLoadBalancerAction", message: message.into() }
}

/// A load balancer or target group name: 1–32 alphanumerics and hyphens, not starting or ending with a
/// hyphen (and a load balancer's not starting with `internal-`).
pub fn validate_name(noun: &str, name: &str) -> Result<(), Invalid> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if name.is_empty() || name.len() > 32 || !ok_chars || name.starts_with('-') || name.ends_with('-') {
        return Err(validation(format!(
            "{noun} name '{name}' is not valid: it must have 1 to 32 alphanumeric characters or hyphens and \
             must not begin or end with a hyphen"
        )));
    }
    if noun == "Load balancer" && name.starts_with("internal-") {
        return Err(validation(format!("load balancer name '{name}' cannot begin with 'internal-'")));
    }
    Ok(())
}

/// An ELBv2 tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// At most 50 tags per resource.
pub const MAX_TAGS: usize = 50;

/// Checks tags as ELBv2 does: keys 1–128 characters, not `aws:`, values up to 256, no key twice.
pub fn validate_tags(tags: &[Tag]) -> Result<(), Invalid> {
    for (i, t) in tags.iter().enumerate() {
        if t.key.is_empty() || t.key.chars().count() > 128 {
            return Err(validation(format!("tag key '{}' must have 1 to 128 characters", t.key)));
        }
        if t.key.starts_with("aws:") {
            return Err(validation(format!("tag key '{}' uses the reserved prefix 'aws:'", t.key)));
        }
        if t.value.as_deref().is_some_and(|v| v.chars().count() > 256) {
            return Err(validation(format!("the value of tag '{}' has more than 256 characters", t.key)));
        }
        if tags[..i].iter().any(|o| o.key == t.key) {
            return Err(Invalid { code: "DuplicateTagKeys", message: format!("tag key '{}' is given twice", t.key) });
        }
    }
    Ok(())
}

/// `tags` merged into `existing` (same keys replaced), refused past [`MAX_TAGS`].
pub fn merge_tags(existing: &mut Vec<Tag>, tags: &[Tag]) -> Result<(), Invalid> {
    for t in tags {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value.clone(),
            None => existing.push(t.clone()),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(Invalid {
            code: "TooManyTags",
            message: format!("a resource can have at most {MAX_TAGS} tags; this one would have {}", existing.len()),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Load balancers

/// A load balancer's placement in one zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZonePlacement {
    pub zone_name: String,
    pub subnet_id: String,
}

/// A load balancer as stored under [`keys::load_balancer`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerRecord {
    pub load_balancer_arn: String,
    pub load_balancer_name: String,
    /// The 16-hex id of the ARN.
    pub id: String,
    /// `application` or `network`.
    #[serde(rename = "type")]
    pub lb_type: String,
    pub scheme: String,
    pub vpc_id: String,
    pub ip_address_type: String,
    pub availability_zones: Vec<ZonePlacement>,
    pub security_groups: Vec<String>,
    /// The host address it listens on (also its DNSName), from the server's load balancer block.
    pub address: String,
    pub created_time_ms: i64,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The attributes a load balancer of `lb_type` has, with AWS's defaults (at most 20: the model's bound of a
/// DescribeLoadBalancerAttributes answer).
pub fn load_balancer_attribute_defaults(lb_type: &str) -> BTreeMap<String, String> {
    let common: &[(&str, &str)] = &[
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("deletion_protection.enabled", "false"),
        ("zonal_shift.config.enabled", "false"),
    ];
    let app: &[(&str, &str)] = &[
        ("idle_timeout.timeout_seconds", "60"),
        ("client_keep_alive.seconds", "3600"),
        ("connection_logs.s3.enabled", "false"),
        ("connection_logs.s3.bucket", ""),
        ("connection_logs.s3.prefix", ""),
        ("load_balancing.cross_zone.enabled", "true"),
        ("routing.http.desync_mitigation_mode", "defensive"),
        ("routing.http.drop_invalid_header_fields.enabled", "false"),
        ("routing.http.preserve_host_header.enabled", "false"),
        ("routing.http.x_amzn_tls_version_and_cipher_suite.enabled", "false"),
        ("routing.http.xff_client_port.enabled", "false"),
        ("routing.http.xff_header_processing.mode", "append"),
        ("routing.http2.enabled", "true"),
        ("waf.fail_open.enabled", "false"),
    ];
    let net: &[(&str, &str)] = &[
        ("load_balancing.cross_zone.enabled", "false"),
        ("dns_record.client_routing_policy", "any_availability_zone"),
    ];
    let own = if lb_type == "network" { net } else { app };
    common.iter().chain(own).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn check_bool(key: &str, value: &str) -> Result<(), Invalid> {
    match value {
        "true" | "false" => Ok(()),
        _ => Err(validation(format!("attribute '{key}' must be 'true' or 'false', not '{value}'"))),
    }
}

fn check_int(key: &str, value: &str, min: i64, max: i64) -> Result<(), Invalid> {
    match value.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(validation(format!("attribute '{key}' must be an integer from {min} to {max}, not '{value}'"))),
    }
}

fn check_one_of(key: &str, value: &str, allowed: &[&str]) -> Result<(), Invalid> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(validation(format!("attribute '{key}' must be one of {}, not '{value}'", allowed.join(", "))))
    }
}

/// Applies `changes` to a load balancer's attributes (`current`, which has every key of its type):
/// unknown keys and invalid values are `ValidationError`; logs to S3 (which Skiff does not have) are
/// `InvalidConfigurationRequest`.
pub fn modify_load_balancer_attributes(
    current: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<(), Invalid> {
    for (key, value) in changes {
        if !current.contains_key(key) {
            return Err(validation(format!("load balancer attribute key '{key}' is not recognized")));
        }
        match key.as_str() {
            "idle_timeout.timeout_seconds" => check_int(key, value, 1, 4000)?,
            "client_keep_alive.seconds" => check_int(key, value, 60, 604800)?,
            "routing.http.desync_mitigation_mode" => check_one_of(key, value, &["monitor", "defensive", "strictest"])?,
            "routing.http.xff_header_processing.mode" => check_one_of(key, value, &["append", "preserve", "remove"])?,
            "dns_record.client_routing_policy" => check_one_of(
                key,
                value,
                &["availability_zone_affinity", "partial_availability_zone_affinity", "any_availability_zone"],
            )?,
            k if k.ends_with(".bucket") || k.ends_with(".prefix") => {}
            k if k.ends_with(".s3.enabled") => {
                check_bool(key, value)?;
                if value == "true" {
                    return Err(config(format!(
                        "cannot enable '{key}': Skiff has no Amazon S3 bucket to deliver logs to"
                    )));
                }
            }
            _ => check_bool(key, value)?,
        }
        current.insert(key.clone(), value.clone());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Target groups

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_code: Option<String>,
}

/// A target group's health check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: String,
    /// `traffic-port` or a port number.
    pub port: String,
    #[serde(default)]
    pub path: Option<String>,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub healthy_threshold_count: i32,
    pub unhealthy_threshold_count: i32,
    #[serde(default)]
    pub matcher: Option<Matcher>,
}

/// Health check members of CreateTargetGroup / ModifyTargetGroup (each optional).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthCheckInput {
    pub enabled: Option<bool>,
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    pub interval_seconds: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub healthy_threshold_count: Option<i32>,
    pub unhealthy_threshold_count: Option<i32>,
    pub matcher: Option<Matcher>,
}

/// A target group as stored under [`keys::target_group`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupRecord {
    pub target_group_arn: String,
    pub target_group_name: String,
    pub id: String,
    pub protocol: String,
    #[serde(default)]
    pub protocol_version: Option<String>,
    pub port: u16,
    pub vpc_id: String,
    pub target_type: String,
    pub ip_address_type: String,
    pub health_check: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The protocols Skiff's target groups speak.
pub const TARGET_GROUP_PROTOCOLS: [&str; 3] = ["HTTP", "HTTPS", "TCP"];

pub fn is_http(protocol: &str) -> bool {
    protocol == "HTTP" || protocol == "HTTPS"
}

/// The health check of a new target group of `protocol` (`protocol_version` for HTTP ones), AWS's
/// defaults filled in and the whole validated.
pub fn new_health_check(
    protocol: &str,
    protocol_version: Option<&str>,
    input: &HealthCheckInput,
) -> Result<HealthCheck, Invalid> {
    let hc_protocol = input.protocol.clone().unwrap_or_else(|| protocol.to_string());
    let http_check = is_http(&hc_protocol);
    let (interval, timeout) = if is_http(protocol) { (30, 5) } else { (30, if http_check { 6 } else { 10 }) };
    let grpc = protocol_version == Some("GRPC");
    let default_matcher = if grpc {
        Matcher { http_code: None, grpc_code: Some("12".into()) }
    } else if is_http(protocol) {
        Matcher { http_code: Some("200".into()), grpc_code: None }
    } else {
        Matcher { http_code: Some("200-399".into()), grpc_code: None }
    };
    let hc = HealthCheck {
        enabled: input.enabled.unwrap_or(true),
        port: input.port.clone().unwrap_or_else(|| "traffic-port".into()),
        path: if http_check {
            Some(input.path.clone().unwrap_or_else(|| if grpc { "/AWS.ALB/healthcheck".into() } else { "/".into() }))
        } else {
            input.path.clone()
        },
        interval_seconds: input.interval_seconds.unwrap_or(interval),
        timeout_seconds: input.timeout_seconds.unwrap_or(timeout),
        healthy_threshold_count: input.healthy_threshold_count.unwrap_or(5),
        unhealthy_threshold_count: input.unhealthy_threshold_count.unwrap_or(2),
        matcher: if http_check {
            Some(input.matcher.clone().unwrap_or(default_matcher))
        } else {
            input.matcher.clone()
        },
        protocol: hc_protocol,
    };
    validate_health_check(protocol, &hc)?;
    Ok(hc)
}

/// `input`'s changes applied to `hc` (ModifyTargetGroup), validated.
pub fn modify_health_check(protocol: &str, hc: &mut HealthCheck, input: &HealthCheckInput) -> Result<(), Invalid> {
    if let Some(p) = &input.protocol {
        if is_http(p) && !is_http(&hc.protocol) {
            hc.path.get_or_insert_with(|| "/".into());
            hc.matcher.get_or_insert_with(|| Matcher { http_code: Some("200-399".into()), grpc_code: None });
        }
        if !is_http(p) {
            hc.path = None;
            hc.matcher = None;
        }
        hc.protocol = p.clone();
    }
    let set = |slot: &mut i32, v: Option<i32>| {
        if let Some(v) = v {
            *slot = v;
        }
    };
    if let Some(e) = input.enabled {
        hc.enabled = e;
    }
    if let Some(p) = &input.port {
        hc.port = p.clone();
    }
    if let Some(p) = &input.path {
        hc.path = Some(p.clone());
    }
    set(&mut hc.interval_seconds, input.interval_seconds);
    set(&mut hc.timeout_seconds, input.timeout_seconds);
    set(&mut hc.healthy_threshold_count, input.healthy_threshold_count);
    set(&mut hc.unhealthy_threshold_count, input.unhealthy_threshold_count);
    if let Some(m) = &input.matcher {
        hc.matcher = Some(m.clone());
    }
    validate_health_check(protocol, hc)
}

fn validate_health_check(protocol: &str, hc: &HealthCheck) -> Result<(), Invalid> {
    if !TARGET_GROUP_PROTOCOLS.contains(&hc.protocol.as_str()) {
        return Err(validation(format!("health check protocol '{}' is not supported", hc.protocol)));
    }
    if is_http(protocol) && !is_http(&hc.protocol) {
        return Err(config(format!(
            "health check protocol '{}' is not supported for target groups with the {protocol} protocol",
            hc.protocol
        )));
    }
    if hc.port != "traffic-port" && !hc.port.parse::<u16>().is_ok_and(|p| p >= 1) {
        return Err(validation(format!("health check port '{}' must be 'traffic-port' or 1 to 65535", hc.port)));
    }
    let ranges = [
        ("HealthCheckIntervalSeconds", hc.interval_seconds, 5, 300),
        ("HealthCheckTimeoutSeconds", hc.timeout_seconds, 2, 120),
        ("HealthyThresholdCount", hc.healthy_threshold_count, 2, 10),
        ("UnhealthyThresholdCount", hc.unhealthy_threshold_count, 2, 10),
    ];
    for (name, v, min, max) in ranges {
        if !(min..=max).contains(&v) {
            return Err(validation(format!("{name} must be from {min} to {max}, not {v}")));
        }
    }
    if hc.timeout_seconds >= hc.interval_seconds {
        return Err(config(format!(
            "health check timeout ({}s) must be smaller than the interval ({}s)",
            hc.timeout_seconds, hc.interval_seconds
        )));
    }
    if let Some(path) = &hc.path {
        if !is_http(&hc.protocol) {
            return Err(config(format!(
                "a health check path cannot be set with the {} health check protocol",
                hc.protocol
            )));
        }
        if !path.starts_with('/') || path.len() > 1024 {
            return Err(validation(format!("health check path '{path}' must begin with '/' (1 to 1024 characters)")));
        }
    }
    if let Some(m) = &hc.matcher {
        if !is_http(&hc.protocol) {
            return Err(config(format!("a matcher cannot be set with the {} health check protocol", hc.protocol)));
        }
        match (&m.http_code, &m.grpc_code) {
            (Some(code), None) => validate_http_codes(code)?,
            (None, Some(code)) => validate_codes(code, 0, 99, "gRPC")?,
            _ => return Err(validation("a matcher needs exactly one of HttpCode and GrpcCode")),
        }
    }
    Ok(())
}

fn validate_codes(codes: &str, min: u32, max: u32, noun: &str) -> Result<(), Invalid> {
    let bad = || {
        validation(format!(
            "{noun} codes '{codes}' must be codes from {min} to {max}, as '200', '200,202' or '200-299'"
        ))
    };
    for part in codes.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u32 = lo.trim().parse().map_err(|_| bad())?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad())?;
        if lo < min || hi > max || lo > hi {
            return Err(bad());
        }
    }
    Ok(())
}

fn validate_http_codes(codes: &str) -> Result<(), Invalid> {
    validate_codes(codes, 200, 499, "HTTP")
}

/// The attributes of a target group of `protocol`, with AWS's defaults.
pub fn target_group_attribute_defaults(protocol: &str) -> BTreeMap<String, String> {
    let common: &[(&str, &str)] = &[
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
        ("load_balancing.cross_zone.enabled", "use_load_balancer_configuration"),
        ("target_group_health.dns_failover.minimum_healthy_targets.count", "1"),
        ("target_group_health.dns_failover.minimum_healthy_targets.percentage", "off"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", "1"),
        ("target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage", "off"),
    ];
    let http: &[(&str, &str)] = &[
        ("stickiness.type", "lb_cookie"),
        ("stickiness.lb_cookie.duration_seconds", "86400"),
        ("stickiness.app_cookie.cookie_name", ""),
        ("stickiness.app_cookie.duration_seconds", "86400"),
        ("load_balancing.algorithm.type", "round_robin"),
        ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ("slow_start.duration_seconds", "0"),
    ];
    let tcp: &[(&str, &str)] = &[
        ("stickiness.type", "source_ip"),
        ("deregistration_delay.connection_termination.enabled", "false"),
        ("proxy_protocol_v2.enabled", "false"),
        ("preserve_client_ip.enabled", "false"),
        ("target_health_state.unhealthy.connection_termination.enabled", "true"),
        ("target_health_state.unhealthy.draining_interval_seconds", "0"),
    ];
    let own = if is_http(protocol) { http } else { tcp };
    common.iter().chain(own).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Applies `changes` to a target group's attributes, as ModifyTargetGroupAttributes does.
pub fn modify_target_group_attributes(
    protocol: &str,
    current: &mut BTreeMap<String, String>,
    changes: &[(String, String)],
) -> Result<(), Invalid> {
    for (key, value) in changes {
        if !current.contains_key(key) {
            return Err(validation(format!("target group attribute key '{key}' is not recognized")));
        }
        match key.as_str() {
            "deregistration_delay.timeout_seconds" => check_int(key, value, 0, 3600)?,
            "stickiness.type" => {
                let allowed: &[&str] = if is_http(protocol) { &["lb_cookie", "app_cookie"] } else { &["source_ip"] };
                if !allowed.contains(&value.as_str()) {
                    return Err(config(format!(
                        "stickiness type '{value}' is not supported for target groups with the {protocol} protocol \
                         (supported: {})",
                        allowed.join(", ")
                    )));
                }
            }
            "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
                check_int(key, value, 1, 604800)?
            }
            "stickiness.app_cookie.cookie_name" => {}
            "load_balancing.algorithm.type" => {
                check_one_of(key, value, &["round_robin", "least_outstanding_requests", "weighted_random"])?
            }
            "load_balancing.algorithm.anomaly_mitigation" => check_one_of(key, value, &["on", "off"])?,
            "slow_start.duration_seconds" => {
                if value != "0" {
                    check_int(key, value, 30, 900)?
                }
            }
            "load_balancing.cross_zone.enabled" => {
                check_one_of(key, value, &["true", "false", "use_load_balancer_configuration"])?
            }
            "target_group_health.dns_failover.minimum_healthy_targets.count"
            | "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count" => {
                if value != "off" {
                    check_int(key, value, 1, 1_000_000)?
                }
            }
            "target_group_health.dns_failover.minimum_healthy_targets.percentage"
            | "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage" => {
                if value != "off" {
                    check_int(key, value, 1, 100)?
                }
            }
            "target_health_state.unhealthy.draining_interval_seconds" => check_int(key, value, 0, 360000)?,
            _ => check_bool(key, value)?,
        }
        current.insert(key.clone(), value.clone());
    }
    if current.get("stickiness.enabled").map(String::as_str) == Some("true")
        && current.get("stickiness.type").map(String::as_str) == Some("app_cookie")
        && current.get("stickiness.app_cookie.cookie_name").is_none_or(|n| n.is_empty())
    {
        return Err(config("app_cookie stickiness needs 'stickiness.app_cookie.cookie_name'"));
    }
    Ok(())
}

/// A registered target, stored under [`keys::target`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRecord {
    pub target_group_arn: String,
    pub id: String,
    pub port: u16,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// The ECS service that registered it (its ARN): the service controller deregisters only its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_by: Option<String>,
}

/// Whether `ip` (an IPv4 address) lies in `cidr`.
pub fn ip_in_cidr(ip: &str, cidr: &str) -> bool {
    let Ok(ip) = ip.parse::<Ipv4Addr>() else { return false };
    let Some((net, len)) = cidr.split_once('/') else { return false };
    let (Ok(net), Ok(len)) = (net.parse::<Ipv4Addr>(), len.parse::<u32>()) else { return false };
    if len > 32 {
        return false;
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

// ---------------------------------------------------------------------------------------------------------
// Actions

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupTuple {
    pub target_group_arn: String,
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardConfig {
    pub target_groups: Vec<TargetGroupTuple>,
    pub stickiness_enabled: bool,
    #[serde(default)]
    pub stickiness_duration_seconds: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectConfig {
    pub protocol: String,
    pub port: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub status_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedResponseConfig {
    pub status_code: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub message_body: Option<String>,
}

/// An action as stored: the forward form always carries a [`ForwardConfig`] (the single-target-group
/// `TargetGroupArn` form is normalized into one, as AWS describes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    #[serde(rename = "forward")]
    Forward { order: i32, config: ForwardConfig },
    #[serde(rename = "redirect")]
    Redirect { order: i32, config: RedirectConfig },
    #[serde(rename = "fixed-response")]
    FixedResponse { order: i32, config: FixedResponseConfig },
}

impl Action {
    pub fn order(&self) -> i32 {
        match self {
            Action::Forward { order, .. } | Action::Redirect { order, .. } | Action::FixedResponse { order, .. } => {
                *order
            }
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Action::Forward { .. } => "forward",
            Action::Redirect { .. } => "redirect",
            Action::FixedResponse { .. } => "fixed-response",
        }
    }

    /// The target groups it forwards to.
    pub fn target_group_arns(&self) -> Vec<&str> {
        match self {
            Action::Forward { config, .. } => {
                config.target_groups.iter().map(|t| t.target_group_arn.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// An action as the request gives it (before validation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionInput {
    pub action_type: String,
    pub order: Option<i32>,
    pub target_group_arn: Option<String>,
    pub forward: Option<ForwardInput>,
    pub redirect: Option<RedirectInput>,
    pub fixed_response: Option<FixedResponseInput>,
    /// The config members of other action types that the request carries (authenticate-*, jwt-validation).
    pub other_configs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardInput {
    pub target_groups: Vec<(Option<String>, Option<i32>)>,
    pub stickiness_enabled: Option<bool>,
    pub stickiness_duration_seconds: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedirectInput {
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub query: Option<String>,
    pub status_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixedResponseInput {
    pub status_code: Option<String>,
    pub content_type: Option<String>,
    pub message_body: Option<String>,
}

const CONTENT_TYPES: [&str; 5] = ["text/plain", "text/css", "text/html", "application/javascript", "application/json"];

/// Validates a listener's or rule's actions for a load balancer of `lb_type`: one terminal action
/// (forward, redirect or fixed-response; Skiff has no authentication actions), orders unique; network load
/// balancers only forward.
pub fn validate_actions(lb_type: &str, inputs: &[ActionInput]) -> Result<Vec<Action>, Invalid> {
    if inputs.is_empty() {
        return Err(validation("at least one action must be specified"));
    }
    let mut out = Vec::new();
    for (i, a) in inputs.iter().enumerate() {
        let order = a.order.unwrap_or(i as i32 + 1);
        if !(1..=50000).contains(&order) {
            return Err(validation(format!("action order {order} must be from 1 to 50000")));
        }
        let action = match a.action_type.as_str() {
            "forward" => Action::Forward { order, config: forward(a)? },
            "redirect" => Action::Redirect { order, config: redirect(a)? },
            "fixed-response" => Action::FixedResponse { order, config: fixed_response(a)? },
            t @ ("authenticate-oidc" | "authenticate-cognito" | "jwt-validation") => {
                return Err(action_error(format!("'{t}' actions are not supported by Skiff")))
            }
            t => return Err(validation(format!("action type '{t}' is not valid"))),
        };
        if let Some(other) = a.other_configs.first() {
            return Err(action_error(format!("{other} cannot be set on a '{}' action", a.action_type)));
        }
        if lb_type == "network" && !matches!(action, Action::Forward { .. }) {
            return Err(action_error(format!(
                "network load balancers support only 'forward' actions, not '{}'",
                action.type_name()
            )));
        }
        out.push(action);
    }
    if out.len() > 1 {
        return Err(Invalid {
            code: "TooManyActions",
            message: format!(
                "exactly one forward, redirect or fixed-response action may be specified, not {}",
                out.len()
            ),
        });
    }
    out.sort_by_key(Action::order);
    Ok(out)
}

fn forward(a: &ActionInput) -> Result<ForwardConfig, Invalid> {
    if a.redirect.is_some() || a.fixed_response.is_some() {
        return Err(action_error("a 'forward' action cannot have a RedirectConfig or FixedResponseConfig"));
    }
    let config = match &a.forward {
        Some(f) => {
            if f.target_groups.is_empty() {
                return Err(validation("ForwardConfig must name at least one target group"));
            }
            if f.target_groups.len() > 5 {
                return Err(action_error("ForwardConfig can name at most 5 target groups"));
            }
            let mut groups: Vec<TargetGroupTuple> = Vec::new();
            for (arn, weight) in &f.target_groups {
                let arn =
                    arn.clone().ok_or_else(|| validation("a ForwardConfig target group needs a TargetGroupArn"))?;
                let weight = weight.unwrap_or(1);
                if !(0..=999).contains(&weight) {
                    return Err(validation(format!("target group weight {weight} must be from 0 to 999")));
                }
                if groups.iter().any(|g| g.target_group_arn == arn) {
                    return Err(action_error(format!("target group '{arn}' is named twice in ForwardConfig")));
                }
                groups.push(TargetGroupTuple { target_group_arn: arn, weight });
            }
            let enabled = f.stickiness_enabled.unwrap_or(false);
            let duration = match f.stickiness_duration_seconds {
                Some(d) if !(1..=604800).contains(&d) => {
                    return Err(validation(format!("stickiness duration {d} must be from 1 to 604800 seconds")))
                }
                Some(d) => Some(d),
                None if enabled => {
                    return Err(validation("TargetGroupStickinessConfig DurationSeconds is required when enabled"))
                }
                None => None,
            };
            ForwardConfig { target_groups: groups, stickiness_enabled: enabled, stickiness_duration_seconds: duration }
        }
        None => {
            let arn = a
                .target_group_arn
                .clone()
                .ok_or_else(|| validation("a 'forward' action needs a TargetGroupArn or a ForwardConfig"))?;
            ForwardConfig {
                target_groups: vec![TargetGroupTuple { target_group_arn: arn, weight: 1 }],
                stickiness_enabled: false,
                stickiness_duration_seconds: None,
            }
        }
    };
    if let (Some(arn), Some(_)) = (&a.target_group_arn, &a.forward) {
        if config.target_groups.len() != 1 || &config.target_groups[0].target_group_arn != arn {
            return Err(action_error(
                "TargetGroupArn and ForwardConfig name different target groups: give one or make them agree",
            ));
        }
    }
    Ok(config)
}

fn redirect(a: &ActionInput) -> Result<RedirectConfig, Invalid> {
    let r = a.redirect.as_ref().ok_or_else(|| validation("a 'redirect' action needs a RedirectConfig"))?;
    if a.target_group_arn.is_some() || a.forward.is_some() || a.fixed_response.is_some() {
        return Err(action_error("a 'redirect' action can only have a RedirectConfig"));
    }
    let status_code = r.status_code.clone().ok_or_else(|| validation("RedirectConfig needs a StatusCode"))?;
    if status_code != "HTTP_301" && status_code != "HTTP_302" {
        return Err(validation(format!("redirect status code '{status_code}' must be HTTP_301 or HTTP_302")));
    }
    let c = RedirectConfig {
        protocol: r.protocol.clone().unwrap_or_else(|| "#{protocol}".into()),
        port: r.port.clone().unwrap_or_else(|| "#{port}".into()),
        host: r.host.clone().unwrap_or_else(|| "#{host}".into()),
        path: r.path.clone().unwrap_or_else(|| "/#{path}".into()),
        query: r.query.clone().unwrap_or_else(|| "#{query}".into()),
        status_code,
    };
    if !["HTTP", "HTTPS", "#{protocol}"].contains(&c.protocol.as_str()) {
        return Err(validation(format!("redirect protocol '{}' must be HTTP, HTTPS or #{{protocol}}", c.protocol)));
    }
    if c.port != "#{port}" && !c.port.parse::<u16>().is_ok_and(|p| p >= 1) {
        return Err(validation(format!("redirect port '{}' must be 1 to 65535 or #{{port}}", c.port)));
    }
    if c.host.is_empty() || c.host.len() > 128 {
        return Err(validation("redirect host must have 1 to 128 characters"));
    }
    if !c.path.starts_with('/') || c.path.len() > 128 {
        return Err(validation(format!("redirect path '{}' must begin with '/' (1 to 128 characters)", c.path)));
    }
    if c.query.len() > 128 || c.query.starts_with('?') {
        return Err(validation("redirect query must have at most 128 characters and no leading '?'"));
    }
    let unchanged = c.protocol == "#{protocol}"
        && c.port == "#{port}"
        && c.host == "#{host}"
        && c.path == "/#{path}"
        && c.query == "#{query}";
    if unchanged {
        return Err(action_error("the redirect would send requests to the same URL: change at least one of its parts"));
    }
    for part in [&c.host, &c.path, &c.query] {
        let mut rest = part.as_str();
        while let Some(start) = rest.find("#{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(validation(format!("unterminated placeholder in '{part}'")));
            };
            let name = &after[..end];
            if !["protocol", "host", "port", "path", "query"].contains(&name) {
                return Err(validation(format!("unknown placeholder '#{{{name}}}' in '{part}'")));
            }
            rest = &after[end + 1..];
        }
    }
    Ok(c)
}

fn fixed_response(a: &ActionInput) -> Result<FixedResponseConfig, Invalid> {
    let f =
        a.fixed_response.as_ref().ok_or_else(|| validation("a 'fixed-response' action needs a FixedResponseConfig"))?;
    if a.target_group_arn.is_some() || a.forward.is_some() || a.redirect.is_some() {
        return Err(action_error("a 'fixed-response' action can only have a FixedResponseConfig"));
    }
    let status_code = f.status_code.clone().ok_or_else(|| validation("FixedResponseConfig needs a StatusCode"))?;
    let ok = status_code.len() == 3
        && status_code.bytes().all(|b| b.is_ascii_digit())
        && matches!(status_code.as_bytes()[0], b'2' | b'4' | b'5');
    if !ok {
        return Err(validation(format!("fixed response status code '{status_code}' must be 2XX, 4XX or 5XX")));
    }
    if let Some(t) = &f.content_type {
        if !CONTENT_TYPES.contains(&t.as_str()) {
            return Err(validation(format!("content type '{t}' must be one of {}", CONTENT_TYPES.join(", "))));
        }
    }
    if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
        return Err(validation("fixed response message body must have at most 1024 characters"));
    }
    Ok(FixedResponseConfig { status_code, content_type: f.content_type.clone(), message_body: f.message_body.clone() })
}

// ---------------------------------------------------------------------------------------------------------
// Listeners and rules

/// A listener as stored under [`keys::listener`]. Its default rule is not a record of its own: it is
/// this listener's default actions, shown by DescribeRules under `default_rule_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerRecord {
    pub listener_arn: String,
    pub load_balancer_arn: String,
    pub id: String,
    pub port: u16,
    pub protocol: String,
    pub default_actions: Vec<Action>,
    pub default_rule_id: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub default_rule_tags: Vec<Tag>,
}

/// Listener protocols of each load balancer type (Skiff has no certificates yet, so no HTTPS or TLS).
pub fn validate_listener(lb_type: &str, protocol: &str, port: i64) -> Result<(), Invalid> {
    if protocol == "HTTPS" || protocol == "TLS" {
        return Err(Invalid {
            code: "UnsupportedProtocol",
            message: format!(
                "{protocol} listeners need certificates, which Skiff does not support yet: use HTTP or TCP"
            ),
        });
    }
    let allowed = if lb_type == "network" { "TCP" } else { "HTTP" };
    if protocol != allowed {
        return Err(Invalid {
            code: "UnsupportedProtocol",
            message: format!("protocol '{protocol}' is not supported by {lb_type} load balancers (use {allowed})"),
        });
    }
    if !(1..=65535).contains(&port) {
        return Err(validation(format!("listener port {port} must be from 1 to 65535")));
    }
    Ok(())
}

/// Whether a target group of `tg_protocol` can serve a listener of `listener_protocol`.
pub fn protocols_fit(listener_protocol: &str, tg_protocol: &str) -> bool {
    if listener_protocol == "HTTP" || listener_protocol == "HTTPS" {
        is_http(tg_protocol)
    } else {
        tg_protocol == "TCP"
    }
}

/// A rule condition as stored (the new `*Config` form; `Values` of host-header and path-pattern are
/// rendered in both forms, as AWS does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub field: String,
    #[serde(default)]
    pub values: Vec<String>,
    /// http-header's header name.
    #[serde(default)]
    pub header_name: Option<String>,
    /// query-string's pairs.
    #[serde(default)]
    pub query_pairs: Vec<(Option<String>, String)>,
    /// Whether the request used the old top-level `Values` form.
    #[serde(default)]
    pub legacy_values: bool,
}

/// A condition as the request gives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionInput {
    pub field: Option<String>,
    pub values: Option<Vec<String>>,
    pub config_values: Option<Vec<String>>,
    pub header_name: Option<String>,
    pub query_pairs: Option<Vec<(Option<String>, Option<String>)>>,
    /// Which `*Config` members are present (`HostHeaderConfig`, …).
    pub configs: Vec<String>,
}

/// The condition fields and the `*Config` member of each.
const FIELDS: [(&str, &str); 6] = [
    ("host-header", "HostHeaderConfig"),
    ("path-pattern", "PathPatternConfig"),
    ("http-header", "HttpHeaderConfig"),
    ("http-request-method", "HttpRequestMethodConfig"),
    ("query-string", "QueryStringConfig"),
    ("source-ip", "SourceIpConfig"),
];

/// Validates a rule's conditions as AWS does: at least one; host-header, path-pattern,
/// http-request-method and source-ip at most once each; at most 5 values in all; values up to 128
/// characters; methods of A–Z, `-`, `_`; source IPs as CIDR blocks.
pub fn validate_conditions(inputs: &[ConditionInput]) -> Result<Vec<Condition>, Invalid> {
    if inputs.is_empty() {
        return Err(validation("a rule needs at least one condition"));
    }
    let mut out: Vec<Condition> = Vec::new();
    for c in inputs {
        let field = c.field.clone().ok_or_else(|| validation("a condition needs a Field"))?;
        let Some((_, config_name)) = FIELDS.iter().find(|(f, _)| *f == field) else {
            return Err(validation(format!(
                "condition field '{field}' must be one of {}",
                FIELDS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
            )));
        };
        if let Some(other) = c.configs.iter().find(|n| n.as_str() != *config_name) {
            return Err(validation(format!("{other} cannot be set on a '{field}' condition")));
        }
        let single = ["host-header", "path-pattern", "http-request-method", "source-ip"];
        if single.contains(&field.as_str()) && out.iter().any(|o| o.field == field) {
            return Err(validation(format!("a rule can have only one '{field}' condition")));
        }
        let legacy = c.values.is_some();
        if legacy && c.configs.iter().any(|n| n == config_name) {
            return Err(validation(format!("give either Values or {config_name} for a '{field}' condition, not both")));
        }
        if legacy && field != "host-header" && field != "path-pattern" {
            return Err(validation(format!("'{field}' conditions take {config_name}, not Values")));
        }
        let values = c.values.clone().or_else(|| c.config_values.clone()).unwrap_or_default();
        let mut cond = Condition {
            field: field.clone(),
            values,
            header_name: None,
            query_pairs: Vec::new(),
            legacy_values: legacy,
        };
        match field.as_str() {
            "query-string" => {
                let pairs = c.query_pairs.clone().unwrap_or_default();
                if pairs.is_empty() {
                    return Err(validation("a 'query-string' condition needs at least one key/value pair"));
                }
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| validation("a query-string pair needs a Value"))?;
                    if v.is_empty() || v.len() > 128 || k.as_ref().is_some_and(|k| k.is_empty() || k.len() > 128) {
                        return Err(validation("query-string keys and values must have 1 to 128 characters"));
                    }
                    cond.query_pairs.push((k, v));
                }
            }
            _ => {
                if cond.values.is_empty() {
                    return Err(validation(format!("a '{field}' condition needs at least one value")));
                }
            }
        }
        if field == "http-header" {
            let name = c.header_name.clone().ok_or_else(|| validation("HttpHeaderConfig needs an HttpHeaderName"))?;
            if name.is_empty()
                || name.len() > 40
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(validation(format!(
                    "header name '{name}' is not valid (1 to 40 of A-Z, a-z, 0-9, - and _)"
                )));
            }
            cond.header_name = Some(name);
        }
        for v in &cond.values {
            if v.is_empty() || v.len() > 128 {
                return Err(validation(format!("condition value '{v}' must have 1 to 128 characters")));
            }
            match field.as_str() {
                "http-request-method"
                    if !v.bytes().all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_') || v.len() > 40 =>
                {
                    return Err(validation(format!("HTTP method '{v}' must be 1 to 40 of A-Z, '-' and '_'")))
                }
                "source-ip" if !is_cidr(v) => {
                    return Err(validation(format!("source IP '{v}' must be a CIDR block such as 192.0.2.0/24")))
                }
                _ => {}
            }
        }
        out.push(cond);
    }
    let total: usize = out.iter().map(|c| c.values.len() + c.query_pairs.len()).sum();
    if total > 5 {
        return Err(validation(format!("a rule can have at most 5 condition values in all, not {total}")));
    }
    Ok(out)
}

fn is_cidr(v: &str) -> bool {
    let Some((ip, len)) = v.split_once('/') else { return false };
    let v4 = ip.parse::<Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32);
    let v6 = ip.parse::<std::net::Ipv6Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 128);
    v4 || v6
}

/// A rule as stored under [`keys::rule`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRecord {
    pub rule_arn: String,
    pub listener_arn: String,
    pub id: String,
    pub priority: i32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_come_from_the_block_in_order() {
        let block = parse_lb_block(DEFAULT_LB_BLOCK).unwrap();
        assert_eq!(lb_address(block, 1).unwrap().to_string(), "127.200.0.1");
        assert_eq!(lb_address(block, 256).unwrap().to_string(), "127.200.1.0");
        assert!(lb_address(block, 0).is_none() && lb_address(block, 65535).is_none());
        assert_eq!(free_lb_address(block, ["127.200.0.1", "127.200.0.3"]).unwrap().to_string(), "127.200.0.2");
        let other = parse_lb_block("127.31.0.0/16").unwrap();
        assert_eq!(lb_address(other, 1).unwrap().to_string(), "127.31.0.1");
        for bad in ["10.0.0.0/16", "127.1.2.0/16", "127.1.0.0/24", "nonsense"] {
            assert!(parse_lb_block(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arns_parse_by_kind() {
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef";
        assert_eq!(
            parse_arn(lb, "us-east-1", "123456789012"),
            Some(ElbArn::LoadBalancer { name: "web".into(), id: "0123456789abcdef".into() })
        );
        assert!(parse_arn(lb, "us-east-1", "210987654321").is_none());
        let rule = "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/net/web/a/b/c";
        assert!(matches!(parse_arn(rule, "us-east-1", "1"), Some(ElbArn::Rule { .. })));
        assert!(parse_arn("arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x", "us-east-1", "1").is_none());
        assert!(parse_arn("arn:aws:elasticloadbalancing:us-east-1:1:listener/gwy/a/b/c", "us-east-1", "1").is_none());
    }

    #[test]
    fn names() {
        for ok in ["web", "a-b-1", &"x".repeat(32)] {
            validate_name("Load balancer", ok).unwrap();
        }
        for bad in ["", "-web", "web-", "we_b", &"x".repeat(33), "internal-web"] {
            assert_eq!(validate_name("Load balancer", bad).unwrap_err().code, "ValidationError", "{bad}");
        }
        validate_name("Target group", "internal-web").unwrap();
    }

    #[test]
    fn tags_are_checked_and_merged() {
        let t = |k: &str| Tag { key: k.into(), value: Some("v".into()) };
        assert_eq!(validate_tags(&[t("a"), t("a")]).unwrap_err().code, "DuplicateTagKeys");
        assert_eq!(validate_tags(&[t("aws:x")]).unwrap_err().code, "ValidationError");
        let mut existing: Vec<Tag> = (0..49).map(|i| t(&format!("k{i}"))).collect();
        merge_tags(&mut existing, &[t("k0"), t("new")]).unwrap();
        assert_eq!(existing.len(), 50);
        assert_eq!(merge_tags(&mut existing, &[t("more")]).unwrap_err().code, "TooManyTags");
    }

    #[test]
    fn load_balancer_attributes() {
        let mut a = load_balancer_attribute_defaults("application");
        assert_eq!(a["idle_timeout.timeout_seconds"], "60");
        let set = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        modify_load_balancer_attributes(&mut a, &set("idle_timeout.timeout_seconds", "4000")).unwrap();
        assert_eq!(a["idle_timeout.timeout_seconds"], "4000");
        for (k, v, code) in [
            ("idle_timeout.timeout_seconds", "0", "ValidationError"),
            ("idle_timeout.timeout_seconds", "4001", "ValidationError"),
            ("deletion_protection.enabled", "yes", "ValidationError"),
            ("no.such.key", "1", "ValidationError"),
            ("access_logs.s3.enabled", "true", "InvalidConfigurationRequest"),
        ] {
            assert_eq!(modify_load_balancer_attributes(&mut a, &set(k, v)).unwrap_err().code, code, "{k}={v}");
        }
        let net = load_balancer_attribute_defaults("network");
        assert!(!net.contains_key("idle_timeout.timeout_seconds"));
        assert!(a.len() <= 20 && net.len() <= 20);
        assert_eq!(net["load_balancing.cross_zone.enabled"], "false");
    }

    #[test]
    fn health_check_defaults_and_ranges() {
        let hc = new_health_check("HTTP", Some("HTTP1"), &HealthCheckInput::default()).unwrap();
        assert_eq!(
            (hc.protocol.as_str(), hc.path.as_deref(), hc.interval_seconds, hc.timeout_seconds),
            ("HTTP", Some("/"), 30, 5)
        );
        assert_eq!(hc.matcher.unwrap().http_code.as_deref(), Some("200"));
        let tcp = new_health_check("TCP", None, &HealthCheckInput::default()).unwrap();
        assert_eq!((tcp.timeout_seconds, tcp.path.clone(), tcp.matcher.clone()), (10, None, None));
        let bad = |input: HealthCheckInput| new_health_check("HTTP", None, &input).unwrap_err().code;
        assert_eq!(bad(HealthCheckInput { interval_seconds: Some(4), ..Default::default() }), "ValidationError");
        assert_eq!(
            bad(HealthCheckInput { interval_seconds: Some(5), timeout_seconds: Some(5), ..Default::default() }),
            "InvalidConfigurationRequest"
        );
        assert_eq!(
            bad(HealthCheckInput { protocol: Some("TCP".into()), ..Default::default() }),
            "InvalidConfigurationRequest"
        );
        let m = |c: &str| Some(Matcher { http_code: Some(c.into()), grpc_code: None });
        assert_eq!(bad(HealthCheckInput { matcher: m("600"), ..Default::default() }), "ValidationError");
        new_health_check("HTTP", None, &HealthCheckInput { matcher: m("200,202-299"), ..Default::default() }).unwrap();
        let path_on_tcp = HealthCheckInput { path: Some("/x".into()), ..Default::default() };
        assert_eq!(new_health_check("TCP", None, &path_on_tcp).unwrap_err().code, "InvalidConfigurationRequest");
    }

    #[test]
    fn target_group_attributes() {
        let mut a = target_group_attribute_defaults("HTTP");
        let set = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        modify_target_group_attributes("HTTP", &mut a, &set("deregistration_delay.timeout_seconds", "0")).unwrap();
        modify_target_group_attributes(
            "HTTP",
            &mut a,
            &set("load_balancing.algorithm.type", "least_outstanding_requests"),
        )
        .unwrap();
        let err =
            |k: &str, v: &str| modify_target_group_attributes("HTTP", &mut a.clone(), &set(k, v)).unwrap_err().code;
        assert_eq!(err("deregistration_delay.timeout_seconds", "3601"), "ValidationError");
        assert_eq!(err("stickiness.type", "source_ip"), "InvalidConfigurationRequest");
        assert_eq!(err("stickiness.lb_cookie.duration_seconds", "0"), "ValidationError");
        assert_eq!(err("proxy_protocol_v2.enabled", "true"), "ValidationError");
        assert!(target_group_attribute_defaults("TCP").contains_key("proxy_protocol_v2.enabled"));
    }

    #[test]
    fn cidrs() {
        assert!(ip_in_cidr("172.31.3.4", "172.31.0.0/16"));
        assert!(!ip_in_cidr("10.0.0.1", "172.31.0.0/16"));
        assert!(!ip_in_cidr("nope", "172.31.0.0/16"));
    }

    fn fwd(arn: &str) -> ActionInput {
        ActionInput { action_type: "forward".into(), target_group_arn: Some(arn.into()), ..Default::default() }
    }

    #[test]
    fn actions() {
        let a = validate_actions("application", &[fwd("tg")]).unwrap();
        assert_eq!(a[0].target_group_arns(), ["tg"]);
        let weighted = ActionInput {
            action_type: "forward".into(),
            forward: Some(ForwardInput {
                target_groups: vec![(Some("a".into()), Some(3)), (Some("b".into()), None)],
                stickiness_enabled: Some(true),
                stickiness_duration_seconds: Some(60),
            }),
            ..Default::default()
        };
        validate_actions("application", &[weighted]).unwrap();
        let redirect =
            |r: RedirectInput| ActionInput { action_type: "redirect".into(), redirect: Some(r), ..Default::default() };
        let same = redirect(RedirectInput { status_code: Some("HTTP_301".into()), ..Default::default() });
        assert_eq!(validate_actions("application", &[same]).unwrap_err().code, "InvalidLoadBalancerAction");
        let https = redirect(RedirectInput {
            protocol: Some("HTTPS".into()),
            port: Some("443".into()),
            status_code: Some("HTTP_301".into()),
            ..Default::default()
        });
        let r = validate_actions("application", std::slice::from_ref(&https)).unwrap();
        assert!(matches!(&r[0], Action::Redirect { config, .. } if config.path == "/#{path}"));
        assert_eq!(validate_actions("network", &[https]).unwrap_err().code, "InvalidLoadBalancerAction");
        let fixed = |code: &str| ActionInput {
            action_type: "fixed-response".into(),
            fixed_response: Some(FixedResponseInput { status_code: Some(code.into()), ..Default::default() }),
            ..Default::default()
        };
        validate_actions("application", &[fixed("503")]).unwrap();
        assert_eq!(validate_actions("application", &[fixed("302")]).unwrap_err().code, "ValidationError");
        assert_eq!(validate_actions("application", &[fixed("200"), fwd("x")]).unwrap_err().code, "TooManyActions");
        assert_eq!(validate_actions("application", &[]).unwrap_err().code, "ValidationError");
    }

    #[test]
    fn listeners() {
        validate_listener("application", "HTTP", 80).unwrap();
        validate_listener("network", "TCP", 5432).unwrap();
        assert_eq!(validate_listener("application", "HTTPS", 443).unwrap_err().code, "UnsupportedProtocol");
        assert_eq!(validate_listener("application", "TCP", 80).unwrap_err().code, "UnsupportedProtocol");
        assert_eq!(validate_listener("application", "HTTP", 0).unwrap_err().code, "ValidationError");
        assert!(protocols_fit("HTTP", "HTTPS") && !protocols_fit("HTTP", "TCP") && protocols_fit("TCP", "TCP"));
    }

    #[test]
    fn conditions() {
        let c = |field: &str, values: &[&str]| ConditionInput {
            field: Some(field.into()),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let ok = validate_conditions(&[c("path-pattern", &["/api/*"]), c("host-header", &["a.example.com"])]).unwrap();
        assert!(ok[0].legacy_values);
        let e = |cs: &[ConditionInput]| validate_conditions(cs).unwrap_err().code;
        assert_eq!(e(&[]), "ValidationError");
        assert_eq!(e(&[c("path-pattern", &["/a"]), c("path-pattern", &["/b"])]), "ValidationError");
        assert_eq!(e(&[c("path-pattern", &["/1", "/2", "/3", "/4", "/5", "/6"])]), "ValidationError");
        assert_eq!(e(&[c("cookie", &["x"])]), "ValidationError");
        assert_eq!(e(&[c("source-ip", &["x"])]), "ValidationError");
        let method = ConditionInput {
            field: Some("http-request-method".into()),
            config_values: Some(vec!["get".into()]),
            configs: vec!["HttpRequestMethodConfig".into()],
            ..Default::default()
        };
        assert_eq!(e(&[method]), "ValidationError");
        let source = ConditionInput {
            field: Some("source-ip".into()),
            config_values: Some(vec!["10.0.0.0/8".into()]),
            configs: vec!["SourceIpConfig".into()],
            ..Default::default()
        };
        validate_conditions(&[source]).unwrap();
        let query = ConditionInput {
            field: Some("query-string".into()),
            query_pairs: Some(vec![(Some("v".into()), Some("1".into())), (None, Some("x".into()))]),
            configs: vec!["QueryStringConfig".into()],
            ..Default::default()
        };
        assert_eq!(validate_conditions(&[query]).unwrap()[0].query_pairs.len(), 2);
    }
}
