// SPDX-License-Identifier: GPL-2.0
/*
 * imp2: batched packet capture to one user-space recorder over netlink.
 *
 * The module captures IPv4 and IPv6 packets at PRE_ROUTING and LOCAL_OUT
 * and hands them to the one registered recorder in batches: many
 * IMP2_MSG_RECORD messages (NLM_F_MULTI) in one skb, closed by an
 * NLMSG_DONE trailer that numbers the batch and counts what was dropped.
 * The wire ABI is imp2_uapi.h; it also keeps the historic imp2 example's
 * protocol (one message per ICMPv4 packet) for unmodified old clients.
 *
 * This file: module parameters, the netlink socket, REGISTER/UNREGISTER and
 * the recorder's lifetime. A recorder is detached by UNREGISTER (after a
 * final flush), when its socket closes (NETLINK_URELEASE, e.g. kill -9), or
 * when a send finds its port gone (-ECONNREFUSED).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "imp2.h"

/* Tunables */
unsigned int imp2_unit = IMP2_NETLINK_UNIT;
module_param_named(unit, imp2_unit, uint, 0444);
MODULE_PARM_DESC(unit, "netlink unit (protocol number) to listen on, 0..31 (default "
		 __stringify(IMP2_NETLINK_UNIT) ")");

/*
 * The kernel end of the unit. Owned here: created at init, released at exit
 * once hooks, sessions and the legacy client can no longer use it. The
 * capture code reaches it through the session (imp2_session.sk), the legacy
 * code through imp2_legacy_init().
 */
static struct sock *imp2_sk;

/*
 * imp2_mutex serialises the control path: REGISTER, UNREGISTER, the
 * NETLINK_URELEASE notifier, the reaper and /proc readers. It is never
 * taken by hooks or timers, which only read imp2_session under RCU.
 */
DEFINE_MUTEX(imp2_mutex);
struct imp2_session __rcu *imp2_session;

/* Copy of the current or last session, for /proc (under imp2_mutex). */
struct imp2_session imp2_last;

static u64 imp2_gen;		/* last session number given, under imp2_mutex */

static void imp2_reap(struct work_struct *work);
static DECLARE_WORK(imp2_reap_work, imp2_reap);

/*
 * Frees a session no hook or timer can reach any more (never published, or
 * unpublished and past synchronize_net()), with the filter program it owns.
 */
static void imp2_session_free(struct imp2_session *s)
{
	if (s->prog)
		bpf_prog_destroy(s->prog);
	kfree(s);
}

/*
 * Unpublishes and frees @s. Called under imp2_mutex. synchronize_net()
 * waits for every hook and timer that might still use @s, so the batches
 * can then be finished (@final: UNREGISTER) or discarded (recorder gone) and
 * @s freed without a reference count.
 */
static void imp2_detach(struct imp2_session *s, bool final)
{
	lockdep_assert_held(&imp2_mutex);

	rcu_assign_pointer(imp2_session, NULL);
	synchronize_net();
	imp2_capture_detach(s, final);
	pr_debug("recorder %u detached (session %llu%s)\n", s->portid, s->gen,
		 final ? "" : ", gone");
	imp2_session_free(s);
}

/*
 * A send found the recorder's port gone. May run in any context: mark the
 * session so hooks stop using it and let the reaper detach it in process
 * context. Usually NETLINK_URELEASE has already done so.
 */
void imp2_session_refused(struct imp2_session *s)
{
	WRITE_ONCE(s->dead, true);
	schedule_work(&imp2_reap_work);
}

static void imp2_reap(struct work_struct *work)
{
	struct imp2_session *s;

	mutex_lock(&imp2_mutex);
	s = rcu_dereference_protected(imp2_session,
				      lockdep_is_held(&imp2_mutex));
	if (s && READ_ONCE(s->dead))
		imp2_detach(s, false);
	mutex_unlock(&imp2_mutex);
}

