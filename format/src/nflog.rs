//! nfnetlink_log (NFLOG) wire format: parsing the kernel's packet messages
//! and building its configuration requests.
//!
//! NFLOG is the kernel's own batching netlink producer
//! (`net/netfilter/nfnetlink_log.c`): a rule such as
//! `nft add rule inet filter input log group N` hands packets to the
//! instance bound to group `N`, which packs one `NFULNL_MSG_PACKET` message
//! per packet into a socket buffer of up to 128 KiB and sends it when the
//! queue threshold, the buffer size or the flush timeout is reached (a buffer
//! holding more than one message ends with `NLMSG_DONE`).
//!
//! Layout, as `__build_packet_message` writes it:
//!
//! ```text
//! nlmsghdr   (host order)  type (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET
//! nfgenmsg   family (AF_INET/AF_INET6/...), version 0, res_id = group (big endian)
//! attributes (nlattr: u16 len, u16 type, host order; values big endian; 4-aligned)
//!   PACKET_HDR {be16 hw_protocol; u8 hook; u8 pad}   always
//!   PREFIX     string with its NUL                   if the rule has one ("" counts)
//!   IFINDEX_INDEV / IFINDEX_OUTDEV (be32)            when the device is known
//!   MARK (be32)                                      if skb->mark != 0
//!   HWADDR, HWTYPE, HWLEN, HWHEADER                  on input, with a MAC header
//!   TIMESTAMP {be64 sec; be64 usec}                  hooks <= FORWARD only
//!   UID, GID (be32)                                  for packets of a local socket
//!   SEQ, SEQ_GLOBAL (be32)                           when asked for with CFG_FLAGS
//!   CT, CT_INFO, VLAN, L2HDR                         (ignored here)
//!   PAYLOAD    the packet from the network header on, cut to the copy range
//! ```
//!
//! Everything here works on untrusted `&[u8]`: lengths are validated once,
//! nothing panics or reads out of bounds, and every error names the byte
//! offset of the structure that is wrong. Nothing does I/O.

use std::fmt;

use crate::record::{Family, Hook, PROTO_UNKNOWN, PacketRecord};
use crate::wire::abi::{
    NLM_F_ACK, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN,
    nlmsg_align,
};
use crate::wire::{FramingError, NlHeader};

/// Constants of `linux/netfilter/nfnetlink.h` and `nfnetlink_log.h`.
pub mod consts {
    /// `NETLINK_NETFILTER`: the netlink protocol of nfnetlink.
    pub const NETLINK_NETFILTER: i32 = 12;
    /// `NFNL_SUBSYS_ULOG`: the nfnetlink subsystem of NFLOG.
    pub const NFNL_SUBSYS_ULOG: u16 = 4;
    /// `NFULNL_MSG_PACKET`, as a full `nlmsg_type`.
    pub const MSG_PACKET: u16 = NFNL_SUBSYS_ULOG << 8;
    /// `NFULNL_MSG_CONFIG`, as a full `nlmsg_type`.
    pub const MSG_CONFIG: u16 = NFNL_SUBSYS_ULOG << 8 | 1;
    /// `NFNETLINK_V0`: the only `nfgenmsg.version`.
    pub const NFNETLINK_V0: u8 = 0;
    /// `sizeof(struct nfgenmsg)`.
    pub const NFGENMSG_LEN: usize = 4;

    /// `NLA_HDRLEN`
    pub const NLA_HDRLEN: usize = 4;
    /// `NLA_F_NESTED`
    pub const NLA_F_NESTED: u16 = 1 << 15;
    /// `NLA_F_NET_BYTEORDER`
    pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
    /// `NLA_TYPE_MASK`: the attribute type without its flag bits.
    pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

    /// `NFULA_PACKET_HDR`: `struct nfulnl_msg_packet_hdr`.
    pub const NFULA_PACKET_HDR: u16 = 1;
    /// `NFULA_MARK`: be32 `skb->mark`.
    pub const NFULA_MARK: u16 = 2;
    /// `NFULA_TIMESTAMP`: `struct nfulnl_msg_packet_timestamp`.
    pub const NFULA_TIMESTAMP: u16 = 3;
    /// `NFULA_IFINDEX_INDEV`: be32.
    pub const NFULA_IFINDEX_INDEV: u16 = 4;
    /// `NFULA_IFINDEX_OUTDEV`: be32.
    pub const NFULA_IFINDEX_OUTDEV: u16 = 5;
    /// `NFULA_IFINDEX_PHYSINDEV`: be32 (bridges).
    pub const NFULA_IFINDEX_PHYSINDEV: u16 = 6;
    /// `NFULA_IFINDEX_PHYSOUTDEV`: be32 (bridges).
    pub const NFULA_IFINDEX_PHYSOUTDEV: u16 = 7;
    /// `NFULA_HWADDR`: `struct nfulnl_msg_packet_hw`.
    pub const NFULA_HWADDR: u16 = 8;
    /// `NFULA_PAYLOAD`: the packet from the network header on.
    pub const NFULA_PAYLOAD: u16 = 9;
    /// `NFULA_PREFIX`: the rule's prefix, NUL-terminated.
    pub const NFULA_PREFIX: u16 = 10;
    /// `NFULA_UID`: be32.
    pub const NFULA_UID: u16 = 11;
    /// `NFULA_SEQ`: be32, per-instance sequence number.
    pub const NFULA_SEQ: u16 = 12;
    /// `NFULA_SEQ_GLOBAL`: be32, per-namespace sequence number.
    pub const NFULA_SEQ_GLOBAL: u16 = 13;
    /// `NFULA_GID`: be32.
    pub const NFULA_GID: u16 = 14;
    /// `NFULA_HWTYPE`: be16 `dev->type`.
    pub const NFULA_HWTYPE: u16 = 15;
    /// `NFULA_HWHEADER`: the MAC header.
    pub const NFULA_HWHEADER: u16 = 16;
    /// `NFULA_HWLEN`: be16 `dev->hard_header_len`.
    pub const NFULA_HWLEN: u16 = 17;

    /// `NFULA_CFG_CMD`: `struct nfulnl_msg_config_cmd`.
    pub const NFULA_CFG_CMD: u16 = 1;
    /// `NFULA_CFG_MODE`: `struct nfulnl_msg_config_mode`.
    pub const NFULA_CFG_MODE: u16 = 2;
    /// `NFULA_CFG_NLBUFSIZ`: be32 bytes.
    pub const NFULA_CFG_NLBUFSIZ: u16 = 3;
    /// `NFULA_CFG_TIMEOUT`: be32, 1/100 s.
    pub const NFULA_CFG_TIMEOUT: u16 = 4;
    /// `NFULA_CFG_QTHRESH`: be32 messages.
    pub const NFULA_CFG_QTHRESH: u16 = 5;
    /// `NFULA_CFG_FLAGS`: be16 `NFULNL_CFG_F_*`.
    pub const NFULA_CFG_FLAGS: u16 = 6;

