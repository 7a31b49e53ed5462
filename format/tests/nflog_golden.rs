//! Golden bytes: NFLOG messages exactly as the kernel built them.
//!
//! The two packet messages were received from Linux 6.18 (NETLINK_NETFILTER,
//! group 5, copy range 96, `NFULNL_CFG_F_SEQ`) in a network namespace with a
//! veth pair 02:00:00:00:00:0a (10.199.0.1, fd00:199::1) <->
//! 02:00:00:00:00:0b (10.199.0.2, fd00:199::2, ifindex 2), nft rules
//! `udp dport 9999 log group 5` (input) and `udp dport 9998 log prefix
//! "out6" group 5` (output). The NLMSG_DONE is the one `__nfulnl_send`
//! appends to a buffer of more than one message (captured on the same
//! kernel). Netlink headers and attribute headers are host-endian (these
//! bytes are for little-endian hosts); attribute values are big-endian.
#![cfg(target_endian = "little")]

use imp2_format::nflog::{
    ConfigRequest, CopyMode, NfGenMsg, NflogMessage, NflogWalker, PacketMessage, Timestamp, consts,
    emit_done,
};
use imp2_format::wire::NlHeader;
use imp2_format::{Family, Hook, PacketRecord};

/// Two packet messages and the DONE: 160 + 136 + 20 = 316 bytes.
#[rustfmt::skip]
const BUFFER: [u8; 316] = [
    // ---- message 1 at offset 0: IPv4 UDP logged at LOCAL_IN on vb
    0xa0, 0x00, 0x00, 0x00, // nlmsg_len   = 160
    0x00, 0x04,             // nlmsg_type  = 0x0400 (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET)
    0x00, 0x00,             // nlmsg_flags = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0 (the kernel)
    0x02,                   // nfgen_family = AF_INET
    0x00,                   // version      = NFNETLINK_V0
    0x00, 0x05,             // res_id       = group 5 (big endian)
    0x08, 0x00, 0x01, 0x00, // nla_len 8, NFULA_PACKET_HDR
    0x08, 0x00,             //   hw_protocol = 0x0800 (IPv4, big endian)
    0x01,                   //   hook        = 1 NF_INET_LOCAL_IN
    0x00,                   //   _pad
    0x05, 0x00, 0x0a, 0x00, // nla_len 5, NFULA_PREFIX
    0x00,                   //   "" (the rule has no prefix: just the NUL)
    0x00, 0x00, 0x00,       //   padding
    0x08, 0x00, 0x04, 0x00, // nla_len 8, NFULA_IFINDEX_INDEV
    0x00, 0x00, 0x00, 0x02, //   ifindex 2 (vb)
    0x10, 0x00, 0x08, 0x00, // nla_len 16, NFULA_HWADDR (struct nfulnl_msg_packet_hw)
    0x00, 0x06,             //   hw_addrlen = 6
    0x00, 0x00,             //   _pad
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, // hw_addr = 02:00:00:00:00:0a (the sender)
    0x06, 0x00, 0x0f, 0x00, // nla_len 6, NFULA_HWTYPE
    0x00, 0x01,             //   ARPHRD_ETHER
    0x00, 0x00,             //   padding
    0x06, 0x00, 0x11, 0x00, // nla_len 6, NFULA_HWLEN
    0x00, 0x0e,             //   hard_header_len = 14
    0x00, 0x00,             //   padding
    0x12, 0x00, 0x10, 0x00, // nla_len 18, NFULA_HWHEADER (the Ethernet header)
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, //   destination 02:00:00:00:00:0b
    0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, //   source      02:00:00:00:00:0a
    0x08, 0x00,             //   ethertype IPv4
    0x00, 0x00,             //   padding
    0x14, 0x00, 0x03, 0x00, // nla_len 20, NFULA_TIMESTAMP
    0x00, 0x00, 0x00, 0x00, 0x6b, 0x03, 0x8e, 0x79, //   sec  = 1795395193
    0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x95, 0x6b, //   usec = 693611
    0x08, 0x00, 0x0c, 0x00, // nla_len 8, NFULA_SEQ
    0x00, 0x00, 0x00, 0x00, //   seq 0 (the first packet since BIND)
    0x24, 0x00, 0x09, 0x00, // nla_len 36, NFULA_PAYLOAD: the 32-byte packet
    0x45, 0x00, 0x00, 0x20, //   IPv4, IHL 5, TOS 0, total length 32
    0x28, 0xa1, 0x40, 0x00, //   id 0x28a1, DF
    0x40, 0x11, 0xfc, 0x9b, //   TTL 64, protocol 17 UDP, checksum
    0x0a, 0xc7, 0x00, 0x01, //   src 10.199.0.1
    0x0a, 0xc7, 0x00, 0x02, //   dst 10.199.0.2
    0x88, 0xe6, 0x27, 0x0f, //   UDP 35046 -> 9999
    0x00, 0x0c, 0x15, 0xae, //   UDP length 12, checksum
    0x69, 0x6d, 0x70, 0x32, //   "imp2"
    // ---- message 2 at offset 160: IPv6 UDP logged at LOCAL_OUT on vb
    0x88, 0x00, 0x00, 0x00, // nlmsg_len   = 136
    0x00, 0x04,             // nlmsg_type  = 0x0400 packet
    0x00, 0x00,             // nlmsg_flags = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0
    0x0a,                   // nfgen_family = AF_INET6
    0x00,                   // version      = NFNETLINK_V0
    0x00, 0x05,             // res_id       = group 5
    0x08, 0x00, 0x01, 0x00, // nla_len 8, NFULA_PACKET_HDR
    0x86, 0xdd,             //   hw_protocol = 0x86dd (IPv6)
    0x03,                   //   hook        = 3 NF_INET_LOCAL_OUT
    0x00,                   //   _pad
    0x09, 0x00, 0x0a, 0x00, // nla_len 9, NFULA_PREFIX
    0x6f, 0x75, 0x74, 0x36, 0x00, //   "out6\0"
    0x00, 0x00, 0x00,       //   padding
    0x08, 0x00, 0x05, 0x00, // nla_len 8, NFULA_IFINDEX_OUTDEV
    0x00, 0x00, 0x00, 0x02, //   ifindex 2 (vb)
    0x08, 0x00, 0x0b, 0x00, // nla_len 8, NFULA_UID (a local socket sent it)
    0x00, 0x00, 0x00, 0x00, //   uid 0
    0x08, 0x00, 0x0e, 0x00, // nla_len 8, NFULA_GID
    0x00, 0x00, 0x00, 0x00, //   gid 0
    //                         (no NFULA_TIMESTAMP: the kernel sends none after FORWARD)
    0x08, 0x00, 0x0c, 0x00, // nla_len 8, NFULA_SEQ
    0x00, 0x00, 0x00, 0x01, //   seq 1
    0x3e, 0x00, 0x09, 0x00, // nla_len 62, NFULA_PAYLOAD: the 58-byte packet
    0x60, 0x0b, 0xfb, 0x55, //   IPv6, traffic class 0, flow label 0xbfb55
    0x00, 0x12, 0x11, 0x40, //   payload length 18, next header 17 UDP, hop limit 64
    0xfd, 0x00, 0x01, 0x99, 0x00, 0x00, 0x00, 0x00, //   src fd00:199::2
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x01, 0x99, 0x00, 0x00, 0x00, 0x00, //   dst fd00:199::1
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xa8, 0x2f, 0x27, 0x0e, //   UDP 43055 -> 9998
    0x00, 0x12, 0xfd, 0x59, //   UDP length 18, checksum
    0x69, 0x6d, 0x70, 0x32, 0x20, 0x6e, 0x66, 0x6c, 0x6f, 0x67, //   "imp2 nflog"
    0x00, 0x00,             //   padding (counted in nlmsg_len, as the kernel does)
    // ---- message 3 at offset 296: NLMSG_DONE closing the buffer
    0x14, 0x00, 0x00, 0x00, // nlmsg_len   = 20
    0x03, 0x00,             // nlmsg_type  = NLMSG_DONE
    0x00, 0x00,             // nlmsg_flags = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0
    0x00,                   // nfgen_family = AF_UNSPEC
    0x00,                   // version      = NFNETLINK_V0
    0x00, 0x05,             // res_id       = group 5
];

