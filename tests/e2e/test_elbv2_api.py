"""Elastic Load Balancing v2, the control plane: load balancers (each on its own address of the server's --lb-cidr, its
DNSName), target groups and ip targets, listeners, rules and tags, through boto3 and the AWS CLI against a
real server. (The traffic itself is tests/e2e/test_lb.py's.)"""

import ipaddress

import pytest
from botocore.exceptions import ClientError

from harness import AwsCliError, uniq


@pytest.fixture(scope="session")
def elb(server):
    return server.client("elbv2")


@pytest.fixture(scope="session")
def network(server):
    ec2 = server.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    return {"vpc": vpc["VpcId"], "cidr": vpc["CidrBlock"], "subnets": [s["SubnetId"] for s in subnets], "group": group,
            "lb_block": ipaddress.ip_network(server.lb_cidr)}


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def new_lb(elb, network, **kw):
    return elb.create_load_balancer(Name=uniq("lb")[-32:], Subnets=network["subnets"], **kw)["LoadBalancers"][0]


def new_tg(elb, network, protocol="HTTP", port=8080, **kw):
    return elb.create_target_group(Name=uniq("tg")[-32:], Protocol=protocol, Port=port, VpcId=network["vpc"],
                                   TargetType="ip", **kw)["TargetGroups"][0]


def test_load_balancer_lifecycle(elb, network):
    lb = new_lb(elb, network, Tags=[{"Key": "team", "Value": "web"}])
    arn = lb["LoadBalancerArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/")
    assert len(arn.rsplit("/", 1)[1]) == 16
    address = ipaddress.ip_address(lb["DNSName"])
    assert address in network["lb_block"]
    assert lb["State"]["Code"] == "active" and lb["Scheme"] == "internet-facing" and lb["Type"] == "application"
    assert lb["SecurityGroups"] == [network["group"]]
    zones = sorted(z["ZoneName"] for z in lb["AvailabilityZones"])
    assert zones == ["us-east-1a", "us-east-1b"]
    assert all(z["LoadBalancerAddresses"][0]["IpAddress"] == lb["DNSName"] for z in lb["AvailabilityZones"])
    other = new_lb(elb, network)
    assert other["DNSName"] != lb["DNSName"]

    described = elb.describe_load_balancers(Names=[lb["LoadBalancerName"]])["LoadBalancers"]
    assert [d["LoadBalancerArn"] for d in described] == [arn]
    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60" and attrs["deletion_protection.enabled"] == "false"
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "120"},
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    with pytest.raises(ClientError) as e:
        elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "colour", "Value": "x"}])
    assert code(e.value) == "ValidationError"
    with pytest.raises(elb.exceptions.OperationNotPermittedException):
        elb.delete_load_balancer(LoadBalancerArn=arn)
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)
    with pytest.raises(elb.exceptions.LoadBalancerNotFoundException):
        elb.describe_load_balancers(LoadBalancerArns=[arn])
    # The address is free again: the next load balancer may take it.
    again = new_lb(elb, network)
    assert ipaddress.ip_address(again["DNSName"]) in network["lb_block"]


def test_load_balancer_validation(elb, network):
    with pytest.raises(elb.exceptions.InvalidConfigurationRequestException):
        elb.create_load_balancer(Name=uniq("one"), Subnets=network["subnets"][:1])
    nlb = elb.create_load_balancer(Name=uniq("nlb"), Type="network", Subnets=network["subnets"][:1])
    assert nlb["LoadBalancers"][0]["LoadBalancerArn"].split(":")[5].startswith("loadbalancer/net/")
    with pytest.raises(elb.exceptions.SubnetNotFoundException):
        elb.create_load_balancer(Name=uniq("x"), Subnets=["subnet-0000000000000dead", network["subnets"][0]])
    with pytest.raises(elb.exceptions.InvalidSecurityGroupException):
        elb.create_load_balancer(Name=uniq("x"), Subnets=network["subnets"], SecurityGroups=["sg-0000000000000dead"])
    lb = new_lb(elb, network)
    with pytest.raises(elb.exceptions.DuplicateLoadBalancerNameException):
        elb.create_load_balancer(Name=lb["LoadBalancerName"], Subnets=network["subnets"])