    /// `NFULNL_CFG_CMD_BIND`: create the instance of a group.
    pub const CMD_BIND: u8 = 1;
    /// `NFULNL_CFG_CMD_UNBIND`: flush and destroy it.
    pub const CMD_UNBIND: u8 = 2;
    /// `NFULNL_CFG_CMD_PF_BIND`: make NFLOG a family's default logger.
    pub const CMD_PF_BIND: u8 = 3;
    /// `NFULNL_CFG_CMD_PF_UNBIND`
    pub const CMD_PF_UNBIND: u8 = 4;

    /// `NFULNL_COPY_NONE`
    pub const COPY_NONE: u8 = 0;
    /// `NFULNL_COPY_META`: metadata only, no payload.
    pub const COPY_META: u8 = 1;
    /// `NFULNL_COPY_PACKET`: metadata and up to `copy_range` payload bytes.
    pub const COPY_PACKET: u8 = 2;
    /// `NFULNL_COPY_RANGE_MAX`: `0xFFFF - NLA_HDRLEN`.
    pub const COPY_RANGE_MAX: u32 = 0xFFFF - NLA_HDRLEN as u32;

    /// `NFULNL_CFG_F_SEQ`: per-instance sequence numbers.
    pub const CFG_F_SEQ: u16 = 1;
    /// `NFULNL_CFG_F_SEQ_GLOBAL`: per-namespace sequence numbers.
    pub const CFG_F_SEQ_GLOBAL: u16 = 2;
    /// `NFULNL_CFG_F_CONNTRACK`: conntrack attributes.
    pub const CFG_F_CONNTRACK: u16 = 4;

    /// Largest buffer (`NFULA_CFG_NLBUFSIZ`) the kernel accepts.
    pub const NLBUFSIZ_MAX: u32 = 131_072;
    /// Smallest buffer the kernel accepts with 4 KiB pages
    /// (`NLMSG_GOODSIZE`); it silently ignores smaller values.
    pub const NLBUFSIZ_MIN: u32 = 4096;

    /// `AF_UNSPEC`
    pub const AF_UNSPEC: u8 = 0;
    /// `AF_INET`
    pub const AF_INET: u8 = 2;
    /// `AF_INET6`
    pub const AF_INET6: u8 = 10;

    /// `NF_INET_PRE_ROUTING`
    pub const NF_INET_PRE_ROUTING: u8 = 0;
    /// `NF_INET_LOCAL_IN`
    pub const NF_INET_LOCAL_IN: u8 = 1;
    /// `NF_INET_FORWARD`
    pub const NF_INET_FORWARD: u8 = 2;
    /// `NF_INET_LOCAL_OUT`
    pub const NF_INET_LOCAL_OUT: u8 = 3;
    /// `NF_INET_POST_ROUTING`
    pub const NF_INET_POST_ROUTING: u8 = 4;
}

use consts::*;

/// `NLA_ALIGN(len)`
const fn nla_align(len: usize) -> usize {
    (len + 3) & !3
}

// --- errors --------------------------------------------------------------------

/// What is wrong with a message or one of its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The message cannot be framed (the walk ends).
    Framing(FramingError),
    /// The payload is shorter than `struct nfgenmsg`.
    ShortNfgenmsg {
        /// Payload length.
        payload: usize,
    },
    /// 1-3 bytes after the last attribute, less than an attribute header.
    AttrTrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// `nla_len` smaller than the attribute header.
    AttrLengthBelowHeader {
        /// The claimed `nla_len`.
        len: u16,
    },
    /// `nla_len` runs past the end of the message.
    AttrLengthPastEnd {
        /// Attribute type (flag bits masked).
        kind: u16,
        /// The claimed `nla_len`.
        len: u16,
        /// Bytes available from the attribute start.
        available: usize,
    },
    /// A fixed-size attribute shorter than its type requires.
    AttrTooShort {
        /// Attribute type (flag bits masked).
        kind: u16,
        /// Value bytes present.
        len: usize,
        /// Value bytes required.
        need: usize,
    },
    /// A packet message without `NFULA_PACKET_HDR`.
    MissingPacketHeader,
    /// An `NLMSG_ERROR` payload shorter than its errno.
    ShortError {
        /// Payload length.
        payload: usize,
    },
}

impl Reason {
    /// Whether a walk can go on after this (only the content of a well
    /// framed message was bad).
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, Reason::Framing(_))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reason::Framing(e) => e.fmt(f),
            Reason::ShortNfgenmsg { payload } => {
                write!(
                    f,
                    "payload of {payload} bytes is shorter than struct nfgenmsg"
                )
            }
            Reason::AttrTrailingBytes { remaining } => {
                write!(
                    f,
                    "{remaining} bytes after the last attribute, less than its header"
                )
            }
            Reason::AttrLengthBelowHeader { len } => {
                write!(f, "nla_len {len} is below the attribute header size")
            }
            Reason::AttrLengthPastEnd {
                kind,
                len,
                available,
            } => write!(
                f,
                "attribute {kind}: nla_len {len} runs past the end of the message \
                 ({available} bytes left)"
            ),
            Reason::AttrTooShort { kind, len, need } => {
                write!(f, "attribute {kind}: {len} value bytes, needs {need}")
            }
            Reason::MissingPacketHeader => f.write_str("packet message without NFULA_PACKET_HDR"),
            Reason::ShortError { payload } => {
                write!(
                    f,
                    "NLMSG_ERROR payload of {payload} bytes is shorter than an errno"
                )
            }
        }
    }
}

/// A malformed message or attribute and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Byte offset of the broken structure (message or attribute header)
    /// in the parsed buffer.
    pub offset: usize,
    /// What is wrong.
    pub reason: Reason,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed NFLOG message at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for Malformed {}

// --- nfgenmsg and attributes ------------------------------------------------------

/// `struct nfgenmsg`, the first 4 bytes of every nfnetlink payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NfGenMsg {
    /// `nfgen_family`: `AF_INET`, `AF_INET6`, ... (`AF_UNSPEC` in DONE).
    pub family: u8,
    /// `version`: `NFNETLINK_V0`.
    pub version: u8,
    /// `res_id` (big endian on the wire): the NFLOG group.
    pub group: u16,
}

impl NfGenMsg {
    /// Parses the first 4 bytes of `payload`.
    pub fn parse(payload: &[u8]) -> Option<NfGenMsg> {
        match *payload {
            [family, version, g0, g1, ..] => Some(NfGenMsg {
                family,
                version,
                group: u16::from_be_bytes([g0, g1]),
            }),
            _ => None,
        }
    }

    /// Encodes as 4 bytes.
    pub fn to_bytes(self) -> [u8; NFGENMSG_LEN] {
        let g = self.group.to_be_bytes();
        [self.family, self.version, g[0], g[1]]
    }
}

/// One attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Byte offset of the attribute header in the parsed buffer.
    pub offset: usize,
    /// Type with `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` masked off.
    pub kind: u16,
    /// Value bytes (without padding).
    pub value: &'a [u8],
}

