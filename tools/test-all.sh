#!/usr/bin/env bash
# The single test command: everything CI runs, in order.
#   1. installs what the tests need on a fresh Debian 12 machine (as root)
#   2. formatting, clippy and rustdoc gates
#   3. the Rust test suite (wire, log, export, recorder against imp2-loadgen
#      over real netlink and io_uring, tshark agreement)
#   4. a short fuzz smoke run of every fuzz target (nightly + cargo-fuzz)
#   5. the kernel module: build against Debian 6.1 and 6.12 with W=1 and the
#      VM test booting both kernels under QEMU (tools/vmtest/run.sh)
# Usage: tools/test-all.sh [--no-vm] [--no-fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."

run_vm=1
run_fuzz=1
for arg in "$@"; do
    case "$arg" in
    --no-vm) run_vm=0 ;;
    --no-fuzz) run_fuzz=0 ;;
    *) echo "usage: $0 [--no-vm] [--no-fuzz]" >&2; exit 2 ;;
    esac
done

step() { printf '\n==== %s\n' "$*"; }

apt_updated=0
need_pkgs() {
    # need_pkgs CMD PKG...: installs PKGs when CMD is missing.
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "test-all: $cmd is missing; install: $*" >&2
        exit 1
    fi
    if [ $apt_updated = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

step "installing test dependencies"
need_pkgs tshark tshark
need_pkgs tcpdump tcpdump
need_pkgs cc gcc libc6-dev
need_pkgs ip iproute2
need_pkgs mount mount
need_pkgs nft nftables
# libpcap's filter compiler (imp2-format links it): headers and libpcap.so
need_pkgs pcap-config libpcap-dev

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings

step "cargo doc -D warnings (broken links in the API docs)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test (release: the end-to-end tests push real load)"
cargo test --workspace --release

if [ $run_fuzz = 1 ]; then
    step "fuzz smoke run"
    tools/fuzz-smoke.sh 20
fi

if [ $run_vm = 1 ]; then
    step "kernel module build and VM test (Debian 6.1 and 6.12)"
    tools/vmtest/run.sh all
fi

step "all tests passed"
