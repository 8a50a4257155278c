//! EC2, the networking subset awsvpc tasks need (read-only for now): the region's default VPC
//! (`bootstrap.rs`, made on the first start), its subnets and security group, and the region's
//! availability zones, through DescribeVpcs, DescribeSubnets, DescribeSecurityGroups and
//! DescribeAvailabilityZones (plus DescribeVpcAttribute, which Terraform's aws_vpc data source reads), in
//! EC2's query dialect: explicit ids (EC2's `….NotFound` errors for unknown ones), filters (`filters.rs`),
//! `MaxResults`/`NextToken` where the model has them, `DryRun` (`params.rs`).
//!
//! Handlers return the response members as XML (`XmlWriter`, the model's `locationName`s); the envelope
//! is `skiff_proto::query::ec2_success`'s.

mod bootstrap;
mod filters;
mod params;

pub use bootstrap::ensure_default_vpc;

use crate::context::Ctx;
use crate::records;
use filters::{bool_value, tag_values, Filterable};
use params::{check_known, dry_run, quoted_list, unique_ids, Paging};
use serde::de::DeserializeOwned;
use skiff_model::vpc::{self, keys, AvailabilityZone, Ec2Tag, IpPermission, SecurityGroup, Subnet, Vpc};
use skiff_proto::query::{QueryParams, XmlWriter};
use skiff_proto::ApiError;

/// Records of one kind in the server's region, in id order.
async fn regional<T: DeserializeOwned>(
    ctx: &Ctx,
    prefix: &str,
    region: impl Fn(&T) -> &str,
) -> Result<Vec<T>, ApiError> {
    let all = records::load_all::<T>(ctx.store(), prefix).await?;
    Ok(all.into_iter().map(|(_, r)| r).filter(|r| region(r) == ctx.scope().region).collect())
}

/// The records named by `ids` (all of them when none is named), or `missing`'s error naming the ids that
/// do not exist.
fn select<T>(
    items: Vec<T>,
    ids: &[&str],
    id: impl Fn(&T) -> &str,
    missing: impl FnOnce(&[&str]) -> ApiError,
) -> Result<Vec<T>, ApiError> {
    if ids.is_empty() {
        return Ok(items);
    }
    let absent: Vec<&str> = ids.iter().copied().filter(|want| !items.iter().any(|i| id(i) == *want)).collect();
    if !absent.is_empty() {
        return Err(missing(&absent));
    }
    Ok(items.into_iter().filter(|i| ids.contains(&id(i))).collect())
}

fn not_found(code: &'static str, noun: &str, ids: &[&str]) -> ApiError {
    let message = match ids {
        [one] => format!("The {noun} ID '{one}' does not exist"),
        many => format!("The {noun} IDs {} do not exist", quoted_list(many)),
    };
    ApiError::client(code, message)
}

const FILTER_PARAMS: [&str; 2] = ["Filter.#.Name", "Filter.#.Value.#"];