impl Attr<'_> {
    fn fixed<const N: usize>(&self) -> Result<[u8; N], Malformed> {
        match self.value.first_chunk::<N>() {
            Some(v) => Ok(*v),
            None => Err(Malformed {
                offset: self.offset,
                reason: Reason::AttrTooShort {
                    kind: self.kind,
                    len: self.value.len(),
                    need: N,
                },
            }),
        }
    }

    fn be16(&self) -> Result<u16, Malformed> {
        self.fixed::<2>().map(u16::from_be_bytes)
    }

    fn be32(&self) -> Result<u32, Malformed> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }
}

/// Iterator over the attributes of one message (`nla_for_each_attr` with
/// every length checked). After an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    /// Iterates the attributes in `buf`, which starts at byte `base` of the
    /// buffer being parsed (for error offsets).
    pub fn new(buf: &'a [u8], base: usize) -> Attrs<'a> {
        Attrs { buf, pos: 0, base }
    }

    fn fail(&mut self, at: usize, reason: Reason) -> Option<Result<Attr<'a>, Malformed>> {
        self.pos = self.buf.len();
        Some(Err(Malformed {
            offset: self.base + at,
            reason,
        }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, Malformed>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        let rest = self.buf.get(at..)?;
        let [l0, l1, t0, t1, ..] = *rest else {
            if rest.is_empty() {
                return None;
            }
            return self.fail(
                at,
                Reason::AttrTrailingBytes {
                    remaining: rest.len(),
                },
            );
        };
        let len = u16::from_ne_bytes([l0, l1]);
        let kind = u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK;
        let ulen = usize::from(len);
        if ulen < NLA_HDRLEN {
            return self.fail(at, Reason::AttrLengthBelowHeader { len });
        }
        if ulen > rest.len() {
            return self.fail(
                at,
                Reason::AttrLengthPastEnd {
                    kind,
                    len,
                    available: rest.len(),
                },
            );
        }
        // The last attribute's padding may be missing: the walk just ends.
        self.pos = (at + nla_align(ulen)).min(self.buf.len());
        Some(Ok(Attr {
            offset: self.base + at,
            kind,
            value: &rest[NLA_HDRLEN..ulen],
        }))
    }
}

impl std::iter::FusedIterator for Attrs<'_> {}

// --- packet messages -----------------------------------------------------------------

/// `struct nfulnl_msg_packet_timestamp`: the packet's `skb->tstamp`, or the
/// time it was logged, in microseconds (`CLOCK_REALTIME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub sec: u64,
    /// Microseconds within the second.
    pub usec: u64,
}

impl Timestamp {
    /// Nanoseconds since the Unix epoch (saturating on absurd values).
    pub fn as_ns(self) -> u64 {
        self.sec
            .saturating_mul(1_000_000_000)
            .saturating_add(self.usec.saturating_mul(1000))
    }
}

/// A typed view of one `NFULNL_MSG_PACKET` message: every attribute imp2
/// knows, `None` when absent. Unknown attributes (conntrack, VLAN, L2
/// header, future ones) are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketMessage<'a> {
    /// `nfgenmsg.nfgen_family`: the protocol family the rule ran in.
    pub family: u8,
    /// `nfgenmsg.res_id`: the NFLOG group.
    pub group: u16,
    /// `NFULA_PACKET_HDR.hw_protocol`: the ethertype (`skb->protocol`).
    pub hw_protocol: u16,
    /// `NFULA_PACKET_HDR.hook`: the `NF_INET_*` hook.
    pub hook: u8,
    /// `NFULA_PREFIX`: the rule's prefix with its NUL.
    pub prefix: Option<&'a [u8]>,
    /// `NFULA_IFINDEX_INDEV`
    pub indev: Option<u32>,
    /// `NFULA_IFINDEX_OUTDEV`
    pub outdev: Option<u32>,
    /// `NFULA_IFINDEX_PHYSINDEV`
    pub physindev: Option<u32>,
    /// `NFULA_IFINDEX_PHYSOUTDEV`
    pub physoutdev: Option<u32>,
    /// `NFULA_MARK`
    pub mark: Option<u32>,
    /// `NFULA_HWADDR`: `struct nfulnl_msg_packet_hw`, raw (12 bytes).
    pub hwaddr: Option<&'a [u8]>,
    /// `NFULA_HWTYPE`: `dev->type` (`ARPHRD_*`).
    pub hwtype: Option<u16>,
    /// `NFULA_HWLEN`: `dev->hard_header_len`.
    pub hwlen: Option<u16>,
    /// `NFULA_HWHEADER`: the MAC header.
    pub hwheader: Option<&'a [u8]>,
    /// `NFULA_TIMESTAMP`
    pub timestamp: Option<Timestamp>,
    /// `NFULA_UID`
    pub uid: Option<u32>,
    /// `NFULA_GID`
    pub gid: Option<u32>,
    /// `NFULA_SEQ`: per-instance sequence number, from 0 at BIND.
    pub seq: Option<u32>,
    /// `NFULA_SEQ_GLOBAL`: per-namespace sequence number.
    pub seq_global: Option<u32>,
    /// `NFULA_PAYLOAD`: the packet from the network header on, cut to the
    /// copy range (absent in `COPY_META` mode).
    pub payload: Option<&'a [u8]>,
}

/// What a recorder keeps of one packet message: what loss accounting
/// needs (group, sequence number) and the log record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedPacket<'a> {
    /// `nfgenmsg.res_id`: the NFLOG group.
    pub group: u16,
    /// `NFULA_SEQ`: per-instance sequence number.
    pub seq: Option<u32>,
    /// Whether the kernel stamped the packet (`NFULA_TIMESTAMP`). When it
    /// did not (send hooks), `record.tstamp_ns` is 0: the receiver supplies
    /// the time.
    pub has_timestamp: bool,
    /// The record, or the family when it is not IPv4/IPv6.
    pub record: Result<PacketRecord<'a>, NotIp>,
}

/// A packet of a family other than IPv4/IPv6 (ARP, bridge, netdev rules):
/// not something the log can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotIp {
    /// `nfgen_family` of the message.
    pub family: u8,
}

