"""SigV4 authentication, checked with hand-signed requests (harness.sigv4_signature, hashlib/hmac) so the
tests can forge secrets, keys, dates, bodies and signed headers, and with botocore's own presigner.

Error codes are AWS's (AWS-PROTOCOLS.md §3.1): JSON 1.1 services answer InvalidSignatureException,
UnrecognizedClientException, MissingAuthenticationTokenException, IncompleteSignatureException; query
services (STS) SignatureDoesNotMatch, InvalidClientTokenId, MissingAuthenticationToken."""

import datetime as dt
import hashlib
import json
import urllib.parse

import botocore.exceptions
import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import (
    ACCOUNT_ID,
    ECS_CONTENT_TYPE,
    ECS_TARGET_PREFIX,
    FORM_CONTENT_TYPE,
    STS_VERSION,
    AwsCliError,
    amz_date,
    cluster_arn,
    ecs_request,
    presign_by_hand,
    send_raw,
    sigv4_signature,
    sts_request,
    uniq,
)

NOW = lambda: dt.datetime.now(dt.timezone.utc)  # noqa: E731
WRONG_SECRET = "wrongSecretKey/0123456789abcdefghijklmnopq"
UNKNOWN_KEY = "AKIAUNKNOWNKEY000000"
SIGNATURE_ERRORS = ("InvalidSignatureException", "IncompleteSignatureException")


def test_valid_signature_is_accepted(server):
    resp = ecs_request(server, "ListClusters", {})
    assert resp.status == 200, resp
    assert "clusterArns" in resp.json()


# -- wrong secret ------------------------------------------------------------------------------------------


def test_wrong_secret_json(server):
    resp = ecs_request(server, "ListClusters", {}, secret=WRONG_SECRET)
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidSignatureException", resp
    assert resp.headers.get("x-amzn-ErrorType", "").startswith("InvalidSignatureException"), resp.headers
    assert "signature" in resp.error_message.lower(), resp


def test_wrong_secret_sts(server):
    resp = sts_request(server, secret=WRONG_SECRET)
    assert resp.status == 403, resp
    assert resp.error_code == "SignatureDoesNotMatch", resp


def test_wrong_secret_with_boto3_and_cli(server):
    ecs = server.client("ecs", secret_access_key=WRONG_SECRET)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        ecs.list_clusters()
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    sts = server.client("sts", secret_access_key=WRONG_SECRET)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sts.get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(AwsCliError) as exc:
        server.aws("ecs", "list-clusters", secret=WRONG_SECRET)
    assert exc.value.code == "InvalidSignatureException"
    assert exc.value.returncode == 255


# -- unknown access key ------------------------------------------------------------------------------------


def test_unknown_key_json(server):
    resp = ecs_request(server, "ListClusters", {}, access_key_id=UNKNOWN_KEY)
    assert resp.status == 400, resp
    assert resp.error_code == "UnrecognizedClientException", resp


def test_unknown_key_sts(server):
    resp = sts_request(server, access_key_id=UNKNOWN_KEY)
    assert resp.status == 403, resp
    assert resp.error_code == "InvalidClientTokenId", resp


def test_unknown_key_with_boto3(server):
    ecs = server.client("ecs", access_key_id=UNKNOWN_KEY)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        ecs.list_clusters()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    sts = server.client("sts", access_key_id=UNKNOWN_KEY)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sts.get_caller_identity()
    assert exc.value.response["Error"]["Code"] == "InvalidClientTokenId"


# -- dates -------------------------------------------------------------------------------------------------


def test_date_20_minutes_old_is_expired(server):
    resp = ecs_request(server, "ListClusters", {}, when=NOW() - dt.timedelta(minutes=20))
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidSignatureException", resp
    assert "Signature expired" in resp.error_message, resp


def test_date_20_minutes_ahead_is_not_yet_current(server):
    resp = ecs_request(server, "ListClusters", {}, when=NOW() + dt.timedelta(minutes=20))
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidSignatureException", resp
    assert "Signature not yet current" in resp.error_message, resp


