//! Golden-byte tests of the encoders, driven through the sinks directly (no
//! log needed), and a read-back with `pcap-file`'s parser.

use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::blocks::interface_statistics::InterfaceStatisticsOption;
use pcap_file::pcapng::{Block, PcapNgReader};

use super::pcap::PcapSink;
use super::pcapng::PcapngSink;
use super::*;
use crate::record::{Family, Hook, PacketRecord};

/// 2023-11-14T22:13:20.123456789Z
pub(super) const T0: u64 = 1_700_000_000_123_456_789;

pub(super) fn header() -> LogHeader {
    LogHeader {
        created_ns: T0 - 1_000,
        snaplen: 96,
        source: "imp2 module unit 31".into(),
        hostname: "box".into(),
        kernel_release: "6.1.0-test".into(),
        tsresol_digits: 9,
        interfaces: vec![Interface {
            ifindex: 2,
            name: "eth0".into(),
        }],
    }
}

pub(super) const DATA: [u8; 5] = [0x45, 0x00, 0x00, 0x3c, 0x12];

pub(super) fn record(ts: u64, ifindex: u32, hook: Hook) -> PacketRecord<'static> {
    PacketRecord {
        tstamp_ns: ts,
        ifindex,
        orig_len: 60,
        hook,
        family: Family::IPV4,
        protocol: 17,
        data: &DATA,
    }
}

/// When the logs of [`ending`] were closed: after every packet of a test.
const CLOSED_NS: u64 = T0 + 5_000_000_000;

/// The end of a cleanly closed log (a footer) with these losses.
pub(super) fn ending(header: &LogHeader, losses: Losses) -> Ending<'_> {
    // Leaked: a test's one footer, borrowed for the `Ending`'s lifetime.
    let footer: &'static Footer = Box::leak(Box::new(Footer {
        closed_ns: CLOSED_NS,
        ..Footer::default()
    }));
    Ending {
        header,
        losses,
        footer: Some(footer),
        damage: None,
        skipped: &[],
        lost_to_damage: None,
    }
}

/// The EPB of `LINKTYPE_RAW`: the IP packet alone (the SLL2 form is in
/// `link_tests`).
#[test]
fn epb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h, LinkType::Raw).unwrap();
    sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
    sink.flush_buffer().unwrap();
    drop(sink);
    // SHB and one IDB come first; the EPB is the last 52 bytes.
    let epb = &out[out.len() - 52..];
    #[rustfmt::skip]
    let golden: [u8; 52] = [
        0x06, 0x00, 0x00, 0x00, // block type 6: EPB
        0x34, 0x00, 0x00, 0x00, // block total length 52
        0x00, 0x00, 0x00, 0x00, // interface id 0 (eth0, from the header)
        0xfe, 0x9c, 0x97, 0x17, // timestamp high: T0 >> 32 = 0x17979cfe
        0x15, 0xcd, 0x85, 0x3d, // timestamp low: T0 & 0xffffffff = 0x3d85cd15
                                //   (units of if_tsresol = 10^-9 s: exact ns)
        0x05, 0x00, 0x00, 0x00, // captured length 5
        0x3c, 0x00, 0x00, 0x00, // original length 60
        0x45, 0x00, 0x00, 0x3c, // packet data (5 bytes)
        0x12, 0x00, 0x00, 0x00, //   + 3 bytes padding to 32 bits
        0x02, 0x00, 0x04, 0x00, // option epb_flags (2), length 4
        0x01, 0x00, 0x00, 0x00, //   direction 01 = inbound (pre-routing)
        0x00, 0x00, 0x00, 0x00, // opt_endofopt
        0x34, 0x00, 0x00, 0x00, // block total length 52, again
    ];
    assert_eq!(epb, golden);
}

