"""The ECR API (AWS JSON 1.1) through boto3 and the AWS CLI: repositories (create, describe with
pagination, delete with and without force, tag mutability, scanning configuration), tags, registry tokens
(`aws ecr get-login-password`), images (DescribeImages, ListImages, BatchGetImage, BatchDeleteImage, with
filters and paginators), lifecycle policies (put/get/delete, validation, untagged images really expired),
and every modeled error class as boto3 raises it.

Images are pushed with plain /v2/ HTTP calls (a tiny config blob, one gzipped tar layer and an OCI manifest)
using the token GetAuthorizationToken hands out; tests that need images skip while the server's /v2/
registry does not accept pushes yet.

Expected behaviour comes from the botocore ECR model and AWS's ECR documentation.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import http.client
import io
import json
import subprocess
import tarfile
import time
import urllib.parse
from typing import Optional

import pytest

import harness
from harness import ACCOUNT_ID, REGION, SkiffServer, aws_bin, aws_env, client_error, signed_request, uniq

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


# ---------------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def ecr(server):
    return server.client("ecr")


def repo_arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{name}"


def ecr_raw(server: SkiffServer, operation: str, payload) -> harness.RawResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return signed_request(
        server, service="ecr", body=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECR_TARGET_PREFIX}.{operation}"},
    )


def aws_text(server: SkiffServer, *args: str) -> str:
    """Runs the AWS CLI and returns what it prints (for commands whose output is not JSON)."""
    argv = [aws_bin(), "--endpoint-url", server.endpoint, "--region", REGION, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=aws_env(server))
    if proc.returncode != 0:
        raise harness.AwsCliError(list(args), proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


def all_pages(ecr, operation: str, result_key: str, page_size: int, **kw) -> tuple[list, int]:
    """Every item of a paginated operation through boto3's paginator, and how many pages it took."""
    items, pages = [], 0
    for page in ecr.get_paginator(operation).paginate(PaginationConfig={"PageSize": page_size}, **kw):
        items += page[result_key]
        pages += 1
    return items, pages


# -- pushing images over /v2/ ---------------------------------------------------------------------------


class Registry(harness.RegistryClient):
    def accepts_pushes(self) -> bool:
        status, _, _ = self.call("GET", "/v2/")
        return status == 200


@pytest.fixture(scope="module")
def registry(server, ecr):
    reg = Registry(server, ecr)
    if not reg.accepts_pushes():
        pytest.skip("the server's /v2/ registry does not accept pushes yet")
    return reg


