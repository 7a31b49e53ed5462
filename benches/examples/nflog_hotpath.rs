//! The NFLOG source's hot path without sockets: walk in-memory NFLOG
//! datagrams shaped like the kernel's (64-byte UDP payloads logged on the
//! input hook of a veth: prefix-less rule, hardware header, timestamp,
//! in-device, the per-instance sequence number imp2-record asks for) and
//! append their packets to a log, as `imp2-record --source nflog:G` does.
//! A profiling aid:
//!
//! cargo run --release -p imp2-benches --example nflog_hotpath -- [DIR] [PACKETS] [pwrite|mmap|direct]
//!
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/nflog_hotpath /tmp 300000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep nflog_hotpath::
//!
//! `walk (general)` walks with the iterator only (every message through
//! `NflogMessage::Packet`); `walk (fast)` takes packet messages through
//! `NflogWalker::next_packet` first, as the recorder does.

use std::time::Instant;

use imp2_benches::{cpu_seconds, print_stage};

use imp2_format::ip::ip_family;
use imp2_format::log::{LogHeader, LogWriter, WriteMode, WriterOptions};
use imp2_format::nflog::{
    NflogItem, NflogMessage, NflogWalker, PacketMessage, PacketParser, Timestamp, consts, emit_done,
};
use imp2_format::{Family, PacketRecord};
use imp2_testkit::synth::{PacketSynth, SynthOptions};

/// Bytes of one datagram: the kernel's 128 KiB NFLOG buffer.
const DATAGRAM: usize = 128 << 10;
/// Packets in the distinct datagrams (about 2 MiB of them).
const DISTINCT_PACKETS: usize = 10_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp".into());
    let packets: usize = args.next().map_or(3_000_000, |s| s.parse().unwrap());
    let distinct = make_datagrams(packets.min(DISTINCT_PACKETS));
    let per = DISTINCT_PACKETS.min(packets).div_ceil(distinct.len());
    let datagrams: Vec<&[u8]> = distinct
        .iter()
        .map(Vec::as_slice)
        .cycle()
        .take(packets.div_ceil(per))
        .collect();
    let packets = datagrams.iter().map(|d| walk_general(&[d])).sum::<usize>();
    println!(
        "{} datagrams of ~{per} packets ({} distinct), {packets} packets",
        datagrams.len(),
        distinct.len()
    );

    let (t, c) = (Instant::now(), cpu_seconds());
    let n = walk_general(&datagrams);
    print_stage("walk (general)", t, c, n, "packet");
    let (t, c) = (Instant::now(), cpu_seconds());
    let n = walk_fast(&datagrams);
    print_stage("walk (fast)", t, c, n, "packet");

    let path = std::path::Path::new(&dir).join("nflog_hotpath.log");
    let mode = match args.next().as_deref() {
        None | Some("pwrite") => WriteMode::Pwrite,
        Some("mmap") => WriteMode::Mmap,
        Some("direct") => WriteMode::Direct,
        Some(other) => panic!("write mode `{other}`: expected pwrite, mmap or direct"),
    };
    let options = WriterOptions {
        mode,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_with(&path, &LogHeader::default(), options).unwrap();
    let (t, c) = (Instant::now(), cpu_seconds());
    walk_append(&datagrams, &mut w);
    print_stage("walk (fast) + log append", t, c, packets, "packet");
    w.finish(0).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!("  {:.1} bytes/packet on disk", size as f64 / packets as f64);
    std::fs::remove_file(&path).unwrap();
}

/// Datagrams as nfnetlink_log builds them for an `nft ... log group 5`
/// rule on the input hook: packet messages up to 128 KiB, then DONE.
fn make_datagrams(packets: usize) -> Vec<Vec<u8>> {
    let mut synth = PacketSynth::new(
        1,
        SynthOptions {
            sizes: vec![92],
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let mut buf = vec![0u8; 2048];
    let hwaddr = [0, 6, 0, 0, 0x02, 0x42, 0xac, 0x11, 0, 2, 0, 0];
    let hwheader = [0u8; 14];
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for i in 0..packets {
        let p = synth.next(&mut buf);
        let data = &buf[..p.len];
        let ipv6 = ip_family(data) == Some(Family::IPV6);
        let m = PacketMessage {
            family: if ipv6 {
                consts::AF_INET6
            } else {
                consts::AF_INET
            },
            group: 5,
            hw_protocol: if ipv6 { 0x86dd } else { 0x0800 },
            hook: consts::NF_INET_LOCAL_IN,
            indev: Some(7),
            hwaddr: Some(&hwaddr),
            hwtype: Some(1),
            hwlen: Some(14),
            hwheader: Some(&hwheader),
            timestamp: Some(Timestamp {
                sec: 1_795_395_193 + i as u64 / 1_000_000,
                usec: i as u64 % 1_000_000,
            }),
            seq: Some(i as u32),
            payload: Some(data),
            ..Default::default()
        };
        let before = cur.len();
        m.emit(&mut cur);
        if cur.len() + 20 > DATAGRAM {
            cur.truncate(before);
            emit_done(5, &mut cur);
            out.push(std::mem::take(&mut cur));
            m.emit(&mut cur);
        }
    }
    emit_done(5, &mut cur);
    out.push(cur);
    out
}

/// Walks with the iterator only; returns the packets seen.
#[inline(never)]
fn walk_general(datagrams: &[&[u8]]) -> usize {
    let mut n = 0;
    for d in datagrams {
        for item in NflogWalker::new(d).flatten() {
            if let NflogMessage::Packet(p) = item.message {
                if let Ok(r) = p.to_record(0) {
                    n += usize::from(!r.data.is_empty());
                }
            }
        }
    }
    n
}

/// Walks packets on the fast path, the rest through the iterator.
#[inline(never)]
fn walk_fast(datagrams: &[&[u8]]) -> usize {
    let mut n = 0;
    each_packet(datagrams, |r| n += usize::from(!r.data.is_empty()), || {});
    n
}

/// Walks and appends every packet, committing once per datagram.
#[inline(never)]
fn walk_append(datagrams: &[&[u8]], w: &mut LogWriter) {
    let w = std::cell::RefCell::new(w);
    each_packet(
        datagrams,
        |r| w.borrow_mut().append(&r).unwrap(),
        || w.borrow_mut().commit().unwrap(),
    );
}

/// The recorder's walk: packets of a known shape through
/// `NflogWalker::next_packet`, everything else through the iterator; `on` gets
/// each IP packet's record, `end` runs after each datagram.
#[inline(always)]
fn each_packet<'a>(
    datagrams: &[&'a [u8]],
    mut on: impl FnMut(PacketRecord<'a>),
    mut end: impl FnMut(),
) {
    let mut parser = PacketParser::default();
    for d in datagrams {
        let mut walker = NflogWalker::with_parser(d, parser);
        loop {
            let logged = match walker.next_packet() {
                Some(p) => p,
                None => match walker.next() {
                    Some(Ok(NflogItem {
                        message: NflogMessage::Packet(p),
                        ..
                    })) => p.logged(),
                    Some(_) => continue,
                    None => break,
                },
            };
            if let Ok(r) = logged.record {
                on(r);
            }
        }
        parser = walker.parser();
        end();
    }
}
