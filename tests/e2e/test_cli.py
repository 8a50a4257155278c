"""The `skiff` command-line client against a real server: clusters and task definitions, readable tables by
default and `--output json`, AWS error codes on stderr with a non-zero exit."""

import json
import subprocess

import pytest

from harness import ACCOUNT_ID, SKIFF_BIN, cluster_arn, fargate_task_definition, task_definition_arn, uniq


def skiff(server, *args, check=True, env_extra=None, credentials=True, timeout=60):
    """Runs `skiff ARGS --endpoint URL`; returns CompletedProcess. Credentials come from the AWS_* env."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
    if credentials:
        ak, sk = server.credentials()
        env.update(AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk)
    env.update(env_extra or {})
    argv = [str(SKIFF_BIN), *args, "--endpoint", server.endpoint]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"skiff {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\n"
                             f"stderr: {proc.stderr}")
    return proc


def skiff_json(server, *args, **kw):
    out = skiff(server, *args, "--output", "json", **kw).stdout
    return json.loads(out)


def test_clusters_create_ls_describe_delete(server, ecs):
    name = uniq("skiffcli")
    created = skiff_json(server, "clusters", "create", name, "--tag", "team=cli", "--tag", "env=e2e")
    assert created["cluster"]["clusterArn"] == cluster_arn(name)
    assert created["cluster"]["status"] == "ACTIVE"
    # What the CLI made is what the API reports.
    c = ecs.describe_clusters(clusters=[name], include=["TAGS"])["clusters"][0]
    assert {t["key"]: t["value"] for t in c["tags"]} == {"team": "cli", "env": "e2e"}

    listed = skiff_json(server, "clusters", "ls")
    assert cluster_arn(name) in listed["clusterArns"]
    table = skiff(server, "clusters", "ls").stdout
    assert name in table and "ACTIVE" in table
    with pytest.raises(ValueError):
        json.loads(table)

    described = skiff_json(server, "clusters", "describe", name)
    assert described["clusters"][0]["clusterName"] == name
    assert {t["key"]: t["value"] for t in described["clusters"][0]["tags"]} == {"team": "cli", "env": "e2e"}
    text = skiff(server, "clusters", "describe", name).stdout
    assert name in text and cluster_arn(name) in text

    deleted = skiff_json(server, "clusters", "delete", name)
    assert deleted["cluster"]["status"] == "INACTIVE"
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["status"] == "INACTIVE"


def test_task_definitions_register_ls_describe_deregister_delete(server, ecs, tmp_path):
    family = uniq("skiffcli-td")
    spec = tmp_path / "td.json"
    spec.write_text(json.dumps(fargate_task_definition(family)))

    reg = skiff_json(server, "task-definitions", "register", str(spec))
    assert reg["taskDefinition"]["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert reg["taskDefinition"]["containerDefinitions"][0]["essential"] is True
    text = skiff(server, "task-definitions", "register", str(spec)).stdout
    assert family in text

    listed = skiff_json(server, "task-definitions", "ls", "--family-prefix", family)
    assert listed["taskDefinitionArns"] == [task_definition_arn(family, 1), task_definition_arn(family, 2)]
    table = skiff(server, "td", "ls", "--family-prefix", family).stdout
    rows = [line.split() for line in table.splitlines() if family in line]
    assert len(rows) == 2 and all(("1" in r or "2" in r) for r in rows), table
    with pytest.raises(ValueError):
        json.loads(table)

    described = skiff_json(server, "task-definitions", "describe", f"{family}:1")
    assert described["taskDefinition"]["revision"] == 1
    assert described["taskDefinition"]["cpu"] == "256"
    assert family in skiff(server, "task-definitions", "describe", family).stdout

    dereg = skiff_json(server, "task-definitions", "deregister", f"{family}:1")
    assert dereg["taskDefinition"]["status"] == "INACTIVE"
    inactive = skiff_json(server, "task-definitions", "ls", "--family-prefix", family, "--status", "INACTIVE")
    assert inactive["taskDefinitionArns"] == [task_definition_arn(family, 1)]

    deleted = skiff_json(server, "task-definitions", "delete", f"{family}:1")
    assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS"
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == [task_definition_arn(family, 2)]


def test_register_from_stdin(server, tmp_path):
    family = uniq("skiffcli-stdin")
    ak, sk = server.credentials()
    proc = subprocess.run(
        [str(SKIFF_BIN), "td", "register", "-", "--endpoint", server.endpoint, "--output", "json"],
        input=json.dumps(fargate_task_definition(family)), capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["taskDefinition"]["family"] == family


@pytest.mark.parametrize(
    "args,code",
    [
        (("clusters", "delete", "no-such-cluster-xyz"), "ClusterNotFoundException"),
        (("task-definitions", "describe", "no-such-family-xyz"), "ClientException"),
        (("task-definitions", "deregister", "no-such-family-xyz:1"), None),
    ],
    ids=["delete-unknown-cluster", "describe-unknown-td", "deregister-unknown-td"],
)
def test_errors_exit_non_zero_with_the_aws_code(server, args, code):
    proc = skiff(server, *args, check=False)
    assert proc.returncode != 0, proc
    if code:
        assert code in proc.stderr, proc.stderr
    assert proc.stderr.strip(), "an error must say something on stderr"


def test_invalid_task_definition_is_reported(server, tmp_path):
    family = uniq("skiffcli-bad")
    spec = tmp_path / "td.json"
    spec.write_text(json.dumps(fargate_task_definition(family, cpu="300")))
    proc = skiff(server, "td", "register", str(spec), check=False)
    assert proc.returncode != 0
    assert "ClientException" in proc.stderr, proc.stderr


def test_describe_missing_cluster_fails(server):
    name = uniq("skiffcli-missing")
    proc = skiff(server, "clusters", "describe", name, check=False)
    assert proc.returncode != 0
    assert "MISSING" in proc.stderr and name in proc.stderr, proc.stderr


def test_wrong_credentials_are_reported(server):
    proc = skiff(server, "clusters", "ls", check=False, credentials=False,
                 env_extra={"AWS_ACCESS_KEY_ID": server.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": "wrongSecretKey/0123456789abcdefghijklmnopq"})
    assert proc.returncode != 0
    assert "InvalidSignatureException" in proc.stderr, proc.stderr


def test_credentials_from_the_data_directory(make_server):
    srv = make_server("cli-datadir", credentials=None)
    name = uniq("skiffcli-dd")
    out = skiff(srv, "clusters", "create", name, "--data-dir", str(srv.data_dir), "--output", "json",
                credentials=False).stdout
    assert json.loads(out)["cluster"]["clusterArn"] == cluster_arn(name, ACCOUNT_ID)


def test_root_credentials_from_skiff_env(server):
    ak, sk = server.credentials()
    proc = skiff(server, "clusters", "ls", "--output", "json", credentials=False,
                 env_extra={"SKIFF_ROOT_ACCESS_KEY_ID": ak, "SKIFF_ROOT_SECRET_ACCESS_KEY": sk})
    assert "clusterArns" in json.loads(proc.stdout)
