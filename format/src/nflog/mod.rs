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
//!
//! - [`consts`]: the kernel's constants;
//! - `attrs`: `struct nfgenmsg` and the attributes after it ([`Attrs`]);
//! - `packet`: packet messages ([`PacketMessage`], [`LoggedPacket`]);
//! - `shape`: the fast path that learns the shape of a stream's packet
//!   messages ([`PacketParser`]);
//! - `walker`: a received datagram, message by message ([`NflogWalker`]);
//! - `config`: configuration requests ([`ConfigRequest`]);
//! - `error`: what can be wrong and where ([`MalformedNflog`]).
//!
//! The IP facts of a record (original length, transport protocol) come
//! from [`crate::ip`]; the netlink framing from [`crate::wire::Frames`].

mod attrs;
mod config;
pub mod consts;
mod error;
mod packet;
mod shape;
mod walker;

pub use attrs::{Attr, Attrs, NfGenMsg};
pub use config::{ConfigRequest, CopyMode};
pub use error::{MalformedNflog, MalformedNflogReason};
pub use packet::{LoggedPacket, NotIp, PacketMessage, Timestamp, emit_done};
pub use shape::PacketParser;
pub use walker::{NflogItem, NflogMessage, NflogWalker};

/// The IP facts of a record, re-exported where the NFLOG records get them.
pub use crate::ip::{ip_orig_len, ip_protocol};
