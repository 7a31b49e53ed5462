// SPDX-License-Identifier: GPL-2.0
/*
 * imp2: netfilter hooks and per-CPU batches.
 *
 * Each CPU fills its own batch skb with IMP2_MSG_RECORD messages and sends
 * it, closed by an NLMSG_DONE trailer, when the next record would not fit,
 * when it holds cfg.batch_records records, or when its flush timer fires.
 * The fast path takes no global lock: only its CPU's batch lock, which is
 * uncontended but for the rare flush of another CPU's batch at UNREGISTER.
 *
 * Sequence numbers, running totals and drop counters are per CPU, so the
 * order in which two CPUs' batches reach the recorder does not matter: the
 * recorder orders and gap-checks each CPU's stream by its sequence numbers.
 * Batches of one CPU reach the receive queue in sequence order, since they
 * are sent under that CPU's batch lock.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/filter.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/kernel.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/percpu.h>
#include <linux/socket.h>
#include <linux/timekeeping.h>
#include <net/ip.h>
#include <net/ipv6.h>
#include <net/netlink.h>
#include <net/net_namespace.h>

#include "imp2.h"

struct imp2_cpu __percpu *imp2_cpus;

/* Takes away records that will never reach the recorder, by cause. */
static void imp2_drop(struct imp2_cpu *c, enum imp2_drop_cause cause, u32 n)
{
	c->dropped[cause] += n;
	c->dropped_total[cause] += n;
}

/* Starts @c over for session @s: counters from zero, seq from 1. */
static void imp2_cpu_reset(struct imp2_cpu *c, const struct imp2_session *s)
{
	kfree_skb(c->skb);	/* never set: detach empties every batch */
	c->skb = NULL;
	c->records = 0;
	c->seq = 0;
	c->records_total = 0;
	memset(c->dropped, 0, sizeof(c->dropped));
	memset(c->dropped_total, 0, sizeof(c->dropped_total));
	memset(&c->cnt, 0, sizeof(c->cnt));
	c->gen = s->gen;
}

/*
 * Closes @c's batch with its trailer and hands it to netlink on the
 * session's socket (s->sk). Called with c->lock held and BHs disabled:
 * netlink_unicast() may reallocate a batch that is more than half empty
 * (netlink_trim) with gfp_any(), which is GFP_ATOMIC only in that state, and
 * with MSG_DONTWAIT it never sleeps.
 * netlink_unicast() consumes the skb whatever it returns.
 *
 * An empty batch is sent only as the final one (@why has
 * IMP2_TRAILER_F_FINAL), so the recorder learns each CPU's final totals.
 */
static void imp2_flush(struct imp2_cpu *c, struct imp2_session *s, u32 why)
{
	struct imp2_batch_trailer *t;
	struct sk_buff *skb = c->skb;
	u32 n = c->records;
	struct nlmsghdr *nlh;
	int err;

	if (!skb) {
		if (!(why & IMP2_TRAILER_F_FINAL))
			return;
		skb = alloc_skb(IMP2_TRAILER_SPACE, GFP_ATOMIC | __GFP_NOWARN);
		if (!skb)
			return;	/* the drop counters stay in /proc */
	}
	c->skb = NULL;
	c->records = 0;

	/* Cannot fail: the space was reserved when the skb was allocated. */
	nlh = nlmsg_put(skb, 0, 0, NLMSG_DONE, sizeof(*t), NLM_F_MULTI);
	if (WARN_ON_ONCE(!nlh)) {
		kfree_skb(skb);
		imp2_drop(c, IMP2_DROP_OTHER, n);
		return;
	}
	t = nlmsg_data(nlh);
	memset(t, 0, sizeof(*t));
	t->status = 0;
	t->cpu = c->cpu;
	t->seq = c->seq + 1;
	t->records = n;
	t->flags = why;
	t->records_total = c->records_total + n;
	memcpy(t->dropped, c->dropped, sizeof(t->dropped));
	memcpy(t->dropped_total, c->dropped_total, sizeof(t->dropped_total));

	err = netlink_unicast(s->sk, skb, s->portid, MSG_DONTWAIT);
	if (err >= 0) {
		c->seq++;
		c->records_total += n;
		c->cnt.batches++;
		memset(c->dropped, 0, sizeof(c->dropped));
		return;
	}
	/* The trailer's drop counts were not delivered: they stay pending. */
	imp2_drop(c, err == -EAGAIN ? IMP2_DROP_RCVBUF : IMP2_DROP_SEND, n);
	if (err == -ECONNREFUSED)
		imp2_session_refused(s);
}

