//! Append bandwidth of [`LogWriter`] against plain `write()` and a naive
//! page-faulting mmap, on the same file system and the same bytes.
//!
//! ```text
//! cargo run --release -p imp2-benches --example append_bandwidth -- [DIR] [MIB] [ROUNDS] [METHODS]
//! ```
//!
//! Defaults: `/tmp`, 2048 MiB per run, 3 rounds, all methods (METHODS:
//! comma-separated names from the table, e.g. `writer/pwrite,write()`). Each round runs every
//! method once (in a rotating order, each into a fresh file that is
//! deleted afterwards) and the summary gives the median per method:
//!
//! - `writer/pwrite`, `writer/mmap`, `writer/direct`: [`LogWriter`] in each [`WriteMode`],
//!   appending realistic records (two 1400-byte packets for each 92-byte
//!   one, 1 µs apart) and committing every 500 records, as the recorder
//!   does per batch. These encode as they go. `writer/direct` hands its
//!   bytes to the kernel by writing them to the device (O_DIRECT), so its
//!   "append" time includes waiting for the last writes, and is bound by
//!   the disk.
//! - `write()`: 1 MiB `write` calls of already encoded log bytes (the
//!   writer's own output), i.e. the cost of the I/O alone.
//! - `BufWriter`: each record as a 16-byte pcap-style header and its data
//!   through a 64 KiB `BufWriter`, as libpcap and tcpdump write (a copy per
//!   record plus `write()`, but no encoding and no checksum).
//! - `mmap faulting`: `ftruncate` to the final size, map it all, `memcpy`
//!   the same encoded bytes, letting every page fault in on first write.
//!
//! "append" is the time to hand every byte to the kernel; "+close" adds
//! closing with `fdatasync` (the writer's `finish`), which is bound by the
//! disk rather than by the method. CPU is user + system time of this
//! process during the append phase (less noisy than wall time on a shared
//! machine; kernel writeback threads are not included).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use imp2_benches::append_baseline;

use imp2_format::log::{LogHeader, LogReader, LogWriter, WriteMode, WriterOptions};
use imp2_format::{Family, Hook, PacketRecord};

const RECORDS_PER_COMMIT: usize = 500;
const PREENCODED: u64 = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    WriterPwrite,
    WriterMmap,
    WriterDirect,
    Write,
    BufWriter,
    MmapFaulting,
}

impl Method {
    const ALL: [Method; 6] = [
        Method::WriterPwrite,
        Method::WriterMmap,
        Method::WriterDirect,
        Method::Write,
        Method::BufWriter,
        Method::MmapFaulting,
    ];

    fn name(self) -> &'static str {
        match self {
            Method::WriterPwrite => "writer/pwrite",
            Method::WriterMmap => "writer/mmap",
            Method::WriterDirect => "writer/direct",
            Method::Write => "write()",
            Method::BufWriter => "BufWriter",
            Method::MmapFaulting => "mmap faulting",
        }
    }
}

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Run {
    bytes: u64,
    records: u64,
    append_s: f64,
    append_cpu_s: f64,
    total_s: f64,
}

impl Run {
    fn gbps(&self) -> f64 {
        self.bytes as f64 / self.append_s / 1e9
    }
    fn cpu_gbps(&self) -> f64 {
        self.bytes as f64 / self.append_cpu_s / 1e9
    }
    fn total_gbps(&self) -> f64 {
        self.bytes as f64 / self.total_s / 1e9
    }
}

/// A pool of packets to cycle through: two 1400-byte TCP segments for each
/// 92-byte ACK, both directions, two interfaces.
struct Packets {
    big: Vec<u8>,
    small: Vec<u8>,
}

impl Packets {
    fn new() -> Self {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        Packets {
            big: bytes(1400 + 4096),
            small: bytes(92 + 4096),
        }
    }

