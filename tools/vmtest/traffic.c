// SPDX-License-Identifier: GPL-2.0
/*
 * traffic: known amounts of loopback traffic for the imp2 VM test.
 *
 *   traffic udp4|udp6 PORT COUNT [PAYLOAD]
 *       binds a receiver on 127.0.0.1 / ::1 PORT (so no ICMP "port
 *       unreachable" is generated), sends COUNT datagrams of PAYLOAD bytes
 *       (default 64) to it and reads them back:
 *       "TRAFFIC udp4 sent=N received=M"
 *   traffic udp6hbh PORT COUNT [PAYLOAD]
 *       the same over IPv6 with a hop-by-hop options header on each datagram
 *   traffic tcp4|tcp6 PORT BYTES
 *       one TCP connection over loopback carrying BYTES bytes client to
 *       server, closed cleanly by both sides; waits until both sockets are
 *       closed: "TRAFFIC tcp4 bytes=N"
 *   traffic icmpburst COUNT
 *       sends COUNT ICMP echo replies to 127.0.0.1 through a raw socket as
 *       fast as it can; the kernel answers none of them, so each is exactly
 *       one packet at LOCAL_OUT and one at PRE_ROUTING:
 *       "TRAFFIC icmpburst sent=N start_ns=T ns=ELAPSED"
 *       (T: CLOCK_MONOTONIC at the first send)
 *   traffic udpflood PORT COUNT [PAYLOAD]
 *       binds a receiver on 127.0.0.1 PORT that never reads (its queue
 *       overflows, so every datagram is dropped at the socket after the
 *       receive path, and no ICMP error is generated), then sends COUNT
 *       UDP datagrams of PAYLOAD bytes (default 64: 92-byte IPv4 packets)
 *       to it as fast as it can:
 *       "TRAFFIC udpflood sent=N start_ns=T ns=ELAPSED pps=P cpu_ns=C
 *        user_ns=U sys_ns=S"
 *       (ELAPSED, C, U, S: over the send loop only; C is the process's
 *       CPU time, the loopback receive softirq included)
 *   traffic now
 *       prints CLOCK_MONOTONIC in nanoseconds
 *
 * Build: gcc -O2 -static -o traffic tools/vmtest/traffic.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static socklen_t make_addr(int v6, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	} else {
		struct sockaddr_in *a = (void *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
}

/* hbh: an IPv6 hop-by-hop options header (PadN) on every datagram */
static int udp(int v6, int port, int count, int size, int hbh)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(v6, port, &ss);
	int rx, tx, i, sent = 0, received = 0, big = 8 << 20;
	char buf[65536];

	rx = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	tx = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0)
		die("socket");
	setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(rx, (void *)&ss, len) < 0)
		die("bind");
	if (hbh) {
		/* next header, length 0 (8 bytes), PadN option of 4 bytes */
		unsigned char opt[8] = { 0, 0, 1, 4, 0, 0, 0, 0 };

		if (setsockopt(tx, IPPROTO_IPV6, IPV6_HOPOPTS, opt, sizeof(opt)) < 0)
			die("IPV6_HOPOPTS");
	}
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < count; i++) {
		if (sendto(tx, buf, size, 0, (void *)&ss, len) == size)
			sent++;
		/* keep the receive queue short: read what has arrived */
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			received++;
	}
	while (received < sent) {
		struct pollfd p = { rx, POLLIN, 0 };

		if (poll(&p, 1, 2000) <= 0)
			break;
		while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			received++;
	}
	printf("TRAFFIC udp%d%s sent=%d received=%d\n", v6 ? 6 : 4,
	       hbh ? "hbh" : "", sent, received);
	close(tx);
	close(rx);
	return sent == count && received == count ? 0 : 1;
}

static int tcp_closed(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return 1;
	return ti.tcpi_state == TCP_CLOSE || ti.tcpi_state == TCP_TIME_WAIT;
}

static int tcp(int v6, int port, int bytes)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(v6, port, &ss);
	int ls, cs, as, one = 1, got = 0, n, i, off;
	static char buf[1 << 20], rbuf[1 << 16];

	ls = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	cs = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || cs < 0)
		die("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (void *)&ss, len) < 0 || listen(ls, 1) < 0)
		die("bind/listen");
	if (connect(cs, (void *)&ss, len) < 0)
		die("connect");
	as = accept(ls, NULL, NULL);
	if (as < 0)
		die("accept");
	memset(buf, 'y', sizeof(buf));
	if (bytes > (int)sizeof(buf))
		bytes = sizeof(buf);
	/* The server reads while the client writes: big transfers do not
	 * fill both socket buffers. Writes go in pieces to get page frags.
	 */
	for (off = 0; off < bytes;) {
		struct pollfd p[2] = { { cs, POLLOUT, 0 }, { as, POLLIN, 0 } };

		poll(p, 2, 1000);
		if (p[0].revents & POLLOUT) {
			n = write(cs, buf, bytes - off > 32768 ? 32768 : bytes - off);
			if (n < 0)
				die("write");
			off += n;
		}
		if (p[1].revents & POLLIN) {
			n = recv(as, rbuf, sizeof(rbuf), MSG_DONTWAIT);
			if (n > 0)
				got += n;
		}
	}
	shutdown(cs, SHUT_WR);
	while ((n = read(as, rbuf, sizeof(rbuf))) > 0)
		got += n;
	shutdown(as, SHUT_WR);
	while (read(cs, rbuf, sizeof(rbuf)) > 0)
		;
	/* Wait for the last ACK so no segment is still to come. */
	for (i = 0; i < 200 && !(tcp_closed(as) && tcp_closed(cs)); i++)
		usleep(10000);
	close(as);
	close(cs);
	close(ls);
	printf("TRAFFIC tcp%d bytes=%d\n", v6 ? 6 : 4, got);
	return got == bytes ? 0 : 1;
}

