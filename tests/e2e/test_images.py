"""`skiff images` against the Skiff registry, the way an operator uses it: push the busybox test images with
skopeo, then `skiff images pull … --username AWS --password-stdin` with `aws ecr get-login-password`'s
output, `skiff images ls`, `skiff images rm`. Checks what lands in the cache (the unpacked layers in the
overlayfs form: whiteouts as 0/0 character devices, opaque directories marked with trusted.overlay.opaque),
the progress lines, that a second pull is a cache hit, and the CannotPullContainerError texts.

Every test uses its own data directory and repository and removes both, even when it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import harness
from harness import REGION, SkiffServer, aws_bin, aws_env, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
TIMEOUT = 180

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(), reason=f"{oci_image.BUSYBOX} is missing (busybox-static)"),
]


@pytest.fixture(scope="module")
def built():
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-images-"))
    try:
        yield {
            "single": oci_image.build_busybox(root / "single", "single", "latest"),
            "multi": oci_image.build_busybox(root / "multi", "multi", "latest"),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def data_dir():
    d = Path(tempfile.mkdtemp(prefix="skiff-e2e-images-data-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def repo(server):
    name = uniq("img")
    server.client("ecr").create_repository(repositoryName=name)
    try:
        yield name
    finally:
        try:
            server.client("ecr").delete_repository(repositoryName=name, force=True)
        except Exception:  # noqa: BLE001 - best effort
            pass


def push(server: SkiffServer, image: oci_image.Image, repo: str, tag: str) -> None:
    harness.skopeo_push(server, image.ref, repo, tag, timeout=TIMEOUT)


def skiff(data_dir: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKIFF_", "AWS_"))}
    argv = [str(harness.SKIFF_BIN), "images", *args, "--data-dir", str(data_dir)]
    proc = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=TIMEOUT, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def short(digest: str) -> str:
    return digest.split(":", 1)[1][:12]


def layer_fs(data_dir: Path, diff_id: str) -> Path:
    return data_dir / "agent" / "images" / "layers" / diff_id.split(":", 1)[1] / "fs"


def test_pull_ls_rm_from_the_skiff_registry(server, built, repo, data_dir):
    image = built["multi"]
    push(server, image, repo, "v1")
    ref = f"{server.address}/{repo}:v1"
    password = harness.login_password(server) + "\n"

    # Without credentials the registry refuses, and the error says so the way ECS would.
    denied = skiff(data_dir, "pull", ref, check=False)
    assert denied.returncode == 1
    assert "CannotPullContainerError: pull image manifest has been retried 1 time(s): " \
           f"failed to resolve ref {ref}: pull access denied" in denied.stderr, denied.stderr

    first = skiff(data_dir, "pull", ref, "--username", "AWS", "--password-stdin", stdin=password)
    assert first.stdout.startswith(f"pulled {ref} ({image.manifest_digest}): 3 layers, "), first.stdout
    # stderr is not a terminal here: one line per layer event instead of a bar.
    for digest in image.layer_digests:
        assert f"{short(digest)}: downloading" in first.stderr, first.stderr
        assert f"{short(digest)}: pulled and unpacked" in first.stderr, first.stderr

    # The layers are in the cache in overlayfs form.
    bottom, middle, top = (layer_fs(data_dir, d) for d in image.diff_ids)
    busybox = bottom / "bin" / "busybox"
    assert busybox.read_bytes() == oci_image.BUSYBOX.read_bytes()
    assert stat.S_IMODE(busybox.stat().st_mode) == 0o755
    assert os.readlink(bottom / "bin" / "sh") == "/bin/busybox"
    assert stat.S_IMODE((bottom / "tmp").stat().st_mode) == 0o1777
    whiteout = (middle / "data" / "remove-me.txt").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0, "the whiteout is not a 0/0 character device"
    assert not (middle / "data" / ".wh.remove-me.txt").exists()
    assert os.getxattr(middle / "opaque", "trusted.overlay.opaque") == b"y"
    assert not (middle / "opaque" / ".wh..wh..opq").exists()
    assert (top / "etc" / "motd").read_bytes() == b"motd of layer 3\n"
    assert not any((data_dir / "agent" / "images" / "tmp").iterdir()), "temporary directories left behind"

    # A second pull is a cache hit.
    second = skiff(data_dir, "pull", ref, "--username", "AWS", "--password-stdin", stdin=password)
    assert "downloading" not in second.stderr, second.stderr
    assert second.stderr.count("already in the cache") == 3, second.stderr

    # By digest, once cached, no credentials are needed: nothing is asked of the registry.
    by_digest = f"{server.address}/{repo}@{image.manifest_digest}"
    skiff(data_dir, "pull", by_digest)

    listed = json.loads(skiff(data_dir, "ls", "-o", "json").stdout)["images"]
    assert len(listed) == 1, listed
    assert listed[0]["references"] == sorted([ref, by_digest])
    assert listed[0]["manifestDigest"] == image.manifest_digest
    assert listed[0]["configDigest"] == image.config_digest
    assert listed[0]["layers"] == 3 and listed[0]["size"] > len(oci_image.BUSYBOX.read_bytes())
    table = skiff(data_dir, "ls").stdout
    assert ref in table and short(image.manifest_digest) in table, table

    # rm: the reference, then the other one, and the layers go with the last.
    assert skiff(data_dir, "rm", ref).stdout == f"removed {ref}\n"
    assert middle.exists(), "layers removed while another reference names the image"
    skiff(data_dir, "rm", by_digest)
    assert json.loads(skiff(data_dir, "ls", "-o", "json").stdout)["images"] == []
    assert not any((data_dir / "agent" / "images" / "layers").iterdir())
    again = skiff(data_dir, "rm", ref, check=False)
    assert again.returncode == 1 and "not in the image cache" in again.stderr, again.stderr


def test_two_images_share_a_layer_and_unknown_tags_fail(server, built, repo, data_dir):
    image = built["single"]
    push(server, image, repo, "a")
    push(server, image, repo, "b")
    password = harness.login_password(server) + "\n"
    skiff(data_dir, "pull", f"{server.address}/{repo}:a", "-u", "AWS", "--password-stdin", stdin=password)
    b = skiff(data_dir, "pull", f"{server.address}/{repo}:b", "-u", "AWS", "--password-stdin", stdin=password)
    assert "downloading" not in b.stderr and "already in the cache" in b.stderr, b.stderr
    listed = json.loads(skiff(data_dir, "ls", "-o", "json").stdout)["images"]
    assert [i["references"] for i in listed] == [[f"{server.address}/{repo}:a", f"{server.address}/{repo}:b"]]

    missing = f"{server.address}/{repo}:nope"
    proc = skiff(data_dir, "pull", missing, "-u", "AWS", "--password-stdin", stdin=password, check=False)
    assert proc.returncode == 1
    assert f"CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {missing}: not found" \
        in proc.stderr, proc.stderr
    bad = skiff(data_dir, "pull", "Not/Valid", check=False)
    assert bad.returncode == 1 and "repository name must be lowercase" in bad.stderr, bad.stderr