/// An IDB of `LINKTYPE_RAW` (the SLL2 form is in `link_tests`).
#[test]
fn idb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    PcapngSink::new(&mut out, &h, LinkType::Raw)
        .unwrap()
        .flush_buffer()
        .unwrap();
    // The IDB is the last block: find it by its trailing length.
    let len = u32::from_le_bytes(out[out.len() - 4..].try_into().unwrap()) as usize;
    let idb = &out[out.len() - len..];
    #[rustfmt::skip]
    let golden: &[u8] = &[
        0x01, 0x00, 0x00, 0x00, // block type 1: IDB
        0x38, 0x00, 0x00, 0x00, // block total length 56
        0x65, 0x00, 0x00, 0x00, // linktype 101 (LINKTYPE_RAW), reserved 0
        0x60, 0x00, 0x00, 0x00, // snaplen 96
        0x02, 0x00, 0x04, 0x00, // option if_name (2), length 4
        b'e', b't', b'h', b'0',
        0x03, 0x00, 0x09, 0x00, // option if_description (3), length 9
        b'i', b'f', b'i', b'n', //   "ifindex 2"
        b'd', b'e', b'x', b' ',
        b'2', 0x00, 0x00, 0x00, //   + 3 bytes padding
        0x09, 0x00, 0x01, 0x00, // option if_tsresol (9), length 1
        0x09, 0x00, 0x00, 0x00, //   9: 10^-9 s, + 3 bytes padding
        0x00, 0x00, 0x00, 0x00, // opt_endofopt
        0x38, 0x00, 0x00, 0x00, // block total length 56, again
    ];
    assert_eq!(idb, golden);
}

/// A pcap file of `LINKTYPE_RAW` (the SLL2 form is in `link_tests`).
#[test]
fn pcap_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapSink::new(&mut out, &h, LinkType::Raw).unwrap();
    sink.record(0, &record(T0, 2, Hook::LOCAL_OUT)).unwrap();
    sink.finish(&ending(&h, Losses::default())).unwrap();
    #[rustfmt::skip]
    let golden: &[u8] = &[
        // global header
        0x4d, 0x3c, 0xb2, 0xa1, // magic 0xa1b23c4d: nanosecond pcap, little-endian
        0x02, 0x00, 0x04, 0x00, // version 2.4
        0x00, 0x00, 0x00, 0x00, // thiszone 0
        0x00, 0x00, 0x00, 0x00, // sigfigs 0
        0x60, 0x00, 0x00, 0x00, // snaplen 96
        0x65, 0x00, 0x00, 0x00, // network 101 (LINKTYPE_RAW)
        // record header
        0x00, 0xf1, 0x53, 0x65, // ts_sec 1700000000
        0x15, 0xcd, 0x5b, 0x07, // ts_nsec 123456789
        0x05, 0x00, 0x00, 0x00, // incl_len 5
        0x3c, 0x00, 0x00, 0x00, // orig_len 60
        // data, unpadded
        0x45, 0x00, 0x00, 0x3c, 0x12,
    ];
    assert_eq!(out, golden);
}

#[test]
fn pcap_refuses_data_longer_than_snaplen() {
    let mut h = header();
    h.snaplen = 4;
    let mut out = Vec::new();
    let mut sink = PcapSink::new(&mut out, &h, LinkType::default()).unwrap();
    let err = sink.record(7, &record(T0, 2, Hook::LOCAL_OUT)).unwrap_err();
    assert!(
        matches!(err, ExportError::Encode { packet: 7, .. }),
        "{err}"
    );
}

