"""Unit tests of the shape validator (shapes.py) and of the response checks built on it (checks.py), on
real botocore models and deliberately broken responses: each break must be caught, with its path.

The last tests run a generated case against a stub server that answers with a broken response, to show
that the suite as a whole fails loudly when a later change breaks a shape.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import cases
import checks
import harness
import models
import shapes
import wire
from botocore.model import ServiceModel

ECS = models.service_model("ecs")
STS = models.service_model("sts")
IAM = models.service_model("iam")


def out(model: ServiceModel, op: str):
    return model.operation_model(op).output_shape


def problems_of(value, shape):
    return [str(p) for p in shapes.validate_json(value, shape)]


def assert_caught(problems: list[str], path: str, *words: str) -> None:
    hits = [p for p in problems if p.startswith(path + ":")]
    assert hits, f"nothing reported at {path}; got {problems}"
    for w in words:
        assert any(w in h for h in hits), f"{path}: expected {w!r} in {hits}"


# ---------------------------------------------------------------------------------------------------------
# JSON: a good response, then one break at a time

GOOD_TASK_DEFINITION = {
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1",
        "family": "web",
        "revision": 1,
        "status": "ACTIVE",
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "registeredAt": 1709242525.051,
        "registeredBy": "arn:aws:iam::123456789012:root",
        "volumes": [],
        "placementConstraints": [],
        "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
        "containerDefinitions": [
            {
                "name": "web",
                "image": "busybox",
                "cpu": 0,
                "essential": True,
                "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}},
                "dockerLabels": {"a": "b"},
            }
        ],
    },
    "tags": [{"key": "team", "value": "web"}],
}
TD_SHAPE = out(ECS, "RegisterTaskDefinition")


def broken(change) -> dict:
    value = copy.deepcopy(GOOD_TASK_DEFINITION)
    change(value)
    return value


def test_a_conforming_response_has_no_problems():
    assert problems_of(GOOD_TASK_DEFINITION, TD_SHAPE) == []
    shapes.check_json(GOOD_TASK_DEFINITION, TD_SHAPE)


def test_missing_required_member_is_caught():
    value = broken(lambda v: v["taskDefinition"]["containerDefinitions"][0]["logConfiguration"].pop("logDriver"))
    assert_caught(
        problems_of(value, TD_SHAPE),
        "$.taskDefinition.containerDefinitions[0].logConfiguration.logDriver",
        "required member of LogConfiguration is missing",
    )


def test_string_timestamp_is_caught():
    value = broken(lambda v: v["taskDefinition"].__setitem__("registeredAt", "2024-03-01T00:00:00Z"))
    assert_caught(problems_of(value, TD_SHAPE), "$.taskDefinition.registeredAt", "JSON number of epoch seconds", "string")


def test_unknown_member_is_caught_with_a_spelling_hint():
    value = broken(lambda v: v["taskDefinition"].__setitem__("taskDefinitionARN", "x"))
    assert_caught(problems_of(value, TD_SHAPE), "$.taskDefinition.taskDefinitionARN", "not defined by TaskDefinition",
                  "taskDefinitionArn")


def test_unknown_top_level_member_is_caught():
    value = broken(lambda v: v.__setitem__("requestId", "abc"))
    assert_caught(problems_of(value, TD_SHAPE), "$.requestId", "not defined by RegisterTaskDefinitionResponse")


def test_unknown_enum_value_is_caught():
    value = broken(lambda v: v["taskDefinition"].__setitem__("status", "RUNNING"))
    assert_caught(problems_of(value, TD_SHAPE), "$.taskDefinition.status", "'RUNNING'", "TaskDefinitionStatus")
    value = broken(lambda v: v["taskDefinition"]["containerDefinitions"][0]["portMappings"][0].__setitem__("protocol", "TCP"))
    assert_caught(problems_of(value, TD_SHAPE), "$.taskDefinition.containerDefinitions[0].portMappings[0].protocol",
                  "TransportProtocol")
    value = broken(lambda v: v["taskDefinition"]["compatibilities"].append("LAMBDA"))
    assert_caught(problems_of(value, TD_SHAPE), "$.taskDefinition.compatibilities[2]", "Compatibility")


@pytest.mark.parametrize(
    "path,value,words",
    [
        (("taskDefinition", "revision"), "1", ["expected an integer", "string"]),
        (("taskDefinition", "revision"), 1.5, ["expected an integer", "number"]),
        (("taskDefinition", "revision"), True, ["expected an integer", "boolean"]),
        (("taskDefinition", "cpu"), 256, ["expected a string", "integer"]),
        (("taskDefinition", "volumes"), {}, ["expected an array", "object"]),
        (("taskDefinition", "containerDefinitions", 0, "essential"), "true", ["expected a boolean"]),
        (("taskDefinition", "containerDefinitions", 0, "dockerLabels"), [], ["expected an object", "map"]),
        (("taskDefinition", "containerDefinitions", 0, "logConfiguration"), "awslogs", ["expected an object"]),
        (("taskDefinition", "registeredAt"), True, ["epoch seconds", "boolean"]),
        (("taskDefinition", "family"), None, ["null where string"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_wrong_types_are_caught(path, value, words):
    def change(v):
        target = v
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value

    json_path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    assert_caught(problems_of(broken(change), TD_SHAPE), json_path, *words)


def test_lengths_and_ranges_are_caught():
    value = broken(lambda v: v.__setitem__("tags", [{"key": "k" * 129, "value": "v"}]))
    assert_caught(problems_of(value, TD_SHAPE), "$.tags[0].key", "length 129 is over the model's max 128")
    value = broken(lambda v: v.__setitem__("tags", [{"key": "", "value": "v"}]))
    assert_caught(problems_of(value, TD_SHAPE), "$.tags[0].key", "under the model's min 1")
    value = broken(lambda v: v.__setitem__("tags", [{"key": f"k{i}", "value": "v"} for i in range(51)]))
    assert_caught(problems_of(value, TD_SHAPE), "$.tags", "list of 51 is over the model's max 50")
    cluster_shape = out(ECS, "CreateCluster")
    cluster = {"cluster": {"defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1001}]}}
    assert_caught(problems_of(cluster, cluster_shape), "$.cluster.defaultCapacityProviderStrategy[0].weight",
                  "over the model's max 1000")
    cluster = {"cluster": {"runningTasksCount": 2**31}}
    assert_caught(problems_of(cluster, cluster_shape), "$.cluster.runningTasksCount", "does not fit a integer")


def test_every_problem_is_reported_at_once():
    def change(v):
        td = v["taskDefinition"]
        td["registeredAt"] = "yesterday"
        td["status"] = "GONE"
        td["bogus"] = 1
        td["containerDefinitions"][0]["logConfiguration"].pop("logDriver")

    with pytest.raises(shapes.ShapeError) as e:
        shapes.check_json(broken(change), TD_SHAPE, "RegisterTaskDefinition response")
    assert len(e.value.problems) == 4
    text = str(e.value)
    for path in ("$.taskDefinition.registeredAt", "$.taskDefinition.status", "$.taskDefinition.bogus",
                 "$.taskDefinition.containerDefinitions[0].logConfiguration.logDriver"):
        assert path in text, text


def test_operation_without_output_accepts_only_an_empty_object():
    tag_out = out(ECS, "TagResource")
    assert problems_of({}, tag_out) == []
    assert_caught(problems_of({"tags": []}, tag_out), "$.tags", "not defined by TagResourceResponse")


def test_long_and_iso_timestamps_and_blobs():
    task_shape = ECS.shape_for("Task")
    assert problems_of({"version": 2**40, "createdAt": 1700000000}, task_shape) == []
    assert_caught(problems_of({"version": 2**64}, task_shape), "$.version", "does not fit a long")
    assert_caught(problems_of({"createdAt": -5}, task_shape), "$.createdAt", "plausible")


# ---------------------------------------------------------------------------------------------------------
# query protocol (XML)

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
GET_CALLER_IDENTITY = STS.operation_model("GetCallerIdentity")
ASSUME_ROLE = STS.operation_model("AssumeRole")
LIST_ROLES = IAM.operation_model("ListRoles")


def gci(result: str, *, root="GetCallerIdentityResponse", ns=STS_NS, metadata=True) -> str:
    meta = "<ResponseMetadata><RequestId>f950282d-1</RequestId></ResponseMetadata>" if metadata else ""
    return f'<{root} xmlns="{ns}"><GetCallerIdentityResult>{result}</GetCallerIdentityResult>{meta}</{root}>'


GOOD_GCI = "<Arn>arn:aws:iam::123456789012:user/dummy</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>"


def xml_problems(body: str, operation) -> list[str]:
    return [str(p) for p in shapes.validate_query_xml(body, operation)]


def test_good_query_response():
    assert xml_problems(gci(GOOD_GCI), GET_CALLER_IDENTITY) == []


def test_query_envelope_breaks_are_caught():
    assert_caught(xml_problems(gci(GOOD_GCI, root="GetCallerIdentityResult"), GET_CALLER_IDENTITY),
                  "/GetCallerIdentityResult", "root element must be <GetCallerIdentityResponse>")
    assert_caught(xml_problems(gci(GOOD_GCI, ns="https://iam.amazonaws.com/doc/2010-05-08/"), GET_CALLER_IDENTITY),
                  "/GetCallerIdentityResponse", "namespace")
    assert_caught(xml_problems(gci(GOOD_GCI, metadata=False), GET_CALLER_IDENTITY),
                  "/GetCallerIdentityResponse/ResponseMetadata", "missing")
    body = f'<GetCallerIdentityResponse xmlns="{STS_NS}"><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></GetCallerIdentityResponse>'
    assert_caught(xml_problems(body, GET_CALLER_IDENTITY), "/GetCallerIdentityResponse/GetCallerIdentityResult", "missing")
    assert_caught(xml_problems("<not xml", GET_CALLER_IDENTITY), "/", "not well-formed XML")


def test_query_unknown_element_and_length_are_caught():
    body = gci(GOOD_GCI + "<UserName>dummy</UserName>")
    assert_caught(xml_problems(body, GET_CALLER_IDENTITY), "/GetCallerIdentityResponse/GetCallerIdentityResult/UserName",
                  "not defined by GetCallerIdentityResponse")
    body = gci("<Arn>arn:aws</Arn><UserId>AIDA</UserId><Account>123456789012</Account>")
    assert_caught(xml_problems(body, GET_CALLER_IDENTITY), "/GetCallerIdentityResponse/GetCallerIdentityResult/Arn",
                  "under the model's min 20")
    body = gci("<arn>arn:aws:iam::123456789012:user/dummy</arn>")
    assert_caught(xml_problems(body, GET_CALLER_IDENTITY), "/GetCallerIdentityResponse/GetCallerIdentityResult/arn",
                  "spells it 'Arn'")


def assume_role(credentials: str, extra: str = "") -> str:
    return (f'<AssumeRoleResponse xmlns="{STS_NS}"><AssumeRoleResult><Credentials>{credentials}</Credentials>'
            f"<AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId>"
            f"<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser>{extra}</AssumeRoleResult>"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>")


GOOD_CREDS = ("<AccessKeyId>ASIAEXAMPLEEXAMPLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey>"
              "<SessionToken>t</SessionToken><Expiration>2026-11-28T07:49:46.123Z</Expiration>")


def test_query_required_timestamp_and_integer():
    assert xml_problems(assume_role(GOOD_CREDS, "<PackedPolicySize>6</PackedPolicySize>"), ASSUME_ROLE) == []
    base = "/AssumeRoleResponse/AssumeRoleResult"
    no_token = GOOD_CREDS.replace("<SessionToken>t</SessionToken>", "")
    assert_caught(xml_problems(assume_role(no_token), ASSUME_ROLE), f"{base}/Credentials/SessionToken",
                  "required member of Credentials is missing")
    epoch = GOOD_CREDS.replace("2026-11-28T07:49:46.123Z", "1795848586")
    assert_caught(xml_problems(assume_role(epoch), ASSUME_ROLE), f"{base}/Credentials/Expiration", "iso8601")
    assert_caught(xml_problems(assume_role(GOOD_CREDS, "<PackedPolicySize>six</PackedPolicySize>"), ASSUME_ROLE),
                  f"{base}/PackedPolicySize", "expected an integer")
    assert_caught(xml_problems(assume_role(GOOD_CREDS, "<PackedPolicySize>-1</PackedPolicySize>"), ASSUME_ROLE),
                  f"{base}/PackedPolicySize", "under the model's min 0")
    twice = GOOD_CREDS + "<SessionToken>u</SessionToken>"
    assert_caught(xml_problems(assume_role(twice), ASSUME_ROLE), f"{base}/Credentials/SessionToken", "more than once")


def list_roles(roles: str, truncated: str = "false") -> str:
    return (f'<ListRolesResponse xmlns="{IAM_NS}"><ListRolesResult><Roles>{roles}</Roles>'
            f"<IsTruncated>{truncated}</IsTruncated></ListRolesResult>"
            "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListRolesResponse>")


ROLE = ("<member><Path>/</Path><RoleName>r</RoleName><RoleId>AROAEXAMPLEEXAMPLE1</RoleId>"
        "<Arn>arn:aws:iam::123456789012:role/r</Arn><CreateDate>2024-01-01T00:00:00Z</CreateDate>"
        "<Tags><member><Key>team</Key><Value>web</Value></member></Tags></member>")


def test_query_lists_booleans_and_nested_required():
    assert xml_problems(list_roles(ROLE), LIST_ROLES) == []
    base = "/ListRolesResponse/ListRolesResult"
    assert_caught(xml_problems(list_roles(ROLE.replace("<member>", "<item>", 1).replace("</Tags></member>", "</Tags></item>")), LIST_ROLES),
                  f"{base}/Roles/item", "items must be <member> elements")
    assert_caught(xml_problems(list_roles(ROLE, truncated="False"), LIST_ROLES), f"{base}/IsTruncated", "true or false")
    no_date = ROLE.replace("<CreateDate>2024-01-01T00:00:00Z</CreateDate>", "")
    assert_caught(xml_problems(list_roles(no_date), LIST_ROLES), f"{base}/Roles/member[1]/CreateDate", "required member of Role")
    too_many = "".join(f"<member><Key>k{i}</Key><Value>v</Value></member>" for i in range(51))
    role = ROLE.replace("<member><Key>team</Key><Value>web</Value></member>", too_many)
    assert_caught(xml_problems(list_roles(role), LIST_ROLES), f"{base}/Roles/member[1]/Tags", "list of 51 is over the model's max 50")


# ---------------------------------------------------------------------------------------------------------
# the checks on whole exchanges, and a generated case against a stub that answers wrongly


def exchange(status: int, body: bytes, headers: dict | None = None) -> wire.Exchange:
    import email.message

    msg = email.message.Message()
    for k, v in {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "rid", **(headers or {})}.items():
        msg[k] = v
    ex = wire.Exchange("DescribeClusters", {}, b"{}")
    ex.response = harness.RawResponse(status, msg, body)
    return ex


DESCRIBE_CLUSTERS = ECS.operation_model("DescribeClusters")


def test_check_success_rejects_a_broken_response_with_its_path():
    good = json.dumps({"clusters": [{"clusterName": "a", "status": "ACTIVE", "runningTasksCount": 0}], "failures": []})
    checks.check_success("t", DESCRIBE_CLUSTERS, exchange(200, good.encode()))
    bad = json.dumps({"clusters": [{"clusterName": "a", "runningTasksCount": "0"}], "failures": []})
    with pytest.raises(checks.ServerNonConformance) as e:
        checks.check_success("t", DESCRIBE_CLUSTERS, exchange(200, bad.encode()))
    assert "$.clusters[0].runningTasksCount: expected an integer" in str(e.value)
    assert "response: HTTP 200" in str(e.value)


def test_check_client_error_rules():
    def err(code, status=400, message="m", header=True):
        headers = {"x-amzn-ErrorType": code} if header else {}
        return exchange(status, json.dumps({"__type": code, "message": message}).encode(), headers)

    assert checks.check_client_error("t", DESCRIBE_CLUSTERS, err("InvalidParameterException")) == "InvalidParameterException"
    assert checks.check_client_error("t", DESCRIBE_CLUSTERS, err("UnrecognizedClientException")) == "UnrecognizedClientException"
    for bad, why in [
        (err("ClusterNotFoundException"), "neither modelled for DescribeClusters"),
        (err("InvalidParameterException", status=500), "expected a 4xx, got HTTP 500"),
        (err("InvalidParameterException", message=""), "empty error message"),
        (err("InvalidParameterException", header=False), "x-amzn-ErrorType"),
        (exchange(400, b"", {}), "no error code"),
    ]:
        with pytest.raises(checks.ServerNonConformance) as e:
            checks.check_client_error("t", DESCRIBE_CLUSTERS, bad)
        assert why in str(e.value)
    dropped = wire.Exchange("DescribeClusters", {}, b"{}", transport_error="ConnectionResetError: reset")
    with pytest.raises(checks.ServerNonConformance, match="connection was dropped"):
        checks.check_client_error("t", DESCRIBE_CLUSTERS, dropped)


class _Stub:
    """Duck-types harness.SkiffServer for wire: a loopback HTTP server answering every POST with a fixed
    response (it does not check signatures)."""

    def __init__(self, status: int, body: bytes):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "stub")
                self.send_header("Content-Length", str(len(stub.body)))
                self.end_headers()
                self.wfile.write(stub.body)

        self.status, self.body = status, body
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.host, self.port = "127.0.0.1", self.httpd.server_address[1]
        self.access_key_id, self.secret_access_key = harness.ACCESS_KEY_ID, harness.SECRET_ACCESS_KEY
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub():
    made = []

    def make(status, body):
        s = _Stub(status, body)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _generated(op_name: str, name: str) -> cases.Case:
    op = models.Implemented("ecs", op_name, "json")
    return next(c for c in cases.operation_cases(op, models.operation_model(op)) if c.name == name)


@pytest.mark.parametrize(
    "body,path",
    [
        ({"clusters": [{"clusterName": "a", "registeredAt": 1}], "failures": []}, "$.clusters[0].registeredAt"),
        ({"clusters": [{"clusterName": "a", "status": "ACTIVE", "tags": [{"key": "k", "value": 1}]}]}, "$.clusters[0].tags[0].value"),
        ({"clusters": [], "failures": [{"arn": "a", "reason": "MISSING"}], "nextToken": "x"}, "$.nextToken"),
    ],
    ids=["unknown-member", "wrong-type", "unknown-top-level-member"],
)
def test_a_generated_wellformed_case_fails_loudly_on_a_broken_server(stub, body, path):
    from world import PlaceholderWorld

    server = stub(200, json.dumps(body).encode())
    case = _generated("DescribeClusters", "wellformed")
    with pytest.raises(checks.ServerNonConformance) as e:
        checks.run_case(server, case, PlaceholderWorld())
    assert path in str(e.value)


def test_a_generated_mutated_case_fails_loudly_on_a_5xx_or_unmodeled_code(stub):
    from world import PlaceholderWorld

    case = _generated("DeleteCluster", "missing.cluster")
    server = stub(500, b'{"__type":"ServerException","message":"boom"}')
    with pytest.raises(checks.ServerNonConformance, match="expected a 4xx, got HTTP 500"):
        checks.run_case(server, case, PlaceholderWorld())
    server = stub(400, b'{"__type":"NoSuchThingException","message":"x"}')
    with pytest.raises(checks.ServerNonConformance, match="neither modelled for DeleteCluster"):
        checks.run_case(server, case, PlaceholderWorld())
    server = stub(200, b'{"cluster":{}}')
    with pytest.raises(checks.ServerNonConformance, match="the call succeeded"):
        checks.run_case(server, case, PlaceholderWorld())


def test_members_kept_apart_stay_out_of_the_full_call_and_are_mutated_from_their_own():
    """FULL_APART (ECR's DescribeImages refuses maxResults with imageIds): the full call leaves maxResults and
    filter out, each has its own well-formed call, and their mutations start from that call, not the full one."""
    from world import PlaceholderWorld

    op = models.Implemented("ecr", "DescribeImages", "json")
    generated = {c.name: c for c in cases.operation_cases(op, models.operation_model(op))}
    w = PlaceholderWorld()
    full = generated["wellformed.full"].build(w).payload
    assert "imageIds" in full and "maxResults" not in full and "filter" not in full
    assert generated["optional.maxResults"].build(w).payload.keys() == {"repositoryName", "maxResults"}
    over = generated["range.maxResults.over"].build(w).payload
    assert over["maxResults"] == 1001 and "imageIds" not in over
    enum = generated["enum.filter.tagStatus"].build(w).payload
    assert enum["filter"]["tagStatus"] == cases.UNKNOWN_ENUM and "imageIds" not in enum
    assert "imageIds" in generated["length.imageIds[0].imageTag.over"].build(w).payload


def test_empty_output_collections_pass_a_min():
    # ECR answers a BatchDeleteImage that deleted nothing with "imageIds": [], although the shared
    # ImageIdentifierList shape has min 1 (an input constraint); one element under a larger min still fails.
    ecr = models.service_model("ecr")
    shape = out(ecr, "BatchDeleteImage")
    failure = {"imageId": {"imageTag": "nope"}, "failureCode": "ImageNotFound", "failureReason": "gone"}
    assert problems_of({"imageIds": [], "failures": [failure]}, shape) == []
    assert_caught(problems_of({"failures": [{"imageId": {"imageTag": ""}}]}, shape),
                  "$.failures[0].imageId.imageTag", "under the model's min 1")


# ---------------------------------------------------------------------------------------------------------
# EC2's query dialect (XML without a Result wrapper, <item> lists, <Response><Errors> errors)

EC2 = models.service_model("ec2")
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
DESCRIBE_SUBNETS = EC2.operation_model("DescribeSubnets")
DESCRIBE_VPCS = EC2.operation_model("DescribeVpcs")

SUBNET = ("<item><subnetId>subnet-0123456789abcdef0</subnetId><vpcId>vpc-0123456789abcdef0</vpcId>"
          "<cidrBlock>172.31.0.0/20</cidrBlock><availableIpAddressCount>4091</availableIpAddressCount>"
          "<defaultForAz>true</defaultForAz><state>available</state><tagSet><item><key>Name</key>"
          "<value>a</value></item></tagSet></item>")


def subnets(items: str, *, root="DescribeSubnetsResponse", ns=EC2_NS, request_id="<requestId>r</requestId>",
            extra="") -> str:
    return f'<{root} xmlns="{ns}">{request_id}<subnetSet>{items}</subnetSet>{extra}</{root}>'


def ec2_problems(body: str, operation=DESCRIBE_SUBNETS) -> list[str]:
    return [str(p) for p in shapes.validate_ec2_xml(body, operation)]


def test_good_ec2_responses():
    assert ec2_problems(subnets(SUBNET)) == []
    assert ec2_problems(subnets(SUBNET, extra="<nextToken>t</nextToken>")) == []
    assert ec2_problems(subnets("")) == []
    # the model's namespace has no trailing slash, EC2's responses do: both pass
    assert ec2_problems(subnets(SUBNET, ns=EC2_NS.rstrip("/"))) == []
    empty = f'<DescribeVpcsResponse xmlns="{EC2_NS}"><requestId>r</requestId><vpcSet/></DescribeVpcsResponse>'
    assert ec2_problems(empty, DESCRIBE_VPCS) == []


def test_ec2_envelope_breaks_are_caught():
    assert_caught(ec2_problems(subnets(SUBNET, root="DescribeSubnetsResult")), "/DescribeSubnetsResult",
                  "root element must be <DescribeSubnetsResponse>")
    assert_caught(ec2_problems(subnets(SUBNET, ns=STS_NS)), "/DescribeSubnetsResponse", "namespace")
    assert_caught(ec2_problems(subnets(SUBNET, request_id="")), "/DescribeSubnetsResponse/requestId", "exactly once")
    wrapped = (f'<DescribeSubnetsResponse xmlns="{EC2_NS}"><requestId>r</requestId><DescribeSubnetsResult>'
               f"<subnetSet>{SUBNET}</subnetSet></DescribeSubnetsResult></DescribeSubnetsResponse>")
    assert_caught(ec2_problems(wrapped), "/DescribeSubnetsResponse/DescribeSubnetsResult", "not defined by")
    metadata = subnets(SUBNET, extra="<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>")
    assert_caught(ec2_problems(metadata), "/DescribeSubnetsResponse/ResponseMetadata", "not defined by")


def test_ec2_members_items_and_scalars_are_checked():
    base = "/DescribeSubnetsResponse/subnetSet"
    assert_caught(ec2_problems(subnets(SUBNET.replace("<item>", "<member>", 1).replace("</tagSet></item>", "</tagSet></member>"))),
                  f"{base}/member", "items must be <item> elements")
    assert_caught(ec2_problems(subnets(SUBNET.replace("subnetId>", "SubnetId>"))), f"{base}/item[1]/SubnetId",
                  "spells it 'subnetId'")
    assert_caught(ec2_problems(subnets(SUBNET.replace(">4091<", ">many<"))), f"{base}/item[1]/availableIpAddressCount",
                  "expected an integer")
    assert_caught(ec2_problems(subnets(SUBNET.replace(">true<", ">True<"))), f"{base}/item[1]/defaultForAz",
                  "true or false")
    assert_caught(ec2_problems(subnets(SUBNET.replace(">available<", ">ready<"))), f"{base}/item[1]/state", "enum")
    assert_caught(ec2_problems(subnets(SUBNET.replace("<key>", "<Key>").replace("</key>", "</Key>"))),
                  f"{base}/item[1]/tagSet/item[1]/Key", "spells it 'key'")


def ec2_exchange(status: int, body: bytes) -> wire.Exchange:
    ex = exchange(status, body, {"Content-Type": "text/xml"})
    ex.operation = "DescribeSubnets"
    return ex


def test_ec2_success_and_error_checks():
    checks.check_success("t", DESCRIBE_SUBNETS, ec2_exchange(200, subnets(SUBNET).encode()))
    good = (b"<Response><Errors><Error><Code>InvalidSubnetID.NotFound</Code><Message>The subnet ID 'subnet-1' "
            b"does not exist</Message></Error></Errors><RequestID>r</RequestID></Response>")
    assert checks.check_client_error("t", DESCRIBE_SUBNETS, ec2_exchange(400, good)) == "InvalidSubnetID.NotFound"
    assert checks.check_client_error("t", DESCRIBE_SUBNETS, ec2_exchange(401, good.replace(
        b"InvalidSubnetID.NotFound", b"AuthFailure"))) == "AuthFailure"
    query_style = (b'<ErrorResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><Error><Type>Sender</Type>'
                   b"<Code>InvalidParameterValue</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>")
    for bad, why in [
        (good.replace(b"InvalidSubnetID.NotFound", b"InvalidVpcID.NotFound"), "neither modelled for DescribeSubnets"),
        (good.replace(b"RequestID", b"RequestId"), "<RequestID>"),
        (query_style, "not <Response>"),
    ]:
        with pytest.raises(checks.ServerNonConformance) as e:
            checks.check_client_error("t", DESCRIBE_SUBNETS, ec2_exchange(400, bad))
        assert why in str(e.value)


def test_ec2_requests_are_flattened_as_botocore_does():
    from world import PlaceholderWorld

    params = wire.query_params(DESCRIBE_SUBNETS, {
        "SubnetIds": ["subnet-1", "subnet-2"], "DryRun": False,
        "Filters": [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}],
    })
    assert params == {
        "Action": "DescribeSubnets", "Version": "2016-11-15", "SubnetId.1": "subnet-1", "SubnetId.2": "subnet-2",
        "DryRun": "false", "Filter.1.Name": "vpc-id", "Filter.1.Value.1": "vpc-1", "Filter.1.Value.2": "vpc-2",
    }
    assert wire.form_name(DESCRIBE_SUBNETS, "DryRun") == "DryRun"
    assert wire.form_name(DESCRIBE_SUBNETS, "SubnetIds") == "SubnetId"
    op = models.Implemented("ec2", "DescribeSubnets", "ec2")
    generated = {c.name: c for c in cases.operation_cases(op, models.operation_model(op))}
    assert generated["type.DryRun"].build(PlaceholderWorld()).form_overrides == {"DryRun": "maybe"}
    full = generated["wellformed.full"].build(PlaceholderWorld()).payload
    assert "SubnetIds" in full and "MaxResults" not in full