fn expected_messages() -> [PacketMessage<'static>; 2] {
    [
        PacketMessage {
            family: consts::AF_INET,
            group: 5,
            hw_protocol: 0x0800,
            hook: consts::NF_INET_LOCAL_IN,
            prefix: Some(&BUFFER[32..33]),
            indev: Some(2),
            hwaddr: Some(&BUFFER[48..60]),
            hwtype: Some(1),
            hwlen: Some(14),
            hwheader: Some(&BUFFER[80..94]),
            timestamp: Some(Timestamp {
                sec: 1_795_395_193,
                usec: 693_611,
            }),
            seq: Some(0),
            payload: Some(&BUFFER[128..160]),
            ..Default::default()
        },
        PacketMessage {
            family: consts::AF_INET6,
            group: 5,
            hw_protocol: 0x86dd,
            hook: consts::NF_INET_LOCAL_OUT,
            prefix: Some(&BUFFER[192..197]),
            outdev: Some(2),
            uid: Some(0),
            gid: Some(0),
            seq: Some(1),
            payload: Some(&BUFFER[236..294]),
            ..Default::default()
        },
    ]
}

#[test]
fn the_walker_reads_the_kernels_bytes() {
    let items: Vec<_> = NflogWalker::new(&BUFFER).collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        (items[0].offset, items[1].offset, items[2].offset),
        (0, 160, 296)
    );
    let [m1, m2] = expected_messages();
    assert_eq!(items[0].message, NflogMessage::Packet(m1));
    assert_eq!(items[1].message, NflogMessage::Packet(m2));
    assert_eq!(items[2].message, NflogMessage::Done);
    assert_eq!(
        items[0].header,
        NlHeader {
            len: 160,
            msg_type: consts::MSG_PACKET,
            flags: 0,
            seq: 0,
            pid: 0
        }
    );
    assert_eq!(&BUFFER[32..33], b"\0");
    assert_eq!(&BUFFER[192..197], b"out6\0");
    assert_eq!(&BUFFER[156..160], b"imp2");
}