/* Checks a REGISTER payload against the bounds of imp2_uapi.h. */
static int imp2_config_check(const struct imp2_config *cfg,
			     struct netlink_ext_ack *extack)
{
	if (cfg->abi_version != IMP2_ABI_VERSION) {
		NL_SET_ERR_MSG(extack, "imp2: ABI version not supported");
		return -EPROTO;
	}
	if (cfg->snaplen < 1 || cfg->snaplen > IMP2_SNAPLEN_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: snaplen out of range");
		return -EINVAL;
	}
	if (cfg->batch_bytes < IMP2_BATCH_BYTES_MIN ||
	    cfg->batch_bytes > IMP2_BATCH_BYTES_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: batch_bytes out of range");
		return -EINVAL;
	}
	if (cfg->batch_records < 1 ||
	    cfg->batch_records > IMP2_BATCH_RECORDS_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: batch_records out of range");
		return -EINVAL;
	}
	if (cfg->flush_interval_us < IMP2_FLUSH_INTERVAL_US_MIN ||
	    cfg->flush_interval_us > IMP2_FLUSH_INTERVAL_US_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: flush_interval_us out of range");
		return -EINVAL;
	}
	if (!cfg->hooks || (cfg->hooks & ~IMP2_HOOK_F_ALL)) {
		NL_SET_ERR_MSG(extack, "imp2: bad hooks");
		return -EINVAL;
	}
	if (!cfg->families || (cfg->families & ~IMP2_FAMILY_F_ALL)) {
		NL_SET_ERR_MSG(extack, "imp2: bad families");
		return -EINVAL;
	}
	if (cfg->flags & ~IMP2_CONFIG_F_ALL) {
		NL_SET_ERR_MSG(extack, "imp2: unknown flags");
		return -EINVAL;
	}
	return 0;
}

/*
 * The REGISTER extension (struct imp2_filter, the program, the interfaces),
 * @len bytes at @data, into @s. Sizes are checked against the counts before
 * anything is read; the program is checked by the kernel's own classic BPF
 * checker (bpf_prog_create() copies it), so a malformed or hostile program
 * gets -EINVAL here and never runs.
 */
static int imp2_filter_setup(struct imp2_session *s, const void *data,
			     size_t len, struct netlink_ext_ack *extack)
{
	const struct imp2_filter *f = data;
	const struct sock_filter *insns;
	struct sock_fprog_kern fprog;
	size_t need;
	int err;

	if (len < sizeof(*f)) {
		NL_SET_ERR_MSG(extack, "imp2: filter header too short");
		return -EINVAL;
	}
	if (f->insn_count > IMP2_FILTER_INSNS_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: filter program too long");
		return -EINVAL;
	}
	if (f->ifindex_count > IMP2_FILTER_IFINDEX_MAX) {
		NL_SET_ERR_MSG(extack, "imp2: too many filter interfaces");
		return -EINVAL;
	}
	/* Both counts are bounded above, so this cannot overflow. */
	need = sizeof(*f) + f->insn_count * sizeof(struct sock_filter) +
	       f->ifindex_count * sizeof(u32);
	if (len != need) {
		NL_SET_ERR_MSG(extack, "imp2: filter length does not match its counts");
		return -EINVAL;
	}
	insns = (const struct sock_filter *)(f + 1);
	s->ifindex_count = f->ifindex_count;
	memcpy(s->ifindexes, insns + f->insn_count,
	       f->ifindex_count * sizeof(u32));
	if (!f->insn_count)
		return 0;

	/* bpf_prog_create() copies the instructions; it does not write them. */
	fprog.len = f->insn_count;
	fprog.filter = (struct sock_filter *)insns;
	err = bpf_prog_create(&s->prog, &fprog);
	if (err) {
		s->prog = NULL;
		NL_SET_ERR_MSG(extack, "imp2: filter program refused by the BPF checker");
		return err;
	}
	s->filter_insns = f->insn_count;
	return 0;
}

