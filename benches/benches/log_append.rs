//! Appending to a log: the real [`LogWriter`] (both write modes, encoding
//! 64-byte records as it goes, committing every 500 records like the
//! recorder per batch) next to plain `write()` of the same encoded bytes
//! and a naive page-faulting mmap (`ftruncate`, map, `memcpy`). Each
//! iteration writes 64 MiB into a fresh file (no fsync). Throughput in
//! bytes/s of log.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imp2_benches::append_baseline;
use imp2_format::PacketRecord;
use imp2_format::log::{LogReader, LogWriter, WriteMode, WriterOptions};

const TARGET: u64 = 64 << 20;

/// Records of mixed 1400- and 92-byte packets (2:1), as on a busy link.
fn packets() -> Vec<(Vec<u8>, PacketRecord<'static>)> {
    let mut synth = imp2_benches::synth(&[1400, 1400, 92], 3);
    let mut buf = vec![0u8; 2048];
    (0..4096)
        .map(|i| {
            let r = synth.next_record(&mut buf, 65535, 1_700_000_000_000_000_000 + i * 1000);
            let meta = PacketRecord { data: &[], ..r };
            (r.data.to_vec(), meta)
        })
        .collect()
}

fn writer(path: &Path, mode: WriteMode, pk: &[(Vec<u8>, PacketRecord<'static>)]) -> u64 {
    let opts = WriterOptions {
        mode,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_with(path, &imp2_benches::log_header(), opts).expect("create");
    let mut i = 0usize;
    while w.committed_len() < TARGET {
        for _ in 0..500 {
            let (data, meta) = &pk[i % pk.len()];
            w.append(&PacketRecord { data, ..*meta }).expect("append");
            i += 1;
        }
        w.commit().expect("commit");
    }
    let len = w.committed_len();
    drop(w); // no finish: no fdatasync in the timed part
    len
}

fn append(c: &mut Criterion) {
    let dir =
        tempfile::tempdir_in(std::env::var("IMP2_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
            .expect("tempdir");
    let pk = packets();
    // The writer's own output, for the baselines.
    let pre = dir.path().join("pre.log");
    writer(&pre, WriteMode::Pwrite, &pk);
    let header_len = {
        let mut w = LogWriter::create(&dir.path().join("h.log"), &imp2_benches::log_header())
            .expect("create");
        w.commit().expect("commit");
        w.finish(0).expect("finish");
        LogReader::open(&dir.path().join("h.log"))
            .expect("open")
            .header_len() as usize
    };
    let enc = std::fs::read(&pre).expect("read")[header_len..].to_vec();
    let path = dir.path().join("bench.log");

    let mut g = c.benchmark_group("log_append");
    g.throughput(Throughput::Bytes(TARGET));
    g.sample_size(10);
    for (name, mode) in [
        ("writer_pwrite", WriteMode::Pwrite),
        ("writer_mmap", WriteMode::Mmap),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let n = writer(&path, mode, &pk);
                std::fs::remove_file(&path).expect("remove");
                black_box(n)
            });
        });
    }
    g.bench_function("write()", |b| {
        b.iter(|| {
            let f = append_baseline::write(&path, &enc, TARGET);
            drop(black_box(f));
            std::fs::remove_file(&path).expect("remove");
        });
    });
    g.bench_function("mmap_faulting", |b| {
        b.iter(|| {
            let (f, map) = append_baseline::mmap_faulting(&path, &enc, TARGET);
            drop(black_box(map));
            drop(f);
            std::fs::remove_file(&path).expect("remove");
        });
    });
    g.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