#[test]
fn records_take_time_interface_length_and_protocol_from_the_message() {
    let [m1, m2] = expected_messages();
    const RECEIVED_NS: u64 = 1_795_395_194_000_000_123;
    // A kernel timestamp (microseconds) wins; the interface is the input
    // device at LOCAL_IN.
    assert_eq!(
        m1.to_record(RECEIVED_NS),
        Ok(PacketRecord {
            tstamp_ns: 1_795_395_193_693_611_000,
            ifindex: 2,
            orig_len: 32,
            hook: Hook(1),
            family: Family::IPV4,
            protocol: 17,
            data: &BUFFER[128..160],
        })
    );
    // No timestamp at LOCAL_OUT: the receive time; the output device.
    assert_eq!(
        m2.to_record(RECEIVED_NS),
        Ok(PacketRecord {
            tstamp_ns: RECEIVED_NS,
            ifindex: 2,
            orig_len: 58,
            hook: Hook::LOCAL_OUT,
            family: Family::IPV6,
            protocol: 17,
            data: &BUFFER[236..294],
        })
    );
}

#[test]
fn emitting_the_parsed_messages_gives_the_same_bytes() {
    let [m1, m2] = expected_messages();
    let mut out = Vec::new();
    m1.emit(&mut out);
    m2.emit(&mut out);
    emit_done(5, &mut out);
    assert_eq!(out, BUFFER);
}

