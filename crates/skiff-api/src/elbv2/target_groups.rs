//! Target groups (Create, Describe, Modify, Delete, their attributes) and their ip targets (Register,
//! Deregister).

use super::{
    all_listeners_and_rules, boolean, int, invalid, load_balancers_of, not_found, one_of, page, parse_attributes,
    parse_tags, required, string_list, strings, structs, target_group, validation,
};
use crate::context::Ctx;
use crate::records::{self, encode, store_error};
use skiff_model::elbv2::{self, keys, HealthCheckInput, Matcher, TargetGroupRecord, TargetRecord};
use skiff_model::vpc::{self, Vpc};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};

const PROTOCOLS: [&str; 9] = ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"];

pub fn render(w: &mut XmlWriter, tg: &TargetGroupRecord, lbs: &[String]) {
    let hc = &tg.health_check;
    w.structure("member", |w| {
        w.text("TargetGroupArn", &tg.target_group_arn)
            .text("TargetGroupName", &tg.target_group_name)
            .text("Protocol", &tg.protocol)
            .int("Port", tg.port.into())
            .text("VpcId", &tg.vpc_id)
            .text("HealthCheckProtocol", &hc.protocol)
            .text("HealthCheckPort", &hc.port)
            .bool("HealthCheckEnabled", hc.enabled)
            .int("HealthCheckIntervalSeconds", hc.interval_seconds.into())
            .int("HealthCheckTimeoutSeconds", hc.timeout_seconds.into())
            .int("HealthyThresholdCount", hc.healthy_threshold_count.into())
            .int("UnhealthyThresholdCount", hc.unhealthy_threshold_count.into())
            .opt_text("HealthCheckPath", hc.path.as_deref());
        if let Some(m) = &hc.matcher {
            w.structure("Matcher", |w| {
                w.opt_text("HttpCode", m.http_code.as_deref()).opt_text("GrpcCode", m.grpc_code.as_deref());
            });
        }
        string_list(w, "LoadBalancerArns", lbs.iter().map(String::as_str));
        w.text("TargetType", &tg.target_type)
            .opt_text("ProtocolVersion", tg.protocol_version.as_deref())
            .text("IpAddressType", &tg.ip_address_type);
    });
}

fn health_check_input(p: &QueryParams) -> Result<HealthCheckInput, ApiError> {
    let protocol = one_of(p, "HealthCheckProtocol", &PROTOCOLS, "ValidationError")?;
    let matcher = if super::has(p, "Matcher") {
        let m = super::nested(p, "Matcher");
        Some(Matcher { http_code: m.get("HttpCode").map(String::from), grpc_code: m.get("GrpcCode").map(String::from) })
    } else {
        None
    };
    if let Some(path) = p.get("HealthCheckPath") {
        if path.is_empty() || path.len() > 1024 {
            return Err(validation("HealthCheckPath must have 1 to 1024 characters"));
        }
    }
    Ok(HealthCheckInput {
        enabled: boolean(p, "HealthCheckEnabled")?,
        protocol: protocol.map(String::from),
        port: p.get("HealthCheckPort").map(String::from),
        path: p.get("HealthCheckPath").map(String::from),
        interval_seconds: int(p, "HealthCheckIntervalSeconds", 5, 300)?.map(|v| v as i32),
        timeout_seconds: int(p, "HealthCheckTimeoutSeconds", 2, 120)?.map(|v| v as i32),
        healthy_threshold_count: int(p, "HealthyThresholdCount", 2, 10)?.map(|v| v as i32),
        unhealthy_threshold_count: int(p, "UnhealthyThresholdCount", 2, 10)?.map(|v| v as i32),
        matcher,
    })
}