def test_paging_load_balancers(elb, network):
    for _ in range(3):
        new_lb(elb, network)
    seen, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = elb.describe_load_balancers(PageSize=2, **kw)
        assert len(page["LoadBalancers"]) <= 2
        seen += [lb["LoadBalancerArn"] for lb in page["LoadBalancers"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert len(seen) == len(set(seen)) >= 3
    assert len(seen) == len(elb.describe_load_balancers()["LoadBalancers"])


def test_target_groups_and_targets(elb, network):
    tg = new_tg(elb, network)
    assert tg["HealthCheckPath"] == "/" and tg["HealthCheckIntervalSeconds"] == 30
    assert tg["HealthCheckTimeoutSeconds"] == 5 and tg["Matcher"] == {"HttpCode": "200"}
    assert tg["TargetType"] == "ip" and tg["HealthCheckPort"] == "traffic-port"
    tcp = new_tg(elb, network, protocol="TCP", port=5432)
    assert "HealthCheckPath" not in tcp and tcp["HealthCheckTimeoutSeconds"] == 10
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name=uniq("i"), Protocol="HTTP", Port=80, VpcId=network["vpc"], TargetType="instance")
    assert code(e.value) == "ValidationError" and "ip" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        elb.create_target_group(Name=uniq("i"), Protocol="HTTP", Port=80, VpcId=network["vpc"], TargetType="ip",
                                HealthCheckIntervalSeconds=301)
    assert code(e.value) == "ValidationError"
    arn = tg["TargetGroupArn"]
    modified = elb.modify_target_group(TargetGroupArn=arn, HealthCheckPath="/healthz", HealthyThresholdCount=3)
    assert modified["TargetGroups"][0]["HealthCheckPath"] == "/healthz"
    attrs = elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "10"},
        {"Key": "stickiness.enabled", "Value": "true"}])["Attributes"]
    attrs = {a["Key"]: a["Value"] for a in attrs}
    assert attrs["deregistration_delay.timeout_seconds"] == "10" and attrs["stickiness.type"] == "lb_cookie"
    with pytest.raises(ClientError) as e:
        elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "3601"}])
    assert code(e.value) == "ValidationError"

    a, b = network["cidr"].split(".")[:2]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": f"{a}.{b}.1.10"}, {"Id": f"{a}.{b}.1.11", "Port": 9000}])
    with pytest.raises(elb.exceptions.InvalidTargetException):
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.255.0.1"}])
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": f"{a}.{b}.1.11", "Port": 9000}])
    with pytest.raises(elb.exceptions.InvalidTargetException):
        elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": f"{a}.{b}.1.11", "Port": 9000}])
    elb.delete_target_group(TargetGroupArn=arn)
    with pytest.raises(elb.exceptions.TargetGroupNotFoundException):
        elb.describe_target_groups(TargetGroupArns=[arn])


