//! Round trips through LogWriter and LogReader, and the reader's handling
//! of versions, unknown frames and bad input.

mod log_support;

use imp2_format::log::{
    Footer, Interface, LogReader, LogWriter, Losses, ReadErrorKind, StopCause, StopReason,
    WriteMode, WriterOptions,
};
use log_support::*;

/// Writes `recs`, committing after a varying number of records, with
/// interface and loss frames in between, stopped by `stop()`; returns the
/// expected events (no footer) and the footer `finish` returned.
fn write_log(path: &std::path::Path, opts: WriterOptions, recs: &[Rec]) -> (Vec<Ev>, Footer) {
    let mut w = LogWriter::create_with(path, &header(&[(1, "lo"), (2, "eth0")]), opts).unwrap();
    let mut expected = Vec::new();
    let mut rng = Rng(42);
    let mut in_frame = 0;
    let mut losses_total = Losses::default();
    for (i, r) in recs.iter().enumerate() {
        w.append(&r.as_record()).unwrap();
        expected.push(Ev::Rec(r.clone()));
        in_frame += 1;
        if in_frame > rng.below(700) as usize {
            w.commit().unwrap();
            in_frame = 0;
        }
        if i % 1500 == 700 {
            let i = Interface {
                ifindex: 7 + i as u32,
                name: format!("veth{i}"),
            };
            w.add_interface(&i).unwrap();
            expected.push(Ev::If(i));
        }
        if i % 2000 == 999 {
            let l = Losses {
                kernel: [1, 2, 3, i as u64],
                gap_records: 5,
                gap_batches: 1,
                truncated_batches: 0,
                malformed_messages: 2,
                socket_errors: u64::MAX / 4,
                unwritten: 7,
            };
            w.add_losses(&l).unwrap();
            losses_total.add(&l);
            expected.push(Ev::Loss(l));
        }
    }
    assert_eq!(w.records(), recs.len() as u64);
    assert_eq!(*w.losses(), losses_total);
    w.set_stop(stop());
    let footer = w.finish(1_800_000_000_000_000_000).unwrap();
    (expected, footer)
}

/// Why the runs of `write_log` end.
fn stop() -> StopReason {
    StopReason::new(StopCause::Signal, "SIGTERM")
}

fn expected_footer(recs: &[Rec], losses: Losses, closed_ns: u64) -> Footer {
    Footer {
        records: recs.len() as u64,
        captured_bytes: recs.iter().map(|r| r.data.len() as u64).sum(),
        original_bytes: recs.iter().map(|r| u64::from(r.orig_len)).sum(),
        first_ns: recs.iter().map(|r| r.tstamp_ns).min().unwrap_or(0),
        last_ns: recs.iter().map(|r| r.tstamp_ns).max().unwrap_or(0),
        closed_ns,
        losses,
        stop: Some(stop()),
    }
}

/// Records that exercise every corner of the record encoding.
fn edge_records() -> Vec<Rec> {
    let r = |tstamp_ns, ifindex, orig_len, hook, family, protocol, data: Vec<u8>| Rec {
        tstamp_ns,
        ifindex,
        orig_len,
        hook,
        family,
        protocol,
        data,
    };
    vec![
        r(5, 0, 0, 0, 2, 0, vec![]), // everything "same" as frame start
        r(u64::MAX, u32::MAX, u32::MAX, 3, 10, 255, vec![1, 2, 3]), // extremes
        r(0, 1, 1500, 0, 10, 6, vec![]), // huge negative delta, empty capture
        r(1, 1, 60, 3, 2, 17, vec![0xaa; 60]), // whole packet
        r(1, 1, 60, 255, 255, 17, vec![0x55; 10]), // extended hook/family, cut
        r(2, 1, 60, 0, 0, 17, vec![0x11; 60]), // family 0: extended
        r(3, 2, 70000, 3, 10, 58, vec![7; 65535]), // 64 KiB capture
    ]
}

