//! AddTags, RemoveTags, DescribeTags on load balancers, target groups, listeners and rules. Tags live in
//! each resource's record (a default rule's in its listener's).

use super::{invalid, not_found, parse_tags, required, strings, validation};
use crate::context::Ctx;
use crate::records;
use skiff_model::elbv2::{self, keys, ElbArn, ListenerRecord, LoadBalancerRecord, RuleRecord, Tag, TargetGroupRecord};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::ApiError;

/// Where a resource's tags are kept.
enum Holder {
    LoadBalancer(String),
    TargetGroup(String),
    Listener(String),
    Rule(String),
    DefaultRule(String),
}

async fn holder(ctx: &Ctx, arn: &str) -> Result<(Holder, Vec<Tag>), ApiError> {
    let Some(parsed) = super::parse(ctx, arn) else {
        return Err(validation(format!("'{arn}' is not a valid load balancer, target group, listener or rule ARN")));
    };
    match parsed {
        ElbArn::LoadBalancer { .. } => {
            let (lb, _) = super::load_balancer(ctx, arn).await?;
            Ok((Holder::LoadBalancer(keys::load_balancer(&lb.load_balancer_name)), lb.tags))
        }
        ElbArn::TargetGroup { .. } => {
            let (tg, _) = super::target_group(ctx, arn).await?;
            Ok((Holder::TargetGroup(keys::target_group(&tg.target_group_name)), tg.tags))
        }
        ElbArn::Listener { lb_id, id, .. } => {
            let (l, _) = super::listener(ctx, arn).await?;
            Ok((Holder::Listener(keys::listener(&lb_id, &id)), l.tags))
        }
        ElbArn::Rule { lb_id, listener_id, id, .. } => {
            let missing = || not_found("RuleNotFound", "rules", arn);
            let lkey = keys::listener(&lb_id, &listener_id);
            let (l, _) = records::load::<ListenerRecord>(ctx.store(), &lkey).await?.ok_or_else(missing)?;
            if l.default_rule_id == id {
                return Ok((Holder::DefaultRule(lkey), l.default_rule_tags));
            }
            let key = keys::rule(&listener_id, &id);
            let (r, _) = records::load::<RuleRecord>(ctx.store(), &key)
                .await?
                .filter(|(r, _)| r.rule_arn == arn)
                .ok_or_else(missing)?;
            Ok((Holder::Rule(key), r.tags))
        }
    }
}

async fn change(
    ctx: &Ctx,
    arn: &str,
    holder: Holder,
    f: impl Fn(&mut Vec<Tag>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let store = ctx.store();
    match holder {
        Holder::LoadBalancer(key) => {
            let missing = || not_found("LoadBalancerNotFound", "load balancers", arn);
            records::update::<LoadBalancerRecord, _>(store, &key, missing, |r| f(&mut r.tags)).await.map(|_| ())
        }
        Holder::TargetGroup(key) => {
            let missing = || not_found("TargetGroupNotFound", "target groups", arn);
            records::update::<TargetGroupRecord, _>(store, &key, missing, |r| f(&mut r.tags)).await.map(|_| ())
        }
        Holder::Listener(key) => {
            let missing = || not_found("ListenerNotFound", "listeners", arn);
            records::update::<ListenerRecord, _>(store, &key, missing, |r| f(&mut r.tags)).await.map(|_| ())
        }
        Holder::DefaultRule(key) => {
            let missing = || not_found("RuleNotFound", "rules", arn);
            records::update::<ListenerRecord, _>(store, &key, missing, |r| f(&mut r.default_rule_tags))
                .await
                .map(|_| ())
        }
        Holder::Rule(key) => {
            let missing = || not_found("RuleNotFound", "rules", arn);
            records::update::<RuleRecord, _>(store, &key, missing, |r| f(&mut r.tags)).await.map(|_| ())
        }
    }
}

fn resource_arns(p: &QueryParams) -> Result<Vec<String>, ApiError> {
    if p.get("ResourceArns").is_none() && !super::has(p, "ResourceArns") {
        required(p, "ResourceArns")?;
    }
    let arns = strings(p, "ResourceArns");
    if arns.is_empty() {
        return Err(validation("at least one resource ARN must be specified"));
    }
    if arns.len() > 20 {
        return Err(validation(format!("at most 20 resource ARNs can be specified, not {}", arns.len())));
    }
    Ok(arns)
}

pub async fn add_tags(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = resource_arns(&p)?;
    if p.get("Tags").is_none() && !super::has(&p, "Tags") {
        required(&p, "Tags")?;
    }
    let tags = parse_tags(&p, "Tags")?;
    let mut holders = Vec::new();
    for arn in &arns {
        holders.push((arn, holder(ctx, arn).await?.0));
    }
    for (arn, h) in holders {
        change(ctx, arn, h, |existing| elbv2::merge_tags(existing, &tags).map_err(invalid)).await?;
    }
    Ok(String::new())
}

pub async fn remove_tags(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = resource_arns(&p)?;
    if p.get("TagKeys").is_none() && !super::has(&p, "TagKeys") {
        required(&p, "TagKeys")?;
    }
    let keys_to_remove = strings(&p, "TagKeys");
    if let Some(k) = keys_to_remove.iter().find(|k| k.is_empty() || k.chars().count() > 128) {
        return Err(validation(format!("tag key '{k}' must have 1 to 128 characters")));
    }
    let mut holders = Vec::new();
    for arn in &arns {
        holders.push((arn, holder(ctx, arn).await?.0));
    }
    for (arn, h) in holders {
        change(ctx, arn, h, |existing| {
            existing.retain(|t| !keys_to_remove.contains(&t.key));
            Ok(())
        })
        .await?;
    }
    Ok(String::new())
}

pub async fn describe_tags(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = resource_arns(&p)?;
    let mut found = Vec::new();
    for arn in &arns {
        found.push((arn, holder(ctx, arn).await?.1));
    }
    let mut w = XmlWriter::new();
    w.structure("TagDescriptions", |w| {
        for (arn, tags) in &found {
            w.structure("member", |w| {
                w.text("ResourceArn", arn);
                super::render_tags(w, tags);
            });
        }
    });
    Ok(w.finish())
}