/// BIND of group 5 with every setting, as imp2-record sends it.
#[rustfmt::skip]
const BIND: [u8; 72] = [
    0x48, 0x00, 0x00, 0x00, // nlmsg_len   = 72
    0x01, 0x04,             // nlmsg_type  = 0x0401 (NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG)
    0x05, 0x00,             // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
    0x07, 0x00, 0x00, 0x00, // nlmsg_seq   = 7
    0x39, 0x30, 0x00, 0x00, // nlmsg_pid   = 12345 (our port id)
    0x00,                   // nfgen_family = AF_UNSPEC (a group serves every family)
    0x00,                   // version      = NFNETLINK_V0
    0x00, 0x05,             // res_id       = group 5 (big endian)
    0x05, 0x00, 0x01, 0x00, // nla_len 5, NFULA_CFG_CMD
    0x01,                   //   NFULNL_CFG_CMD_BIND
    0x00, 0x00, 0x00,       //   padding
    0x0a, 0x00, 0x02, 0x00, // nla_len 10, NFULA_CFG_MODE
    0x00, 0x00, 0x01, 0x00, //   copy_range = 256 (big endian)
    0x02,                   //   copy_mode  = NFULNL_COPY_PACKET
    0x00,                   //   _pad
    0x00, 0x00,             //   padding
    0x08, 0x00, 0x03, 0x00, // nla_len 8, NFULA_CFG_NLBUFSIZ
    0x00, 0x02, 0x00, 0x00, //   131072 bytes
    0x08, 0x00, 0x04, 0x00, // nla_len 8, NFULA_CFG_TIMEOUT
    0x00, 0x00, 0x00, 0x0a, //   10 (1/100 s): 100 ms
    0x08, 0x00, 0x05, 0x00, // nla_len 8, NFULA_CFG_QTHRESH
    0x00, 0x00, 0x10, 0x00, //   4096 messages
    0x06, 0x00, 0x06, 0x00, // nla_len 6, NFULA_CFG_FLAGS
    0x00, 0x01,             //   NFULNL_CFG_F_SEQ
    0x00, 0x00,             //   padding
];

fn bind_request() -> ConfigRequest {
    ConfigRequest {
        family: consts::AF_UNSPEC,
        group: 5,
        command: Some(consts::CMD_BIND),
        mode: Some(CopyMode {
            mode: consts::COPY_PACKET,
            range: 256,
        }),
        nlbufsiz: Some(131_072),
        timeout: Some(10),
        qthresh: Some(4096),
        flags: Some(consts::CFG_F_SEQ),
    }
}

#[test]
fn config_requests_are_built_byte_for_byte() {
    let msg = bind_request().to_message(7, 12345);
    assert_eq!(msg, BIND);
    let parsed = ConfigRequest::parse(&msg[16..], 16).unwrap();
    assert_eq!(parsed, bind_request());
    assert_eq!(
        NfGenMsg::parse(&msg[16..]),
        Some(NfGenMsg {
            family: 0,
            version: 0,
            group: 5
        })
    );
}

#[test]
fn unbind_is_a_bare_command() {
    #[rustfmt::skip]
    let expected: [u8; 28] = [
        0x1c, 0x00, 0x00, 0x00, // nlmsg_len = 28
        0x01, 0x04,             // NFULNL_MSG_CONFIG
        0x05, 0x00,             // NLM_F_REQUEST | NLM_F_ACK
        0x09, 0x00, 0x00, 0x00, // seq 9
        0x00, 0x00, 0x00, 0x00, // pid 0
        0x00, 0x00, 0x01, 0x2c, // AF_UNSPEC, v0, group 300
        0x05, 0x00, 0x01, 0x00, // nla_len 5, NFULA_CFG_CMD
        0x02, 0x00, 0x00, 0x00, // NFULNL_CFG_CMD_UNBIND, padding
    ];
    assert_eq!(ConfigRequest::unbind(300).to_message(9, 0), expected);
    assert_eq!(
        ConfigRequest::parse(&expected[16..], 16),
        Ok(ConfigRequest::unbind(300))
    );
}

#[test]
fn attribute_flag_bits_are_masked() {
    let mut buf = BUFFER;
    // NFULA_SEQ of message 1 (type at offset 118) with NLA_F_NET_BYTEORDER.
    buf[119] |= 0x40;
    // NFULA_PACKET_HDR of message 2 (type at 182) with NLA_F_NESTED.
    buf[183] |= 0x80;
    let items: Vec<_> = NflogWalker::new(&buf).collect::<Result<_, _>>().unwrap();
    let [m1, m2] = expected_messages();
    let (NflogMessage::Packet(p1), NflogMessage::Packet(p2)) = (items[0].message, items[1].message)
    else {
        panic!("not packets: {items:?}");
    };
    assert_eq!(p1.seq, m1.seq);
    assert_eq!(p2.hook, m2.hook);
}