/// Writes a small file through the pcapng sink and reads it back with
/// `pcap-file`'s parser: exact nanoseconds, interfaces (header, frame,
/// unnamed), direction flags, ISB counters and the loss comment.
#[test]
fn pcapng_reads_back() {
    let h = header();
    let mut losses = Losses::default();
    losses.kernel[1] = 10; // rcvbuf
    losses.gap_records = 2;
    losses.gap_batches = 1;
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h, LinkType::Sll2).unwrap();
    sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
    sink.interface(&Interface {
        ifindex: 5,
        name: "wg0".into(),
    })
    .unwrap();
    // Same name again: no new IDB.
    sink.interface(&Interface {
        ifindex: 5,
        name: "wg0".into(),
    })
    .unwrap();
    sink.record(1, &record(T0 + 1, 5, Hook::LOCAL_OUT)).unwrap();
    sink.record(2, &record(T0 + 999_999_999, 9, Hook(7)))
        .unwrap();
    sink.record(3, &record(T0 + 2, 2, Hook::LOCAL_OUT)).unwrap();
    let n = sink.finish(&ending(&h, losses)).unwrap();
    // Three interfaces with packets, and `any` for the run's losses.
    assert_eq!(n, 4);

    let mut reader = PcapNgReader::new(&out[..]).unwrap();
    let mut names = Vec::new();
    let mut packets = Vec::new();
    let mut isbs = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.unwrap().0 {
            Block::InterfaceDescription(idb) => {
                assert_eq!(u32::from(idb.linktype), LINKTYPE_LINUX_SLL2);
                assert_eq!(idb.snaplen, 96 + 20);
                assert_eq!(idb.ts_resolution().resolution(), 9);
                for o in &idb.options {
                    if let InterfaceDescriptionOption::IfName(n) = o {
                        names.push(n.to_string());
                    }
                }
            }
            Block::EnhancedPacket(epb) => {
                let flags = epb.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Flags(f) => Some(*f),
                    _ => None,
                });
                packets.push((epb.interface_id, epb.timestamp, flags));
            }
            Block::InterfaceStatistics(isb) => isbs.push(isb.into_owned()),
            _ => {}
        }
    }
    assert_eq!(names, ["eth0", "wg0", "if9", "any"]);
    let ns = Duration::from_nanos;
    assert_eq!(
        packets,
        [
            (0, ns(T0), Some(1)),
            (1, ns(T0 + 1), Some(2)),
            (2, ns(T0 + 999_999_999), Some(0)),
            (0, ns(T0 + 2), Some(2)),
        ]
    );
    assert_eq!(isbs.len(), 4);
    let opt = |i: usize, f: &dyn Fn(&InterfaceStatisticsOption) -> Option<u64>| {
        isbs[i].options.iter().find_map(f).unwrap()
    };
    let osdrop = |o: &InterfaceStatisticsOption| match o {
        InterfaceStatisticsOption::IsbOsDrop(v) => Some(*v),
        _ => None,
    };
    let ifrecv = |o: &InterfaceStatisticsOption| match o {
        InterfaceStatisticsOption::IsbIfRecv(v) => Some(*v),
        _ => None,
    };
    let start = |o: &InterfaceStatisticsOption| match o {
        InterfaceStatisticsOption::IsbStartTime(v) => Some(v.as_nanos() as u64),
        _ => None,
    };
    let end = |o: &InterfaceStatisticsOption| match o {
        InterfaceStatisticsOption::IsbEndTime(v) => Some(v.as_nanos() as u64),
        _ => None,
    };
    // The real interfaces are charged nothing; `any` carries the run's 12.
    assert_eq!((opt(0, &osdrop), opt(0, &ifrecv)), (0, 2));
    assert_eq!((opt(1, &osdrop), opt(1, &ifrecv)), (0, 1));
    assert_eq!((opt(3, &osdrop), opt(3, &ifrecv)), (12, 12));
    // `any` has no packets of its own: it spans the recording, to its close.
    assert!(opt(3, &start) <= T0);
    assert_eq!(opt(3, &end), CLOSED_NS);
    assert_eq!((opt(0, &start), opt(0, &end)), (T0, T0 + 2));
    assert_eq!(
        (opt(2, &start), opt(2, &end)),
        (T0 + 999_999_999, T0 + 999_999_999)
    );
    let comment = isbs[3]
        .options
        .iter()
        .find_map(|o| match o {
            InterfaceStatisticsOption::Common(
                pcap_file::pcapng::blocks::opt_common::CommonOption::Comment(c),
            ) if c.contains("losses") => Some(c.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(
        comment.contains("12 records lost (kernel_rcvbuf 10, gap_records 2; gap_batches 1)"),
        "{comment}"
    );
}

#[test]
fn renamed_interface_gets_a_new_idb() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h, LinkType::default()).unwrap();
    sink.record(0, &record(T0, 4, Hook::PRE_ROUTING)).unwrap();
    sink.interface(&Interface {
        ifindex: 4,
        name: "veth1".into(),
    })
    .unwrap();
    sink.record(1, &record(T0 + 5, 4, Hook::PRE_ROUTING))
        .unwrap();
    assert_eq!(sink.finish(&ending(&h, Losses::default())).unwrap(), 3);
    let mut reader = PcapNgReader::new(&out[..]).unwrap();
    let mut ids = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(epb) = block.unwrap().0 {
            ids.push(epb.interface_id);
        }
    }
    // eth0 = 0 (header), if4 = 1 (unnamed at first), veth1 = 2.
    assert_eq!(ids, [1, 2]);
}

