// SPDX-License-Identifier: GPL-2.0
/*
 * imp2_u: the historic imp2 user-space client, as it was written, plus a
 * count limit, a timeout and a quiet mode for testing.
 *
 * It opens a NETLINK socket on unit NL_IMP2, binds to its pid, sends
 * IMP2_U_PID (no flags, empty payload) to the kernel, and prints the source
 * and destination of every ICMP packet the module reports in an IMP2_K_MSG.
 * On SIGINT, at the count limit or the timeout it sends IMP2_CLOSE.
 *
 *   imp2_u [-c COUNT] [-t SECS] [-q] [-r RCVBUF] [-u UNIT]
 *
 * With -q it prints only the final line:
 *   IMP2U received=N first_ns=T last_ns=T cpu_ns=NS
 * (CLOCK_MONOTONIC times of the first and last message received)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

struct u_packet_info {
	struct nlmsghdr hdr;
	struct packet_info icmp_info;
};

static int skfd;
static volatile sig_atomic_t stop;

static void sig_int(int signo)
{
	(void)signo;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static void send_type(int type, struct sockaddr_nl *kpeer, pid_t pid)
{
	struct nlmsghdr hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.nlmsg_len = NLMSG_LENGTH(0);
	hdr.nlmsg_flags = 0;
	hdr.nlmsg_type = type;
	hdr.nlmsg_pid = pid;
	sendto(skfd, &hdr, hdr.nlmsg_len, 0, (struct sockaddr *)kpeer,
	       sizeof(*kpeer));
}

int main(int argc, char **argv)
{
	struct sockaddr_nl local, kpeer;
	socklen_t kpeerlen;
	struct u_packet_info info;
	struct in_addr addr;
	unsigned long count = 0, received = 0, timeout_s = 0;
	uint64_t start, first = 0, last = 0, cpu0 = 0;
	int unit = NL_IMP2, quiet = 0, rcvbuf = 0, opt;
	ssize_t rcvlen;

	while ((opt = getopt(argc, argv, "c:t:qr:u:")) != -1) {
		switch (opt) {
		case 'c': count = strtoul(optarg, NULL, 0); break;
		case 't': timeout_s = strtoul(optarg, NULL, 0); break;
		case 'q': quiet = 1; break;
		case 'r': rcvbuf = atoi(optarg); break;
		case 'u': unit = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: imp2_u [-c COUNT] [-t SECS] [-q] [-r RCVBUF] [-u UNIT]\n");
			return 2;
		}
	}

	skfd = socket(PF_NETLINK, SOCK_RAW, unit);
	if (skfd < 0) {
		printf("can not create a netlink socket\n");
		return 1;
	}
	if (rcvbuf && setsockopt(skfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
				 sizeof(rcvbuf)) < 0)
		perror("SO_RCVBUFFORCE");

	memset(&local, 0, sizeof(local));
	local.nl_family = AF_NETLINK;
	local.nl_pid = getpid();
	local.nl_groups = 0;
	if (bind(skfd, (struct sockaddr *)&local, sizeof(local)) != 0) {
		printf("bind() error\n");
		return 1;
	}

	signal(SIGINT, sig_int);
	signal(SIGTERM, sig_int);

	memset(&kpeer, 0, sizeof(kpeer));
	kpeer.nl_family = AF_NETLINK;
	kpeer.nl_pid = 0;
	kpeer.nl_groups = 0;

	send_type(IMP2_U_PID, &kpeer, local.nl_pid);
	if (!quiet) {
		printf("imp2_u: waiting for ICMP packets\n");
		fflush(stdout);
	}

	start = now_ns();
	cpu0 = cpu_ns();
	while (!stop && (!count || received < count)) {
		struct pollfd p = { skfd, POLLIN, 0 };
		int timeout_ms = -1;

		if (timeout_s) {
			uint64_t el = (now_ns() - start) / 1000000;

			if (el >= timeout_s * 1000)
				break;
			timeout_ms = timeout_s * 1000 - el;
		}
		if (poll(&p, 1, timeout_ms) <= 0)
			continue;
		kpeerlen = sizeof(struct sockaddr_nl);
		rcvlen = recvfrom(skfd, &info, sizeof(struct u_packet_info), 0,
				  (struct sockaddr *)&kpeer, &kpeerlen);
		if (rcvlen < 0) {
			if (errno != ENOBUFS && errno != EINTR)
				break;
			continue;
		}
		if (rcvlen < (ssize_t)sizeof(info) || info.hdr.nlmsg_type != IMP2_K_MSG)
			continue;
		received++;
		last = now_ns();
		if (!first)
			first = last;
		if (quiet)
			continue;
		addr.s_addr = info.icmp_info.src;
		printf("src: %s, ", inet_ntoa(addr));
		addr.s_addr = info.icmp_info.dest;
		printf("dest: %s\n", inet_ntoa(addr));
		fflush(stdout);
	}

	send_type(IMP2_CLOSE, &kpeer, local.nl_pid);
	printf("IMP2U received=%lu first_ns=%llu last_ns=%llu cpu_ns=%llu\n",
	       received, (unsigned long long)first, (unsigned long long)last,
	       (unsigned long long)(cpu_ns() - cpu0));
	close(skfd);
	return 0;
}