    fn record(&self, i: u64) -> PacketRecord<'_> {
        // Vary the start so that consecutive packets differ.
        let off = (i as usize * 61) % 4096;
        let small = i % 3 == 2;
        let data = if small {
            &self.small[off..off + 92]
        } else {
            &self.big[off..off + 1400]
        };
        PacketRecord {
            tstamp_ns: 1_700_000_000_000_000_000 + i * 1000,
            ifindex: if i % 64 == 0 { 3 } else { 2 },
            orig_len: data.len() as u32,
            hook: if small {
                Hook::LOCAL_OUT
            } else {
                Hook::PRE_ROUTING
            },
            family: Family::IPV4,
            protocol: 6,
            data,
        }
    }
}

fn header() -> LogHeader {
    LogHeader {
        created_ns: 1_700_000_000_000_000_000,
        snaplen: 65535,
        source: "append_bandwidth example".into(),
        hostname: "bench".into(),
        kernel_release: String::new(),
        tsresol_digits: 9,
        interfaces: Vec::new(),
    }
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let (user, sys) = imp2_benches::cpu_seconds();
    user + sys
}

/// Appends records through a LogWriter until the log holds `target` bytes.
fn run_writer(path: &Path, mode: WriteMode, target: u64, pk: &Packets) -> Run {
    let opts = WriterOptions {
        mode,
        ..WriterOptions::default()
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut w = LogWriter::create_with(path, &header(), opts).expect("create");
    let mut i = 0u64;
    while w.committed_len() < target {
        for _ in 0..RECORDS_PER_COMMIT {
            w.append(&pk.record(i)).expect("append");
            i += 1;
        }
        w.commit().expect("commit");
    }
    // Direct mode: in the file once written (a no-op for the others).
    w.flush_committed().expect("flush");
    let (append_s, append_cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    w.finish(0).expect("finish");
    let total_s = t0.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(path).expect("stat").len();
    Run {
        bytes,
        records: i,
        append_s,
        append_cpu_s,
        total_s,
    }
}

/// `write()` of pre-encoded bytes in 1 MiB calls.
fn run_write(path: &Path, target: u64, enc: &[u8]) -> Run {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let f = append_baseline::write(path, enc, target);
    let (append_s, append_cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    f.sync_data().expect("sync");
    drop(f);
    Run {
        bytes: target,
        records: 0,
        append_s,
        append_cpu_s,
        total_s: t0.elapsed().as_secs_f64(),
    }
}

/// pcap-style records through a BufWriter until `target` bytes.
fn run_bufwriter(path: &Path, target: u64, pk: &Packets) -> Run {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut f = std::io::BufWriter::with_capacity(64 << 10, File::create(path).expect("create"));
    let (mut done, mut i) = (0u64, 0u64);
    while done < target {
        let r = pk.record(i);
        let ts = r.tstamp_ns;
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(&((ts / 1_000_000_000) as u32).to_le_bytes());
        head[4..8].copy_from_slice(&((ts % 1_000_000_000) as u32).to_le_bytes());
        head[8..12].copy_from_slice(&(r.data.len() as u32).to_le_bytes());
        head[12..16].copy_from_slice(&r.orig_len.to_le_bytes());
        f.write_all(&head).expect("write");
        f.write_all(r.data).expect("write");
        done += 16 + r.data.len() as u64;
        i += 1;
    }
    f.flush().expect("flush");
    let (append_s, append_cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let f = f.into_inner().expect("into_inner");
    f.sync_data().expect("sync");
    Run {
        bytes: done,
        records: i,
        append_s,
        append_cpu_s,
        total_s: t0.elapsed().as_secs_f64(),
    }
}

/// The naive page-faulting map (see `append_baseline::mmap_faulting`).
fn run_mmap_faulting(path: &Path, target: u64, enc: &[u8]) -> Run {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let (f, map) = append_baseline::mmap_faulting(path, enc, target);
    let (append_s, append_cpu_s) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    map.flush().expect("msync");
    drop(map);
    f.sync_data().expect("sync");
    Run {
        bytes: target,
        records: 0,
        append_s,
        append_cpu_s,
        total_s: t0.elapsed().as_secs_f64(),
    }
}

/// Encoded frames as the writer produces them, for the baselines.
fn preencode(dir: &Path, pk: &Packets) -> Vec<u8> {
    let path = dir.join("append_bandwidth.preencode.log");
    run_writer(&path, WriteMode::Pwrite, PREENCODED, pk);
    let header_len = LogReader::open(&path).expect("read back").header_len() as usize;
    let bytes = std::fs::read(&path).expect("read");
    std::fs::remove_file(&path).expect("remove");
    bytes[header_len..].to_vec()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "/tmp".into()));
    let mib: u64 = args
        .next()
        .map_or(2048, |s| s.parse().expect("MIB: a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |s| s.parse().expect("ROUNDS: a number"));
    let methods: Vec<Method> = match args.next() {
        None => Method::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|n| {
                *Method::ALL
                    .iter()
                    .find(|m| m.name() == n)
                    .expect("unknown method")
            })
            .collect(),
    };
    let target = mib << 20;

    let pk = Packets::new();
    let enc = preencode(&dir, &pk);
    println!(
        "appending {mib} MiB per run into {}, {rounds} rounds; records 2x1400 + 1x92 bytes, commit every {RECORDS_PER_COMMIT}",
        dir.display()
    );
    println!(
        "{:<14} {:>12} {:>12} {:>12} {:>10}",
        "method", "append GB/s", "CPU GB/s", "+close GB/s", "Mrec/s"
    );
    let mut results: Vec<(Method, Run)> = Vec::new();
    for round in 0..rounds {
        for k in 0..methods.len() {
            let m = methods[(round + k) % methods.len()];
            let path = dir.join(format!(
                "append_bandwidth.{}.tmp",
                m.name().replace(['/', '(', ')', ' '], "_")
            ));
            let run = match m {
                Method::WriterPwrite => run_writer(&path, WriteMode::Pwrite, target, &pk),
                Method::WriterMmap => run_writer(&path, WriteMode::Mmap, target, &pk),
                Method::WriterDirect => run_writer(&path, WriteMode::Direct, target, &pk),
                Method::Write => run_write(&path, target, &enc),
                Method::BufWriter => run_bufwriter(&path, target, &pk),
                Method::MmapFaulting => run_mmap_faulting(&path, target, &enc),
            };
            std::fs::remove_file(&path).expect("remove");
            let mrec = if run.records > 0 {
                format!("{:.2}", run.records as f64 / run.append_s / 1e6)
            } else {
                "-".into()
            };
            println!(
                "{:<14} {:>12.2} {:>12.2} {:>12.2} {:>10}",
                m.name(),
                run.gbps(),
                run.cpu_gbps(),
                run.total_gbps(),
                mrec
            );
            results.push((m, run));
        }
    }

    println!("\nmedian of {rounds} rounds:");
    let med = |m: Method, f: fn(&Run) -> f64| {
        median(
            results
                .iter()
                .filter(|(x, _)| *x == m)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    for &m in &methods {
        println!(
            "{:<14} {:>12.2} {:>12.2} {:>12.2}",
            m.name(),
            med(m, Run::gbps),
            med(m, Run::cpu_gbps),
            med(m, Run::total_gbps)
        );
    }
    if methods.len() < Method::ALL.len() {
        return;
    }
    let ratio = |a: Method, b: Method| {
        format!(
            "{:.2}x append, {:.2}x CPU",
            med(a, Run::gbps) / med(b, Run::gbps),
            med(a, Run::cpu_gbps) / med(b, Run::cpu_gbps)
        )
    };
    println!();
    for (a, b) in [
        (Method::WriterPwrite, Method::Write),
        (Method::WriterPwrite, Method::BufWriter),
        (Method::WriterPwrite, Method::MmapFaulting),
        (Method::WriterMmap, Method::Write),
        (Method::WriterMmap, Method::MmapFaulting),
    ] {
        println!("{:<14} vs {:<14} {}", a.name(), b.name(), ratio(a, b));
    }
}