pub async fn create_target_group(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let name = required(&p, "Name")?.to_string();
    elbv2::validate_name("Target group", &name).map_err(invalid)?;
    let target_type =
        one_of(&p, "TargetType", &["instance", "ip", "lambda", "alb"], "ValidationError")?.unwrap_or("instance");
    if target_type != "ip" {
        return Err(validation(format!(
            "target type '{target_type}' is not supported by Skiff: Fargate tasks register by address, use TargetType ip"
        )));
    }
    let protocol = one_of(&p, "Protocol", &PROTOCOLS, "ValidationError")?
        .ok_or_else(|| validation("a protocol must be specified for target groups of target type 'ip'"))?;
    if !elbv2::TARGET_GROUP_PROTOCOLS.contains(&protocol) {
        return Err(validation(format!(
            "protocol '{protocol}' is not supported by Skiff's target groups: use HTTP, HTTPS or TCP"
        )));
    }
    let port = int(&p, "Port", 1, 65535)?
        .ok_or_else(|| validation("a port must be specified for target groups of target type 'ip'"))?
        as u16;
    let vpc_id = required(&p, "VpcId")
        .map_err(|_| validation("a VPC ID must be specified for target groups of target type 'ip'"))?;
    let vpc = records::load::<Vpc>(ctx.store(), &vpc::keys::vpc(vpc_id))
        .await?
        .map(|(v, _)| v)
        .filter(|v| v.region == ctx.scope().region)
        .ok_or_else(|| validation(format!("The VPC ID '{vpc_id}' is not found")))?;
    let ip_type = one_of(&p, "IpAddressType", &["ipv4", "ipv6"], "ValidationError")?.unwrap_or("ipv4");
    if ip_type != "ipv4" {
        return Err(validation("target groups of IpAddressType ipv6 are not supported by Skiff"));
    }
    if p.get("TargetControlPort").is_some() {
        int(&p, "TargetControlPort", 1, 65535)?;
        return Err(validation("TargetControlPort is for QUIC target groups, which Skiff does not support"));
    }
    let protocol_version = match p.get("ProtocolVersion") {
        Some(v) if !elbv2::is_http(protocol) => {
            return Err(validation(format!("ProtocolVersion '{v}' applies only to HTTP and HTTPS target groups")))
        }
        Some(v) if !["HTTP1", "HTTP2", "GRPC"].contains(&v) => {
            return Err(validation(format!("ProtocolVersion '{v}' must be HTTP1, HTTP2 or GRPC")))
        }
        Some(v) => Some(v.to_string()),
        None => elbv2::is_http(protocol).then(|| "HTTP1".to_string()),
    };
    let health = health_check_input(&p)?;
    let health_check = elbv2::new_health_check(protocol, protocol_version.as_deref(), &health).map_err(invalid)?;
    let tags = parse_tags(&p, "Tags")?;
    let key = keys::target_group(&name);
    if let Some((existing, _)) = records::load::<TargetGroupRecord>(ctx.store(), &key).await? {
        // The same request again answers the existing group, as AWS does; another is a duplicate.
        let same = existing.protocol == protocol
            && existing.port == port
            && existing.vpc_id == vpc.vpc_id
            && existing.health_check == health_check
            && existing.protocol_version == protocol_version;
        if !same {
            return Err(ApiError::client(
                "DuplicateTargetGroupName",
                format!("A target group with the same name '{name}' exists, but with different settings"),
            ));
        }
        let mut w = XmlWriter::new();
        let (listeners, rules) = all_listeners_and_rules(ctx).await?;
        let lbs = load_balancers_of(&existing.target_group_arn, &listeners, &rules);
        w.structure("TargetGroups", |w| render(w, &existing, &lbs));
        return Ok(w.finish());
    }
    let id = super::random_id();
    let record = TargetGroupRecord {
        target_group_arn: super::arn(ctx, &format!("targetgroup/{name}/{id}")),
        target_group_name: name.clone(),
        id,
        protocol: protocol.to_string(),
        protocol_version,
        port,
        vpc_id: vpc.vpc_id.clone(),
        target_type: target_type.to_string(),
        ip_address_type: ip_type.to_string(),
        health_check,
        attributes: elbv2::target_group_attribute_defaults(protocol),
        tags,
    };
    match ctx.store().txn(Txn::new().when(&key, 0).put(&key, encode(&record)?)).await.map_err(store_error)? {
        TxnOutcome::Committed(_) => {}
        TxnOutcome::Conflict => {
            return Err(ApiError::client(
                "DuplicateTargetGroupName",
                format!("A target group with the name '{name}' was created by another request"),
            ))
        }
    }
    let mut w = XmlWriter::new();
    w.structure("TargetGroups", |w| render(w, &record, &[]));
    Ok(w.finish())
}