impl<'a> PacketMessage<'a> {
    /// Parses the payload of a packet message (the bytes after its netlink
    /// header), which starts at byte `base` of the buffer being parsed.
    #[inline(always)]
    pub fn parse(payload: &'a [u8], base: usize) -> Result<PacketMessage<'a>, Malformed> {
        let Some(nfgen) = NfGenMsg::parse(payload) else {
            return Err(Malformed {
                offset: base,
                reason: Reason::ShortNfgenmsg {
                    payload: payload.len(),
                },
            });
        };
        let mut m = PacketMessage {
            family: nfgen.family,
            group: nfgen.group,
            ..Default::default()
        };
        let mut has_header = false;
        for attr in Attrs::new(&payload[NFGENMSG_LEN..], base + NFGENMSG_LEN) {
            let attr = attr?;
            match attr.kind {
                NFULA_PACKET_HDR => {
                    let [p0, p1, hook, _pad] = attr.fixed::<4>()?;
                    m.hw_protocol = u16::from_be_bytes([p0, p1]);
                    m.hook = hook;
                    has_header = true;
                }
                NFULA_PAYLOAD => m.payload = Some(attr.value),
                NFULA_TIMESTAMP => {
                    let t = attr.fixed::<16>()?;
                    let (sec, usec) = t.split_at(8);
                    m.timestamp = Some(Timestamp {
                        sec: u64::from_be_bytes(sec.try_into().unwrap_or_default()),
                        usec: u64::from_be_bytes(usec.try_into().unwrap_or_default()),
                    });
                }
                NFULA_IFINDEX_INDEV => m.indev = Some(attr.be32()?),
                NFULA_IFINDEX_OUTDEV => m.outdev = Some(attr.be32()?),
                NFULA_SEQ => m.seq = Some(attr.be32()?),
                NFULA_SEQ_GLOBAL => m.seq_global = Some(attr.be32()?),
                NFULA_PREFIX => m.prefix = Some(attr.value),
                NFULA_UID => m.uid = Some(attr.be32()?),
                NFULA_GID => m.gid = Some(attr.be32()?),
                NFULA_MARK => m.mark = Some(attr.be32()?),
                NFULA_IFINDEX_PHYSINDEV => m.physindev = Some(attr.be32()?),
                NFULA_IFINDEX_PHYSOUTDEV => m.physoutdev = Some(attr.be32()?),
                NFULA_HWADDR => {
                    attr.fixed::<12>()?;
                    m.hwaddr = Some(attr.value);
                }
                NFULA_HWTYPE => m.hwtype = Some(attr.be16()?),
                NFULA_HWLEN => m.hwlen = Some(attr.be16()?),
                NFULA_HWHEADER => m.hwheader = Some(attr.value),
                _ => {}
            }
        }
        if !has_header {
            return Err(Malformed {
                offset: base,
                reason: Reason::MissingPacketHeader,
            });
        }
        Ok(m)
    }

    /// The interface the packet was seen on: the input device on the
    /// receive hooks (pre-routing, local-in, forward), the output device on
    /// the send hooks; the other one if that is missing, else 0.
    pub fn ifindex(&self) -> u32 {
        let (first, second) = if self.hook <= NF_INET_FORWARD {
            (self.indev, self.outdev)
        } else {
            (self.outdev, self.indev)
        };
        first.or(second).unwrap_or(0)
    }

    /// The log record for this packet. `receive_ns` is used as the capture
    /// time when the kernel sent no timestamp (send hooks; `CLOCK_REALTIME`
    /// ns when the datagram was received). Packets of families other than
    /// IPv4 and IPv6 are refused.
    #[inline(always)]
    pub fn to_record(&self, receive_ns: u64) -> Result<PacketRecord<'a>, NotIp> {
        let family = match self.family {
            AF_INET => Family::IPV4,
            AF_INET6 => Family::IPV6,
            family => return Err(NotIp { family }),
        };
        let data = self.payload.unwrap_or(&[]);
        Ok(PacketRecord {
            tstamp_ns: self.timestamp.map_or(receive_ns, Timestamp::as_ns),
            ifindex: self.ifindex(),
            orig_len: ip_orig_len(family, data),
            hook: Hook(self.hook),
            family,
            protocol: ip_protocol(family, data),
            data,
        })
    }

    /// What a recorder keeps of this message: group, sequence number and
    /// log record ([`PacketMessage::to_record`] with a receive time of 0).
    #[inline(always)]
    pub fn logged(&self) -> LoggedPacket<'a> {
        LoggedPacket {
            group: self.group,
            seq: self.seq,
            has_timestamp: self.timestamp.is_some(),
            record: self.to_record(0),
        }
    }

    /// Appends this message as the kernel's `__build_packet_message` builds
    /// it (same attribute order, zeroed padding, `nlmsg_len` including the
    /// last attribute's padding), with `pid` 0 and no flags.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + NLMSG_HDRLEN, 0);
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            group: self.group,
        };
        out.extend_from_slice(&nfgen.to_bytes());
        let p = self.hw_protocol.to_be_bytes();
        put_attr(out, NFULA_PACKET_HDR, &[p[0], p[1], self.hook, 0]);
        let be32 = |out: &mut Vec<u8>, kind, v: Option<u32>| {
            if let Some(v) = v {
                put_attr(out, kind, &v.to_be_bytes());
            }
        };
        let raw = |out: &mut Vec<u8>, kind, v: Option<&[u8]>| {
            if let Some(v) = v {
                put_attr(out, kind, v);
            }
        };
        raw(out, NFULA_PREFIX, self.prefix);
        be32(out, NFULA_IFINDEX_INDEV, self.indev);
        be32(out, NFULA_IFINDEX_PHYSINDEV, self.physindev);
        be32(out, NFULA_IFINDEX_OUTDEV, self.outdev);
        be32(out, NFULA_IFINDEX_PHYSOUTDEV, self.physoutdev);
        be32(out, NFULA_MARK, self.mark);
        raw(out, NFULA_HWADDR, self.hwaddr);
        if let Some(t) = self.hwtype {
            put_attr(out, NFULA_HWTYPE, &t.to_be_bytes());
        }
        if let Some(l) = self.hwlen {
            put_attr(out, NFULA_HWLEN, &l.to_be_bytes());
        }
        raw(out, NFULA_HWHEADER, self.hwheader);
        if let Some(t) = self.timestamp {
            let mut ts = [0u8; 16];
            ts[..8].copy_from_slice(&t.sec.to_be_bytes());
            ts[8..].copy_from_slice(&t.usec.to_be_bytes());
            put_attr(out, NFULA_TIMESTAMP, &ts);
        }
        be32(out, NFULA_UID, self.uid);
        be32(out, NFULA_GID, self.gid);
        be32(out, NFULA_SEQ, self.seq);
        be32(out, NFULA_SEQ_GLOBAL, self.seq_global);
        raw(out, NFULA_PAYLOAD, self.payload);
        let len = out.len() - start;
        NlHeader {
            len: len as u32,
            msg_type: MSG_PACKET,
            flags: 0,
            seq: 0,
            pid: 0,
        }
        .write(&mut out[start..]);
    }
}

/// Appends one attribute with zeroed padding. `nla_len` is 16 bits: a
/// longer value is cut to the longest that fits (the kernel's copy range is
/// below that limit for the same reason).
fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX) - NLA_HDRLEN)];
    let len = NLA_HDRLEN + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + nla_align(len) - len, 0);
}

/// Appends the `NLMSG_DONE` that ends a buffer of more than one message, as
/// `__nfulnl_send` builds it (family `AF_UNSPEC`, the group as `res_id`).
pub fn emit_done(group: u16, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + NLMSG_HDRLEN, 0);
    let nfgen = NfGenMsg {
        family: AF_UNSPEC,
        version: NFNETLINK_V0,
        group,
    };
    out.extend_from_slice(&nfgen.to_bytes());
    let len = NLMSG_HDRLEN + NFGENMSG_LEN;
    NlHeader {
        len: len as u32,
        msg_type: NLMSG_DONE,
        flags: 0,
        seq: 0,
        pid: 0,
    }
    .write(&mut out[start..]);
}

