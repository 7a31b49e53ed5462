//! Property tests: arbitrary records and event sequences round-trip
//! exactly; arbitrary (checksummed) frame payloads never make the reader
//! panic.

mod log_support;

use imp2_format::log::{Interface, LogReader, LogWriter, Losses, ReadErrorKind};
use log_support::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Rec(Rec),
    Commit,
    Iface(Interface),
    Loss(Losses),
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![any::<u64>(), 0..10_000u64, Just(u64::MAX)],
        prop_oneof![any::<u32>(), 0..4u32],
        prop_oneof![Just(0u8), Just(3u8), any::<u8>()],
        prop_oneof![Just(2u8), Just(10u8), any::<u8>()],
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..200),
        prop_oneof![Just(0u32), 0..100u32, any::<u32>()],
    )
        .prop_map(
            |(tstamp_ns, ifindex, hook, family, protocol, data, extra)| Rec {
                tstamp_ns,
                ifindex,
                orig_len: (data.len() as u32).saturating_add(extra),
                hook,
                family,
                protocol,
                data,
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => rec_strategy().prop_map(Op::Rec),
        3 => Just(Op::Commit),
        1 => (any::<u32>(), "[a-z0-9@.-]{0,20}").prop_map(|(ifindex, name)| Op::Iface(Interface { ifindex, name })),
        1 => prop::array::uniform10(any::<u64>()).prop_map(|v| Op::Loss(Losses {
            kernel: [v[0], v[1], v[2], v[3]],
            gap_records: v[4],
            gap_batches: v[5],
            truncated_batches: v[6],
            malformed_messages: v[7],
            socket_errors: v[8],
            unwritten: v[9],
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_logs_round_trip(ops in prop::collection::vec(op_strategy(), 0..400), mode in 0..3usize, finish in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let mut w = LogWriter::create_with(&path, &header(&[(1, "lo")]), modes()[mode]).unwrap();
        let mut expected = Vec::new();
        let mut committed_events = 0;
        for op in &ops {
            match op {
                Op::Rec(r) => { w.append(&r.as_record()).unwrap(); expected.push(Ev::Rec(r.clone())); }
                Op::Commit => { w.commit().unwrap(); committed_events = expected.len(); }
                Op::Iface(i) => { w.add_interface(i).unwrap(); expected.push(Ev::If(i.clone())); committed_events = expected.len(); }
                Op::Loss(l) => {
                    // Totals over a run must not overflow: keep deltas small.
                    let l = Losses { kernel: l.kernel.map(|v| v >> 8), gap_records: l.gap_records >> 8, gap_batches: l.gap_batches >> 8, truncated_batches: l.truncated_batches >> 8, malformed_messages: l.malformed_messages >> 8, socket_errors: l.socket_errors >> 8, unwritten: l.unwritten >> 8 };
                    w.add_losses(&l).unwrap(); expected.push(Ev::Loss(l)); committed_events = expected.len();
                }
            }
        }
        if finish {
            let footer = w.finish(123).unwrap();
            prop_assert_eq!(footer.records, records_of(&expected).len() as u64);
            expected.push(Ev::Foot(footer));
        } else {
            // Dropped without finishing: only what was committed.
            drop(w);
            expected.truncate(committed_events);
        }
        let r = LogReader::open(&path).unwrap();
        prop_assert_eq!(r.is_closed(), finish);
        let (evs, err) = read_all(&r);
        prop_assert!(err.is_none(), "{}", err.unwrap());
        prop_assert_eq!(evs, expected);
    }

    /// A RECORDS frame with random bytes changed and its CRC recomputed (so
    /// the decoder, not the checksum, has to cope) never panics, and yields
    /// either all its records or none.
    #[test]
    fn mangled_records_never_panic(recs in prop::collection::vec(rec_strategy(), 1..30), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let mut w = LogWriter::create(&path, &header(&[])).unwrap();
        for r in &recs { w.append(&r.as_record()).unwrap(); }
        w.finish(1).unwrap();
        let mut b = std::fs::read(&path).unwrap();
        let f = walk_frames(&b)[0];
        let (start, end) = (f.start as usize, f.end as usize);
        for (idx, byte) in &edits {
            // Anywhere in the payload, including base_ts and the count.
            let at = start + 12 + idx.index(end - start - 12);
            b[at] = *byte;
        }
        let crc = crc32c::crc32c_append(crc32c::crc32c(&b[start..start + 8]), &b[start + 12..end]);
        b[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
        let r = LogReader::from_bytes(b).unwrap();
        let (evs, err) = read_all(&r);
        match err {
            Some(e) => {
                prop_assert!(evs.is_empty());
                prop_assert_eq!(e.offset, f.start);
                prop_assert!(matches!(e.kind, ReadErrorKind::BadFrame(_)), "{}", e);
            }
            None => prop_assert_eq!(records_of(&evs).len(), recs.len()),
        }
    }

    /// Any payload of any frame type, correctly checksummed, never panics.
    #[test]
    fn arbitrary_payloads_never_panic(frame_type in any::<u8>(), payload in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        drop(LogWriter::create(&path, &header(&[])).unwrap());
        let mut b = std::fs::read(&path).unwrap();
        let (header_len, _) = lengths(&b);
        b.truncate(header_len as usize);
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&[frame_type, 0, 0, 0]);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..8]), &payload);
        frame.extend_from_slice(&crc.to_le_bytes());
        frame.extend_from_slice(&payload);
        b.extend_from_slice(&frame);
        let committed = header_len + frame.len() as u64;
        b[16..24].copy_from_slice(&committed.to_le_bytes());
        let r = LogReader::from_bytes(b).unwrap();
        let (evs, err) = read_all(&r);
        if !(1..=4).contains(&frame_type) {
            // Unknown types are skipped.
            prop_assert!(evs.is_empty() && err.is_none());
        }
        if let Some(e) = err {
            prop_assert_eq!(e.offset, header_len);
        }
    }
}
