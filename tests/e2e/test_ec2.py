"""EC2, the networking subset: the default VPC, its two subnets and default security group that every region
gets on the first start, and the region's availability zones, read through boto3, the AWS CLI and raw
requests in EC2's query dialect (no Result wrapper, <item> lists, <Response><Errors> errors)."""

import datetime as dt
import ipaddress
import urllib.parse
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from harness import (
    ACCOUNT_ID,
    FORM_CONTENT_TYPE,
    REGION,
    AwsCliError,
    client_error,
    signed_request,
    uniq,
)

EC2_VERSION = "2016-11-15"
EC2_NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
MISSING_VPC = "vpc-0000000000000dead"
MISSING_SUBNET = "subnet-0000000000000dead"
MISSING_GROUP = "sg-0000000000000dead"


def ec2_request(server, params, **kw):
    """A signed EC2 query-protocol POST (`params` without Action/Version gets DescribeVpcs' defaults)."""
    body = urllib.parse.urlencode({"Version": EC2_VERSION, **params}).encode()
    headers = {"Content-Type": FORM_CONTENT_TYPE, **(kw.pop("headers", {}) or {})}
    return signed_request(server, service="ec2", body=body, headers=headers, **kw)


@pytest.fixture(scope="session")
def ec2(server):
    return server.client("ec2")


@pytest.fixture(scope="session")
def blocks(server):
    """The default VPC's block and its two default subnets' blocks (the harness gives every server its own
    /16, `skiff server --vpc-cidr`; AWS's is 172.31.0.0/16)."""
    a, b = server.vpc_cidr.split(".")[:2]
    return server.vpc_cidr, f"{a}.{b}.0.0/20", f"{a}.{b}.16.0/20"