fn allowed(own: &[&'static str]) -> Vec<&'static str> {
    own.iter().copied().chain(FILTER_PARAMS).chain(["DryRun"]).collect()
}

fn tag_set(w: &mut XmlWriter, tags: &[Ec2Tag]) {
    // EC2 leaves `tagSet` out for untagged resources.
    if !tags.is_empty() {
        w.list("tagSet", tags, |w, t| {
            w.text("key", &t.key).text("value", &t.value);
        });
    }
}

fn block_public_access(w: &mut XmlWriter) {
    w.structure("blockPublicAccessStates", |w| {
        w.text("internetGatewayBlockMode", "off");
    });
}

fn next_token(w: &mut XmlWriter, token: Option<String>) {
    w.opt_text("nextToken", token.as_deref());
}

// ---------------------------------------------------------------------------------------------------------
// DescribeVpcs

impl Filterable for Vpc {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |v: &str| Some(vec![v.to_string()]);
        match name {
            "vpc-id" => one(&self.vpc_id),
            "cidr" | "cidr-block-association.cidr-block" => one(&self.cidr_block),
            "cidr-block-association.association-id" => one(&self.cidr_block_association_id),
            "cidr-block-association.state" => one("associated"),
            "dhcp-options-id" => one(&self.dhcp_options_id),
            // `isDefault` is the old spelling Terraform's aws_vpc data source still sends.
            "is-default" | "isDefault" => Some(bool_value(self.is_default)),
            "owner-id" => one(&self.owner_id),
            "state" => one(&self.state),
            "ipv6-cidr-block-association.ipv6-cidr-block"
            | "ipv6-cidr-block-association.ipv6-pool"
            | "ipv6-cidr-block-association.association-id"
            | "ipv6-cidr-block-association.state" => Some(Vec::new()),
            _ => tag_values(&self.tags, name),
        }
    }
}

fn render_vpc(w: &mut XmlWriter, v: &Vpc) {
    w.text("vpcId", &v.vpc_id)
        .text("ownerId", &v.owner_id)
        .text("state", &v.state)
        .text("cidrBlock", &v.cidr_block)
        .list("cidrBlockAssociationSet", [v], |w, v| {
            w.text("associationId", &v.cidr_block_association_id).text("cidrBlock", &v.cidr_block).structure(
                "cidrBlockState",
                |w| {
                    w.text("state", "associated");
                },
            );
        })
        .text("dhcpOptionsId", &v.dhcp_options_id)
        .text("instanceTenancy", &v.instance_tenancy)
        .bool("isDefault", v.is_default);
    block_public_access(w);
    tag_set(w, &v.tags);
}

pub async fn describe_vpcs(ctx: &Ctx, params: QueryParams) -> Result<String, ApiError> {
    check_known(&params, &allowed(&["VpcId.#", "NextToken", "MaxResults"]))?;
    let ids = unique_ids(params.ec2_list("VpcId"));
    let filters = filters::parse::<Vpc>(&params)?;
    let paging = Paging::parse(&params, if ids.is_empty() { &[] } else { &["vpcIds"] })?;
    dry_run(&params)?;
    let vpcs = regional::<Vpc>(ctx, keys::VPCS, |v| &v.region).await?;
    let vpcs = select(vpcs, &ids, |v| &v.vpc_id, |absent| not_found("InvalidVpcID.NotFound", "vpc", absent))?;
    let matched: Vec<Vpc> = vpcs.into_iter().filter(|v| filters::matches(v, &filters)).collect();
    let (page, token) = paging.page(matched, |v| &v.vpc_id);
    let mut w = XmlWriter::new();
    w.list("vpcSet", &page, render_vpc);
    next_token(&mut w, token);
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------------------
// DescribeVpcAttribute (Terraform's aws_vpc data source reads the DNS attributes)

fn required<'a>(params: &'a QueryParams, name: &str) -> Result<&'a str, ApiError> {
    params
        .get(name)
        .ok_or_else(|| ApiError::client("MissingParameter", format!("The request must contain the parameter {name}")))
}

pub async fn describe_vpc_attribute(ctx: &Ctx, params: QueryParams) -> Result<String, ApiError> {
    check_known(&params, &["VpcId", "Attribute", "DryRun"])?;
    let vpc_id = required(&params, "VpcId")?;
    let attribute = required(&params, "Attribute")?;
    let value: fn(&Vpc) -> bool = match attribute {
        "enableDnsSupport" => |v| v.enable_dns_support,
        "enableDnsHostnames" => |v| v.enable_dns_hostnames,
        "enableNetworkAddressUsageMetrics" => |v| v.enable_network_address_usage_metrics,
        other => {
            return Err(params::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Expecting enableDnsSupport, enableDnsHostnames \
                 or enableNetworkAddressUsageMetrics."
            )))
        }
    };
    dry_run(&params)?;
    let vpc = records::load::<Vpc>(ctx.store(), &keys::vpc(vpc_id))
        .await?
        .map(|(v, _)| v)
        .filter(|v| v.region == ctx.scope().region)
        .ok_or_else(|| not_found("InvalidVpcID.NotFound", "vpc", &[vpc_id]))?;
    let mut w = XmlWriter::new();
    w.text("vpcId", &vpc.vpc_id).structure(attribute, |w| {
        w.bool("value", value(&vpc));
    });
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------------------
// DescribeSubnets

