// SPDX-License-Identifier: GPL-2.0
/*
 * runas: run a program as another uid/gid with no supplementary groups and,
 * since the uid is not 0, no capabilities (the kernel clears them on
 * setuid() from root). For the imp2 VM test's "no CAP_NET_ADMIN" case.
 *
 *   runas UID GID PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: runas UID GID PROGRAM [ARGS...]\n");
		return 2;
	}
	if (setgroups(0, NULL) || setgid(atoi(argv[2])) || setuid(atoi(argv[1]))) {
		perror("runas");
		return 1;
	}
	execv(argv[3], argv + 3);
	perror("runas: exec");
	return 127;
}