@pytest.fixture
def repo(ecr):
    """A fresh repository, force-deleted afterwards."""
    made = []

    def make(prefix: str = "repo", **kw) -> str:
        name = uniq(prefix)
        ecr.create_repository(repositoryName=name, **kw)
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            ecr.delete_repository(repositoryName=name, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass


# ---------------------------------------------------------------------------------------------------------
# repositories


def test_create_repository_defaults(server, ecr, repo):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    name = uniq("team/web")
    r = ecr.create_repository(repositoryName=name)["repository"]
    try:
        assert r["repositoryName"] == name
        assert r["repositoryArn"] == repo_arn(name)
        assert r["registryId"] == ACCOUNT_ID
        assert r["repositoryUri"] == f"{server.address}/{name}"
        assert r["imageTagMutability"] == "MUTABLE"
        assert r["imageScanningConfiguration"] == {"scanOnPush": False}
        assert r["encryptionConfiguration"] == {"encryptionType": "AES256"}
        assert before <= r["createdAt"] <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
        described = ecr.describe_repositories(repositoryNames=[name])["repositories"]
        assert described == [r]
    finally:
        ecr.delete_repository(repositoryName=name)


def test_create_repository_with_every_setting(ecr, repo):
    name = uniq("settings")
    r = ecr.create_repository(
        repositoryName=name,
        registryId=ACCOUNT_ID,
        tags=[{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": ""}],
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/skiff-test"},
    )["repository"]
    try:
        assert r["imageTagMutability"] == "IMMUTABLE"
        assert r["imageScanningConfiguration"] == {"scanOnPush": True}
        assert r["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": "alias/skiff-test"}
        tags = ecr.list_tags_for_resource(resourceArn=repo_arn(name))["tags"]
        assert tags == [{"Key": "team", "Value": "platform"}, {"Key": "env", "Value": ""}]
    finally:
        ecr.delete_repository(repositoryName=name)


def test_create_existing_repository_fails(ecr, repo):
    name = repo("dup")
    e = client_error(ecr.create_repository, repositoryName=name)
    assert e.response["Error"]["Code"] == "RepositoryAlreadyExistsException"
    assert name in e.response["Error"]["Message"]
    with pytest.raises(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=name)


@pytest.mark.parametrize("kw, needle", [
    ({"repositoryName": "UpperCase"}, "repositoryName"),
    ({"repositoryName": "a/../b"}, "repositoryName"),
    ({"repositoryName": "web//x"}, "repositoryName"),
    ({"repositoryName": "web-", "imageTagMutability": "MUTABLE"}, "repositoryName"),
    ({"repositoryName": "ok-name", "registryId": "999999999999"}, "999999999999"),
    ({"repositoryName": "ok-name", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}, "IMMUTABLE_WITH_EXCLUSION"),
    ({"repositoryName": "ok-name", "encryptionConfiguration": {"encryptionType": "AES256", "kmsKey": "k"}},
     "kmsKey"),
])
def test_create_repository_refuses_bad_input(ecr, kw, needle):
    kw = dict(kw)
    valid_name = kw["repositoryName"] == "ok-name"
    if valid_name:
        kw["repositoryName"] = uniq("refused")
    with pytest.raises(ecr.exceptions.InvalidParameterException) as info:
        ecr.create_repository(**kw)
    assert needle in info.value.response["Error"]["Message"]
    if valid_name:
        with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
            ecr.describe_repositories(repositoryNames=[kw["repositoryName"]])


def test_bad_tags_are_refused_with_tag_errors(ecr):
    name = uniq("badtags")
    with pytest.raises(ecr.exceptions.InvalidTagParameterException):
        ecr.create_repository(repositoryName=name, tags=[{"Key": "aws:reserved", "Value": "v"}])
    with pytest.raises(ecr.exceptions.TooManyTagsException):
        ecr.create_repository(repositoryName=name, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=[name])


def test_unknown_members_are_refused(server):
    resp = ecr_raw(server, "CreateRepository", {"repositoryName": uniq("raw"), "bogus": 1})
    assert resp.status == 400
    assert resp.error_code == "InvalidParameterException"
    assert "bogus" in resp.error_message
    resp = ecr_raw(server, "DescribeRepositories", b"not json")
    assert resp.error_code == "InvalidParameterException"
    resp = ecr_raw(server, "NoSuchOperation", {})
    assert resp.status == 400


def test_describe_repositories_paginates_by_name(ecr, repo):
    prefix = uniq("page")
    names = [repo(f"{prefix}-{i}") for i in range(5)]
    items, pages = all_pages(ecr, "describe_repositories", "repositories", 2)
    mine = [r["repositoryName"] for r in items if r["repositoryName"].startswith(prefix)]
    assert mine == sorted(names)
    assert pages >= 3
    every = [r["repositoryName"] for r in items]
    assert every == sorted(every), "repositories come in name order"
    assert len(every) == len(set(every)), "no repository on two pages"

    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.describe_repositories(maxResults=1001)


def test_describe_missing_repository_raises(ecr, repo):
    name = repo("present")
    missing = uniq("missing")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException) as info:
        ecr.describe_repositories(repositoryNames=[name, missing])
    msg = info.value.response["Error"]["Message"]
    assert missing in msg and ACCOUNT_ID in msg


def test_delete_repository(ecr):
    name = uniq("del")
    created = ecr.create_repository(repositoryName=name)["repository"]
    deleted = ecr.delete_repository(repositoryName=name)["repository"]
    assert deleted["repositoryArn"] == created["repositoryArn"]
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=[name])
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.delete_repository(repositoryName=name)
    # The name is free again.
    ecr.create_repository(repositoryName=name)
    ecr.delete_repository(repositoryName=name, force=True)


def test_put_image_tag_mutability_and_scanning(ecr, repo):
    name = repo("mut")
    out = ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
    assert (out["registryId"], out["repositoryName"], out["imageTagMutability"]) == (ACCOUNT_ID, name, "IMMUTABLE")
    r = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert r["imageTagMutability"] == "IMMUTABLE"
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE_WITH_EXCLUSION")
    out = ecr.put_image_scanning_configuration(repositoryName=name, imageScanningConfiguration={"scanOnPush": True})
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    r = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert (r["imageTagMutability"], r["imageScanningConfiguration"]) == ("IMMUTABLE", {"scanOnPush": True})
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.put_image_tag_mutability(repositoryName=uniq("nope"), imageTagMutability="MUTABLE")


def test_tag_untag_list(ecr, repo):
    name = repo("tags", tags=[{"Key": "a", "Value": "1"}])
    arn = repo_arn(name)
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "10"}])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "a", "Value": "10"}, {"Key": "b", "Value": "2"}]
    ecr.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]

    with pytest.raises(ecr.exceptions.InvalidTagParameterException):
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "bad*key", "Value": "v"}])
    with pytest.raises(ecr.exceptions.TooManyTagsException):
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": ""} for i in range(50)])
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.list_tags_for_resource(resourceArn=repo_arn(uniq("gone")))
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.list_tags_for_resource(resourceArn=f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:cluster/{name}")
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}], \
        "a refused change changes nothing"


