//! Elastic Load Balancing v2, the control plane: load balancers (`load_balancers.rs`), target groups and
//! their targets (`target_groups.rs`), listeners and rules (`listeners.rs`), tags (`tags.rs`), in the
//! query protocol (`<ActionResult>` bodies, `<member>` lists, `<ErrorResponse>` errors with ELBv2's codes).
//! The records and AWS's validation rules are `skiff_model::elbv2`'s; a data plane (`skiff-lb`) reads the
//! same records. Every write is one transaction comparing the records it was decided from.
//!
//! Handlers return the result members as XML (`XmlWriter`, the model's member names); the envelope is
//! `skiff_proto::query::success`'s.

pub mod listeners;
pub mod load_balancers;
pub mod tags;
pub mod target_groups;

use crate::context::Ctx;

/// The routed handlers: each module's, with error messages made safe to carry in XML (a message may quote
/// a parameter, and parameters can hold control characters XML 1.0 cannot), waking the load balancer
/// controller after each call that succeeded.
macro_rules! handlers {
    ($($name:ident => $path:path,)*) => {
        $(pub async fn $name(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
            let out = $path(ctx, p).await.map_err(printable)?;
            // The data plane follows the records at once (describe calls wake it for nothing, cheaply).
            ctx.state.lb_wake.notify_one();
            Ok(out)
        })*
    };
}

handlers! {
    create_load_balancer => load_balancers::create_load_balancer,
    describe_load_balancers => load_balancers::describe_load_balancers,
    delete_load_balancer => load_balancers::delete_load_balancer,
    describe_load_balancer_attributes => load_balancers::describe_load_balancer_attributes,
    modify_load_balancer_attributes => load_balancers::modify_load_balancer_attributes,
    create_target_group => target_groups::create_target_group,
    describe_target_groups => target_groups::describe_target_groups,
    modify_target_group => target_groups::modify_target_group,
    delete_target_group => target_groups::delete_target_group,
    describe_target_group_attributes => target_groups::describe_target_group_attributes,
    modify_target_group_attributes => target_groups::modify_target_group_attributes,
    register_targets => target_groups::register_targets,
    describe_target_health => target_groups::describe_target_health,
    deregister_targets => target_groups::deregister_targets,
    create_listener => listeners::create_listener,
    modify_listener => listeners::modify_listener,
    delete_listener => listeners::delete_listener,
    describe_listeners => listeners::describe_listeners,
    create_rule => listeners::create_rule,
    modify_rule => listeners::modify_rule,
    delete_rule => listeners::delete_rule,
    describe_rules => listeners::describe_rules,
    set_rule_priorities => listeners::set_rule_priorities,
    add_tags => tags::add_tags,
    remove_tags => tags::remove_tags,
    describe_tags => tags::describe_tags,
}

fn printable(mut e: ApiError) -> ApiError {
    if e.message.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        e.message =
            e.message.chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{FFFD}' } else { c }).collect();
    }
    e
}
use crate::records;
use skiff_model::elbv2::{
    self, keys, Action, ElbArn, Invalid, ListenerRecord, LoadBalancerRecord, RuleRecord, Tag, TargetGroupRecord,
};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::ApiError;

pub fn invalid(e: Invalid) -> ApiError {
    ApiError::client(e.code, e.message)
}

pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationError", message)
}

pub fn not_found(code: &'static str, noun: &str, what: &str) -> ApiError {
    ApiError::client(code, format!("One or more {noun} not found: '{what}'"))
}

// ---------------------------------------------------------------------------------------------------------
// Parameters

pub fn required<'a>(p: &'a QueryParams, name: &str) -> Result<&'a str, ApiError> {
    p.get(name).ok_or_else(|| {
        validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(name)
        ))
    })
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