/*
 * Sizes derived from the config, computed once here rather than per packet.
 * A batch skb is allocated with SKB_WITH_OVERHEAD(batch_bytes) bytes of
 * data, so its head (data plus struct skb_shared_info) is batch_bytes. A
 * record must fit in an empty batch next to the trailer, which bounds the
 * bytes copied per packet below the snaplen when batch_bytes is small (the
 * ABI allows fewer bytes than the snaplen, never more).
 */
static void imp2_session_derive(struct imp2_session *s)
{
	u32 room;
	int i;

	s->skb_size = SKB_WITH_OVERHEAD(s->cfg.batch_bytes);
	room = s->skb_size - IMP2_TRAILER_SPACE - IMP2_RECORD_SPACE(0);
	s->caplen_max = min(s->cfg.snaplen, room);
	s->flush_ns = (u64)s->cfg.flush_interval_us * NSEC_PER_USEC;
	s->all_protocols = true;
	for (i = 0; i < ARRAY_SIZE(s->cfg.protocols); i++)
		if (s->cfg.protocols[i])
			s->all_protocols = false;
}

static int imp2_register(struct sk_buff *skb, const struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	struct imp2_session *s;
	int err;

	if (!netlink_capable(skb, CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG(extack, "imp2: CAP_NET_ADMIN required");
		return -EPERM;
	}
	if (nlmsg_len(nlh) < (int)sizeof(struct imp2_config)) {
		NL_SET_ERR_MSG(extack, "imp2: config payload too short");
		return -EINVAL;
	}

	s = kzalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	memcpy(&s->cfg, nlmsg_data(nlh), sizeof(s->cfg));
	err = imp2_config_check(&s->cfg, extack);
	if (err)
		goto err_free;
	if (s->cfg.flags & IMP2_CONFIG_F_FILTER) {
		err = imp2_filter_setup(s, (const u8 *)nlmsg_data(nlh) +
					sizeof(s->cfg),
					nlmsg_len(nlh) - sizeof(s->cfg), extack);
		if (err)
			goto err_free;
	}
	imp2_session_derive(s);
	/* The sender's port, not nlmsg_pid, which the sender may forge. */
	s->portid = NETLINK_CB(skb).portid;
	s->sk = imp2_sk;

	mutex_lock(&imp2_mutex);
	if (rcu_access_pointer(imp2_session)) {
		mutex_unlock(&imp2_mutex);
		NL_SET_ERR_MSG(extack, "imp2: another recorder is attached");
		err = -EBUSY;
		goto err_free;
	}
	s->gen = ++imp2_gen;
	imp2_last = *s;
	imp2_last.prog = NULL;	/* the copy for /proc owns nothing */
	rcu_assign_pointer(imp2_session, s);
	mutex_unlock(&imp2_mutex);
	pr_debug("recorder %u attached (session %llu)\n", s->portid, s->gen);
	return 0;

err_free:
	imp2_session_free(s);
	return err;
}

static int imp2_unregister(struct sk_buff *skb)
{
	struct imp2_session *s;
	int err = 0;

	mutex_lock(&imp2_mutex);
	s = rcu_dereference_protected(imp2_session,
				      lockdep_is_held(&imp2_mutex));
	if (s && s->portid == NETLINK_CB(skb).portid)
		imp2_detach(s, true);	/* the ack follows the final batches */
	else
		err = -ENOENT;		/* this socket has no recorder attached */
	mutex_unlock(&imp2_mutex);
	return err;
}

static int imp2_rcv_msg(struct sk_buff *skb, struct nlmsghdr *nlh,
			struct netlink_ext_ack *extack)
{
	switch (nlh->nlmsg_type) {
	case IMP2_MSG_REGISTER:
		return imp2_register(skb, nlh, extack);
	case IMP2_MSG_UNREGISTER:
		return imp2_unregister(skb);
	default:
		NL_SET_ERR_MSG(extack, "imp2: unknown message type");
		return -EOPNOTSUPP;
	}
}

/*
 * Runs in the sender's process context. netlink_rcv_skb() skips messages
 * without NLM_F_REQUEST or with a type below NLMSG_MIN_TYPE, which is what
 * the historic client sends, so those are looked at first; it acks every
 * request that asks for it (NLM_F_ACK) or fails.
 */
static void imp2_input(struct sk_buff *skb)
{
	imp2_legacy_input(skb);
	netlink_rcv_skb(skb, imp2_rcv_msg);
}

/*
 * A user socket on our unit closed (process exited, kill -9): forget it if
 * it was the recorder or the legacy client. Blocking notifier chain, process
 * context.
 */
static int imp2_urelease(struct notifier_block *nb, unsigned long event,
			 void *ptr)
{
	struct netlink_notify *n = ptr;
	struct imp2_session *s;

	if (event != NETLINK_URELEASE || n->protocol != imp2_unit ||
	    !net_eq(n->net, &init_net) || !n->portid)
		return NOTIFY_DONE;

	mutex_lock(&imp2_mutex);
	s = rcu_dereference_protected(imp2_session,
				      lockdep_is_held(&imp2_mutex));
	if (s && s->portid == n->portid)
		imp2_detach(s, false);
	mutex_unlock(&imp2_mutex);
	imp2_legacy_release(n->portid);
	return NOTIFY_DONE;
}

static struct notifier_block imp2_nl_notifier = {
	.notifier_call	= imp2_urelease,
};

static int __init imp2_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.input	= imp2_input,
	};
	int err;

	if (imp2_unit >= MAX_LINKS) {
		pr_err("unit %u out of range 0..%d\n", imp2_unit, MAX_LINKS - 1);
		return -EINVAL;
	}

	err = imp2_capture_init();
	if (err)
		return err;

	/* NULL, not an ERR_PTR, when the unit is taken (or out of memory). */
	imp2_sk = netlink_kernel_create(&init_net, imp2_unit, &cfg);
	if (!imp2_sk) {
		pr_err("cannot create netlink unit %u (in use?)\n", imp2_unit);
		err = -EBUSY;
		goto err_capture;
	}
	imp2_legacy_init(imp2_sk);

	err = netlink_register_notifier(&imp2_nl_notifier);
	if (err)
		goto err_sock;

	err = imp2_proc_init();
	if (err)
		goto err_notifier;

	err = imp2_hooks_register();
	if (err)
		goto err_proc;

	pr_info("listening on netlink unit %u (ABI %u)\n", imp2_unit,
		IMP2_ABI_VERSION);
	return 0;

