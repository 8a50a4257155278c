#!/usr/bin/env python3
"""Byte-reproducible OCI image layouts for Skiff's tests, demo and benchmarks, built without the internet.

    oci_image.py busybox OUT_DIR [--variant single|multi] [--tag TAG] [--label KEY=VALUE]...
    oci_image.py random  OUT_DIR [--size-mib 200] [--layers 4] [--seed 1] [--tag TAG]

`busybox` packs Debian's busybox-static (/bin/busybox) as a rootfs: the binary, one symlink per applet
(`busybox --install -s` style, each pointing at /bin/busybox), /etc/passwd and /etc/group, and the usual
empty directories. Config: amd64/linux, Cmd ["sh"], PATH set. The `single` variant is one layer; `multi` is
three layers that exercise what an unpacker must get right (see MULTI_LAYERS and multi_expected()):

    layer 1  the busybox rootfs, /data/{keep,remove-me}.txt, /opaque/{old.txt,sub/old2.txt}, /etc/motd
    layer 2  /data/.wh.remove-me.txt (a whiteout deletes the file of layer 1) and /opaque/.wh..wh..opq
             (an opaque directory hides everything layer 1 put under /opaque) plus /opaque/new.txt
    layer 3  /added/hello.txt, /data/layer3.txt, and /etc/motd replaced

`random` packs seeded pseudo-random (incompressible) files, `--layers` gzip layers totalling `--size-mib`
MiB: the benchmark's image. The same seed gives the same bytes, hence the same digests.

Every layer is a tar with entries sorted by path, mtime 0, owner 0:0 with no user/group names, ustar format,
gzip'd without a name or a timestamp; config, manifest and index are compact JSON in a fixed key order; every
blob is stored as blobs/sha256/HEX. Building twice gives identical bytes (a test checks it).
`skopeo inspect oci:OUT_DIR:TAG` reads the result, `skopeo copy oci:OUT_DIR:TAG docker://…` pushes it.

Only the Python standard library; the `busybox` command needs /bin/busybox (`apt-get install busybox-static`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

BUSYBOX = Path(os.environ.get("SKIFF_TEST_BUSYBOX", "/bin/busybox"))

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------------------
# layers


@dataclass(frozen=True)
class Entry:
    """One tar entry. `path` is relative ("bin/sh"), without a leading "/" or "./"."""

    path: str
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o644
    data: bytes = b""
    target: str = ""  # symlinks


def d(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode)


def f(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, data)


def ln(path: str, target: str) -> Entry:
    return Entry(path, "symlink", 0o777, target=target)


def _sort_key(e: Entry) -> list[str]:
    # By path components, so a directory comes right before its children ("bin" < "bin/sh" < "bin-x").
    return e.path.split("/")


def tar_bytes(entries: list[Entry]) -> bytes:
    """A deterministic tar of `entries`; any missing parent directory is added (mode 0755)."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        assert not e.path.startswith(("/", "./")) and e.path, f"bad layer path {e.path!r}"
        if e.path in by_path:
            raise ValueError(f"duplicate layer entry {e.path}")
        by_path[e.path] = e
    for e in list(by_path.values()):
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, d(parent))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for e in sorted(by_path.values(), key=_sort_key):
            info = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = e.mode
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return buf.getvalue()


