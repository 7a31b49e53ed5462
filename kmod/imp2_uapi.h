/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * imp2 wire ABI: the messages exchanged between the imp2 kernel module and
 * its user-space recorder over netlink.
 *
 * This header is the single source of truth for the ABI. The module includes
 * it; the Rust mirror (format/src/wire/abi.rs) is checked against it by a test
 * that compiles a C program with this header and compares every size and
 * field offset.
 *
 * All integers are in host byte order (netlink convention), except the
 * addresses of the legacy struct packet_info, which are in network order.
 * Every message starts with a struct nlmsghdr; payload lengths below exclude
 * it. Messages are padded to NLMSG_ALIGNTO (4) bytes inside a batch, so a u64
 * field may sit on a 4-byte boundary: readers must not assume 8-byte
 * alignment.
 *
 * Conversation:
 *
 *   recorder -> kernel   IMP2_MSG_REGISTER (NLM_F_REQUEST | NLM_F_ACK),
 *                        payload struct imp2_config
 *   kernel -> recorder   NLMSG_ERROR ack: 0, or -EPERM (no CAP_NET_ADMIN),
 *                        -EBUSY (another recorder attached), -EINVAL (bad
 *                        config), -EPROTO (ABI version not supported)
 *   kernel -> recorder   batches, each one skb:
 *                          IMP2_MSG_RECORD (NLM_F_MULTI)  x records
 *                          NLMSG_DONE      (NLM_F_MULTI)  struct imp2_batch_trailer
 *   recorder -> kernel   IMP2_MSG_UNREGISTER (NLM_F_REQUEST | NLM_F_ACK)
 *
 * Batches are numbered per CPU (each CPU fills its own batch), starting at 1
 * after each REGISTER. A gap in one CPU's sequence is a batch lost between
 * the kernel and the recorder (for example truncated by a too-small receive
 * buffer); the running totals in the next trailer say exactly how many
 * records it held.
 */
#ifndef _UAPI_IMP2_H
#define _UAPI_IMP2_H

#include <linux/types.h>
#include <linux/netlink.h>
#include <linux/filter.h>	/* struct sock_filter, in the REGISTER extension */

/* Netlink unit (protocol number) the module listens on by default. */
#define IMP2_NETLINK_UNIT	31

/* Version of this ABI; REGISTER carries it, the module refuses others. */
#define IMP2_ABI_VERSION	1

/*
 * Message types. All are >= NLMSG_MIN_TYPE (0x10) so none collides with
 * NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE or NLMSG_OVERRUN, and netlink_rcv_skb()
 * delivers them.
 */
enum imp2_msg_type {
	IMP2_MSG_REGISTER = NLMSG_MIN_TYPE + 0x10,	/* 0x20, user -> kernel */
	IMP2_MSG_UNREGISTER,				/* 0x21, user -> kernel */
	IMP2_MSG_RECORD,				/* 0x22, kernel -> user */
};

/*
 * Capture points. The values are the kernel's NF_INET_* hook numbers so they
 * read the same in both worlds; ABI version 1 supports these two.
 */
enum imp2_hook {
	IMP2_HOOK_PRE_ROUTING = 0,	/* NF_INET_PRE_ROUTING: packet received */
	IMP2_HOOK_LOCAL_OUT = 3,	/* NF_INET_LOCAL_OUT: packet sent locally */
};

/* Bits of imp2_config.hooks */
#define IMP2_HOOK_F_PRE_ROUTING	(1U << IMP2_HOOK_PRE_ROUTING)
#define IMP2_HOOK_F_LOCAL_OUT	(1U << IMP2_HOOK_LOCAL_OUT)
#define IMP2_HOOK_F_ALL		(IMP2_HOOK_F_PRE_ROUTING | IMP2_HOOK_F_LOCAL_OUT)

/* Bits of imp2_config.families */
#define IMP2_FAMILY_F_IPV4	(1U << 0)
#define IMP2_FAMILY_F_IPV6	(1U << 1)
#define IMP2_FAMILY_F_ALL	(IMP2_FAMILY_F_IPV4 | IMP2_FAMILY_F_IPV6)

/* Bounds the module enforces on struct imp2_config (units in the names). */
#define IMP2_SNAPLEN_MAX		65535U	/* bytes */
#define IMP2_BATCH_BYTES_MIN		4096U	/* bytes */
#define IMP2_BATCH_BYTES_MAX		(1U << 20)	/* bytes */
#define IMP2_BATCH_RECORDS_MAX		65535U	/* records */
#define IMP2_FLUSH_INTERVAL_US_MIN	100U	/* microseconds */
#define IMP2_FLUSH_INTERVAL_US_MAX	10000000U	/* microseconds (10 s) */

