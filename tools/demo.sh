#!/usr/bin/env bash
# One-command demo of the whole job on a machine that cannot load modules:
# boots Debian's 6.1 kernel under QEMU with the imp2 module, runs the real
# imp2-record there while real traffic (ping v4/v6, UDP, TCP on lo) flows,
# copies the log out, and converts it here. Leaves ./run.log and
# ./run.pcapng in the current directory. Needs root (it installs QEMU and
# friends on Debian 12 if missing, and fetches the kernel with apt-get).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$PWD
IMP2_VM_SCENARIOS=load,record "$repo/tools/vmtest/run.sh" 6.1 | tail -n 5
dir=$(ls -dt "$repo"/build/vmtest/6.1.*/ | head -n 1)
cp "$dir/run.log" "$dest/run.log"
cp "$dir/run.pcapng" "$dest/run.pcapng"
info="$repo/build/static-target/x86_64-unknown-linux-gnu/release/imp2-info"
echo
echo "== imp2-info run.log"
"$info" "$dest/run.log"
echo
echo "== tshark -r run.pcapng (first 10 packets)"
tshark -r "$dest/run.pcapng" -c 10 -t ud
echo
echo "demo: wrote $dest/run.log and $dest/run.pcapng"
