//! Logs whose checksums are right but whose contents are arbitrary (a
//! buggy or hostile writer): reading every event and exporting to pcapng
//! and pcap never panics, also when skipping damaged frames.
//!
//! `log_reader` feeds raw bytes, which almost never get past the header's
//! CRC32C, so the payload decoders behind it stay out of reach. Here the
//! input only describes the log; the target builds it and seals every
//! checksum:
//!
//! ```text
//! byte 0        bit 0: state "closed cleanly"; bit 1: committed_len 1-64
//!               bytes short of the frames' end (a torn last frame)
//! bytes 1-2     static_len (u16 LE), then that many bytes of static part
//! then frames   u8 frame_type, u16 LE payload_len, payload bytes
//! ```
//!
//! Lengths are cut to what the input holds, so every input is some log.
#![no_main]

use std::io::Sink;

use imp2_format::export::{
    ExportOptions, Format, LinkType, export_pcap, export_pcapng, export_with,
};
use imp2_format::log::{LogEvent, LogReader, OnDamage, ReadErrorKind};
use libfuzzer_sys::fuzz_target;

/// Where frames start: the header's page.
const HEADER_LEN: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Some(log) = build(data) {
        read_all(log);
    }
});

/// The log `data` describes, or `None` when its static part does not fit
/// in the header's page.
fn build(data: &[u8]) -> Option<Vec<u8>> {
    let (&flags, rest) = data.split_first()?;
    let (static_len, rest) = take_u16(rest);
    let static_part = &rest[..static_len.min(rest.len())];
    let mut frames_in = &rest[static_part.len()..];
    if 32 + static_part.len() + 4 > HEADER_LEN {
        return None;
    }

    let mut log = Vec::with_capacity(HEADER_LEN + frames_in.len() + 64);
    log.extend_from_slice(b"IMP2LOG\0"); // magic
    log.extend_from_slice(&1u16.to_le_bytes()); // major
    log.extend_from_slice(&0u16.to_le_bytes()); // minor
    log.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes()); // header_len
    log.extend_from_slice(&0u64.to_le_bytes()); // committed_len, set below
    log.extend_from_slice(&u32::from(flags & 1).to_le_bytes()); // state
    log.extend_from_slice(&(static_part.len() as u32).to_le_bytes()); // static_len
    log.extend_from_slice(static_part);
    // header_crc: bytes [0, 16) then [28, 32 + static_len).
    let crc = crc32c::crc32c_append(crc32c::crc32c(&log[..16]), &log[28..]);
    log.extend_from_slice(&crc.to_le_bytes());
    log.resize(HEADER_LEN, 0);

    while let Some((&frame_type, rest)) = frames_in.split_first() {
        let (len, rest) = take_u16(rest);
        let payload = &rest[..len.min(rest.len())];
        frames_in = &rest[payload.len()..];
        let start = log.len();
        log.extend_from_slice(&(payload.len() as u32).to_le_bytes()); // payload_len
        log.extend_from_slice(&[frame_type, 0, 0, 0]); // type, flags, reserved
        // crc: frame bytes [0, 8) then the payload.
        let crc = crc32c::crc32c_append(crc32c::crc32c(&log[start..start + 8]), payload);
        log.extend_from_slice(&crc.to_le_bytes());
        log.extend_from_slice(payload);
    }

    let mut committed = log.len();
    if flags & 2 != 0 {
        committed = committed
            .saturating_sub(1 + usize::from(flags >> 2))
            .max(HEADER_LEN);
    }
    log[16..24].copy_from_slice(&(committed as u64).to_le_bytes());
    Some(log)
}

/// A u16 LE length from the front of `b` (missing bytes read as 0).
fn take_u16(b: &[u8]) -> (usize, &[u8]) {
    let mut v = [0u8; 2];
    let n = b.len().min(2);
    v[..n].copy_from_slice(&b[..n]);
    (usize::from(u16::from_le_bytes(v)), &b[n..])
}

fn read_all(log: Vec<u8>) {
    let Ok(reader) = LogReader::from_bytes(log) else {
        return;
    };
    for event in reader.events() {
        if event.is_err() {
            break;
        }
    }
    // Export stops at the first damaged frame, like the reader; its
    // errors are results, not panics.
    let _ = export_pcapng(&reader, Sink::default());
    let _ = export_pcap(&reader, Sink::default());
    // Skipping damage: the stretches skipped lie in the committed prefix,
    // in order, without overlapping, and are not empty; only a torn tail or
    // a missing footer ends the walk.
    skip_all(&reader);
    let _ = export_with(&reader, Format::Pcapng, Sink::default(), OnDamage::Skip);
    // The other link type: no header in front of the packets.
    let raw = ExportOptions {
        on_damage: OnDamage::Skip,
        link_type: LinkType::Raw,
    };
    let _ = export_with(&reader, Format::Pcap, Sink::default(), raw);
}

fn skip_all(reader: &LogReader) {
    let mut next_free = reader.header_len();
    for event in reader.events_with(OnDamage::Skip) {
        match event {
            Ok(LogEvent::Skipped(s)) => {
                assert!(s.offset >= next_free, "{s:?} overlaps what came before");
                assert!(s.len > 0, "{s:?}");
                next_free = s.offset + s.len;
                assert!(next_free <= reader.committed_len(), "{s:?}");
            }
            Ok(_) => {}
            // A torn tail, or a closed log's missing footer (reported at
            // the committed length): nothing left to skip.
            Err(e) => {
                assert!(
                    matches!(e.kind, ReadErrorKind::TornTail { .. })
                        || e.offset == reader.committed_len(),
                    "{e}"
                );
                break;
            }
        }
    }
}
