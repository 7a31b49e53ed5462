#!/bin/bash
# imp2 benchmark report: runs the comparisons of issue 5 side by side in one
# run and writes BENCHMARKS.md (machine, kernel, commands, measured / goal).
#
#   tools/bench-report.sh [--quick] [--out FILE] [--dir SCRATCH] [--vm | --no-vm]
#
# --quick: CI smoke setting, under 2 minutes once built; reuses the last VM
# test result instead of booting one. The full mode runs more and longer
# rounds and boots the 6.1 VM test (IMP2_VM_SCENARIOS=load,perf; needs root
# like tools/vmtest/run.sh). Installs editcap (tshark) when it is missing and
# apt-get is usable. All traffic is NETLINK_USERSOCK between local
# processes; every run is bounded in records and time.
#
# The criterion suites are separate: cargo bench -p imp2-benches
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if ! command -v editcap >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "[bench-report] installing tshark (editcap)" >&2
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tshark >/dev/null
fi
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH

echo "[bench-report] building (release)" >&2
cargo build --release -q -p imp2-record -p imp2-tools -p imp2-benches --bins
cargo build --release -q -p imp2-format --example append_bandwidth

exec "$ROOT/target/release/imp2-bench-report" "$@"
