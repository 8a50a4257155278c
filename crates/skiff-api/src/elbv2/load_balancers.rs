//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer and the load balancer attributes.

use super::{
    invalid, load_balancer, not_found, one_of, page, parse_attributes, parse_tags, required, string_list, strings,
    structs, validation,
};
use crate::context::{now_millis, Ctx};
use crate::records::{self, encode, store_error};
use skiff_model::elbv2::{self, keys, ListenerRecord, LoadBalancerRecord, RuleRecord, ZonePlacement};
use skiff_model::vpc::{self, SecurityGroup, Subnet};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::timestamp::to_iso8601;
use skiff_proto::ApiError;
use skiff_store::{Txn, TxnOutcome};

/// The hosted zone id AWS gives us-east-1's application load balancers (Skiff's DNS names are addresses).
const CANONICAL_HOSTED_ZONE_ID: &str = "Z35SXDOTRQ7X7K";

pub fn render(w: &mut XmlWriter, lb: &LoadBalancerRecord) {
    w.structure("member", |w| {
        w.text("LoadBalancerArn", &lb.load_balancer_arn)
            .text("DNSName", &lb.address)
            .text("CanonicalHostedZoneId", CANONICAL_HOSTED_ZONE_ID)
            .text("CreatedTime", &to_iso8601(lb.created_time_ms))
            .text("LoadBalancerName", &lb.load_balancer_name)
            .text("Scheme", &lb.scheme)
            .text("VpcId", &lb.vpc_id)
            .structure("State", |w| {
                w.text("Code", "active");
            })
            .text("Type", &lb.lb_type)
            .structure("AvailabilityZones", |w| {
                for z in &lb.availability_zones {
                    w.structure("member", |w| {
                        w.text("ZoneName", &z.zone_name).text("SubnetId", &z.subnet_id).structure(
                            "LoadBalancerAddresses",
                            |w| {
                                w.structure("member", |w| {
                                    w.text("IpAddress", &lb.address);
                                });
                            },
                        );
                    });
                }
            });
        if lb.lb_type == "application" {
            string_list(w, "SecurityGroups", lb.security_groups.iter().map(String::as_str));
        }
        w.text("IpAddressType", &lb.ip_address_type);
    });
}

