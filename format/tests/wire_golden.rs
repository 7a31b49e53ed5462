//! Golden bytes: a batch exactly as the module builds it, byte by byte.
//! Netlink is host-endian; these bytes are for little-endian hosts.
#![cfg(target_endian = "little")]

use imp2_format::wire::abi;
use imp2_format::wire::{BatchBuilder, BatchMessage, BatchTrailer, BatchWalker, NlHeader};
use imp2_format::{Family, Hook, PacketRecord};

/// Two records and the trailer: 68 + 52 + 112 = 232 bytes.
#[rustfmt::skip]
const BATCH: [u8; 232] = [
    // ---- message 1 at offset 0: RECORD, IPv4 ICMP echo, 28 bytes captured
    0x44, 0x00, 0x00, 0x00, // nlmsg_len   = 68 (16 header + 24 record + 28 data)
    0x22, 0x00,             // nlmsg_type  = 0x22 IMP2_MSG_RECORD
    0x02, 0x00,             // nlmsg_flags = NLM_F_MULTI
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0 (the kernel)
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // tstamp_ns = 0x0807060504030201
    0x01, 0x00, 0x00, 0x00, // ifindex  = 1
    0x1c, 0x00, 0x00, 0x00, // orig_len = 28
    0x00,                   // hook     = 0 PRE_ROUTING
    0x02,                   // family   = 2 AF_INET
    0x01,                   // protocol = 1 ICMP
    0x00,                   // flags    = 0
    0x00, 0x00, 0x00, 0x00, // reserved = 0
    // data: IPv4 header (20 bytes)
    0x45, 0x00, 0x00, 0x1c, // version 4, IHL 5, TOS 0, total length 28
    0x00, 0x01, 0x00, 0x00, // id 1, no fragment
    0x40, 0x01, 0x00, 0x00, // TTL 64, protocol ICMP, checksum (unset)
    0x7f, 0x00, 0x00, 0x01, // src 127.0.0.1
    0x7f, 0x00, 0x00, 0x01, // dst 127.0.0.1
    // data: ICMP echo request (8 bytes)
    0x08, 0x00, 0x00, 0x00, // type 8, code 0, checksum (unset)
    0x00, 0x07, 0x00, 0x01, // id 7, seq 1
    // ---- message 2 at offset 68: RECORD, IPv6 UDP cut to 10 bytes by snaplen
    0x32, 0x00, 0x00, 0x00, // nlmsg_len   = 50 (16 + 24 + 10), padded to 52
    0x22, 0x00,             // nlmsg_type  = IMP2_MSG_RECORD
    0x02, 0x00,             // nlmsg_flags = NLM_F_MULTI
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0
    0x00, 0xca, 0x9a, 0x3b, 0x00, 0x00, 0x00, 0x00, // tstamp_ns = 1_000_000_000
    0x02, 0x00, 0x00, 0x00, // ifindex  = 2
    0x3e, 0x00, 0x00, 0x00, // orig_len = 62 (40 IPv6 + 8 UDP + 14 payload)
    0x03,                   // hook     = 3 LOCAL_OUT
    0x0a,                   // family   = 10 AF_INET6
    0x11,                   // protocol = 17 UDP
    0x00,                   // flags    = 0
    0x00, 0x00, 0x00, 0x00, // reserved = 0
    // data: the first 10 bytes of the IPv6 header
    0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
    0x00, 0x16, 0x11, 0x40, // payload length 22, next header UDP, hop limit 64
    0x20, 0x01,             // first two bytes of src 2001:db8::1
    0x00, 0x00,             // padding to NLMSG_ALIGNTO, zeroed
    // ---- message 3 at offset 120: NLMSG_DONE with the batch trailer
    0x70, 0x00, 0x00, 0x00, // nlmsg_len   = 112 (16 + 96)
    0x03, 0x00,             // nlmsg_type  = NLMSG_DONE
    0x02, 0x00,             // nlmsg_flags = NLM_F_MULTI
    0x00, 0x00, 0x00, 0x00, // nlmsg_seq   = 0
    0x00, 0x00, 0x00, 0x00, // nlmsg_pid   = 0
    0x00, 0x00, 0x00, 0x00, // status  = 0
    0x01, 0x00, 0x00, 0x00, // cpu     = 1
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq = 5
    0x02, 0x00, 0x00, 0x00, // records = 2
    0x01, 0x00, 0x00, 0x00, // flags   = IMP2_TRAILER_F_FULL
    0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // records_total = 10
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped[nomem]  = 0
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped[rcvbuf] = 3
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped[send]   = 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped[other]  = 0
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped_total[nomem]  = 1
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped_total[rcvbuf] = 7
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped_total[send]   = 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // dropped_total[other]  = 0
];

fn icmp_packet() -> &'static [u8] {
    &BATCH[40..68]
}

fn ipv6_prefix() -> &'static [u8] {
    &BATCH[108..118]
}

fn expected_records() -> [PacketRecord<'static>; 2] {
    [
        PacketRecord {
            tstamp_ns: 0x0807_0605_0403_0201,
            ifindex: 1,
            orig_len: 28,
            hook: Hook::PRE_ROUTING,
            family: Family::IPV4,
            protocol: 1,
            data: icmp_packet(),
        },
        PacketRecord {
            tstamp_ns: 1_000_000_000,
            ifindex: 2,
            orig_len: 62,
            hook: Hook::LOCAL_OUT,
            family: Family::IPV6,
            protocol: 17,
            data: ipv6_prefix(),
        },
    ]
}

fn expected_trailer() -> BatchTrailer {
    BatchTrailer {
        status: 0,
        cpu: 1,
        seq: 5,
        records: 2,
        flags: abi::TRAILER_F_FULL,
        records_total: 10,
        dropped: [0, 3, 0, 0],
        dropped_total: [1, 7, 0, 0],
    }
}

#[test]
fn walker_reads_golden_batch() {
    let items: Vec<_> = BatchWalker::new(&BATCH).collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items.iter().map(|i| i.offset).collect::<Vec<_>>(),
        [0, 68, 120]
    );
    let [r0, r1] = expected_records();
    assert_eq!(items[0].message, BatchMessage::Record(r0));
    assert_eq!(items[1].message, BatchMessage::Record(r1));
    assert_eq!(items[2].message, BatchMessage::Done(expected_trailer()));
    assert_eq!(
        items[2].header,
        NlHeader {
            len: 112,
            msg_type: abi::NLMSG_DONE,
            flags: abi::NLM_F_MULTI,
            seq: 0,
            pid: 0
        }
    );
}

#[test]
fn builder_emits_golden_batch() {
    let mut builder = BatchBuilder::new(4096, 100, 0);
    for record in expected_records() {
        builder.push(&record).unwrap();
    }
    let trailer = BatchTrailer {
        records: 0,
        ..expected_trailer()
    };
    assert_eq!(builder.finish(&trailer), &BATCH[..]);
}

#[test]
fn builder_reuses_buffer_and_respects_limits() {
    let [r0, _] = expected_records();
    // Room for the trailer (112) and two 68-byte records, not three.
    let mut builder = BatchBuilder::new(112 + 2 * 68, 100, 0);
    builder.push(&r0).unwrap();
    builder.push(&r0).unwrap();
    assert!(builder.push(&r0).is_err());
    assert_eq!(builder.records(), 2);
    builder.clear();
    assert!(builder.is_empty());
    // Record threshold.
    let mut builder = BatchBuilder::new(1 << 16, 1, 0);
    builder.push(&r0).unwrap();
    assert!(builder.is_full());
    assert!(builder.push(&r0).is_err());
}