#[test]
fn no_interface_but_losses_gets_an_any_idb() {
    let mut h = header();
    h.interfaces.clear();
    let mut losses = Losses::default();
    losses.kernel[0] = 3;
    let mut out = Vec::new();
    let sink = PcapngSink::new(&mut out, &h, LinkType::default()).unwrap();
    assert_eq!(sink.finish(&ending(&h, losses)).unwrap(), 1);
    let mut reader = PcapNgReader::new(&out[..]).unwrap();
    let mut drops = None;
    while let Some(block) = reader.next_block() {
        if let Block::InterfaceStatistics(isb) = block.unwrap().0 {
            drops = isb.options.iter().find_map(|o| match o {
                InterfaceStatisticsOption::IsbOsDrop(v) => Some(*v),
                _ => None,
            });
        }
    }
    assert_eq!(drops, Some(3));
}

#[test]
fn format_from_path_and_name() {
    use std::path::Path;
    assert_eq!(
        Format::from_path(Path::new("a.pcapng")),
        Some(Format::Pcapng)
    );
    assert_eq!(Format::from_path(Path::new("a.PCAP")), Some(Format::Pcap));
    assert_eq!(Format::from_path(Path::new("a.cap")), None);
    assert_eq!(Format::from_path(Path::new("-")), None);
    assert!("json".parse::<Format>().is_err());
}

#[test]
fn time_formatting() {
    assert_eq!(format_time_ns(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(format_time_ns(T0), "2023-11-14T22:13:20.123456789Z");
    // 2000-02-29 (leap day) 23:59:59.999999999
    assert_eq!(
        format_time_ns(951_868_799_999_999_999),
        "2000-02-29T23:59:59.999999999Z"
    );
}

#[test]
fn epb_flags_by_hook() {
    assert_eq!(epb_flags(Hook::PRE_ROUTING), 1);
    assert_eq!(epb_flags(Hook::LOCAL_OUT), 2);
    assert_eq!(epb_flags(Hook::LOCAL_IN), 1);
    assert_eq!(epb_flags(Hook::FORWARD), 1);
    assert_eq!(epb_flags(Hook::POST_ROUTING), 2);
    assert_eq!(epb_flags(Hook(7)), 0);
}

/// Pins what the pinned pcap-file (3.0.0-rc.3) does with times, the reason
/// the exporter always writes `if_tsresol`: it encodes an EPB's `Duration`
/// in the units of its interface's `if_tsresol`, and without that option
/// uses microseconds, silently dropping the last three digits (2.0.0 wrote
/// raw nanoseconds whatever the option said, 1000x off for readers).
#[test]
fn pcap_file_encodes_times_in_if_tsresol_units() {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceTsResolution,
    };

    let raw_time = |tsresol: Option<InterfaceTsResolution>| {
        let mut w = PcapNgWriter::new(Vec::new()).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::RAW, 0);
        if let Some(r) = tsresol {
            idb.options.push(InterfaceDescriptionOption::IfTsResol(r));
        }
        w.write_pcapng_block(idb).unwrap();
        let before = w.get_ref().len();
        w.write_pcapng_block(EnhancedPacketBlock {
            timestamp: Duration::from_nanos(T0),
            ..Default::default()
        })
        .unwrap();
        let epb = &w.get_ref()[before..];
        let hi = u32::from_ne_bytes(epb[12..16].try_into().unwrap());
        let lo = u32::from_ne_bytes(epb[16..20].try_into().unwrap());
        (u64::from(hi) << 32) | u64::from(lo)
    };
    assert_eq!(raw_time(Some(InterfaceTsResolution::NANO)), T0);
    assert_eq!(raw_time(None), T0 / 1000, "no if_tsresol: microseconds");
}