pub fn int(p: &QueryParams, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    let Some(text) = p.get(name) else { return Ok(None) };
    let v: i64 = text.parse().map_err(|_| validation(format!("{name} must be an integer, not '{text}'")))?;
    if !(min..=max).contains(&v) {
        return Err(validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value \
             between {min} and {max}",
            lower_first(name)
        )));
    }
    Ok(Some(v))
}

pub fn boolean(p: &QueryParams, name: &str) -> Result<Option<bool>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(validation(format!("{name} must be true or false, not '{other}'"))),
    }
}

pub fn one_of<'a>(
    p: &'a QueryParams,
    name: &str,
    allowed: &[&str],
    code: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match p.get(name) {
        Some(v) if !allowed.contains(&v) => {
            Err(ApiError::client(code, format!("{name} '{v}' is not valid: it must be one of {}", allowed.join(", "))))
        }
        v => Ok(v),
    }
}

/// A list of strings (`NAME.member.N`).
pub fn strings(p: &QueryParams, name: &str) -> Vec<String> {
    p.list(name).into_iter().map(String::from).collect()
}

/// A list of structures (`NAME.member.N.FIELD…`), each as its own parameters.
pub fn structs(p: &QueryParams, name: &str) -> Vec<QueryParams> {
    p.ec2_structs(&format!("{name}.member")).into_iter().map(|(_, q)| q).collect()
}

/// Whether a structure member is present (any parameter under `NAME.`).
pub fn has(p: &QueryParams, name: &str) -> bool {
    let prefix = format!("{name}.");
    p.keys().any(|k| k.starts_with(&prefix) || k == name)
}

/// The parameters of a nested structure `NAME.…`.
pub fn nested(p: &QueryParams, name: &str) -> QueryParams {
    let prefix = format!("{name}.");
    let text: String = p
        .keys()
        .filter_map(|k| {
            let rest = k.strip_prefix(&prefix)?;
            let v = p.get(k)?;
            Some(form_urlencoded::Serializer::new(String::new()).append_pair(rest, v).finish())
        })
        .collect::<Vec<_>>()
        .join("&");
    QueryParams::parse(text.as_bytes()).unwrap_or_default()
}

/// A list member given empty (`NAME=`, how SDKs send an empty list) when the model wants at least one.
pub fn non_empty_list(p: &QueryParams, name: &str) -> Result<(), ApiError> {
    if p.get(name).is_some() && !has_members(p, name) {
        return Err(validation(format!(
            "1 validation error detected: Value '[]' at '{}' failed to satisfy constraint: Member must have length \
             greater than or equal to 1",
            lower_first(name)
        )));
    }
    Ok(())
}

fn has_members(p: &QueryParams, name: &str) -> bool {
    let prefix = format!("{name}.member.");
    p.keys().any(|k| k.starts_with(&prefix))
}

/// `Tags.member.N.{Key,Value}`, validated (at least one when given, keys unique, ≤ 50).
pub fn parse_tags(p: &QueryParams, name: &str) -> Result<Vec<Tag>, ApiError> {
    non_empty_list(p, name)?;
    let tags: Vec<Tag> = structs(p, name)
        .into_iter()
        .map(|t| {
            let key = required(&t, "Key")?.to_string();
            Ok(Tag { key, value: t.get("Value").map(String::from) })
        })
        .collect::<Result<_, ApiError>>()?;
    elbv2::validate_tags(&tags).map_err(invalid)?;
    if tags.len() > elbv2::MAX_TAGS {
        return Err(ApiError::client(
            "TooManyTags",
            format!("a resource can have at most {} tags, not {}", elbv2::MAX_TAGS, tags.len()),
        ));
    }
    Ok(tags)
}

/// `Attributes.member.N.{Key,Value}`.
pub fn parse_attributes(p: &QueryParams, max: usize) -> Result<Vec<(String, String)>, ApiError> {
    let attrs = structs(p, "Attributes");
    if attrs.len() > max {
        return Err(validation(format!("at most {max} attributes can be modified at once, not {}", attrs.len())));
    }
    attrs
        .into_iter()
        .map(|a| {
            let key = a.get("Key").ok_or_else(|| validation("an attribute needs a Key"))?;
            Ok((key.to_string(), a.get("Value").unwrap_or_default().to_string()))
        })
        .collect()
}

