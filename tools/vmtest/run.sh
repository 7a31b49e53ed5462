#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# imp2 VM test: builds the module against Debian's 6.1 cloud kernel and the
# 6.12 kernel for bookworm (zero warnings with W=1 or it fails), builds
# the test binaries, boots each kernel in QEMU (TCG, 2 vCPUs) with an
# initramfs whose /init (guest-init.sh) runs the scenarios, and checks the
# "IMP2TEST <name> PASS|FAIL <details>" lines they print.
#
#   tools/vmtest/run.sh [6.1|6.12|all]      (default: all)
#
# Needs root (apt-get, mknod for the initramfs). Installs what it needs on a
# fresh Debian 12 machine. Everything it downloads or builds goes under
# build/vmtest/ (gitignored); the Rust tools from target/release, with the
# libraries they link.
#
# Environment:
#   IMP2_VM_SMP=N        vCPUs (default 2)
#   IMP2_VM_TIMEOUT=S    seconds per guest run (default 600)
#   IMP2_VM_RUST_BIN=DIR use imp2-record, imp2-info, imp2-convert from
#                        DIR instead of building them
#   IMP2_VM_SCENARIOS=a,b  run only these guest scenarios (default all; the
#                        list is in guest-init.sh)
#   IMP2_TD_ROUNDS=N     rounds of the tcpdump scenario (default 3; the
#                        benchmark report asks for more)
#
# Debian's tcpdump (installed if missing) goes into the initramfs with the
# libraries ldd lists, for the "tcpdump" scenario (not in the default list).
# With that scenario the guest boots with tsc=reliable clocksource=hpet:
# without it TCG's TSC fails the kernel's sync check and hpet (an emulated
# device read each time) is the only clock; this way hpet stays the clock
# the other scenarios see, and the tcpdump scenario switches to the TSC.
#
# Per kernel, build/vmtest/<kver>/ keeps console.txt (the guest's output),
# results.txt, kbuild.log and, from the record scenario, run.log,
# run.pcapng and tshark.txt.
#
# Ends with "N passed, N failed"; exits non-zero on any failure or missing
# result.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$ROOT/build/vmtest
SMP=${IMP2_VM_SMP:-2}
VM_TIMEOUT=${IMP2_VM_TIMEOUT:-600}
SCENARIOS=${IMP2_VM_SCENARIOS:-all}
WHICH=${1:-all}

log() { printf '[vmtest] %s\n' "$*" >&2; }
die() { printf '[vmtest] FATAL: %s\n' "$*" >&2; exit 2; }

case "$WHICH" in
6.1 | 6.12 | all) ;;
*) die "usage: $0 [6.1|6.12|all]" ;;
esac
[ "$(id -u)" = 0 ] || die "run as root (apt-get, mknod)"

# --- host packages -----------------------------------------------------------
APT_UPDATED=
apt_update_once() {
	if [ -z "$APT_UPDATED" ]; then
		log "apt-get update"
		apt-get update -qq >/dev/null
		APT_UPDATED=1
	fi
}

ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_update_once
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

# apt-cache answers from the lists: make sure they exist (fresh machine).
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
	apt_update_once
fi
ensure_packages qemu-system-x86 busybox-static cpio gzip xz-utils zstd kmod gcc gcc-12 make libpcap-dev \
	libc6-dev linux-libc-dev pahole tshark ca-certificates tcpdump

# --- kernels -----------------------------------------------------------------
# Prints the ABI name (e.g. 6.1.0-56-cloud-amd64) a meta package points at.
meta_abi() {
	apt-cache depends "$1" 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-cloud-amd64\)\(-unsigned\)\{0,1\}$/\1/p' |
		head -n1
}