impl Filterable for Subnet {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |v: &str| Some(vec![v.to_string()]);
        match name {
            "subnet-id" => one(&self.subnet_id),
            "subnet-arn" => one(&self.subnet_arn),
            "vpc-id" => one(&self.vpc_id),
            "availability-zone" | "availabilityZone" => one(&self.availability_zone),
            "availability-zone-id" | "availabilityZoneId" => one(&self.availability_zone_id),
            "available-ip-address-count" => one(&self.available_ip_address_count.to_string()),
            "cidr-block" | "cidr" | "cidrBlock" => one(&self.cidr_block),
            "default-for-az" | "defaultForAz" => Some(bool_value(self.default_for_az)),
            "map-public-ip-on-launch" => Some(bool_value(self.map_public_ip_on_launch)),
            "map-customer-owned-ip-on-launch"
            | "enable-dns64"
            | "ipv6-native"
            | "assign-ipv6-address-on-creation"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-a-record"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record" => Some(bool_value(false)),
            "private-dns-name-options-on-launch.hostname-type" => one("ip-name"),
            "owner-id" => one(&self.owner_id),
            "state" => one(&self.state),
            "customer-owned-ipv4-pool"
            | "enable-lni-at-device-index"
            | "outpost-arn"
            | "ipv6-cidr-block-association.ipv6-cidr-block"
            | "ipv6-cidr-block-association.association-id"
            | "ipv6-cidr-block-association.state" => Some(Vec::new()),
            _ => tag_values(&self.tags, name),
        }
    }
}

fn render_subnet(w: &mut XmlWriter, s: &Subnet) {
    w.text("subnetId", &s.subnet_id)
        .text("subnetArn", &s.subnet_arn)
        .text("state", &s.state)
        .text("ownerId", &s.owner_id)
        .text("vpcId", &s.vpc_id)
        .text("cidrBlock", &s.cidr_block)
        .list("ipv6CidrBlockAssociationSet", Vec::<()>::new(), |_, _| {})
        .int("availableIpAddressCount", s.available_ip_address_count.into())
        .text("availabilityZone", &s.availability_zone)
        .text("availabilityZoneId", &s.availability_zone_id)
        .bool("defaultForAz", s.default_for_az)
        .bool("mapPublicIpOnLaunch", s.map_public_ip_on_launch)
        .bool("mapCustomerOwnedIpOnLaunch", false)
        .bool("assignIpv6AddressOnCreation", false)
        .bool("enableDns64", false)
        .bool("ipv6Native", false)
        .structure("privateDnsNameOptionsOnLaunch", |w| {
            w.text("hostnameType", "ip-name")
                .bool("enableResourceNameDnsARecord", false)
                .bool("enableResourceNameDnsAAAARecord", false);
        });
    block_public_access(w);
    tag_set(w, &s.tags);
}

pub async fn describe_subnets(ctx: &Ctx, params: QueryParams) -> Result<String, ApiError> {
    check_known(&params, &allowed(&["SubnetId.#", "NextToken", "MaxResults"]))?;
    let ids = unique_ids(params.ec2_list("SubnetId"));
    let filters = filters::parse::<Subnet>(&params)?;
    let paging = Paging::parse(&params, if ids.is_empty() { &[] } else { &["subnetIds"] })?;
    dry_run(&params)?;
    let subnets = regional::<Subnet>(ctx, keys::SUBNETS, |s| &s.region).await?;
    let subnets =
        select(subnets, &ids, |s| &s.subnet_id, |absent| not_found("InvalidSubnetID.NotFound", "subnet", absent))?;
    let matched: Vec<Subnet> = subnets.into_iter().filter(|s| filters::matches(s, &filters)).collect();
    let (page, token) = paging.page(matched, |s| &s.subnet_id);
    let mut w = XmlWriter::new();
    w.list("subnetSet", &page, render_subnet);
    next_token(&mut w, token);
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------------------
// DescribeSecurityGroups

/// The values of an `ip-permission.*` (or `egress.ip-permission.*`) filter over `rules`.
fn rule_values(rules: &[IpPermission], field: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for r in rules {
        match field {
            "protocol" => out.push(r.ip_protocol.clone()),
            "from-port" => out.extend(r.from_port.map(|p| p.to_string())),
            "to-port" => out.extend(r.to_port.map(|p| p.to_string())),
            "cidr" => out.extend(r.ip_ranges.iter().map(|x| x.cidr_ip.clone())),
            "ipv6-cidr" => out.extend(r.ipv6_ranges.iter().map(|x| x.cidr_ipv6.clone())),
            "prefix-list-id" => out.extend(r.prefix_list_ids.iter().cloned()),
            "group-id" => out.extend(r.user_id_group_pairs.iter().map(|p| p.group_id.clone())),
            "user-id" => out.extend(r.user_id_group_pairs.iter().map(|p| p.user_id.clone())),
            // Pairs name groups by id only (VPC security groups do).
            "group-name" => {}
            _ => return None,
        }
    }
    Some(out)
}

impl Filterable for SecurityGroup {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |v: &str| Some(vec![v.to_string()]);
        if let Some(field) = name.strip_prefix("egress.ip-permission.") {
            return rule_values(&self.ip_permissions_egress, field);
        }
        if let Some(field) = name.strip_prefix("ip-permission.") {
            return rule_values(&self.ip_permissions, field);
        }
        match name {
            "group-id" => one(&self.group_id),
            "group-name" => one(&self.group_name),
            "description" => one(&self.description),
            "owner-id" => one(&self.owner_id),
            "vpc-id" => one(&self.vpc_id),
            _ => tag_values(&self.tags, name),
        }
    }
}