def test_expired_date_sts(server):
    resp = sts_request(server, when=NOW() - dt.timedelta(minutes=20))
    assert resp.status == 403, resp
    assert resp.error_code == "SignatureDoesNotMatch", resp
    assert "Signature expired" in resp.error_message, resp


@pytest.mark.parametrize("minutes", [-10, 10])
def test_skew_within_15_minutes_is_accepted(server, minutes):
    resp = ecs_request(server, "ListClusters", {}, when=NOW() + dt.timedelta(minutes=minutes))
    assert resp.status == 200, resp


def test_credential_scope_date_must_match_x_amz_date(server):
    date = amz_date()
    other_day = (NOW() - dt.timedelta(days=2)).strftime("%Y%m%d")
    body = b"{}"
    headers = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters"}
    names = ["content-type", "host", "x-amz-date", "x-amz-target"]
    sig = sigv4_signature(method="POST", path="/", query=[], headers=headers, signed_headers=names,
                          payload_hash=hashlib.sha256(body).hexdigest(), amz_date=other_day + date[8:],
                          secret=server.secret_access_key, region="us-east-1", service="ecs")
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{other_day}/us-east-1/ecs/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    resp = send_raw(server, "POST", "/", headers, body)
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in SIGNATURE_ERRORS, resp


# -- tampering ---------------------------------------------------------------------------------------------


def test_tampered_body_is_rejected(server, ecs):
    name = uniq("tamper")
    resp = ecs_request(server, "CreateCluster", {"clusterName": name},
                       sign_body=json.dumps({"clusterName": "something-else"}).encode())
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidSignatureException", resp
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


def test_tampered_signed_header_is_rejected(server, ecs):
    # Signed as a harmless ListClusters, sent as CreateCluster: must be refused and create nothing.
    name = uniq("tamper-hdr")
    body = json.dumps({"clusterName": name}).encode()
    date = amz_date()
    signed = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
              "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters"}
    names = ["content-type", "host", "x-amz-date", "x-amz-target"]
    sig = sigv4_signature(method="POST", path="/", query=[], headers=signed, signed_headers=names,
                          payload_hash=hashlib.sha256(body).hexdigest(), amz_date=date,
                          secret=server.secret_access_key, region="us-east-1", service="ecs")
    sent = dict(signed, **{"X-Amz-Target": f"{ECS_TARGET_PREFIX}.CreateCluster"})
    sent["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/us-east-1/ecs/"
                             f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    resp = send_raw(server, "POST", "/", sent, body)
    assert resp.status == 400, resp
    assert resp.error_code == "InvalidSignatureException", resp
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


def test_content_sha256_header_must_match_body(server, ecs):
    name = uniq("sha")
    body = json.dumps({"clusterName": name}).encode()
    claimed = hashlib.sha256(b'{"clusterName": "other"}').hexdigest()
    date = amz_date()
    headers = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.CreateCluster", "X-Amz-Content-Sha256": claimed}
    names = sorted(k.lower() for k in headers)
    sig = sigv4_signature(method="POST", path="/", query=[], headers=headers, signed_headers=names,
                          payload_hash=claimed, amz_date=date, secret=server.secret_access_key,
                          region="us-east-1", service="ecs")
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/us-east-1/ecs/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    resp = send_raw(server, "POST", "/", headers, body)
    assert 400 <= resp.status < 500, resp
    assert ecs.describe_clusters(clusters=[name])["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]


# -- missing or malformed authentication -------------------------------------------------------------------


def test_missing_authorization_json(server):
    resp = ecs_request(server, "ListClusters", {}, sign=False)
    assert resp.status == 403, resp
    assert resp.error_code == "MissingAuthenticationTokenException", resp


def test_missing_authorization_sts(server):
    resp = sts_request(server, sign=False)
    assert resp.status == 403, resp
    assert resp.error_code == "MissingAuthenticationToken", resp


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIASKIFFE2ETESTKEY1/20260101/us-east-1/ecs/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIASKIFFE2ETESTKEY1, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
    ],
    ids=["no-parts", "no-signature", "short-scope", "no-credential", "empty-parts"],
)
def test_malformed_authorization_is_incomplete_signature(server, authorization):
    headers = {"Host": server.address, "X-Amz-Date": amz_date(), "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters", "Authorization": authorization}
    resp = send_raw(server, "POST", "/", headers, b"{}")
    assert resp.status == 400, resp
    assert resp.error_code == "IncompleteSignatureException", resp


