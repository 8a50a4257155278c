"""Hostile and broken requests, properly signed, sent raw: malformed JSON, wrong types, missing required
members, invalid enum values, oversized and truncated bodies, unknown operations, idle connections.

AWS answers these with a 4xx and an error class of the service (ECS: ClientException,
InvalidParameterException; AWS JSON protocol level: SerializationException, UnknownOperationException), with
a message naming the member that is wrong. None may answer 5xx, and none may leave a partial record."""

import hashlib
import http.client
import json
import socket
import time

import pytest

from harness import (
    ECS_CONTENT_TYPE,
    ECS_TARGET_PREFIX,
    FORM_CONTENT_TYPE,
    amz_date,
    cluster_arn,
    ecs_request,
    eventually,
    fargate_task_definition,
    send_raw,
    signed_request,
    sigv4_signature,
    sts_request,
    uniq,
)

PARSE_ERRORS = ("SerializationException", "ClientException", "InvalidParameterException")
VALIDATION_ERRORS = ("ClientException", "InvalidParameterException")


def assert_rejected(resp, codes, mentions=None):
    assert 400 <= resp.status < 500, f"expected a 4xx, got {resp.status}: {resp!r}"
    assert resp.error_code in codes, f"expected one of {codes}, got {resp.error_code}: {resp!r}"
    assert resp.headers.get("x-amzn-ErrorType"), f"no x-amzn-ErrorType header: {resp.headers}"
    if mentions:
        msg = resp.error_message.lower()
        assert any(m.lower() in msg for m in mentions), f"message does not name {mentions}: {resp.error_message!r}"


def families(ecs):
    return {f for p in ecs.get_paginator("list_task_definition_families").paginate(status="ALL") for f in p["families"]}


def assert_no_family(ecs, family):
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []
    assert ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"] == []
    assert family not in families(ecs)


def assert_no_cluster(ecs, name):
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


# -- malformed JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"family": "FAMILY", "containerDefinitions": [',
        b'{"family": "FAMILY", containerDefinitions: []}',
        b'{"family": "FAMILY"}}',
        b"\xff\xfe{\x00}",
        b"[]",
        b'"FAMILY"',
        b"null",
        b"42",
        b"not json at all FAMILY",
        b'{"family": "FAMILY", "containerDefinitions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["truncated", "unquoted-key", "trailing-brace", "binary", "array", "string", "null", "number", "text",
         "nested-100k"],
)
def test_malformed_json(server, ecs, body):
    family = uniq("malformed")
    resp = ecs_request(server, "RegisterTaskDefinition", body.replace(b"FAMILY", family.encode()))
    assert_rejected(resp, PARSE_ERRORS)
    assert_no_family(ecs, family)


# -- wrong types -------------------------------------------------------------------------------------------


def _td(family, **kw):
    return fargate_task_definition(family, **kw)


WRONG_TYPES = {
    "family-object": (lambda f: dict(_td(f), family={"name": f}), "family"),
    "container-definitions-string": (lambda f: _td(f, containerDefinitions="web"), "containerDefinitions"),
    "container-definitions-object": (lambda f: _td(f, containerDefinitions={"name": "web"}), "containerDefinitions"),
    "container-port-string": (lambda f: _td(f, containerDefinitions=[
        {"name": "web", "image": "busybox", "portMappings": [{"containerPort": "eighty"}]}]), "containerPort"),
    "essential-string": (lambda f: _td(f, containerDefinitions=[
        {"name": "web", "image": "busybox", "essential": "yes please"}]), "essential"),
    "container-cpu-string": (lambda f: _td(f, containerDefinitions=[
        {"name": "web", "image": "busybox", "cpu": "lots"}]), "cpu"),
    "command-string": (lambda f: _td(f, containerDefinitions=[
        {"name": "web", "image": "busybox", "command": "echo hi"}]), "command"),
    "environment-map": (lambda f: _td(f, containerDefinitions=[
        {"name": "web", "image": "busybox", "environment": {"A": "1"}}]), "environment"),
    "tags-map": (lambda f: dict(_td(f), tags={"k": "v"}), "tags"),
    "memory-object": (lambda f: _td(f, memory={"mib": 512}), "memory"),
    "ephemeral-size-string": (lambda f: _td(f, ephemeralStorage={"sizeInGiB": "fifty"}), "sizeInGiB"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES), ids=list(WRONG_TYPES))
