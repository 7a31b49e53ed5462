//! Golden bytes: the transport protocol of IP packets as NFLOG delivers
//! them (from the network header on), which `ip_protocol` derives as the
//! imp2 kernel module does with `ipv6_skip_exthdr` (kmod/imp2_capture.c,
//! `imp2_protocol`): IPv6 extension headers are skipped; a non-first
//! fragment, which carries no transport header, gives its fragment header's
//! next header (the datagram's protocol, as an IPv4 fragment's protocol
//! field says); no next header (59), a chain that runs past the captured bytes
//! (a snaplen cut) or fewer bytes than the IP header give 255, unknown.

use imp2_format::Family;
use imp2_format::ip::ip_protocol;
use imp2_format::nflog::{PacketMessage, consts};
use imp2_format::record::PROTO_UNKNOWN;

/// The 40-byte IPv6 header of fd00:199::1 -> fd00:199::2 with
/// `next_header` and a payload length of `payload_len`.
#[rustfmt::skip]
fn ipv6(next_header: u8, payload_len: u16) -> Vec<u8> {
    let [l0, l1] = payload_len.to_be_bytes();
    let mut p = vec![
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        l0, l1,                 // payload length
        next_header,            // next header
        0x40,                   // hop limit 64
    ];
    p.extend_from_slice(&[0xfd, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]); // src
    p.extend_from_slice(&[0xfd, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]); // dst
    p
}

/// A UDP header 9999 -> 9999 of a `len`-byte datagram (checksum not
/// checked here).
#[rustfmt::skip]
fn udp(len: u16) -> [u8; 8] {
    let [l0, l1] = len.to_be_bytes();
    [
        0x27, 0x0f, // source port 9999
        0x27, 0x0f, // destination port 9999
        l0, l1,     // length
        0x12, 0x34, // checksum
    ]
}

/// The first fragment of a 3000-byte UDP datagram: IPv6, fragment header,
/// UDP header and the first 1440 - 8 bytes of data.
#[rustfmt::skip]
fn first_fragment() -> Vec<u8> {
    let mut p = ipv6(44, 8 + 1440); // next header 44: Fragment
    p.extend_from_slice(&[
        17,                     // fragment header: next header UDP
        0x00,                   //   reserved
        0x00, 0x01,             //   offset 0, M (more fragments) 1
        0xde, 0xad, 0xbe, 0xef, //   identification
    ]);
    p.extend_from_slice(&udp(3008));
    p.resize(40 + 8 + 1440, 0xab);
    p
}

#[test]
fn first_fragment_gives_the_transport_protocol() {
    assert_eq!(ip_protocol(Family::IPV6, &first_fragment()), 17);
}

/// A later fragment has no transport header: it gets the protocol its
/// fragment header names (the datagram's), as every IPv4 fragment carries
/// it in its protocol field. It used to be 44, the fragment header itself,
/// so that imp2-info counted the later fragments of UDP as protocol `44`.
#[test]
#[rustfmt::skip]
fn non_first_fragment_gives_the_datagrams_protocol() {
    let mut p = ipv6(44, 8 + 1568);
    p.extend_from_slice(&[
        17,                     // fragment header: next header UDP
        0x00,                   //   reserved
        0x05, 0xa0,             //   offset 1440 / 8 = 180 (0x05a0 >> 3), M 0
        0xde, 0xad, 0xbe, 0xef, //   identification
    ]);
    p.resize(40 + 8 + 1568, 0xab); // data, no UDP header
    assert_eq!(ip_protocol(Family::IPV6, &p), 17);
    // The same for a TCP datagram: it is the header's field, not a constant.
    p[40] = 6;
    assert_eq!(ip_protocol(Family::IPV6, &p), 6);
    p[40] = 17;
    // An offset of 8 bytes (the lowest bit of the offset field) is enough;
    // the data after the header is not read (0xab would be ICMP-less junk).
    p[42] = 0x00;
    p[43] = 0x08;
    p[48] = 0x3a;
    assert_eq!(ip_protocol(Family::IPV6, &p), 17);
    // The M and reserved bits are not part of the offset: a first fragment,
    // whose chain goes on to the transport header.
    p[43] = 0x07;
    assert_eq!(ip_protocol(Family::IPV6, &p), 17);
}

#[test]
#[rustfmt::skip]
fn hop_by_hop_and_routing_headers_are_skipped() {
    let mut p = ipv6(0, 8 + 24 + 8 + 4); // next header 0: Hop-by-Hop Options
    p.extend_from_slice(&[
        43,                     // hop-by-hop: next header Routing
        0,                      //   length 0: (0 + 1) * 8 = 8 bytes
        0x05, 0x02, 0x00, 0x00, //   router alert option (MLD)
        0x01, 0x00,             //   PadN, 0 bytes
    ]);
    p.extend_from_slice(&[
        17,                     // routing: next header UDP
        2,                      //   length 2: (2 + 1) * 8 = 24 bytes
        0,                      //   routing type 0
        1,                      //   segments left 1
        0, 0, 0, 0,             //   reserved
    ]);
    p.extend_from_slice(&[0xfd, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03]); // via
    p.extend_from_slice(&udp(12));
    p.extend_from_slice(b"ping");
    assert_eq!(ip_protocol(Family::IPV6, &p), 17);
    // Destination options (60) are skipped alike.
    p[6] = 60;
    assert_eq!(ip_protocol(Family::IPV6, &p), 17);
}