/// Marker/PageSize paging over `items` in key order: the page and the next marker.
pub fn page<T>(
    p: &QueryParams,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = int(p, "PageSize", 1, 400)?.unwrap_or(400) as usize;
    let after = match p.get("Marker") {
        Some(m) => Some(records::parse_next_token(m).map_err(|_| validation(format!("marker '{m}' is not valid")))?),
        None => None,
    };
    let mut out: Vec<T> = items.into_iter().filter(|i| after.as_ref().is_none_or(|a| key(i) > *a)).collect();
    let more = out.len() > size;
    out.truncate(size);
    let marker = if more { out.last().map(|l| records::next_token(&key(l))) } else { None };
    Ok((out, marker))
}

// ---------------------------------------------------------------------------------------------------------
// ARNs, ids, records

pub fn random_id() -> String {
    let mut bytes = elbv2::IdBytes::default();
    if getrandom::fill(&mut bytes).is_err() {
        bytes.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
    }
    elbv2::resource_id(bytes)
}

pub fn arn(ctx: &Ctx, resource: &str) -> String {
    let s = ctx.scope();
    format!("arn:aws:elasticloadbalancing:{}:{}:{resource}", s.region, s.account)
}

pub fn parse(ctx: &Ctx, arn: &str) -> Option<ElbArn> {
    elbv2::parse_arn(arn, &ctx.scope().region, &ctx.scope().account)
}

pub async fn load_balancer(ctx: &Ctx, lb_arn: &str) -> Result<(LoadBalancerRecord, i64), ApiError> {
    let missing = || not_found("LoadBalancerNotFound", "load balancers", lb_arn);
    let Some(ElbArn::LoadBalancer { name, .. }) = parse(ctx, lb_arn) else {
        return Err(if lb_arn.starts_with("arn:") {
            missing()
        } else {
            validation(format!("'{lb_arn}' is not a valid load balancer ARN"))
        });
    };
    records::load::<LoadBalancerRecord>(ctx.store(), &keys::load_balancer(&name))
        .await?
        .filter(|(r, _)| r.load_balancer_arn == lb_arn)
        .ok_or_else(missing)
}

pub async fn target_group(ctx: &Ctx, tg_arn: &str) -> Result<(TargetGroupRecord, i64), ApiError> {
    let missing = || not_found("TargetGroupNotFound", "target groups", tg_arn);
    let Some(ElbArn::TargetGroup { name, .. }) = parse(ctx, tg_arn) else {
        return Err(if tg_arn.starts_with("arn:") {
            missing()
        } else {
            validation(format!("'{tg_arn}' is not a valid target group ARN"))
        });
    };
    records::load::<TargetGroupRecord>(ctx.store(), &keys::target_group(&name))
        .await?
        .filter(|(r, _)| r.target_group_arn == tg_arn)
        .ok_or_else(missing)
}

pub async fn listener(ctx: &Ctx, listener_arn: &str) -> Result<(ListenerRecord, i64), ApiError> {
    let missing = || not_found("ListenerNotFound", "listeners", listener_arn);
    let Some(ElbArn::Listener { lb_id, id, .. }) = parse(ctx, listener_arn) else {
        return Err(if listener_arn.starts_with("arn:") {
            missing()
        } else {
            validation(format!("'{listener_arn}' is not a valid listener ARN"))
        });
    };
    records::load::<ListenerRecord>(ctx.store(), &keys::listener(&lb_id, &id))
        .await?
        .filter(|(r, _)| r.listener_arn == listener_arn)
        .ok_or_else(missing)
}