resolve_kver() {
	local k
	case "$1" in
	6.1) k=$(meta_abi linux-image-cloud-amd64)
	     # On a machine whose default is newer, fall back to the 6.1 series.
	     case "$k" in 6.1.*) ;; *) k=$(apt-cache search --names-only \
		'^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' | awk '{print $1}' |
		sed 's/^linux-image-//' | sort -V | tail -n1) ;; esac ;;
	6.12)
		if ! apt-cache show linux-image-6.12-cloud-amd64 >/dev/null 2>&1 &&
			! apt-cache search --names-only '^linux-image-6\.12\..*-cloud-amd64$' | grep -q .; then
			log "no 6.12 kernel in the configured sources: adding bookworm-backports"
			apt-cache policy | grep -q bookworm-backports ||
				echo "deb http://deb.debian.org/debian bookworm-backports main" \
					>/etc/apt/sources.list.d/imp2-vmtest-backports.list
			APT_UPDATED=
			apt_update_once
		fi
		k=$(meta_abi linux-image-6.12-cloud-amd64)
		[ -n "$k" ] || k=$(apt-cache search --names-only \
			'^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-cloud-amd64$' |
			awk '{print $1}' | sed 's/^linux-image-//' | sort -V | tail -n1) ;;
	esac
	[ -n "$k" ] || die "cannot resolve the $1 kernel with apt-cache"
	echo "$k"
}