def test_wrong_types_register_task_definition(server, ecs, case):
    make, field = WRONG_TYPES[case]
    family = uniq("types")
    resp = ecs_request(server, "RegisterTaskDefinition", make(family))
    assert_rejected(resp, PARSE_ERRORS, mentions=[field])
    if case != "family-object":
        assert_no_family(ecs, family)


@pytest.mark.parametrize(
    "operation,payload,field",
    [
        ("CreateCluster", {"clusterName": ["a", "b"]}, "clusterName"),
        ("CreateCluster", {"clusterName": "NAME", "tags": [{"key": 1.5, "value": {"x": 1}}]}, "key"),
        ("CreateCluster", {"clusterName": "NAME", "settings": "containerInsights"}, "settings"),
        ("DescribeClusters", {"clusters": "NAME"}, "clusters"),
        ("ListClusters", {"maxResults": "ten"}, "maxResults"),
        ("ListClusters", {"maxResults": 10.5}, "maxResults"),
        ("ListClusters", {"maxResults": 1e400}, "maxResults"),
        ("ListClusters", {"maxResults": 99999999999999999999999}, "maxResults"),
        ("DescribeTaskDefinition", {"taskDefinition": ["a"]}, "taskDefinition"),
        ("DeleteTaskDefinitions", {"taskDefinitions": "a:1"}, "taskDefinitions"),
    ],
    ids=["cluster-name-list", "tag-key-number", "settings-string", "clusters-string", "max-results-string",
         "max-results-float", "max-results-huge-float", "max-results-bignum", "td-list", "tds-string"],
)
def test_wrong_types_other_operations(server, ecs, operation, payload, field):
    name = uniq("wt")
    # json.dumps writes 1e400 (float infinity) as Infinity, which is not JSON: put the literal back.
    body = json.dumps(payload).replace("NAME", name).replace("Infinity", "1e400")
    resp = ecs_request(server, operation, body.encode())
    assert_rejected(resp, PARSE_ERRORS, mentions=[field])
    assert_no_cluster(ecs, name)


# -- missing required members ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation,payload,field",
    [
        ("RegisterTaskDefinition", {"containerDefinitions": [{"name": "web", "image": "busybox"}], "cpu": "256",
                                    "memory": "512", "networkMode": "awsvpc",
                                    "requiresCompatibilities": ["FARGATE"]}, "family"),
        ("RegisterTaskDefinition", {"family": "FAMILY", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
                                    "requiresCompatibilities": ["FARGATE"]}, "containerDefinitions"),
        ("DescribeTaskDefinition", {}, "taskDefinition"),
        ("DeregisterTaskDefinition", {}, "taskDefinition"),
        ("DeleteTaskDefinitions", {}, "taskDefinitions"),
        ("DeleteCluster", {}, "cluster"),
        ("UpdateCluster", {}, "cluster"),
        ("UpdateClusterSettings", {"cluster": "default"}, "settings"),
        ("PutClusterCapacityProviders", {"cluster": "default", "capacityProviders": ["FARGATE"]},
         "defaultCapacityProviderStrategy"),
        ("TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default"}, "tags"),
        ("UntagResource", {"resourceArn": "arn:aws:ecs:us-east-1:123456789012:cluster/default"}, "tagKeys"),
        ("ListTagsForResource", {}, "resourceArn"),
        ("CreateCluster", {"clusterName": "NAME", "tags": [{"value": "v"}]}, "key"),
        ("RegisterTaskDefinition", {"family": "FAMILY", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
                                    "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [
                                        {"name": "web", "image": "busybox",
                                         "healthCheck": {"interval": 30}}]}, "command"),
        ("RegisterTaskDefinition", {"family": "FAMILY", "cpu": "256", "memory": "512", "networkMode": "awsvpc",
                                    "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [
                                        {"name": "web", "image": "busybox",
                                         "logConfiguration": {"options": {"a": "b"}}}]}, "logDriver"),
    ],
    ids=["register-no-family", "register-no-containers", "describe-td", "deregister-td", "delete-tds",
         "delete-cluster", "update-cluster", "update-settings", "put-cp-strategy", "tag-no-tags", "untag-no-keys",
         "list-tags", "tag-no-key", "healthcheck-no-command", "log-no-driver"],
)
def test_missing_required_member(server, ecs, operation, payload, field):
    family, name = uniq("req"), uniq("req")
    body = json.dumps(payload).replace("FAMILY", family).replace("NAME", name).encode()
    resp = ecs_request(server, operation, body)
    assert_rejected(resp, VALIDATION_ERRORS, mentions=[field])
    assert_no_family(ecs, family)
    assert_no_cluster(ecs, name)