# ---------------------------------------------------------------------------------------------------------
# registry tokens


def test_get_authorization_token(server, ecr):
    before = dt.datetime.now(dt.timezone.utc)
    data = ecr.get_authorization_token()["authorizationData"]
    assert len(data) == 1
    d = data[0]
    user, _, token = base64.b64decode(d["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and token
    assert d["proxyEndpoint"] == f"http://{server.address}"
    lifetime = d["expiresAt"] - before
    assert dt.timedelta(hours=11, minutes=59) <= lifetime <= dt.timedelta(hours=12, minutes=1)
    assert len(ecr.get_authorization_token(registryIds=[ACCOUNT_ID])["authorizationData"]) == 1
    with pytest.raises(ecr.exceptions.InvalidParameterException):
        ecr.get_authorization_token(registryIds=["999999999999"])

    # The token opens /v2/; a wrong one does not.
    reg = Registry(server, ecr)
    assert reg.call("GET", "/v2/")[0] != 401
    reg.auth = "Basic " + base64.b64encode(b"AWS:" + token.encode()[:-2] + b"xx").decode()
    assert reg.call("GET", "/v2/")[0] == 401


def test_cli_get_login_password(server, ecr):
    password = aws_text(server, "ecr", "get-login-password").strip()
    assert password and "\n" not in password
    reg = Registry(server, ecr)
    reg.auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    assert reg.call("GET", "/v2/")[0] != 401, "the CLI's password is the registry token"


# ---------------------------------------------------------------------------------------------------------
# the AWS CLI


def test_cli_repository_lifecycle(server):
    name = uniq("cli/app")
    created = server.aws("ecr", "create-repository", "--repository-name", name,
                         "--image-tag-mutability", "IMMUTABLE", "--tags", "Key=owner,Value=cli")["repository"]
    try:
        assert created["repositoryUri"] == f"{server.address}/{name}"
        assert created["imageTagMutability"] == "IMMUTABLE"
        assert isinstance(created["createdAt"], (int, float, str))
        listed = server.aws("ecr", "describe-repositories", "--page-size", "1")["repositories"]
        assert name in [r["repositoryName"] for r in listed], "the CLI follows nextToken"
        with pytest.raises(harness.AwsCliError) as info:
            server.aws("ecr", "create-repository", "--repository-name", name)
        assert info.value.code == "RepositoryAlreadyExistsException"
        assert server.aws("ecr", "list-images", "--repository-name", name)["imageIds"] == []
        policy = json.dumps(untagged_policy(count_type="sinceImagePushed", days=14))
        out = server.aws("ecr", "put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text", policy)
        assert json.loads(out["lifecyclePolicyText"]) == json.loads(policy)
        got = server.aws("ecr", "get-lifecycle-policy", "--repository-name", name)
        assert json.loads(got["lifecyclePolicyText"]) == json.loads(policy)
    finally:
        server.aws("ecr", "delete-repository", "--repository-name", name, "--force")
    with pytest.raises(harness.AwsCliError) as info:
        server.aws("ecr", "describe-repositories", "--repository-names", name)
    assert info.value.code == "RepositoryNotFoundException"


# ---------------------------------------------------------------------------------------------------------
# images in an empty repository, and repositories that do not exist


def test_image_calls_on_an_empty_repository(ecr, repo):
    name = repo("empty")
    assert ecr.list_images(repositoryName=name)["imageIds"] == []
    assert ecr.describe_images(repositoryName=name)["imageDetails"] == []
    digest = "sha256:" + "0" * 64
    with pytest.raises(ecr.exceptions.ImageNotFoundException) as info:
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "latest"}])
    assert "latest" in info.value.response["Error"]["Message"]
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": digest}])

    got = ecr.batch_get_image(repositoryName=name, imageIds=[
        {"imageTag": "latest"}, {"imageDigest": "not-a-digest"}, {}, {"imageTag": "bad/tag"}])
    assert got["images"] == []
    assert [f["failureCode"] for f in got["failures"]] == [
        "ImageNotFound", "InvalidImageDigest", "MissingDigestAndTag", "InvalidImageTag"]
    assert got["failures"][0]["imageId"] == {"imageTag": "latest"}

    deleted = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "latest"}, {"imageDigest": digest}])
    assert deleted["imageIds"] == []
    assert [f["failureCode"] for f in deleted["failures"]] == ["ImageNotFound", "ImageNotFound"]


