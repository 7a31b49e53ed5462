//! The FOOTER payload (FORMAT.md section 7): the totals of a cleanly
//! closed log, its loss totals and (1.2) why the run stopped.

use super::codec::{Cursor, lossy, push_varint};
use super::error::FrameError;
use super::losses::{MAX_LOSSES_PAYLOAD, MIN_LOSSES_PAYLOAD, decode_losses, encode_losses};
use crate::log::{Footer, StopCause, StopReason, cut_detail};

/// The fixed part of a FOOTER payload: six `u64`.
pub(crate) const FOOTER_FIXED_LEN: usize = 6 * 8;
/// Shortest FOOTER payload: the fixed part, then the shortest LOSSES.
pub(crate) const MIN_FOOTER_PAYLOAD: usize = FOOTER_FIXED_LEN + MIN_LOSSES_PAYLOAD;
/// Largest stop reason (1.2): the cause (a `u64` varint), the detail's
/// length (a `u32` varint) and the detail, which the writer cuts.
const MAX_STOP_REASON: usize = 10 + 5 + StopReason::MAX_DETAIL;
/// Largest FOOTER payload: six u64, the loss varints and the stop reason.
/// The writer holds this much back for closing a log on a full disk.
pub(crate) const MAX_FOOTER_PAYLOAD: usize =
    FOOTER_FIXED_LEN + MAX_LOSSES_PAYLOAD + MAX_STOP_REASON;

pub(crate) fn encode_footer(f: &Footer) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_FOOTER_PAYLOAD);
    for v in [
        f.records,
        f.captured_bytes,
        f.original_bytes,
        f.first_ns,
        f.last_ns,
        f.closed_ns,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    encode_losses(&mut out, &f.losses);
    // 1.2: always written, "not recorded" (0, no detail) included, so that
    // a later field can follow it.
    let (cause, detail) = match &f.stop {
        Some(s) => (s.cause.code(), cut_detail(&s.detail)),
        None => (0, ""),
    };
    push_varint(&mut out, cause);
    push_varint(&mut out, detail.len() as u64);
    out.extend_from_slice(detail.as_bytes());
    out
}

/// Decodes the stop reason after a FOOTER's loss counters: none before 1.2
/// (nothing left), none for cause 0. Once it has started it must be whole:
/// a cut varint or detail is an error, as a cut loss counter is.
fn decode_stop(c: &mut Cursor<'_>) -> Result<Option<StopReason>, FrameError> {
    if c.remaining() == 0 {
        return Ok(None); // written before format 1.2
    }
    let code = c.varint_u64().map_err(FrameError::StopCause)?;
    let len = c.varint_u32().map_err(FrameError::StopDetailLen)?;
    let left = c.remaining();
    let detail = c
        .bytes(len as usize)
        .map_err(|_| FrameError::StopDetailPastEnd { len, left })?;
    Ok(StopCause::from_code(code).map(|cause| StopReason {
        cause,
        detail: lossy(detail),
    }))
}