def gzip_bytes(data: bytes, level: int = 9) -> bytes:
    """gzip -n: no file name, mtime 0."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", compresslevel=level, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------
# the layout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Layer:
    tar: bytes
    comment: str
    gzip_level: int = 9


@dataclass
class Image:
    """What `write_layout` built: digests and sizes, for the tests to compare against."""

    out_dir: Path
    tag: str
    manifest_digest: str
    manifest_size: int
    config_digest: str
    layer_digests: list[str]
    diff_ids: list[str]
    blob_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """The skopeo transport reference of this image."""
        return f"oci:{self.out_dir}:{self.tag}"

    @property
    def total_size(self) -> int:
        """Manifest + config + layers, in bytes."""
        return sum(self.blob_sizes.values())


def _write_blob(out_dir: Path, data: bytes) -> tuple[str, int]:
    digest = sha256(data)
    path = out_dir / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return digest, len(data)


def write_layout(out_dir: Path, tag: str, layers: list[Layer], labels: Optional[dict[str, str]] = None) -> Image:
    """Writes an OCI image layout with one image tagged `tag`. `out_dir` must not exist or be empty."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise SystemExit(f"oci_image: {out_dir} is not empty: give a fresh directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    layer_descs, diff_ids, history, sizes = [], [], [], {}
    for layer in layers:
        diff_ids.append(sha256(layer.tar))
        blob = gzip_bytes(layer.tar, layer.gzip_level)
        digest, size = _write_blob(out_dir, blob)
        sizes[digest] = size
        layer_descs.append({"mediaType": MT_LAYER_GZIP, "digest": digest, "size": size})
        history.append({"created": EPOCH, "created_by": layer.comment})

    image_config = {"Env": [PATH_ENV], "Cmd": ["sh"], "WorkingDir": "/"}
    if labels:
        image_config["Labels"] = dict(sorted(labels.items()))
    config = {
        "created": EPOCH,
        "architecture": "amd64",
        "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    config_digest, config_size = _write_blob(out_dir, canonical_json(config))
    sizes[config_digest] = config_size

    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": config_size},
        "layers": layer_descs,
    }
    manifest_digest, manifest_size = _write_blob(out_dir, canonical_json(manifest))
    sizes[manifest_digest] = manifest_size

    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [
            {"mediaType": MT_MANIFEST, "digest": manifest_digest, "size": manifest_size,
             "annotations": {REF_NAME: tag}}
        ],
    }
    (out_dir / "index.json").write_bytes(canonical_json(index))
    (out_dir / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return Image(out_dir, tag, manifest_digest, manifest_size, config_digest,
                 [x["digest"] for x in layer_descs], diff_ids, sizes)


# ---------------------------------------------------------------------------------------------------------
# busybox


def busybox_applets(busybox: Path = BUSYBOX) -> list[str]:
    """The applets' install paths ("bin/sh", "usr/bin/awk", …), from `busybox --list-full`."""
    if not busybox.exists():
        raise SystemExit(f"oci_image: {busybox} does not exist: install Debian's busybox-static (make deps)")
    out = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True, text=True).stdout
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def busybox_rootfs(busybox: Path = BUSYBOX) -> list[Entry]:
    entries = [
        d("bin"), d("dev"), d("etc"), d("home"), d("proc"), d("root", 0o700), d("sbin"), d("sys"),
        d("tmp", 0o1777), d("usr"), d("usr/bin"), d("usr/sbin"), d("var"), d("var/tmp", 0o1777),
        f("bin/busybox", busybox.read_bytes(), 0o755),
        f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        f("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
    ]
    for applet in busybox_applets(busybox):
        if applet != "bin/busybox":
            entries.append(ln(applet, "/bin/busybox"))
    return entries


MULTI_LAYERS: list[list[Entry]] = [
    # layer 1 (plus the busybox rootfs)
    [
        f("data/keep.txt", b"kept from layer 1\n"),
        f("data/remove-me.txt", b"deleted by layer 2's whiteout\n"),
        f("opaque/old.txt", b"hidden by layer 2's opaque marker\n"),
        f("opaque/sub/old2.txt", b"hidden by layer 2's opaque marker\n"),
        f("etc/motd", b"motd of layer 1\n"),
    ],
    # layer 2: a whiteout and an opaque directory
    [
        f("data/.wh.remove-me.txt", b""),
        d("opaque"),
        f("opaque/.wh..wh..opq", b""),
        f("opaque/new.txt", b"added by layer 2\n"),
    ],
    # layer 3: additions and a replaced file
    [
        f("added/hello.txt", b"hello from layer 3\n"),
        f("data/layer3.txt", b"added by layer 3\n"),
        f("etc/motd", b"motd of layer 3\n"),
    ],
]


def multi_expected() -> dict[str, Optional[bytes]]:
    """What the multi variant's rootfs must hold once unpacked (None: must not exist), beyond busybox."""
    return {
        "data/keep.txt": b"kept from layer 1\n",
        "data/remove-me.txt": None,
        "data/.wh.remove-me.txt": None,
        "opaque/old.txt": None,
        "opaque/sub": None,
        "opaque/.wh..wh..opq": None,
        "opaque/new.txt": b"added by layer 2\n",
        "added/hello.txt": b"hello from layer 3\n",
        "data/layer3.txt": b"added by layer 3\n",
        "etc/motd": b"motd of layer 3\n",
    }


def build_busybox(out_dir: Path, variant: str = "single", tag: str = "latest",
                  labels: Optional[dict[str, str]] = None) -> Image:
    rootfs = busybox_rootfs()
    if variant == "single":
        layers = [Layer(tar_bytes(rootfs), "busybox rootfs (Debian busybox-static)")]
    elif variant == "multi":
        layers = [
            Layer(tar_bytes(rootfs + MULTI_LAYERS[0]), "busybox rootfs and layer-1 files"),
            Layer(tar_bytes(MULTI_LAYERS[1]), "whiteout data/remove-me.txt, opaque /opaque"),
            Layer(tar_bytes(MULTI_LAYERS[2]), "add /added, /data/layer3.txt; replace /etc/motd"),
        ]
    else:
        raise SystemExit(f"oci_image: unknown variant {variant!r} (single or multi)")
    return write_layout(out_dir, tag, layers, labels)


# ---------------------------------------------------------------------------------------------------------
# random (benchmark) images


def build_random(out_dir: Path, size_mib: int = 200, layers: int = 4, seed: int = 1, tag: str = "latest",
                 files_per_layer: int = 4) -> Image:
    """`layers` gzip layers of seeded random bytes, `size_mib` MiB of file data in all."""
    if size_mib < 1 or layers < 1:
        raise SystemExit("oci_image: --size-mib and --layers must be positive")
    total = size_mib * 1024 * 1024
    per_layer = total // layers
    rng = random.Random(seed)
    built = []
    for n in range(layers):
        size = per_layer if n < layers - 1 else total - per_layer * (layers - 1)
        per_file = size // files_per_layer
        entries = []
        for i in range(files_per_layer):
            this = per_file if i < files_per_layer - 1 else size - per_file * (files_per_layer - 1)
            entries.append(f(f"data/layer{n + 1}/blob{i + 1}.bin", rng.randbytes(this)))
        # Random data does not compress: level 1 is as small as 9 and much faster.
        built.append(Layer(tar_bytes(entries), f"{size} random bytes (seed {seed}, layer {n + 1})", gzip_level=1))
    return write_layout(out_dir, tag, built, {"org.skiff.test.seed": str(seed)})


# ---------------------------------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kind", required=True)
    bb = sub.add_parser("busybox", help="the busybox image (single layer or the multi-layer variant)")
    bb.add_argument("out_dir", type=Path)
    bb.add_argument("--variant", choices=["single", "multi"], default="single")
    bb.add_argument("--tag", default="latest")
    bb.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                    help="an image config label (gives a distinct image with the same layers)")
    rnd = sub.add_parser("random", help="seeded random layers (the benchmark image)")
    rnd.add_argument("out_dir", type=Path)
    rnd.add_argument("--size-mib", type=int, default=200)
    rnd.add_argument("--layers", type=int, default=4)
    rnd.add_argument("--seed", type=int, default=1)
    rnd.add_argument("--tag", default="latest")
    args = p.parse_args(argv)

    if args.kind == "busybox":
        labels = {}
        for item in args.label:
            k, sep, v = item.partition("=")
            if not sep or not k:
                p.error(f"--label wants KEY=VALUE, got {item!r}")
            labels[k] = v
        image = build_busybox(args.out_dir, args.variant, args.tag, labels or None)
    else:
        image = build_random(args.out_dir, args.size_mib, args.layers, args.seed, args.tag)
    print(json.dumps({
        "ref": image.ref,
        "manifest": image.manifest_digest,
        "config": image.config_digest,
        "layers": image.layer_digests,
        "bytes": image.total_size,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
