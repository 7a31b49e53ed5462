// SPDX-License-Identifier: GPL-2.0
/*
 * imp2: /proc/net/imp2, one "key value" pair per line (easy to read by eye
 * and by script).
 *
 * The counters are those of the current recorder's session, or of the last
 * one after it detached (they restart at each REGISTER); see struct
 * imp2_counters for what each counts. filter_insns and interfaces describe
 * the session's filter (0 and "all" without one); filter_rejected is the
 * part of filtered that its interfaces or program rejected. The drops come one line per cause,
 * "dropped_<name>", from the imp2_drop_names table. After a final flush:
 *   seen == filtered + sent + the sum of the dropped_* lines
 * Then one line per CPU that took part in the session (its drops summed
 * over the causes), and the legacy client's state.
 */

#include <linux/kernel.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>

#include "imp2.h"

/* The name of each drop cause in /proc; one entry per enum imp2_drop_cause. */
static const char *const imp2_drop_names[IMP2_DROP__MAX] = {
	[IMP2_DROP_NOMEM]	= "nomem",
	[IMP2_DROP_RCVBUF]	= "rcvbuf",
	[IMP2_DROP_SEND]	= "send",
	[IMP2_DROP_OTHER]	= "other",
};

static void imp2_proc_protocols(struct seq_file *m,
				const struct imp2_config *cfg)
{
	unsigned int p;
	bool any = false;

	seq_puts(m, "protocols");
	for (p = 0; p < 8 * sizeof(cfg->protocols); p++) {
		if (cfg->protocols[p / 8] & (1U << (p % 8))) {
			seq_printf(m, " %u", p);
			any = true;
		}
	}
	seq_puts(m, any ? "\n" : " all\n");
}

static int imp2_proc_show(struct seq_file *m, void *v)
{
	const struct imp2_session *last = &imp2_last;
	u64 dropped[IMP2_DROP__MAX] = {};
	struct imp2_counters sum = {};
	u64 sent = 0, pending = 0;
	unsigned int cpu;
	u32 n;
	int i;

	mutex_lock(&imp2_mutex);
	seq_printf(m, "unit %u\n", imp2_unit);
	seq_printf(m, "abi_version %u\n", IMP2_ABI_VERSION);
	seq_printf(m, "recorder %u\n",
		   rcu_access_pointer(imp2_session) ? last->portid : 0);
	seq_printf(m, "session %llu\n", last->gen);
	seq_printf(m, "last_recorder %u\n", last->portid);
	seq_printf(m, "snaplen %u\n", last->cfg.snaplen);
	seq_printf(m, "caplen_max %u\n", last->caplen_max);
	seq_printf(m, "hooks 0x%x\n", last->cfg.hooks);
	seq_printf(m, "families 0x%x\n", last->cfg.families);
	seq_printf(m, "batch_bytes %u\n", last->cfg.batch_bytes);
	seq_printf(m, "batch_records %u\n", last->cfg.batch_records);
	seq_printf(m, "flush_interval_us %u\n", last->cfg.flush_interval_us);
	imp2_proc_protocols(m, &last->cfg);
	seq_printf(m, "filter_insns %u\n", last->filter_insns);
	seq_puts(m, "interfaces");
	for (n = 0; n < last->ifindex_count; n++)
		seq_printf(m, " %u", last->ifindexes[n]);
	seq_puts(m, last->ifindex_count ? "\n" : " all\n");

	for_each_possible_cpu(cpu) {
		struct imp2_cpu *c = per_cpu_ptr(imp2_cpus, cpu);

		spin_lock_bh(&c->lock);
		if (last->gen && c->gen == last->gen) {
			sum.seen += c->cnt.seen;
			sum.filtered += c->cnt.filtered;
			sum.rejected += c->cnt.rejected;
			sum.queued += c->cnt.queued;
			sum.batches += c->cnt.batches;
			sent += c->records_total;
			pending += c->records;
			for (i = 0; i < IMP2_DROP__MAX; i++)
				dropped[i] += c->dropped_total[i];
		}
		spin_unlock_bh(&c->lock);
	}
	seq_printf(m, "seen %llu\n", sum.seen);
	seq_printf(m, "filtered %llu\n", sum.filtered);
	seq_printf(m, "filter_rejected %llu\n", sum.rejected);
	seq_printf(m, "queued %llu\n", sum.queued);
	seq_printf(m, "sent %llu\n", sent);
	seq_printf(m, "pending %llu\n", pending);
	seq_printf(m, "batches %llu\n", sum.batches);
	for (i = 0; i < IMP2_DROP__MAX; i++)
		seq_printf(m, "dropped_%s %llu\n", imp2_drop_names[i],
			   dropped[i]);

	for_each_possible_cpu(cpu) {
		struct imp2_cpu *c = per_cpu_ptr(imp2_cpus, cpu);
		u64 cpu_dropped = 0;

		spin_lock_bh(&c->lock);
		if (last->gen && c->gen == last->gen) {
			for (i = 0; i < IMP2_DROP__MAX; i++)
				cpu_dropped += c->dropped_total[i];
			seq_printf(m, "cpu%u seq %llu seen %llu sent %llu pending %u dropped %llu\n",
				   cpu, c->seq, c->cnt.seen, c->records_total,
				   c->records, cpu_dropped);
		}
		spin_unlock_bh(&c->lock);
	}
	mutex_unlock(&imp2_mutex);

	imp2_legacy_show(m);
	return 0;
}

int imp2_proc_init(void)
{
	if (!proc_create_single("imp2", 0444, init_net.proc_net,
				imp2_proc_show))
		return -ENOMEM;
	return 0;
}

void imp2_proc_exit(void)
{
	remove_proc_entry("imp2", init_net.proc_net);
}
