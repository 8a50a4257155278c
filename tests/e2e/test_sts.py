"""STS GetCallerIdentity through boto3, the AWS CLI and raw query-protocol requests."""

import xml.etree.ElementTree as ET

from harness import ACCOUNT_ID, STS_VERSION, sts_request

ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def test_get_caller_identity_boto3(sts):
    ident = sts.get_caller_identity()
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == ROOT_ARN
    # For root credentials AWS reports the account id as the UserId.
    assert ident["UserId"] == ACCOUNT_ID
    assert ident["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ident["ResponseMetadata"]["RequestId"]


def test_get_caller_identity_cli(aws):
    ident = aws("sts", "get-caller-identity")
    assert ident["Account"] == ACCOUNT_ID
    assert ident["Arn"] == ROOT_ARN


def test_get_caller_identity_xml_shape(server):
    resp = sts_request(server)
    assert resp.status == 200, resp
    assert "xml" in (resp.headers.get("Content-Type") or ""), resp.headers
    root = ET.fromstring(resp.body)
    assert root.tag == f"{STS_NS}GetCallerIdentityResponse"
    result = root.find(f"{STS_NS}GetCallerIdentityResult")
    assert result is not None, resp
    assert result.findtext(f"{STS_NS}Account") == ACCOUNT_ID
    assert result.findtext(f"{STS_NS}Arn") == ROOT_ARN
    request_id = root.findtext(f"{STS_NS}ResponseMetadata/{STS_NS}RequestId")
    assert request_id, resp


def test_get_caller_identity_with_go_sdk_content_type(server):
    # The Go SDK (Terraform) sends the form content type without "; charset=utf-8".
    resp = sts_request(server, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200, resp


def test_unknown_sts_action_is_invalid_action(server):
    resp = sts_request(server, {"Action": "NoSuchAction", "Version": STS_VERSION})
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidAction", resp
    root = ET.fromstring(resp.body)
    assert root.tag.endswith("ErrorResponse"), resp
    assert b"<Type>Sender</Type>" in resp.body, resp
