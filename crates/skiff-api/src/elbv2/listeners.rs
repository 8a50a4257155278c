//! Listeners (Create, Modify, Delete, Describe) and their rules (Create, Modify, Delete, Describe,
//! SetRulePriorities). A listener's default rule is its default actions, shown by DescribeRules.

use super::{
    check_forwarded_groups, int, invalid, listener, load_balancer, not_found, one_of, page, parse_actions, parse_tags,
    render_actions, required, strings, structs, validation,
};
use crate::context::Ctx;
use crate::records::{self, encode, store_error};
use skiff_model::elbv2::{self, keys, ConditionInput, ElbArn, ListenerRecord, RuleRecord, TargetGroupRecord};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};

const PROTOCOLS: [&str; 9] = ["HTTP", "HTTPS", "TCP", "TLS", "UDP", "TCP_UDP", "GENEVE", "QUIC", "TCP_QUIC"];

fn render(w: &mut XmlWriter, l: &ListenerRecord) {
    w.structure("member", |w| {
        w.text("ListenerArn", &l.listener_arn)
            .text("LoadBalancerArn", &l.load_balancer_arn)
            .int("Port", l.port.into())
            .text("Protocol", &l.protocol);
        render_actions(w, "DefaultActions", &l.default_actions);
    });
}

fn refuse_certificates(p: &QueryParams) -> Result<(), ApiError> {
    for member in ["Certificates", "SslPolicy", "AlpnPolicy", "MutualAuthentication"] {
        if super::has(p, member) {
            return Err(validation(format!(
                "{member} applies to HTTPS and TLS listeners, which need certificates: Skiff does not support them yet"
            )));
        }
    }
    Ok(())
}

/// Re-puts the target groups with compares, so a concurrent DeleteTargetGroup conflicts.
fn pin_groups(mut txn: Txn, groups: &[(TargetGroupRecord, i64)]) -> Result<Txn, ApiError> {
    for (tg, rev) in groups {
        let key = keys::target_group(&tg.target_group_name);
        txn = txn.when(&key, *rev).put(&key, encode(tg)?);
    }
    Ok(txn)
}