/* Defaults a recorder uses when the user does not choose. */
#define IMP2_SNAPLEN_DEFAULT		65535U	/* bytes: whole packets */
#define IMP2_BATCH_BYTES_DEFAULT	65536U	/* bytes, skb size incl. overhead */
#define IMP2_BATCH_RECORDS_DEFAULT	4096U	/* records */
#define IMP2_FLUSH_INTERVAL_US_DEFAULT	100000U	/* microseconds (100 ms) */

/*
 * REGISTER payload: what to capture and how to batch it.
 *
 * @abi_version:       IMP2_ABI_VERSION
 * @snaplen:           bytes captured per packet from the network header on,
 *                     1..IMP2_SNAPLEN_MAX
 * @hooks:             IMP2_HOOK_F_* bits, at least one
 * @families:          IMP2_FAMILY_F_* bits, at least one
 * @batch_bytes:       size of one batch skb in bytes including the kernel's
 *                     overhead; a batch is sent when the next record would
 *                     not fit. IMP2_BATCH_BYTES_MIN..IMP2_BATCH_BYTES_MAX.
 *                     The recorder's receive buffers must hold this much.
 * @batch_records:     a batch is sent once it holds this many records,
 *                     1..IMP2_BATCH_RECORDS_MAX
 * @flush_interval_us: a non-empty batch is sent at the latest this long after
 *                     its first record, in microseconds,
 *                     IMP2_FLUSH_INTERVAL_US_MIN..IMP2_FLUSH_INTERVAL_US_MAX
 * @flags:             IMP2_CONFIG_F_* bits; a module that does not know a
 *                     bit refuses the config with -EINVAL, so a recorder can
 *                     tell a module without filters from a bad filter
 * @protocols:         bitmap of transport protocols (IPPROTO_* numbers; bit
 *                     n is byte n / 8, bit n % 8) to capture; all zero means
 *                     every protocol. Filtered packets are never copied.
 */
struct imp2_config {
	__u32 abi_version;
	__u32 snaplen;
	__u32 hooks;
	__u32 families;
	__u32 batch_bytes;
	__u32 batch_records;
	__u32 flush_interval_us;
	__u32 flags;
	__u8 protocols[32];
};

/* Bits of imp2_config.flags */
#define IMP2_CONFIG_F_FILTER	(1U << 0)	/* struct imp2_filter follows */
#define IMP2_CONFIG_F_ALL	IMP2_CONFIG_F_FILTER

/* Bounds the module enforces on struct imp2_filter (units in the names). */
#define IMP2_FILTER_INSNS_MAX	4096U	/* instructions: BPF_MAXINSNS */
#define IMP2_FILTER_IFINDEX_MAX	64U	/* interfaces */

/*
 * REGISTER extension, right after struct imp2_config when its @flags has
 * IMP2_CONFIG_F_FILTER (a REGISTER without the flag is what ABI 1 always
 * was: the config alone, anything after it ignored). In order:
 *
 *   struct imp2_filter
 *   struct sock_filter insns[insn_count]    (linux/filter.h, 8 bytes each)
 *   __u32 ifindexes[ifindex_count]
 *
 * and nothing after them: the payload length must be exactly that.
 *
 * @insn_count:    a classic BPF program, 0..IMP2_FILTER_INSNS_MAX
 *                 instructions (0: none), run on each packet from its
 *                 network header (skb->data at these hooks), as a socket
 *                 filter runs; it returns 0 to reject the packet or the
 *                 most bytes to capture of it (the snaplen still applies).
 *                 The kernel's own checker (bpf_prog_create) refuses a bad
 *                 program with -EINVAL. libpcap's compiler makes such
 *                 programs from tcpdump expressions for LINKTYPE_RAW.
 * @ifindex_count: 0..IMP2_FILTER_IFINDEX_MAX interface indexes; when not 0,
 *                 only packets whose device (input at PRE_ROUTING, output
 *                 at LOCAL_OUT) is one of them are captured.
 *
 * Packets the hooks, families, protocols, interfaces or program reject are
 * counted as filtered, before anything is copied.
 */