#[test]
fn round_trip_everything_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs = edge_records();
    recs.extend(sample_records(6000, 7));
    recs.extend(edge_records());
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("rt{m}.log"));
        let (mut expected, footer) = write_log(&path, opts, &recs);
        let losses = expected.iter().fold(Losses::default(), |mut acc, e| {
            if let Ev::Loss(l) = e {
                acc.add(l);
            }
            acc
        });
        assert_eq!(
            footer,
            expected_footer(&recs, losses, 1_800_000_000_000_000_000)
        );
        expected.push(Ev::Foot(footer));

        let r = LogReader::open(&path).unwrap();
        assert_eq!(
            r.header(),
            &header(&[(1, "lo"), (2, "eth0")]),
            "mode {opts:?}"
        );
        assert!(r.is_closed());
        let file_len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            r.committed_len(),
            file_len,
            "finish truncates to the committed length"
        );
        assert_eq!(r.uncommitted_len(), 0);
        let (evs, err) = read_all(&r);
        assert!(err.is_none(), "mode {opts:?}: {}", err.unwrap());
        assert_eq!(evs.len(), expected.len());
        for (i, (a, b)) in evs.iter().zip(&expected).enumerate() {
            assert_eq!(a, b, "mode {opts:?}, event {i}");
        }
        // Many frames were written, back to back from the header on.
        let frames = walk_frames(&std::fs::read(&path).unwrap());
        assert!(frames.len() > 20, "{} frames", frames.len());
        assert_eq!(frames.last().unwrap().frame_type, 4);
    }
}

#[test]
fn identical_files_from_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let recs = sample_records(3000, 11);
    let mut files = Vec::new();
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("same{m}.log"));
        write_log(&path, opts, &recs);
        files.push(std::fs::read(&path).unwrap());
    }
    assert!(
        files.windows(2).all(|w| w[0] == w[1]),
        "write modes produce different bytes"
    );
}

#[test]
fn empty_log() {
    let dir = tempfile::tempdir().unwrap();
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("empty{m}.log"));
        let w = LogWriter::create_with(&path, &header(&[]), opts).unwrap();
        assert_eq!(w.committed_len(), 4096);
        let footer = w.finish(99).unwrap();
        assert_eq!(
            footer,
            Footer {
                closed_ns: 99,
                ..Footer::default()
            }
        );
        let r = LogReader::open(&path).unwrap();
        let (evs, err) = read_all(&r);
        assert!(err.is_none());
        assert_eq!(evs, vec![Ev::Foot(footer)]);
        // The footer: 48 fixed bytes, 10 loss varints, stop cause 0 and an
        // empty detail ("not recorded").
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            4096 + 12 + 48 + 10 + 2
        );
    }
}

#[test]
fn big_records_long_frames_and_long_headers() {
    let dir = tempfile::tempdir().unwrap();
    // 300 interfaces do not fit in 4096 bytes: the header grows to 8192.
    let names: Vec<String> = (0..300).map(|i| format!("interface-{i:06}")).collect();
    let ifs: Vec<(u32, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u32, n.as_str()))
        .collect();
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("big{m}.log"));
        let mut w = LogWriter::create_with(&path, &header(&ifs), opts).unwrap();
        assert_eq!(w.committed_len(), 8192);
        let mut recs = Vec::new();
        // One 5 MiB record: larger than any window or initial buffer.
        recs.push(Rec {
            tstamp_ns: 1,
            ifindex: 3,
            orig_len: 5 << 20,
            hook: 0,
            family: 2,
            protocol: 6,
            data: vec![9; 5 << 20],
        });
        // 40 MiB without a commit: split into frames of at most 16 MiB.
        for i in 0..40_000u32 {
            recs.push(Rec {
                tstamp_ns: 2 + u64::from(i),
                ifindex: 3,
                orig_len: 1000,
                hook: 3,
                family: 10,
                protocol: 17,
                data: vec![i as u8; 1000],
            });
        }
        for r in &recs {
            w.append(&r.as_record()).unwrap();
        }
        w.finish(5).unwrap();
        let r = LogReader::open(&path).unwrap();
        assert_eq!(r.header().interfaces.len(), 300);
        assert_eq!(r.header().interfaces[299].name, "interface-000299");
        let (evs, err) = read_all(&r);
        assert!(err.is_none(), "{}", err.unwrap());
        assert_eq!(records_of(&evs), recs);
        let frames = walk_frames(&std::fs::read(&path).unwrap());
        assert!(frames.len() >= 4, "long frames were not split");
        assert!(
            frames
                .iter()
                .all(|f| f.end - f.start <= (16 << 20) + 1100 || f.count == 1)
        );
    }
}