// --- IP header facts -------------------------------------------------------------------

/// Original length of an IP packet from its header (IPv4 total length;
/// IPv6 payload length + 40), never less than the captured bytes; the
/// captured length when the header is cut or says 0 (jumbograms, GSO).
#[inline]
pub fn ip_orig_len(family: Family, data: &[u8]) -> u32 {
    let captured = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let claimed = match (family, data) {
        (Family::IPV4, [_, _, l0, l1, ..]) => u32::from(u16::from_be_bytes([*l0, *l1])),
        (Family::IPV6, [_, _, _, _, l0, l1, ..]) => match u16::from_be_bytes([*l0, *l1]) {
            0 => 0,
            n => u32::from(n) + 40,
        },
        _ => 0,
    };
    claimed.max(captured)
}

/// Transport protocol of an IP packet: the IPv4 protocol field; for IPv6
/// the next header after the extension headers, as the kernel's
/// `ipv6_skip_exthdr` walks them (the module's `imp2_protocol` does the
/// same). A later fragment has no transport header: it gets its fragment
/// header's next header, the protocol of the datagram it belongs to, as an
/// IPv4 fragment carries it in its protocol field, so that every fragment
/// of a UDP datagram counts as UDP in both families (44, the fragment
/// header itself, named no protocol a user asked about). [`PROTO_UNKNOWN`]
/// when the captured bytes end first or there is no next header. A chain cut by the snaplen gives unknown, not the
/// last next header reached: that would name an extension header as the
/// protocol, and 44 would read as a later fragment. The one function every
/// protocol taken from packet bytes comes from (the NFLOG source's
/// records); `&[u8]` of any length, never panics.
#[inline]
pub fn ip_protocol(family: Family, data: &[u8]) -> u8 {
    match family {
        Family::IPV4 => data.get(9).copied().unwrap_or(PROTO_UNKNOWN),
        Family::IPV6 => ipv6_protocol(data),
        _ => PROTO_UNKNOWN,
    }
}

fn ipv6_protocol(data: &[u8]) -> u8 {
    const HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const NONE: u8 = 59;
    const DEST: u8 = 60;
    if data.len() < 40 {
        return PROTO_UNKNOWN;
    }
    let mut next = data[6];
    let mut start = 40usize;
    // Each extension header is at least 8 bytes: the loop ends within
    // data.len() / 8 rounds.
    while matches!(next, HOP | ROUTING | FRAGMENT | AUTH | NONE | DEST) {
        if next == NONE {
            return PROTO_UNKNOWN;
        }
        let Some(&[nh, hlen, f0, f1]) = data.get(start..start + 4) else {
            return PROTO_UNKNOWN;
        };
        let len = match next {
            FRAGMENT => {
                if u16::from_be_bytes([f0, f1]) & !7 != 0 {
                    // A later fragment: its data is not a header.
                    return nh;
                }
                8
            }
            AUTH => (usize::from(hlen) + 2) * 4,
            _ => (usize::from(hlen) + 1) * 8,
        };
        next = nh;
        start += len;
    }
    next
}

// --- parsing a stream of packet messages fast ----------------------------------------

/// Bytes at the start of a message payload that a [`Layout`] compares: the
/// attribute headers before the payload attribute must lie within them
/// (with prefix, marks, hardware header, timestamp, uid/gid and sequence
/// numbers the kernel's messages use about 140).
const LAYOUT_SPAN: usize = 256;
/// `LAYOUT_SPAN` in the 8-byte words the comparison works in.
const LAYOUT_WORDS: usize = LAYOUT_SPAN / 8;
/// Attribute types a [`Layout`] knows the place of (`NFULA_*` up to
/// `NFULA_HWLEN`).
const LAYOUT_KINDS: usize = NFULA_HWLEN as usize + 1;

/// Where every attribute of one packet message is, as long as the
/// messages of a stream keep the same shape (they do: the kernel builds
/// every message of a rule and device alike, only the payload length
/// varies).
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// The attribute headers before the payload attribute, in place: the
    /// payload's first `8 * words` bytes, read as native-endian `u64`s
    /// and masked with `mask`, equal these (the values between the
    /// headers vary from message to message and are masked out).
    heads: [u64; LAYOUT_WORDS],
    /// All-ones over the header bytes, zero elsewhere.
    mask: [u64; LAYOUT_WORDS],
    /// How many words of `heads`/`mask` are used.
    words: usize,
    /// Offset of the payload attribute's header (0: an empty layout).
    payload_at: usize,
    /// Value offset and length by attribute type (offset 0: absent; the
    /// last attribute of a type, as in a full parse).
    values: [(u16, u16); LAYOUT_KINDS],
}

impl Layout {
    const EMPTY: Layout = Layout {
        heads: [0; LAYOUT_WORDS],
        mask: [0; LAYOUT_WORDS],
        words: 0,
        payload_at: 0,
        values: [(0, 0); LAYOUT_KINDS],
    };

    /// The layout of `payload`, a message that parsed as valid, if it is
    /// one a layout can describe (payload attribute last, its header
    /// within `LAYOUT_SPAN`).
    fn learn(payload: &[u8]) -> Option<Layout> {
        let mut layout = Layout::EMPTY;
        let mut heads = [0u8; LAYOUT_SPAN];
        let mut mask = [0u8; LAYOUT_SPAN];
        for attr in Attrs::new(payload.get(NFGENMSG_LEN..)?, NFGENMSG_LEN) {
            let attr = attr.ok()?;
            if attr.offset + NLA_HDRLEN > LAYOUT_SPAN {
                return None;
            }
            if attr.kind == NFULA_PAYLOAD {
                let end = attr.offset + NLA_HDRLEN + attr.value.len();
                // Only a payload attribute that ends the message.
                if nla_align(end) < payload.len() {
                    return None;
                }
                layout.payload_at = attr.offset;
                layout.words = attr.offset.div_ceil(8);
                for (i, (h, m)) in heads.chunks_exact(8).zip(mask.chunks_exact(8)).enumerate() {
                    layout.heads[i] = u64::from_ne_bytes(h.try_into().ok()?);
                    layout.mask[i] = u64::from_ne_bytes(m.try_into().ok()?);
                }
                return Some(layout);
            }
            let at = attr.offset;
            heads[at..at + NLA_HDRLEN].copy_from_slice(payload.get(at..at + NLA_HDRLEN)?);
            mask[at..at + NLA_HDRLEN].fill(0xff);
            if let Some(v) = layout.values.get_mut(usize::from(attr.kind)) {
                let value_at = u16::try_from(at + NLA_HDRLEN).ok()?;
                let len = u16::try_from(attr.value.len()).ok()?;
                *v = (value_at, len);
            }
        }
        None
    }

