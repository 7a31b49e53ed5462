//! On-disk cost of the compact encoding for small packets.

mod log_support;

use imp2_format::log::{LogReader, LogWriter};
use log_support::*;

/// 100k 92-byte packets, 1 µs apart (with jitter), committed in frames of
/// 500: a realistic mix of directions, families, interfaces and protocols.
/// Must cost at most 100 bytes per record on disk, header and footer
/// included (pcap: 108, pcapng: 140).
#[test]
fn bytes_per_92_byte_record() {
    let dir = tempfile::tempdir().unwrap();
    let n = 100_000u64;
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("size{m}.log"));
        let mut w =
            LogWriter::create_with(&path, &header(&[(2, "eth0"), (3, "eth1")]), opts).unwrap();
        let mut rng = Rng(9);
        let data = vec![0x45u8; 92];
        let mut ts = 1_700_000_000_000_000_000u64;
        for i in 0..n {
            ts += 1000 + rng.below(200) - 100;
            let r = Rec {
                tstamp_ns: ts,
                ifindex: if rng.below(20) == 0 { 3 } else { 2 },
                orig_len: 92,
                hook: if i % 2 == 0 { 0 } else { 3 },
                family: if rng.below(8) == 0 { 10 } else { 2 },
                protocol: if rng.below(10) == 0 { 17 } else { 6 },
                data: data.clone(),
            };
            w.append(&r.as_record()).unwrap();
            if i % 500 == 499 {
                w.commit().unwrap();
            }
        }
        w.finish(ts).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        let per_record = size as f64 / n as f64;
        println!("mode {opts:?}: {size} bytes, {per_record:.2} bytes per 92-byte record");
        assert!(per_record <= 100.0, "{per_record:.2} bytes per record");
        // And it reads back.
        let (evs, err) = read_all(&LogReader::open(&path).unwrap());
        assert!(err.is_none());
        assert_eq!(records_of(&evs).len() as u64, n);
    }
}
