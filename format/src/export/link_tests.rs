//! The SLL2 link type: golden bytes of an EPB, an IDB and a pcap file, the
//! hand-written encoders against `pcap-file`'s with the header in front,
//! and the header's fields.

use super::pcap::PcapSink;
use super::pcapng::PcapngSink;
use super::tests::{DATA, T0, ending, header, pcap_file_epb, record};
use super::*;
use crate::record::{Family, Hook};

#[test]
fn sll2_epb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h, LinkType::Sll2).unwrap();
    sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
    sink.flush_buffer().unwrap();
    drop(sink);
    // SHB and one IDB come first; the EPB is the last 72 bytes.
    let epb = &out[out.len() - 72..];
    #[rustfmt::skip]
    let golden: [u8; 72] = [
        0x06, 0x00, 0x00, 0x00, // block type 6: EPB
        0x48, 0x00, 0x00, 0x00, // block total length 72
        0x00, 0x00, 0x00, 0x00, // interface id 0 (eth0, from the header)
        0xfe, 0x9c, 0x97, 0x17, // timestamp high: T0 >> 32
        0x15, 0xcd, 0x85, 0x3d, // timestamp low: T0 & 0xffffffff (ns)
        0x19, 0x00, 0x00, 0x00, // captured length 25 = 20 (SLL2) + 5
        0x50, 0x00, 0x00, 0x00, // original length 80 = 20 (SLL2) + 60
        // SLL2 header, big-endian fields
        0x08, 0x00,             // protocol type 0x0800: IPv4
        0x00, 0x00,             // reserved
        0x00, 0x00, 0x00, 0x02, // interface index 2
        0xff, 0xfe,             // ARPHRD_NONE: no link-layer header
        0x00,                   // packet type 0: PACKET_HOST (pre-routing)
        0x00,                   // link-layer address length 0
        0x00, 0x00, 0x00, 0x00, // link-layer address, 8 bytes, unused
        0x00, 0x00, 0x00, 0x00,
        0x45, 0x00, 0x00, 0x3c, // the IP packet (5 bytes)
        0x12, 0x00, 0x00, 0x00, //   + 3 bytes padding to 32 bits
        0x02, 0x00, 0x04, 0x00, // option epb_flags (2), length 4
        0x01, 0x00, 0x00, 0x00, //   direction 01 = inbound
        0x00, 0x00, 0x00, 0x00, // opt_endofopt
        0x48, 0x00, 0x00, 0x00, // block total length 72, again
    ];
    assert_eq!(epb, golden);
}

#[test]
fn sll2_idb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    PcapngSink::new(&mut out, &h, LinkType::Sll2)
        .unwrap()
        .flush_buffer()
        .unwrap();
    let len = u32::from_le_bytes(out[out.len() - 4..].try_into().unwrap()) as usize;
    let idb = &out[out.len() - len..];
    // Block type, length, then the two fields SLL2 changes; the options are
    // those of the raw IDB (`idb_golden_bytes`).
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x01, 0x00, 0x00, 0x00, // block type 1: IDB
        0x38, 0x00, 0x00, 0x00, // block total length 56
        0x14, 0x01, 0x00, 0x00, // linktype 276 (LINKTYPE_LINUX_SLL2), reserved 0
        0x74, 0x00, 0x00, 0x00, // snaplen 116 = 96 + 20 (SLL2)
    ];
    assert_eq!(&idb[..16], golden);
}

