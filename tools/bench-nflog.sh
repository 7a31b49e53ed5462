#!/bin/bash
# The NFLOG side-by-side benchmark (issue 6): imp2-record --source nflog vs
# tcpdump -w vs dumpcap -w vs ulogd2 (NFLOG in, PCAP out) on the same veth
# flood between two network namespaces it creates (and removes), in one run,
# with a bare C NFLOG reader writing pcap (benches/c/nflog-pcap.c, built with
# cc for the run) as the reference the issue's CPU goal was set from.
#
#   sudo tools/bench-nflog.sh [--quick] [--dir SCRATCH] [--out FILE.md]
#
# --quick: 2 rounds of 200,000 packets, about a minute; the full mode runs 5
# rounds of 1,000,000. Needs root (namespaces, nftables, NFLOG). Installs
# what is missing (tools/bench-deps.sh): tcpdump, tshark (dumpcap), ulogd2
# and ulogd2-pcap, nftables, iproute2. A tool that cannot be installed gets
# a "not measured" row, not a number. tools/bench-report.sh runs the same
# comparison as a section of BENCHMARKS.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ "$(id -u)" != 0 ]; then
	echo "bench-nflog: needs root (network namespaces, nftables, NFLOG)" >&2
	exit 1
fi

. "$ROOT/tools/bench-deps.sh"
bench_deps
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH

echo "[bench-nflog] building (release)" >&2
cargo build --release -q -p imp2-record -p imp2-tools -p imp2-testkit -p imp2-benches --bins
cargo build --release -q -p imp2-benches --example nflog_hotpath

exec "$ROOT/target/release/imp2-bench-nflog" "$@"