# -- invalid enum values -----------------------------------------------------------------------------------


def _container(**kw):
    c = {"name": "web", "image": "busybox"}
    c.update(kw)
    return c


@pytest.mark.parametrize(
    "operation,payload,mentions",
    [
        ("RegisterTaskDefinition", _td("FAMILY", networkMode="mesh"), ["networkMode", "mesh"]),
        ("RegisterTaskDefinition", _td("FAMILY", requiresCompatibilities=["MARS"]),
         ["requiresCompatibilities", "MARS"]),
        ("RegisterTaskDefinition", _td("FAMILY", containerDefinitions=[_container(
            portMappings=[{"containerPort": 80, "protocol": "sctp"}])]), ["protocol", "sctp"]),
        ("RegisterTaskDefinition", _td("FAMILY", containerDefinitions=[_container(
            logConfiguration={"logDriver": "carrier-pigeon"})]), ["logDriver", "carrier-pigeon"]),
        ("RegisterTaskDefinition", _td("FAMILY", containerDefinitions=[
            _container(dependsOn=[{"containerName": "init", "condition": "SOMETIMES"}]),
            {"name": "init", "image": "busybox", "essential": False}]), ["condition", "SOMETIMES"]),
        ("RegisterTaskDefinition", _td("FAMILY", runtimePlatform={"cpuArchitecture": "MIPS"}),
         ["cpuArchitecture", "MIPS"]),
        ("RegisterTaskDefinition", _td("FAMILY", pidMode="sometimes"), ["pidMode", "sometimes"]),
        ("DescribeClusters", {"clusters": ["default"], "include": ["EVERYTHING"]}, ["include", "EVERYTHING"]),
        ("DescribeTaskDefinition", {"taskDefinition": "x:1", "include": ["ALL"]}, ["include", "ALL"]),
        ("ListTaskDefinitions", {"status": "ZOMBIE"}, ["status", "ZOMBIE"]),
        ("ListTaskDefinitions", {"sort": "UP"}, ["sort", "UP"]),
        ("ListTaskDefinitionFamilies", {"status": "SOME"}, ["status", "SOME"]),
        ("CreateCluster", {"clusterName": "NAME", "settings": [{"name": "insights", "value": "enabled"}]},
         ["name", "insights"]),
        ("UpdateClusterSettings", {"cluster": "NAME", "settings": [{"name": "containerInsights", "value": "maybe"}]},
         ["value", "maybe"]),
    ],
    ids=["network-mode", "compatibility", "protocol", "log-driver", "depends-on-condition", "cpu-architecture",
         "pid-mode", "cluster-include", "td-include", "td-status", "td-sort", "family-status",
         "cluster-setting-name", "cluster-setting-value"],
)
def test_invalid_enum_value(server, ecs, operation, payload, mentions):
    family, name = uniq("enum"), uniq("enum")
    if operation == "UpdateClusterSettings":
        ecs.create_cluster(clusterName=name)
    body = json.dumps(payload).replace("FAMILY", family).replace("NAME", name).encode()
    resp = ecs_request(server, operation, body)
    assert_rejected(resp, PARSE_ERRORS, mentions=mentions)
    assert_no_family(ecs, family)
    if operation == "UpdateClusterSettings":
        settings = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0].get("settings", [])
        assert all(s.get("value") != "maybe" for s in settings), settings
    else:
        assert_no_cluster(ecs, name)