#[test]
fn sll2_pcap_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapSink::new(&mut out, &h, LinkType::Sll2).unwrap();
    sink.record(0, &record(T0, 7, Hook::LOCAL_OUT)).unwrap();
    sink.finish(&ending(&h, Losses::default())).unwrap();
    #[rustfmt::skip]
    let golden: &[u8] = &[
        // global header
        0x4d, 0x3c, 0xb2, 0xa1, // magic 0xa1b23c4d: nanosecond pcap, little-endian
        0x02, 0x00, 0x04, 0x00, // version 2.4
        0x00, 0x00, 0x00, 0x00, // thiszone 0
        0x00, 0x00, 0x00, 0x00, // sigfigs 0
        0x74, 0x00, 0x00, 0x00, // snaplen 116 = 96 + 20 (SLL2)
        0x14, 0x01, 0x00, 0x00, // network 276 (LINKTYPE_LINUX_SLL2)
        // record header
        0x00, 0xf1, 0x53, 0x65, // ts_sec 1700000000
        0x15, 0xcd, 0x5b, 0x07, // ts_nsec 123456789
        0x19, 0x00, 0x00, 0x00, // incl_len 25 = 20 + 5
        0x50, 0x00, 0x00, 0x00, // orig_len 80 = 20 + 60
        // SLL2 header, big-endian fields
        0x08, 0x00,             // protocol type 0x0800: IPv4
        0x00, 0x00,             // reserved
        0x00, 0x00, 0x00, 0x07, // interface index 7
        0xff, 0xfe,             // ARPHRD_NONE
        0x04,                   // packet type 4: PACKET_OUTGOING (local-out)
        0x00,                   // link-layer address length 0
        0x00, 0x00, 0x00, 0x00, // link-layer address, unused
        0x00, 0x00, 0x00, 0x00,
        // the IP packet, unpadded
        0x45, 0x00, 0x00, 0x3c, 0x12,
    ];
    assert_eq!(out, golden);
}

/// With the SLL2 header in front, the hand-written EPB encoder still
/// writes what `pcap-file`'s writes for the header and data as one packet.
#[test]
fn put_epb_with_sll2_matches_pcap_file() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    for len in (0..=5).chain([92, 1399, 1500]) {
        for hook in [Hook::PRE_ROUTING, Hook::LOCAL_OUT, Hook(9)] {
            let mut r = record(T0, 3, hook);
            r.data = &data[..len];
            r.orig_len = len as u32 + 7;
            let link = sll2_header(&r);
            let flags = epb_flags(hook);
            let mut fast = vec![0xAA];
            super::pcapng::put_epb(&mut fast, 2, T0, r.orig_len, &link, r.data, flags).unwrap();
            let packet = [&link[..], r.data].concat();
            let reference = pcap_file_epb(3, 2, T0, r.orig_len + 20, &packet, flags);
            assert_eq!(fast[1..], reference, "len {len} hook {hook}");
        }
    }
}

/// The same for pcap records: the header counts in both lengths and
/// against the snap length.
#[test]
fn put_record_with_sll2_matches_pcap_file() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapTsResolution, PcapWriter};
    use std::time::Duration;

    let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    let header = PcapHeader {
        snaplen: 1520,
        ts_resolution: PcapTsResolution::NanoSecond,
        endianness: pcap_file::Endianness::Little,
        ..PcapHeader::default()
    };
    for len in [0, 1, 92, 1500] {
        let mut r = record(T0, 3, Hook::LOCAL_OUT);
        r.data = &data[..len];
        r.orig_len = 1600;
        let link = sll2_header(&r);
        let mut fast = Vec::new();
        assert!(super::pcap::put_record(
            &mut fast, 1520, T0, 1600, &link, r.data
        ));
        let packet = [&link[..], r.data].concat();
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let p = PcapPacket::new(Duration::from_nanos(T0), 1620, &packet[..]).unwrap();
        w.write_packet(&p).unwrap();
        assert_eq!(fast, w.into_inner()[24..], "len {len}");
    }
    // 1500 bytes of IP fit a snap length of 1500 only without the header.
    let link = sll2_header(&record(T0, 3, Hook::LOCAL_OUT));
    let mut buf = Vec::new();
    assert!(!super::pcap::put_record(
        &mut buf,
        1500,
        T0,
        1600,
        &link,
        &data[..1500]
    ));
    assert!(buf.is_empty());
}

