//! Damaged logs: files cut at any offset and bytes flipped anywhere. The
//! reader must never panic, must hand out exactly the contents of the
//! intact frames before the damage, and must end with an error carrying the
//! offset of the damaged frame.

mod log_support;

use imp2_format::log::{Interface, LogReader, LogWriter, Losses, ReadErrorKind, Skipped};
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
        // Skipping damage changes nothing for a file that is only cut.
        let (skip_evs, skip_err) = read_all_skipping(&r);
        assert_eq!(skip_evs, evs, "cut {cut}");
        assert_eq!(
            skip_err.map(|e| e.to_string()),
            err.as_ref().map(|e| e.to_string()),
            "cut {cut}"
        );
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

/// A flipped byte anywhere in a frame (length, type, flags, CRC or
/// payload) ends the walk at that frame. Read with `OnDamage::Skip`,
/// exactly that frame is lost and reported, and every frame after it is
/// read.
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

        let (evs, err) = read_all_skipping(&r);
        assert!(err.is_none(), "flip at {off}: {}", err.unwrap());
        assert_eq!(
            without_reasons(evs),
            log.events_skipping(k),
            "flip at {off} (mask {mask:#x}), frame {k}"
        );
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

impl Log {
    fn events_after(&self, frame_index: usize) -> Vec<Ev> {
        self.frame_events[frame_index + 1..]
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// What a walk that skips damage yields when only frame `k` is damaged:
    /// everything but that frame, which is reported as skipped whole.
    fn events_skipping(&self, k: usize) -> Vec<Ev> {
        let f = self.frames[k];
        let mut evs = self.events_before(k);
        evs.push(Ev::Skip(Skipped {
            offset: f.start,
            len: f.end - f.start,
            reason: String::new(),
        }));
        evs.extend(self.events_after(k));
        evs
    }
}

/// `evs` with the reasons of skipped stretches blanked (tests compare where
/// and how much, the reason text is checked apart).
fn without_reasons(mut evs: Vec<Ev>) -> Vec<Ev> {
    for e in &mut evs {
        if let Ev::Skip(s) = e {
            assert!(!s.reason.is_empty());
            s.reason.clear();
        }
    }
    evs
}

/// Two damaged frames far apart, one with its length zeroed (so the walk
/// must search for the next frame): both are skipped, the rest is read.
/// The reasons name what was wrong.
#[test]
fn skipping_two_damaged_frames_one_with_a_broken_length() {
    let log = build_log();
    let (a, b) = (5, log.frames.len() / 2);
    let mut bytes = log.bytes.clone();
    let fa = log.frames[a];
    bytes[fa.start as usize..fa.start as usize + 4].copy_from_slice(&[0; 4]);
    let fb = log.frames[b];
    bytes[fb.end as usize - 1] ^= 0x40;
    let r = LogReader::from_bytes(bytes).unwrap();
    let (evs, err) = read_all_skipping(&r);
    assert!(err.is_none());
    let skipped: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::Skip(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        (skipped[0].offset, skipped[0].len),
        (fa.start, fa.end - fa.start)
    );
    assert!(
        skipped[0].reason.contains("checksum"),
        "{}",
        skipped[0].reason
    );
    assert_eq!(
        (skipped[1].offset, skipped[1].len),
        (fb.start, fb.end - fb.start)
    );
    let mut want = log.events_before(a);
    want.push(Ev::Skip(Skipped {
        offset: fa.start,
        len: fa.end - fa.start,
        reason: String::new(),
    }));
    want.extend(log.frame_events[a + 1..b].iter().flatten().cloned());
    want.push(Ev::Skip(Skipped {
        offset: fb.start,
        len: fb.end - fb.start,
        reason: String::new(),
    }));
    want.extend(log.events_after(b));
    assert_eq!(without_reasons(evs), want);
    // The default walk still stops at the first.
    let (evs, err) = read_all(&r);
    assert_eq!(evs, log.events_before(a));
    assert_eq!(err.unwrap().offset, fa.start);
}

/// A packet may carry bytes that form an intact frame (a log copied over
/// the network while being captured). When the frame holding that packet is
/// damaged but its length survived, the walk resumes after the whole frame
/// and never takes the packet's bytes for a frame of the log.
#[test]
fn skipping_does_not_take_a_packet_for_a_frame() {
    // An intact INTERFACE frame (FORMAT.md section 4): payload_len 8, type
    // 2, flags and reserved 0, CRC; payload ifindex 77 and the name "evil".
    let mut payload = 77u32.to_le_bytes().to_vec();
    payload.extend_from_slice(b"evil");
    let mut inner = (payload.len() as u32).to_le_bytes().to_vec();
    inner.extend_from_slice(&[2, 0, 0, 0]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&inner[..8]), &payload);
    inner.extend_from_slice(&crc.to_le_bytes());
    inner.extend_from_slice(&payload);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inner.log");
    let mut recs = sample_records(3, 8);
    recs[1].data = inner.clone();
    recs[1].orig_len = inner.len() as u32;
    let mut w = LogWriter::create(&path, &header(&[(2, "eth0")])).unwrap();
    for r in &recs {
        w.append(&r.as_record()).unwrap();
    }
    w.commit().unwrap();
    w.append(&recs[0].as_record()).unwrap();
    w.finish(1).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let frames = walk_frames(&bytes);
    // The packet's bytes are in the first frame, and are an intact frame.
    let at = bytes
        .windows(inner.len())
        .position(|w| w == inner.as_slice())
        .unwrap() as u64;
    assert!(frames[0].start < at && at < frames[0].end);