pub async fn create_load_balancer(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let name = required(&p, "Name")?.to_string();
    elbv2::validate_name("Load balancer", &name).map_err(invalid)?;
    let lb_type =
        one_of(&p, "Type", &["application", "network", "gateway"], "ValidationError")?.unwrap_or("application");
    if lb_type == "gateway" {
        return Err(ApiError::client(
            "OperationNotPermitted",
            "gateway load balancers are not supported by Skiff: use application or network",
        ));
    }
    let scheme = one_of(&p, "Scheme", &["internet-facing", "internal"], "InvalidScheme")?.unwrap_or("internet-facing");
    let ip_type =
        one_of(&p, "IpAddressType", &["ipv4", "dualstack", "dualstack-without-public-ipv4"], "ValidationError")?
            .unwrap_or("ipv4");
    if ip_type != "ipv4" {
        return Err(validation(format!("IpAddressType '{ip_type}' is not supported by Skiff: only ipv4")));
    }
    if p.get("CustomerOwnedIpv4Pool").is_some() || p.keys().any(|k| k.starts_with("IpamPools.")) {
        return Err(ApiError::client(
            "OperationNotPermitted",
            "customer-owned address pools and IPAM pools are not supported by Skiff",
        ));
    }
    if let Some(v) = one_of(&p, "EnablePrefixForIpv6SourceNat", &["on", "off"], "ValidationError")? {
        if v == "on" {
            return Err(validation("EnablePrefixForIpv6SourceNat needs dualstack, which Skiff does not support"));
        }
    }
    let tags = parse_tags(&p, "Tags")?;
    // Subnets: the plain list or SubnetMappings (not both).
    let mut subnet_ids = strings(&p, "Subnets");
    let mappings = structs(&p, "SubnetMappings");
    if !subnet_ids.is_empty() && !mappings.is_empty() {
        return Err(validation("specify either Subnets or SubnetMappings, not both"));
    }
    for m in &mappings {
        if m.get("AllocationId").is_some() {
            return Err(ApiError::client(
                "AllocationIdNotFound",
                format!(
                    "Elastic IP allocation '{}' not found: Skiff has no Elastic IPs",
                    m.get("AllocationId").unwrap_or("")
                ),
            ));
        }
        if m.get("PrivateIPv4Address").is_some()
            || m.get("IPv6Address").is_some()
            || m.get("SourceNatIpv6Prefix").is_some()
        {
            return Err(validation(
                "SubnetMappings addresses are not supported: Skiff allocates each load balancer's address",
            ));
        }
        subnet_ids.push(required(m, "SubnetId")?.to_string());
    }
    if subnet_ids.is_empty() {
        return Err(validation("at least one subnet must be specified (Subnets or SubnetMappings)"));
    }
    let mut subnets: Vec<Subnet> = Vec::new();
    for id in &subnet_ids {
        if !vpc::is_resource_id("subnet", id) {
            return Err(ApiError::client("InvalidSubnet", format!("'{id}' is not a subnet id")));
        }
        let subnet = records::load::<Subnet>(ctx.store(), &vpc::keys::subnet(id))
            .await?
            .map(|(s, _)| s)
            .filter(|s| s.region == ctx.scope().region)
            .ok_or_else(|| ApiError::client("SubnetNotFound", format!("The subnet ID '{id}' is not valid")))?;
        if subnets.iter().any(|s| s.subnet_id == subnet.subnet_id) {
            continue;
        }
        subnets.push(subnet);
    }
    let vpc_id = subnets[0].vpc_id.clone();
    if subnets.iter().any(|s| s.vpc_id != vpc_id) {
        return Err(ApiError::client("InvalidConfigurationRequest", "all subnets must belong to the same VPC"));
    }
    let mut zones: Vec<ZonePlacement> = Vec::new();
    for s in &subnets {
        if zones.iter().any(|z| z.zone_name == s.availability_zone) {
            return Err(ApiError::client(
                "InvalidConfigurationRequest",
                format!(
                    "a load balancer cannot be attached to multiple subnets in the same Availability Zone ({})",
                    s.availability_zone
                ),
            ));
        }
        zones.push(ZonePlacement { zone_name: s.availability_zone.clone(), subnet_id: s.subnet_id.clone() });
    }
    if lb_type == "application" && zones.len() < 2 {
        return Err(ApiError::client(
            "InvalidConfigurationRequest",
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    // Security groups (application load balancers): the VPC's default group when none is named.
    let mut groups = strings(&p, "SecurityGroups");
    if lb_type == "network" && !groups.is_empty() {
        return Err(validation("Skiff's network load balancers take no security groups"));
    }
    let all_groups = records::load_all::<SecurityGroup>(ctx.store(), vpc::keys::SECURITY_GROUPS).await?;
    for g in &groups {
        if !all_groups.iter().any(|(_, sg)| &sg.group_id == g && sg.vpc_id == vpc_id) {
            return Err(ApiError::client(
                "InvalidSecurityGroup",
                format!("security group '{g}' does not exist in VPC '{vpc_id}'"),
            ));
        }
    }
    if lb_type == "application" && groups.is_empty() {
        if let Some((_, sg)) = all_groups.iter().find(|(_, sg)| sg.vpc_id == vpc_id && sg.group_name == "default") {
            groups.push(sg.group_id.clone());
        }
    }
    let key = keys::load_balancer(&name);
    for _ in 0..16 {
        if records::load::<LoadBalancerRecord>(ctx.store(), &key).await?.is_some() {
            return Err(ApiError::client(
                "DuplicateLoadBalancerName",
                format!("A load balancer with the name '{name}' already exists"),
            ));
        }
        let used = records::load_all::<String>(ctx.store(), keys::ADDRESSES).await?;
        let used_ips: Vec<&str> = used.iter().filter_map(|(k, _)| k.strip_prefix(keys::ADDRESSES)).collect();
        let block = ctx.state.lb_block;
        let address = elbv2::free_lb_address(block, used_ips).ok_or_else(|| {
            ApiError::client("TooManyLoadBalancers", format!("every address of {block}/16 is in use"))
        })?;
        let id = super::random_id();
        let arn = super::arn(ctx, &format!("loadbalancer/{}/{name}/{id}", elbv2::type_word(lb_type)));
        let record = LoadBalancerRecord {
            load_balancer_arn: arn.clone(),
            load_balancer_name: name.clone(),
            id,
            lb_type: lb_type.to_string(),
            scheme: scheme.to_string(),
            vpc_id: vpc_id.clone(),
            ip_address_type: ip_type.to_string(),
            availability_zones: zones.clone(),
            security_groups: groups.clone(),
            address: address.to_string(),
            created_time_ms: now_millis(),
            attributes: elbv2::load_balancer_attribute_defaults(lb_type),
            tags: tags.clone(),
        };
        let address_key = keys::address(&record.address);
        let txn =
            Txn::new().when(&key, 0).when(&address_key, 0).put(&key, encode(&record)?).put(&address_key, encode(&arn)?);
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => {
                let mut w = XmlWriter::new();
                w.structure("LoadBalancers", |w| render(w, &record));
                return Ok(w.finish());
            }
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server("too many concurrent load balancer creations; retry the call"))
}

pub async fn describe_load_balancers(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arns = strings(&p, "LoadBalancerArns");
    let names = strings(&p, "Names");
    if !arns.is_empty() && !names.is_empty() {
        return Err(validation("LoadBalancerArns and Names cannot be specified together"));
    }
    let all: Vec<LoadBalancerRecord> = records::load_all::<LoadBalancerRecord>(ctx.store(), keys::LOAD_BALANCERS)
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let mut selected = Vec::new();
    if !arns.is_empty() {
        for a in &arns {
            let lb = all
                .iter()
                .find(|l| &l.load_balancer_arn == a)
                .ok_or_else(|| not_found("LoadBalancerNotFound", "load balancers", a))?;
            if !selected.iter().any(|s: &LoadBalancerRecord| s.load_balancer_arn == lb.load_balancer_arn) {
                selected.push(lb.clone());
            }
        }
    } else if !names.is_empty() {
        for n in &names {
            let lb = all
                .iter()
                .find(|l| &l.load_balancer_name == n)
                .ok_or_else(|| ApiError::client("LoadBalancerNotFound", format!("Load balancers '[{n}]' not found")))?;
            if !selected.iter().any(|s: &LoadBalancerRecord| s.load_balancer_arn == lb.load_balancer_arn) {
                selected.push(lb.clone());
            }
        }
    } else {
        selected = all;
    }
    selected.sort_by(|a, b| a.load_balancer_name.cmp(&b.load_balancer_name));
    let (items, marker) = page(&p, selected, |l| l.load_balancer_name.clone())?;
    let mut w = XmlWriter::new();
    w.structure("LoadBalancers", |w| {
        for lb in &items {
            render(w, lb);
        }
    });
    w.opt_text("NextMarker", marker.as_deref());
    Ok(w.finish())
}

pub async fn delete_load_balancer(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "LoadBalancerArn")?.to_string();
    for _ in 0..16 {
        let (lb, rev) = match load_balancer(ctx, &arn).await {
            Ok(found) => found,
            // Deleting a load balancer that does not exist succeeds (AWS: idempotent).
            Err(e) if e.code == "LoadBalancerNotFound" => return Ok(String::new()),
            Err(e) => return Err(e),
        };
        if lb.attributes.get("deletion_protection.enabled").map(String::as_str) == Some("true") {
            return Err(ApiError::client(
                "OperationNotPermitted",
                format!("Load balancer '{arn}' cannot be deleted because deletion protection is enabled"),
            ));
        }
        let key = keys::load_balancer(&lb.load_balancer_name);
        let address_key = keys::address(&lb.address);
        let address_rev = ctx.store().get(&address_key).await.map_err(store_error)?.map(|v| v.mod_revision);
        let mut txn = Txn::new().when(&key, rev).delete(&key);
        if let Some(r) = address_rev {
            txn = txn.when(&address_key, r).delete(&address_key);
        }
        for (lkey, l, lrev) in records::load_all_rev::<ListenerRecord>(ctx.store(), &keys::listeners_of(&lb.id)).await?
        {
            txn = txn.when(&lkey, lrev).delete(&lkey);
            for (rkey, _, rrev) in records::load_all_rev::<RuleRecord>(ctx.store(), &keys::rules_of(&l.id)).await? {
                txn = txn.when(&rkey, rrev).delete(&rkey);
            }
        }
        match ctx.store().txn(txn).await.map_err(store_error)? {
            TxnOutcome::Committed(_) => return Ok(String::new()),
            TxnOutcome::Conflict => continue,
        }
    }
    Err(ApiError::server(format!("too many concurrent changes of {arn}; retry the call")))
}

pub async fn describe_load_balancer_attributes(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "LoadBalancerArn")?;
    let (lb, _) = load_balancer(ctx, arn).await?;
    let mut w = XmlWriter::new();
    super::render_attributes(&mut w, &lb.attributes);
    Ok(w.finish())
}

pub async fn modify_load_balancer_attributes(ctx: &Ctx, p: QueryParams) -> Result<String, ApiError> {
    let arn = required(&p, "LoadBalancerArn")?.to_string();
    required(&p, "Attributes").or_else(|e| if super::has(&p, "Attributes") { Ok("") } else { Err(e) })?;
    let changes = parse_attributes(&p, 20)?;
    let (lb, _) = load_balancer(ctx, &arn).await?;
    let key = keys::load_balancer(&lb.load_balancer_name);
    let missing = || not_found("LoadBalancerNotFound", "load balancers", &arn);
    let updated = records::update::<LoadBalancerRecord, _>(ctx.store(), &key, missing, |r| {
        if r.load_balancer_arn != arn {
            return Err(missing());
        }
        elbv2::modify_load_balancer_attributes(&mut r.attributes, &changes).map_err(invalid)
    })
    .await?;
    let mut w = XmlWriter::new();
    super::render_attributes(&mut w, &updated.attributes);
    Ok(w.finish())
}
