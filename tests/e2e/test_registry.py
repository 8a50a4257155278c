"""The registry the way users drive it: `aws ecr get-login-password | skopeo login`, `skopeo copy` to push
and pull, `podman pull`, `aws ecr describe-images`; and the way hostile or unlucky clients do: no token, a
wrong token, an upload cut off halfway, the server killed with SIGKILL in the middle of a push.

Images come from tests/images/oci_image.py (byte-reproducible OCI layouts built from Debian's
busybox-static), so "byte-identical" is checked against files on disk. Expected behaviour comes from the OCI
Distribution Spec v1.1 and AWS's ECR documentation.

Every test works in its own temporary directory (auth file, layouts, podman storage) and deletes it and
the repositories it created, even when it fails. skopeo and podman never see the user's configuration:
HOME points into the temporary directory and every command gets an explicit `--authfile`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest

import harness
from harness import ACCOUNT_ID, REGION, SkiffServer, aws_bin, aws_env, eventually, signed_request, uniq

IMAGES_DIR = harness.REPO / "tests" / "images"
sys.path.insert(0, str(IMAGES_DIR))
import oci_image  # noqa: E402  (tests/images is not a package)

SKOPEO = shutil.which("skopeo")
PODMAN = shutil.which("podman")

pytestmark = [
    pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (make deps installs it)"),
    pytest.mark.skipif(not oci_image.BUSYBOX.exists(),
                       reason=f"{oci_image.BUSYBOX} is missing: install busybox-static (make deps installs it)"),
]

ECR_TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CMD_TIMEOUT = 180


# ---------------------------------------------------------------------------------------------------------
# helpers


class Work:
    """A test's private directory: HOME for skopeo/podman, the auth file, layouts to pull into."""

    def __init__(self, root: Path):
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.authfile = root / "auth.json"
        self._n = 0

    def fresh(self, name: str) -> Path:
        self._n += 1
        return self.root / f"{self._n:02d}-{name}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "REGISTRY_AUTH_FILE", "DOCKER_", "CONTAINERS_", "XDG_"))}
        env["HOME"] = str(self.home)
        env["REGISTRY_AUTH_FILE"] = str(self.authfile)
        env["XDG_RUNTIME_DIR"] = str(self.root / "run")
        (self.root / "run").mkdir(exist_ok=True, mode=0o700)
        return env