@pytest.fixture(scope="session")
def default_vpc(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1, vpcs
    return vpcs[0]


def default_ids(client) -> dict:
    """The ids of the default VPC, its subnets (by zone) and its security group, as a client reads them."""
    vpc = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    subnets = client.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    groups = client.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    return {
        "vpc": [v["VpcId"] for v in vpc],
        "subnets": sorted((s["AvailabilityZone"], s["SubnetId"]) for s in subnets),
        "group": [g["GroupId"] for g in groups],
        "dhcp": [v["DhcpOptionsId"] for v in vpc],
    }


# -- the defaults, as AWS shapes its default VPC ----------------------------------------------------------


def test_default_vpc_is_shaped_like_aws(default_vpc, blocks):
    v = default_vpc
    assert v["VpcId"].startswith("vpc-") and len(v["VpcId"]) == 4 + 17
    assert int(v["VpcId"][4:], 16) >= 0
    assert v["CidrBlock"] == blocks[0]
    assert v["IsDefault"] is True
    assert v["State"] == "available"
    assert v["InstanceTenancy"] == "default"
    assert v["OwnerId"] == ACCOUNT_ID
    assert v["DhcpOptionsId"].startswith("dopt-")
    (assoc,) = v["CidrBlockAssociationSet"]
    assert assoc["CidrBlock"] == blocks[0] and assoc["CidrBlockState"]["State"] == "associated"
    assert assoc["AssociationId"].startswith("vpc-cidr-assoc-")
    assert "Tags" not in v  # EC2 leaves tagSet out for untagged resources


def test_two_default_subnets_in_two_zones(ec2, default_vpc, blocks):
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s for s in subnets}
    assert sorted(by_zone) == [f"{REGION}a", f"{REGION}b"], subnets
    assert by_zone[f"{REGION}a"]["CidrBlock"] == blocks[1]
    assert by_zone[f"{REGION}b"]["CidrBlock"] == blocks[2]
    vpc_net = ipaddress.ip_network(default_vpc["CidrBlock"])
    for zone, s in by_zone.items():
        assert ipaddress.ip_network(s["CidrBlock"]).subnet_of(vpc_net)
        assert s["SubnetId"].startswith("subnet-") and len(s["SubnetId"]) == 7 + 17
        assert s["VpcId"] == default_vpc["VpcId"]
        assert s["DefaultForAz"] is True and s["MapPublicIpOnLaunch"] is True
        assert s["State"] == "available"
        assert s["AvailableIpAddressCount"] == 4091
        assert s["OwnerId"] == ACCOUNT_ID
        assert s["SubnetArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:subnet/{s['SubnetId']}"
        assert s["AvailabilityZoneId"] in ("use1-az1", "use1-az2")
    assert by_zone[f"{REGION}a"]["AvailabilityZoneId"] == "use1-az1"
    assert by_zone[f"{REGION}b"]["AvailabilityZoneId"] == "use1-az2"


def test_default_security_group(ec2, default_vpc):
    (g,) = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert g["GroupName"] == "default"
    assert g["Description"] == "default VPC security group"
    assert g["VpcId"] == default_vpc["VpcId"]
    assert g["OwnerId"] == ACCOUNT_ID
    assert g["GroupId"].startswith("sg-") and len(g["GroupId"]) == 3 + 17
    assert g["SecurityGroupArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:security-group/{g['GroupId']}"
    # all traffic from members of the group itself in, everything out
    (ingress,) = g["IpPermissions"]
    assert ingress["IpProtocol"] == "-1"
    assert ingress["UserIdGroupPairs"] == [{"UserId": ACCOUNT_ID, "GroupId": g["GroupId"]}]
    assert ingress["IpRanges"] == []
    (egress,) = g["IpPermissionsEgress"]
    assert egress["IpProtocol"] == "-1"
    assert egress["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    assert egress["UserIdGroupPairs"] == []
    assert ec2.describe_security_groups(GroupIds=[g["GroupId"]])["SecurityGroups"] == [g]


def test_availability_zones(ec2):
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == [f"{REGION}a", f"{REGION}b"]
    assert [z["ZoneId"] for z in zones] == ["use1-az1", "use1-az2"]
    for z in zones:
        assert z["State"] == "available"
        assert z["RegionName"] == REGION
        assert z["ZoneType"] == "availability-zone"
        assert z["OptInStatus"] == "opt-in-not-required"
        assert z["NetworkBorderGroup"] == REGION
        assert z["GroupName"]
        assert z["Messages"] == []
    assert ec2.describe_availability_zones(AllAvailabilityZones=True)["AvailabilityZones"] == zones
    assert ec2.describe_availability_zones(ZoneNames=[f"{REGION}b"])["AvailabilityZones"] == [zones[1]]
    assert ec2.describe_availability_zones(ZoneIds=["use1-az1"])["AvailabilityZones"] == [zones[0]]
    subnets = ec2.describe_subnets()["Subnets"]
    assert {s["AvailabilityZone"] for s in subnets} <= {z["ZoneName"] for z in zones}


def test_default_vpc_dns_attributes(ec2, default_vpc):
    vpc_id = default_vpc["VpcId"]
    for attribute, key, want in [("enableDnsSupport", "EnableDnsSupport", True),
                                 ("enableDnsHostnames", "EnableDnsHostnames", True),
                                 ("enableNetworkAddressUsageMetrics", "EnableNetworkAddressUsageMetrics", False)]:
        got = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        assert got["VpcId"] == vpc_id
        assert got[key] == {"Value": want}, got
    e = client_error(ec2.describe_vpc_attribute, VpcId=MISSING_VPC, Attribute="enableDnsSupport")
    assert e.response["Error"]["Code"] == "InvalidVpcID.NotFound"


# -- the AWS CLI -------------------------------------------------------------------------------------------


def test_cli_describe_vpcs_default(aws, default_vpc):
    out = aws("ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true")
    assert [v["VpcId"] for v in out["Vpcs"]] == [default_vpc["VpcId"]]
    none = aws("ec2", "describe-vpcs", "--filters", "Name=is-default,Values=false")
    assert none["Vpcs"] == []


def test_cli_describe_subnets_of_the_vpc(aws, default_vpc):
    out = aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={default_vpc['VpcId']}")
    assert sorted(s["AvailabilityZone"] for s in out["Subnets"]) == [f"{REGION}a", f"{REGION}b"]
    ids = aws("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={default_vpc['VpcId']}",
              "--query", "Subnets[].SubnetId", "--output", "json")
    assert len(ids) == 2 and all(i.startswith("subnet-") for i in ids)
    one = aws("ec2", "describe-subnets", "--subnet-ids", ids[0])
    assert [s["SubnetId"] for s in one["Subnets"]] == [ids[0]]


def test_cli_describe_security_groups_by_name(aws, default_vpc):
    out = aws("ec2", "describe-security-groups", "--group-names", "default")
    (g,) = out["SecurityGroups"]
    assert g["GroupName"] == "default" and g["VpcId"] == default_vpc["VpcId"]


def test_cli_describe_availability_zones(aws):
    out = aws("ec2", "describe-availability-zones")
    assert [z["ZoneName"] for z in out["AvailabilityZones"]] == [f"{REGION}a", f"{REGION}b"]
    assert all(z["State"] == "available" for z in out["AvailabilityZones"])


def test_cli_errors(aws):
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "describe-vpcs", "--vpc-ids", MISSING_VPC)
    assert e.value.code == "InvalidVpcID.NotFound"
    assert f"The vpc ID '{MISSING_VPC}' does not exist" in e.value.stderr
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "describe-security-groups", "--group-names", "nope")
    assert e.value.code == "InvalidGroup.NotFound"


def test_cli_unimplemented_action(aws):
    with pytest.raises(AwsCliError) as e:
        aws("ec2", "run-instances", "--image-id", "ami-12345678", "--instance-type", "t3.micro")
    assert e.value.code == "InvalidAction"
    assert "RunInstances" in e.value.stderr


# -- filters -----------------------------------------------------------------------------------------------


def subnet_zones(ec2, *filters):
    subnets = ec2.describe_subnets(Filters=[{"Name": n, "Values": list(v)} for n, v in filters])["Subnets"]
    return sorted(s["AvailabilityZone"] for s in subnets)


def test_filter_semantics(ec2, default_vpc, blocks):
    a, b = f"{REGION}a", f"{REGION}b"
    vpc_id = default_vpc["VpcId"]
    # values OR
    assert subnet_zones(ec2, ("availability-zone", [a, b])) == [a, b]
    # filters AND
    assert subnet_zones(ec2, ("availability-zone", [a, b]), ("cidr-block", [blocks[2]])) == [b]
    assert subnet_zones(ec2, ("availability-zone", [a]), ("cidr-block", [blocks[2]])) == []
    # wildcards: * any run, ? one character, \\ escapes
    assert subnet_zones(ec2, ("availability-zone", ["*a"])) == [a]
    assert subnet_zones(ec2, ("availability-zone", [f"{REGION}?"])) == [a, b]
    assert subnet_zones(ec2, ("availability-zone", [f"{REGION}\\?"])) == []
    assert subnet_zones(ec2, ("vpc-id", [vpc_id[:8] + "*"])) == [a, b]
    assert subnet_zones(ec2, ("vpc-id", ["vpc-nope*"])) == []
    # values are case-sensitive, booleans are true/false
    assert subnet_zones(ec2, ("state", ["AVAILABLE"])) == []
    assert subnet_zones(ec2, ("default-for-az", ["true"]), ("map-public-ip-on-launch", ["true"])) == [a, b]
    # the old camelCase names Terraform's data sources still send
    assert subnet_zones(ec2, ("availabilityZone", [b]), ("defaultForAz", ["true"])) == [b]
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]] == [vpc_id]
    # no tags on the defaults
    assert subnet_zones(ec2, ("tag:Name", ["*"])) == []
    assert subnet_zones(ec2, ("tag-key", ["Name"])) == []
    # ids and filters together: the ids, filtered
    ids = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    got = ec2.describe_subnets(SubnetIds=ids, Filters=[{"Name": "availability-zone", "Values": [a]}])["Subnets"]
    assert [s["AvailabilityZone"] for s in got] == [a]