/*
 * A fresh batch skb for @c whose head is cfg.batch_bytes in all (data and
 * struct skb_shared_info), so that its truesize, which is what the
 * recorder's receive buffer is charged, is batch_bytes plus the struct
 * sk_buff. Large atomic allocations can fail when memory is fragmented: then
 * a batch just big enough for this record is tried before giving up.
 */
static struct sk_buff *imp2_batch_alloc(const struct imp2_session *s,
					u32 caplen)
{
	struct sk_buff *skb;

	skb = alloc_skb(s->skb_size, GFP_ATOMIC | __GFP_NOWARN);
	if (likely(skb))
		return skb;
	return alloc_skb(IMP2_RECORD_SPACE(caplen) + IMP2_TRAILER_SPACE,
			 GFP_ATOMIC | __GFP_NOWARN);
}

/*
 * Transport protocol of an IPv4 or IPv6 packet, or IMP2_PROTO_UNKNOWN.
 *
 * ipv6_skip_exthdr() stops at the fragment header of a later fragment,
 * which has no transport header. That header's next header still names
 * the datagram's protocol, as an IPv4 fragment's protocol field does: it
 * is what is reported, so that every fragment of a UDP datagram is UDP in
 * both families (and --proto udp records them all).
 */
static u8 imp2_protocol(const struct sk_buff *skb, u8 pf)
{
	__be16 frag_off;
	const u8 *inner;
	u8 nexthdr, buf;
	int off;

	if (pf == NFPROTO_IPV4)
		return ip_hdr(skb)->protocol;

	nexthdr = ipv6_hdr(skb)->nexthdr;
	off = ipv6_skip_exthdr(skb, skb_network_offset(skb) +
			       sizeof(struct ipv6hdr), &nexthdr, &frag_off);
	if (off < 0)
		return IMP2_PROTO_UNKNOWN;
	if (nexthdr != NEXTHDR_FRAGMENT)
		return nexthdr;
	/* off is the fragment header's; its first byte is the next header. */
	inner = skb_header_pointer(skb, off, sizeof(buf), &buf);
	return inner ? *inner : IMP2_PROTO_UNKNOWN;
}

static bool imp2_wants_protocol(const struct imp2_session *s, u8 proto)
{
	return s->all_protocols ||
	       (s->cfg.protocols[proto / 8] & (1U << (proto % 8)));
}

/*
 * Appends one record to this CPU's batch. Called with c->lock held and BHs
 * disabled, on c's own CPU.
 */
static void imp2_append(struct imp2_cpu *c, struct imp2_session *s,
			const struct sk_buff *skb,
			const struct nf_hook_state *state, u8 proto, u64 tstamp,
			u32 keep)
{
	const struct net_device *dev;
	unsigned int nhoff = skb_network_offset(skb);
	u32 orig_len = skb->len - nhoff;
	u32 caplen = min3(orig_len, s->caplen_max, keep);
	u32 payload = sizeof(struct imp2_record) + caplen;
	struct imp2_record *rec;
	struct nlmsghdr *nlh;

	if (c->skb && skb_tailroom(c->skb) <
	    IMP2_RECORD_SPACE(caplen) + IMP2_TRAILER_SPACE)
		imp2_flush(c, s, IMP2_TRAILER_F_FULL);
	if (!c->skb) {
		c->skb = imp2_batch_alloc(s, caplen);
		if (!c->skb) {
			imp2_drop(c, IMP2_DROP_NOMEM, 1);
			return;
		}
	}

	/* nlmsg_put() zeroes the alignment padding, not the payload. */
	nlh = nlmsg_put(c->skb, 0, 0, IMP2_MSG_RECORD, payload, NLM_F_MULTI);
	if (WARN_ON_ONCE(!nlh)) {
		imp2_drop(c, IMP2_DROP_OTHER, 1);
		return;
	}
	rec = nlmsg_data(nlh);
	memset(rec, 0, sizeof(*rec));
	rec->tstamp_ns = tstamp;
	dev = state->hook == NF_INET_PRE_ROUTING ? state->in : state->out;
	rec->ifindex = dev ? dev->ifindex : 0;
	rec->orig_len = orig_len;
	rec->hook = state->hook;
	rec->family = state->pf == NFPROTO_IPV4 ? AF_INET : AF_INET6;
	rec->protocol = proto;
	/* The data may sit in fragments: skb_copy_bits() handles them. */
	if (skb_copy_bits(skb, nhoff, rec + 1, caplen)) {
		nlmsg_cancel(c->skb, nlh);
		imp2_drop(c, IMP2_DROP_OTHER, 1);
		return;
	}
	c->cnt.queued++;

	if (++c->records >= s->cfg.batch_records) {
		imp2_flush(c, s, IMP2_TRAILER_F_FULL);
		return;
	}
	if (c->records == 1) {
		/*
		 * First record: flush by deadline. A timer still queued for an
		 * older batch re-arms itself for this deadline when it fires.
		 */
		c->deadline = ktime_add_ns(ktime_get(), s->flush_ns);
		if (!hrtimer_is_queued(&c->timer))
			hrtimer_start(&c->timer, ns_to_ktime(s->flush_ns),
				      HRTIMER_MODE_REL_PINNED_SOFT);
	}
}