    /// Whether `payload` has exactly this layout: the same attribute
    /// headers at the same offsets, then a payload attribute that ends the
    /// message. The comparison is a few independent masked word compares
    /// (no walk along the attribute chain, no per-attribute branch).
    #[inline(always)]
    fn fits(&self, payload: &[u8]) -> bool {
        if self.payload_at == 0 {
            return false; // nothing learnt yet
        }
        let Some(&payload_head) = payload
            .get(self.payload_at..)
            .and_then(|p| p.first_chunk::<4>())
        else {
            return false;
        };
        // In bounds whenever the payload head is: 8 * words <= payload_at + 4.
        let Some(span) = payload.get(..self.words * 8) else {
            return false;
        };
        let mut diff = 0u64;
        for ((word, &head), &mask) in span.chunks_exact(8).zip(&self.heads).zip(&self.mask) {
            diff |= (u64::from_ne_bytes(word.try_into().unwrap_or([0xff; 8])) ^ head) & mask;
        }
        let head = u32::from_ne_bytes(payload_head);
        let len = (head & 0xffff) as usize;
        let kind = (head >> 16) as u16 & NLA_TYPE_MASK;
        diff == 0
            && kind == NFULA_PAYLOAD
            && len >= NLA_HDRLEN
            && self.payload_at + len <= payload.len()
            && self.payload_at + nla_align(len) >= payload.len()
    }

    #[inline(always)]
    fn value<'a>(&self, payload: &'a [u8], kind: u16) -> Option<&'a [u8]> {
        let (at, len) = self.values[usize::from(kind)];
        (at != 0).then(|| {
            let at = usize::from(at);
            payload.get(at..at + usize::from(len)).unwrap_or_default()
        })
    }

    #[inline(always)]
    fn be32(&self, payload: &[u8], kind: u16) -> Option<u32> {
        self.value(payload, kind)
            .map(|v| u32::from_be_bytes(v.first_chunk::<4>().copied().unwrap_or_default()))
    }

    #[inline(always)]
    fn be16(&self, payload: &[u8], kind: u16) -> Option<u16> {
        self.value(payload, kind)
            .map(|v| u16::from_be_bytes(v.first_chunk::<2>().copied().unwrap_or_default()))
    }

    /// The message, read at the known places (`fits` said they hold).
    #[inline(always)]
    fn read<'a>(&self, payload: &'a [u8]) -> PacketMessage<'a> {
        let [family, _version, g0, g1, ..] = *payload else {
            return PacketMessage::default();
        };
        let header = self.value(payload, NFULA_PACKET_HDR).unwrap_or_default();
        let [p0, p1, hook, ..] = *header else {
            return PacketMessage::default();
        };
        let timestamp = self.value(payload, NFULA_TIMESTAMP).map(|t| {
            let t = t.first_chunk::<16>().copied().unwrap_or_default();
            let (sec, usec) = t.split_at(8);
            Timestamp {
                sec: u64::from_be_bytes(sec.try_into().unwrap_or_default()),
                usec: u64::from_be_bytes(usec.try_into().unwrap_or_default()),
            }
        });
        let data_at = self.payload_at + NLA_HDRLEN;
        let data_len = payload.get(self.payload_at..data_at).map_or(0, |h| {
            usize::from(u16::from_ne_bytes([h[0], h[1]])).saturating_sub(NLA_HDRLEN)
        });
        PacketMessage {
            family,
            group: u16::from_be_bytes([g0, g1]),
            hw_protocol: u16::from_be_bytes([p0, p1]),
            hook,
            prefix: self.value(payload, NFULA_PREFIX),
            indev: self.be32(payload, NFULA_IFINDEX_INDEV),
            outdev: self.be32(payload, NFULA_IFINDEX_OUTDEV),
            physindev: self.be32(payload, NFULA_IFINDEX_PHYSINDEV),
            physoutdev: self.be32(payload, NFULA_IFINDEX_PHYSOUTDEV),
            mark: self.be32(payload, NFULA_MARK),
            hwaddr: self.value(payload, NFULA_HWADDR),
            hwtype: self.be16(payload, NFULA_HWTYPE),
            hwlen: self.be16(payload, NFULA_HWLEN),
            hwheader: self.value(payload, NFULA_HWHEADER),
            timestamp,
            uid: self.be32(payload, NFULA_UID),
            gid: self.be32(payload, NFULA_GID),
            seq: self.be32(payload, NFULA_SEQ),
            seq_global: self.be32(payload, NFULA_SEQ_GLOBAL),
            payload: Some(payload.get(data_at..data_at + data_len).unwrap_or_default()),
        }
    }
}

/// Parses the packet messages of one NFLOG stream, fast.
///
/// Gives exactly what [`PacketMessage::parse`] gives, for every input. It
/// remembers the layout of the last two message shapes it parsed (e.g.
/// input packets and output packets); a message with the same attribute
/// headers at the same offsets (only the payload length may differ) is
/// validated by comparing its first bytes, masked to those headers, with
/// the learnt ones, a few independent word compares, instead of by walking
/// the attribute chain, where each attribute's position depends on the
/// previous one's length.
#[derive(Clone, Copy, Debug)]
pub struct PacketParser {
    layouts: [Layout; 2],
}

impl Default for PacketParser {
    fn default() -> PacketParser {
        PacketParser {
            layouts: [Layout::EMPTY; 2],
        }
    }
}

impl PacketParser {
    /// Parses the payload of a packet message (the bytes after its netlink
    /// header), which starts at byte `base` of the buffer being parsed.
    #[inline(always)]
    pub fn parse<'a>(
        &mut self,
        payload: &'a [u8],
        base: usize,
    ) -> Result<PacketMessage<'a>, Malformed> {
        if self.layouts[0].fits(payload) {
            return Ok(self.layouts[0].read(payload));
        }
        self.parse_other(payload, base)
    }

    #[inline(never)]
    fn parse_other<'a>(
        &mut self,
        payload: &'a [u8],
        base: usize,
    ) -> Result<PacketMessage<'a>, Malformed> {
        if self.layouts[1].fits(payload) {
            self.layouts.swap(0, 1);
            return Ok(self.layouts[0].read(payload));
        }
        let message = PacketMessage::parse(payload, base)?;
        if let Some(layout) = Layout::learn(payload) {
            self.layouts[1] = self.layouts[0];
            self.layouts[0] = layout;
        }
        Ok(message)
    }
}

// --- walking a received buffer -----------------------------------------------------

/// A typed message from NETLINK_NETFILTER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// `NFULNL_MSG_PACKET`: one logged packet.
    Packet(PacketMessage<'a>),
    /// `NLMSG_DONE`: the end of a buffer of several packets.
    Done,
    /// `NLMSG_ERROR`: `errno` 0 for an ACK, else a negative errno.
    Error {
        /// 0 (ACK) or a negative errno.
        errno: i32,
        /// Header of the request answered, when included.
        request: Option<NlHeader>,
    },
    /// `NLMSG_NOOP`
    Noop,
    /// `NLMSG_OVERRUN`
    Overrun,
    /// Any other well-framed message.
    Other {
        /// `nlmsg_type`
        msg_type: u16,
        /// Bytes after the header.
        payload: &'a [u8],
    },
}

/// One message with its place in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    /// Byte offset of its netlink header.
    pub offset: usize,
    /// Its netlink header.
    pub header: NlHeader,
    /// Its content.
    pub message: Message<'a>,
}