def test_filters_on_other_resources(ec2, default_vpc, blocks):
    vpc_id = default_vpc["VpcId"]
    assert len(ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [blocks[0]]},
                                          {"Name": "state", "Values": ["available"]},
                                          {"Name": "owner-id", "Values": [ACCOUNT_ID]}])["Vpcs"]) == 1
    assert ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.0.0.0/16"]}])["Vpcs"] == []
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                   {"Name": "group-name", "Values": ["def*"]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    by_rule = ec2.describe_security_groups(Filters=[{"Name": "egress.ip-permission.cidr", "Values": ["0.0.0.0/0"]},
                                                    {"Name": "ip-permission.protocol", "Values": ["-1"]}])
    assert len(by_rule["SecurityGroups"]) == 1
    zones = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*b"]},
                                                     {"Name": "region-name", "Values": [REGION]}])
    assert [z["ZoneName"] for z in zones["AvailabilityZones"]] == [f"{REGION}b"]


@pytest.mark.parametrize("call,kwargs", [
    ("describe_vpcs", {}),
    ("describe_subnets", {}),
    ("describe_security_groups", {}),
    ("describe_availability_zones", {}),
])
def test_unknown_filter_is_invalid_parameter_value(ec2, call, kwargs):
    e = client_error(getattr(ec2, call), Filters=[{"Name": "colour", "Values": ["blue"]}], **kwargs)
    assert e.response["Error"]["Code"] == "InvalidParameterValue"
    assert e.response["Error"]["Message"] == "The filter 'colour' is invalid"