struct imp2_filter {
	__u32 insn_count;
	__u32 ifindex_count;
};

/*
 * RECORD payload: one captured packet, followed by the captured bytes from
 * the network header on. Their number is the message's payload length less
 * sizeof(struct imp2_record); it is at most the snaplen and at most
 * @orig_len.
 *
 * @tstamp_ns: capture time, CLOCK_REALTIME nanoseconds since the epoch
 * @ifindex:   input device on PRE_ROUTING, output device on LOCAL_OUT
 * @orig_len:  length of the packet from the network header on, in bytes
 * @hook:      enum imp2_hook
 * @family:    AF_INET (2) or AF_INET6 (10)
 * @protocol:  transport protocol (IPPROTO_*) as the module found it, or
 *             IMP2_PROTO_UNKNOWN
 * @flags:     reserved, 0
 * @reserved:  0; makes the size 24 on every architecture (a __u64 is
 *             4-aligned on i386, 8-aligned on x86_64)
 */
struct imp2_record {
	__u64 tstamp_ns;
	__u32 ifindex;
	__u32 orig_len;
	__u8 hook;
	__u8 family;
	__u8 protocol;
	__u8 flags;
	__u32 reserved;
};

#define IMP2_PROTO_UNKNOWN	255

/* Why the kernel dropped records: indexes of imp2_batch_trailer.dropped. */
enum imp2_drop_cause {
	IMP2_DROP_NOMEM = 0,	/* no memory for a batch skb */
	IMP2_DROP_RCVBUF,	/* receiver's buffer full (netlink -EAGAIN) */
	IMP2_DROP_SEND,		/* any other send error */
	IMP2_DROP_OTHER,	/* anything else (record could not be built) */
	IMP2_DROP__MAX
};

/*
 * NLMSG_DONE payload that ends every batch.
 *
 * @status:          always 0; NLMSG_DONE payloads start with an int by
 *                   convention, so generic netlink decoders read it as
 *                   "no error"
 * @cpu:             CPU that built the batch: sequence numbers and running
 *                   totals are per CPU
 * @seq:             batch number on this CPU since REGISTER, from 1
 * @records:         RECORD messages in this batch
 * @flags:           IMP2_TRAILER_F_* bits
 * @records_total:   running total of records in batches this CPU handed to
 *                   netlink successfully, this batch included
 * @dropped:         records this CPU dropped since its previous batch, by
 *                   enum imp2_drop_cause
 * @dropped_total:   running totals of @dropped, by cause
 *
 * A recorder that last saw trailer P from a CPU and now sees trailer T from
 * it lost (T.records_total - P.records_total - T.records) records in
 * (T.seq - P.seq - 1) batches between the two.
 */
struct imp2_batch_trailer {
	__s32 status;
	__u32 cpu;
	__u64 seq;
	__u32 records;
	__u32 flags;
	__u64 records_total;
	__u64 dropped[IMP2_DROP__MAX];
	__u64 dropped_total[IMP2_DROP__MAX];
};

/* Bits of imp2_batch_trailer.flags: why the batch was sent. */
#define IMP2_TRAILER_F_FULL	(1U << 0)	/* byte or record threshold */
#define IMP2_TRAILER_F_TIMER	(1U << 1)	/* flush interval expired */
#define IMP2_TRAILER_F_FINAL	(1U << 2)	/* last batch: unregister/unload */

/*
 * ---------------------------------------------------------------------------
 * Legacy imp2 ABI, kept only for the module's compatibility mode.
 *
 * The historic imp2 example: a client sends IMP2_U_PID (payload ignored) with
 * its pid in nlmsg_pid, then receives one IMP2_K_MSG carrying a struct
 * packet_info per ICMPv4 packet seen at PRE_ROUTING, and sends IMP2_CLOSE when
 * done. Types 1 and 2 collide with NLMSG_NOOP and NLMSG_ERROR, which is why
 * the new ABI above does not use them. The module takes the sender from
 * NETLINK_CB(skb).portid, not from nlmsg_pid, and requires CAP_NET_ADMIN here
 * too.
 * ---------------------------------------------------------------------------
 */
#define NL_IMP2		IMP2_NETLINK_UNIT
#define IMP2_U_PID	0
#define IMP2_K_MSG	1
#define IMP2_CLOSE	2

/* Addresses in network byte order, as the original sent them. */
struct packet_info {
	__u32 src;
	__u32 dest;
};

#endif /* _UAPI_IMP2_H */
