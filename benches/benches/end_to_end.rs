//! End to end over real netlink (NETLINK_USERSOCK, no module needed):
//! imp2-loadgen -> imp2-record writing its log, batched and
//! `--per-record`, 64-byte packets. One iteration is one record; each
//! sample is one loadgen/recorder pair run for `iters` records, timed from
//! the recorder's start to its exit (start-up included). Bounded: every
//! pair is killed after 60 s.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use imp2_benches::{Loadgen, ReceiverKind, wait};

fn pair(dir: &std::path::Path, mode: ReceiverKind, records: u64) -> Duration {
    let mut args: Vec<String> = vec!["-n".into(), records.to_string()];
    args.extend(mode.loadgen_args().iter().map(|s| s.to_string()));
    let lg = Loadgen::start(dir, &args);
    let log = dir.join("e2e.log");
    let t = Instant::now();
    let rec = mode.spawn(lg.port, &log, records, "512M", Duration::from_secs(60));
    let out = wait(rec, Duration::from_secs(70));
    let elapsed = t.elapsed();
    let lg_out = wait(lg.child, Duration::from_secs(20));
    assert!(out.ok, "receiver failed: {}", out.stderr);
    assert!(lg_out.ok, "loadgen failed: {}", lg_out.stderr);
    let _ = std::fs::remove_file(&log);
    elapsed
}

fn e2e(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("end_to_end");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(10));
    for mode in [ReceiverKind::Batched, ReceiverKind::PerRecord] {
        let name = if mode == ReceiverKind::Batched {
            "batched"
        } else {
            "per_record"
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                // Cap a sample at 5M records (per-record: 500k) to bound it.
                let cap = if mode == ReceiverKind::Batched {
                    5_000_000
                } else {
                    500_000
                };
                let n = iters.clamp(1, cap);
                let d = pair(dir.path(), mode, n);
                d.mul_f64(iters as f64 / n as f64)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