fn render_rules(w: &mut XmlWriter, name: &str, rules: &[IpPermission]) {
    w.list(name, rules, |w, r| {
        w.text("ipProtocol", &r.ip_protocol);
        if let Some(p) = r.from_port {
            w.int("fromPort", p.into());
        }
        if let Some(p) = r.to_port {
            w.int("toPort", p.into());
        }
        w.list("groups", &r.user_id_group_pairs, |w, p| {
            w.text("userId", &p.user_id).text("groupId", &p.group_id).opt_text("description", p.description.as_deref());
        })
        .list("ipRanges", &r.ip_ranges, |w, x| {
            w.text("cidrIp", &x.cidr_ip).opt_text("description", x.description.as_deref());
        })
        .list("ipv6Ranges", &r.ipv6_ranges, |w, x| {
            w.text("cidrIpv6", &x.cidr_ipv6).opt_text("description", x.description.as_deref());
        })
        .list("prefixListIds", &r.prefix_list_ids, |w, id| {
            w.text("prefixListId", id);
        });
    });
}

fn render_security_group(w: &mut XmlWriter, g: &SecurityGroup) {
    w.text("ownerId", &g.owner_id)
        .text("groupId", &g.group_id)
        .text("groupName", &g.group_name)
        .text("groupDescription", &g.description)
        .text("vpcId", &g.vpc_id)
        .text("securityGroupArn", &g.security_group_arn);
    render_rules(w, "ipPermissions", &g.ip_permissions);
    render_rules(w, "ipPermissionsEgress", &g.ip_permissions_egress);
    tag_set(w, &g.tags);
}

