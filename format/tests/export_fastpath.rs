//! The exporter's hand-written EPBs and pcap records, checked through
//! `pcap-file`'s reader: a log of synthetic packets of many sizes (every
//! padding, captured shorter than original), both families, every hook,
//! several interfaces (named in the header, named later, renamed, never
//! named) and times that go backwards, exported the way `imp2-convert`
//! does (writer thread) and read back packet by packet against the log's
//! own events, with each link type (the SLL2 header built here from the
//! record's fields, independently of the exporter).

use std::collections::HashMap;
use std::time::Duration;

use imp2_format::export::{
    ExportOptions, Format, LinkType, epb_flags, export, export_threaded, export_threaded_with,
};
use imp2_format::log::{Interface, LogEvent, LogHeader, LogReader, LogWriter};
use imp2_format::record::{Family, Hook};
use imp2_testkit::synth::{PacketSynth, SynthOptions};
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

const T0: u64 = 1_700_000_000_123_456_789;
const SNAPLEN: usize = 1000;

fn header() -> LogHeader {
    LogHeader {
        created_ns: T0,
        snaplen: SNAPLEN as u32,
        source: "export fast path test".into(),
        hostname: "box".into(),
        kernel_release: "6.1.0-test".into(),
        tsresol_digits: 9,
        interfaces: vec![
            Interface {
                ifindex: 1,
                name: "lo".into(),
            },
            Interface {
                ifindex: 2,
                name: "eth0".into(),
            },
        ],
    }
}