@pytest.fixture
def work():
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-registry-"))
    try:
        yield Work(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def images():
    """The test images, built once: busybox (one layer), a relabelled busybox (a different image with the
    same layer), and the three-layer variant with whiteouts."""
    root = Path(tempfile.mkdtemp(prefix="skiff-e2e-images-"))
    try:
        yield {
            "busybox": oci_image.build_busybox(root / "busybox", "single", "latest"),
            "busybox2": oci_image.build_busybox(root / "busybox2", "single", "latest", {"variant": "two"}),
            "multi": oci_image.build_busybox(root / "multi", "multi", "latest"),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ecr(server):
    return server.client("ecr")


@pytest.fixture
def repos(server):
    """repos(server=None, **CreateRepository kwargs) -> a new repository's description; deleted (force)
    afterwards."""
    made: list[tuple[SkiffServer, str]] = []

    def create(srv: Optional[SkiffServer] = None, **kw) -> dict:
        srv = srv or server
        kw.setdefault("repositoryName", uniq("reg"))
        repo = srv.client("ecr").create_repository(**kw)["repository"]
        made.append((srv, repo["repositoryName"]))
        return repo

    yield create
    for srv, name in made:
        if srv.running():
            try:
                srv.client("ecr").delete_repository(repositoryName=name, force=True)
            except Exception:  # noqa: BLE001 - best effort; the server may be gone
                pass


def run(argv: list[str], work: Work, *, check: bool = True, input: Optional[str] = None,
        timeout: float = CMD_TIMEOUT) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, env=work.env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def login_password(server: SkiffServer) -> str:
    """`aws ecr get-login-password`, exactly as users run it."""
    argv = [aws_bin(), "--endpoint-url", server.endpoint, "--region", REGION, "ecr", "get-login-password"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=aws_env(server))
    assert proc.returncode == 0, f"aws ecr get-login-password exited {proc.returncode}: {proc.stderr}"
    password = proc.stdout.strip()
    assert password and "\n" not in password, f"get-login-password printed {proc.stdout!r}"
    return password


def skopeo_login(server: SkiffServer, work: Work) -> None:
    run([SKOPEO, "login", "--tls-verify=false", "--authfile", str(work.authfile), "-u", "AWS", "--password-stdin",
         server.address], work, input=login_password(server) + "\n")


def skopeo_copy(src: str, dst: str, work: Work, *, check: bool = True) -> subprocess.CompletedProcess:
    return run([SKOPEO, "--insecure-policy", "copy", "--authfile", str(work.authfile),
                "--src-tls-verify=false", "--dest-tls-verify=false", src, dst], work, check=check)


def push(image: oci_image.Image, uri: str, tag: str, work: Work, *, check: bool = True):
    return skopeo_copy(image.ref, f"docker://{uri}:{tag}", work, check=check)


def pull_layout(uri: str, tag: str, work: Work) -> Path:
    out = work.fresh("pulled")
    skopeo_copy(f"docker://{uri}:{tag}", f"oci:{out}:{tag}", work)
    return out


def layout_manifest_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    found = [m["digest"] for m in index["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
    assert len(found) == 1, f"{layout}/index.json has no single manifest tagged {tag}: {index}"
    return found[0]


def blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((layout / "blobs" / "sha256").iterdir())}


def assert_identical(pulled: Path, image: oci_image.Image, tag: str) -> None:
    """The pulled layout holds exactly the image's blobs, byte for byte, under the same manifest digest."""
    assert layout_manifest_digest(pulled, tag) == image.manifest_digest
    got, want = blobs(pulled), blobs(image.out_dir)
    assert sorted(got) == sorted(want), f"blobs differ: pulled {sorted(got)}, pushed {sorted(want)}"
    for name, data in want.items():
        assert got[name] == data, f"blob sha256:{name} differs after the round trip"
        assert hashlib.sha256(got[name]).hexdigest() == name


def skopeo_inspect(uri: str, tag: str, work: Work, *extra: str) -> subprocess.CompletedProcess:
    return run([SKOPEO, "inspect", "--tls-verify=false", "--authfile", str(work.authfile), *extra,
                f"docker://{uri}:{tag}"], work, check=False)


def registry_token(server: SkiffServer) -> str:
    """The Basic credentials ECR hands out: base64("AWS:<token>")."""
    data = server.client("ecr").get_authorization_token()["authorizationData"][0]
    decoded = base64.b64decode(data["authorizationToken"]).decode()
    assert decoded.startswith("AWS:"), f"authorizationToken does not decode to AWS:<token>: {decoded[:20]!r}"
    return data["authorizationToken"]


def v2(server: SkiffServer, method: str, path: str, *, auth: Optional[str] = None, body: bytes = b"",
       headers: Optional[dict] = None) -> harness.RawResponse:
    """A raw /v2/ request; `auth` is the value of the Authorization header."""
    hdrs = {"Host": server.address}
    if auth is not None:
        hdrs["Authorization"] = auth
    hdrs.update(headers or {})
    if body or method in ("PUT", "PATCH", "POST"):
        hdrs.setdefault("Content-Length", str(len(body)))
    return harness.send_raw(server, method, path, hdrs, body, check_request_id=False)


def error_codes(resp: harness.RawResponse) -> list[str]:
    try:
        return [e.get("code") for e in json.loads(resp.body)["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


def ecr_raw(server: SkiffServer, operation: str, payload: dict) -> harness.RawResponse:
    return signed_request(
        server, service="ecr", body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECR_TARGET_PREFIX}.{operation}"},
    )


def image_details(server: SkiffServer, repository: str) -> list[dict]:
    ecr = server.client("ecr")
    details, token = [], None
    while True:
        kw = {"repositoryName": repository}
        if token:
            kw["nextToken"] = token
        resp = ecr.describe_images(**kw)
        details += resp["imageDetails"]
        token = resp.get("nextToken")
        if not token:
            return details


def tags_of(server: SkiffServer, repository: str) -> dict[str, str]:
    """tag -> manifest digest, from DescribeImages."""
    return {t: d["imageDigest"] for d in image_details(server, repository) for t in d.get("imageTags", [])}


# ---------------------------------------------------------------------------------------------------------
# the image builder


def test_image_builder_is_reproducible(work):
    for variant in ("single", "multi"):
        a = oci_image.build_busybox(work.fresh(variant), variant, "v1")
        b = oci_image.build_busybox(work.fresh(variant), variant, "v1")
        assert a.manifest_digest == b.manifest_digest
        assert blobs(a.out_dir) == blobs(b.out_dir)
        assert (a.out_dir / "index.json").read_bytes() == (b.out_dir / "index.json").read_bytes()
        assert json.loads((a.out_dir / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        assert len(a.layer_digests) == (1 if variant == "single" else 3)
        # skopeo reads the layout.
        got = json.loads(run([SKOPEO, "inspect", f"oci:{a.out_dir}:v1"], work).stdout)
        assert got["Digest"] == a.manifest_digest
        assert got["Layers"] == a.layer_digests
        assert (got["Architecture"], got["Os"]) == ("amd64", "linux")
    # The benchmark's generator too (small here).
    r1 = oci_image.build_random(work.fresh("random"), size_mib=2, layers=2, seed=5)
    r2 = oci_image.build_random(work.fresh("random"), size_mib=2, layers=2, seed=5)
    r3 = oci_image.build_random(work.fresh("random"), size_mib=2, layers=2, seed=6)
    assert r1.manifest_digest == r2.manifest_digest != r3.manifest_digest
    assert blobs(r1.out_dir) == blobs(r2.out_dir)


def test_image_builder_command_line(work):
    out = work.fresh("cli")
    proc = run([str(IMAGES_DIR / "build-busybox.sh"), str(out), "--variant", "multi", "--tag", "t1"], work)
    printed = json.loads(proc.stdout)
    assert printed["manifest"] == layout_manifest_digest(out, "t1")
    assert printed["manifest"] == oci_image.build_busybox(work.fresh("lib"), "multi", "t1").manifest_digest
    # A non-empty output directory is refused rather than mixed.
    again = run([str(IMAGES_DIR / "build-busybox.sh"), str(out)], work, check=False)
    assert again.returncode != 0 and "not empty" in again.stderr


def test_busybox_layer_contents(work, images):
    import tarfile

    image = images["busybox"]
    layer = image.out_dir / "blobs" / "sha256" / image.layer_digests[0].split(":", 1)[1]
    with tarfile.open(layer, "r:gz") as tar:
        members = {m.name.rstrip("/"): m for m in tar.getmembers()}
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in ("bin/sh", "usr/sbin/httpd", "usr/bin/nc", "bin/sleep"):
        assert members[applet].issym() and members[applet].linkname == "/bin/busybox", applet
    assert members["tmp"].mode == 0o1777
    assert {m.uid for m in members.values()} == {0} and {m.mtime for m in members.values()} == {0}
    names = list(members)
    assert names == sorted(names, key=lambda n: n.split("/")), "layer entries are not sorted by path"
    config = json.loads((image.out_dir / "blobs" / "sha256" / image.config_digest.split(":", 1)[1]).read_text())
    assert config["config"]["Cmd"] == ["sh"]
    assert config["rootfs"]["diff_ids"] == image.diff_ids


# ---------------------------------------------------------------------------------------------------------
# push, pull, inspect, describe


def test_push_and_pull_back_byte_identical(server, repos, work, images):
    repo = repos()
    uri = repo["repositoryUri"]
    assert uri.endswith("/" + repo["repositoryName"]), uri
    skopeo_login(server, work)
    image = images["busybox"]
    push(image, uri, "v1", work)

    pulled = pull_layout(uri, "v1", work)
    assert_identical(pulled, image, "v1")

    inspected = skopeo_inspect(uri, "v1", work)
    assert inspected.returncode == 0, inspected.stderr
    got = json.loads(inspected.stdout)
    assert got["Digest"] == image.manifest_digest
    assert got["Layers"] == image.layer_digests
    raw = skopeo_inspect(uri, "v1", work, "--raw")
    assert raw.returncode == 0, raw.stderr
    manifest_blob = image.out_dir / "blobs" / "sha256" / image.manifest_digest.split(":", 1)[1]
    assert raw.stdout.encode() == manifest_blob.read_bytes()
    # By digest too.
    by_digest = run([SKOPEO, "inspect", "--tls-verify=false", "--authfile", str(work.authfile), "--raw",
                     f"docker://{uri}@{image.manifest_digest}"], work)
    assert by_digest.stdout.encode() == manifest_blob.read_bytes()


def test_multi_layer_variant_round_trips(server, repos, work, images):
    repo = repos()
    uri = repo["repositoryUri"]
    skopeo_login(server, work)
    image = images["multi"]
    push(image, uri, "layers3", work)
    assert_identical(pull_layout(uri, "layers3", work), image, "layers3")
    got = json.loads(skopeo_inspect(uri, "layers3", work).stdout)
    assert got["Layers"] == image.layer_digests and len(got["Layers"]) == 3


def test_describe_images_lists_size_and_pushed_at(server, ecr, repos, work, images):
    repo = repos()
    name, uri = repo["repositoryName"], repo["repositoryUri"]
    skopeo_login(server, work)
    image = images["busybox"]
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=2)
    push(image, uri, "v1", work)
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)

    details = image_details(server, name)
    assert len(details) == 1, details
    d = details[0]
    assert d["registryId"] == ACCOUNT_ID
    assert d["repositoryName"] == name
    assert d["imageDigest"] == image.manifest_digest
    assert d["imageTags"] == ["v1"]
    layers = sum(image.blob_sizes[x] for x in image.layer_digests)
    assert layers <= d["imageSizeInBytes"] <= image.total_size, (d["imageSizeInBytes"], layers, image.total_size)
    assert isinstance(d["imagePushedAt"], dt.datetime)
    assert before <= d["imagePushedAt"] <= after, (before, d["imagePushedAt"], after)
    assert d.get("imageManifestMediaType") == OCI_MANIFEST

    # On the wire, imagePushedAt is an epoch-seconds number (as ECR sends it), not a string.
    raw = ecr_raw(server, "DescribeImages", {"repositoryName": name})
    assert raw.status == 200, raw
    wire = raw.json()["imageDetails"][0]
    assert isinstance(wire["imagePushedAt"], (int, float)) and not isinstance(wire["imagePushedAt"], bool), wire
    assert isinstance(wire["imageSizeInBytes"], int), wire

    # The AWS CLI, as users run it.
    out = server.aws("ecr", "describe-images", "--repository-name", name)
    assert [x["imageDigest"] for x in out["imageDetails"]] == [image.manifest_digest]
    assert out["imageDetails"][0]["imageSizeInBytes"] == d["imageSizeInBytes"]
    assert out["imageDetails"][0]["imagePushedAt"]

    # Filtered by tag, and by digest.
    by_tag = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": "v1"}])["imageDetails"]
    assert [x["imageDigest"] for x in by_tag] == [image.manifest_digest]
    by_digest = ecr.describe_images(repositoryName=name, imageIds=[{"imageDigest": image.manifest_digest}])
    assert [x["imageTags"] for x in by_digest["imageDetails"]] == [["v1"]]


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed (make deps installs it)")
def test_podman_pulls(server, repos, work, images):
    repo = repos()
    uri = repo["repositoryUri"]
    skopeo_login(server, work)
    image = images["busybox"]
    push(image, uri, "v1", work)

    storage = work.root / "podman"
    podman = [PODMAN, "--root", str(storage / "root"), "--runroot", str(storage / "runroot"),
              "--tmpdir", str(storage / "tmp"), "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
              "--events-backend", "none"]
    podman_auth = work.root / "podman-auth.json"
    try:
        run([*podman, "login", "--tls-verify=false", "--authfile", str(podman_auth), "-u", "AWS",
             "--password-stdin", server.address], work, input=login_password(server) + "\n")
        run([*podman, "pull", "--tls-verify=false", "--authfile", str(podman_auth), f"{uri}:v1"], work)
        inspected = json.loads(run([*podman, "image", "inspect", f"{uri}:v1"], work).stdout)
        assert len(inspected) == 1
        assert inspected[0]["Digest"] == image.manifest_digest
        assert inspected[0]["RootFS"]["Layers"] == image.diff_ids
        assert inspected[0]["Config"]["Cmd"] == ["sh"]
        # And by digest.
        run([*podman, "pull", "--tls-verify=false", "--authfile", str(podman_auth),
             f"{uri}@{image.manifest_digest}"], work)
        # Without credentials podman is refused (a tag not cached locally, so it must ask).
        empty_auth = work.root / "empty-auth.json"
        empty_auth.write_text("{}")
        anon = run([*podman, "pull", "--tls-verify=false", "--authfile", str(empty_auth),
                    f"{uri}:nope"], work, check=False)
        assert anon.returncode != 0
    finally:
        subprocess.run([*podman, "rmi", "--all", "--force"], capture_output=True, timeout=120, env=work.env())
        shutil.rmtree(storage, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# immutable tags


def test_immutable_tag_refuses_a_second_push(server, repos, work, images):
    repo = repos(imageTagMutability="IMMUTABLE")
    name, uri = repo["repositoryName"], repo["repositoryUri"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    skopeo_login(server, work)
    first, other = images["busybox"], images["busybox2"]
    push(first, uri, "release-1", work)
    # The same image again, to the same tag: fine.
    push(first, uri, "release-1", work)

    # A different image to that tag: refused, and the tag still names the first image.
    refused = push(other, uri, "release-1", work, check=False)
    assert refused.returncode != 0, f"the second push over an IMMUTABLE tag succeeded: {refused.stderr}"
    err = refused.stderr.lower()
    assert "tag invalid" in err or "immutable" in err, refused.stderr
    assert "release-1" in err.split("tag invalid", 1)[-1] or "release-1" in err.split("immutable", 1)[-1], \
        f"the error does not name the tag: {refused.stderr}"
    assert tags_of(server, name) == {"release-1": first.manifest_digest}
    # skopeo retries the refused push converted to other manifest formats: none of them may be stored either.
    assert [d["imageDigest"] for d in image_details(server, name)] == [first.manifest_digest]
    assert_identical(pull_layout(uri, "release-1", work), first, "release-1")

    # Another tag is fine, and then the registry answers a direct manifest PUT over the tag with TAG_INVALID.
    push(other, uri, "release-2", work)
    manifest = (other.out_dir / "blobs" / "sha256" / other.manifest_digest.split(":", 1)[1]).read_bytes()
    resp = v2(server, "PUT", f"/v2/{name}/manifests/release-1", auth=f"Basic {registry_token(server)}",
              body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert resp.status == 400, resp
    assert error_codes(resp) == ["TAG_INVALID"], resp
    assert "release-1" in resp.body.decode(), resp
    assert tags_of(server, name) == {"release-1": first.manifest_digest, "release-2": other.manifest_digest}


def test_mutable_tag_moves(server, repos, work, images):
    repo = repos()
    name, uri = repo["repositoryName"], repo["repositoryUri"]
    skopeo_login(server, work)
    push(images["busybox"], uri, "latest", work)
    push(images["busybox2"], uri, "latest", work)
    assert tags_of(server, name) == {"latest": images["busybox2"].manifest_digest}
    # The untagged first image is still there, by digest.
    digests = {d["imageDigest"]: d.get("imageTags", []) for d in image_details(server, name)}
    assert digests == {images["busybox"].manifest_digest: [], images["busybox2"].manifest_digest: ["latest"]}


# ---------------------------------------------------------------------------------------------------------
# auth


def test_anonymous_and_wrong_tokens_get_401(server):
    def assert_401(resp: harness.RawResponse) -> None:
        assert resp.status == 401, resp
        challenge = resp.headers.get("WWW-Authenticate") or ""
        assert challenge.lower().startswith("basic ") and "realm=" in challenge.lower(), challenge
        assert error_codes(resp) == ["UNAUTHORIZED"], resp

    assert_401(v2(server, "GET", "/v2/"))
    assert_401(v2(server, "GET", "/v2"))
    assert_401(v2(server, "GET", "/v2/_catalog"))
    good = registry_token(server)
    token = base64.b64decode(good).decode().split(":", 1)[1]
    assert_401(v2(server, "GET", "/v2/", auth="Basic " + base64.b64encode(b"AWS:not-a-token").decode()))
    # A genuine token with one character changed.
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert_401(v2(server, "GET", "/v2/", auth="Basic " + base64.b64encode(f"AWS:{flipped}".encode()).decode()))
    # The right token under another user name.
    assert_401(v2(server, "GET", "/v2/", auth="Basic " + base64.b64encode(f"admin:{token}".encode()).decode()))
    assert_401(v2(server, "GET", "/v2/", auth="Basic !!!not-base64"))
    # SigV4 keys are not registry credentials.
    keys = f"{server.access_key_id}:{server.secret_access_key}".encode()
    assert_401(v2(server, "GET", "/v2/", auth="Basic " + base64.b64encode(keys).decode()))

    ok = v2(server, "GET", "/v2/", auth=f"Basic {good}")
    assert ok.status == 200, ok
    assert ok.headers.get("Docker-Distribution-API-Version") == "registry/2.0", dict(ok.headers)


def test_curl_anonymous_gets_401(server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (make deps installs it)")
    proc = subprocess.run([curl, "-sS", "-D", "-", "-o", "/dev/null", f"{server.endpoint}/v2/"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    status = proc.stdout.splitlines()[0]
    assert " 401" in status, proc.stdout
    assert "www-authenticate: basic" in proc.stdout.lower(), proc.stdout


def test_token_from_another_server_is_refused(server, make_server):
    other = make_server("other-registry")
    foreign = registry_token(other)
    resp = v2(server, "GET", "/v2/", auth=f"Basic {foreign}")
    assert resp.status == 401, resp


def test_skopeo_without_login_is_refused(server, repos, work, images):
    repo = repos()
    refused = push(images["busybox"], repo["repositoryUri"], "v1", work, check=False)
    assert refused.returncode != 0
    assert "unauthorized" in refused.stderr.lower() or "authentication required" in refused.stderr.lower(), \
        refused.stderr
    assert image_details(server, repo["repositoryName"]) == []


# ---------------------------------------------------------------------------------------------------------
# interrupted uploads


def _files_named(root: Path, hexdigest: str) -> list[Path]:
    return [p for p in root.rglob("*") if hexdigest in p.name]


def test_chunked_upload_cut_off_leaves_nothing(server, repos):
    repo = repos()
    name = repo["repositoryName"]
    auth = f"Basic {registry_token(server)}"
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    half = len(data) // 2

    # 1. POST, PATCH the first half, then never finish the session.
    start = v2(server, "POST", f"/v2/{name}/blobs/uploads/", auth=auth)
    assert start.status == 202, start
    location = start.headers["Location"]
    assert location, start
    path = location if location.startswith("/") else "/" + location.split("/", 3)[3]
    patched = v2(server, "PATCH", path, auth=auth, body=data[:half],
                 headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{half - 1}"})
    assert patched.status == 202, patched
    assert patched.headers.get("Range") == f"0-{half - 1}", dict(patched.headers)

    # 2. A monolithic PUT whose connection drops halfway through the body.
    start2 = v2(server, "POST", f"/v2/{name}/blobs/uploads/", auth=auth)
    assert start2.status == 202, start2
    loc2 = start2.headers["Location"]
    path2 = loc2 if loc2.startswith("/") else "/" + loc2.split("/", 3)[3]
    sep = "&" if "?" in path2 else "?"
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.putrequest("PUT", f"{path2}{sep}digest={digest}", skip_host=True, skip_accept_encoding=True)
    for k, v in {"Host": server.address, "Authorization": auth, "Content-Type": "application/octet-stream",
                 "Content-Length": str(len(data))}.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(data[:half])
    conn.sock.shutdown(2)
    conn.close()

    # 3. A POST with ?digest= (monolithic in one request) cut off the same way.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.putrequest("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", skip_host=True, skip_accept_encoding=True)
    for k, v in {"Host": server.address, "Authorization": auth, "Content-Type": "application/octet-stream",
                 "Content-Length": str(len(data))}.items():
        conn.putheader(k, v)
    conn.endheaders()
    conn.send(data[:half])
    conn.sock.shutdown(2)
    conn.close()

    # Nothing is visible: not the blob, not an image, not a tag, and no file named by the digest.
    def blob_absent() -> bool:
        head = v2(server, "HEAD", f"/v2/{name}/blobs/{digest}", auth=auth)
        assert head.status == 404, head
        return True

    eventually(10, blob_absent, "the cut-off blob became visible")
    get = v2(server, "GET", f"/v2/{name}/blobs/{digest}", auth=auth)
    assert get.status == 404 and error_codes(get) == ["BLOB_UNKNOWN"], get
    tags = v2(server, "GET", f"/v2/{name}/tags/list", auth=auth)
    assert tags.status == 200, tags
    assert not (json.loads(tags.body).get("tags") or []), tags
    assert image_details(server, name) == []
    time.sleep(0.2)  # give a (wrong) background finisher a moment; the check below must still hold
    assert _files_named(server.data_dir, digest.split(":")[1]) == []

    # The first session is still resumable (it was not corrupted): finishing it stores exactly the blob.
    status = v2(server, "GET", path, auth=auth)
    assert status.status == 204 and status.headers.get("Range") == f"0-{half - 1}", status
    sep = "&" if "?" in path else "?"
    done = v2(server, "PUT", f"{path}{sep}digest={digest}", auth=auth, body=data[half:],
              headers={"Content-Type": "application/octet-stream"})
    assert done.status == 201, done
    assert done.headers.get("Docker-Content-Digest") == digest, dict(done.headers)
    got = v2(server, "GET", f"/v2/{name}/blobs/{digest}", auth=auth)
    assert got.status == 200 and got.body == data, got.status


def _registry_bytes(data_dir: Path) -> int:
    """Bytes on disk outside the store's own files: blobs and uploads, whatever the layout."""
    total = 0
    for p in data_dir.rglob("*"):
        if p.name.startswith("state.db"):
            continue
        try:
            if p.is_file():
                total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


@pytest.mark.slow
def test_kill9_mid_push_loses_no_acknowledged_image(make_server, repos, work, images):
    srv = make_server("registry-kill9")
    repo = repos(srv)
    name = repo["repositoryName"]
    skopeo_login(srv, work)
    done = {"one": images["busybox"], "two": images["multi"], "three": images["busybox2"]}
    for tag, image in done.items():
        push(image, repo["repositoryUri"], tag, work)  # acknowledged: skopeo exited 0

    killed_mid_push, tag, big = False, "", None
    for attempt in range(3):
        # A new image each attempt: blobs already stored would not be uploaded again.
        big = oci_image.build_random(work.fresh("big"), size_mib=24, layers=2, seed=424242 + attempt)
        tag = f"partial{attempt}"
        baseline = _registry_bytes(srv.data_dir)
        proc = subprocess.Popen(
            [SKOPEO, "--insecure-policy", "copy", "--authfile", str(work.authfile), "--dest-tls-verify=false",
             big.ref, f"docker://{srv.address}/{name}:{tag}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=work.env())
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if _registry_bytes(srv.data_dir) - baseline >= 1024 * 1024:
                    break
                time.sleep(0.005)
            killed = proc.poll() is None
            if killed:
                srv.kill()  # SIGKILL, mid-upload
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode == 0:
            # The push was acknowledged before the kill landed (too fast): it must survive like the others.
            done[tag] = big
            if not srv.running():
                srv.start()
                skopeo_login(srv, work)
            continue
        assert killed, f"skopeo failed without the server being killed: {err}"
        killed_mid_push = True
        break
    assert killed_mid_push, "every push finished before the server could be killed mid-upload"

    srv.start()  # same data directory, new port
    skopeo_login(srv, work)
    uri = f"{srv.address}/{name}"
    assert tags_of(srv, name) == {t: img.manifest_digest for t, img in done.items()}, \
        "after kill -9: the acknowledged images (and only they) must be listed"
    for t, image in done.items():
        assert_identical(pull_layout(uri, t, work), image, t)
    gone = skopeo_inspect(uri, tag, work)
    assert gone.returncode != 0, f"the interrupted push {tag} is visible: {gone.stdout}"
    assert "manifest unknown" in gone.stderr.lower() or "not found" in gone.stderr.lower(), gone.stderr

    # Whatever the interrupted push left behind does not get in the way: pushing it again works and
    # round-trips byte-identical.
    push(big, uri, tag, work)
    assert_identical(pull_layout(uri, tag, work), big, tag)