def test_unsupported_algorithm_is_rejected(server):
    headers = {"Host": server.address, "X-Amz-Date": amz_date(), "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters",
               "Authorization": "AWS3-HTTPS AWSAccessKeyId=AKIASKIFFE2ETESTKEY1,Algorithm=HmacSHA256,Signature=x"}
    resp = send_raw(server, "POST", "/", headers, b"{}")
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in ("IncompleteSignatureException", "InvalidSignatureException",
                               "MissingAuthenticationTokenException"), resp


def test_host_must_be_signed(server):
    resp = ecs_request(server, "ListClusters", {}, signed_headers=["content-type", "x-amz-date", "x-amz-target"])
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in SIGNATURE_ERRORS, resp


def test_bogus_session_token_is_rejected(server):
    resp = ecs_request(server, "ListClusters", {}, headers={"X-Amz-Security-Token": "not-a-token"})
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in ("UnrecognizedClientException", "InvalidSignatureException"), resp


def test_scope_for_another_service_or_region_is_rejected(server):
    resp = ecs_request(server, "ListClusters", {}, region="eu-west-1")
    assert 400 <= resp.status < 500, resp
    assert resp.error_code in SIGNATURE_ERRORS, resp
    # Signed for STS but sent to ECS.
    body = b"{}"
    date = amz_date()
    headers = {"Host": server.address, "X-Amz-Date": date, "Content-Type": ECS_CONTENT_TYPE,
               "X-Amz-Target": f"{ECS_TARGET_PREFIX}.ListClusters"}
    names = sorted(k.lower() for k in headers)
    sig = sigv4_signature(method="POST", path="/", query=[], headers=headers, signed_headers=names,
                          payload_hash=hashlib.sha256(body).hexdigest(), amz_date=date,
                          secret=server.secret_access_key, region="us-east-1", service="sts")
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={server.access_key_id}/{date[:8]}/us-east-1/sts/"
                                f"aws4_request, SignedHeaders={';'.join(names)}, Signature={sig}")
    resp = send_raw(server, "POST", "/", headers, body)
    assert 400 <= resp.status < 500, resp
    assert resp.status != 200


# -- exactly the client's SignedHeaders --------------------------------------------------------------------


def test_go_sdk_style_extra_signed_headers_are_accepted(server):
    # Go SDK v2 (Terraform) also signs content-length, amz-sdk-invocation-id and amz-sdk-request.
    body = b"{}"
    resp = ecs_request(
        server, "ListClusters", body,
        headers={"Content-Length": str(len(body)), "Amz-Sdk-Invocation-Id": "5c8f3b5e-1d2a-4c1e-9a7e-0f7c3e2b1a90",
                 "Amz-Sdk-Request": "attempt=1; max=25", "Accept-Encoding": "gzip"},
    )
    assert resp.status == 200, resp


def test_unsigned_headers_do_not_matter(server):
    resp = ecs_request(
        server, "ListClusters", {},
        signed_headers=["content-type", "host", "x-amz-date", "x-amz-target"],
        headers={"User-Agent": "something/1.0", "X-Unsigned-Extra": "whatever"},
    )
    assert resp.status == 200, resp


def test_header_values_are_trimmed_and_spaces_collapsed(server):
    resp = ecs_request(server, "ListClusters", {}, headers={"X-Amz-Meta-Spaces": "  a   b  c  "})
    assert resp.status == 200, resp


