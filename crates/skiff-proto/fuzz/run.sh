#!/usr/bin/env bash
# Runs skiff-proto's fuzz targets for a bounded time each, seeded from seeds/TARGET.
#
#   crates/skiff-proto/fuzz/run.sh [SECONDS per target, default 60] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly compiler; without a nightly toolchain it uses
# the stable one with RUSTC_BOOTSTRAP=1. A crash leaves its input in artifacts/TARGET/ and makes this script
# fail. Corpora grow in corpus/TARGET/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(sigv4_parse json_decode query_params)

command -v cargo-fuzz >/dev/null 2>&1 || { echo "fuzz: cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

for target in "${TARGETS[@]}"; do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for $SECONDS_EACH s" >&2
    cargo "${toolchain[@]}" fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$SECONDS_EACH" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