#[test]
fn invalid_record_is_refused_and_writer_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    for (m, opts) in modes().into_iter().enumerate() {
        let path = dir.path().join(format!("inv{m}.log"));
        let mut w = LogWriter::create_with(&path, &header(&[]), opts).unwrap();
        let good = Rec {
            tstamp_ns: 1,
            ifindex: 1,
            orig_len: 4,
            hook: 0,
            family: 2,
            protocol: 6,
            data: vec![1; 4],
        };
        let bad = Rec {
            orig_len: 3,
            ..good.clone()
        };
        w.append(&good.as_record()).unwrap();
        let e = w.append(&bad.as_record()).unwrap_err();
        assert!(!e.is_disk_full());
        assert!(e.to_string().contains("original length of 3"), "{e}");
        w.append(&good.as_record()).unwrap();
        w.finish(2).unwrap();
        let (evs, err) = read_all(&LogReader::open(&path).unwrap());
        assert!(err.is_none());
        assert_eq!(records_of(&evs), vec![good.clone(), good]);
    }
}

#[test]
fn oversized_header_string_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = header(&[]);
    h.hostname = "x".repeat(70_000);
    let e = LogWriter::create(&dir.path().join("h.log"), &h).unwrap_err();
    assert!(e.to_string().contains("hostname is too long"), "{e}");
}

/// Recomputes the header CRC after a test edited the header.
fn fix_header_crc(b: &mut [u8]) {
    let static_len = u32_at(b, 28) as usize;
    let mut crc = crc32c::crc32c(&b[..16]);
    crc = crc32c::crc32c_append(crc, &b[28..32 + static_len]);
    b[32 + static_len..36 + static_len].copy_from_slice(&crc.to_le_bytes());
}

fn small_log(dir: &std::path::Path) -> (Vec<u8>, Vec<Rec>) {
    let path = dir.join("small.log");
    let recs = sample_records(100, 3);
    let mut w = LogWriter::create(&path, &header(&[(1, "lo")])).unwrap();
    for r in &recs {
        w.append(&r.as_record()).unwrap();
    }
    w.finish(1).unwrap();
    (std::fs::read(&path).unwrap(), recs)
}

#[test]
fn versions_magic_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = small_log(dir.path());

    // A newer minor version is read normally.
    let mut b = bytes.clone();
    b[10..12].copy_from_slice(&7u16.to_le_bytes());
    fix_header_crc(&mut b);
    let r = LogReader::from_bytes(b).unwrap();
    assert_eq!(r.version(), (1, 7));
    assert_eq!(records_of(&read_all(&r).0), recs);

    // A newer major version is refused, with a clear message.
    let mut b = bytes.clone();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    b[10..12].copy_from_slice(&1u16.to_le_bytes()); // not whatever this writer writes
    let path = dir.path().join("v2.log");
    std::fs::write(&path, &b).unwrap();
    let e = LogReader::open(&path).unwrap_err();
    assert!(matches!(
        e.kind,
        ReadErrorKind::UnsupportedVersion { major: 2, minor: 1 }
    ));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: written by format version 2.1, this reader supports 1.x",
            path.display()
        )
    );

    // Not a log at all.
    let path = dir.path().join("run.log");
    std::fs::write(&path, b"hello world, this is not a log").unwrap();
    let e = LogReader::open(&path).unwrap_err();
    assert!(matches!(e.kind, ReadErrorKind::NotALog));
    assert_eq!(
        e.to_string(),
        format!("{}: not an imp2 log (bad magic)", path.display())
    );
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        LogReader::open(&path).unwrap_err().kind,
        ReadErrorKind::NotALog
    ));

    // Missing file: the OS error, with the path.
    let e = LogReader::open(&dir.path().join("nope.log")).unwrap_err();
    assert!(matches!(e.kind, ReadErrorKind::Io(_)));
    assert!(e.to_string().contains("nope.log: No such file"), "{e}");

    // A damaged static header.
    let mut b = bytes.clone();
    b[40] ^= 1; // snaplen
    let e = LogReader::from_bytes(b).unwrap_err();
    assert!(matches!(e.kind, ReadErrorKind::BadHeader(_)));
    assert!(
        e.to_string()
            .starts_with("damaged header: header checksum mismatch"),
        "{e}"
    );

    // A damaged frame: one line with its offset, no Debug output.
    let mut b = bytes.clone();
    b[4096 + 30] ^= 0x40;
    let r = LogReader::from_bytes(b).unwrap();
    let e = read_all(&r).1.unwrap();
    assert_eq!(e.offset, 4096);
    let msg = e.to_string();
    assert!(
        msg.starts_with("damaged frame at byte 4096: checksum mismatch (stored 0x"),
        "{msg}"
    );
    assert!(!msg.contains('{') && !msg.contains('\n'), "{msg}");
}

