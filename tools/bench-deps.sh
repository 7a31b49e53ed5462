#!/bin/bash
# Installs what the benchmarks compare against or need, when missing and
# when apt-get is usable as root: editcap and dumpcap (tshark), tcpdump,
# ulogd2 with its PCAP output plugin (ulogd2-pcap), nftables, iproute2,
# libpcap-dev (imp2 links libpcap's filter compiler).
# Sourced by tools/bench-report.sh and tools/bench-nflog.sh. A tool that
# cannot be installed is reported by the benchmark as "not measured".
#
# Note: on a host running systemd, installing ulogd2 enables and starts its
# stock service in the root namespace (groups 0-2 there); the benchmark's
# own ulogd2 runs in a private namespace, unaffected.
bench_deps() {
	local missing=()
	command -v ip >/dev/null || missing+=(iproute2)
	command -v nft >/dev/null || missing+=(nftables)
	command -v tcpdump >/dev/null || missing+=(tcpdump)
	{ command -v dumpcap >/dev/null && command -v editcap >/dev/null; } || missing+=(tshark)
	command -v ulogd >/dev/null || missing+=(ulogd2)
	# libpcap's filter compiler, which imp2 links (headers and .so for the build).
	command -v pcap-config >/dev/null || missing+=(libpcap-dev)
	# The PCAP output plugin is a package of its own.
	compgen -G '/usr/lib/*/ulogd/ulogd_output_PCAP.so' >/dev/null ||
		compgen -G '/usr/lib/ulogd/ulogd_output_PCAP.so' >/dev/null ||
		missing+=(ulogd2-pcap)
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "[bench] installing ${missing[*]}" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null || echo "[bench] apt-get install failed" >&2
	else
		echo "[bench] missing ${missing[*]} (install them as root)" >&2
	fi
}