# -- out-of-range values and bad tokens --------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["ListClusters", "ListTaskDefinitions", "ListTaskDefinitionFamilies"])
@pytest.mark.parametrize("max_results", [0, 101, -1])
def test_max_results_out_of_range(server, operation, max_results):
    resp = ecs_request(server, operation, {"maxResults": max_results})
    assert_rejected(resp, VALIDATION_ERRORS, mentions=["maxResults"])


@pytest.mark.parametrize("operation", ["ListClusters", "ListTaskDefinitions", "ListTaskDefinitionFamilies"])
def test_garbage_next_token(server, operation):
    resp = ecs_request(server, operation, {"nextToken": "this-is-not-a-token"})
    assert_rejected(resp, VALIDATION_ERRORS)


def test_too_many_names_in_describe_clusters(server):
    resp = ecs_request(server, "DescribeClusters", {"clusters": [f"c{i}" for i in range(101)]})
    assert_rejected(resp, VALIDATION_ERRORS)


def test_too_many_task_definitions_in_delete(server):
    resp = ecs_request(server, "DeleteTaskDefinitions", {"taskDefinitions": [f"x:{i}" for i in range(1, 12)]})
    assert_rejected(resp, VALIDATION_ERRORS)


def test_tag_key_and_value_lengths(server, ecs):
    name = uniq("taglen")
    resp = ecs_request(server, "CreateCluster", {"clusterName": name, "tags": [{"key": "k" * 129, "value": "v"}]})
    assert_rejected(resp, VALIDATION_ERRORS)
    resp = ecs_request(server, "CreateCluster", {"clusterName": name, "tags": [{"key": "k", "value": "v" * 257}]})
    assert_rejected(resp, VALIDATION_ERRORS)
    resp = ecs_request(server, "CreateCluster", {"clusterName": name, "tags": [{"key": "", "value": "v"}]})
    assert_rejected(resp, VALIDATION_ERRORS)
    assert_no_cluster(ecs, name)


# -- unknown operations ------------------------------------------------------------------------------------


def test_unknown_ecs_operation(server):
    resp = ecs_request(server, "LaunchRockets", {})
    assert resp.status == 400, resp
    assert resp.error_code == "UnknownOperationException", resp


def test_unknown_target_prefix(server):
    resp = signed_request(server, service="ecs", body=b"{}",
                          headers={"Content-Type": ECS_CONTENT_TYPE, "X-Amz-Target": "NoSuchService_20200101.DoIt"})
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in ("UnknownOperationException", "InvalidAction", "UnrecognizedClientException",
                               "InvalidSignatureException"), resp


def test_unknown_query_action(server):
    resp = sts_request(server, {"Action": "LaunchRockets", "Version": "2011-06-15"})
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidAction", resp


def test_query_without_action(server):
    resp = sts_request(server, {"Version": "2011-06-15"})
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in ("MissingAction", "InvalidAction", "MissingParameter"), resp


def test_get_root_without_anything(server):
    resp = send_raw(server, "GET", "/", {"Host": server.address}, check_request_id=False)
    assert 400 <= resp.status < 500, resp


# -- oversized and truncated bodies ------------------------------------------------------------------------