pub async fn describe_target_groups(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = strings(&p, "TargetGroupArns");
    let names = strings(&p, "Names");
    let lb_arn = p.get("LoadBalancerArn");
    let given = [!arns.is_empty(), !names.is_empty(), lb_arn.is_some()].iter().filter(|b| **b).count();
    if given > 1 {
        return Err(validation("specify at most one of LoadBalancerArn, TargetGroupArns and Names"));
    }
    let all: Vec<TargetGroupRecord> = records::load_all::<TargetGroupRecord>(ctx.store(), keys::TARGET_GROUPS)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let (listeners, rules) = all_listeners_and_rules(ctx).await?;
    let mut selected: Vec<TargetGroupRecord> = Vec::new();
    let add = |tg: &TargetGroupRecord, selected: &mut Vec<TargetGroupRecord>| {
        if !selected.iter().any(|s| s.target_group_arn == tg.target_group_arn) {
            selected.push(tg.clone());
        }
    };
    if !arns.is_empty() {
        for a in &arns {
            let tg = all
                .iter()
                .find(|t| &t.target_group_arn == a)
                .ok_or_else(|| not_found("TargetGroupNotFound", "target groups", a))?;
            add(tg, &mut selected);
        }
    } else if !names.is_empty() {
        for n in &names {
            let tg = all
                .iter()
                .find(|t| &t.target_group_name == n)
                .ok_or_else(|| ApiError::client("TargetGroupNotFound", format!("Target groups '[{n}]' not found")))?;
            add(tg, &mut selected);
        }
    } else if let Some(lb_arn) = lb_arn {
        super::load_balancer(ctx, lb_arn).await?;
        for tg in &all {
            if load_balancers_of(&tg.target_group_arn, &listeners, &rules).iter().any(|l| l == lb_arn) {
                add(tg, &mut selected);
            }
        }
    } else {
        selected = all;
    }
    selected.sort_by(|a, b| a.target_group_name.cmp(&b.target_group_name));
    let (items, marker) = page(&p, selected, |t| t.target_group_name.clone())?;
    let mut w = XmlWriter::new();
    w.structure("TargetGroups", |w| {
        for tg in &items {
            render(w, tg, &load_balancers_of(&tg.target_group_arn, &listeners, &rules));
        }
    });
    w.opt_text("NextMarker", marker.as_deref());
    Ok(w.finish())
}

pub async fn modify_target_group(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    let input = health_check_input(&p)?;
    let (tg, _) = target_group(ctx, &arn).await?;
    let missing = || not_found("TargetGroupNotFound", "target groups", &arn);
    let updated = records::update::<TargetGroupRecord, _>(
        ctx.store(),
        &keys::target_group(&tg.target_group_name),
        missing,
        |r| {
            if r.target_group_arn != arn {
                return Err(missing());
            }
            let protocol = r.protocol.clone();
            elbv2::modify_health_check(&protocol, &mut r.health_check, &input).map_err(invalid)
        },
    )
    .await?;
    let (listeners, rules) = all_listeners_and_rules(ctx).await?;
    let lbs = load_balancers_of(&arn, &listeners, &rules);
    let mut w = XmlWriter::new();
    w.structure("TargetGroups", |w| render(w, &updated, &lbs));
    Ok(w.finish())
}