static uint16_t csum(const void *data, size_t len)
{
	const uint16_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const uint8_t *)p;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static int icmpburst(int count)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(0, 0, &ss);
	struct {
		struct icmphdr h;
		char data[56];
	} pkt;
	int fd, i, sent = 0;
	uint64_t t0;

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (fd < 0)
		die("raw socket");
	memset(&pkt, 0, sizeof(pkt));
	pkt.h.type = ICMP_ECHOREPLY;	/* unsolicited: nobody answers it */
	pkt.h.un.echo.id = htons(0x1402);
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		pkt.h.un.echo.sequence = htons(i);
		pkt.h.checksum = 0;
		pkt.h.checksum = csum(&pkt, sizeof(pkt));
		if (sendto(fd, &pkt, sizeof(pkt), 0, (void *)&ss, len) ==
		    (ssize_t)sizeof(pkt))
			sent++;
	}
	printf("TRAFFIC icmpburst sent=%d start_ns=%llu ns=%llu\n", sent,
	       (unsigned long long)t0, (unsigned long long)(now_ns() - t0));
	close(fd);
	return sent == count ? 0 : 1;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t tv_ns(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000000ull + tv->tv_usec * 1000ull;
}

static int udpflood(int port, int count, int size)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(0, port, &ss);
	struct rusage ru0, ru1;
	uint64_t t0, t, c0, c;
	int rx, tx, i, sent = 0, small = 4096;
	char buf[65536];

	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0)
		die("socket");
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(rx, (void *)&ss, len) < 0)
		die("bind");
	if (connect(tx, (void *)&ss, len) < 0)
		die("connect");
	if (size > (int)sizeof(buf))
		size = sizeof(buf);
	memset(buf, 'z', sizeof(buf));
	getrusage(RUSAGE_SELF, &ru0);
	c0 = cpu_ns();
	t0 = now_ns();
	for (i = 0; i < count; i++)
		if (send(tx, buf, size, 0) == size)
			sent++;
	t = now_ns() - t0;
	c = cpu_ns() - c0;
	getrusage(RUSAGE_SELF, &ru1);
	printf("TRAFFIC udpflood sent=%d start_ns=%llu ns=%llu pps=%llu cpu_ns=%llu user_ns=%llu sys_ns=%llu\n",
	       sent, (unsigned long long)t0, (unsigned long long)t,
	       (unsigned long long)(t ? sent * 1000000000ull / t : 0),
	       (unsigned long long)c,
	       (unsigned long long)(tv_ns(&ru1.ru_utime) - tv_ns(&ru0.ru_utime)),
	       (unsigned long long)(tv_ns(&ru1.ru_stime) - tv_ns(&ru0.ru_stime)));
	close(tx);
	close(rx);
	return sent == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "udp4"))
		return udp(0, atoi(argv[2]), atoi(argv[3]),
			   argc > 4 ? atoi(argv[4]) : 64, 0);
	if (argc >= 4 && !strcmp(argv[1], "udp6"))
		return udp(1, atoi(argv[2]), atoi(argv[3]),
			   argc > 4 ? atoi(argv[4]) : 64, 0);
	if (argc >= 4 && !strcmp(argv[1], "udp6hbh"))
		return udp(1, atoi(argv[2]), atoi(argv[3]),
			   argc > 4 ? atoi(argv[4]) : 64, 1);
	if (argc >= 4 && !strcmp(argv[1], "tcp4"))
		return tcp(0, atoi(argv[2]), atoi(argv[3]));
	if (argc >= 4 && !strcmp(argv[1], "tcp6"))
		return tcp(1, atoi(argv[2]), atoi(argv[3]));
	if (argc == 2 && !strcmp(argv[1], "now")) {
		printf("%llu\n", (unsigned long long)now_ns());
		return 0;
	}
	if (argc >= 4 && !strcmp(argv[1], "udpflood"))
		return udpflood(atoi(argv[2]), atoi(argv[3]),
				argc > 4 ? atoi(argv[4]) : 64);
	if (argc >= 3 && !strcmp(argv[1], "icmpburst"))
		return icmpburst(atoi(argv[2]));
	fprintf(stderr, "usage: traffic udp4|udp6|udp6hbh PORT COUNT [PAYLOAD] | tcp4|tcp6 PORT BYTES | udpflood PORT COUNT [PAYLOAD] | icmpburst COUNT | now\n");
	return 2;
}
