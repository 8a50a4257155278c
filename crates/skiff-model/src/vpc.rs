//! EC2 networking nouns as Skiff keeps them: VPCs, subnets, security groups (records in the store) and
//! availability zones (derived from the region), with the member names of the EC2 model, their store keys
//! and the default VPC every region starts with, shaped as AWS's own default VPC is.
//!
//! Tasks get their addresses from these subnets (awsvpc networking), so the records are the source of
//! truth for CIDR blocks; nothing here does I/O: ids are made from random bytes the caller supplies.

use serde::{Deserialize, Serialize};

/// Store keys of EC2 records, by resource id (`vpc-…`, `subnet-…`, `sg-…`).
pub mod keys {
    pub const VPCS: &str = "ec2/vpcs/";
    pub const SUBNETS: &str = "ec2/subnets/";
    pub const SECURITY_GROUPS: &str = "ec2/security-groups/";

    pub fn vpc(id: &str) -> String {
        format!("{VPCS}{id}")
    }

    pub fn subnet(id: &str) -> String {
        format!("{SUBNETS}{id}")
    }

    pub fn security_group(id: &str) -> String {
        format!("{SECURITY_GROUPS}{id}")
    }

    /// The region's [`DefaultVpcRecord`]: written once, in the same transaction as the default VPC, its
    /// subnets and its security group, on condition that it is absent (so concurrent or repeated starts
    /// create exactly one default VPC per region).
    pub fn default_vpc(region: &str) -> String {
        format!("ec2/default-vpc/{region}")
    }
}

/// Random bytes an id is made from: 9 bytes give the 17 hex digits of a current AWS id.
pub type IdBytes = [u8; 9];

/// An EC2 resource id as AWS makes them today: `PREFIX-` and 17 lowercase hex digits (`vpc-0a1b…`).
pub fn resource_id(prefix: &str, random: IdBytes) -> String {
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(17);
    format!("{prefix}-{hex}")
}

/// Whether `id` is `PREFIX-` followed by 8 or 17 lowercase hex digits (the two lengths AWS has used).
pub fn is_resource_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// An EC2 tag (`Key`/`Value`, `<key>`/`<value>` on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ec2Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A VPC. `region` is the region it belongs to (VPCs are regional; a server started in another region
/// does not show it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    pub vpc_id: String,
    pub region: String,
    pub owner_id: String,
    pub cidr_block: String,
    /// The id of the primary CIDR block's association (`vpc-cidr-assoc-…`).
    pub cidr_block_association_id: String,
    pub dhcp_options_id: String,
    /// `default`, `dedicated` or `host`.
    pub instance_tenancy: String,
    pub is_default: bool,
    /// `pending`, `available` or `deleting`.
    pub state: String,
    /// The VPC's DNS attributes (DescribeVpcAttribute): the resolver answers, instances get DNS names.
    #[serde(default = "yes")]
    pub enable_dns_support: bool,
    #[serde(default = "yes")]
    pub enable_dns_hostnames: bool,
    #[serde(default)]
    pub enable_network_address_usage_metrics: bool,
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

fn yes() -> bool {
    true
}

/// A subnet of a VPC, in one availability zone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub subnet_id: String,
    pub subnet_arn: String,
    pub vpc_id: String,
    pub region: String,
    pub owner_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    /// Addresses not yet handed out (the block's size minus the five AWS reserves, minus those in use).
    pub available_ip_address_count: u32,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    /// `pending`, `available`, …
    pub state: String,
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

/// A security group and its rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: String,
    /// `groupDescription` on the wire.
    pub description: String,
    pub vpc_id: String,
    pub region: String,
    pub owner_id: String,
    pub security_group_arn: String,
    #[serde(default)]
    pub ip_permissions: Vec<IpPermission>,
    #[serde(default)]
    pub ip_permissions_egress: Vec<IpPermission>,
    #[serde(default)]
    pub tags: Vec<Ec2Tag>,
}

