//! Committed logs of every format version so far (`tests/assets/`, see its
//! README), read by today's reader: the same records, losses and footer as
//! their writers wrote, and damage found where it was put.

mod log_support;

use std::path::PathBuf;

use imp2_format::log::{Footer, Interface, LogReader, Losses, StopCause, StopReason};
use log_support::*;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/assets")
        .join(name)
}

/// Record `i` of every asset (the generator's formula, README.md).
fn rec(i: u64) -> Rec {
    let len = [0usize, 1, 20, 40, 60, 92, 128, 128, 7, 33, 64, 100][i as usize];
    Rec {
        tstamp_ns: 1_700_000_000_000_000_000 + i * 1_000_003,
        ifindex: [1, 2, 3][i as usize % 3],
        orig_len: if len == 128 { 1500 } else { len as u32 },
        hook: [0, 1, 2, 3, 4][i as usize % 5],
        family: if i % 4 == 3 { 10 } else { 2 },
        protocol: [17, 6, 1, 58][i as usize % 4],
        data: (0..len).map(|k| (i as usize * 31 + k) as u8).collect(),
    }
}

/// The LOSSES frame after record 5; `unwritten` exists from 1.1 on.
fn losses(minor: u16) -> Losses {
    let mut l = Losses::default();
    l.kernel[0] = 3;
    l.gap_records = 2;
    l.socket_errors = 1;
    if minor >= 1 {
        l.unwritten = 4;
    }
    l
}

fn footer(minor: u16) -> Footer {
    Footer {
        records: 12,
        captured_bytes: 673,
        original_bytes: 3417,
        first_ns: 1_700_000_000_000_000_000,
        last_ns: 1_700_000_000_011_000_033,
        closed_ns: 1_700_000_000_100_000_000,
        losses: losses(minor),
        // 1.2 added the stop reason; older footers have none.
        stop: (minor >= 2).then(|| StopReason::new(StopCause::Signal, "SIGINT")),
    }
}

/// The events of an intact asset: records 0-5, the losses, records 6-11,
/// the footer.
fn expected(minor: u16) -> Vec<Ev> {
    let mut evs: Vec<Ev> = (0..6).map(|i| Ev::Rec(rec(i))).collect();
    evs.push(Ev::Loss(losses(minor)));
    evs.extend((6..12).map(|i| Ev::Rec(rec(i))));
    evs.push(Ev::Foot(footer(minor)));
    evs
}

#[test]
fn every_format_version_reads_back() {
    for minor in [0u16, 1, 2] {
        let path = asset(&format!("v1.{minor}.log"));
        let r = LogReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let h = r.header();
        assert_eq!(r.version(), (1, minor), "{}", path.display());
        assert_eq!(h.source, format!("imp2 test asset, format 1.{minor}"));
        assert_eq!(h.hostname, "asset-host");
        assert_eq!(h.kernel_release, "6.1.0-asset");
        assert_eq!(h.snaplen, 128);
        assert_eq!(h.created_ns, 1_700_000_000_000_000_000);
        assert_eq!(
            h.interfaces,
            vec![
                Interface {
                    ifindex: 1,
                    name: "lo".into()
                },
                Interface {
                    ifindex: 2,
                    name: "eth0".into()
                },
            ]
        );
        assert!(r.is_closed(), "1.{minor}: not closed");
        let (evs, err) = read_all(&r);
        assert!(err.is_none(), "1.{minor}: {}", err.unwrap());
        assert_eq!(evs, expected(minor), "1.{minor}");
        // Verification with skipping finds nothing to skip.
        let (skip_evs, skip_err) = read_all_skipping(&r);
        assert!(skip_err.is_none());
        assert_eq!(skip_evs, evs);
    }
}

#[test]
fn a_damaged_record_frame_is_found_and_skipped() {
    let r = LogReader::open(&asset("v1.2-damaged.log")).unwrap();
    // The damage (one flipped byte in record 5's data) is in the first
    // RECORDS frame: a verifying walk stops there with an error, having
    // given no record of it.
    let (evs, err) = read_all(&r);
    assert!(err.is_some(), "the damage was not found");
    assert!(records_of(&evs).is_empty(), "{evs:?}");
    // Skipping passes over that frame and reads all the rest.
    let (evs, err) = read_all_skipping(&r);
    assert!(err.is_none(), "{}", err.unwrap());
    let mut want = expected(2);
    want.drain(0..6);
    assert!(matches!(evs[0], Ev::Skip(_)), "{evs:?}");
    assert_eq!(evs[1..], want[..]);
}
