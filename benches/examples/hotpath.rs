//! The recorder's hot path without sockets: walk in-memory batches of
//! 64-byte records and append them to a log, timing each stage. A quick
//! profiling aid (`perf record` it); the criterion suites are in benches/.
//!
//! cargo run --release -p imp2-benches --example hotpath -- [DIR] [RECORDS]

use std::time::Instant;

use imp2_format::log::{LogHeader, LogWriter};
use imp2_format::synth::{PacketSynth, SynthOptions};
use imp2_format::wire::{BatchBuilder, BatchTrailer, BatchWalker, Message};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp".into());
    let records: usize = args.next().map_or(5_000_000, |s| s.parse().unwrap());
    let mut synth = PacketSynth::new(
        1,
        SynthOptions {
            sizes: vec![64],
            ..SynthOptions::default()
        },
    )
    .unwrap();
    let mut builder = BatchBuilder::new(65024, 4096, 0);
    let mut buf = vec![0u8; 2048];
    let mut batches: Vec<Vec<u8>> = Vec::new();
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut seq = 0;
    for _ in 0..records {
        let p = synth.next(&mut buf);
        let r = p.record(ts, &buf[..p.len]);
        ts += 1000;
        if builder.push(&r).is_err() {
            seq += 1;
            batches.push(
                builder
                    .finish(&BatchTrailer {
                        seq,
                        ..Default::default()
                    })
                    .to_vec(),
            );
            builder.clear();
            builder.push(&r).unwrap();
        }
    }
    let n: usize = batches.len();
    println!("{n} batches of ~{} records", records / n);

    let t = Instant::now();
    let mut count = 0u64;
    for b in &batches {
        for item in BatchWalker::new(b) {
            if let Ok(i) = item {
                if let Message::Record(r) = i.message {
                    count += r.data.len() as u64;
                }
            }
        }
    }
    let walk = t.elapsed().as_secs_f64() * 1e9 / records as f64;
    println!("walk only:        {walk:6.1} ns/record ({count})");

    let path = std::path::Path::new(&dir).join("hotpath.log");
    let mut w = LogWriter::create(&path, &LogHeader::default()).unwrap();
    let t = Instant::now();
    for b in &batches {
        for item in BatchWalker::new(b) {
            if let Ok(i) = item {
                if let Message::Record(r) = i.message {
                    w.append(&r).unwrap();
                }
            }
        }
        w.commit().unwrap();
    }
    let both = t.elapsed().as_secs_f64() * 1e9 / records as f64;
    w.finish(0).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "walk + log append: {both:6.1} ns/record, {:.1} bytes/record on disk",
        size as f64 / records as f64
    );
    std::fs::remove_file(&path).unwrap();
}