pub async fn describe_security_groups(ctx: &Ctx, params: QueryParams) -> Result<String, ApiError> {
    check_known(&params, &allowed(&["GroupId.#", "GroupName.#", "NextToken", "MaxResults"]))?;
    let ids = unique_ids(params.ec2_list("GroupId"));
    let names = unique_ids(params.ec2_list("GroupName"));
    if let Some(bad) = ids.iter().find(|id| !vpc::is_resource_id("sg", id)) {
        return Err(ApiError::client(
            "InvalidGroupId.Malformed",
            format!("Invalid id: \"{bad}\" (expecting \"sg-...\")"),
        ));
    }
    let filters = filters::parse::<SecurityGroup>(&params)?;
    let named: Vec<&str> = [(!ids.is_empty()).then_some("groupIds"), (!names.is_empty()).then_some("groupNames")]
        .into_iter()
        .flatten()
        .collect();
    let paging = Paging::parse(&params, &named)?;
    dry_run(&params)?;
    let groups = regional::<SecurityGroup>(ctx, keys::SECURITY_GROUPS, |g| &g.region).await?;
    let mut selected = groups;
    if !ids.is_empty() || !names.is_empty() {
        // Names are looked up in the default VPC, as EC2 does (other VPCs' groups need the group-name filter).
        let default_vpc = records::load::<vpc::DefaultVpcRecord>(ctx.store(), &keys::default_vpc(&ctx.scope().region))
            .await?
            .map(|(d, _)| d.vpc_id)
            .unwrap_or_default();
        let by_id = |g: &SecurityGroup| ids.contains(&g.group_id.as_str());
        let by_name = |g: &SecurityGroup| g.vpc_id == default_vpc && names.contains(&g.group_name.as_str());
        if let Some(id) = ids.iter().find(|id| !selected.iter().any(|g| g.group_id == **id)) {
            return Err(ApiError::client("InvalidGroup.NotFound", format!("The security group '{id}' does not exist")));
        }
        if let Some(name) =
            names.iter().find(|n| !selected.iter().any(|g| g.vpc_id == default_vpc && g.group_name == **n))
        {
            return Err(ApiError::client(
                "InvalidGroup.NotFound",
                format!("The security group '{name}' does not exist in default VPC '{default_vpc}'"),
            ));
        }
        selected.retain(|g| by_id(g) || by_name(g));
    }
    let matched: Vec<SecurityGroup> = selected.into_iter().filter(|g| filters::matches(g, &filters)).collect();
    let (page, token) = paging.page(matched, |g| &g.group_id);
    let mut w = XmlWriter::new();
    w.list("securityGroupInfo", &page, render_security_group);
    next_token(&mut w, token);
    Ok(w.finish())
}

// ---------------------------------------------------------------------------------------------------------
// DescribeAvailabilityZones

impl Filterable for AvailabilityZone {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |v: &str| Some(vec![v.to_string()]);
        match name {
            "zone-name" => one(&self.zone_name),
            "zone-id" => one(&self.zone_id),
            "region-name" => one(&self.region_name),
            "group-name" => one(&self.group_name),
            "network-border-group" => one(&self.network_border_group),
            "zone-type" => one(&self.zone_type),
            "state" => one(&self.state),
            "opt-in-status" => one(&self.opt_in_status),
            "group-long-name" | "message" | "parent-zone-id" | "parent-zone-name" => Some(Vec::new()),
            _ => None,
        }
    }
}

fn render_zone(w: &mut XmlWriter, z: &AvailabilityZone) {
    w.text("zoneName", &z.zone_name)
        .text("zoneState", &z.state)
        .text("regionName", &z.region_name)
        .text("groupName", &z.group_name)
        .text("optInStatus", &z.opt_in_status)
        .list("messageSet", Vec::<()>::new(), |_, _| {})
        .text("zoneId", &z.zone_id)
        .text("networkBorderGroup", &z.network_border_group)
        .text("zoneType", &z.zone_type);
}