@pytest.mark.parametrize("call", [
    lambda ecr, n: ecr.list_images(repositoryName=n),
    lambda ecr, n: ecr.describe_images(repositoryName=n),
    lambda ecr, n: ecr.batch_get_image(repositoryName=n, imageIds=[{"imageTag": "x"}]),
    lambda ecr, n: ecr.batch_delete_image(repositoryName=n, imageIds=[{"imageTag": "x"}]),
    lambda ecr, n: ecr.get_lifecycle_policy(repositoryName=n),
    lambda ecr, n: ecr.delete_lifecycle_policy(repositoryName=n),
    lambda ecr, n: ecr.put_lifecycle_policy(repositoryName=n, lifecyclePolicyText=json.dumps(untagged_policy())),
    lambda ecr, n: ecr.put_image_scanning_configuration(repositoryName=n,
                                                       imageScanningConfiguration={"scanOnPush": True}),
    lambda ecr, n: ecr.delete_repository(repositoryName=n, force=True),
    lambda ecr, n: ecr.untag_resource(resourceArn=repo_arn(n), tagKeys=["a"]),
], ids=["list_images", "describe_images", "batch_get_image", "batch_delete_image", "get_lifecycle_policy",
        "delete_lifecycle_policy", "put_lifecycle_policy", "put_image_scanning_configuration", "delete_repository",
        "untag_resource"])
def test_missing_repository_is_reported(ecr, call):
    name = uniq("absent")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException) as info:
        call(ecr, name)
    assert name in info.value.response["Error"]["Message"]


# ---------------------------------------------------------------------------------------------------------
# lifecycle policies (without images)


def untagged_policy(count_type: str = "imageCountMoreThan", count: int = 1, days: Optional[int] = None) -> dict:
    selection = {"tagStatus": "untagged", "countType": count_type, "countNumber": days or count}
    if count_type != "imageCountMoreThan":
        selection["countUnit"] = "days"
    return {"rules": [{"rulePriority": 1, "description": "expire untagged images", "selection": selection,
                       "action": {"type": "expire"}}]}


def test_lifecycle_policy_put_get_delete(ecr, repo):
    name = repo("lcp")
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=name)
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.delete_lifecycle_policy(repositoryName=name)
    text = json.dumps(untagged_policy(count_type="sinceImagePushed", days=7))
    out = ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=text)
    assert (out["registryId"], out["repositoryName"], out["lifecyclePolicyText"]) == (ACCOUNT_ID, name, text)
    got = ecr.get_lifecycle_policy(repositoryName=name)
    assert got["lifecyclePolicyText"] == text
    assert isinstance(got.get("lastEvaluatedAt"), dt.datetime)
    deleted = ecr.delete_lifecycle_policy(repositoryName=name)
    assert deleted["lifecyclePolicyText"] == text
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=name)