# -- presigned (query string) requests ---------------------------------------------------------------------


def _botocore_presigned(server, method):
    creds = Credentials(server.access_key_id, server.secret_access_key)
    params = {"Action": "GetCallerIdentity", "Version": STS_VERSION}
    if method == "GET":
        req = AWSRequest(method="GET", url=f"{server.endpoint}/?{urllib.parse.urlencode(params)}")
    else:
        req = AWSRequest(method="POST", url=f"{server.endpoint}/", data=params,
                         headers={"Content-Type": FORM_CONTENT_TYPE})
    SigV4QueryAuth(creds, "sts", "us-east-1", expires=300).add_auth(req)
    prepared = req.prepare()
    split = urllib.parse.urlsplit(prepared.url)
    return split.path + "?" + split.query, prepared.body or b""


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_presigned_get_caller_identity_is_accepted(server, method):
    path, body = _botocore_presigned(server, method)
    assert "X-Amz-Signature=" in path
    resp = send_raw(server, method, path, {"Host": server.address}, body if isinstance(body, bytes) else body.encode())
    assert resp.status == 200, resp
    assert f"<Account>{ACCOUNT_ID}</Account>".encode() in resp.body, resp


def test_presigned_by_hand_is_accepted_and_forgeries_are_not(server):
    params = {"Action": "GetCallerIdentity", "Version": STS_VERSION}
    ok = send_raw(server, "GET", presign_by_hand(server, params), {"Host": server.address})
    assert ok.status == 200, ok

    wrong = send_raw(server, "GET", presign_by_hand(server, params, secret=WRONG_SECRET), {"Host": server.address})
    assert wrong.status == 403, wrong
    assert wrong.error_code == "SignatureDoesNotMatch", wrong

    expired = send_raw(server, "GET", presign_by_hand(server, params, when=NOW() - dt.timedelta(minutes=20)),
                       {"Host": server.address})
    assert 400 <= expired.status < 500, expired

    tampered = presign_by_hand(server, params).replace("GetCallerIdentity", "GetSessionToken")
    resp = send_raw(server, "GET", tampered, {"Host": server.address})
    assert 400 <= resp.status < 500, resp


# -- request ids -------------------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(server, ecs, sts):
    # send_raw asserts x-amzn-RequestId on every raw response of this suite; here: distinct per request, and
    # botocore surfaces it for successes and errors alike.
    a = ecs_request(server, "ListClusters", {})
    b = ecs_request(server, "ListClusters", {})
    assert a.request_id != b.request_id
    assert ecs.list_clusters()["ResponseMetadata"]["RequestId"]
    assert sts.get_caller_identity()["ResponseMetadata"]["RequestId"]
    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as exc:
        ecs.delete_cluster(cluster=uniq("rid"))
    assert exc.value.response["ResponseMetadata"]["RequestId"]
    err = sts_request(server, secret=WRONG_SECRET)
    assert err.request_id
    assert b"<RequestId>" in err.body, err


def test_responses_carry_a_date_header(server):
    # Most SDKs correct their clock skew from the response's Date header.
    from email.utils import parsedate_to_datetime

    for resp in (ecs_request(server, "ListClusters", {}), ecs_request(server, "ListClusters", {}, secret=WRONG_SECRET),
                 sts_request(server)):
        date = resp.headers.get("Date")
        assert date, resp.headers
        assert abs(parsedate_to_datetime(date) - NOW()) < dt.timedelta(minutes=1), date


def test_header_signed_get_on_query_protocol(server):
    resp = send_signed_get(server, {"Action": "GetCallerIdentity", "Version": STS_VERSION})
    assert resp.status == 200, resp
    assert f"<Account>{ACCOUNT_ID}</Account>".encode() in resp.body, resp


def send_signed_get(server, params):
    from harness import signed_request

    return signed_request(server, service="sts", method="GET", query=list(params.items()))
