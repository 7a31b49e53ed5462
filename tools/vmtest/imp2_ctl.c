// SPDX-License-Identifier: GPL-2.0
/*
 * imp2_ctl: a small, independent imp2 recorder for testing the module.
 *
 * REGISTERs with the module, receives batches, checks every trailer (per-CPU
 * sequence numbers, running totals, drop counters, record counts) and counts
 * records by hook, family and protocol; it stores nothing. At the end (count
 * reached, timeout, SIGINT/SIGTERM) it drains its socket, UNREGISTERs,
 * collects the final batches and prints one summary line starting with
 * "IMP2CTL", then one "IMP2CTL count" line per (hook, family, protocol).
 *
 *   imp2_ctl [-c N] [-t SECS] [-s SNAPLEN] [-H pre,out] [-F 4,6]
 *            [-P icmp,udp,tcp,icmp6,NUM] [-b BATCH_BYTES] [-r BATCH_RECORDS]
 *            [-f FLUSH_US] [-R RCVBUF (default 64 MiB)] [-u UNIT] [-q]
 *   imp2_ctl -X [--abi N] [--flags N] [--short] [config options]
 *            register only, print "register OK" or "register ERRNAME"
 *            (exit status 0 or 1), unregister and exit
 *
 * Build: gcc -O2 -static -I kmod -o imp2_ctl tools/vmtest/imp2_ctl.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "imp2_uapi.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MAX_CPUS 1024
#define BUF_SIZE (IMP2_BATCH_BYTES_MAX + 65536)

struct cpu_state {
	int seen;			/* a trailer came from this CPU */
	int final;			/* its FINAL trailer came */
	uint64_t records, full, timer, batches;
	struct imp2_batch_trailer last;
};

static struct cpu_state cpus[MAX_CPUS];
static volatile sig_atomic_t stop;

/* counts[hook][family 0=v4 1=v6][protocol] */
static uint64_t counts[4][2][256];
static uint64_t records, batches, lost, gap_batches, truncated, bad;
static uint64_t captured_bytes;
static uint64_t caplen_bad, ts_bad, maxcap, enobufs, payload_bad, payload_checked;
static uint64_t later_fragments;
static uint64_t records_in_batch, max_batch_records, max_batch_bytes;
static uint32_t snaplen_cfg, caplen_max = 0xffffffff;
static uint64_t t_first_ns, t_last_ns;
static int quiet;

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const char *errname(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case EPROTO: return "EPROTO";
	case ENOENT: return "ENOENT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	default: return strerror(e);
	}
}

static int hook_index(uint8_t hook)
{
	return hook == IMP2_HOOK_PRE_ROUTING ? 0 :
	       hook == IMP2_HOOK_LOCAL_OUT ? 1 : 2;
}

static const char *hook_name[] = { "pre", "out", "other" };

/*
 * The traffic tool fills UDP payloads with 'x' and TCP payloads with 'y':
 * every captured payload byte must be that, which checks the copy from
 * non-linear skbs. IPv6 extension headers are walked (hop-by-hop, routing,
 * fragment, destination options: the fragment header's reserved second
 * byte makes the generic length rule give its 8 bytes). A later fragment
 * carries no transport header: its data continues the payload, and its
 * record must name the protocol its fragment header names.
 */
static void check_payload(const struct imp2_record *r, const uint8_t *d,
			  uint64_t caplen)
{
	uint64_t off, i;
	uint8_t nh, pat;
	int later = 0;

	if (r->family == 2) {
		if (caplen < 20)
			return;
		off = (d[0] & 15) * 4;
		nh = d[9];
	} else {
		if (caplen < 40)
			return;
		off = 40;
		nh = d[6];
		while ((nh == 0 || nh == 43 || nh == 44 || nh == 60) &&
		       off + 8 <= caplen) {
			later = nh == 44 && ((d[off + 2] << 8 | d[off + 3]) & ~7);
			nh = d[off];
			off += (d[off + 1] + 1) * 8;
			if (later)
				break;
		}
	}
	if (nh != r->protocol)
		payload_bad++;
	if (later) {
		later_fragments++;
		pat = nh == 17 ? 'x' : 'y';
	} else if (nh == 17) {
		off += 8;
		pat = 'x';
	} else if (nh == 6) {
		if (off + 13 > caplen)
			return;
		off += (d[off + 12] >> 4) * 4;
		pat = 'y';
	} else {
		return;
	}
	if (off >= caplen)
		return;
	payload_checked++;
	for (i = off; i < caplen; i++) {
		if (d[i] != pat) {
			payload_bad++;
			return;
		}
	}
}

