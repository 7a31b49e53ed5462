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
const T0: u64 = 1_700_000_000_123_456_789;

fn header() -> LogHeader {
    LogHeader {
        version: (1, 0),
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

const DATA: [u8; 5] = [0x45, 0x00, 0x00, 0x3c, 0x12];

fn record(ts: u64, ifindex: u32, hook: Hook) -> PacketRecord<'static> {
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

fn ending(header: &LogHeader, losses: Losses) -> Ending<'_> {
    Ending {
        header,
        losses,
        footer: None,
        damage: None,
    }
}

#[test]
fn epb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapngSink::new(&mut out, &h).unwrap();
    sink.record(0, &record(T0, 2, Hook::PRE_ROUTING)).unwrap();
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

#[test]
fn idb_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    PcapngSink::new(&mut out, &h).unwrap();
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

#[test]
fn pcap_golden_bytes() {
    let h = header();
    let mut out = Vec::new();
    let mut sink = PcapSink::new(&mut out, &h).unwrap();
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
    let mut sink = PcapSink::new(&mut out, &h).unwrap();
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
    let mut sink = PcapngSink::new(&mut out, &h).unwrap();
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
    assert_eq!(n, 3);

    let mut reader = PcapNgReader::new(&out[..]).unwrap();
    let mut names = Vec::new();
    let mut packets = Vec::new();
    let mut isbs = Vec::new();
    while let Some(block) = reader.next_block() {
        match block.unwrap().0 {
            Block::InterfaceDescription(idb) => {
                assert_eq!(u32::from(idb.linktype), LINKTYPE_RAW);
                assert_eq!(idb.snaplen, 96);
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
    assert_eq!(names, ["eth0", "wg0", "if9"]);
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
    assert_eq!(isbs.len(), 3);
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
    assert_eq!((opt(0, &osdrop), opt(0, &ifrecv)), (12, 14));
    assert_eq!((opt(1, &osdrop), opt(1, &ifrecv)), (0, 1));
    assert_eq!((opt(0, &start), opt(0, &end)), (T0, T0 + 2));
    assert_eq!(
        (opt(2, &start), opt(2, &end)),
        (T0 + 999_999_999, T0 + 999_999_999)
    );
    let comment = isbs[0]
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
    let mut sink = PcapngSink::new(&mut out, &h).unwrap();
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
    let sink = PcapngSink::new(&mut out, &h).unwrap();
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
        assert_eq!(report.interfaces, u32::from(format == Format::Pcapng));
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
    assert_eq!(out.len(), 24 + 5 * (16 + DATA.len()));
    assert!(read_error_reason(&damage.kind).starts_with("damaged frame: checksum mismatch"));
}