@pytest.mark.parametrize("policy, needle", [
    ({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan"},
                 "action": {"type": "expire"}}], "padding": "x" * 100}, "padding"),
    ({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan"},
                 "action": {"type": "expire"}, "description": "x" * 100}]}, "countNumber"),
    ({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"},
                 "description": "x" * 100}]}, "tagPrefixList or tagPatternList"),
    ({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                  "countNumber": 1}, "action": {"type": "expire"},
                 "description": "x" * 100}]}, "countUnit"),
    ({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}},
                {"rulePriority": 2, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"}}]},
     "highest rulePriority"),
    ({"rules": [{"rulePriority": 0, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                  "countNumber": 1}, "action": {"type": "expire"},
                 "description": "x" * 100}]}, "minimum"),
])
def test_invalid_lifecycle_policies_are_refused(ecr, repo, policy, needle):
    name = repo("badlcp")
    with pytest.raises(ecr.exceptions.InvalidParameterException) as info:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
    msg = info.value.response["Error"]["Message"]
    assert "Lifecycle policy validation failure" in msg and needle in msg, msg
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=name)


# ---------------------------------------------------------------------------------------------------------
# images (pushed over /v2/)


def test_describe_and_list_images(ecr, repo, registry):
    name = repo("imgs")
    a = registry.push_image(name, "v1", "a")
    registry.push_image(name, "latest", "a")  # same image, second tag
    b = registry.push_image(name, None, "b")  # untagged
    c = registry.push_image(name, "v3", "c")

    details = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert [d["imageDigest"] for d in details] == [a["digest"], b["digest"], c["digest"]], "in push order"
    da = details[0]
    assert sorted(da["imageTags"]) == ["latest", "v1"]
    assert da["registryId"] == ACCOUNT_ID and da["repositoryName"] == name
    assert da["imageManifestMediaType"] == OCI_MANIFEST
    assert da["artifactMediaType"] == OCI_CONFIG
    config, layer, manifest = a["sizes"]
    assert da["imageSizeInBytes"] in (config + layer, config + layer + manifest)
    assert isinstance(da["imagePushedAt"], dt.datetime)
    assert abs(da["imagePushedAt"] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert "imageTags" not in details[1]

    untagged = ecr.describe_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageDetails"]
    assert [d["imageDigest"] for d in untagged] == [b["digest"]]
    tagged = ecr.describe_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageDetails"]
    assert [d["imageDigest"] for d in tagged] == [a["digest"], c["digest"]]
    by_id = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v3"}, {"imageDigest": a["digest"]}])
    assert {d["imageDigest"] for d in by_id["imageDetails"]} == {a["digest"], c["digest"]}
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v2"}])

    ids = ecr.list_images(repositoryName=name)["imageIds"]
    assert ids == [
        {"imageDigest": a["digest"], "imageTag": "latest"},
        {"imageDigest": a["digest"], "imageTag": "v1"},
        {"imageDigest": b["digest"]},
        {"imageDigest": c["digest"], "imageTag": "v3"},
    ]
    assert ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"] == [
        {"imageDigest": b["digest"]}]
    assert len(ecr.list_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageIds"]) == 3

    # The paginators walk the same items one at a time.
    paged, pages = all_pages(ecr, "list_images", "imageIds", 1, repositoryName=name)
    assert (paged, pages) == (ids, 4)
    paged, pages = all_pages(ecr, "describe_images", "imageDetails", 2, repositoryName=name)
    assert ([d["imageDigest"] for d in paged], pages) == ([d["imageDigest"] for d in details], 2)


def test_batch_get_image_returns_the_manifest(ecr, repo, registry):
    name = repo("get")
    a = registry.push_image(name, "v1", "a")
    got = ecr.batch_get_image(repositoryName=name, imageIds=[
        {"imageTag": "v1"}, {"imageDigest": a["digest"]}, {"imageTag": "v1", "imageDigest": "sha256:" + "1" * 64},
        {"imageTag": "nope"}])
    assert [i["imageId"] for i in got["images"]] == [
        {"imageDigest": a["digest"], "imageTag": "v1"}, {"imageDigest": a["digest"]}]
    for image in got["images"]:
        assert image["imageManifest"].encode() == a["manifest"]
        assert image["imageManifestMediaType"] == OCI_MANIFEST
        assert (image["registryId"], image["repositoryName"]) == (ACCOUNT_ID, name)
    assert [f["failureCode"] for f in got["failures"]] == ["ImageTagDoesNotMatchDigest", "ImageNotFound"]


def test_batch_delete_image_by_tag_and_digest(ecr, repo, registry):
    name = repo("delimg")
    a = registry.push_image(name, "one", "a")
    registry.push_image(name, "two", "a")
    b = registry.push_image(name, "solo", "b")
    c = registry.push_image(name, None, "c")

    # Removing one of two tags keeps the image.
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "one"}])
    assert out == {**out, "imageIds": [{"imageDigest": a["digest"], "imageTag": "one"}], "failures": []}
    assert ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": a["digest"]}])[
        "imageDetails"][0]["imageTags"] == ["two"]
    # Removing the last tag deletes the image.
    ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "two"}])
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": a["digest"]}])
    # By digest: the image and its tags.
    out = ecr.batch_delete_image(repositoryName=name, imageIds=[
        {"imageDigest": b["digest"]}, {"imageDigest": c["digest"]}, {"imageTag": "solo"}])
    assert out["imageIds"] == [{"imageDigest": b["digest"], "imageTag": "solo"}, {"imageDigest": c["digest"]}]
    assert [f["failureCode"] for f in out["failures"]] == ["ImageNotFound"]
    assert ecr.list_images(repositoryName=name)["imageIds"] == []


