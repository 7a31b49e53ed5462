//! Export: a log of 200k synthetic packets (92-byte, and a 1400/92 mix)
//! to pcapng and to classic pcap, into a sink (no I/O). Throughput in
//! records/s and bytes/s of output written. `pcapng-threaded` is what
//! `imp2-convert` runs: the same export with the writes on a second
//! thread (here they cost nothing, so it shows the hand-over's overhead).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imp2_format::export::{Format, export, export_threaded};
use imp2_format::log::LogReader;

/// An `io::Write` that only counts.
#[derive(Default)]
struct Count(u64);

impl std::io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn export_suite(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = 200_000u64;
    let mut g = c.benchmark_group("export");
    g.sample_size(10);
    for (name, sizes) in [("92B", vec![92usize]), ("mix1400_92", vec![1400, 1400, 92])] {
        let path = dir.path().join(format!("{name}.log"));
        imp2_benches::write_log(&path, &sizes, records);
        let reader = LogReader::open(&path).expect("open");
        for (fmt, format, threaded) in [
            ("pcapng", Format::Pcapng, false),
            ("pcapng-threaded", Format::Pcapng, true),
            ("pcap", Format::Pcap, false),
        ] {
            let run = |out: &mut Count| {
                if threaded {
                    export_threaded(&reader, format, out)
                } else {
                    export(&reader, format, out)
                }
                .expect("export")
            };
            let mut out = Count::default();
            run(&mut out);
            g.throughput(Throughput::ElementsAndBytes {
                elements: records,
                bytes: out.0,
            });
            g.bench_function(format!("{name}/{fmt}"), |b| {
                b.iter(|| {
                    let mut out = Count::default();
                    black_box(run(black_box(&mut out)));
                    out.0
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, export_suite);
criterion_main!(benches);
