#!/usr/bin/env bash
# build-busybox.sh OUT_DIR [--variant single|multi] [--tag TAG] [--label KEY=VALUE]...
# A byte-reproducible busybox OCI image layout from Debian's busybox-static; see oci_image.py.
set -euo pipefail
exec python3 "$(dirname "$0")/oci_image.py" busybox "$@"