# -- explicit ids and their errors -------------------------------------------------------------------------


def test_unknown_ids_are_ec2s_not_found_errors(ec2, default_vpc):
    cases = [
        (ec2.describe_vpcs, {"VpcIds": [MISSING_VPC]}, "InvalidVpcID.NotFound",
         f"The vpc ID '{MISSING_VPC}' does not exist"),
        (ec2.describe_vpcs, {"VpcIds": ["vpc-x"]}, "InvalidVpcID.NotFound", "The vpc ID 'vpc-x' does not exist"),
        (ec2.describe_vpcs, {"VpcIds": [default_vpc["VpcId"], MISSING_VPC]}, "InvalidVpcID.NotFound", MISSING_VPC),
        (ec2.describe_subnets, {"SubnetIds": [MISSING_SUBNET]}, "InvalidSubnetID.NotFound",
         f"The subnet ID '{MISSING_SUBNET}' does not exist"),
        (ec2.describe_security_groups, {"GroupIds": [MISSING_GROUP]}, "InvalidGroup.NotFound",
         f"The security group '{MISSING_GROUP}' does not exist"),
        (ec2.describe_security_groups, {"GroupIds": ["default"]}, "InvalidGroupId.Malformed", 'Invalid id: "default"'),
        (ec2.describe_security_groups, {"GroupNames": ["nope"]}, "InvalidGroup.NotFound",
         f"The security group 'nope' does not exist in default VPC '{default_vpc['VpcId']}'"),
        (ec2.describe_availability_zones, {"ZoneNames": [f"{REGION}z"]}, "InvalidParameterValue",
         f"Invalid availability zone: [{REGION}z]"),
        (ec2.describe_availability_zones, {"ZoneIds": ["use1-az9"]}, "InvalidParameterValue", "use1-az9"),
    ]
    for call, kwargs, code, message in cases:
        e = client_error(call, **kwargs)
        assert isinstance(e, ClientError)
        assert e.response["Error"]["Code"] == code, (kwargs, e.response)
        assert message in e.response["Error"]["Message"], (kwargs, e.response)
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert e.response["ResponseMetadata"]["RequestId"]


def test_repeated_ids_answer_once(ec2, default_vpc):
    vpc_id = default_vpc["VpcId"]
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[vpc_id, vpc_id])["Vpcs"]] == [vpc_id]