#[test]
fn sll2_header_fields() {
    let mut r = record(T0, 0x0102_0304, Hook::LOCAL_IN);
    let h = sll2_header(&r);
    assert_eq!(h[0..2], [0x08, 0x00], "IPv4 by family");
    assert_eq!(h[2..4], [0, 0]);
    assert_eq!(h[4..8], [1, 2, 3, 4], "ifindex, big-endian");
    assert_eq!(h[8..10], [0xff, 0xfe], "ARPHRD_NONE");
    assert_eq!(h[10..], [0; 10], "PACKET_HOST, no address");
    // The hook gives the packet type.
    for (hook, packet_type) in [
        (Hook::PRE_ROUTING, 0),
        (Hook::FORWARD, 0),
        (Hook::LOCAL_OUT, 4),
        (Hook::POST_ROUTING, 4),
        (Hook(200), 0),
    ] {
        r.hook = hook;
        assert_eq!(sll2_header(&r)[10], packet_type, "{hook}");
    }
    // The family first; without one the data's IP version.
    let v6 = [0x60u8, 0, 0, 0];
    r.family = Family::IPV6;
    assert_eq!(sll2_header(&r)[0..2], [0x86, 0xdd], "IPv6 by family");
    r.family = Family(0);
    assert_eq!(
        sll2_header(&r)[0..2],
        [0x08, 0x00],
        "IPv4 by version nibble"
    );
    r.data = &v6;
    assert_eq!(
        sll2_header(&r)[0..2],
        [0x86, 0xdd],
        "IPv6 by version nibble"
    );
    r.data = &[0x10];
    assert_eq!(sll2_header(&r)[0..2], [0, 0], "neither");
    r.data = &[];
    assert_eq!(sll2_header(&r)[0..2], [0, 0], "no data");
}

/// Snap lengths grow by the header, without overflowing; pcapng's 0 (no
/// limit) stays 0, pcap's fallback for a log without one grows too.
#[test]
fn snaplen_counts_the_header() {
    assert_eq!(LinkType::Sll2.snaplen(96), 116);
    assert_eq!(LinkType::Raw.snaplen(96), 96);
    assert_eq!(LinkType::Sll2.snaplen(0), 0);
    assert_eq!(LinkType::Sll2.snaplen(u32::MAX - 5), u32::MAX);

    let mut h = header();
    h.snaplen = 0;
    let mut out = Vec::new();
    let sink = PcapSink::new(&mut out, &h, LinkType::Sll2).unwrap();
    sink.finish(&ending(&h, Losses::default())).unwrap();
    assert_eq!(out[16..20], (65535u32 + 20).to_le_bytes());
}

/// An original length the header takes past 4 GiB saturates (a hand-made
/// log may claim anything up to u32::MAX).
#[test]
fn original_length_saturates() {
    let mut r = record(T0, 2, Hook::PRE_ROUTING);
    r.orig_len = u32::MAX - 3;
    let link = sll2_header(&r);
    let mut buf = Vec::new();
    super::pcapng::put_epb(&mut buf, 0, T0, r.orig_len, &link, &DATA, 0).unwrap();
    assert_eq!(buf[24..28], u32::MAX.to_le_bytes());
    buf.clear();
    assert!(super::pcap::put_record(
        &mut buf,
        u32::MAX,
        T0,
        r.orig_len,
        &link,
        &DATA
    ));
    assert_eq!(buf[12..16], u32::MAX.to_le_bytes());
}

#[test]
fn link_type_names_and_options() {
    assert_eq!("SLL2".parse::<LinkType>(), Ok(LinkType::Sll2));
    assert_eq!("raw".parse::<LinkType>(), Ok(LinkType::Raw));
    assert!("ether".parse::<LinkType>().is_err());
    assert_eq!(LinkType::default(), LinkType::Sll2);
    assert_eq!(
        (LinkType::Sll2.number(), LinkType::Raw.number()),
        (276, 101)
    );
    let o = ExportOptions::from(OnDamage::Skip);
    assert_eq!((o.on_damage, o.link_type), (OnDamage::Skip, LinkType::Sll2));
    let o = ExportOptions::from(LinkType::Raw);
    assert_eq!((o.on_damage, o.link_type), (OnDamage::Stop, LinkType::Raw));
}