#[test]
#[rustfmt::skip]
fn authentication_header_length_is_in_4_byte_units_plus_2() {
    let mut p = ipv6(51, 24 + 20); // next header 51: Authentication Header
    p.extend_from_slice(&[
        6,                      // AH: next header TCP
        4,                      //   payload length 4: (4 + 2) * 4 = 24 bytes
        0x00, 0x00,             //   reserved
        0x00, 0x00, 0x10, 0x01, //   SPI
        0x00, 0x00, 0x00, 0x07, //   sequence number
    ]);
    p.extend_from_slice(&[0x11; 12]); // ICV (HMAC-SHA1-96)
    p.extend_from_slice(&[0x1f, 0x90, 0xc3, 0x50]); // TCP: ports 8080 -> 50000
    p.resize(40 + 24 + 20, 0);
    assert_eq!(ip_protocol(Family::IPV6, &p), 6);
    // Read as 8-byte units ((4 + 1) * 8 = 40) the walk would land in the
    // TCP header: the AH's own rule matters.
    assert_eq!(p[40 + 24], 0x1f);
}

#[test]
#[rustfmt::skip]
fn esp_and_no_next_header_end_the_chain() {
    let mut p = ipv6(0, 8 + 8);
    p.extend_from_slice(&[50, 0, 0x01, 0x04, 0, 0, 0, 0]); // hop-by-hop -> ESP, 8 bytes
    p.extend_from_slice(&[0x00, 0x00, 0x10, 0x01, 0, 0, 0, 1]); // ESP: SPI, sequence
    assert_eq!(ip_protocol(Family::IPV6, &p), 50, "ESP is the protocol");
    p[40] = 59; // hop-by-hop -> No Next Header
    assert_eq!(ip_protocol(Family::IPV6, &p), PROTO_UNKNOWN);
}

/// A snaplen that cuts the chain: unknown, never the last extension header
/// reached (44 would name the fragment header, 0 hop-by-hop, as protocols).
#[test]
fn a_chain_cut_by_the_snaplen_is_unknown() {
    let p = first_fragment();
    for cut in 0..44 {
        assert_eq!(
            ip_protocol(Family::IPV6, &p[..cut]),
            PROTO_UNKNOWN,
            "cut {cut}"
        );
    }
    // The fragment header's next header and offset are read from its first
    // 4 bytes; the walk then ends at the transport header, whose bytes
    // need not be there.
    for cut in 44..=p.len() {
        assert_eq!(ip_protocol(Family::IPV6, &p[..cut]), 17, "cut {cut}");
    }
}

#[test]
#[rustfmt::skip]
fn ipv4_takes_the_protocol_field() {
    let mut p = vec![
        0x45, 0x00,             // version 4, IHL 5, TOS 0
        0x00, 0x1c,             // total length 28
        0x12, 0x34,             // identification
        0x20, 0x00,             // MF set, offset 0: a first fragment
        0x40,                   // TTL 64
        17,                     // protocol UDP
        0x00, 0x00,             // header checksum
        10, 199, 0, 1,          // source
        10, 199, 0, 2,          // destination
    ];
    p.extend_from_slice(&udp(8));
    assert_eq!(ip_protocol(Family::IPV4, &p), 17);
    // A later fragment keeps its protocol field (IPv4 has no chain).
    p[6] = 0x00;
    p[7] = 0xb9;
    assert_eq!(ip_protocol(Family::IPV4, &p), 17);
    // The protocol is the 10th byte: 10 captured bytes are enough.
    assert_eq!(ip_protocol(Family::IPV4, &p[..10]), 17);
    assert_eq!(ip_protocol(Family::IPV4, &p[..9]), PROTO_UNKNOWN);
}

/// What the NFLOG source records: the record of a decoded message carries
/// the protocol after the chain.
#[test]
fn nflog_records_carry_the_protocol_after_the_chain() {
    let payload = first_fragment();
    let message = PacketMessage {
        family: consts::AF_INET6,
        group: 5,
        hw_protocol: 0x86dd,
        hook: 1,
        indev: Some(2),
        payload: Some(&payload),
        ..PacketMessage::default()
    };
    let mut bytes = Vec::new();
    message.emit(&mut bytes);
    let parsed = PacketMessage::parse(&bytes[16..], 16).unwrap();
    let record = parsed.to_record(0).unwrap();
    assert_eq!(record.family, Family::IPV6);
    assert_eq!(record.protocol, 17);
    assert_eq!(record.orig_len, 40 + 8 + 1440);
}