def test_max_results_rules_and_pagination(server, ec2):
    e = client_error(ec2.describe_vpcs, VpcIds=[MISSING_VPC], MaxResults=5)
    assert e.response["Error"]["Code"] == "InvalidParameterCombination"
    e = client_error(ec2.describe_subnets, MaxResults=1001)
    assert e.response["Error"]["Code"] == "InvalidParameterValue"
    # botocore refuses a MaxResults under the model's minimum of 5 itself: sent by hand
    for bad in ("4", "-1", "five"):
        resp = ec2_request(server, {"Action": "DescribeSubnets", "MaxResults": bad})
        assert (resp.status, resp.error_code) == (400, "InvalidParameterValue"), resp
    e = client_error(ec2.describe_security_groups, NextToken="not-a-token")
    assert e.response["Error"]["Code"] == "InvalidPaginationToken"
    page = ec2.describe_subnets(MaxResults=5)
    assert len(page["Subnets"]) == 2 and "NextToken" not in page
    # boto3's paginator (MaxResults / NextToken) walks them all
    pages = list(ec2.get_paginator("describe_subnets").paginate(PaginationConfig={"PageSize": 5}))
    assert sum(len(p["Subnets"]) for p in pages) == 2


def test_dry_run(ec2):
    e = client_error(ec2.describe_vpcs, DryRun=True)
    assert e.response["Error"]["Code"] == "DryRunOperation"
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert ec2.describe_vpcs(DryRun=False)["Vpcs"]


def test_waiters(server):
    ec2 = server.client("ec2")
    vpc_id = default_ids(ec2)["vpc"][0]
    ec2.get_waiter("vpc_exists").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    ec2.get_waiter("subnet_available").wait(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 2})
    ec2.get_waiter("security_group_exists").wait(GroupNames=["default"], WaiterConfig={"Delay": 1, "MaxAttempts": 2})


# -- the wire: EC2's dialect -------------------------------------------------------------------------------


def test_success_xml_has_no_result_wrapper(server, default_vpc):
    resp = ec2_request(server, {"Action": "DescribeVpcs", "VpcId.1": default_vpc["VpcId"]})
    assert resp.status == 200, resp
    assert (resp.headers.get("Content-Type") or "").startswith("text/xml")
    root = ET.fromstring(resp.body)
    assert root.tag == f"{EC2_NS}DescribeVpcsResponse"
    children = [c.tag.replace(EC2_NS, "") for c in root]
    assert children == ["requestId", "vpcSet"], children
    assert root.findtext(f"{EC2_NS}requestId") == resp.request_id
    items = root.findall(f"{EC2_NS}vpcSet/{EC2_NS}item")
    assert len(items) == 1
    assert items[0].findtext(f"{EC2_NS}vpcId") == default_vpc["VpcId"]
    assert items[0].findtext(f"{EC2_NS}isDefault") == "true"


def test_error_xml_is_ec2s(server):
    resp = ec2_request(server, {"Action": "DescribeSubnets", "SubnetId.1": MISSING_SUBNET})
    assert resp.status == 400, resp
    root = ET.fromstring(resp.body)
    assert root.tag == "Response"
    assert root.findtext("Errors/Error/Code") == "InvalidSubnetID.NotFound"
    assert root.findtext("Errors/Error/Message") == f"The subnet ID '{MISSING_SUBNET}' does not exist"
    assert root.findtext("RequestID") == resp.request_id


def test_unknown_parameters_and_actions(server):
    resp = ec2_request(server, {"Action": "DescribeVpcs", "VpcIds.member.1": "vpc-1"})
    assert (resp.status, resp.error_code) == (400, "UnknownParameter"), resp
    assert b"<Response><Errors><Error>" in resp.body
    resp = ec2_request(server, {"Action": "NoSuchAction"})
    assert (resp.status, resp.error_code) == (400, "InvalidAction"), resp
    assert b"<Response><Errors><Error>" in resp.body
    resp = ec2_request(server, {"Filter.1.Value.1": "x"})  # no Action
    assert (resp.status, resp.error_code) == (400, "MissingAction"), resp
    assert b"<Response><Errors><Error>" in resp.body