#[test]
fn unknown_frames_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = small_log(dir.path());
    let (header_len, committed) = lengths(&bytes);
    // A frame of type 42 from a later minor version, inserted first.
    let payload = b"something new";
    let mut frame = Vec::new();
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&[42, 0, 0, 0]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..8]), payload);
    frame.extend_from_slice(&crc.to_le_bytes());
    frame.extend_from_slice(payload);
    let h = header_len as usize;
    let mut b = bytes[..h].to_vec();
    b.extend_from_slice(&frame);
    b.extend_from_slice(&bytes[h..]);
    let new_committed = committed + frame.len() as u64;
    b[16..24].copy_from_slice(&new_committed.to_le_bytes());
    let r = LogReader::from_bytes(b.clone()).unwrap();
    let (evs, err) = read_all(&r);
    assert!(err.is_none(), "{}", err.unwrap());
    assert_eq!(records_of(&evs), recs);
    assert!(matches!(evs.last(), Some(Ev::Foot(_))));

    // Its CRC is still checked.
    b[h + 12] ^= 1;
    let e = read_all(&LogReader::from_bytes(b).unwrap()).1.unwrap();
    assert_eq!(e.offset, header_len);
    assert!(matches!(e.kind, ReadErrorKind::BadChecksum { .. }));
}

#[test]
fn uncommitted_tail_is_reported_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, recs) = small_log(dir.path());
    let committed = bytes.len() as u64;
    bytes.extend_from_slice(&[0xee; 1000]);
    let r = LogReader::from_bytes(bytes).unwrap();
    assert_eq!(r.committed_len(), committed);
    assert_eq!(r.uncommitted_len(), 1000);
    let (evs, err) = read_all(&r);
    assert!(err.is_none());
    assert_eq!(records_of(&evs), recs);
}