pub async fn delete_target_group(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    for _ in 0..16 {
        let (tg, rev) = match target_group(ctx, &arn).await {
            Ok(found) => found,
            // Deleting a target group that does not exist succeeds, as in AWS.
            Err(e) if e.code == "TargetGroupNotFound" => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        let (listeners, rules) = all_listeners_and_rules(ctx).await?;
        let user = listeners
            .iter()
            .find(|l| l.default_actions.iter().any(|a| a.target_group_arns().contains(&arn.as_str())))
            .map(|l| l.listener_arn.clone())
            .or_else(|| {
                rules
                    .iter()
                    .find(|r| r.actions.iter().any(|a| a.target_group_arns().contains(&arn.as_str())))
                    .map(|r| r.rule_arn.clone())
            });
        if let Some(user) = user {
            return Err(ApiError::client(
                "ResourceInUse",
                format!("Target group '{arn}' is currently in use by a listener or a rule ({user})"),
            ));
        }
        let key = keys::target_group(&tg.target_group_name);
        let mut txn = Txn::new().when(&key, rev).delete(&key);
        for (tkey, _, trev) in records::load_all_rev::<TargetRecord>(ctx.store(), &keys::targets_of(&tg.id)).await? {
            txn = txn.when(&tkey, trev).delete(&tkey);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn describe_target_group_attributes(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?;
    let (tg, _) = target_group(ctx, arn).await?;
    let mut w = XmlWriter::new();
    super::render_attributes(&mut w, &tg.attributes);
    Ok(w.finish())
}

pub async fn modify_target_group_attributes(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    if p.get("Attributes").is_none() && !super::has(&p, "Attributes") {
        required(&p, "Attributes")?;
    }
    let changes = parse_attributes(&p, usize::MAX)?;
    let (tg, _) = target_group(ctx, &arn).await?;
    let missing = || not_found("TargetGroupNotFound", "target groups", &arn);
    let updated = records::update::<TargetGroupRecord, _>(
        ctx.store(),
        &keys::target_group(&tg.target_group_name),
        missing,
        |r| {
            if r.target_group_arn != arn {
                return Err(missing());
            }
            let protocol = r.protocol.clone();
            elbv2::modify_target_group_attributes(&protocol, &mut r.attributes, &changes).map_err(invalid)
        },
    )
    .await?;
    let mut w = XmlWriter::new();
    super::render_attributes(&mut w, &updated.attributes);
    Ok(w.finish())
}

/// `Targets.member.N.{Id,Port,AvailabilityZone}` of an ip target group: (id, port, zone).
fn parse_targets(p: &QueryParams, tg: &TargetGroupRecord) -> Result<Vec<(String, u16, Option<String>)>, ApiError> {
    if p.get("Targets").is_none() && !super::has(&p.clone(), "Targets") {
        required(p, "Targets")?;
    }
    let mut out = Vec::new();
    for t in structs(p, "Targets") {
        let id = required(&t, "Id")?.to_string();
        let port = int(&t, "Port", 1, 65535)?.map(|v| v as u16).unwrap_or(tg.port);
        if t.get("QuicServerId").is_some() {
            return Err(validation("QuicServerId applies only to QUIC target groups"));
        }
        out.push((id, port, t.get("AvailabilityZone").map(String::from)));
    }
    Ok(out)
}

pub async fn register_targets(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    for _ in 0..16 {
        let (tg, rev) = target_group(ctx, &arn).await?;
        let targets = parse_targets(&p, &tg)?;
        let vpc = records::load::<Vpc>(ctx.store(), &vpc::keys::vpc(&tg.vpc_id)).await?.map(|(v, _)| v);
        let cidr = vpc.map(|v| v.cidr_block).unwrap_or_default();
        let zones: Vec<String> =
            vpc::availability_zones(&ctx.scope().region).into_iter().map(|z| z.zone_name).collect();
        let key = keys::target_group(&tg.target_group_name);
        let mut txn = Txn::new().when(&key, rev).put(&key, encode(&tg)?);
        for (id, port, zone) in targets {
            if id.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(ApiError::client(
                    "InvalidTarget",
                    format!("target '{id}' is not an IPv4 address: target groups of type 'ip' register by address"),
                ));
            }
            if !elbv2::ip_in_cidr(&id, &cidr) {
                return Err(ApiError::client(
                    "InvalidTarget",
                    format!("The IP address '{id}' is not within the CIDR of the target group's VPC ({cidr})"),
                ));
            }
            if let Some(z) = &zone {
                if z != "all" && !zones.contains(z) {
                    return Err(ApiError::client("InvalidTarget", format!("Availability Zone '{z}' is not valid")));
                }
            }
            let record = TargetRecord {
                target_group_arn: arn.clone(),
                id: id.clone(),
                port,
                availability_zone: zone,
                registered_by: None,
            };
            txn = txn.put(keys::target(&tg.id, &id, port), encode(&record)?);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn deregister_targets(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    for _ in 0..16 {
        let (tg, rev) = target_group(ctx, &arn).await?;
        let targets = parse_targets(&p, &tg)?;
        let key = keys::target_group(&tg.target_group_name);
        let mut txn = Txn::new().when(&key, rev).put(&key, encode(&tg)?);
        for (id, port, _) in targets {
            let tkey = keys::target(&tg.id, &id, port);
            let Some(v) = ctx.store().get(&tkey).await.map_err(store_error)? else {
                return Err(ApiError::client(
                    "InvalidTarget",
                    format!("The following targets are not registered in target group '{arn}': {id}:{port}"),
                ));
            };
            txn = txn.when(&tkey, v.mod_revision).delete(&tkey);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

/// DescribeTargetHealth: the data plane's view of each registered target (and of deregistered ones still
/// draining); a target group no listener forwards to has its targets `unused`.
pub async fn describe_target_health(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "TargetGroupArn")?.to_string();
    let (tg, _) = target_group(ctx, &arn).await?;
    let asked =
        if super::has(&p, "Targets") || p.get("Targets").is_some() { Some(parse_targets(&p, &tg)?) } else { None };
    if let Some((bad, _, _)) = asked.iter().flatten().find(|(id, _, _)| id.parse::<std::net::Ipv4Addr>().is_err()) {
        return Err(ApiError::client(
            "InvalidTarget",
            format!("target '{bad}' is not an IPv4 address: target groups of type 'ip' name their targets by address"),
        ));
    }
    let registered: Vec<TargetRecord> = records::load_all::<TargetRecord>(ctx.store(), &keys::targets_of(&tg.id))
        .await?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let (listeners, rules) = super::all_listeners_and_rules(ctx).await?;
    let in_use = !super::load_balancers_of(&arn, &listeners, &rules).is_empty();
    let health = crate::lb::health_of(&ctx.state, &tg);
    let address =
        |id: &str, port: u16| id.parse::<std::net::IpAddr>().ok().map(|ip| std::net::SocketAddr::new(ip, port));
    // (id, port, zone, registered)
    let mut rows: Vec<(String, u16, Option<String>, bool)> = Vec::new();
    match asked {
        Some(list) => {
            for (id, port, zone) in list {
                let known = registered.iter().find(|t| t.id == id && t.port == port);
                let zone = known.and_then(|t| t.availability_zone.clone()).or(zone);
                rows.push((id, port, zone, known.is_some()));
            }
        }
        None => {
            rows.extend(registered.iter().map(|t| (t.id.clone(), t.port, t.availability_zone.clone(), true)));
            for addr in health.keys() {
                if !rows.iter().any(|(id, port, _, _)| address(id, *port) == Some(*addr)) {
                    rows.push((addr.ip().to_string(), addr.port(), None, false));
                }
            }
        }
    }
    let mut w = XmlWriter::new();
    w.structure("TargetHealthDescriptions", |w| {
        for (id, port, zone, is_registered) in &rows {
            let seen = address(id, *port).and_then(|a| health.get(&a));
            let (state, reason, description) = match seen {
                Some(h) => (h.state.as_str(), h.reason.map(|r| r.as_str()), h.description.clone()),
                None if !is_registered => (
                    "unused",
                    Some("Target.NotRegistered"),
                    Some("Target is not registered to the target group".into()),
                ),
                None if !in_use => (
                    "unused",
                    Some("Target.NotInUse"),
                    Some("Target group is not configured to receive traffic from the load balancer".into()),
                ),
                None => {
                    ("initial", Some("Elb.RegistrationInProgress"), Some("Target registration is in progress".into()))
                }
            };
            let check_port = tg.health_check.port.parse::<u16>().unwrap_or(*port);
            w.structure("member", |w| {
                w.structure("Target", |w| {
                    w.text("Id", id).int("Port", i64::from(*port)).opt_text("AvailabilityZone", zone.as_deref());
                });
                w.text("HealthCheckPort", &check_port.to_string());
                w.structure("TargetHealth", |w| {
                    w.text("State", state).opt_text("Reason", reason).opt_text("Description", description.as_deref());
                });
            });
        }
    });
    Ok(w.finish())
}