def _raw_socket_exchange(server, head: bytes, body: bytes, shutdown_after: bool = False):
    """Sends head+body on a raw socket, tolerating the server closing early, and returns the parsed response
    (or None if the server closed without one) plus any send error."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    send_error = None
    try:
        try:
            sock.sendall(head)
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                sock.sendall(view[i:i + (1 << 16)])
            if shutdown_after:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError) as e:
            send_error = e
        resp = http.client.HTTPResponse(sock)
        try:
            resp.begin()
        except (ConnectionResetError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
            return None, send_error or e
        return (resp.status, resp.headers, resp.read()), send_error
    finally:
        sock.close()


def test_oversized_body_is_a_4xx(server, ecs):
    family = uniq("huge")
    td = fargate_task_definition(family)
    td["containerDefinitions"][0]["command"] = ["x" * (10 * 1024 * 1024)]
    body = json.dumps(td).encode()
    date = amz_date()
    headers = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.RegisterTaskDefinition"}
    names = sorted(k.lower() for k in headers)
    sig = sigv4_signature(method="POST", path="/", query=[], headers=headers, signed_headers=names,
                          payload_hash=hashlib.sha256(body).hexdigest(), amz_date=date,
                          secret=server.secret_access_key, region="us-east-1", service="ecs")
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/us-east-1/ecs/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    headers["Content-Length"] = str(len(body))
    head = ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    response, send_error = _raw_socket_exchange(server, head, body)
    assert response is not None, f"the server closed the connection without an answer ({send_error!r})"
    status, resp_headers, resp_body = response
    assert 400 <= status < 500, f"{status} {resp_body[:300]!r}"
    assert resp_headers.get("x-amzn-RequestId"), resp_headers
    eventually(10, server._healthy, "the server is unhealthy after an oversized body")
    assert_no_family(ecs, family)


def test_truncated_body_does_not_break_the_server(server, ecs):
    name = uniq("trunc")
    full = json.dumps({"clusterName": name}).encode()
    date = amz_date()
    headers = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.CreateCluster"}
    names = sorted(k.lower() for k in headers)
    sig = sigv4_signature(method="POST", path="/", query=[], headers=headers, signed_headers=names,
                          payload_hash=hashlib.sha256(full).hexdigest(), amz_date=date,
                          secret=server.secret_access_key, region="us-east-1", service="ecs")
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/us-east-1/ecs/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    headers["Content-Length"] = str(len(full) + 100)
    head = ("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    response, _ = _raw_socket_exchange(server, head, full, shutdown_after=True)
    if response is not None:
        assert response[0] < 500, response
    eventually(10, server._healthy, "the server is unhealthy after a truncated body")
    assert_no_cluster(ecs, name)


def test_bad_content_length(server):
    head = (f"POST / HTTP/1.1\r\nHost: {server.address}\r\nContent-Type: {ECS_CONTENT_TYPE}\r\n"
            f"X-Amz-Target: {ECS_TARGET_PREFIX}.ListClusters\r\nContent-Length: lots\r\n\r\n").encode()
    response, _ = _raw_socket_exchange(server, head, b"{}")
    if response is not None:
        assert 400 <= response[0] < 500, response
    eventually(10, server._healthy, "the server is unhealthy after a bad Content-Length")


# -- connections -------------------------------------------------------------------------------------------


def test_idle_and_stalled_connections_do_not_block_others(server, ecs):
    idle = []
    try:
        for _ in range(30):
            idle.append(socket.create_connection((server.host, server.port), timeout=10))
        # Half a request line on some, half a body on others.
        for s in idle[:10]:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        for s in idle[10:20]:
            s.sendall(f"POST / HTTP/1.1\r\nHost: {server.address}\r\nContent-Length: 100\r\n\r\n{{".encode())
        started = time.monotonic()
        assert "clusterArns" in ecs.list_clusters()
        other = server.client("ecs")
        assert "clusterArns" in other.list_clusters()
        assert time.monotonic() - started < 5, "a request waited behind idle connections"
    finally:
        for s in idle:
            s.close()


def test_form_body_on_json_target_is_not_a_5xx(server):
    resp = signed_request(server, service="ecs", body=b"Action=ListClusters",
                          headers={"Content-Type": FORM_CONTENT_TYPE,
                                   "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters"})
    assert resp.status < 500, resp