/// Iterator over the messages of one received buffer (`NLMSG_OK` /
/// `NLMSG_NEXT` with every length checked). Yields `Err` for a malformed
/// message and goes on, unless its framing is broken (then nothing after
/// it can be found and the walk ends).
///
/// Packet messages are parsed with a [`PacketParser`]; pass the one of the
/// previous datagram ([`Walker::with_parser`], [`Walker::parser`]) so that
/// the layouts it learnt carry over.
#[derive(Clone, Debug)]
pub struct Walker<'a> {
    buf: &'a [u8],
    pos: usize,
    parser: PacketParser,
}

impl<'a> Walker<'a> {
    /// Walks `buf`, what one `recv` returned.
    pub fn new(buf: &'a [u8]) -> Walker<'a> {
        Walker::with_parser(buf, PacketParser::default())
    }

    /// Walks `buf` with `parser` (and the layouts it already knows).
    pub fn with_parser(buf: &'a [u8], parser: PacketParser) -> Walker<'a> {
        Walker {
            buf,
            pos: 0,
            parser,
        }
    }

    /// Byte offset of the next message.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The parser, with what it learnt during the walk.
    pub fn parser(&self) -> PacketParser {
        self.parser
    }

    /// The fast path for a stream's common case: when the next message is
    /// a packet message with the layout the parser met last, returns what a
    /// recorder keeps of it ([`PacketMessage::logged`]) and moves past it.
    /// Otherwise returns `None` and stays put: [`Iterator::next`] then
    /// handles the message, whatever it is (and learns its layout). Walking
    /// with `next_packet` first and `next` when it declines gives exactly
    /// the packets of walking with `next` alone, with the same checks (the
    /// message lies within the buffer; `fits` validates the attributes);
    /// it only skips building the whole [`PacketMessage`] and [`Item`].
    #[inline(always)]
    pub fn next_packet(&mut self) -> Option<LoggedPacket<'a>> {
        let offset = self.pos;
        let rest = self.buf.get(offset..)?;
        let head = rest.first_chunk::<NLMSG_HDRLEN>()?;
        let len = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if u16::from_ne_bytes([head[4], head[5]]) != MSG_PACKET {
            return None;
        }
        // None when `len` is below the header or past the buffer, as in
        // `next`.
        let payload = rest.get(NLMSG_HDRLEN..len)?;
        let layout = &self.parser.layouts[0];
        if !layout.fits(payload) {
            return None;
        }
        self.pos = offset.saturating_add(nlmsg_align(len)).min(self.buf.len());
        Some(layout.read(payload).logged())
    }

    fn stop(&mut self, offset: usize, reason: Reason) -> Option<Result<Item<'a>, Malformed>> {
        self.pos = self.buf.len();
        Some(Err(Malformed { offset, reason }))
    }
}

impl<'a> Iterator for Walker<'a> {
    type Item = Result<Item<'a>, Malformed>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.pos;
        let rest = self.buf.get(offset..)?;
        if rest.is_empty() {
            return None;
        }
        let (header, len) = match NlHeader::frame(rest) {
            Ok(framed) => framed,
            Err(e) => return self.stop(offset, Reason::Framing(e)),
        };
        self.pos = offset.saturating_add(nlmsg_align(len)).min(self.buf.len());
        let payload = &rest[NLMSG_HDRLEN..len];
        let message = match header.msg_type {
            MSG_PACKET => self
                .parser
                .parse(payload, offset + NLMSG_HDRLEN)
                .map(Message::Packet),
            NLMSG_DONE => Ok(Message::Done),
            NLMSG_ERROR => match *payload {
                [e0, e1, e2, e3, ..] => Ok(Message::Error {
                    errno: i32::from_ne_bytes([e0, e1, e2, e3]),
                    request: NlHeader::parse(&payload[4..]),
                }),
                _ => Err(Malformed {
                    offset,
                    reason: Reason::ShortError {
                        payload: payload.len(),
                    },
                }),
            },
            NLMSG_NOOP => Ok(Message::Noop),
            NLMSG_OVERRUN => Ok(Message::Overrun),
            msg_type => Ok(Message::Other { msg_type, payload }),
        };
        Some(message.map(|message| Item {
            offset,
            header,
            message,
        }))
    }
}

impl std::iter::FusedIterator for Walker<'_> {}

// --- configuration requests ----------------------------------------------------------

/// `struct nfulnl_msg_config_mode`: what to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyMode {
    /// `NFULNL_COPY_*`
    pub mode: u8,
    /// Payload bytes to copy at most (0: the kernel's maximum).
    pub range: u32,
}

/// One `NFULNL_MSG_CONFIG` request: a command and/or settings for a group.
/// The kernel applies the command first, then every setting present, all
/// in one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConfigRequest {
    /// `nfgenmsg.nfgen_family`: only meaningful for `PF_BIND`/`PF_UNBIND`.
    pub family: u8,
    /// The group (`nfgenmsg.res_id`).
    pub group: u16,
    /// `NFULA_CFG_CMD`: `CMD_*`.
    pub command: Option<u8>,
    /// `NFULA_CFG_MODE`
    pub mode: Option<CopyMode>,
    /// `NFULA_CFG_NLBUFSIZ`: bytes per kernel buffer.
    pub nlbufsiz: Option<u32>,
    /// `NFULA_CFG_TIMEOUT`: flush timeout, 1/100 s.
    pub timeout: Option<u32>,
    /// `NFULA_CFG_QTHRESH`: messages per buffer at most.
    pub qthresh: Option<u32>,
    /// `NFULA_CFG_FLAGS`: `CFG_F_*`.
    pub flags: Option<u16>,
}

impl ConfigRequest {
    /// `BIND` of `group`.
    pub fn bind(group: u16) -> ConfigRequest {
        ConfigRequest {
            group,
            command: Some(CMD_BIND),
            ..Default::default()
        }
    }

    /// `UNBIND` of `group`: the kernel flushes its pending buffer to us,
    /// then destroys the instance.
    pub fn unbind(group: u16) -> ConfigRequest {
        ConfigRequest {
            group,
            command: Some(CMD_UNBIND),
            ..Default::default()
        }
    }