def test_too_large_body_is_answered_in_ec2s_dialect(server):
    # Refused on the declared length, before routing: the credential scope still picks EC2's dialect.
    # (The body is never sent: the server answers on the headers alone.)
    resp = signed_request(server, service="ec2", headers={"Content-Type": FORM_CONTENT_TYPE,
                                                          "Content-Length": str(3 * 1024 * 1024)})
    assert resp.status == 413, resp
    assert ET.fromstring(resp.body).tag == "Response", resp


def test_a_nul_in_a_parameter_keeps_the_error_well_formed(server):
    resp = ec2_request(server, {"Action": "DescribeVpcs", "VpcId.1": "vpc-\x00<x>"})
    assert (resp.status, resp.error_code) == (400, "InvalidVpcID.NotFound"), resp
    assert "<x>" in resp.error_message


# -- authentication failures, as EC2 reports them -----------------------------------------------------------


def test_wrong_secret_is_auth_failure(server, aws):
    bad = server.client("ec2", secret_access_key="wrong/secret/Key0123456789abcdefGHIJKL")
    e = client_error(bad.describe_vpcs)
    assert e.response["Error"]["Code"] == "AuthFailure"
    assert e.response["Error"]["Message"] == "AWS was not able to validate the provided access credentials"
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    with pytest.raises(AwsCliError) as cli:
        aws("ec2", "describe-subnets", secret="wrong/secret/Key0123456789abcdefGHIJKL")
    assert cli.value.code == "AuthFailure"


def test_unknown_key_and_wrong_region_are_auth_failure(server):
    unknown = server.client("ec2", access_key_id="AKIANOSUCHKEY0000000")
    assert client_error(unknown.describe_availability_zones).response["Error"]["Code"] == "AuthFailure"
    resp = ec2_request(server, {"Action": "DescribeVpcs"}, region="eu-west-1")
    assert (resp.status, resp.error_code) == (401, "AuthFailure"), resp
    assert ET.fromstring(resp.body).tag == "Response"


def test_stale_signature_is_request_expired(server):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)
    resp = ec2_request(server, {"Action": "DescribeVpcs"}, when=when)
    assert (resp.status, resp.error_code) == (400, "RequestExpired"), resp


def test_sts_keeps_its_own_dialect(server):
    """Adding EC2's dialect changed nothing for the query protocol proper."""
    from harness import sts_request

    resp = sts_request(server, {"Action": "NoSuchAction", "Version": "2011-06-15"})
    assert resp.error_code == "InvalidAction"
    assert ET.fromstring(resp.body).tag.endswith("ErrorResponse")
    bad = sts_request(server, secret="wrong")
    assert bad.error_code == "SignatureDoesNotMatch"


# -- made once: stable across restarts, per region ---------------------------------------------------------


def test_ids_are_stable_across_restarts(make_server):
    srv = make_server("ec2-restart")
    before = default_ids(srv.client("ec2"))
    assert len(before["vpc"]) == 1 and len(before["subnets"]) == 2 and len(before["group"]) == 1
    srv.kill9_and_restart()
    assert default_ids(srv.client("ec2")) == before
    srv.stop()
    srv.start()
    ec2 = srv.client("ec2")
    assert default_ids(ec2) == before
    # still exactly one of each: a restart never makes a second default VPC
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1
    assert len(ec2.describe_subnets()["Subnets"]) == 2
    assert len(ec2.describe_security_groups()["SecurityGroups"]) == 1


def test_each_server_makes_its_own_ids(make_server, server):
    other = make_server("ec2-other")
    assert default_ids(other.client("ec2"))["vpc"] != default_ids(server.client("ec2"))["vpc"]


def test_another_region_has_its_own_zones_and_default_vpc(make_server):
    region = "eu-west-3"
    srv = make_server(uniq("ec2-region")[:20], region=region)
    ec2 = srv.client("ec2", region=region)
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"]) for z in zones] == [("eu-west-3a", "euw3-az1"), ("eu-west-3b", "euw3-az2")]
    subnets = ec2.describe_subnets()["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["eu-west-3a", "eu-west-3b"]
    assert all(s["SubnetArn"].startswith(f"arn:aws:ec2:{region}:{ACCOUNT_ID}:subnet/") for s in subnets)