/// Through a real log: the report counts packets, takes the footer's
/// losses, and stops at damage with everything before it written.
#[test]
fn export_reports_how_it_ended() {
    use crate::log::{LogReader, LogWriter, ReadErrorKind};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut w = LogWriter::create(&path, &header()).unwrap();
    for i in 0..10 {
        w.append(&record(T0 + i, 2, Hook::PRE_ROUTING)).unwrap();
        if i % 5 == 4 {
            w.commit().unwrap();
        }
    }
    let delta = Losses {
        gap_records: 3,
        ..Losses::default()
    };
    w.add_losses(&delta).unwrap();
    w.finish(T0 + 100).unwrap();

    let reader = LogReader::open(&path).unwrap();
    for format in [Format::Pcapng, Format::Pcap] {
        let mut out = Vec::new();
        let report = export(&reader, format, &mut out).unwrap();
        assert_eq!(report.packets, 10);
        assert!(report.closed && report.is_complete());
        assert_eq!(report.losses.records(), 3);
        // pcapng: eth0, and `any` for the run's losses.
        assert_eq!(report.interfaces, 2 * u32::from(format == Format::Pcapng));
    }

    // Damage the second frame: the first five packets are still exported.
    let mut bytes = std::fs::read(&path).unwrap();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let first_len = 12 + u32::from_le_bytes(bytes[header_len..header_len + 4].try_into().unwrap());
    let second = header_len + first_len as usize;
    bytes[second + 20] ^= 1;
    let reader = LogReader::from_bytes(bytes).unwrap();
    let mut out = Vec::new();
    let report = export_pcap(&reader, &mut out).unwrap();
    assert_eq!(report.packets, 5);
    assert!(!report.closed);
    let damage = report.damage.expect("damage reported");
    assert_eq!(damage.offset, second as u64);
    assert!(matches!(damage.kind, ReadErrorKind::BadChecksum { .. }));
    assert_eq!(out.len(), 24 + 5 * (16 + SLL2_HEADER_LEN + DATA.len()));
    assert!(read_error_reason(&damage.kind).starts_with("damaged frame: checksum mismatch"));
}

/// The same EPB through `pcap-file`'s encoder, the reference for
/// [`super::pcapng::put_epb`]: a section with `ids` IDBs, all with
/// `if_tsresol` = 9 as the exporter writes them.
pub(super) fn pcap_file_epb(
    ids: u32,
    id: u32,
    ts: u64,
    orig_len: u32,
    data: &[u8],
    flags: u32,
) -> Vec<u8> {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceTsResolution,
    };
    use std::borrow::Cow;

    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    for _ in 0..ids {
        let mut idb = InterfaceDescriptionBlock::new(DataLink::RAW, 0);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(
            InterfaceTsResolution::NANO,
        ));
        w.write_pcapng_block(idb).unwrap();
    }
    let before = w.get_ref().len();
    w.write_pcapng_block(EnhancedPacketBlock {
        interface_id: id,
        timestamp: Duration::from_nanos(ts),
        original_len: orig_len,
        data: Cow::Borrowed(data),
        options: vec![EnhancedPacketOption::Flags(flags)],
    })
    .unwrap();
    w.get_ref()[before..].to_vec()
}