fn write_log(path: &std::path::Path, records: u64) {
    let mut synth = PacketSynth::new(
        7,
        SynthOptions {
            // 20..=27: every padding of short packets; 1400 and 1501 are
            // cut to the snap length.
            sizes: vec![20, 21, 22, 23, 41, 60, 61, 62, 63, 92, 1400, 1501],
            families: vec![Family::IPV4, Family::IPV6],
            hooks: (0..8).map(Hook).collect(),
            ifindexes: vec![1, 2, 5, 9],
            flow_len: 4,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let mut w = LogWriter::create(path, &header()).unwrap();
    let mut ts = T0;
    for i in 0..records {
        // Mostly forward, sometimes back (clocks of different CPUs).
        ts = if i % 97 == 0 {
            ts - 5_000
        } else {
            ts + 1_337 * (i % 7)
        };
        let r = synth.next_record(&mut buf, SNAPLEN, ts);
        w.append(&r).unwrap();
        if i % 300 == 299 {
            w.commit().unwrap();
        }
        if i == records / 3 {
            w.add_interface(&Interface {
                ifindex: 5,
                name: "wg0".into(),
            })
            .unwrap();
        }
        if i == records / 2 {
            w.add_interface(&Interface {
                ifindex: 2,
                name: "eth0-renamed".into(),
            })
            .unwrap();
        }
    }
    w.finish(ts + 1).unwrap();
}

/// The SLL2 header the exporter must put before `r`'s data, from the
/// pcap-linktype spec: protocol type, reserved, ifindex, ARPHRD type,
/// packet type, address length, address; big-endian.
fn sll2(r: &imp2_format::PacketRecord<'_>) -> Vec<u8> {
    // The family decides; the data's IP version only without one.
    let protocol: u16 = match (r.family, r.data.first().map(|b| b >> 4)) {
        (Family::IPV4, _) => 0x0800,
        (Family::IPV6, _) => 0x86dd,
        (_, Some(4)) => 0x0800,
        (_, Some(6)) => 0x86dd,
        _ => 0,
    };
    let packet_type = match r.hook {
        Hook::LOCAL_OUT | Hook::POST_ROUTING => 4, // PACKET_OUTGOING
        _ => 0,                                    // PACKET_HOST
    };
    let mut h = Vec::with_capacity(20);
    h.extend_from_slice(&protocol.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&r.ifindex.to_be_bytes());
    h.extend_from_slice(&0xfffeu16.to_be_bytes()); // ARPHRD_NONE
    h.extend_from_slice(&[packet_type, 0]);
    h.extend_from_slice(&[0; 8]);
    h
}

/// What the log says of every packet as the export of `link` must show it:
/// (interface name, time, direction flags, original length, data).
fn expected(reader: &LogReader, link: LinkType) -> Vec<(String, u64, u32, u32, Vec<u8>)> {
    let mut names: HashMap<u32, String> = reader
        .header()
        .interfaces
        .iter()
        .map(|i| (i.ifindex, i.name.clone()))
        .collect();
    let mut out = Vec::new();
    for ev in reader.events() {
        match ev.unwrap() {
            LogEvent::Record(r) => {
                let name = names
                    .get(&r.ifindex)
                    .cloned()
                    .unwrap_or_else(|| format!("if{}", r.ifindex));
                let (header, extra) = match link {
                    LinkType::Sll2 => (sll2(&r), 20),
                    LinkType::Raw => (Vec::new(), 0),
                };
                out.push((
                    name,
                    r.tstamp_ns,
                    epb_flags(r.hook),
                    r.orig_len + extra,
                    [header, r.data.to_vec()].concat(),
                ));
            }
            LogEvent::Interface(i) => {
                names.insert(i.ifindex, i.name);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn pcapng_fast_path_reads_back_packet_for_packet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    write_log(&path, 30_000);
    let reader = LogReader::open(&path).unwrap();
    for link in [LinkType::Sll2, LinkType::Raw] {
        pcapng_reads_back(&reader, link);
    }
}

fn pcapng_reads_back(reader: &LogReader, link: LinkType) {
    let want = expected(reader, link);
    assert_eq!(want.len(), 30_000);
    assert!(want.iter().any(|p| p.4.len() < p.3 as usize), "some cut");
    for pad in 0..4 {
        assert!(want.iter().any(|p| p.4.len() % 4 == pad), "padding {pad}");
    }
    for flags in 0..3 {
        assert!(want.iter().any(|p| p.2 == flags), "flags {flags}");
    }

    let mut out = Vec::new();
    let report = export_threaded_with(reader, Format::Pcapng, &mut out, link).unwrap();
    assert_eq!(report.packets, 30_000);
    // lo, eth0, if5 (unnamed at first) and if9, wg0, eth0-renamed.
    assert_eq!(report.interfaces, 6);

    let mut names = Vec::new();
    let mut got = Vec::new();
    let mut pcapng = PcapNgReader::new(&out[..]).unwrap();
    while let Some(block) = pcapng.next_block() {
        match block.unwrap().0 {
            Block::InterfaceDescription(idb) => {
                let name = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                    _ => None,
                });
                assert_eq!(idb.ts_resolution().resolution(), 9);
                assert_eq!(u32::from(idb.linktype), link.number());
                assert_eq!(idb.snaplen as usize, SNAPLEN + link.header_len());
                names.push(name.unwrap());
            }
            Block::EnhancedPacket(epb) => {
                let flags: Vec<u32> = epb
                    .options
                    .iter()
                    .map(|o| match o {
                        EnhancedPacketOption::Flags(f) => *f,
                        other => panic!("unexpected option {other:?}"),
                    })
                    .collect();
                assert_eq!(flags.len(), 1);
                got.push((
                    names[epb.interface_id as usize].clone(),
                    u64::try_from(epb.timestamp.as_nanos()).unwrap(),
                    flags[0],
                    epb.original_len,
                    epb.data.to_vec(),
                ));
            }
            _ => {}
        }
    }
    // The unnamed ones in the order their first packets come.
    let mut unnamed = names[2..4].to_vec();
    unnamed.sort();
    assert_eq!(unnamed, ["if5", "if9"]);
    assert_eq!(names[..2], ["lo", "eth0"]);
    assert_eq!(names[4..], ["wg0", "eth0-renamed"]);
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "packet {i}");
    }

    // Without the writer thread: the same bytes; SLL2 by default.
    if link == LinkType::default() {
        let mut direct = Vec::new();
        export(reader, Format::Pcapng, &mut direct).unwrap();
        assert!(direct == out);
        let mut threaded = Vec::new();
        export_threaded(reader, Format::Pcapng, &mut threaded).unwrap();
        assert!(threaded == out);
    }
}

#[test]
fn pcap_fast_path_reads_back_packet_for_packet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    write_log(&path, 10_000);
    let reader = LogReader::open(&path).unwrap();
    for link in [LinkType::Sll2, LinkType::Raw] {
        pcap_reads_back(&reader, link);
    }
}

fn pcap_reads_back(reader: &LogReader, link: LinkType) {
    let want = expected(reader, link);
    let mut out = Vec::new();
    let options = ExportOptions {
        link_type: link,
        ..ExportOptions::default()
    };
    let report = export_threaded_with(reader, Format::Pcap, &mut out, options).unwrap();
    assert_eq!(report.packets, 10_000);
    let mut pcap = PcapReader::new(&out[..]).unwrap();
    assert_eq!(pcap.header().snaplen as usize, SNAPLEN + link.header_len());
    assert_eq!(u32::from(pcap.header().datalink), link.number());
    let mut n = 0;
    while let Some(p) = pcap.next_packet() {
        let p = p.unwrap();
        let w = &want[n];
        assert_eq!(p.timestamp(), Duration::from_nanos(w.1), "packet {n}");
        assert_eq!(p.orig_len(), w.3, "packet {n}");
        assert_eq!(p.data(), &w.4[..], "packet {n}");
        n += 1;
    }
    assert_eq!(n, want.len());
}