/// One rule of a security group: a protocol (`-1` is every protocol), a port range where the protocol has
/// ports, and the sources (ingress) or destinations (egress) it allows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpPermission {
    pub ip_protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
    /// Other security groups (`groups` on the wire).
    #[serde(default)]
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    #[serde(default)]
    pub ip_ranges: Vec<IpRange>,
    #[serde(default)]
    pub ipv6_ranges: Vec<Ipv6Range>,
    #[serde(default)]
    pub prefix_list_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdGroupPair {
    pub user_id: String,
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    pub cidr_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6Range {
    pub cidr_ipv6: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An availability zone of the region. Not stored: every region has the same two, derived from its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AvailabilityZone {
    pub zone_name: String,
    pub zone_id: String,
    pub region_name: String,
    pub group_name: String,
    pub network_border_group: String,
    /// `availability-zone` (Skiff has no Local or Wavelength Zones).
    pub zone_type: String,
    /// `zoneState` on the wire.
    pub state: String,
    pub opt_in_status: String,
}

/// The suffixes of the region's availability zones, in order (`us-east-1a`, `us-east-1b`).
pub const ZONE_SUFFIXES: [char; 2] = ['a', 'b'];

/// The CIDR block of every region's default VPC (AWS's default VPC block).
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// The default subnets' blocks, one per zone of [`ZONE_SUFFIXES`] (the /20s AWS carves out of the VPC).
pub const DEFAULT_SUBNET_CIDRS: [&str; 2] = ["172.31.0.0/20", "172.31.16.0/20"];
/// AWS reserves five addresses of every subnet (network, router, DNS, future use, broadcast).
pub const RESERVED_ADDRESSES_PER_SUBNET: u32 = 5;

/// The two default subnets of a default VPC with block `vpc_cidr` (an IPv4 `/16`): its first two /20s,
/// as AWS carves them. `None` for anything but a /16.
pub fn default_subnet_cidrs(vpc_cidr: &str) -> Option<[String; 2]> {
    let (addr, len) = vpc_cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    let [a, b, c, d] = ip.octets();
    (len == "16" && c == 0 && d == 0).then(|| [format!("{a}.{b}.0.0/20"), format!("{a}.{b}.16.0/20")])
}

/// The short region code of AWS's zone ids: `us-east-1` → `use1`, `ap-northeast-2` → `apne2`,
/// `eu-central-1` → `euc1`, `us-gov-west-1` → `usgw1`.
pub fn region_code(region: &str) -> String {
    let mut parts = region.split('-');
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let short = match part {
            "north" => "n",
            "south" => "s",
            "east" => "e",
            "west" => "w",
            "central" => "c",
            "northeast" => "ne",
            "northwest" => "nw",
            "southeast" => "se",
            "southwest" => "sw",
            "gov" => "g",
            "iso" => "i",
            "isob" => "ib",
            p if p.bytes().all(|b| b.is_ascii_digit()) => p,
            p => p.get(..1).unwrap_or_default(),
        };
        out.push_str(short);
    }
    out
}

/// The region's availability zones: `REGIONa` (`CODE-az1`) and `REGIONb` (`CODE-az2`).
pub fn availability_zones(region: &str) -> Vec<AvailabilityZone> {
    let code = region_code(region);
    ZONE_SUFFIXES
        .iter()
        .enumerate()
        .map(|(i, suffix)| AvailabilityZone {
            zone_name: format!("{region}{suffix}"),
            zone_id: format!("{code}-az{}", i + 1),
            region_name: region.to_string(),
            group_name: format!("{region}-zg-1"),
            network_border_group: region.to_string(),
            zone_type: "availability-zone".to_string(),
            state: "available".to_string(),
            opt_in_status: "opt-in-not-required".to_string(),
        })
        .collect()
}

/// Number of addresses in an IPv4 CIDR block (`None` when `cidr` is not one).
pub fn cidr_size(cidr: &str) -> Option<u64> {
    let (addr, len) = cidr.split_once('/')?;
    addr.parse::<std::net::Ipv4Addr>().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    Some(1u64 << (32 - len))
}

/// What [`default_vpc`] records under [`keys::default_vpc`]: the ids of the region's default resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultVpcRecord {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub security_group_id: String,
}

/// A region's default VPC with everything in it, ready to be written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultVpc {
    pub record: DefaultVpcRecord,
    pub vpc: Vpc,
    pub subnets: Vec<Subnet>,
    pub security_group: SecurityGroup,
}

