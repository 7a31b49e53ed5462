//! Constants of `linux/netfilter/nfnetlink.h` and `nfnetlink_log.h`.

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