def test_delete_repository_with_images_needs_force(ecr, registry):
    name = uniq("full")
    ecr.create_repository(repositoryName=name)
    registry.push_image(name, "v1", "x")
    with pytest.raises(ecr.exceptions.RepositoryNotEmptyException):
        ecr.delete_repository(repositoryName=name)
    assert ecr.describe_repositories(repositoryNames=[name])["repositories"]
    ecr.delete_repository(repositoryName=name, force=True)
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.list_images(repositoryName=name)
    # Nothing of the old repository survives into a new one of the same name.
    ecr.create_repository(repositoryName=name)
    try:
        assert ecr.list_images(repositoryName=name)["imageIds"] == []
    finally:
        ecr.delete_repository(repositoryName=name, force=True)


def test_lifecycle_policy_expires_untagged_images(ecr, repo, registry):
    name = repo("expire")
    kept = registry.push_image(name, "release", "kept")
    old = [registry.push_image(name, None, f"old-{i}")["digest"] for i in range(3)]
    newest = registry.push_image(name, None, "newest")["digest"]

    # Nothing is older than a week: an age rule expires nothing.
    ecr.put_lifecycle_policy(repositoryName=name,
                             lifecyclePolicyText=json.dumps(untagged_policy("sinceImagePushed", days=7)))
    assert len(ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"]) == 4

    # Keep only the newest untagged image.
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(untagged_policy(count=1)))
    untagged = [i["imageDigest"] for i in ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})[
        "imageIds"]]
    assert untagged == [newest], f"expected only {newest}, old ones were {old}"
    tagged = ecr.list_images(repositoryName=name, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert tagged == [{"imageDigest": kept["digest"], "imageTag": "release"}], "tagged images are never touched"
    for digest in old:
        with pytest.raises(ecr.exceptions.ImageNotFoundException):
            ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": digest}])


def test_tagged_lifecycle_rule_keeps_the_newest(ecr, repo, registry):
    name = repo("keepn")
    digests = [registry.push_image(name, f"build-{i}", f"b{i}")["digest"] for i in range(4)]
    other = registry.push_image(name, "stable", "s")["digest"]
    policy = {"rules": [{"rulePriority": 1, "description": "keep the last two builds",
                         "selection": {"tagStatus": "tagged", "tagPatternList": ["build-*"],
                                       "countType": "imageCountMoreThan", "countNumber": 2},
                         "action": {"type": "expire"}}]}
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(policy))
    left = {d["imageDigest"] for d in ecr.describe_images(repositoryName=name)["imageDetails"]}
    assert left == {digests[2], digests[3], other}


def test_lifecycle_policy_applies_on_push(ecr, repo, registry):
    # Regression: the policy ran only when it was put; ECR also applies it as images arrive.
    name = repo("onpush")
    ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(untagged_policy(count=1)))
    registry.push_image(name, None, "first")
    newest = registry.push_image(name, None, "second")["digest"]

    def only_newest_left():
        ids = ecr.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"]
        return [i["imageDigest"] for i in ids] == [newest]

    harness.eventually(10, only_newest_left, f"the older untagged image of {name} was not expired after a push")