err_proc:
	imp2_proc_exit();
err_notifier:
	netlink_unregister_notifier(&imp2_nl_notifier);
err_sock:
	netlink_kernel_release(imp2_sk);
err_capture:
	imp2_capture_exit();
	return err;
}

/*
 * Reverse order: hooks (waits for running ones), then any recorder (none
 * can be attached: an open socket on the unit pins the module; a final
 * flush otherwise), the reaper, timers and pending batches, and the socket.
 */
static void __exit imp2_exit(void)
{
	struct imp2_session *s;

	imp2_hooks_unregister();
	imp2_proc_exit();
	netlink_unregister_notifier(&imp2_nl_notifier);

	mutex_lock(&imp2_mutex);
	s = rcu_dereference_protected(imp2_session,
				      lockdep_is_held(&imp2_mutex));
	if (s)
		imp2_detach(s, true);
	mutex_unlock(&imp2_mutex);
	cancel_work_sync(&imp2_reap_work);

	imp2_capture_exit();
	netlink_kernel_release(imp2_sk);
}

module_init(imp2_init);
module_exit(imp2_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("imp2: batched packet capture to a user-space recorder over netlink");
MODULE_ALIAS_NET_PF_PROTO(PF_NETLINK, IMP2_NETLINK_UNIT);