    /// The complete netlink message (`NLM_F_REQUEST | NLM_F_ACK`).
    pub fn to_message(&self, seq: u32, pid: u32) -> Vec<u8> {
        let mut out = vec![0u8; NLMSG_HDRLEN];
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            group: self.group,
        };
        out.extend_from_slice(&nfgen.to_bytes());
        if let Some(cmd) = self.command {
            put_attr(&mut out, NFULA_CFG_CMD, &[cmd]);
        }
        if let Some(m) = self.mode {
            let r = m.range.to_be_bytes();
            put_attr(
                &mut out,
                NFULA_CFG_MODE,
                &[r[0], r[1], r[2], r[3], m.mode, 0],
            );
        }
        for (kind, value) in [
            (NFULA_CFG_NLBUFSIZ, self.nlbufsiz),
            (NFULA_CFG_TIMEOUT, self.timeout),
            (NFULA_CFG_QTHRESH, self.qthresh),
        ] {
            if let Some(v) = value {
                put_attr(&mut out, kind, &v.to_be_bytes());
            }
        }
        if let Some(f) = self.flags {
            put_attr(&mut out, NFULA_CFG_FLAGS, &f.to_be_bytes());
        }
        let len = out.len();
        NlHeader {
            len: len as u32,
            msg_type: MSG_CONFIG,
            flags: NLM_F_REQUEST | NLM_F_ACK,
            seq,
            pid,
        }
        .write(&mut out);
        out
    }

    /// Parses the payload of a config message (after its netlink header),
    /// which starts at byte `base` of the parsed buffer, checking attribute
    /// sizes as the kernel's `nfula_cfg_policy` does.
    pub fn parse(payload: &[u8], base: usize) -> Result<ConfigRequest, Malformed> {
        let Some(nfgen) = NfGenMsg::parse(payload) else {
            return Err(Malformed {
                offset: base,
                reason: Reason::ShortNfgenmsg {
                    payload: payload.len(),
                },
            });
        };
        let mut c = ConfigRequest {
            family: nfgen.family,
            group: nfgen.group,
            ..Default::default()
        };
        for attr in Attrs::new(&payload[NFGENMSG_LEN..], base + NFGENMSG_LEN) {
            let attr = attr?;
            match attr.kind {
                NFULA_CFG_CMD => c.command = Some(attr.fixed::<1>()?[0]),
                NFULA_CFG_MODE => {
                    let [r0, r1, r2, r3, mode, _pad] = attr.fixed::<6>()?;
                    c.mode = Some(CopyMode {
                        mode,
                        range: u32::from_be_bytes([r0, r1, r2, r3]),
                    });
                }
                NFULA_CFG_NLBUFSIZ => c.nlbufsiz = Some(attr.be32()?),
                NFULA_CFG_TIMEOUT => c.timeout = Some(attr.be32()?),
                NFULA_CFG_QTHRESH => c.qthresh = Some(attr.be32()?),
                NFULA_CFG_FLAGS => c.flags = Some(attr.be16()?),
                _ => {}
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_extension_headers_are_skipped_like_the_kernel() {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]); // -> dest opts, 8 bytes
        p.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // -> frag, 16
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]); // first fragment -> UDP
        assert_eq!(ip_protocol(Family::IPV6, &p), 17);
        // A non-first fragment stops at the fragment header and takes the
        // protocol it names.
        let n = p.len();
        p[n - 6] = 0x05;
        assert_eq!(ip_protocol(Family::IPV6, &p), 17);
        // Cut short inside the chain: unknown.
        assert_eq!(ip_protocol(Family::IPV6, &p[..50]), PROTO_UNKNOWN);
        // No next header.
        let mut q = vec![0u8; 40];
        q[6] = 59;
        assert_eq!(ip_protocol(Family::IPV6, &q), PROTO_UNKNOWN);
        // AH: (len + 2) * 4 bytes.
        let mut a = vec![0u8; 40];
        a[6] = 51;
        a.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ip_protocol(Family::IPV6, &a), 6);
        assert_eq!(ip_protocol(Family::IPV6, &a[..39]), PROTO_UNKNOWN);
    }

    #[test]
    fn original_length_comes_from_the_ip_header() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV4, &v4), 1500);
        // A header claiming less than was captured: the captured length.
        v4[2..4].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV4, &v4), 20);
        let mut v6 = [0u8; 40];
        v6[4..6].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV6, &v6), 1040);
        v6[4..6].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV6, &v6), 40);
        assert_eq!(ip_orig_len(Family::IPV6, &v6[..3]), 3);
        assert_eq!(ip_orig_len(Family(7), &v6), 40);
    }

    #[test]
    fn ifindex_follows_the_hook() {
        let m = PacketMessage {
            indev: Some(2),
            outdev: Some(3),
            ..Default::default()
        };
        for (hook, want) in [(0, 2), (1, 2), (2, 2), (3, 3), (4, 3), (9, 3)] {
            assert_eq!(PacketMessage { hook, ..m }.ifindex(), want, "hook {hook}");
        }
        assert_eq!(
            PacketMessage {
                hook: 0,
                indev: None,
                ..m
            }
            .ifindex(),
            3
        );
        assert_eq!(
            PacketMessage {
                hook: 3,
                indev: None,
                outdev: None,
                ..m
            }
            .ifindex(),
            0
        );
    }

    /// A stream of `prefix_len`-prefixed messages of one shape, payloads of
    /// the given lengths, as the kernel sends them.
    fn stream(prefix_len: usize, payload_lens: &[usize]) -> Vec<u8> {
        let prefix = vec![b'p'; prefix_len];
        let mut buf = Vec::new();
        for (i, &len) in payload_lens.iter().enumerate() {
            let data = vec![0x45; len];
            PacketMessage {
                family: AF_INET,
                group: 3,
                hook: NF_INET_LOCAL_IN,
                prefix: Some(&prefix),
                indev: Some(2),
                timestamp: Some(Timestamp { sec: 5, usec: 6 }),
                seq: Some(i as u32),
                payload: Some(&data),
                ..Default::default()
            }
            .emit(&mut buf);
        }
        buf
    }

    /// Which messages of `buf` the fast path took.
    fn fast_path_hits(buf: &[u8]) -> Vec<bool> {
        let mut walker = Walker::new(buf);
        let mut hits = Vec::new();
        loop {
            if walker.next_packet().is_some() {
                hits.push(true);
            } else if walker.next().is_some() {
                hits.push(false);
            } else {
                return hits;
            }
        }
    }

    #[test]
    fn the_fast_path_takes_every_message_of_a_learnt_shape() {
        // Prefix lengths put the payload header at offsets of both
        // remainders mod 8 (the comparison works in 8-byte words).
        for prefix_len in [0, 1, 4, 5, 40] {
            let buf = stream(prefix_len, &[60, 1, 0, 1500, 61]);
            assert_eq!(
                fast_path_hits(&buf),
                [false, true, true, true, true],
                "prefix of {prefix_len} bytes"
            );
        }
    }

    #[test]
    fn the_fast_path_declines_what_it_cannot_vouch_for() {
        // A header byte changed in the third message (the prefix
        // attribute's length, 12 -> 11: still valid, another shape): a full
        // parse, which learns that shape; the fourth, of the first shape,
        // is then found by the parser's second layout, off the fast path.
        let mut buf = stream(8, &[60, 60, 60, 60]);
        let per = buf.len() / 4;
        let prefix_head = 2 * per + NLMSG_HDRLEN + NFGENMSG_LEN + 8;
        assert_eq!(buf[prefix_head], 4 + 8);
        buf[prefix_head] = 4 + 7;
        assert_eq!(fast_path_hits(&buf), [false, true, false, false]);

        // Headers past what a layout compares: never learnt.
        let buf = stream(LAYOUT_SPAN, &[60, 60, 60]);
        assert_eq!(fast_path_hits(&buf), [false, false, false]);
    }
}