#[test]
fn mmap_mode_with_default_chunks() {
    // The recorder's defaults in the other mode, past one 64 MiB window.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mmap.log");
    let opts = WriterOptions {
        mode: WriteMode::Mmap,
        ..WriterOptions::default()
    };
    let mut w = LogWriter::create_with(&path, &header(&[]), opts).unwrap();
    let data = vec![0x5a; 1400];
    let n = 70_000u64; // ~98 MB
    for i in 0..n {
        let r = Rec {
            tstamp_ns: i * 1000,
            ifindex: 2,
            orig_len: 1400,
            hook: 0,
            family: 2,
            protocol: 6,
            data: data.clone(),
        };
        w.append(&r.as_record()).unwrap();
        if i % 500 == 499 {
            w.commit().unwrap();
        }
    }
    w.finish(0).unwrap();
    let r = LogReader::open(&path).unwrap();
    let mut count = 0u64;
    for e in r.events() {
        match e.unwrap() {
            imp2_format::log::LogEvent::Record(rec) => {
                assert_eq!(rec.tstamp_ns, count * 1000);
                assert_eq!(rec.data, &data[..]);
                count += 1;
            }
            imp2_format::log::LogEvent::Footer(f) => assert_eq!(f.records, n),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(count, n);
}

/// A sealed frame of `frame_type` with `flags`, as FORMAT.md section 4.
fn frame(frame_type: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_le_bytes().to_vec();
    f.extend_from_slice(&[frame_type, flags, 0, 0]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&f[..8]), payload);
    f.extend_from_slice(&crc.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// `bytes` with `extra` appended and committed.
fn with_frame_appended(bytes: &[u8], extra: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b.extend_from_slice(extra);
    let committed = b.len() as u64;
    b[16..24].copy_from_slice(&committed.to_le_bytes());
    b
}

#[test]
fn footer_must_be_last_and_present() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, recs) = small_log(dir.path());
    let (_, committed) = lengths(&bytes);

    // A valid INTERFACE frame after the footer.
    let mut iface = 9u32.to_le_bytes().to_vec();
    iface.extend_from_slice(b"late0");
    let b = with_frame_appended(&bytes, &frame(2, 0, &iface));
    let (evs, err) = read_all(&LogReader::from_bytes(b).unwrap());
    assert_eq!(records_of(&evs), recs);
    assert!(matches!(evs.last(), Some(Ev::Foot(_))));
    let err = err.expect("frame after the footer accepted");
    assert_eq!(err.offset, committed);
    assert!(err.to_string().contains("after the footer"), "{err}");

    // A log marked closed whose footer is gone.
    let footer_start = walk_frames(&bytes).last().unwrap().start;
    let mut b = bytes[..footer_start as usize].to_vec();
    b[16..24].copy_from_slice(&footer_start.to_le_bytes());
    let (evs, err) = read_all(&LogReader::from_bytes(b.clone()).unwrap());
    assert_eq!(records_of(&evs), recs);
    let err = err.expect("closed log without footer accepted");
    assert!(err.to_string().contains("no footer"), "{err}");
    // The same while recording is fine.
    b[24..28].copy_from_slice(&0u32.to_le_bytes());
    let (evs, err) = read_all(&LogReader::from_bytes(b).unwrap());
    assert!(err.is_none());
    assert_eq!(records_of(&evs), recs);
}

#[test]
fn frame_flags_must_be_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.log");
    drop(LogWriter::create(&path, &header(&[])).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let (header_len, _) = lengths(&bytes);
    let base = &bytes[..header_len as usize];
    let mut iface = 9u32.to_le_bytes().to_vec();
    iface.extend_from_slice(b"x");
    let (evs, err) =
        read_all(&LogReader::from_bytes(with_frame_appended(base, &frame(2, 0, &iface))).unwrap());
    assert!(err.is_none());
    assert_eq!(evs.len(), 1);
    for flags in [1u8, 0x80] {
        let b = with_frame_appended(base, &frame(2, flags, &iface));
        let (evs, err) = read_all(&LogReader::from_bytes(b).unwrap());
        assert!(evs.is_empty());
        let err = err.expect("non-zero flags accepted");
        assert_eq!(err.offset, header_len);
        assert!(matches!(err.kind, ReadErrorKind::BadFrame(_)), "{err}");
    }
}

/// A second writer on the same path is refused while the first holds it,
/// leaves the first one's log intact, and may take the path once the
/// first has finished.
#[test]
fn a_second_writer_on_the_same_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.log");
    let recs = sample_records(100, 7);
    for opts in modes() {
        let mut first = LogWriter::create_with(&path, &header(&[(1, "lo")]), opts).unwrap();
        for r in &recs[..50] {
            first.append(&r.as_record()).unwrap();
        }
        first.commit().unwrap();

        let err = LogWriter::create_with(&path, &header(&[]), opts).unwrap_err();
        assert_eq!(err.source.raw_os_error(), Some(libc::EWOULDBLOCK), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("is being written by another process"), "{msg}");
        // This very process holds the lock.
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );

        for r in &recs[50..] {
            first.append(&r.as_record()).unwrap();
        }
        first.finish(1).unwrap();
        let (events, damage) = read_all(&LogReader::open(&path).unwrap());
        assert!(damage.is_none(), "{damage:?}");
        assert_eq!(records_of(&events), recs, "{opts:?}");

        // Finished and closed: the path is free again.
        LogWriter::create_with(&path, &header(&[]), opts).unwrap();
    }
}