# Downloads and unpacks image + headers (+ -common, kbuild) into the cache.
fetch_kernel() {
	local kver=$1 dir=$BUILD/$1 pkgs p
	# dummy.ko: the filter scenario's second interface (CONFIG_DUMMY=m);
	# trees fetched before it was kept are fetched again.
	if [ -f "$dir/.fetched" ] && [ -f "$dir/dummy.ko" ]; then
		return 0
	fi
	log "fetching kernel $kver"
	rm -rf "$dir/debs" "$dir/root"
	mkdir -p "$dir/debs" "$dir/root"
	pkgs="linux-image-$kver linux-headers-$kver"
	pkgs="$pkgs $(apt-cache depends "linux-headers-$kver" |
		sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\)$/\1/p' | sort -u | tr '\n' ' ')"
	# apt-get download writes to the current directory; _apt cannot write
	# there, which only costs a warning ("unsandboxed").
	if ! (cd "$dir/debs" && apt-get download -qq $pkgs) >"$dir/download.log" 2>&1; then
		cat "$dir/download.log" >&2
		die "apt-get download $pkgs failed"
	fi
	for p in "$dir"/debs/*.deb; do
		dpkg-deb -x "$p" "$dir/root"
	done
	[ -f "$dir/root/boot/vmlinuz-$kver" ] || die "no vmlinuz in linux-image-$kver"
	# The headers' Makefile includes the -common tree by absolute path.
	sed -i "s|^include /usr/src/|include $dir/root/usr/src/|" \
		"$dir/root/usr/src/linux-headers-$kver/Makefile"
	local mod
	mod=$(find "$dir/root/lib/modules" -name 'dummy.ko*' | head -n1)
	case "$mod" in
	*.ko) cp "$mod" "$dir/dummy.ko" ;;
	*.ko.xz) xz -dc "$mod" >"$dir/dummy.ko" ;;
	*.ko.zst) zstd -qdc "$mod" >"$dir/dummy.ko" ;;
	*) die "no dummy.ko in linux-image-$kver" ;;
	esac
	rm -rf "$dir/debs" "$dir/root/lib/modules"
	touch "$dir/.fetched"
}

# --- module ------------------------------------------------------------------
build_module() {
	local kver=$1 dir=$BUILD/$1 kdir out
	kdir=$dir/root/usr/src/linux-headers-$kver
	out=$dir/kmod
	rm -rf "$out"
	mkdir -p "$out"
	cp "$ROOT"/kmod/Kbuild "$ROOT"/kmod/Makefile "$ROOT"/kmod/*.c "$ROOT"/kmod/*.h "$out"/
	log "building imp2.ko for $kver (W=1)"
	if ! make -C "$kdir" M="$out" W=1 modules >"$dir/kbuild.log" 2>&1; then
		cat "$dir/kbuild.log" >&2
		die "module build failed for $kver"
	fi
	if grep -E 'warning:|error:' "$dir/kbuild.log" >&2; then
		die "module build for $kver has warnings (W=1): see $dir/kbuild.log"
	fi
	echo "W=1 clean" >"$dir/w1.status"
}

# --- user-space binaries (shared by both kernels) ----------------------------
BIN=$BUILD/bin
RUST_OK=
build_binaries() {
	mkdir -p "$BIN"
	local c
	for c in imp2_ctl imp2_u traffic runas; do
		gcc -O2 -Wall -Wextra -Werror -static -I "$ROOT/kmod" \
			-o "$BIN/$c" "$HERE/$c.c"
	done
	rm -f "$BIN/imp2-record" "$BIN/imp2-info" "$BIN/imp2-convert"
	if [ -n "${IMP2_VM_RUST_BIN:-}" ]; then
		log "using prebuilt imp2-record, imp2-info, imp2-convert from $IMP2_VM_RUST_BIN"
		for c in imp2-record imp2-info imp2-convert; do
			cp "$IMP2_VM_RUST_BIN/$c" "$BIN/$c" || die "no $c in $IMP2_VM_RUST_BIN"
		done
		return 0
	fi
	if ! command -v cargo >/dev/null; then
		[ -x "$HOME/.cargo/bin/cargo" ] && PATH=$HOME/.cargo/bin:$PATH
	fi
	command -v cargo >/dev/null || die "cargo not found (the Rust toolchain is needed)"
	# Dynamically linked, as the host builds them: they link libpcap (the
	# filter compiler), whose static archive needs dbus and systemd
	# archives Debian does not ship. Their libraries go into the initramfs
	# (copy_libs), as tcpdump's do.
	log "building imp2-record, imp2-info, imp2-convert"
	if (cd "$ROOT" && cargo build -q --release -p imp2-record -p imp2-tools) \
		>"$BUILD/cargo.log" 2>&1; then
		local r=$ROOT/target/release b
		for b in imp2-record imp2-info imp2-convert; do
			[ -x "$r/$b" ] && cp "$r/$b" "$BIN/$b"
		done
		RUST_OK=1
	else
		log "cargo build failed (see $BUILD/cargo.log): scenarios needing imp2-record will fail"
	fi
}

# --- initramfs ---------------------------------------------------------------
# Every library a dynamically linked binary needs (ldd) and the dynamic
# loader, at their host paths (the loader's built-in search path covers
# /lib/x86_64-linux-gnu): for Debian's tcpdump (the "tcpdump" scenario) and
# the Rust tools. Static binaries list none.
copy_libs() {
	local ir=$1 bin=$2 lib
	for lib in $(ldd "$bin" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) (.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p'); do
		mkdir -p "$ir$(dirname "$lib")"
		cp -L "$lib" "$ir$lib"
	done
}

copy_tcpdump() {
	local ir=$1 td
	td=$(command -v tcpdump || true)
	[ -n "$td" ] || { [ -x /usr/sbin/tcpdump ] && td=/usr/sbin/tcpdump; } ||
		die "tcpdump not found after installing it"
	cp "$td" "$ir/bin/tcpdump"
	copy_libs "$ir" "$td"
}

build_initramfs() {
	local kver=$1 dir=$BUILD/$1 ir
	ir=$dir/initramfs
	rm -rf "$ir"
	mkdir -p "$ir"/{bin,dev,proc,sys,tmp,run,etc}
	cp /bin/busybox "$ir/bin/busybox"
	ln -s busybox "$ir/bin/sh"
	cp "$dir/kmod/imp2.ko" "$ir/imp2.ko"
	cp "$dir/dummy.ko" "$ir/dummy.ko"
	cp "$BIN"/* "$ir/bin/"
	cp "$HERE/guest-init.sh" "$ir/init"
	chmod 755 "$ir/init"
	mknod -m 600 "$ir/dev/console" c 5 1
	mknod -m 666 "$ir/dev/null" c 1 3
	mknod -m 600 "$ir/dev/ttyS1" c 4 65
	copy_tcpdump "$ir"
	local b
	for b in "$BIN"/*; do
		copy_libs "$ir" "$b"
	done
	printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$ir/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$ir/etc/group"
	(cd "$ir" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$dir/initramfs.cpio.gz"
}

# --- boot --------------------------------------------------------------------
boot() {
	local kver=$1 series=$2 dir=$BUILD/$1 rc=0 clock=""
	case ",$SCENARIOS," in
	*,tcpdump,*) clock="tsc=reliable clocksource=hpet " ;;
	esac
	log "booting $kver (smp $SMP, tcg)"
	rm -f "$dir/console.log" "$dir/ttyS1.out"
	timeout --foreground -k 10 "$VM_TIMEOUT" qemu-system-x86_64 \
		-M q35 -accel tcg -cpu max -smp "$SMP" -m 512 \
		-nographic -no-reboot -nic none \
		-serial stdio -serial "file:$dir/ttyS1.out" -monitor none \
		-kernel "$dir/root/boot/vmlinuz-$kver" \
		-initrd "$dir/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet ${clock}IMP2_SERIES=$series IMP2_SCENARIOS=$SCENARIOS${IMP2_TD_ROUNDS:+ IMP2_TD_ROUNDS=$IMP2_TD_ROUNDS}" \
		</dev/null >"$dir/console.log" 2>&1 || rc=$?
	tr -d '\r' <"$dir/console.log" >"$dir/console.txt"
	[ $rc -eq 0 ] || log "qemu exited with $rc (124: timeout)"
}

# Extracts the file the guest sent between "=== BEGIN name ===" / "=== END
# name ===" (base64) on its second serial port.
extract_file() {
	local dir=$1 name=$2 out=$3
	tr -d '\r' <"$dir/ttyS1.out" |
		sed -n "/^=== BEGIN $name ===\$/,/^=== END $name ===\$/p" |
		sed '1d;$d' | base64 -d >"$out"
}

# --- host-side checks of what the guest sent ---------------------------------
# Scenario 2: the guest's imp2-record log, converted to pcapng here with
# imp2-convert, read back with tshark: the same number of packets, by
# direction (inbound = PRE_ROUTING, outbound = LOCAL_OUT), IP version and
# protocol as the guest's traffic; only loopback addresses; nanosecond
# timestamps equal to the log's first and last. Prints one IMP2TEST line.
host_check_pcapng() {
	local dir=$1 conv=$BIN/imp2-convert n bad="" got exp first last
	if [ ! -x "$conv" ]; then
		echo "IMP2TEST pcapng FAIL imp2-convert not built"
		return
	fi
	extract_file "$dir" run.log "$dir/run.log" 2>/dev/null || true
	extract_file "$dir" run.expect "$dir/run.expect" 2>/dev/null || true
	if [ ! -s "$dir/run.log" ] || [ ! -s "$dir/run.expect" ]; then
		echo "IMP2TEST pcapng FAIL the guest sent no log"
		return
	fi
	if ! "$conv" "$dir/run.log" -o "$dir/run.pcapng" 2>"$dir/convert.err"; then
		echo "IMP2TEST pcapng FAIL imp2-convert: $(head -c 300 "$dir/convert.err")"
		return
	fi
	tshark -r "$dir/run.pcapng" -T fields -E separator=/t -E occurrence=f \
		-e frame.time_epoch -e frame.packet_flags_direction -e frame.protocols \
		-e ip.src -e ip.dst -e ipv6.src -e ipv6.dst \
		>"$dir/tshark.txt" 2>"$dir/tshark.err" || {
		echo "IMP2TEST pcapng FAIL tshark: $(head -c 300 "$dir/tshark.err")"
		return
	}
	n=$(wc -l <"$dir/tshark.txt")
	exp=$(awk '$1 == "total" { print $2 }' "$dir/run.expect")
	[ "$n" = "$exp" ] || bad="$bad packets=$n!=$exp"
	# direction version protocol -> count, as the guest wrote them
	got=$(awk -F'\t' '{
		d = $2 + 0
		if ($2 ~ /^0x/)
			d = ($2 ~ /1$/) ? 1 : ($2 ~ /2$/) ? 2 : 0
		dir = d == 1 ? "in" : d == 2 ? "out" : "dir" $2
		v = $3 ~ /:ipv6/ ? 6 : $3 ~ /:ip(:|$)/ ? 4 : 0
		p = $3 ~ /:icmpv6/ ? 58 : $3 ~ /:icmp(:|$)/ ? 1 : $3 ~ /:udp/ ? 17 : $3 ~ /:tcp/ ? 6 : -1
		c[dir " " v " " p]++
	} END { for (k in c) print k, c[k] }' "$dir/tshark.txt" | sort)
	exp=$(awk '$1 == "in" || $1 == "out"' "$dir/run.expect" | sort)
	[ "$got" = "$exp" ] || bad="$bad counts:[$(echo $got)]!=[$(echo $exp)]"
	# addresses: 127.0.0.1/127.0.0.2 or ::1 only, every packet
	n=$(awk -F'\t' '!(($4 == "127.0.0.1" || $4 == "127.0.0.2") && ($5 == "127.0.0.1" || $5 == "127.0.0.2") && $6 $7 == "" ||
		$4 $5 == "" && $6 == "::1" && $7 == "::1")' "$dir/tshark.txt" | wc -l)
	[ "$n" = 0 ] || bad="$bad foreign_addresses=$n"
	# nanosecond timestamps: 9 digits, first and last as in the log
	first=$(cut -f1 "$dir/tshark.txt" | sort | head -n1 | tr -d .)
	last=$(cut -f1 "$dir/tshark.txt" | sort | tail -n1 | tr -d .)
	n=$(awk -F'\t' '$1 !~ /^[0-9]+\.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]$/' "$dir/tshark.txt" | wc -l)
	[ "$n" = 0 ] || bad="$bad not_ns=$n"
	exp=$(awk '$1 == "first_ns" { print $2 }' "$dir/run.expect")
	[ "$first" = "$exp" ] || bad="$bad first=$first!=$exp"
	exp=$(awk '$1 == "last_ns" { print $2 }' "$dir/run.expect")
	[ "$last" = "$exp" ] || bad="$bad last=$last!=$exp"
	# and the timestamps are not microseconds in disguise
	n=$(awk -F'\t' '$1 !~ /000$/' "$dir/tshark.txt" | wc -l)
	[ "$n" -gt 0 ] || bad="$bad all_timestamps_end_in_000"
	if [ -z "$bad" ]; then
		echo "IMP2TEST pcapng PASS $(wc -l <"$dir/tshark.txt") packets, counts by direction/version/protocol as sent, loopback addresses only, ns timestamps (first $first last $last) as in the log"
	else
		echo "IMP2TEST pcapng FAIL$bad"
	fi
}

PASS=0
FAIL=0
RESULTS=()
check_results() {
	local series=$1 dir=$BUILD/$2 names line name status
	names=$(grep -ao 'IMP2EXPECT .*' "$dir/console.txt" | tail -n1 | sed 's/^IMP2EXPECT //')
	if [ -z "$names" ]; then
		RESULTS+=("$series guest FAIL no scenario list: guest did not run (see $dir/console.txt)")
		FAIL=$((FAIL + 1))
		return
	fi
	for name in $names $HOST_CHECKS; do
		line=$(grep -a "^IMP2TEST $name " "$dir/results.txt" | tail -n1 || true)
		if [ -z "$line" ]; then
			RESULTS+=("$series $name FAIL missing result")
			FAIL=$((FAIL + 1))
			continue
		fi
		status=$(echo "$line" | awk '{print $3}')
		RESULTS+=("$series ${line#IMP2TEST }")
		if [ "$status" = PASS ]; then
			PASS=$((PASS + 1))
		else
			FAIL=$((FAIL + 1))
		fi
	done
}

run_series() {
	local series=$1 kver
	kver=$(resolve_kver "$series")
	log "$series -> $kver"
	fetch_kernel "$kver"
	build_module "$kver"
	build_initramfs "$kver"
	boot "$kver" "$series"
	local dir=$BUILD/$kver
	grep -ao 'IMP2TEST .*' "$dir/console.txt" >"$dir/results.txt" || true
	if grep -q '^IMP2EXPECT .* record' <(grep -ao 'IMP2EXPECT .*' "$dir/console.txt"); then
		# a failing command in the check must not end this script
		(set +e; host_check_pcapng "$dir") >>"$dir/results.txt" 2>"$dir/hostcheck.err" || true
		HOST_CHECKS="pcapng"
	else
		HOST_CHECKS=""
	fi
	RESULTS+=("$series kernel $kver, module W=1: $(cat "$dir/w1.status")")
	check_results "$series" "$kver"
}

mkdir -p "$BUILD"
build_binaries
case "$WHICH" in
all) run_series 6.1; run_series 6.12 ;;
*) run_series "$WHICH" ;;
esac

printf '%s\n' "${RESULTS[@]}"
echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
