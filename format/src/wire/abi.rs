//! Rust mirror of `kmod/imp2_uapi.h`: constants and struct layouts.
//!
//! Every struct is described by its size and one [`Field`] per member;
//! parsers and emitters in this crate read and write through these offsets
//! only. `format/tests/abi.rs` compiles a C program against the header and
//! checks every constant, size and offset here, so the two cannot drift.

/// Byte range of one struct member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Offset from the start of the struct, in bytes.
    pub offset: usize,
    /// Size of the member, in bytes.
    pub size: usize,
}

impl Field {
    const fn new(offset: usize, size: usize) -> Field {
        Field { offset, size }
    }

    /// Byte range of the field in a buffer holding the struct at `base`.
    pub const fn at(self, base: usize) -> std::ops::Range<usize> {
        base + self.offset..base + self.offset + self.size
    }
}

/// A C struct: its name in the header, size and members.
#[derive(Debug)]
pub struct Layout {
    /// `struct` name in `imp2_uapi.h`.
    pub c_name: &'static str,
    /// `sizeof`.
    pub size: usize,
    /// Every member, by its C name.
    pub fields: &'static [(&'static str, Field)],
}

// --- netlink basics (linux/netlink.h) -------------------------------------

/// `NLMSG_ALIGNTO`
pub const NLMSG_ALIGNTO: usize = 4;
/// `NLMSG_HDRLEN`: `sizeof(struct nlmsghdr)`, already aligned.
pub const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_NOOP`
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`
pub const NLMSG_OVERRUN: u16 = 4;
/// `NLMSG_MIN_TYPE`
pub const NLMSG_MIN_TYPE: u16 = 0x10;
/// `NLM_F_REQUEST`
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`
pub const NLM_F_ACK: u16 = 0x4;

/// `NLMSG_ALIGN(len)`
pub const fn nlmsg_align(len: usize) -> usize {
    (len + NLMSG_ALIGNTO - 1) & !(NLMSG_ALIGNTO - 1)
}

/// `struct nlmsghdr` members.
pub mod nlmsghdr {
    use super::Field;
    /// `nlmsg_len`: length of the message including this header.
    pub const LEN: Field = Field::new(0, 4);
    /// `nlmsg_type`
    pub const TYPE: Field = Field::new(4, 2);
    /// `nlmsg_flags`
    pub const FLAGS: Field = Field::new(6, 2);
    /// `nlmsg_seq`
    pub const SEQ: Field = Field::new(8, 4);
    /// `nlmsg_pid`
    pub const PID: Field = Field::new(12, 4);
}

/// `struct nlmsghdr`
pub const NLMSGHDR: Layout = Layout {
    c_name: "nlmsghdr",
    size: NLMSG_HDRLEN,
    fields: &[
        ("nlmsg_len", nlmsghdr::LEN),
        ("nlmsg_type", nlmsghdr::TYPE),
        ("nlmsg_flags", nlmsghdr::FLAGS),
        ("nlmsg_seq", nlmsghdr::SEQ),
        ("nlmsg_pid", nlmsghdr::PID),
    ],
};

// --- imp2 -----------------------------------------------------------------

/// `IMP2_NETLINK_UNIT`: default netlink unit of the module.
pub const NETLINK_UNIT: i32 = 31;
/// `IMP2_ABI_VERSION`
pub const ABI_VERSION: u32 = 1;

/// `IMP2_MSG_REGISTER`
pub const MSG_REGISTER: u16 = NLMSG_MIN_TYPE + 0x10;
/// `IMP2_MSG_UNREGISTER`
pub const MSG_UNREGISTER: u16 = MSG_REGISTER + 1;
/// `IMP2_MSG_RECORD`
pub const MSG_RECORD: u16 = MSG_REGISTER + 2;

/// `IMP2_HOOK_PRE_ROUTING`
pub const HOOK_PRE_ROUTING: u8 = 0;
/// `IMP2_HOOK_LOCAL_OUT`
pub const HOOK_LOCAL_OUT: u8 = 3;
/// `IMP2_HOOK_F_PRE_ROUTING`
pub const HOOK_F_PRE_ROUTING: u32 = 1 << HOOK_PRE_ROUTING;
/// `IMP2_HOOK_F_LOCAL_OUT`
pub const HOOK_F_LOCAL_OUT: u32 = 1 << HOOK_LOCAL_OUT;
/// `IMP2_HOOK_F_ALL`
pub const HOOK_F_ALL: u32 = HOOK_F_PRE_ROUTING | HOOK_F_LOCAL_OUT;
/// `IMP2_FAMILY_F_IPV4`
pub const FAMILY_F_IPV4: u32 = 1 << 0;
/// `IMP2_FAMILY_F_IPV6`
pub const FAMILY_F_IPV6: u32 = 1 << 1;
/// `IMP2_FAMILY_F_ALL`
pub const FAMILY_F_ALL: u32 = FAMILY_F_IPV4 | FAMILY_F_IPV6;

/// `IMP2_SNAPLEN_MAX` (bytes)
pub const SNAPLEN_MAX: u32 = 65535;
/// `IMP2_BATCH_BYTES_MIN` (bytes)
pub const BATCH_BYTES_MIN: u32 = 4096;
/// `IMP2_BATCH_BYTES_MAX` (bytes)
pub const BATCH_BYTES_MAX: u32 = 1 << 20;
/// `IMP2_BATCH_RECORDS_MAX` (records)
pub const BATCH_RECORDS_MAX: u32 = 65535;
/// `IMP2_FLUSH_INTERVAL_US_MIN` (microseconds)
pub const FLUSH_INTERVAL_US_MIN: u32 = 100;
/// `IMP2_FLUSH_INTERVAL_US_MAX` (microseconds)
pub const FLUSH_INTERVAL_US_MAX: u32 = 10_000_000;
/// `IMP2_SNAPLEN_DEFAULT` (bytes)
pub const SNAPLEN_DEFAULT: u32 = 65535;
/// `IMP2_BATCH_BYTES_DEFAULT` (bytes)
pub const BATCH_BYTES_DEFAULT: u32 = 65536;
/// `IMP2_BATCH_RECORDS_DEFAULT` (records)
pub const BATCH_RECORDS_DEFAULT: u32 = 4096;
/// `IMP2_FLUSH_INTERVAL_US_DEFAULT` (microseconds)
pub const FLUSH_INTERVAL_US_DEFAULT: u32 = 100_000;

/// `IMP2_PROTO_UNKNOWN`
pub const PROTO_UNKNOWN: u8 = crate::record::PROTO_UNKNOWN;

/// `enum imp2_drop_cause` values, in trailer array order.
pub const DROP_NOMEM: usize = 0;
/// `IMP2_DROP_RCVBUF`
pub const DROP_RCVBUF: usize = 1;
/// `IMP2_DROP_SEND`
pub const DROP_SEND: usize = 2;
/// `IMP2_DROP_OTHER`
pub const DROP_OTHER: usize = 3;
/// `IMP2_DROP__MAX`
pub const DROP_CAUSES: usize = 4;
/// Names of the drop causes, by index.
pub const DROP_CAUSE_NAMES: [&str; DROP_CAUSES] = ["nomem", "rcvbuf", "send", "other"];

/// `IMP2_TRAILER_F_FULL`
pub const TRAILER_F_FULL: u32 = 1 << 0;
/// `IMP2_TRAILER_F_TIMER`
pub const TRAILER_F_TIMER: u32 = 1 << 1;
/// `IMP2_TRAILER_F_FINAL`
pub const TRAILER_F_FINAL: u32 = 1 << 2;

/// `struct imp2_config` members.
pub mod config {
    use super::Field;
    /// `abi_version`
    pub const ABI_VERSION: Field = Field::new(0, 4);
    /// `snaplen`
    pub const SNAPLEN: Field = Field::new(4, 4);
    /// `hooks`
    pub const HOOKS: Field = Field::new(8, 4);
    /// `families`
    pub const FAMILIES: Field = Field::new(12, 4);
    /// `batch_bytes`
    pub const BATCH_BYTES: Field = Field::new(16, 4);
    /// `batch_records`
    pub const BATCH_RECORDS: Field = Field::new(20, 4);
    /// `flush_interval_us`
    pub const FLUSH_INTERVAL_US: Field = Field::new(24, 4);
    /// `flags`
    pub const FLAGS: Field = Field::new(28, 4);
    /// `protocols[32]`
    pub const PROTOCOLS: Field = Field::new(32, 32);
    /// `sizeof(struct imp2_config)`
    pub const SIZE: usize = 64;
}

/// `struct imp2_config`
pub const CONFIG: Layout = Layout {
    c_name: "imp2_config",
    size: config::SIZE,
    fields: &[
        ("abi_version", config::ABI_VERSION),
        ("snaplen", config::SNAPLEN),
        ("hooks", config::HOOKS),
        ("families", config::FAMILIES),
        ("batch_bytes", config::BATCH_BYTES),
        ("batch_records", config::BATCH_RECORDS),
        ("flush_interval_us", config::FLUSH_INTERVAL_US),
        ("flags", config::FLAGS),
        ("protocols", config::PROTOCOLS),
    ],
};

/// `IMP2_CONFIG_F_FILTER`: a [`filter`] extension follows the config.
pub const CONFIG_F_FILTER: u32 = 1 << 0;
/// `IMP2_CONFIG_F_ALL`
pub const CONFIG_F_ALL: u32 = CONFIG_F_FILTER;
/// `IMP2_FILTER_INSNS_MAX` (instructions)
pub const FILTER_INSNS_MAX: u32 = 4096;
/// `IMP2_FILTER_IFINDEX_MAX` (interfaces)
pub const FILTER_IFINDEX_MAX: u32 = 64;

/// `struct imp2_filter` members: the REGISTER extension's header, followed
/// by `insn_count` 8-byte `struct sock_filter` and `ifindex_count` `u32`.
pub mod filter {
    use super::Field;
    /// `insn_count`
    pub const INSN_COUNT: Field = Field::new(0, 4);
    /// `ifindex_count`
    pub const IFINDEX_COUNT: Field = Field::new(4, 4);
    /// `sizeof(struct imp2_filter)`
    pub const SIZE: usize = 8;
}

/// `struct imp2_filter`
pub const FILTER: Layout = Layout {
    c_name: "imp2_filter",
    size: filter::SIZE,
    fields: &[
        ("insn_count", filter::INSN_COUNT),
        ("ifindex_count", filter::IFINDEX_COUNT),
    ],
};

/// `struct imp2_record` members.
pub mod record {
    use super::Field;
    /// `tstamp_ns`
    pub const TSTAMP_NS: Field = Field::new(0, 8);
    /// `ifindex`
    pub const IFINDEX: Field = Field::new(8, 4);
    /// `orig_len`
    pub const ORIG_LEN: Field = Field::new(12, 4);
    /// `hook`
    pub const HOOK: Field = Field::new(16, 1);
    /// `family`
    pub const FAMILY: Field = Field::new(17, 1);
    /// `protocol`
    pub const PROTOCOL: Field = Field::new(18, 1);
    /// `flags`
    pub const FLAGS: Field = Field::new(19, 1);
    /// `reserved`
    pub const RESERVED: Field = Field::new(20, 4);
    /// `sizeof(struct imp2_record)`
    pub const SIZE: usize = 24;
}

/// `struct imp2_record`
pub const RECORD: Layout = Layout {
    c_name: "imp2_record",
    size: record::SIZE,
    fields: &[
        ("tstamp_ns", record::TSTAMP_NS),
        ("ifindex", record::IFINDEX),
        ("orig_len", record::ORIG_LEN),
        ("hook", record::HOOK),
        ("family", record::FAMILY),
        ("protocol", record::PROTOCOL),
        ("flags", record::FLAGS),
        ("reserved", record::RESERVED),
    ],
};

/// `struct imp2_batch_trailer` members.
pub mod trailer {
    use super::{DROP_CAUSES, Field};
    /// `status`
    pub const STATUS: Field = Field::new(0, 4);
    /// `cpu`
    pub const CPU: Field = Field::new(4, 4);
    /// `seq`
    pub const SEQ: Field = Field::new(8, 8);
    /// `records`
    pub const RECORDS: Field = Field::new(16, 4);
    /// `flags`
    pub const FLAGS: Field = Field::new(20, 4);
    /// `records_total`
    pub const RECORDS_TOTAL: Field = Field::new(24, 8);
    /// `dropped[IMP2_DROP__MAX]`
    pub const DROPPED: Field = Field::new(32, 8 * DROP_CAUSES);
    /// `dropped_total[IMP2_DROP__MAX]`
    pub const DROPPED_TOTAL: Field = Field::new(64, 8 * DROP_CAUSES);
    /// `sizeof(struct imp2_batch_trailer)`
    pub const SIZE: usize = 96;
}

/// `struct imp2_batch_trailer`
pub const TRAILER: Layout = Layout {
    c_name: "imp2_batch_trailer",
    size: trailer::SIZE,
    fields: &[
        ("status", trailer::STATUS),
        ("cpu", trailer::CPU),
        ("seq", trailer::SEQ),
        ("records", trailer::RECORDS),
        ("flags", trailer::FLAGS),
        ("records_total", trailer::RECORDS_TOTAL),
        ("dropped", trailer::DROPPED),
        ("dropped_total", trailer::DROPPED_TOTAL),
    ],
};

// --- legacy imp2 ----------------------------------------------------------

/// `NL_IMP2`: the historic unit, same as [`NETLINK_UNIT`].
pub const LEGACY_NL_IMP2: i32 = NETLINK_UNIT;
/// `IMP2_U_PID`: historic client registration.
pub const LEGACY_U_PID: u16 = 0;
/// `IMP2_K_MSG`: historic per-packet message (collides with `NLMSG_NOOP`).
pub const LEGACY_K_MSG: u16 = 1;
/// `IMP2_CLOSE`: historic close (collides with `NLMSG_ERROR`).
pub const LEGACY_CLOSE: u16 = 2;

/// `struct packet_info` members (network byte order addresses).
pub mod packet_info {
    use super::Field;
    /// `src`
    pub const SRC: Field = Field::new(0, 4);
    /// `dest`
    pub const DEST: Field = Field::new(4, 4);
    /// `sizeof(struct packet_info)`
    pub const SIZE: usize = 8;
}

/// `struct packet_info`
pub const PACKET_INFO: Layout = Layout {
    c_name: "packet_info",
    size: packet_info::SIZE,
    fields: &[("src", packet_info::SRC), ("dest", packet_info::DEST)],
};

/// Every struct of the header, for the ABI test.
pub const LAYOUTS: [&Layout; 6] = [&NLMSGHDR, &CONFIG, &FILTER, &RECORD, &TRAILER, &PACKET_INFO];

/// Every integer constant of the header, by its C name, for the ABI test.
pub const CONSTANTS: &[(&str, i64)] = &[
    ("IMP2_NETLINK_UNIT", NETLINK_UNIT as i64),
    ("IMP2_ABI_VERSION", ABI_VERSION as i64),
    ("IMP2_MSG_REGISTER", MSG_REGISTER as i64),
    ("IMP2_MSG_UNREGISTER", MSG_UNREGISTER as i64),
    ("IMP2_MSG_RECORD", MSG_RECORD as i64),
    ("IMP2_HOOK_PRE_ROUTING", HOOK_PRE_ROUTING as i64),
    ("IMP2_HOOK_LOCAL_OUT", HOOK_LOCAL_OUT as i64),
    ("IMP2_HOOK_F_PRE_ROUTING", HOOK_F_PRE_ROUTING as i64),
    ("IMP2_HOOK_F_LOCAL_OUT", HOOK_F_LOCAL_OUT as i64),
    ("IMP2_HOOK_F_ALL", HOOK_F_ALL as i64),
    ("IMP2_FAMILY_F_IPV4", FAMILY_F_IPV4 as i64),
    ("IMP2_FAMILY_F_IPV6", FAMILY_F_IPV6 as i64),
    ("IMP2_FAMILY_F_ALL", FAMILY_F_ALL as i64),
    ("IMP2_SNAPLEN_MAX", SNAPLEN_MAX as i64),
    ("IMP2_BATCH_BYTES_MIN", BATCH_BYTES_MIN as i64),
    ("IMP2_BATCH_BYTES_MAX", BATCH_BYTES_MAX as i64),
    ("IMP2_BATCH_RECORDS_MAX", BATCH_RECORDS_MAX as i64),
    ("IMP2_FLUSH_INTERVAL_US_MIN", FLUSH_INTERVAL_US_MIN as i64),
    ("IMP2_FLUSH_INTERVAL_US_MAX", FLUSH_INTERVAL_US_MAX as i64),
    ("IMP2_SNAPLEN_DEFAULT", SNAPLEN_DEFAULT as i64),
    ("IMP2_BATCH_BYTES_DEFAULT", BATCH_BYTES_DEFAULT as i64),
    ("IMP2_BATCH_RECORDS_DEFAULT", BATCH_RECORDS_DEFAULT as i64),
    (
        "IMP2_FLUSH_INTERVAL_US_DEFAULT",
        FLUSH_INTERVAL_US_DEFAULT as i64,
    ),
    ("IMP2_PROTO_UNKNOWN", PROTO_UNKNOWN as i64),
    ("IMP2_CONFIG_F_FILTER", CONFIG_F_FILTER as i64),
    ("IMP2_CONFIG_F_ALL", CONFIG_F_ALL as i64),
    ("IMP2_FILTER_INSNS_MAX", FILTER_INSNS_MAX as i64),
    ("IMP2_FILTER_IFINDEX_MAX", FILTER_IFINDEX_MAX as i64),
    // The instructions that follow struct imp2_filter (linux/filter.h).
    (
        "sizeof(struct sock_filter)",
        crate::filter::bpf::INSN_LEN as i64,
    ),
    ("IMP2_DROP_NOMEM", DROP_NOMEM as i64),
    ("IMP2_DROP_RCVBUF", DROP_RCVBUF as i64),
    ("IMP2_DROP_SEND", DROP_SEND as i64),
    ("IMP2_DROP_OTHER", DROP_OTHER as i64),
    ("IMP2_DROP__MAX", DROP_CAUSES as i64),
    ("IMP2_TRAILER_F_FULL", TRAILER_F_FULL as i64),
    ("IMP2_TRAILER_F_TIMER", TRAILER_F_TIMER as i64),
    ("IMP2_TRAILER_F_FINAL", TRAILER_F_FINAL as i64),
    ("NL_IMP2", LEGACY_NL_IMP2 as i64),
    ("IMP2_U_PID", LEGACY_U_PID as i64),
    ("IMP2_K_MSG", LEGACY_K_MSG as i64),
    ("IMP2_CLOSE", LEGACY_CLOSE as i64),
    ("NLMSG_HDRLEN", NLMSG_HDRLEN as i64),
    ("NLMSG_ALIGNTO", NLMSG_ALIGNTO as i64),
    ("NLMSG_MIN_TYPE", NLMSG_MIN_TYPE as i64),
    ("NLMSG_DONE", NLMSG_DONE as i64),
    ("NLMSG_ERROR", NLMSG_ERROR as i64),
    ("NLMSG_NOOP", NLMSG_NOOP as i64),
    ("NLMSG_OVERRUN", NLMSG_OVERRUN as i64),
    ("NLM_F_REQUEST", NLM_F_REQUEST as i64),
    ("NLM_F_MULTI", NLM_F_MULTI as i64),
    ("NLM_F_ACK", NLM_F_ACK as i64),
];