static void on_record(const struct nlmsghdr *nlh, uint64_t wall)
{
	size_t plen = nlh->nlmsg_len - NLMSG_HDRLEN;
	struct imp2_record r;
	uint64_t caplen, want;

	if (plen < sizeof(r)) {
		bad++;
		return;
	}
	memcpy(&r, NLMSG_DATA(nlh), sizeof(r));	/* may be 4-aligned only */
	caplen = plen - sizeof(r);
	if (caplen > r.orig_len || r.flags || r.reserved)
		bad++;
	want = r.orig_len < snaplen_cfg ? r.orig_len : snaplen_cfg;
	if (want > caplen_max)
		want = caplen_max;	/* a record must fit in one batch */
	if (caplen != want)
		caplen_bad++;
	check_payload(&r, (const uint8_t *)NLMSG_DATA(nlh) + sizeof(r), caplen);
	if (caplen > maxcap)
		maxcap = caplen;
	captured_bytes += caplen;
	if (r.tstamp_ns > wall + 1000000000ull ||
	    r.tstamp_ns + 600 * 1000000000ull < wall)
		ts_bad++;
	if (r.family != 2 && r.family != 10)
		bad++;
	counts[hook_index(r.hook)][r.family == 10][r.protocol]++;
	records++;
	records_in_batch++;
}

static void on_trailer(const struct nlmsghdr *nlh)
{
	struct imp2_batch_trailer t;
	struct cpu_state *c;
	int i;

	if (nlh->nlmsg_len - NLMSG_HDRLEN < sizeof(t)) {
		bad++;
		return;
	}
	memcpy(&t, NLMSG_DATA(nlh), sizeof(t));
	if (t.status || t.cpu >= MAX_CPUS || t.records != records_in_batch) {
		fprintf(stderr, "imp2_ctl: bad trailer: status %d cpu %u records %u counted %llu\n",
			t.status, t.cpu, t.records,
			(unsigned long long)records_in_batch);
		bad++;
	}
	records_in_batch = 0;
	if (t.cpu >= MAX_CPUS)
		return;
	c = &cpus[t.cpu];
	if (c->seen) {
		if (t.seq <= c->last.seq) {
			bad++;
			return;
		}
		gap_batches += t.seq - c->last.seq - 1;
		lost += t.records_total - c->last.records_total - t.records;
		if (t.seq == c->last.seq + 1) {
			for (i = 0; i < IMP2_DROP__MAX; i++)
				if (t.dropped_total[i] - c->last.dropped_total[i] !=
				    t.dropped[i])
					bad++;
		}
	} else {
		gap_batches += t.seq - 1;
		lost += t.records_total - t.records;
	}
	if (t.flags & IMP2_TRAILER_F_FINAL)
		c->final = 1;
	c->full += !!(t.flags & IMP2_TRAILER_F_FULL);
	c->timer += !!(t.flags & IMP2_TRAILER_F_TIMER);
	c->records += t.records;
	c->batches++;
	if (t.records > max_batch_records)
		max_batch_records = t.records;
	c->seen = 1;
	c->last = t;
	batches++;
}

/* Walks one received batch; returns the errno of an ack/error seen, or -1. */
static int walk(const char *buf, size_t len)
{
	const struct nlmsghdr *nlh = (const void *)buf;
	uint64_t wall = now_ns(CLOCK_REALTIME), before = records;
	int ack = -1;

	records_in_batch = 0;
	for (; NLMSG_OK(nlh, len); nlh = NLMSG_NEXT(nlh, len)) {
		switch (nlh->nlmsg_type) {
		case IMP2_MSG_RECORD:
			on_record(nlh, wall);
			break;
		case NLMSG_DONE:
			on_trailer(nlh);
			break;
		case NLMSG_ERROR: {
			const struct nlmsgerr *e = NLMSG_DATA(nlh);

			ack = -e->error;
			break;
		}
		default:
			bad++;
		}
	}
	if (len)
		bad++;
	if (records != before) {
		t_last_ns = now_ns(CLOCK_MONOTONIC);
		if (!t_first_ns)
			t_first_ns = t_last_ns;
	}
	return ack;
}

