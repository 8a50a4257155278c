#!/usr/bin/env bash
# Runs the image store's fuzz targets for a bounded time each, seeded with the layer fixtures.
#
#   crates/skiff-agent/fuzz/run.sh [SECONDS per target, default 60] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly compiler; without a nightly toolchain it uses
# the stable one with RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly features). A crash leaves its input in
# artifacts/TARGET/ and makes this script fail. Corpora grow in corpus/TARGET/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(unpack_layer unpack_compressed_layer)
FIXTURES=../../../tests/fixtures/layers

command -v cargo-fuzz >/dev/null 2>&1 || { echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

for target in "${TARGETS[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    case $target in
        unpack_layer) cp -n "$FIXTURES"/*.tar "$corpus"/ 2>/dev/null || true ;;
        # The first byte picks the media type (0: gzip, 2: plain tar).
        unpack_compressed_layer)
            for f in "$FIXTURES"/*.tar; do { printf '\x02'; cat "$f"; } >"$corpus/tar-$(basename "$f")"; done
            for f in "$FIXTURES"/*.tar.gz; do { printf '\x00'; cat "$f"; } >"$corpus/gzip-$(basename "$f")"; done
            for f in "$FIXTURES"/digest_mismatch/blobs/sha256/*; do
                { printf '\x00'; cat "$f"; } >"$corpus/gzip-$(basename "$f" | cut -c1-12)"
            done ;;
    esac
    echo "fuzz: $target for $SECONDS_EACH s" >&2
    cargo "${toolchain[@]}" fuzz run "$target" "$corpus" -- -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1
done
