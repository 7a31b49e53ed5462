/* SPDX-License-Identifier: GPL-2.0 */
/*
 * imp2: internal declarations shared by the module's files.
 *
 *   imp2_main.c     module parameters, init/exit, the netlink socket, the
 *                   REGISTER/UNREGISTER protocol and the recorder's lifetime
 *   imp2_capture.c  netfilter hooks, per-CPU batches, flush timers
 *   imp2_legacy.c   compatibility with the historic imp2 client
 *   imp2_proc.c     /proc/net/imp2
 *
 * The wire ABI is imp2_uapi.h; nothing here is visible to user space.
 */
#ifndef _IMP2_H
#define _IMP2_H

#include <linux/types.h>
#include <linux/hrtimer.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <net/netlink.h>

#include "imp2_uapi.h"

/*
 * Space the NLMSG_DONE trailer takes at the end of a batch. It is reserved
 * in every batch skb from the start, so closing a batch cannot fail.
 */
#define IMP2_TRAILER_SPACE	NLMSG_ALIGN(NLMSG_HDRLEN + \
					    sizeof(struct imp2_batch_trailer))

/* Space one record message takes in a batch, padding included. */
#define IMP2_RECORD_SPACE(caplen) \
	NLMSG_ALIGN(NLMSG_HDRLEN + sizeof(struct imp2_record) + (caplen))

/*
 * One attached recorder. Published through imp2_session (RCU); written only
 * under imp2_mutex, and freed only after synchronize_net() once it is no
 * longer published, so hooks and timers may use it inside their RCU
 * read-side sections without a reference.
 */
struct imp2_session {
	u64 gen;		/* session number, from 1, never reused */
	u32 portid;		/* the recorder's netlink port id */
	/*
	 * The kernel socket batches go out on. Borrowed, not owned: it is
	 * imp2_main.c's, and released only at module exit after every
	 * session was detached.
	 */
	struct sock *sk;
	struct imp2_config cfg;	/* as registered, validated */
	bool all_protocols;	/* cfg.protocols is all zero */
	/*
	 * The REGISTER's filter (IMP2_CONFIG_F_FILTER), or none: a classic BPF
	 * program, owned by the session (created by bpf_prog_create() at
	 * REGISTER, destroyed by imp2_session_free() once no hook can run
	 * it), and the interfaces to capture on (none: all).
	 */
	struct bpf_prog *prog;
	u32 filter_insns;	/* instructions in @prog, for /proc */
	u32 ifindex_count;
	u32 ifindexes[IMP2_FILTER_IFINDEX_MAX];
	u32 skb_size;		/* bytes: alloc_skb() size of a batch */
	u32 caplen_max;		/* bytes copied per packet, at most */
	u64 flush_ns;		/* nanoseconds: cfg.flush_interval_us */
	bool dead;		/* a send saw -ECONNREFUSED: detach pending */
};

/*
 * Counters of one session on one CPU. "seen" counts packets at a hook and
 * family the recorder asked for; each of them is then exactly one of
 * filtered, sent (in a batch netlink accepted), dropped (by cause), or still
 * pending in the CPU's batch. After the final flush:
 *   seen == filtered + sent + sum(dropped_total)
 */
struct imp2_counters {
	u64 seen;
	u64 filtered;
	u64 rejected;		/* of filtered: by the interfaces or program */
	u64 queued;		/* records appended to a batch */
	u64 batches;		/* batches netlink accepted */
};

/*
 * Per-CPU batch. Filled by the hooks of its own CPU, sent when full, by its
 * own (pinned) flush timer, or by the control path at UNREGISTER. @lock
 * serialises those three; the hooks take it with BHs disabled, so it is
 * uncontended except when the control path flushes another CPU's batch.
 *
 * Everything below @lock belongs to session @gen and is reset lazily when a
 * hook on this CPU first sees a newer session.
 */
struct imp2_cpu {
	spinlock_t lock;
	struct hrtimer timer;	/* flush timer, pinned to this CPU */
	unsigned int cpu;

	u64 gen;		/* session the fields below belong to */
	struct sk_buff *skb;	/* batch being filled, or NULL */
	u32 records;		/* records in @skb */
	ktime_t deadline;	/* CLOCK_MONOTONIC: flush @skb by then */
	u64 seq;		/* last batch netlink accepted, 0: none */
	u64 records_total;	/* records in batches netlink accepted */
	u64 dropped[IMP2_DROP__MAX];		/* since the last trailer sent */
	u64 dropped_total[IMP2_DROP__MAX];	/* since REGISTER */
	struct imp2_counters cnt;
};

/* imp2_main.c */
extern unsigned int imp2_unit;
extern struct mutex imp2_mutex;
extern struct imp2_session __rcu *imp2_session;
extern struct imp2_session imp2_last;
void imp2_session_refused(struct imp2_session *s);

/* imp2_capture.c */
extern struct imp2_cpu __percpu *imp2_cpus;
int imp2_capture_init(void);
void imp2_capture_exit(void);
int imp2_hooks_register(void);
void imp2_hooks_unregister(void);
void imp2_capture_detach(struct imp2_session *s, bool final);

/* imp2_legacy.c */
void imp2_legacy_init(struct sock *sk);
void imp2_legacy_input(struct sk_buff *skb);
void imp2_legacy_release(u32 portid);
void imp2_legacy_packet(struct sk_buff *skb);
void imp2_legacy_show(struct seq_file *m);
bool imp2_legacy_attached(void);

/* imp2_proc.c */
int imp2_proc_init(void);
void imp2_proc_exit(void);

#endif /* _IMP2_H */
