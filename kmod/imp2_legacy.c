// SPDX-License-Identifier: GPL-2.0
/*
 * imp2: compatibility with the historic imp2 example.
 *
 * An unmodified old client sends IMP2_U_PID (type 0, no flags) to register,
 * then receives one IMP2_K_MSG (type 1) carrying a struct packet_info (source
 * and destination address in network order) per ICMPv4 packet seen at
 * PRE_ROUTING, and sends IMP2_CLOSE (type 2) when done. That much is kept
 * byte for byte. What is not kept are the original's flaws: the client is
 * taken from NETLINK_CB(skb).portid rather than the forgeable nlmsg_pid,
 * registering needs CAP_NET_ADMIN, and a client whose socket closes is
 * forgotten (NETLINK_URELEASE) instead of staying registered.
 *
 * The old protocol has no way to report an error or a loss, so refusals
 * and drops are only counted here, for /proc/net/imp2.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/ip.h>
#include <linux/kernel.h>
#include <linux/netlink.h>
#include <linux/seq_file.h>
#include <net/ip.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "imp2.h"

/*
 * The module's kernel socket, to send on. Borrowed from imp2_main.c: set by
 * imp2_legacy_init() before the hooks are registered, valid until after
 * they are unregistered at module exit.
 */
static struct sock *imp2_legacy_sk;

/* Port id of the legacy client, 0 when none (as in the original). */
static u32 imp2_legacy_portid;

static atomic64_t imp2_legacy_sent = ATOMIC64_INIT(0);	/* messages */
static atomic64_t imp2_legacy_dropped = ATOMIC64_INIT(0);	/* messages */
static atomic64_t imp2_legacy_refused = ATOMIC64_INIT(0);	/* IMP2_U_PID */

void imp2_legacy_init(struct sock *sk)
{
	imp2_legacy_sk = sk;
}

bool imp2_legacy_attached(void)
{
	return READ_ONCE(imp2_legacy_portid) != 0;
}

/*
 * Looks for the legacy control messages in what a client sent. As in the
 * original, the last IMP2_U_PID wins; IMP2_CLOSE only counts from the
 * registered client itself.
 */
void imp2_legacy_input(struct sk_buff *skb)
{
	u32 portid = NETLINK_CB(skb).portid;
	struct nlmsghdr *nlh;
	int rem;

	nlmsg_for_each_msg(nlh, nlmsg_hdr(skb), skb->len, rem) {
		switch (nlh->nlmsg_type) {
		case IMP2_U_PID:
			if (!netlink_capable(skb, CAP_NET_ADMIN)) {
				atomic64_inc(&imp2_legacy_refused);
				pr_info_ratelimited("legacy client %u lacks CAP_NET_ADMIN\n",
						    portid);
				break;
			}
			WRITE_ONCE(imp2_legacy_portid, portid);
			break;
		case IMP2_CLOSE:
			cmpxchg(&imp2_legacy_portid, portid, 0);
			break;
		}
	}
}

/* The socket of @portid closed. */
void imp2_legacy_release(u32 portid)
{
	cmpxchg(&imp2_legacy_portid, portid, 0);
}

/*
 * IPv4 PRE_ROUTING hook work: one message per ICMP packet, as the original
 * sent it. Softirq context (or BHs disabled) and inside RCU; the header was
 * validated and pulled into the linear area by ip_rcv().
 */
void imp2_legacy_packet(struct sk_buff *skb)
{
	u32 portid = READ_ONCE(imp2_legacy_portid);
	const struct iphdr *iph;
	struct packet_info *info;
	struct sk_buff *nskb;
	struct nlmsghdr *nlh;
	int err;

	if (!portid)
		return;
	iph = ip_hdr(skb);
	if (iph->protocol != IPPROTO_ICMP)
		return;

	nskb = nlmsg_new(sizeof(*info), GFP_ATOMIC);
	if (!nskb) {
		atomic64_inc(&imp2_legacy_dropped);
		return;
	}
	nlh = nlmsg_put(nskb, 0, 0, IMP2_K_MSG, sizeof(*info), 0);
	if (WARN_ON_ONCE(!nlh)) {
		kfree_skb(nskb);
		atomic64_inc(&imp2_legacy_dropped);
		return;
	}
	info = nlmsg_data(nlh);
	info->src = (__force __u32)iph->saddr;	/* network order, as before */
	info->dest = (__force __u32)iph->daddr;

	local_bh_disable();
	err = netlink_unicast(imp2_legacy_sk, nskb, portid, MSG_DONTWAIT);
	local_bh_enable();
	if (err < 0) {
		atomic64_inc(&imp2_legacy_dropped);
		if (err == -ECONNREFUSED)
			cmpxchg(&imp2_legacy_portid, portid, 0);
		return;
	}
	atomic64_inc(&imp2_legacy_sent);
}

void imp2_legacy_show(struct seq_file *m)
{
	seq_printf(m, "legacy_portid %u\n", READ_ONCE(imp2_legacy_portid));
	seq_printf(m, "legacy_sent %lld\n", atomic64_read(&imp2_legacy_sent));
	seq_printf(m, "legacy_dropped %lld\n",
		   atomic64_read(&imp2_legacy_dropped));
	seq_printf(m, "legacy_refused %lld\n",
		   atomic64_read(&imp2_legacy_refused));
}
