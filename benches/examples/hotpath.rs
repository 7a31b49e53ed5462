//! The recorder's hot path without sockets: walk in-memory batches of
//! 64-byte records and append them to a log, timing each stage. A quick
//! profiling aid (`perf record` it); the criterion suites are in benches/.
//!
//! cargo run --release -p imp2-benches --example hotpath -- \
//!     [DIR] [RECORDS] [pwrite|mmap] [BATCHES_PER_COMMIT]
//!
//! Each stage is its own `#[inline(never)]` function so that instruction
//! counts can be read per stage:
//!
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/hotpath /tmp 300000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep hotpath::
//!
//! Times are reported as wall time and as CPU time (user + system, so the
//! kernel's share of `pwrite` or of page faults is included); the machine
//! may be shared, the CPU time is the steadier of the two.
//!
//! The batches cycle through a set of about 1 MiB, as the recorder's
//! receive buffers do: they are in cache, as a batch the kernel has just
//! copied is, rather than streamed from memory.

use std::time::Instant;

use imp2_benches::{cpu_seconds, print_stage};

use imp2_format::log::{LogHeader, LogWriter, WriteMode, WriterOptions};
use imp2_format::wire::{BatchBuilder, BatchItem, BatchMessage, BatchTrailer, BatchWalker};
use imp2_testkit::synth::{PacketSynth, SynthOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp".into());
    let records: usize = args.next().map_or(5_000_000, |s| s.parse().unwrap());
    let mode = match args.next().as_deref() {
        None | Some("pwrite") => WriteMode::Pwrite,
        Some("mmap") => WriteMode::Mmap,
        Some(other) => panic!("unknown write mode {other:?} (pwrite or mmap)"),
    };
    let per_commit: usize = args.next().map_or(1, |s| s.parse().unwrap());
    let distinct = make_batches(records.min(DISTINCT_RECORDS));
    let per_batch = DISTINCT_RECORDS.min(records).div_ceil(distinct.len());
    let batches: Vec<&[u8]> = distinct
        .iter()
        .map(Vec::as_slice)
        .cycle()
        .take(records.div_ceil(per_batch))
        .collect();
    let records = batches.iter().map(|b| count_records(b)).sum::<usize>();
    println!(
        "{} batches of ~{per_batch} records ({} distinct), {records} records",
        batches.len(),
        distinct.len()
    );

    let (t, c) = (Instant::now(), cpu_seconds());
    let count = walk_only(&batches);
    print_stage("walk only", t, c, records, "record");
    println!("  ({count} data bytes)");

    let path = std::path::Path::new(&dir).join("hotpath.log");
    let options = WriterOptions {
        mode,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_with(&path, &LogHeader::default(), options).unwrap();
    let (t, c) = (Instant::now(), cpu_seconds());
    walk_append(&batches, &mut w, per_commit);
    print_stage(
        &format!("walk + log append ({mode:?})"),
        t,
        c,
        records,
        "record",
    );
    w.finish(0).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    println!("  {:.1} bytes/record on disk", size as f64 / records as f64);
    std::fs::remove_file(&path).unwrap();
}

/// Records in the distinct batches (about 1 MiB of them).
const DISTINCT_RECORDS: usize = 10_000;

fn count_records(batch: &[u8]) -> usize {
    BatchWalker::new(batch)
        .filter(|i| {
            matches!(
                i,
                Ok(BatchItem {
                    message: BatchMessage::Record(_),
                    ..
                })
            )
        })
        .count()
}

/// Batches as the module builds them, holding `records` records in all.
fn make_batches(records: usize) -> Vec<Vec<u8>> {
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
    let mut finish = |builder: &mut BatchBuilder| {
        seq += 1;
        let trailer = BatchTrailer {
            seq,
            ..Default::default()
        };
        batches.push(builder.finish(&trailer).to_vec());
        builder.clear();
    };
    for _ in 0..records {
        let p = synth.next(&mut buf);
        let r = p.record(ts, &buf[..p.len]);
        ts += 1000;
        if builder.push(&r).is_err() {
            finish(&mut builder);
            builder.push(&r).unwrap();
        }
    }
    if !builder.is_empty() {
        finish(&mut builder);
    }
    batches
}

/// Walks every batch; returns the captured bytes seen.
#[inline(never)]
fn walk_only(batches: &[&[u8]]) -> u64 {
    let mut count = 0u64;
    for b in batches {
        // As the recorder does: records on the fast path, the rest (the
        // trailer) through the iterator.
        let mut walker = BatchWalker::new(b);
        loop {
            if let Some(r) = walker.next_record() {
                count += r.data.len() as u64;
                continue;
            }
            match walker.next() {
                Some(Ok(BatchItem {
                    message: BatchMessage::Record(r),
                    ..
                })) => count += r.data.len() as u64,
                Some(_) => {}
                None => break,
            }
        }
    }
    count
}

/// Walks every batch and appends its records, committing every
/// `per_commit` batches (the recorder commits after each one).
#[inline(never)]
fn walk_append(batches: &[&[u8]], w: &mut LogWriter, per_commit: usize) {
    for (i, b) in batches.iter().enumerate() {
        let mut walker = BatchWalker::new(b);
        loop {
            if let Some(r) = walker.next_record() {
                w.append(&r).unwrap();
                continue;
            }
            match walker.next() {
                Some(Ok(BatchItem {
                    message: BatchMessage::Record(r),
                    ..
                })) => w.append(&r).unwrap(),
                Some(_) => {}
                None => break,
            }
        }
        if (i + 1) % per_commit == 0 {
            w.commit().unwrap();
        }
    }
    w.commit().unwrap();
}
