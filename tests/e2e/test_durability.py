"""Durability and the server's own lifecycle: what an acknowledged call wrote survives `kill -9`, and the
root credentials are generated once (mode 0600) when none are given."""

import json
import os
import re
import stat
import subprocess

import botocore.exceptions
import pytest

from harness import ACCOUNT_ID, aws_bin, cluster_arn, fargate_task_definition, task_definition_arn, uniq


def test_each_acknowledged_registration_survives_kill9(make_server):
    srv = make_server("durable-each")
    family = uniq("durable")
    for revision in range(1, 6):
        ecs = srv.client("ecs")
        td = ecs.register_task_definition(**fargate_task_definition(family))["taskDefinition"]
        assert td["revision"] == revision
        srv.kill9_and_restart()  # SIGKILL the moment the call returned
        ecs = srv.client("ecs")
        got = ecs.describe_task_definition(taskDefinition=f"{family}:{revision}")["taskDefinition"]
        assert got["taskDefinitionArn"] == task_definition_arn(family, revision)
        assert got["status"] == "ACTIVE"
        assert got["containerDefinitions"] == td["containerDefinitions"]


def test_twenty_registrations_then_kill9(make_server):
    srv = make_server("durable-burst")
    ecs = srv.client("ecs")
    family, other = uniq("burst"), uniq("burst-other")
    registered = []
    for i in range(20):
        fam = family if i % 4 else other
        registered.append(ecs.register_task_definition(**fargate_task_definition(fam))["taskDefinition"])
    srv.kill9_and_restart()

    ecs = srv.client("ecs")
    for td in registered:
        got = ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"])["taskDefinition"]
        assert got == td
    n_family = sum(1 for i in range(20) if i % 4)
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [
        task_definition_arn(family, r) for r in range(1, n_family + 1)]
    # The revision counter survived too.
    assert ecs.register_task_definition(**fargate_task_definition(family))["taskDefinition"]["revision"] == n_family + 1


def test_cluster_state_survives_kill9(make_server):
    srv = make_server("durable-clusters")
    ecs = srv.client("ecs")
    keep, gone = uniq("keep"), uniq("gone")
    ecs.create_cluster(clusterName=keep, tags=[{"key": "a", "value": "1"}])
    ecs.update_cluster_settings(cluster=keep, settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.put_cluster_capacity_providers(cluster=keep, capacityProviders=["FARGATE"],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    ecs.create_cluster(clusterName=gone)
    ecs.delete_cluster(cluster=gone)
    family = uniq("dereg")
    ecs.register_task_definition(**fargate_task_definition(family))
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    srv.kill9_and_restart()

    ecs = srv.client("ecs")
    c = ecs.describe_clusters(clusters=[keep], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert c["status"] == "ACTIVE"
    assert {t["key"]: t["value"] for t in c["tags"]} == {"a": "1"}
    assert {"name": "containerInsights", "value": "enabled"} in c["settings"]
    assert c["capacityProviders"] == ["FARGATE"]
    resp = ecs.describe_clusters(clusters=[gone])
    assert [(x["clusterArn"], x["status"]) for x in resp["clusters"]] == [(cluster_arn(gone), "INACTIVE")]
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["status"] == "INACTIVE"


def test_graceful_stop_and_restart_keeps_state(make_server):
    srv = make_server("graceful")
    name = uniq("graceful")
    srv.client("ecs").create_cluster(clusterName=name)
    srv.stop()
    assert srv.proc.returncode is not None
    srv.start()
    assert srv.client("ecs").describe_clusters(clusters=[name])["clusters"][0]["status"] == "ACTIVE"


def test_generated_credentials(make_server):
    srv = make_server("gencreds", credentials=None)
    path = srv.data_dir / "credentials.json"
    assert path.exists(), "no credentials.json in the data directory"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, f"credentials.json has mode {oct(mode)}"
    creds = json.loads(path.read_text())
    ak, sk = creds["accessKeyId"], creds["secretAccessKey"]
    assert ak and sk
    out = srv.stdout_of_last_start()
    # A ready-to-paste AWS CLI profile on stdout.
    assert "aws_access_key_id" in out and ak in out, out
    assert "aws_secret_access_key" in out and sk in out, out

    assert srv.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID
    assert srv.aws("sts", "get-caller-identity")["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    check_printed_profile_works(srv, out, ak)

    # Generated once: a restart keeps them.
    srv.kill9_and_restart()
    assert json.loads(path.read_text()) == creds
    assert srv.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID


def test_env_credentials_are_the_only_ones_accepted(make_server):
    srv = make_server("envcreds", credentials=("AKIAENVONLY000000001", "envOnlySecret/abcdefghijklmnopqrstuvwxyz01"))
    assert srv.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        srv.client("ecs", access_key_id="AKIASKIFFE2ETESTKEY1").list_clusters()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_default_account_and_region(make_server):
    srv = make_server("defaults", account_id=None, region=None)
    assert srv.client("sts").get_caller_identity()["Account"] == "000000000000"
    name = uniq("dflt")
    arn = srv.client("ecs").create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"


def test_configured_region_is_used(make_server):
    srv = make_server("region", region="eu-west-1")
    ecs = srv.client("ecs", region="eu-west-1")
    name = uniq("eu")
    assert ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"] == (
        f"arn:aws:ecs:eu-west-1:{ACCOUNT_ID}:cluster/{name}")


def check_printed_profile_works(srv, stdout, access_key_id):
    """The profile printed at start-up, pasted as is into an AWS shared credentials file, is all the AWS CLI
    needs (a uniform comment prefix such as '# ' is taken off first, as a reader would)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^\W*\[[^\]]+\]\s*$", line))
    prefix = re.match(r"^(\W*)\[", lines[start]).group(1)
    block = []
    for line in lines[start:]:
        if not line.startswith(prefix):
            break
        body = line[len(prefix):]
        if not (body.startswith("[") or re.match(r"^[a-z_]+\s*=", body)):
            break
        block.append(body)
    profile = re.match(r"^\[(?:profile )?([^\]]+)\]", block[0]).group(1)
    home = srv.data_dir.parent / f"{srv.data_dir.name}-aws"
    home.mkdir()
    creds = home / "credentials"
    creds.write_text("\n".join(block) + "\n")
    assert access_key_id in creds.read_text(), block
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AWS_SHARED_CREDENTIALS_FILE": str(creds),
           "AWS_CONFIG_FILE": str(home / "config"), "AWS_EC2_METADATA_DISABLED": "true"}
    argv = [aws_bin(), "--profile", profile, "--output", "json", "sts", "get-caller-identity"]
    if not any(b.startswith("endpoint_url") for b in block):
        argv[1:1] = ["--endpoint-url", srv.endpoint]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, f"the printed profile does not work:\n{creds.read_text()}\n{proc.stderr}"
        assert json.loads(proc.stdout)["Account"] == ACCOUNT_ID
    finally:
        for f in home.iterdir():
            f.unlink()
        home.rmdir()