    // Damage the first frame's record count (its length stays right).
    bytes[frames[0].start as usize + 12 + 8] ^= 0xff;
    let r = LogReader::from_bytes(bytes).unwrap();
    let (evs, err) = read_all_skipping(&r);
    assert!(err.is_none());
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Ev::If(i) if i.name == "evil")),
        "{evs:?}"
    );
    assert!(
        matches!(&evs[0], Ev::Skip(s) if s.offset == frames[0].start && s.len == frames[0].end - frames[0].start)
    );
    assert_eq!(records_of(&evs), [recs[0].clone()]);
    assert!(matches!(evs.last(), Some(Ev::Foot(_))));
}

/// Skipping goes as far as the file does: a torn tail still ends the walk
/// with its error, after the damage before it was skipped; a damaged footer
/// is skipped without a complaint that the closed log has none; a frame
/// after the footer is skipped with everything after it.
#[test]
fn skipping_ends_at_a_torn_tail_and_after_the_footer() {
    let log = build_log();
    let (_, committed) = lengths(&log.bytes);
    let n = log.frames.len();

    // Damage in frame 2, then cut inside frame n - 3.
    let mut b = log.bytes.clone();
    b[log.frames[2].start as usize + 20] ^= 1;
    b.truncate(log.frames[n - 3].start as usize + 5);
    let (evs, err) = read_all_skipping(&LogReader::from_bytes(b).unwrap());
    let err = err.unwrap();
    assert!(matches!(err.kind, ReadErrorKind::TornTail { .. }), "{err}");
    assert_eq!(err.offset, log.frames[n - 3].start);
    let mut want = log.events_skipping(2);
    let after: usize = log.frame_events[n - 3..].iter().map(Vec::len).sum();
    want.truncate(want.len() - after);
    assert_eq!(without_reasons(evs), want);

    // The same cut, with frame 2's length damaged to end exactly at the
    // committed length: that end is past the tear, so it is not trusted;
    // the walk finds frame 3 and still reports the torn tail.
    let mut b = log.bytes.clone();
    let f2 = log.frames[2];
    let len = (committed - f2.start - 12) as u32;
    b[f2.start as usize..f2.start as usize + 4].copy_from_slice(&len.to_le_bytes());
    b.truncate(log.frames[n - 3].start as usize + 5);
    let (evs2, err) = read_all_skipping(&LogReader::from_bytes(b).unwrap());
    assert!(matches!(err.unwrap().kind, ReadErrorKind::TornTail { .. }));
    assert_eq!(without_reasons(evs2), want);

    // Damage the footer: skipped, no "has no footer" error.
    let mut b = log.bytes.clone();
    b[committed as usize - 1] ^= 1;
    let (evs, err) = read_all_skipping(&LogReader::from_bytes(b).unwrap());
    assert!(err.is_none(), "{}", err.unwrap());
    assert_eq!(without_reasons(evs), log.events_skipping(n - 1));

    // Two copies of the last frame after the footer: one stretch skipped.
    let last = log.frames[n - 1];
    let mut b = log.bytes.clone();
    let copy = b[last.start as usize..last.end as usize].to_vec();
    b.extend_from_slice(&copy);
    b.extend_from_slice(&copy);
    let new_committed = b.len() as u64;
    b[16..24].copy_from_slice(&new_committed.to_le_bytes());
    let (evs, err) = read_all_skipping(&LogReader::from_bytes(b).unwrap());
    assert!(err.is_none());
    let mut want: Vec<Ev> = log.frame_events.iter().flatten().cloned().collect();
    want.push(Ev::Skip(Skipped {
        offset: committed,
        len: new_committed - committed,
        reason: String::new(),
    }));
    assert_eq!(without_reasons(evs), want);
}

/// A length damaged into a larger one that lands exactly on a later frame
/// (or on the committed length) looks like an intact end. The intact frames
/// in between are still found: only the damaged frame is lost.
#[test]
fn a_length_damaged_onto_a_later_frame_costs_only_its_frame() {
    let log = build_log();
    let (_, committed) = lengths(&log.bytes);
    let k = 7;
    let f = log.frames[k];
    for wrong_end in [log.frames[k + 2].start, log.frames[k + 5].start, committed] {
        let mut b = log.bytes.clone();
        let len = (wrong_end - f.start - 12) as u32;
        b[f.start as usize..f.start as usize + 4].copy_from_slice(&len.to_le_bytes());
        let (evs, err) = read_all_skipping(&LogReader::from_bytes(b).unwrap());
        assert!(err.is_none());
        assert_eq!(
            without_reasons(evs),
            log.events_skipping(k),
            "length pointing at {wrong_end}"
        );
    }
}

/// A log marked closed whose committed prefix ends before the footer (no
/// damage to skip): skipping does not hide it, the walk ends with the same
/// error as without skipping (found by the `log_sealed` fuzz target, which
/// saw an empty skipped stretch instead).
#[test]
fn skipping_still_reports_a_closed_log_without_footer() {
    let log = build_log();
    let n = log.frames.len();
    let mut b = log.bytes.clone();
    let footer_start = log.frames[n - 1].start;
    b[16..24].copy_from_slice(&footer_start.to_le_bytes());
    let r = LogReader::from_bytes(b).unwrap();
    let (evs, err) = read_all_skipping(&r);
    assert_eq!(evs, log.events_before(n - 1));
    let err = err.unwrap();
    assert_eq!(err.offset, footer_start);
    assert!(err.to_string().contains("no footer"), "{err}");
}