/// Decodes a FOOTER payload; trailing bytes are ignored as for LOSSES.
pub(crate) fn decode_footer(payload: &[u8]) -> Result<Footer, FrameError> {
    let mut c = Cursor::new(payload);
    let mut v = [0u64; 6];
    for slot in &mut v {
        *slot = c
            .u64()
            .map_err(|_| FrameError::FooterShort { len: payload.len() })?;
    }
    Ok(Footer {
        records: v[0],
        captured_bytes: v[1],
        original_bytes: v[2],
        first_ns: v[3],
        last_ns: v[4],
        closed_ns: v[5],
        losses: decode_losses(&mut c)?,
        stop: decode_stop(&mut c)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Losses;

    /// 1.0 and 1.1 FOOTERs (nine and ten loss varints, no stop reason)
    /// still read: no unwritten in 1.0, no stop reason in either.
    #[test]
    fn footers_of_versions_1_0_and_1_1_read() {
        let f = Footer {
            records: 3,
            closed_ns: 9,
            losses: Losses {
                gap_records: 2,
                unwritten: 4,
                ..Losses::default()
            },
            stop: None,
            ..Footer::default()
        };
        let new = encode_footer(&f);
        assert_eq!(new.len(), 48 + 10 + 2, "1.2 writes cause 0, length 0");
        assert_eq!(&new[58..], [0x00, 0x00]);
        assert_eq!(decode_footer(&new), Ok(f.clone()));
        // 1.1: the ten loss varints end the payload.
        assert_eq!(decode_footer(&new[..48 + 10]), Ok(f.clone()));
        // 1.0: nine.
        let v1_0 = Footer {
            losses: Losses {
                unwritten: 0,
                ..f.losses
            },
            ..f
        };
        assert_eq!(decode_footer(&new[..48 + 9]), Ok(v1_0));
    }

    /// A 1.2 FOOTER, byte by byte.
    #[test]
    fn footer_golden_bytes_with_a_stop_reason() {
        let f = Footer {
            records: 2,
            captured_bytes: 0x0102,
            original_bytes: 0x0203,
            first_ns: 5,
            last_ns: 6,
            closed_ns: 7,
            losses: Losses {
                unwritten: 3,
                ..Losses::default()
            },
            stop: Some(StopReason::new(
                StopCause::WriteError,
                "No space left on device",
            )),
        };
        let out = encode_footer(&f);
        #[rustfmt::skip]
        let want = [
            0x02, 0, 0, 0, 0, 0, 0, 0,       // records 2
            0x02, 0x01, 0, 0, 0, 0, 0, 0,    // captured_bytes 0x0102
            0x03, 0x02, 0, 0, 0, 0, 0, 0,    // original_bytes 0x0203
            0x05, 0, 0, 0, 0, 0, 0, 0,       // first_ns 5
            0x06, 0, 0, 0, 0, 0, 0, 0,       // last_ns 6
            0x07, 0, 0, 0, 0, 0, 0, 0,       // closed_ns 7
            0x00, 0x00, 0x00, 0x00,          // kernel nomem, rcvbuf, send, other
            0x00, 0x00, 0x00, 0x00, 0x00,    // gap_records, gap_batches, truncated,
                                             // malformed, socket_errors
            0x03,                            // unwritten 3 (1.1)
            0x04,                            // stop cause 4: write error (1.2)
            0x17,                            // detail length 23
            b'N', b'o', b' ', b's', b'p', b'a', b'c', b'e', b' ', b'l', b'e', b'f',
            b't', b' ', b'o', b'n', b' ', b'd', b'e', b'v', b'i', b'c', b'e',
        ];
        assert_eq!(out, want);
        assert_eq!(decode_footer(&out), Ok(f.clone()));

        // Bytes after the stop reason are a later version's: ignored.
        let mut later = out.clone();
        later.extend_from_slice(&[0x2a, 0x80, 0x01]);
        assert_eq!(decode_footer(&later), Ok(f.clone()));

        // Cut inside the stop reason: an error, like a cut loss counter.
        // Inside the detail, at the length, and inside a long cause.
        for cut in [out.len() - 1, 48 + 10 + 1] {
            let e = decode_footer(&out[..cut]).unwrap_err().to_string();
            assert!(e.contains("stop"), "{cut}: {e}");
        }
        let mut long_cause = out[..58].to_vec();
        long_cause.push(0x80);
        assert!(
            decode_footer(&long_cause)
                .unwrap_err()
                .to_string()
                .contains("stop cause")
        );
    }

    /// Every cause's number, an unknown (later) one kept by number, cause 0
    /// read as "not recorded", and invalid UTF-8 replaced, not rejected.
    #[test]
    fn stop_causes_unknown_and_invalid_detail() {
        let base = encode_footer(&Footer::default());
        let with = |cause: &[u8], detail: &[u8]| {
            let mut p = base[..58].to_vec();
            p.extend_from_slice(cause);
            p.push(detail.len() as u8);
            p.extend_from_slice(detail);
            decode_footer(&p).map(|f| f.stop)
        };
        for (code, cause) in [
            (1, StopCause::Signal),
            (2, StopCause::Count),
            (3, StopCause::Duration),
            (4, StopCause::WriteError),
            (5, StopCause::ReceiveError),
        ] {
            assert_eq!(cause.code(), code);
            assert_eq!(StopCause::from_code(code), Some(cause));
            let got = with(&[code as u8], b"x").unwrap().unwrap();
            assert_eq!(got, StopReason::new(cause, "x"));
        }
        // A later version's cause 300 (varint 0xac 0x02).
        let other = with(&[0xac, 0x02], b"why").unwrap().unwrap();
        assert_eq!(other.cause, StopCause::Other(300));
        assert_eq!(other.cause.code(), 300);
        assert_eq!(other.to_string(), "cause 300: why");
        assert_eq!(with(&[0x00], b"ignored"), Ok(None));
        let bad = with(&[0x01], b"SIG\xffINT").unwrap().unwrap();
        assert_eq!(bad.detail, "SIG\u{fffd}INT");
        // What the writer stores round-trips through every cause.
        for cause in [StopCause::Signal, StopCause::Other(u64::MAX)] {
            let f = Footer {
                stop: Some(StopReason::new(cause, "é")),
                ..Footer::default()
            };
            assert_eq!(decode_footer(&encode_footer(&f)), Ok(f));
        }
    }

    /// A detail longer than the limit is cut at a character boundary, by
    /// `StopReason::new` and by the encoder (whose output must fit the
    /// writer's reserve whatever it is given).
    #[test]
    fn long_detail_is_cut_at_a_char_boundary() {
        // 'é' is two bytes: 1023 of them put a boundary at 1022 and 1024,
        // with a 'z' first they sit at 1023 and 1025.
        let long = format!("z{}", "é".repeat(1023));
        let cut = StopReason::new(StopCause::ReceiveError, long.clone());
        assert_eq!(cut.detail.len(), 1023);
        assert!(long.starts_with(&cut.detail));
        let f = Footer {
            stop: Some(StopReason {
                cause: StopCause::ReceiveError,
                detail: long,
            }),
            ..Footer::default()
        };
        let p = encode_footer(&f);
        assert!(p.len() <= MAX_FOOTER_PAYLOAD);
        assert_eq!(decode_footer(&p).unwrap().stop, Some(cut));
        let exact = "a".repeat(StopReason::MAX_DETAIL);
        assert_eq!(
            StopReason::new(StopCause::Count, exact.clone()).detail,
            exact
        );
    }

    #[test]
    fn stop_reason_display() {
        let line = |cause, detail: &str| StopReason::new(cause, detail).to_string();
        assert_eq!(line(StopCause::Signal, "SIGTERM"), "stopped by SIGTERM");
        assert_eq!(line(StopCause::Count, "1000"), "packet count 1000 reached");
        assert_eq!(line(StopCause::Duration, "60 s"), "duration 60 s reached");
        assert_eq!(
            line(StopCause::WriteError, "No space left on device"),
            "write error: No space left on device"
        );
        assert_eq!(line(StopCause::ReceiveError, "x"), "receive error: x");
        assert_eq!(line(StopCause::Signal, ""), "stopped by a signal");
        assert_eq!(line(StopCause::Other(9), ""), "cause 9");
    }
}