static int sock_recv(int fd, char *buf, int flags, int *ack)
{
	struct iovec iov = { buf, BUF_SIZE };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n = recvmsg(fd, &msg, flags);

	*ack = -1;
	if (n < 0) {
		if (errno == ENOBUFS) {
			enobufs++;
			return 1;
		}
		return -1;
	}
	if (msg.msg_flags & MSG_TRUNC)
		truncated++;
	if ((uint64_t)n > max_batch_bytes)
		max_batch_bytes = n;
	*ack = walk(buf, n);
	return 1;
}

static int send_msg(int fd, uint16_t type, const void *payload, size_t plen,
		    uint32_t seq)
{
	/* Room for a config and the largest filter extension tests send. */
	static char buf[NLMSG_SPACE(sizeof(struct imp2_config) + 65536)];
	struct nlmsghdr *nlh = (void *)buf;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	if (plen > sizeof(buf) - NLMSG_HDRLEN)
		return -EMSGSIZE;
	memset(buf, 0, sizeof(buf));
	nlh->nlmsg_len = NLMSG_LENGTH(plen);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	memcpy(NLMSG_DATA(nlh), payload, plen);
	return sendto(fd, buf, nlh->nlmsg_len, 0, (void *)&kernel,
		      sizeof(kernel)) < 0 ? -errno : 0;
}

/* Receives until the ack of a request; returns its errno (0: ACK). */
static int wait_ack(int fd, char *buf, int timeout_ms)
{
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + timeout_ms * 1000000ull;
	int ack;

	while (now_ns(CLOCK_MONOTONIC) < deadline) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 100) <= 0)
			continue;
		if (sock_recv(fd, buf, MSG_DONTWAIT, &ack) < 0)
			continue;
		if (ack >= 0)
			return ack;
	}
	return ETIMEDOUT;
}

static uint32_t parse_list(const char *s, const char *what)
{
	uint32_t bits = 0;
	char *copy = strdup(s), *tok, *save;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(what, "hooks")) {
			if (!strcmp(tok, "pre"))
				bits |= IMP2_HOOK_F_PRE_ROUTING;
			else if (!strcmp(tok, "out"))
				bits |= IMP2_HOOK_F_LOCAL_OUT;
			else
				bits |= strtoul(tok, NULL, 0);
		} else {
			if (!strcmp(tok, "4"))
				bits |= IMP2_FAMILY_F_IPV4;
			else if (!strcmp(tok, "6"))
				bits |= IMP2_FAMILY_F_IPV6;
			else
				bits |= strtoul(tok, NULL, 0);
		}
	}
	free(copy);
	return bits;
}

static void parse_protocols(const char *s, uint8_t *map)
{
	char *copy = strdup(s), *tok, *save;
	unsigned int p;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "icmp"))
			p = 1;
		else if (!strcmp(tok, "tcp"))
			p = 6;
		else if (!strcmp(tok, "udp"))
			p = 17;
		else if (!strcmp(tok, "icmp6") || !strcmp(tok, "ipv6-icmp"))
			p = 58;
		else
			p = strtoul(tok, NULL, 0) & 255;
		map[p / 8] |= 1u << (p % 8);
	}
	free(copy);
}

