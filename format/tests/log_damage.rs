//! Damaged logs: files cut at any offset and bytes flipped anywhere. The
//! reader must never panic, must hand out exactly the contents of the
//! intact frames before the damage, and must end with an error carrying the
//! offset of the damaged frame.

mod log_support;

use imp2_format::log::{Interface, LogReader, LogWriter, Losses, ReadErrorKind};
use log_support::*;

struct Log {
    bytes: Vec<u8>,
    frames: Vec<FrameInfo>,
    /// Events of the intact log, grouped by frame.
    frame_events: Vec<Vec<Ev>>,
    recs: Vec<Rec>,
}

impl Log {
    fn events_before(&self, frame_index: usize) -> Vec<Ev> {
        self.frame_events[..frame_index]
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// A closed log of about 60 KB: many small frames of small records, with
/// interface and loss frames between them.
fn build_log() -> Log {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damage.log");
    let mut recs = sample_records(1500, 99);
    for r in &mut recs {
        r.data.truncate(20);
    }
    let mut w = LogWriter::create(&path, &header(&[(1, "lo"), (2, "eth0")])).unwrap();
    let mut rng = Rng(5);
    for (i, r) in recs.iter().enumerate() {
        w.append(&r.as_record()).unwrap();
        if rng.below(40) == 0 {
            w.commit().unwrap();
        }
        if i % 400 == 100 {
            w.add_interface(&Interface {
                ifindex: 50 + i as u32,
                name: "wg0".into(),
            })
            .unwrap();
        }
        if i % 500 == 250 {
            w.add_losses(&Losses {
                gap_records: i as u64,
                ..Losses::default()
            })
            .unwrap();
        }
    }
    w.finish(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let frames = walk_frames(&bytes);

    let (evs, err) = read_all(&LogReader::from_bytes(bytes.clone()).unwrap());
    assert!(err.is_none());
    assert_eq!(records_of(&evs), recs);
    let mut it = evs.into_iter();
    let frame_events: Vec<Vec<Ev>> = frames
        .iter()
        .map(|f| {
            let n = if f.frame_type == 1 {
                f.count as usize
            } else {
                1
            };
            it.by_ref().take(n).collect()
        })
        .collect();
    assert!(it.next().is_none());
    assert!(frames.len() > 40, "only {} frames", frames.len());
    Log {
        bytes,
        frames,
        frame_events,
        recs,
    }
}

#[test]
fn cut_anywhere() {
    let log = build_log();
    let (header_len, committed) = lengths(&log.bytes);
    assert_eq!(committed, log.bytes.len() as u64);

    // Inside the header: refused at open or reported by the walk; nothing
    // is handed out, nothing panics.
    for cut in 0..header_len as usize {
        match LogReader::from_bytes(log.bytes[..cut].to_vec()) {
            Err(_) => {}
            Ok(r) => {
                let (evs, err) = read_all(&r);
                assert!(evs.is_empty(), "cut {cut}");
                let err = err.unwrap_or_else(|| panic!("cut {cut}: no error"));
                assert!(
                    matches!(err.kind, ReadErrorKind::TornTail { .. }),
                    "cut {cut}: {err}"
                );
                assert_eq!(err.offset, header_len);
            }
        }
    }

    // After the header: every offset of the first 8 KiB of frames, then a
    // stride through the rest, plus both sides of every frame boundary.
    let mut cuts: Vec<u64> = (header_len..header_len + 8192).collect();
    cuts.extend((header_len + 8192..=committed).step_by(7));
    for f in &log.frames {
        cuts.extend([f.end - 1, f.end, f.end + 1]);
    }
    cuts.retain(|&c| c <= committed);
    let mut torn = 0;
    for cut in cuts {
        let r = LogReader::from_bytes(log.bytes[..cut as usize].to_vec())
            .unwrap_or_else(|e| panic!("cut {cut}: header refused: {e}"));
        assert_eq!(r.committed_len(), committed);
        let (evs, err) = read_all(&r);
        let whole = log.frames.iter().take_while(|f| f.end <= cut).count();
        assert_eq!(evs, log.events_before(whole), "cut {cut}");
        assert_eq!(
            records_of(&evs),
            records_before(&log.frames, &log.recs, cut),
            "cut {cut}"
        );
        if cut < committed {
            let err = err.unwrap_or_else(|| panic!("cut {cut}: no error"));
            assert_eq!(err.offset, log.frames[whole].start, "cut {cut}: {err}");
            assert!(
                matches!(err.kind, ReadErrorKind::TornTail { committed: c, file_len } if c == committed && file_len == cut),
                "cut {cut}: {err}"
            );
            torn += 1;
        } else {
            assert!(err.is_none(), "cut {cut}: {}", err.unwrap());
        }
    }
    assert!(torn > 8000);
}

#[test]
fn flip_bytes_in_frames() {
    let log = build_log();
    let (header_len, committed) = lengths(&log.bytes);
    let mut rng = Rng(77);
    // Every byte of the first frames, then a stride, plus every frame
    // header byte (length, type, flags, CRC).
    let mut offsets: Vec<u64> = (header_len..log.frames[3].end).collect();
    offsets.extend((log.frames[3].end..committed).step_by(5));
    for f in &log.frames {
        offsets.extend(f.start..f.start + 12);
    }
    for off in offsets {
        let mut b = log.bytes.clone();
        let mask = 1 + rng.below(255) as u8;
        b[off as usize] ^= mask;
        let r = LogReader::from_bytes(b).unwrap();
        let (evs, err) = read_all(&r);
        let k = log.frames.iter().position(|f| off < f.end).unwrap();
        let err = err.unwrap_or_else(|| panic!("flip at {off} (mask {mask:#x}) not detected"));
        assert_eq!(err.offset, log.frames[k].start, "flip at {off}: {err}");
        assert!(
            matches!(
                err.kind,
                ReadErrorKind::BadChecksum { .. } | ReadErrorKind::BadFrame(_)
            ),
            "flip at {off}: {err}"
        );
        assert_eq!(evs, log.events_before(k), "flip at {off}");
    }
}

#[test]
fn flip_bytes_in_header() {
    let log = build_log();
    let (header_len, _) = lengths(&log.bytes);
    let static_end = 32 + u32_at(&log.bytes, 28) as u64 + 4;
    let mut rng = Rng(3);
    for off in (0..static_end).chain((static_end..header_len).step_by(61)) {
        let mut b = log.bytes.clone();
        b[off as usize] ^= 1 + rng.below(255) as u8;
        let mutable = (16..28).contains(&off); // committed_len, state
        let padding = off >= static_end;
        let Ok(r) = LogReader::from_bytes(b) else {
            assert!(!padding, "flip in the padding at {off} refused");
            continue;
        };
        // Everything checksummed is refused at open.
        assert!(mutable || padding, "flip at {off} accepted");
        let (evs, err) = read_all(&r);
        let recs = records_of(&evs);
        assert_eq!(recs, log.recs[..recs.len()], "flip at {off}: not a prefix");
        if (16..24).contains(&off) {
            // committed_len moved: less is read (and the footer is missing),
            // or the file looks torn.
            assert!(err.is_some(), "flip at {off}");
        } else {
            // Padding, or state 1 -> 0: a still-recording log with a footer.
            assert!(err.is_none(), "flip at {off}: {}", err.unwrap());
            assert_eq!(recs, log.recs);
        }
    }
}

/// Random bytes after a valid header never make the reader panic, whatever
/// committed length the header claims.
#[test]
fn garbage_frames() {
    let log = build_log();
    let (header_len, _) = lengths(&log.bytes);
    let mut rng = Rng(1234);
    for round in 0..2000 {
        let mut b = log.bytes[..header_len as usize].to_vec();
        let n = rng.below(300) as usize;
        b.extend((0..n).map(|_| rng.next() as u8));
        let committed = header_len + rng.below(n as u64 + 20);
        b[16..24].copy_from_slice(&committed.to_le_bytes());
        b[24..28].copy_from_slice(&0u32.to_le_bytes()); // recording: no footer expected
        let r = LogReader::from_bytes(b).unwrap();
        let (evs, err) = read_all(&r);
        // Random bytes essentially never carry a valid CRC.
        assert!(evs.is_empty(), "round {round}");
        assert_eq!(err.is_some(), committed != header_len, "round {round}");
    }
}