/// The hand-written EPB encoder writes exactly what `pcap-file`'s does,
/// for every padding, direction, interface and the extreme timestamps.
#[test]
fn put_epb_matches_pcap_file() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    let mut n = 0;
    for len in (0..=9).chain([92, 1399, 1400, 1500]) {
        for flags in [0, EPB_FLAGS_INBOUND, EPB_FLAGS_OUTBOUND] {
            for (id, ts) in [(0, 0), (1, T0), (2, u64::from(u32::MAX)), (2, u64::MAX)] {
                let d = &data[..len];
                let orig = len as u32 + 7;
                let mut fast = vec![0xAA]; // appends after what is there
                super::pcapng::put_epb(&mut fast, id, ts, orig, &[], d, flags).unwrap();
                let reference = pcap_file_epb(3, id, ts, orig, d, flags);
                assert_eq!(
                    fast[1..],
                    reference,
                    "len {len} flags {flags} id {id} ts {ts}"
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 14 * 3 * 4);
}

/// A second golden EPB: data already 32-bit aligned (no padding), an
/// unknown hook (flags 0) on the second interface.
#[test]
fn epb_golden_bytes_unpadded() {
    let mut out = Vec::new();
    super::pcapng::put_epb(
        &mut out,
        1,
        0x0000_0001_0000_0002,
        1500,
        &[],
        &[0x60, 0, 0, 0],
        0,
    )
    .unwrap();
    #[rustfmt::skip]
    let golden: [u8; 48] = [
        0x06, 0x00, 0x00, 0x00, // block type 6: EPB
        0x30, 0x00, 0x00, 0x00, // block total length 48
        0x01, 0x00, 0x00, 0x00, // interface id 1
        0x01, 0x00, 0x00, 0x00, // timestamp high word: 1
        0x02, 0x00, 0x00, 0x00, // timestamp low word: 2 (= 2^32 + 2 ns)
        0x04, 0x00, 0x00, 0x00, // captured length 4
        0xdc, 0x05, 0x00, 0x00, // original length 1500
        0x60, 0x00, 0x00, 0x00, // packet data (4 bytes, no padding)
        0x02, 0x00, 0x04, 0x00, // option epb_flags (2), length 4
        0x00, 0x00, 0x00, 0x00, //   0: direction not available
        0x00, 0x00, 0x00, 0x00, // opt_endofopt
        0x30, 0x00, 0x00, 0x00, // block total length 48, again
    ];
    assert_eq!(out, golden);
}

/// The hand-written pcap record encoder writes what `pcap-file`'s does,
/// and leaves what `pcap-file` refuses to it.
#[test]
fn put_record_matches_pcap_file() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapTsResolution, PcapWriter};

    let data: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    let header = PcapHeader {
        snaplen: 1500,
        ts_resolution: PcapTsResolution::NanoSecond,
        endianness: pcap_file::Endianness::Little,
        ..PcapHeader::default()
    };
    let last_ts = u64::from(u32::MAX) * 1_000_000_000 + 999_999_999;
    for len in (0..=5).chain([92, 1400, 1500]) {
        for ts in [0, T0, last_ts] {
            let d = &data[..len];
            let mut fast = Vec::new();
            assert!(super::pcap::put_record(&mut fast, 1500, ts, 1600, &[], d));
            let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
            let p = PcapPacket::new(Duration::from_nanos(ts), 1600, d).unwrap();
            w.write_packet(&p).unwrap();
            assert_eq!(fast, w.into_inner()[24..], "len {len} ts {ts}");
        }
    }
    let mut buf = Vec::new();
    // Past 2106, longer than the snap length, longer than the original.
    assert!(!super::pcap::put_record(
        &mut buf,
        1500,
        last_ts + 1,
        10,
        &[],
        &data[..1]
    ));
    assert!(!super::pcap::put_record(
        &mut buf,
        4,
        T0,
        10,
        &[],
        &data[..5]
    ));
    assert!(!super::pcap::put_record(
        &mut buf,
        1500,
        T0,
        4,
        &[],
        &data[..5]
    ));
    assert!(buf.is_empty());
}

#[test]
fn pcap_refuses_times_past_2106() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapSink::new(&mut out, &h, LinkType::default()).unwrap();
    let late = (u64::from(u32::MAX) + 1) * 1_000_000_000;
    let err = sink
        .record(3, &record(late, 2, Hook::LOCAL_OUT))
        .unwrap_err();
    let ExportError::Encode { packet, reason } = err else {
        panic!("{err}");
    };
    assert_eq!(packet, 3);
    assert!(reason.to_lowercase().contains("timestamp"), "{reason}");
}