def test_listeners_rules_and_tags(elb, network):
    lb = new_lb(elb, network)
    lb_arn = lb["LoadBalancerArn"]
    tg = new_tg(elb, network)
    tg2 = new_tg(elb, network)
    listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    l_arn = listener["ListenerArn"]
    assert l_arn.startswith(lb_arn.replace(":loadbalancer/", ":listener/") + "/")
    action = listener["DefaultActions"][0]
    assert action["TargetGroupArn"] == tg["TargetGroupArn"]
    assert action["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 1}]
    with pytest.raises(elb.exceptions.DuplicateListenerException):
        elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    with pytest.raises(elb.exceptions.UnsupportedProtocolException) as e:
        elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443, DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    assert "certificates" in e.value.response["Error"]["Message"]
    # A target group serves one load balancer.
    other = new_lb(elb, network)
    with pytest.raises(elb.exceptions.TargetGroupAssociationLimitException):
        elb.create_listener(LoadBalancerArn=other["LoadBalancerArn"], Protocol="HTTP", Port=80,
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    assert elb.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"][0]["LoadBalancerArns"] == [lb_arn]
    with pytest.raises(elb.exceptions.ResourceInUseException):
        elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])

    weighted = {"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 3},
                         {"TargetGroupArn": tg2["TargetGroupArn"], "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}
    rule = elb.create_rule(ListenerArn=l_arn, Priority=10, Conditions=[
        {"Field": "path-pattern", "Values": ["/api/*"]},
        {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "POST"]}}],
        Actions=[weighted], Tags=[{"Key": "k", "Value": "v"}])["Rules"][0]
    assert rule["Priority"] == "10" and rule["IsDefault"] is False
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    redirect = elb.create_rule(ListenerArn=l_arn, Priority=20, Conditions=[
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["old.example.com"]}}],
        Actions=[{"Type": "redirect", "RedirectConfig": {"Host": "new.example.com", "StatusCode": "HTTP_301"}}])["Rules"][0]
    assert redirect["Actions"][0]["RedirectConfig"]["Path"] == "/#{path}"
    with pytest.raises(elb.exceptions.PriorityInUseException):
        elb.create_rule(ListenerArn=l_arn, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/x"]}],
                        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    rules = elb.describe_rules(ListenerArn=l_arn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    assert rules[-1]["IsDefault"] is True
    swapped = elb.set_rule_priorities(RulePriorities=[{"RuleArn": rule["RuleArn"], "Priority": 30}])["Rules"]
    assert swapped[0]["Priority"] == "30"
    with pytest.raises(elb.exceptions.OperationNotPermittedException):
        elb.delete_rule(RuleArn=rules[-1]["RuleArn"])
    elb.modify_rule(RuleArn=redirect["RuleArn"], Actions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "MessageBody": "later"}}])

    elb.add_tags(ResourceArns=[lb_arn, l_arn, rule["RuleArn"]], Tags=[{"Key": "env", "Value": "test"}])
    elb.remove_tags(ResourceArns=[rule["RuleArn"]], TagKeys=["k"])
    tags = {d["ResourceArn"]: d["Tags"] for d in elb.describe_tags(
        ResourceArns=[lb_arn, l_arn, rule["RuleArn"]])["TagDescriptions"]}
    assert tags[rule["RuleArn"]] == [{"Key": "env", "Value": "test"}]
    assert tags[lb_arn] == [{"Key": "env", "Value": "test"}]
    with pytest.raises(elb.exceptions.TooManyTagsException):
        elb.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])

    modified = elb.modify_listener(ListenerArn=l_arn, Port=8080)["Listeners"][0]
    assert modified["Port"] == 8080
    elb.delete_load_balancer(LoadBalancerArn=lb_arn)
    with pytest.raises(elb.exceptions.ListenerNotFoundException):
        elb.describe_listeners(ListenerArns=[l_arn])
    # Its listeners and rules went with it: the target groups are free.
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


def test_aws_cli(aws, network):
    name = uniq("cli")[-32:]
    out = aws("elbv2", "create-load-balancer", "--name", name, "--subnets", *network["subnets"])
    lb = out["LoadBalancers"][0]
    assert ipaddress.ip_address(lb["DNSName"]) in network["lb_block"]
    tg = aws("elbv2", "create-target-group", "--name", uniq("clitg")[-32:], "--protocol", "HTTP", "--port", "80",
             "--vpc-id", network["vpc"], "--target-type", "ip")["TargetGroups"][0]
    listener = aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"], "--protocol", "HTTP",
                   "--port", "80", "--default-actions", f"Type=forward,TargetGroupArn={tg['TargetGroupArn']}")
    assert listener["Listeners"][0]["Port"] == 80
    listed = aws("elbv2", "describe-listeners", "--load-balancer-arn", lb["LoadBalancerArn"])["Listeners"]
    assert len(listed) == 1
    with pytest.raises(AwsCliError) as e:
        aws("elbv2", "describe-load-balancers", "--names", uniq("missing"))
    assert "LoadBalancerNotFound" in e.value.stderr
    aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb["LoadBalancerArn"])
