"""Pushing images into the suite's server over its /v2/ registry, the way `docker push` does, so the ECR
image operations (DescribeImages, ListImages, BatchGetImage, BatchDeleteImage) have real images to name.

Credentials are what GetAuthorizationToken hands out: `authorizationToken` is base64("AWS:<token>"), sent
as HTTP Basic. Images are tiny OCI images (a config blob and one gzipped tar layer), each distinct by a
label in its config; blobs are uploaded monolithically (POST, then PUT with `?digest=`). The same idea as
tests/e2e/test_ecr_api.py's `Registry`, kept here so the suite does not import a test module.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import tarfile
import urllib.parse
from dataclasses import dataclass
from typing import Any, Optional

import harness

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class PushFailed(AssertionError):
    pass


@dataclass(frozen=True)
class Pushed:
    digest: str  # the manifest's digest, "sha256:…"
    manifest: bytes


class Pusher:
    def __init__(self, server: harness.SkiffServer, ecr: Any) -> None:
        self.server = server
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        self.auth = f"Basic {token}"

    def call(self, method: str, path: str, body: bytes = b"", headers: Optional[dict] = None):
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hdrs = {"Host": self.server.address, "Authorization": self.auth, "Content-Length": str(len(body))}
            hdrs.update(headers or {})
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def _expect(self, what: str, got: tuple, status: int) -> None:
        if got[0] != status:
            raise PushFailed(f"{what}: expected HTTP {status}, got {got[0]}: {got[2][:500]!r}")

    def push_blob(self, repo: str, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        got = self.call("POST", f"/v2/{repo}/blobs/uploads/")
        self._expect(f"POST /v2/{repo}/blobs/uploads/", got, 202)
        parts = urllib.parse.urlsplit(got[1]["Location"])
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        sep = "&" if "?" in path else "?"
        got = self.call("PUT", f"{path}{sep}digest={urllib.parse.quote(digest)}", data,
                        {"Content-Type": "application/octet-stream"})
        self._expect(f"PUT {path} (blob {digest})", got, 201)
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo: str, reference: str, manifest: bytes) -> None:
        got = self.call("PUT", f"/v2/{repo}/manifests/{reference}", manifest, {"Content-Type": OCI_MANIFEST})
        self._expect(f"PUT /v2/{repo}/manifests/{reference}", got, 201)

    def push_image(self, repo: str, tag: Optional[str], label: str) -> Pushed:
        """A one-layer OCI image whose config carries `label` (every label is a new image), under `tag`
        (None: pushed by digest, untagged)."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            data = f"conformance image {label}\n".encode()
            info = tarfile.TarInfo("conformance.txt")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        config = json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"skiff.conformance": label}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
        }).encode()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": dict(self.push_blob(repo, config), mediaType=OCI_CONFIG),
            "layers": [dict(self.push_blob(repo, layer), mediaType=OCI_LAYER)],
        }).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        self.put_manifest(repo, tag or digest, manifest)
        return Pushed(digest, manifest)