/// A log of every kind of frame, for the threaded exporter.
fn sample_log(dir: &std::path::Path) -> LogReader {
    use crate::log::LogWriter;

    let path = dir.join("t.log");
    let h = LogHeader {
        snaplen: 1500,
        ..header()
    };
    let mut w = LogWriter::create(&path, &h).unwrap();
    let big: Vec<u8> = (0..=255u8).cycle().take(1400).collect();
    for i in 0..20_000u64 {
        let mut r = record(T0 + i * 1000, 2 + (i % 3) as u32, Hook((i % 5) as u8));
        if i % 4 == 0 {
            r.data = &big[..(i as usize % 1400)];
            r.orig_len = 1400;
        }
        w.append(&r).unwrap();
        if i % 500 == 499 {
            w.commit().unwrap();
        }
        if i == 7_000 {
            w.add_interface(&Interface {
                ifindex: 3,
                name: "wg0".into(),
            })
            .unwrap();
        }
    }
    w.finish(T0 + 99_999_999).unwrap();
    LogReader::open(&path).unwrap()
}

/// The writer thread changes where the writes happen, not what is
/// written.
#[test]
fn threaded_export_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let reader = sample_log(dir.path());
    for format in [Format::Pcapng, Format::Pcap] {
        let mut direct = Vec::new();
        let a = export(&reader, format, &mut direct).unwrap();
        let mut threaded = Vec::new();
        let b = export_threaded(&reader, format, &mut threaded).unwrap();
        assert_eq!(a.packets, 20_000);
        assert_eq!((a.packets, a.interfaces), (b.packets, b.interfaces));
        assert!(direct.len() > 4 * (256 << 10), "several hand-overs");
        assert!(direct == threaded, "{format}: outputs differ");
    }
}

/// An output that fails after `left` bytes, like a full disk.
struct FailAfter {
    left: usize,
}

impl std::io::Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A write error on the writer thread ends the export with that error,
/// whether it happens early or at the very end.
#[test]
fn threaded_export_reports_the_write_error() {
    let dir = tempfile::tempdir().unwrap();
    let reader = sample_log(dir.path());
    let mut full = Vec::new();
    export(&reader, Format::Pcapng, &mut full).unwrap();
    for left in [0, 100, 300 << 10, full.len() - 1] {
        let err = export_threaded(&reader, Format::Pcapng, FailAfter { left }).unwrap_err();
        match err {
            ExportError::Io(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}"),
            other => panic!("{other}"),
        }
    }
    export_threaded(&reader, Format::Pcapng, FailAfter { left: full.len() }).unwrap();
}

/// Loss counters come from the file, so a log may claim more than a u64
/// holds in total (found by the `log_sealed` fuzz target: the sum of the
/// kernel counters overflowed). The totals saturate; the export completes.
#[test]
fn export_of_absurd_loss_counters_saturates() {
    use crate::log::{LogReader, LogWriter};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut w = LogWriter::create(&path, &header()).unwrap();
    w.append(&record(T0, 2, Hook::PRE_ROUTING)).unwrap();
    w.commit().unwrap();
    let delta = Losses {
        kernel: [u64::MAX - 1, 1, 1, 0],
        gap_records: u64::MAX,
        ..Losses::default()
    };
    // Twice: the deltas' sum overflows as well as each one's total.
    w.add_losses(&delta).unwrap();
    w.add_losses(&delta).unwrap();
    drop(w); // no footer: the export sums the LOSSES frames

    let reader = LogReader::open(&path).unwrap();
    for format in [Format::Pcapng, Format::Pcap] {
        let report = export(&reader, format, std::io::sink()).unwrap();
        assert_eq!(report.packets, 1);
        assert_eq!(report.losses.kernel[0], u64::MAX);
        assert_eq!(report.losses.gap_records, u64::MAX);
        assert_eq!(report.losses.records(), u64::MAX);
        assert!(losses_summary(&report.losses).starts_with("18446744073709551615 records lost"));
    }
}