pub async fn create_listener(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let lb_arn = required(&p, "LoadBalancerArn")?.to_string();
    required(&p, "DefaultActions").or_else(|e| if super::has(&p, "DefaultActions") { Ok("") } else { Err(e) })?;
    let protocol = one_of(&p, "Protocol", &PROTOCOLS, "ValidationError")?;
    let port = int(&p, "Port", 1, 65535)?;
    refuse_certificates(&p)?;
    let tags = parse_tags(&p, "Tags")?;
    let inputs = parse_actions(&p, "DefaultActions")?;
    for _ in 0..16 {
        let (lb, lb_rev) = load_balancer(ctx, &lb_arn).await?;
        let protocol = protocol.unwrap_or(if lb.lb_type == "network" { "TCP" } else { "HTTP" });
        let port = port.unwrap_or(if protocol == "HTTP" { 80 } else { 0 });
        elbv2::validate_listener(&lb.lb_type, protocol, port).map_err(invalid)?;
        let actions = elbv2::validate_actions(&lb.lb_type, &inputs).map_err(invalid)?;
        let existing = records::load_all_rev::<ListenerRecord>(ctx.store(), &keys::listeners_of(&lb.id)).await?;
        if existing.iter().any(|(_, l, _)| i64::from(l.port) == port) {
            return Err(ApiError::client(
                "DuplicateListener",
                format!("A listener already exists on port {port} of '{lb_arn}'"),
            ));
        }
        let groups = check_forwarded_groups(ctx, &lb_arn, protocol, &actions).await?;
        let id = super::random_id();
        let record = ListenerRecord {
            listener_arn: super::arn(
                ctx,
                &format!("listener/{}/{}/{}/{id}", elbv2::type_word(&lb.lb_type), lb.load_balancer_name, lb.id),
            ),
            load_balancer_arn: lb_arn.clone(),
            id: id.clone(),
            port: port as u16,
            protocol: protocol.to_string(),
            default_actions: actions,
            default_rule_id: super::random_id(),
            tags: tags.clone(),
            default_rule_tags: Vec::new(),
        };
        let lb_key = keys::load_balancer(&lb.load_balancer_name);
        let key = keys::listener(&lb.id, &id);
        let txn = Txn::new().when(&lb_key, lb_rev).put(&lb_key, encode(&lb)?).when(&key, 0).put(&key, encode(&record)?);
        match ctx.store().txn(pin_groups(txn, &groups)?).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("Listeners", |w| render(w, &record));
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {lb_arn}; retry the call")))
}

pub async fn modify_listener(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "ListenerArn")?.to_string();
    let protocol = one_of(&p, "Protocol", &PROTOCOLS, "ValidationError")?;
    let port = int(&p, "Port", 1, 65535)?;
    refuse_certificates(&p)?;
    let inputs = if super::has(&p, "DefaultActions") { Some(parse_actions(&p, "DefaultActions")?) } else { None };
    for _ in 0..16 {
        let (mut l, rev) = listener(ctx, &arn).await?;
        let (lb, lb_rev) = load_balancer(ctx, &l.load_balancer_arn).await?;
        let new_protocol = protocol.unwrap_or(&l.protocol).to_string();
        let new_port = port.unwrap_or(l.port.into());
        elbv2::validate_listener(&lb.lb_type, &new_protocol, new_port).map_err(invalid)?;
        let existing = records::load_all_rev::<ListenerRecord>(ctx.store(), &keys::listeners_of(&lb.id)).await?;
        if existing.iter().any(|(_, o, _)| o.id != l.id && i64::from(o.port) == new_port) {
            return Err(ApiError::client(
                "DuplicateListener",
                format!("A listener already exists on port {new_port} of '{}'", l.load_balancer_arn),
            ));
        }
        if let Some(inputs) = &inputs {
            l.default_actions = elbv2::validate_actions(&lb.lb_type, inputs).map_err(invalid)?;
        }
        let groups = check_forwarded_groups(ctx, &lb.load_balancer_arn, &new_protocol, &l.default_actions).await?;
        l.protocol = new_protocol;
        l.port = new_port as u16;
        let lb_key = keys::load_balancer(&lb.load_balancer_name);
        let key = keys::listener(&lb.id, &l.id);
        let txn = Txn::new().when(&lb_key, lb_rev).put(&lb_key, encode(&lb)?).when(&key, rev).put(&key, encode(&l)?);
        match ctx.store().txn(pin_groups(txn, &groups)?).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("Listeners", |w| render(w, &l));
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn delete_listener(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "ListenerArn")?.to_string();
    for _ in 0..16 {
        let (l, rev) = listener(ctx, &arn).await?;
        let Some(ElbArn::Listener { lb_id, .. }) = super::parse(ctx, &arn) else {
            return Err(not_found("ListenerNotFound", "listeners", &arn));
        };
        let key = keys::listener(&lb_id, &l.id);
        let mut txn = Txn::new().when(&key, rev).delete(&key);
        for (rkey, _, rrev) in records::load_all_rev::<RuleRecord>(ctx.store(), &keys::rules_of(&l.id)).await? {
            txn = txn.when(&rkey, rrev).delete(&rkey);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn describe_listeners(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = strings(&p, "ListenerArns");
    let lb_arn = p.get("LoadBalancerArn");
    let mut selected: Vec<ListenerRecord> = Vec::new();
    match (lb_arn, arns.is_empty()) {
        (Some(_), false) => return Err(validation("specify either LoadBalancerArn or ListenerArns, not both")),
        (None, true) => return Err(validation("specify either LoadBalancerArn or ListenerArns")),
        (Some(lb_arn), true) => {
            let (lb, _) = load_balancer(ctx, lb_arn).await?;
            selected = records::load_all::<ListenerRecord>(ctx.store(), &keys::listeners_of(&lb.id))
                .await?
                .into_iter()
                .map(|(_, l)| l)
                .collect();
        }
        (None, false) => {
            for a in &arns {
                let (l, _) = listener(ctx, a).await?;
                if !selected.iter().any(|s| s.listener_arn == l.listener_arn) {
                    selected.push(l);
                }
            }
        }
    }
    selected.sort_by(|a, b| a.listener_arn.cmp(&b.listener_arn));
    let (items, marker) = page(&p, selected, |l| l.listener_arn.clone())?;
    let mut w = XmlWriter::new();
    w.structure("Listeners", |w| {
        for l in &items {
            render(w, l);
        }
    });
    w.opt_text("NextMarker", marker.as_deref());
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------------------
// Rules

fn default_rule_arn(ctx: &Ctx, l: &ListenerRecord) -> String {
    let rest = l.listener_arn.split_once(":listener/").map(|(_, r)| r).unwrap_or_default();
    let _ = ctx;
    format!(
        "{}:listener-rule/{rest}/{}",
        l.listener_arn.split_once(":listener/").map(|(a, _)| a).unwrap_or_default(),
        l.default_rule_id
    )
}

fn render_rule(w: &mut XmlWriter, r: &RuleRecord, is_default: bool) {
    w.structure("member", |w| {
        w.text("RuleArn", &r.rule_arn)
            .text("Priority", &if is_default { "default".to_string() } else { r.priority.to_string() });
        w.structure("Conditions", |w| {
            for c in &r.conditions {
                w.structure("member", |w| {
                    w.text("Field", &c.field);
                    let values = |w: &mut XmlWriter, name: &str| {
                        super::string_list(w, name, c.values.iter().map(String::as_str))
                    };
                    if c.field == "host-header" || c.field == "path-pattern" {
                        values(w, "Values");
                    }
                    match c.field.as_str() {
                        "host-header" => {
                            w.structure("HostHeaderConfig", |w| values(w, "Values"));
                        }
                        "path-pattern" => {
                            w.structure("PathPatternConfig", |w| values(w, "Values"));
                        }
                        "http-header" => {
                            w.structure("HttpHeaderConfig", |w| {
                                w.opt_text("HttpHeaderName", c.header_name.as_deref());
                                values(w, "Values");
                            });
                        }
                        "http-request-method" => {
                            w.structure("HttpRequestMethodConfig", |w| values(w, "Values"));
                        }
                        "source-ip" => {
                            w.structure("SourceIpConfig", |w| values(w, "Values"));
                        }
                        "query-string" => {
                            w.structure("QueryStringConfig", |w| {
                                w.structure("Values", |w| {
                                    for (k, v) in &c.query_pairs {
                                        w.structure("member", |w| {
                                            w.opt_text("Key", k.as_deref()).text("Value", v);
                                        });
                                    }
                                });
                            });
                        }
                        _ => {}
                    }
                });
            }
        });
        render_actions(w, "Actions", &r.actions);
        w.bool("IsDefault", is_default);
    });
}

fn default_rule(ctx: &Ctx, l: &ListenerRecord) -> RuleRecord {
    RuleRecord {
        rule_arn: default_rule_arn(ctx, l),
        listener_arn: l.listener_arn.clone(),
        id: l.default_rule_id.clone(),
        priority: 0,
        conditions: Vec::new(),
        actions: l.default_actions.clone(),
        tags: l.default_rule_tags.clone(),
    }
}

fn parse_conditions(p: &QueryParams) -> Result<Vec<ConditionInput>, ApiError> {
    structs(p, "Conditions")
        .into_iter()
        .map(|c| {
            if let Some(f) = c.get("Field") {
                if f.len() > 64 {
                    return Err(validation("condition Field must have at most 64 characters"));
                }
            }
            let configs: Vec<String> = [
                "HostHeaderConfig",
                "PathPatternConfig",
                "HttpHeaderConfig",
                "HttpRequestMethodConfig",
                "QueryStringConfig",
                "SourceIpConfig",
            ]
            .into_iter()
            .filter(|n| super::has(&c, n))
            .map(String::from)
            .collect();
            if super::has(&c, "RegexValues") || c.keys().any(|k| k.contains(".RegexValues")) {
                return Err(validation("RegexValues conditions are not supported by Skiff"));
            }
            let values = (c.get("Values").is_some() || super::has(&c, "Values")).then(|| strings(&c, "Values"));
            let config = configs.first().map(|n| super::nested(&c, n));
            let config_values = config.as_ref().map(|q| strings(q, "Values"));
            let header_name = config.as_ref().and_then(|q| q.get("HttpHeaderName")).map(String::from);
            let query_pairs = (configs.first().map(String::as_str) == Some("QueryStringConfig")).then(|| {
                config
                    .as_ref()
                    .map(|q| {
                        structs(q, "Values")
                            .into_iter()
                            .map(|kv| (kv.get("Key").map(String::from), kv.get("Value").map(String::from)))
                            .collect()
                    })
                    .unwrap_or_default()
            });
            Ok(ConditionInput {
                field: c.get("Field").map(String::from),
                values,
                config_values,
                header_name,
                query_pairs,
                configs,
            })
        })
        .collect()
}

fn refuse_transforms(p: &QueryParams) -> Result<(), ApiError> {
    if super::has(p, "Transforms") || super::boolean(p, "ResetTransforms")? == Some(true) {
        return Err(validation("rule Transforms are not supported by Skiff"));
    }
    Ok(())
}

pub async fn create_rule(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let listener_arn = required(&p, "ListenerArn")?.to_string();
    let priority = int(&p, "Priority", 1, 50000)?
        .ok_or_else(|| required(&p, "Priority").err().unwrap_or_else(|| validation("Priority is required")))?
        as i32;
    refuse_transforms(&p)?;
    let tags = parse_tags(&p, "Tags")?;
    let condition_inputs = parse_conditions(&p)?;
    let action_inputs = parse_actions(&p, "Actions")?;
    for _ in 0..16 {
        let (l, rev) = listener(ctx, &listener_arn).await?;
        let (lb, _) = load_balancer(ctx, &l.load_balancer_arn).await?;
        if lb.lb_type == "network" {
            return Err(validation("network load balancer listeners have no rules other than the default"));
        }
        let conditions = elbv2::validate_conditions(&condition_inputs).map_err(invalid)?;
        let actions = elbv2::validate_actions(&lb.lb_type, &action_inputs).map_err(invalid)?;
        let rules = records::load_all_rev::<RuleRecord>(ctx.store(), &keys::rules_of(&l.id)).await?;
        if rules.iter().any(|(_, r, _)| r.priority == priority) {
            return Err(ApiError::client("PriorityInUse", format!("Priority '{priority}' is currently in use")));
        }
        let groups = check_forwarded_groups(ctx, &lb.load_balancer_arn, &l.protocol, &actions).await?;
        let id = super::random_id();
        let rest = l.listener_arn.split_once(":listener/").map(|(_, r)| r).unwrap_or_default();
        let record = RuleRecord {
            rule_arn: super::arn(ctx, &format!("listener-rule/{rest}/{id}")),
            listener_arn: l.listener_arn.clone(),
            id: id.clone(),
            priority,
            conditions,
            actions,
            tags: tags.clone(),
        };
        let lkey = keys::listener(&lb.id, &l.id);
        let key = keys::rule(&l.id, &id);
        let txn = Txn::new().when(&lkey, rev).put(&lkey, encode(&l)?).when(&key, 0).put(&key, encode(&record)?);
        match ctx.store().txn(pin_groups(txn, &groups)?).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("Rules", |w| render_rule(w, &record, false));
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {listener_arn}; retry the call")))
}

/// A rule by ARN: `Ok((listener, Some(rule, rev)))`, or `(listener, None)` for the listener's default rule.
async fn find_rule(ctx: &Ctx, rule_arn: &str) -> Result<((ListenerRecord, i64), Option<(RuleRecord, i64)>), ApiError> {
    let missing = || not_found("RuleNotFound", "rules", rule_arn);
    let Some(ElbArn::Rule { lb_id, listener_id, id, .. }) = super::parse(ctx, rule_arn) else {
        return Err(if rule_arn.starts_with("arn:") {
            missing()
        } else {
            validation(format!("'{rule_arn}' is not a valid rule ARN"))
        });
    };
    let (l, lrev) = records::load::<ListenerRecord>(ctx.store(), &keys::listener(&lb_id, &listener_id))
        .await?
        .ok_or_else(missing)?;
    if l.default_rule_id == id {
        if default_rule_arn(ctx, &l) != rule_arn {
            return Err(missing());
        }
        return Ok(((l, lrev), None));
    }
    let rule = records::load::<RuleRecord>(ctx.store(), &keys::rule(&listener_id, &id))
        .await?
        .filter(|(r, _)| r.rule_arn == rule_arn)
        .ok_or_else(missing)?;
    Ok(((l, lrev), Some(rule)))
}

pub async fn modify_rule(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "RuleArn")?.to_string();
    refuse_transforms(&p)?;
    let condition_inputs = if super::has(&p, "Conditions") { Some(parse_conditions(&p)?) } else { None };
    let action_inputs = if super::has(&p, "Actions") { Some(parse_actions(&p, "Actions")?) } else { None };
    for _ in 0..16 {
        let ((l, lrev), rule) = find_rule(ctx, &arn).await?;
        let (lb, _) = load_balancer(ctx, &l.load_balancer_arn).await?;
        let Some((mut rule, rev)) = rule else {
            return Err(ApiError::client(
                "OperationNotPermitted",
                "the default rule cannot be modified: change the listener's default actions with ModifyListener",
            ));
        };
        if let Some(c) = &condition_inputs {
            rule.conditions = elbv2::validate_conditions(c).map_err(invalid)?;
        }
        if let Some(a) = &action_inputs {
            rule.actions = elbv2::validate_actions(&lb.lb_type, a).map_err(invalid)?;
        }
        let groups = check_forwarded_groups(ctx, &lb.load_balancer_arn, &l.protocol, &rule.actions).await?;
        let lkey = keys::listener(&lb.id, &l.id);
        let key = keys::rule(&l.id, &rule.id);
        let txn = Txn::new().when(&lkey, lrev).put(&lkey, encode(&l)?).when(&key, rev).put(&key, encode(&rule)?);
        match ctx.store().txn(pin_groups(txn, &groups)?).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("Rules", |w| render_rule(w, &rule, false));
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn delete_rule(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "RuleArn")?.to_string();
    for _ in 0..16 {
        let ((l, lrev), rule) = find_rule(ctx, &arn).await?;
        let Some((rule, rev)) = rule else {
            return Err(ApiError::client("OperationNotPermitted", "the default rule of a listener cannot be deleted"));
        };
        let Some(ElbArn::Listener { lb_id, .. }) = super::parse(ctx, &l.listener_arn) else {
            return Err(not_found("RuleNotFound", "rules", &arn));
        };
        let lkey = keys::listener(&lb_id, &l.id);
        let key = keys::rule(&l.id, &rule.id);
        let txn = Txn::new().when(&lkey, lrev).put(&lkey, encode(&l)?).when(&key, rev).delete(&key);
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn describe_rules(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = strings(&p, "RuleArns");
    let listener_arn = p.get("ListenerArn");
    let mut selected: Vec<(RuleRecord, bool)> = Vec::new();
    match (listener_arn, arns.is_empty()) {
        (Some(_), false) => return Err(validation("specify either ListenerArn or RuleArns, not both")),
        (None, true) => return Err(validation("specify either ListenerArn or RuleArns")),
        (Some(la), true) => {
            let (l, _) = listener(ctx, la).await?;
            let mut rules: Vec<RuleRecord> = records::load_all::<RuleRecord>(ctx.store(), &keys::rules_of(&l.id))
                .await?
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            rules.sort_by_key(|r| r.priority);
            selected.extend(rules.into_iter().map(|r| (r, false)));
            selected.push((default_rule(ctx, &l), true));
        }
        (None, false) => {
            for a in &arns {
                let ((l, _), rule) = find_rule(ctx, a).await?;
                let entry = match rule {
                    Some((r, _)) => (r, false),
                    None => (default_rule(ctx, &l), true),
                };
                if !selected.iter().any(|(s, _)| s.rule_arn == entry.0.rule_arn) {
                    selected.push(entry);
                }
            }
        }
    }
    let keyed: Vec<(String, (RuleRecord, bool))> =
        selected.into_iter().enumerate().map(|(i, r)| (format!("{i:06}"), r)).collect();
    let (items, marker) = page(&p, keyed, |(k, _)| k.clone())?;
    let mut w = XmlWriter::new();
    w.structure("Rules", |w| {
        for (_, (r, is_default)) in &items {
            render_rule(w, r, *is_default);
        }
    });
    w.opt_text("NextMarker", marker.as_deref());
    Ok(w.finish())
}

pub async fn set_rule_priorities(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    if p.get("RulePriorities").is_none() && !super::has(&p, "RulePriorities") {
        required(&p, "RulePriorities")?;
    }
    let mut wanted: Vec<(String, i32)> = Vec::new();
    for pair in structs(&p, "RulePriorities") {
        let arn = required(&pair, "RuleArn")?.to_string();
        let priority =
            int(&pair, "Priority", 1, 50000)?.ok_or_else(|| validation("a rule priority pair needs a Priority"))?;
        if wanted.iter().any(|(a, _)| *a == arn) {
            return Err(validation(format!("rule '{arn}' is named twice")));
        }
        if wanted.iter().any(|(_, q)| i64::from(*q) == priority) {
            return Err(ApiError::client("PriorityInUse", format!("Priority '{priority}' is given to two rules")));
        }
        wanted.push((arn, priority as i32));
    }
    for _ in 0..16 {
        let mut txn = Txn::new();
        let mut changed: Vec<RuleRecord> = Vec::new();
        let mut listeners_seen: Vec<String> = Vec::new();
        for (arn, priority) in &wanted {
            let ((l, lrev), rule) = find_rule(ctx, arn).await?;
            let Some((mut rule, rev)) = rule else {
                return Err(ApiError::client("OperationNotPermitted", "the default rule's priority cannot be changed"));
            };
            let Some(ElbArn::Listener { lb_id, .. }) = super::parse(ctx, &l.listener_arn) else {
                return Err(not_found("RuleNotFound", "rules", arn));
            };
            if !listeners_seen.contains(&l.id) {
                let lkey = keys::listener(&lb_id, &l.id);
                txn = txn.when(&lkey, lrev).put(&lkey, encode(&l)?);
                let others = records::load_all_rev::<RuleRecord>(ctx.store(), &keys::rules_of(&l.id)).await?;
                for (_, o, _) in &others {
                    let moving = wanted.iter().any(|(a, _)| *a == o.rule_arn);
                    if !moving
                        && wanted
                            .iter()
                            .any(|(a, q)| *q == o.priority && others.iter().any(|(_, r, _)| r.rule_arn == *a))
                    {
                        return Err(ApiError::client(
                            "PriorityInUse",
                            format!("Priority '{}' is currently in use", o.priority),
                        ));
                    }
                }
                listeners_seen.push(l.id.clone());
            }
            rule.priority = *priority;
            let key = keys::rule(&l.id, &rule.id);
            txn = txn.when(&key, rev).put(&key, encode(&rule)?);
            changed.push(rule);
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("Rules", |w| {
                    for r in &changed {
                        render_rule(w, r, false);
                    }
                });
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server("too many concurrent changes of these rules; retry the call"))
}