pub async fn describe_availability_zones(ctx: &Ctx, params: QueryParams) -> Result<String, ApiError> {
    check_known(&params, &allowed(&["ZoneName.#", "ZoneId.#", "AllAvailabilityZones"]))?;
    let names = unique_ids(params.ec2_list("ZoneName"));
    let ids = unique_ids(params.ec2_list("ZoneId"));
    let filters = filters::parse::<AvailabilityZone>(&params)?;
    // Skiff has no Local or Wavelength Zones, so every zone is listed either way.
    params::boolean(&params, "AllAvailabilityZones")?;
    dry_run(&params)?;
    let zones = vpc::availability_zones(&ctx.scope().region);
    if let Some(bad) = names.iter().find(|n| !zones.iter().any(|z| z.zone_name == **n)) {
        return Err(params::invalid_value(format!("Invalid availability zone: [{bad}]")));
    }
    if let Some(bad) = ids.iter().find(|i| !zones.iter().any(|z| z.zone_id == **i)) {
        return Err(params::invalid_value(format!("Invalid availability zone ID: [{bad}]")));
    }
    let selected = zones.into_iter().filter(|z| {
        (names.is_empty() && ids.is_empty())
            || names.contains(&z.zone_name.as_str())
            || ids.contains(&z.zone_id.as_str())
    });
    let matched: Vec<AvailabilityZone> = selected.filter(|z| filters::matches(z, &filters)).collect();
    let mut w = XmlWriter::new();
    w.list("availabilityZoneInfo", &matched, render_zone);
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeyRing;
    use crate::context::{AppState, Caller};
    use skiff_proto::arn::ArnScope;
    use std::sync::Arc;

    struct Fixture {
        ctx: Ctx,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn skiff_store::Store> =
            Arc::new(skiff_store::SqliteStore::open(&dir.path().join("state.db")).unwrap());
        let scope = ArnScope { region: "us-east-1".into(), account: "123456789012".into() };
        let hosts = skiff_model::ecr::RegistryHosts {
            registry_host: "127.0.0.1:1".into(),
            account: scope.account.clone(),
            region: scope.region.clone(),
        };
        let registry = skiff_registry::Registry::open(
            skiff_registry::RegistryConfig {
                root: dir.path().join("registry"),
                hosts: hosts.clone(),
                upload_ttl: std::time::Duration::from_secs(60),
            },
            store.clone(),
        )
        .unwrap();
        ensure_default_vpc(store.as_ref(), &scope, skiff_model::vpc::DEFAULT_VPC_CIDR).await.unwrap();
        let state = Arc::new(AppState {
            store,
            scope,
            keys: KeyRing::default(),
            registry,
            registry_tokens: crate::registry_auth::TokenKey::load_or_generate(dir.path()).unwrap(),
            registry_hosts: hosts,
            task_wake: Default::default(),
            service_wake: Default::default(),
            lb: skiff_lb::LoadBalancer::new(),
            lb_wake: Default::default(),
            lb_block: std::net::Ipv4Addr::new(127, 200, 0, 0),
            cluster_gate: Default::default(),
            stopped_task_retention_ms: 3_600_000,
        });
        let caller = Caller {
            access_key_id: "AKIA".into(),
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:root".into(),
            user_id: "123456789012".into(),
        };
        Fixture { ctx: Ctx { state, caller, request_id: "rid".into() }, _dir: dir }
    }

    fn q(text: &str) -> QueryParams {
        QueryParams::parse(text.as_bytes()).unwrap()
    }

    fn count(xml: &str, tag: &str) -> usize {
        xml.matches(&format!("<{tag}>")).count()
    }

    #[tokio::test]
    async fn describes_the_default_vpc_its_subnets_and_group() {
        let f = fixture().await;
        let ctx = &f.ctx;
        let vpcs = describe_vpcs(ctx, q("Filter.1.Name=is-default&Filter.1.Value.1=true")).await.unwrap();
        assert_eq!(count(&vpcs, "vpcId"), 1, "{vpcs}");
        assert!(vpcs.contains("<cidrBlock>172.31.0.0/16</cidrBlock>") && vpcs.contains("<isDefault>true</isDefault>"));
        let vpc_id = vpcs.split("<vpcId>").nth(1).unwrap().split('<').next().unwrap().to_string();

        let subnets =
            describe_subnets(ctx, q(&format!("Filter.1.Name=vpc-id&Filter.1.Value.1={vpc_id}"))).await.unwrap();
        assert_eq!(count(&subnets, "subnetId"), 2, "{subnets}");
        assert!(subnets.contains("<availabilityZone>us-east-1a</availabilityZone>"));
        assert!(subnets.contains("<availableIpAddressCount>4091</availableIpAddressCount>"));
        let one = describe_subnets(ctx, q("Filter.1.Name=availability-zone&Filter.1.Value.1=*b")).await.unwrap();
        assert_eq!(count(&one, "subnetId"), 1);
        assert!(one.contains("172.31.16.0/20"));
        let none = describe_subnets(ctx, q("Filter.1.Name=default-for-az&Filter.1.Value.1=false")).await.unwrap();
        assert_eq!(none, "<subnetSet/>");

        let groups = describe_security_groups(ctx, q("GroupName.1=default")).await.unwrap();
        assert_eq!(count(&groups, "groupName"), 1, "{groups}");
        assert!(groups.contains("<cidrIp>0.0.0.0/0</cidrIp>") && groups.contains("<ipProtocol>-1</ipProtocol>"));
        let e = describe_security_groups(ctx, q("GroupName.1=nope")).await.unwrap_err();
        assert_eq!(e.code, "InvalidGroup.NotFound");
        assert!(e.message.contains(&vpc_id), "{}", e.message);
        let e = describe_security_groups(ctx, q("GroupId.1=default")).await.unwrap_err();
        assert_eq!(e.code, "InvalidGroupId.Malformed");
        let e = describe_security_groups(ctx, q("GroupId.1=sg-00000000000000000")).await.unwrap_err();
        assert_eq!(e.code, "InvalidGroup.NotFound");
        let by_rule =
            describe_security_groups(ctx, q("Filter.1.Name=egress.ip-permission.cidr&Filter.1.Value.1=0.0.0.0/0"))
                .await
                .unwrap();
        assert_eq!(count(&by_rule, "groupName"), 1);

        let zones = describe_availability_zones(ctx, q("")).await.unwrap();
        assert_eq!(count(&zones, "zoneName"), 2);
        assert!(zones.contains("<zoneId>use1-az2</zoneId>") && zones.contains("<zoneState>available</zoneState>"));
        let e = describe_availability_zones(ctx, q("ZoneName.1=us-east-1z")).await.unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("InvalidParameterValue", "Invalid availability zone: [us-east-1z]")
        );
    }

    #[tokio::test]
    async fn ids_errors_and_paging() {
        let f = fixture().await;
        let ctx = &f.ctx;
        let e = describe_vpcs(ctx, q("VpcId.1=vpc-x")).await.unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("InvalidVpcID.NotFound", "The vpc ID 'vpc-x' does not exist")
        );
        let vpcs = describe_vpcs(ctx, q("")).await.unwrap();
        let vpc_id = vpcs.split("<vpcId>").nth(1).unwrap().split('<').next().unwrap().to_string();
        let dns =
            describe_vpc_attribute(ctx, q(&format!("VpcId={vpc_id}&Attribute=enableDnsHostnames"))).await.unwrap();
        assert_eq!(dns, format!("<vpcId>{vpc_id}</vpcId><enableDnsHostnames><value>true</value></enableDnsHostnames>"));
        let e = describe_vpc_attribute(ctx, q("VpcId=vpc-x&Attribute=enableDnsSupport")).await.unwrap_err();
        assert_eq!(e.code, "InvalidVpcID.NotFound");
        let e = describe_vpc_attribute(ctx, q(&format!("VpcId={vpc_id}&Attribute=colour"))).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(describe_vpc_attribute(ctx, q("VpcId=vpc-x")).await.unwrap_err().code, "MissingParameter");
        let e = describe_subnets(ctx, q("SubnetId.1=subnet-a&SubnetId.2=subnet-b")).await.unwrap_err();
        assert_eq!(e.code, "InvalidSubnetID.NotFound");
        assert_eq!(e.message, "The subnet IDs 'subnet-a, subnet-b' do not exist");
        let e = describe_vpcs(ctx, q("VpcId.1=vpc-x&MaxResults=5")).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombination");
        let e = describe_vpcs(ctx, q("Filter.1.Name=colour&Filter.1.Value.1=x")).await.unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        assert_eq!(describe_vpcs(ctx, q("Bogus=1")).await.unwrap_err().code, "UnknownParameter");
        assert_eq!(describe_vpcs(ctx, q("DryRun=true")).await.unwrap_err().code, "DryRunOperation");

        let all = describe_subnets(ctx, q("")).await.unwrap();
        let ids: Vec<&str> = all.split("<subnetId>").skip(1).map(|s| s.split('<').next().unwrap()).collect();
        let both =
            describe_subnets(ctx, q(&format!("SubnetId.1={}&SubnetId.2={}&SubnetId.3={}", ids[1], ids[0], ids[1])))
                .await
                .unwrap();
        assert_eq!(count(&both, "subnetId"), 2);
        // Paging: both subnets fit in a page of 5: no token.
        let page = describe_subnets(ctx, q("MaxResults=5")).await.unwrap();
        assert!(!page.contains("nextToken"), "{page}");
        let after_first =
            describe_subnets(ctx, q(&format!("NextToken={}", records::next_token(ids[0])))).await.unwrap();
        assert_eq!(count(&after_first, "subnetId"), 1);
        assert!(after_first.contains(ids[1]));
    }
}
