#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 20) with cargo-fuzz on the
# nightly toolchain, installing cargo-fuzz when missing. For a long campaign:
#   cd fuzz && cargo +nightly fuzz run batch_walker -- -max_total_time=3600
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-20}
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-smoke: no nightly toolchain (rustup toolchain install nightly); not run" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
for target in $(cargo fuzz list); do
    echo "fuzz-smoke: $target for ${secs}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 | tail -n 3
done
