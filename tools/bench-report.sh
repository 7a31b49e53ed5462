#!/bin/bash
# imp2 benchmark report: runs the comparisons of issue 5 side by side in one
# run and writes BENCHMARKS.md (machine, kernel, commands, measured / goal).
#
#   tools/bench-report.sh [--quick] [--out FILE] [--dir SCRATCH] [--vm | --no-vm]
#
# --quick: CI smoke setting, under 2 minutes once built; reuses the last VM
# test result instead of booting one. The full mode runs more and longer
# rounds and boots the 6.1 VM test (IMP2_VM_SCENARIOS=load,perf,tcpdump; needs root
# like tools/vmtest/run.sh). Installs what it compares against when missing
# (tools/bench-deps.sh). Recorder traffic is NETLINK_USERSOCK between local
# processes; the NFLOG comparison floods a veth between two network
# namespaces it creates; every run is bounded in packets and time.
#
# The criterion suites are separate: cargo bench -p imp2-benches
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

. "$ROOT/tools/bench-deps.sh"
bench_deps
command -v cargo >/dev/null || PATH=$HOME/.cargo/bin:$PATH

echo "[bench-report] building (release)" >&2
cargo build --release -q -p imp2-record -p imp2-tools -p imp2-testkit -p imp2-benches --bins
cargo build --release -q -p imp2-benches --example append_bandwidth --example hotpath --example nflog_hotpath

exec "$ROOT/target/release/imp2-bench-report" "$@"