/// A log may name its host or an interface with more bytes than a pcapng
/// option holds (found by the `log_sealed` fuzz target, which made the
/// export fail with pcap-file's "option too big"). Such strings are cut at
/// a character boundary and marked; the export completes and reads back.
#[test]
fn strings_longer_than_an_option_are_cut() {
    use super::pcapng::MAX_OPTION_LEN;
    use pcap_file::pcapng::blocks::opt_common::CommonOption;
    use pcap_file::pcapng::blocks::section_header::SectionHeaderOption;

    let mut h = header();
    // Two bytes per character, and an odd number of bytes before it, so the
    // limit falls inside a character.
    h.hostname = "é".repeat(40_000);
    h.interfaces[0].name = "x".repeat(70_000);
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h, LinkType::default()).unwrap();
    sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
    assert_eq!(sink.finish(&ending(&h, Losses::default())).unwrap(), 1);

    let mut reader = PcapNgReader::new(&out[..]).unwrap();
    let comment = reader
        .section()
        .options
        .iter()
        .find_map(|o| match o {
            SectionHeaderOption::Common(CommonOption::Comment(c)) => Some(c.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(comment.starts_with("imp2 log, source imp2 module unit 31, host éé"));
    assert!(
        comment.ends_with("é..."),
        "{}",
        &comment[comment.len() - 8..]
    );
    // The longest whole-character prefix that leaves room for the mark.
    assert_eq!(comment.len(), MAX_OPTION_LEN - 1);
    let mut names = Vec::new();
    let mut packets = 0;
    while let Some(block) = reader.next_block() {
        match block.unwrap().0 {
            Block::InterfaceDescription(idb) => {
                for o in &idb.options {
                    if let InterfaceDescriptionOption::IfName(n) = o {
                        names.push(n.to_string());
                    }
                }
            }
            Block::EnhancedPacket(_) => packets += 1,
            _ => {}
        }
    }
    assert_eq!(packets, 1);
    assert_eq!(names.len(), 1);
    assert_eq!(names[0].len(), MAX_OPTION_LEN);
    assert!(names[0].ends_with("xxx..."));
}

/// A recording cut short by a write error says so in the `any` interface's
/// statistics; one stopped on request adds nothing (no `any` without
/// something to report).
#[test]
fn a_run_cut_short_is_noted_and_a_requested_stop_is_not() {
    use crate::log::{StopCause, StopReason};
    let h = header();
    let comments_of = |stop: StopReason| {
        let footer = Footer {
            closed_ns: CLOSED_NS,
            stop: Some(stop),
            ..Footer::default()
        };
        let mut out = Vec::new();
        let mut sink = PcapngSink::new(&mut out, &h, LinkType::default()).unwrap();
        sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
        let end = Ending {
            footer: Some(&footer),
            ..ending(&h, Losses::default())
        };
        let idbs = sink.finish(&end).unwrap();
        let mut reader = PcapNgReader::new(&out[..]).unwrap();
        let mut comments = Vec::new();
        while let Some(block) = reader.next_block() {
            if let Block::InterfaceStatistics(isb) = block.unwrap().0 {
                for o in &isb.options {
                    if let InterfaceStatisticsOption::Common(
                        pcap_file::pcapng::blocks::opt_common::CommonOption::Comment(c),
                    ) = o
                    {
                        comments.push(c.to_string());
                    }
                }
            }
        }
        (idbs, comments)
    };
    let (idbs, comments) = comments_of(StopReason::new(
        StopCause::WriteError,
        "No space left on device",
    ));
    assert_eq!(idbs, 2, "eth0 and any");
    assert_eq!(
        comments,
        ["recording ended early: write error: No space left on device"]
    );
    let (idbs, comments) = comments_of(StopReason::new(StopCause::Signal, "SIGINT"));
    assert_eq!((idbs, comments.len()), (1, 0));
}