/* Whether the packet's device is one the recorder asked for. */
static bool imp2_wants_device(const struct imp2_session *s,
			      const struct nf_hook_state *state)
{
	const struct net_device *dev;
	u32 i;

	if (!s->ifindex_count)
		return true;
	dev = state->hook == NF_INET_PRE_ROUTING ? state->in : state->out;
	if (!dev)
		return false;
	for (i = 0; i < s->ifindex_count; i++)
		if (s->ifindexes[i] == dev->ifindex)
			return true;
	return false;
}

static void imp2_capture(struct imp2_session *s, struct sk_buff *skb,
			 const struct nf_hook_state *state)
{
	u32 family = state->pf == NFPROTO_IPV4 ? IMP2_FAMILY_F_IPV4 :
						   IMP2_FAMILY_F_IPV6;
	struct imp2_cpu *c;
	bool wanted, rejected = false;
	u32 keep = U32_MAX;	/* bytes the filter lets through */
	u64 tstamp;
	u8 proto;

	if (!(s->cfg.hooks & (1U << state->hook)) ||
	    !(s->cfg.families & family))
		return;

	tstamp = ktime_get_real_ns();
	proto = imp2_protocol(skb, state->pf);
	wanted = imp2_wants_protocol(s, proto);

	/* BHs off first: this_cpu_ptr() needs a stable CPU, LOCAL_OUT may
	 * run in process context, and the flush timer is a softirq. The
	 * program runs here too, as bpf_prog_run() wants: no migration.
	 */
	local_bh_disable();
	if (wanted && !imp2_wants_device(s, state))
		rejected = true;
	/*
	 * After the cheap checks, before any copy. skb->data is the network
	 * header at these hooks, which is where a program compiled for raw
	 * IP starts; like a socket filter, it returns the bytes to keep.
	 */
	if (wanted && !rejected && s->prog) {
		keep = bpf_prog_run(s->prog, skb);
		rejected = !keep;
	}
	c = this_cpu_ptr(imp2_cpus);
	spin_lock(&c->lock);
	if (unlikely(c->gen != s->gen))
		imp2_cpu_reset(c, s);
	c->cnt.seen++;
	if (wanted && !rejected) {
		imp2_append(c, s, skb, state, proto, tstamp, keep);
	} else {
		c->cnt.filtered++;	/* filtered before any copy */
		c->cnt.rejected += rejected;
	}
	spin_unlock(&c->lock);
	local_bh_enable();
}

/*
 * The hooks are registered for the module's whole lifetime ("always but
 * cheap") rather than only while a recorder is attached: with nobody
 * attached a hook costs one RCU pointer load and a branch per packet, and in
 * exchange the hooks' lifetime is the module's, so attaching and detaching
 * (which also happens from softirq context on -ECONNREFUSED) never has to
 * register or unregister hooks, and a recorder is capturing as soon as its
 * REGISTER is acked. Netfilter calls hooks inside an RCU read-side section.
 *
 * Always NF_ACCEPT: capturing never changes the packet's fate.
 */
static unsigned int imp2_hook(void *priv, struct sk_buff *skb,
			      const struct nf_hook_state *state)
{
	struct imp2_session *s = rcu_dereference(imp2_session);

	if (s && !READ_ONCE(s->dead))
		imp2_capture(s, skb, state);
	if (state->pf == NFPROTO_IPV4 && state->hook == NF_INET_PRE_ROUTING)
		imp2_legacy_packet(skb);
	return NF_ACCEPT;
}

