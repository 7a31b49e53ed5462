//! Disk reservation of a short log and cutting a dead recorder's log back
//! to its committed length.

mod log_support;

use imp2_format::log::{LogReader, LogWriter, TrimError, WriterOptions, trim_to_committed};
use log_support::*;

/// What a writer that dies after a few records leaves on disk, with the
/// recorder's options in every write mode: the first reservation (about a
/// MiB), not a whole 64 MiB chunk.
#[test]
fn a_short_log_reserves_a_mebibyte_not_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    for (i, mode) in [
        imp2_format::log::WriteMode::Pwrite,
        imp2_format::log::WriteMode::Mmap,
        imp2_format::log::WriteMode::Direct,
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("short-{i}.log"));
        let opts = WriterOptions {
            mode,
            ..WriterOptions::default()
        };
        let Ok(mut w) = LogWriter::create_with(&path, &header(&[(1, "lo")]), opts) else {
            // Direct I/O needs file system support (tmpfs before 6.6 has none).
            assert_eq!(mode, imp2_format::log::WriteMode::Direct);
            continue;
        };
        for r in sample_records(3, 7) {
            w.append(&r.as_record()).unwrap();
        }
        w.commit().unwrap();
        w.flush_committed().unwrap();
        // Like kill -9: no destructor, no truncation.
        std::mem::forget(w);
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(
            len <= 1 << 20,
            "{mode:?}: a 3-record log left {len} bytes reserved"
        );
        let r = LogReader::open(&path).unwrap();
        assert_eq!(records_of(&read_all(&r).0).len(), 3);
    }
}

#[test]
fn trim_cuts_a_dead_writers_reservation_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.log");
    let recs = sample_records(500, 3);
    let mut w = LogWriter::create(&live, &header(&[(1, "lo"), (2, "eth0")])).unwrap();
    for r in &recs {
        w.append(&r.as_record()).unwrap();
    }
    w.commit().unwrap();
    // What a killed writer leaves: the file as it is, reservation included,
    // and no lock (a copy, as the writer here still holds its own).
    let path = dir.path().join("dead.log");
    std::fs::copy(&live, &path).unwrap();
    drop(w);
    let before = std::fs::metadata(&path).unwrap().len();
    let committed = LogReader::open(&path).unwrap().committed_len();
    assert!(before > committed);

    let t = trim_to_committed(&path).unwrap();
    assert_eq!((t.from, t.to), (before, committed));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), committed);
    let r = LogReader::open(&path).unwrap();
    assert_eq!(r.uncommitted_len(), 0);
    let (evs, err) = read_all(&r);
    assert!(err.is_none());
    assert_eq!(records_of(&evs), recs);
    // Once more: nothing to do.
    let t = trim_to_committed(&path).unwrap();
    assert_eq!((t.from, t.to), (committed, committed));
}

#[test]
fn trim_refuses_a_log_that_is_being_written_and_what_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.log");
    let mut w = LogWriter::create(&path, &header(&[])).unwrap();
    for r in sample_records(10, 1) {
        w.append(&r.as_record()).unwrap();
    }
    w.commit().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    match trim_to_committed(&path) {
        Err(TrimError::Write(e)) => {
            assert!(
                e.to_string()
                    .contains("is being written by another process"),
                "{e}"
            )
        }
        other => panic!("a live log was not refused: {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len, "not cut");
    w.finish(1_700_000_001_000_000_000).unwrap();

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"not a log at all").unwrap();
    assert!(matches!(trim_to_committed(&text), Err(TrimError::Read(_))));
    assert_eq!(std::fs::read(&text).unwrap(), b"not a log at all");
}