static void usage(void)
{
	fprintf(stderr, "usage: imp2_ctl [-X] [-c N] [-t SECS] [-s SNAPLEN] [-H pre,out] [-F 4,6]\n"
		"                [-P PROTOS] [-b BYTES] [-r RECORDS] [-f FLUSH_US] [-R RCVBUF]\n"
		"                [-u UNIT] [-q] [--abi N] [--flags N] [--short] [--ext FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "abi", required_argument, NULL, 'A' },
		{ "flags", required_argument, NULL, 'G' },
		{ "short", no_argument, NULL, 'S' },
		{ "ext", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	struct imp2_config cfg = {
		.abi_version = IMP2_ABI_VERSION,
		.snaplen = IMP2_SNAPLEN_DEFAULT,
		.hooks = IMP2_HOOK_F_ALL,
		.families = IMP2_FAMILY_F_ALL,
		.batch_bytes = IMP2_BATCH_BYTES_DEFAULT,
		.batch_records = IMP2_BATCH_RECORDS_DEFAULT,
		.flush_interval_us = IMP2_FLUSH_INTERVAL_US_DEFAULT,
	};
	uint64_t limit = 0, timeout_s = 0, start, t0_cpu;
	int unit = IMP2_NETLINK_UNIT, rcvbuf = 64 << 20, probe = 0, shortcfg = 0;
	/* --ext FILE: raw bytes sent after the config (a filter extension,
	 * possibly hostile); the payload is the config, then them. */
	static unsigned char payload[sizeof(struct imp2_config) + 65536];
	size_t ext_len = 0;
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct rusage ru;
	uint64_t dropped[IMP2_DROP__MAX] = { 0 };
	int fd, opt, err, ack, one = 1, i, h, f, p, finals = 0, cpus_seen = 0;
	char *buf;

	while ((opt = getopt_long(argc, argv, "Xc:t:s:H:F:P:b:r:f:R:u:q",
				  longopts, NULL)) != -1) {
		switch (opt) {
		case 'X': probe = 1; break;
		case 'c': limit = strtoull(optarg, NULL, 0); break;
		case 't': timeout_s = strtoull(optarg, NULL, 0); break;
		case 's': cfg.snaplen = strtoul(optarg, NULL, 0); break;
		case 'H': cfg.hooks = parse_list(optarg, "hooks"); break;
		case 'F': cfg.families = parse_list(optarg, "families"); break;
		case 'P': parse_protocols(optarg, cfg.protocols); break;
		case 'b': cfg.batch_bytes = strtoul(optarg, NULL, 0); break;
		case 'r': cfg.batch_records = strtoul(optarg, NULL, 0); break;
		case 'f': cfg.flush_interval_us = strtoul(optarg, NULL, 0); break;
		case 'R': rcvbuf = strtol(optarg, NULL, 0); break;
		case 'u': unit = strtol(optarg, NULL, 0); break;
		case 'q': quiet = 1; break;
		case 'A': cfg.abi_version = strtoul(optarg, NULL, 0); break;
		case 'G': cfg.flags = strtoul(optarg, NULL, 0); break;
		case 'S': shortcfg = 1; break;
		case 'E': {
			FILE *ef = fopen(optarg, "rb");

			if (!ef) {
				perror(optarg);
				return 2;
			}
			ext_len = fread(payload + sizeof(cfg), 1,
					sizeof(payload) - sizeof(cfg), ef);
			fclose(ef);
			break;
		}
		default: usage();
		}
	}
	snaplen_cfg = cfg.snaplen;

	buf = malloc(BUF_SIZE);
	fd = socket(AF_NETLINK, SOCK_RAW, unit);
	if (fd < 0 || !buf) {
		printf("register %s\n", errname(errno));
		fprintf(stderr, "imp2_ctl: socket: %s (module not loaded?)\n",
			strerror(errno));
		return 1;
	}
	if (bind(fd, (void *)&local, sizeof(local)) < 0) {
		perror("imp2_ctl: bind");
		return 1;
	}
	if (rcvbuf &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	memcpy(payload, &cfg, sizeof(cfg));
	err = send_msg(fd, IMP2_MSG_REGISTER, payload,
		       shortcfg ? sizeof(cfg) - 4 : sizeof(cfg) + ext_len, 1);
	if (!err)
		err = wait_ack(fd, buf, 5000);
	else
		err = -err;
	if (probe || err) {
		printf("register %s\n", errname(err));
		fflush(stdout);
		if (!err && send_msg(fd, IMP2_MSG_UNREGISTER, NULL, 0, 2) == 0)
			wait_ack(fd, buf, 5000);
		return err ? 1 : 0;
	}
	{
		FILE *pf = fopen("/proc/net/imp2", "r");
		char line[256];
		unsigned int v;

		while (pf && fgets(line, sizeof(line), pf))
			if (sscanf(line, "caplen_max %u", &v) == 1)
				caplen_max = v;
		if (pf)
			fclose(pf);
	}
	if (!quiet)
		fprintf(stderr, "imp2_ctl: registered on unit %d\n", unit);
	printf("IMP2CTL registered\n");
	fflush(stdout);

	start = now_ns(CLOCK_MONOTONIC);
	getrusage(RUSAGE_SELF, &ru);
	t0_cpu = ru.ru_utime.tv_sec * 1000000000ull + ru.ru_utime.tv_usec * 1000ull +
		 ru.ru_stime.tv_sec * 1000000000ull + ru.ru_stime.tv_usec * 1000ull;
	while (!stop) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		if (limit && records >= limit)
			break;
		if (timeout_s && now_ns(CLOCK_MONOTONIC) - start >=
		    timeout_s * 1000000000ull)
			break;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		while (sock_recv(fd, buf, MSG_DONTWAIT, &ack) > 0)
			;
	}
	getrusage(RUSAGE_SELF, &ru);
	t0_cpu = ru.ru_utime.tv_sec * 1000000000ull + ru.ru_utime.tv_usec * 1000ull +
		 ru.ru_stime.tv_sec * 1000000000ull + ru.ru_stime.tv_usec * 1000ull -
		 t0_cpu;

	/* Drain what is queued so the final batches find room, then stop. */
	while (sock_recv(fd, buf, MSG_DONTWAIT, &ack) > 0)
		;
	err = send_msg(fd, IMP2_MSG_UNREGISTER, NULL, 0, 2);
	if (!err)
		err = wait_ack(fd, buf, 5000);
	if (err)
		fprintf(stderr, "imp2_ctl: unregister: %s\n", errname(err));

	for (i = 0; i < MAX_CPUS; i++) {
		if (!cpus[i].seen)
			continue;
		cpus_seen++;
		finals += cpus[i].final;
		for (p = 0; p < IMP2_DROP__MAX; p++)
			dropped[p] += cpus[i].last.dropped_total[p];
	}
	printf("IMP2CTL records=%llu batches=%llu lost=%llu gap_batches=%llu truncated=%llu "
	       "bad=%llu dropped=%llu nomem=%llu rcvbuf=%llu send=%llu other=%llu "
	       "cpus=%d final_cpus=%d caplen_bad=%llu ts_bad=%llu maxcap=%llu enobufs=%llu "
	       "unregister=%s first_ns=%llu last_ns=%llu cpu_ns=%llu "
	       "payload_checked=%llu payload_bad=%llu max_batch_records=%llu max_batch_bytes=%llu "
	       "captured_bytes=%llu later_fragments=%llu\n",
	       (unsigned long long)records, (unsigned long long)batches,
	       (unsigned long long)lost, (unsigned long long)gap_batches,
	       (unsigned long long)truncated, (unsigned long long)bad,
	       (unsigned long long)(dropped[0] + dropped[1] + dropped[2] + dropped[3]),
	       (unsigned long long)dropped[0], (unsigned long long)dropped[1],
	       (unsigned long long)dropped[2], (unsigned long long)dropped[3],
	       cpus_seen, finals, (unsigned long long)caplen_bad,
	       (unsigned long long)ts_bad, (unsigned long long)maxcap,
	       (unsigned long long)enobufs, errname(err),
	       (unsigned long long)t_first_ns, (unsigned long long)t_last_ns,
	       (unsigned long long)t0_cpu, (unsigned long long)payload_checked,
	       (unsigned long long)payload_bad, (unsigned long long)max_batch_records,
	       (unsigned long long)max_batch_bytes, (unsigned long long)captured_bytes,
	       (unsigned long long)later_fragments);
	for (i = 0; i < MAX_CPUS; i++)
		if (cpus[i].seen)
			printf("IMP2CTL cpu=%d records=%llu batches=%llu full=%llu timer=%llu final=%d seq=%llu\n",
			       i, (unsigned long long)cpus[i].records,
			       (unsigned long long)cpus[i].batches,
			       (unsigned long long)cpus[i].full,
			       (unsigned long long)cpus[i].timer, cpus[i].final,
			       (unsigned long long)cpus[i].last.seq);
	for (h = 0; h < 3; h++)
		for (f = 0; f < 2; f++)
			for (p = 0; p < 256; p++)
				if (counts[h][f][p])
					printf("IMP2CTL count hook=%s family=%d proto=%d n=%llu\n",
					       hook_name[h], f ? 6 : 4, p,
					       (unsigned long long)counts[h][f][p]);
	close(fd);
	return 0;
}