/*
 * PRE_ROUTING first, to see packets as received (before defragmentation,
 * conntrack and NAT); LOCAL_OUT last, to see them as sent (after NAT and
 * mangling).
 */
static const struct nf_hook_ops imp2_ops[] = {
	{
		.hook		= imp2_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_FIRST,
	},
	{
		.hook		= imp2_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP_PRI_LAST,
	},
	{
		.hook		= imp2_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_FIRST,
	},
	{
		.hook		= imp2_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP6_PRI_LAST,
	},
};

/*
 * Flush timer of one CPU, a soft hrtimer pinned to that CPU, so it runs in
 * softirq context there and normally never contends with that CPU's hooks.
 * It fires at or after the deadline of the batch that armed it; if that
 * batch was sent full meanwhile and a younger one is filling, it re-arms
 * for the younger batch's deadline.
 */
static enum hrtimer_restart imp2_timer(struct hrtimer *timer)
{
	struct imp2_cpu *c = container_of(timer, struct imp2_cpu, timer);
	enum hrtimer_restart ret = HRTIMER_NORESTART;
	struct imp2_session *s;

	rcu_read_lock();
	s = rcu_dereference(imp2_session);
	spin_lock(&c->lock);
	if (s && !READ_ONCE(s->dead) && c->gen == s->gen && c->records) {
		if (ktime_before(ktime_get(), c->deadline)) {
			hrtimer_set_expires(timer, c->deadline);
			ret = HRTIMER_RESTART;
		} else {
			imp2_flush(c, s, IMP2_TRAILER_F_TIMER);
		}
	}
	spin_unlock(&c->lock);
	rcu_read_unlock();
	return ret;
}

/*
 * Detaches session @s from every CPU's batch. Called under imp2_mutex after
 * @s was unpublished and synchronize_net() returned, so no hook or timer
 * uses @s any more and no hook can arm a timer: cancelling the timers first
 * cannot race. With @final each CPU that took part in the session sends its
 * last batch flagged IMP2_TRAILER_F_FINAL (possibly empty: it carries the
 * CPU's final totals); without, the recorder is gone and the pending
 * records are counted as dropped (IMP2_DROP_SEND) for /proc.
 */
void imp2_capture_detach(struct imp2_session *s, bool final)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct imp2_cpu *c = per_cpu_ptr(imp2_cpus, cpu);

		hrtimer_cancel(&c->timer);
		spin_lock_bh(&c->lock);
		if (c->gen == s->gen) {
			if (final && !READ_ONCE(s->dead)) {
				imp2_flush(c, s, IMP2_TRAILER_F_FINAL);
			} else if (c->skb) {
				imp2_drop(c, IMP2_DROP_SEND, c->records);
				kfree_skb(c->skb);
				c->skb = NULL;
				c->records = 0;
			}
		}
		spin_unlock_bh(&c->lock);
	}
}

int imp2_capture_init(void)
{
	unsigned int cpu;

	imp2_cpus = alloc_percpu(struct imp2_cpu);
	if (!imp2_cpus)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct imp2_cpu *c = per_cpu_ptr(imp2_cpus, cpu);

		spin_lock_init(&c->lock);
		hrtimer_init(&c->timer, CLOCK_MONOTONIC,
			     HRTIMER_MODE_REL_PINNED_SOFT);
		c->timer.function = imp2_timer;
		c->cpu = cpu;
	}
	return 0;
}

/* Stops the timers and frees what is left in the batches, then the batches. */
void imp2_capture_exit(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct imp2_cpu *c = per_cpu_ptr(imp2_cpus, cpu);

		hrtimer_cancel(&c->timer);
		kfree_skb(c->skb);
		c->skb = NULL;
	}
	free_percpu(imp2_cpus);
	imp2_cpus = NULL;
}

int imp2_hooks_register(void)
{
	return nf_register_net_hooks(&init_net, imp2_ops, ARRAY_SIZE(imp2_ops));
}

/* Returns once no hook runs any more (nf_unregister_net_hooks() waits). */
void imp2_hooks_unregister(void)
{
	nf_unregister_net_hooks(&init_net, imp2_ops, ARRAY_SIZE(imp2_ops));
}