/// Every listener and rule of the region, for the questions that span them (which load balancers a
/// target group serves).
pub async fn all_listeners_and_rules(ctx: &Ctx) -> Result<(Vec<ListenerRecord>, Vec<RuleRecord>), ApiError> {
    let listeners = records::load_all::<ListenerRecord>(ctx.store(), keys::LISTENERS).await?;
    let rules = records::load_all::<RuleRecord>(ctx.store(), keys::RULES).await?;
    Ok((listeners.into_iter().map(|(_, l)| l).collect(), rules.into_iter().map(|(_, r)| r).collect()))
}

/// The load balancers whose listeners or rules forward to `tg_arn`.
pub fn load_balancers_of(tg_arn: &str, listeners: &[ListenerRecord], rules: &[RuleRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |lb: &str| {
        if !out.iter().any(|o| o == lb) {
            out.push(lb.to_string());
        }
    };
    for l in listeners {
        if l.default_actions.iter().any(|a| a.target_group_arns().contains(&tg_arn)) {
            add(&l.load_balancer_arn);
        }
    }
    for r in rules {
        if r.actions.iter().any(|a| a.target_group_arns().contains(&tg_arn)) {
            if let Some(l) = listeners.iter().find(|l| l.listener_arn == r.listener_arn) {
                add(&l.load_balancer_arn);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Actions (listeners' and rules')

pub fn parse_actions(p: &QueryParams, name: &str) -> Result<Vec<elbv2::ActionInput>, ApiError> {
    structs(p, name)
        .into_iter()
        .map(|a| {
            let action_type = required(&a, "Type")?.to_string();
            let order = int(&a, "Order", 1, 50000)?.map(|o| o as i32);
            let forward = if has(&a, "ForwardConfig") {
                let f = nested(&a, "ForwardConfig");
                let groups = structs(&f, "TargetGroups")
                    .into_iter()
                    .map(|t| {
                        Ok((
                            t.get("TargetGroupArn").map(String::from),
                            int(&t, "Weight", i64::MIN, i64::MAX)?.map(|w| w.clamp(-1, 1000) as i32),
                        ))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()?;
                let s = nested(&f, "TargetGroupStickinessConfig");
                Some(elbv2::ForwardInput {
                    target_groups: groups,
                    stickiness_enabled: boolean(&s, "Enabled")?,
                    stickiness_duration_seconds: int(&s, "DurationSeconds", i64::MIN, i64::MAX)?
                        .map(|d| d.clamp(-1, 1_000_000) as i32),
                })
            } else {
                None
            };
            let redirect = has(&a, "RedirectConfig").then(|| {
                let r = nested(&a, "RedirectConfig");
                let g = |n: &str| r.get(n).map(String::from);
                elbv2::RedirectInput {
                    protocol: g("Protocol"),
                    port: g("Port"),
                    host: g("Host"),
                    path: g("Path"),
                    query: g("Query"),
                    status_code: g("StatusCode"),
                }
            });
            let fixed_response = has(&a, "FixedResponseConfig").then(|| {
                let r = nested(&a, "FixedResponseConfig");
                let g = |n: &str| r.get(n).map(String::from);
                elbv2::FixedResponseInput {
                    status_code: g("StatusCode"),
                    content_type: g("ContentType"),
                    message_body: g("MessageBody"),
                }
            });
            let other_configs = ["AuthenticateOidcConfig", "AuthenticateCognitoConfig", "JwtValidationConfig"]
                .into_iter()
                .filter(|n| has(&a, n))
                .map(String::from)
                .collect();
            Ok(elbv2::ActionInput {
                action_type,
                order,
                target_group_arn: a.get("TargetGroupArn").map(String::from),
                forward,
                redirect,
                fixed_response,
                other_configs,
            })
        })
        .collect()
}

/// Checks the target groups `actions` forward to for a listener of `protocol` on load balancer `lb_arn`:
/// they exist, fit the protocol and serve no other load balancer. Returns them with their revisions.
pub async fn check_forwarded_groups(
    ctx: &Ctx,
    lb_arn: &str,
    protocol: &str,
    actions: &[Action],
) -> Result<Vec<(TargetGroupRecord, i64)>, ApiError> {
    let mut out: Vec<(TargetGroupRecord, i64)> = Vec::new();
    let arns: Vec<&str> = actions.iter().flat_map(|a| a.target_group_arns()).collect();
    if arns.is_empty() {
        return Ok(out);
    }
    let (listeners, rules) = all_listeners_and_rules(ctx).await?;
    for arn in arns {
        let (tg, rev) = target_group(ctx, arn).await.map_err(|e| {
            if e.code == "ValidationError" {
                not_found("TargetGroupNotFound", "target groups", arn)
            } else {
                e
            }
        })?;
        if !elbv2::protocols_fit(protocol, &tg.protocol) {
            return Err(ApiError::client(
                "IncompatibleProtocols",
                format!(
                    "target group '{arn}' uses the {} protocol, which a {protocol} listener cannot forward to",
                    tg.protocol
                ),
            ));
        }
        if load_balancers_of(arn, &listeners, &rules).iter().any(|lb| lb != lb_arn) {
            return Err(ApiError::client(
                "TargetGroupAssociationLimit",
                format!("The following target groups cannot be associated with more than one load balancer: {arn}"),
            ));
        }
        out.push((tg, rev));
    }
    Ok(out)
}

pub fn render_actions(w: &mut XmlWriter, name: &str, actions: &[Action]) {
    w.structure(name, |w| {
        for a in actions {
            w.structure("member", |w| {
                w.text("Type", a.type_name());
                match a {
                    Action::Forward { config, .. } => {
                        if let [one] = config.target_groups.as_slice() {
                            w.text("TargetGroupArn", &one.target_group_arn);
                        }
                    }
                    Action::Redirect { config, .. } => {
                        w.structure("RedirectConfig", |w| {
                            w.text("Protocol", &config.protocol)
                                .text("Port", &config.port)
                                .text("Host", &config.host)
                                .text("Path", &config.path)
                                .text("Query", &config.query)
                                .text("StatusCode", &config.status_code);
                        });
                    }
                    Action::FixedResponse { config, .. } => {
                        w.structure("FixedResponseConfig", |w| {
                            w.opt_text("MessageBody", config.message_body.as_deref())
                                .text("StatusCode", &config.status_code)
                                .opt_text("ContentType", config.content_type.as_deref());
                        });
                    }
                }
                w.int("Order", a.order().into());
                if let Action::Forward { config, .. } = a {
                    w.structure("ForwardConfig", |w| {
                        w.structure("TargetGroups", |w| {
                            for t in &config.target_groups {
                                w.structure("member", |w| {
                                    w.text("TargetGroupArn", &t.target_group_arn).int("Weight", t.weight.into());
                                });
                            }
                        });
                        w.structure("TargetGroupStickinessConfig", |w| {
                            w.bool("Enabled", config.stickiness_enabled);
                            if let Some(d) = config.stickiness_duration_seconds {
                                w.int("DurationSeconds", d.into());
                            }
                        });
                    });
                }
            });
        }
    });
}

pub fn render_tags(w: &mut XmlWriter, tags: &[Tag]) {
    w.structure("Tags", |w| {
        for t in tags {
            w.structure("member", |w| {
                w.text("Key", &t.key).opt_text("Value", t.value.as_deref());
            });
        }
    });
}

pub fn render_attributes<'a>(w: &mut XmlWriter, attrs: impl IntoIterator<Item = (&'a String, &'a String)>) {
    w.structure("Attributes", |w| {
        for (k, v) in attrs {
            w.structure("member", |w| {
                w.text("Key", k).text("Value", v);
            });
        }
    });
}

pub fn string_list<'a>(w: &mut XmlWriter, name: &str, items: impl IntoIterator<Item = &'a str>) {
    w.structure(name, |w| {
        for i in items {
            w.text("member", i);
        }
    });
}