/// The default VPC of `region` in `account`, shaped as AWS's: `vpc_cidr` (AWS: 172.31.0.0/16; an invalid
/// block falls back to it), one default /20 subnet per availability zone (public IPs on launch), and the
/// `default` security group, which allows all traffic from its own members in and everything out. `random`
/// supplies the bytes of each new id.
pub fn default_vpc(region: &str, account: &str, vpc_cidr: &str, mut random: impl FnMut() -> IdBytes) -> DefaultVpc {
    let (vpc_cidr, subnet_cidrs) = match default_subnet_cidrs(vpc_cidr) {
        Some(subnets) => (vpc_cidr.to_string(), subnets),
        None => (DEFAULT_VPC_CIDR.to_string(), DEFAULT_SUBNET_CIDRS.map(String::from)),
    };
    let vpc_id = resource_id("vpc", random());
    let vpc = Vpc {
        vpc_id: vpc_id.clone(),
        region: region.to_string(),
        owner_id: account.to_string(),
        cidr_block: vpc_cidr,
        cidr_block_association_id: resource_id("vpc-cidr-assoc", random()),
        dhcp_options_id: resource_id("dopt", random()),
        instance_tenancy: "default".to_string(),
        is_default: true,
        state: "available".to_string(),
        enable_dns_support: true,
        enable_dns_hostnames: true,
        enable_network_address_usage_metrics: false,
        tags: Vec::new(),
    };
    let subnets: Vec<Subnet> = availability_zones(region)
        .into_iter()
        .zip(subnet_cidrs)
        .map(|(zone, cidr)| {
            let subnet_id = resource_id("subnet", random());
            let size = cidr_size(&cidr).unwrap_or(0) as u32;
            Subnet {
                subnet_arn: format!("arn:aws:ec2:{region}:{account}:subnet/{subnet_id}"),
                subnet_id,
                vpc_id: vpc_id.clone(),
                region: region.to_string(),
                owner_id: account.to_string(),
                cidr_block: cidr,
                availability_zone: zone.zone_name,
                availability_zone_id: zone.zone_id,
                available_ip_address_count: size.saturating_sub(RESERVED_ADDRESSES_PER_SUBNET),
                default_for_az: true,
                map_public_ip_on_launch: true,
                state: "available".to_string(),
                tags: Vec::new(),
            }
        })
        .collect();
    let group_id = resource_id("sg", random());
    let security_group = SecurityGroup {
        security_group_arn: format!("arn:aws:ec2:{region}:{account}:security-group/{group_id}"),
        group_id: group_id.clone(),
        group_name: "default".to_string(),
        description: "default VPC security group".to_string(),
        vpc_id: vpc_id.clone(),
        region: region.to_string(),
        owner_id: account.to_string(),
        ip_permissions: vec![IpPermission {
            ip_protocol: "-1".to_string(),
            user_id_group_pairs: vec![UserIdGroupPair {
                user_id: account.to_string(),
                group_id: group_id.clone(),
                description: None,
            }],
            ..IpPermission::default()
        }],
        ip_permissions_egress: vec![IpPermission {
            ip_protocol: "-1".to_string(),
            ip_ranges: vec![IpRange { cidr_ip: "0.0.0.0/0".to_string(), description: None }],
            ..IpPermission::default()
        }],
        tags: Vec::new(),
    };
    DefaultVpc {
        record: DefaultVpcRecord {
            vpc_id,
            subnet_ids: subnets.iter().map(|s| s.subnet_id.clone()).collect(),
            security_group_id: group_id,
        },
        vpc,
        subnets,
        security_group,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> IdBytes {
        let mut n = 0u8;
        move || {
            n += 1;
            [n, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89]
        }
    }

    #[test]
    fn ids_have_17_hex_digits() {
        let id = resource_id("vpc", [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82]);
        assert_eq!(id, "vpc-0a1b2c3d4e5f60718");
        assert!(is_resource_id("vpc", &id));
        assert!(is_resource_id("sg", "sg-12345678"));
        for bad in ["vpc-0A1B2C3D4E5F60718", "vpc-123", "sg-0a1b2c3d4e5f60718", "vpc0a1b2c3d4e5f60718", "vpc-"] {
            assert!(!is_resource_id("vpc", bad), "{bad}");
        }
    }

    #[test]
    fn region_codes_follow_aws_zone_ids() {
        for (region, code) in [
            ("us-east-1", "use1"),
            ("us-west-2", "usw2"),
            ("eu-central-1", "euc1"),
            ("ap-northeast-1", "apne1"),
            ("ap-southeast-2", "apse2"),
            ("sa-east-1", "sae1"),
            ("us-gov-west-1", "usgw1"),
            ("local", "local"),
        ] {
            assert_eq!(region_code(region), code, "{region}");
        }
    }

    #[test]
    fn zones_are_a_and_b() {
        let zones = availability_zones("eu-west-3");
        let names: Vec<_> = zones.iter().map(|z| (z.zone_name.as_str(), z.zone_id.as_str())).collect();
        assert_eq!(names, [("eu-west-3a", "euw3-az1"), ("eu-west-3b", "euw3-az2")]);
        assert!(zones.iter().all(|z| z.state == "available" && z.region_name == "eu-west-3"));
    }

    #[test]
    fn default_vpc_is_shaped_like_aws() {
        let d = default_vpc("us-east-1", "123456789012", DEFAULT_VPC_CIDR, counter());
        assert!(is_resource_id("vpc", &d.vpc.vpc_id));
        assert!(d.vpc.is_default && d.vpc.cidr_block == "172.31.0.0/16" && d.vpc.state == "available");
        assert!(d.vpc.dhcp_options_id.starts_with("dopt-"));
        assert_eq!(d.subnets.len(), 2);
        let s = &d.subnets[1];
        assert_eq!((s.cidr_block.as_str(), s.availability_zone.as_str()), ("172.31.16.0/20", "us-east-1b"));
        assert_eq!(s.availability_zone_id, "use1-az2");
        assert_eq!(s.available_ip_address_count, 4091);
        assert_eq!(s.subnet_arn, format!("arn:aws:ec2:us-east-1:123456789012:subnet/{}", s.subnet_id));
        assert!(s.default_for_az && s.map_public_ip_on_launch && s.vpc_id == d.vpc.vpc_id);
        let sg = &d.security_group;
        assert_eq!(sg.group_name, "default");
        assert_eq!(sg.ip_permissions[0].user_id_group_pairs[0].group_id, sg.group_id);
        assert_eq!(sg.ip_permissions_egress[0].ip_ranges[0].cidr_ip, "0.0.0.0/0");
        assert_eq!(d.record.subnet_ids, d.subnets.iter().map(|s| s.subnet_id.clone()).collect::<Vec<_>>());
        // every id distinct
        let mut ids = vec![d.vpc.vpc_id.clone(), sg.group_id.clone(), d.vpc.dhcp_options_id.clone()];
        ids.extend(d.record.subnet_ids.clone());
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn default_subnets_are_the_first_two_twenties_of_a_sixteen() {
        assert_eq!(default_subnet_cidrs("10.7.0.0/16").unwrap(), ["10.7.0.0/20", "10.7.16.0/20"]);
        for bad in ["10.7.0.0/20", "10.7.1.0/16", "nonsense", "10.7.0.0", "300.1.0.0/16"] {
            assert!(default_subnet_cidrs(bad).is_none(), "{bad}");
        }
        let d = default_vpc("us-east-1", "123456789012", "10.9.0.0/16", counter());
        assert_eq!(d.vpc.cidr_block, "10.9.0.0/16");
        assert_eq!(d.subnets[1].cidr_block, "10.9.16.0/20");
    }

    #[test]
    fn cidr_sizes() {
        assert_eq!(cidr_size("172.31.0.0/20"), Some(4096));
        assert_eq!(cidr_size("10.0.0.0/32"), Some(1));
        assert_eq!(cidr_size("10.0.0.0/33"), None);
        assert_eq!(cidr_size("nope/20"), None);
    }

    #[test]
    fn records_round_trip_through_json() {
        let d = default_vpc("us-east-1", "123456789012", DEFAULT_VPC_CIDR, counter());
        let text = serde_json::to_string(&d.security_group).unwrap();
        assert!(text.contains("\"ipPermissionsEgress\""), "{text}");
        let back: SecurityGroup = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d.security_group);
    }
}
