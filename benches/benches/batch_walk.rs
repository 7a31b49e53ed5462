//! Walking received batches: 64-, 128- and 1500-byte records packed into
//! full default batches (64 KiB), every message parsed as the recorder does.
//! Throughput in records/s and bytes/s of batch.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imp2_format::wire::{BatchMessage, BatchWalker};

fn walk(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_walk");
    for size in [64usize, 128, 1500] {
        let records = (8 << 20) / size.max(64); // about 8 MiB of packets
        let (batches, _) = imp2_benches::batches(size, records);
        let wire: u64 = batches.iter().map(|b| b.len() as u64).sum();
        g.throughput(Throughput::ElementsAndBytes {
            elements: records as u64,
            bytes: wire,
        });
        g.bench_function(format!("{size}B"), |b| {
            b.iter(|| {
                let mut n = 0u64;
                let mut bytes = 0u64;
                for batch in &batches {
                    for item in BatchWalker::new(black_box(batch)).flatten() {
                        if let BatchMessage::Record(r) = item.message {
                            n += 1;
                            bytes += r.data.len() as u64;
                        }
                    }
                }
                black_box((n, bytes))
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = walk
}
criterion_main!(benches);
