//! The LOSSES payload (FORMAT.md section 6): loss counters as varints,
//! deltas since the previous LOSSES frame. The FOOTER carries the same
//! counters as totals.

use super::codec::{Cursor, push_varint};
use super::error::FrameError;
use crate::log::Losses;

/// Loss counters of version 1.0 (LOSSES and FOOTER): always present.
const LOSS_COUNTERS_V1_0: usize = 9;
/// Loss counters written now: 1.0's and `unwritten` (an optional trailing
/// field for readers, which a 1.0 reader ignores).
const LOSS_COUNTERS: usize = 10;
/// Largest LOSSES payload.
pub(crate) const MAX_LOSSES_PAYLOAD: usize = LOSS_COUNTERS * 10;
/// Shortest LOSSES payload: the counters of version 1.0, a byte each.
pub(crate) const MIN_LOSSES_PAYLOAD: usize = LOSS_COUNTERS_V1_0;

fn loss_counters(l: &Losses) -> [u64; LOSS_COUNTERS] {
    let k = &l.kernel;
    [
        k[0],
        k[1],
        k[2],
        k[3],
        l.gap_records,
        l.gap_batches,
        l.truncated_batches,
        l.malformed_messages,
        l.socket_errors,
        l.unwritten,
    ]
}

pub(crate) fn encode_losses(out: &mut Vec<u8>, l: &Losses) {
    for v in loss_counters(l) {
        push_varint(out, v);
    }
}

/// The loss counters at the cursor: 1.0's nine, and `unwritten` when the
/// payload goes on (FOOTER uses it too).
pub(super) fn decode_losses(c: &mut Cursor<'_>) -> Result<Losses, FrameError> {
    let mut v = [0u64; LOSS_COUNTERS];
    for (i, slot) in v.iter_mut().enumerate() {
        if i >= LOSS_COUNTERS_V1_0 && c.remaining() == 0 {
            break; // written before the counter existed: 0
        }
        *slot = c
            .varint_u64()
            .map_err(|why| FrameError::LossCounter { index: i, why })?;
    }
    Ok(Losses {
        kernel: [v[0], v[1], v[2], v[3]],
        gap_records: v[4],
        gap_batches: v[5],
        truncated_batches: v[6],
        malformed_messages: v[7],
        socket_errors: v[8],
        unwritten: v[9],
    })
}

/// Decodes a LOSSES payload; bytes after the known counters are ignored
/// (a later minor version may add counters).
pub(crate) fn decode_losses_payload(payload: &[u8]) -> Result<Losses, FrameError> {
    decode_losses(&mut Cursor::new(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LOSSES payloads of both versions, byte by byte.
    #[test]
    fn losses_golden_bytes_and_the_1_0_form() {
        let l = Losses {
            kernel: [1, 2, 0, 0],
            gap_records: 300,
            socket_errors: 5,
            unwritten: 7,
            ..Losses::default()
        };
        let mut out = Vec::new();
        encode_losses(&mut out, &l);
        #[rustfmt::skip]
        let want = [
            0x01, 0x02, 0x00, 0x00, // kernel nomem, rcvbuf, send, other
            0xac, 0x02,             // gap_records 300 = 0x2c | 0x80, 300 >> 7
            0x00, 0x00, 0x00,       // gap_batches, truncated, malformed
            0x05,                   // socket_errors
            0x07,                   // unwritten (1.1)
        ];
        assert_eq!(out, want);
        assert_eq!(decode_losses_payload(&out), Ok(l));
        // A 1.0 writer stops after socket_errors: unwritten reads as 0.
        let v1_0 = decode_losses_payload(&want[..10]).unwrap();
        assert_eq!(v1_0, Losses { unwritten: 0, ..l });
        // Bytes after the known counters are a later version's: ignored.
        let mut later = want.to_vec();
        later.extend_from_slice(&[0x09, 0x7f]);
        assert_eq!(decode_losses_payload(&later), Ok(l));
        // Cut inside the first nine counters: an error.
        assert!(decode_losses_payload(&want[..9]).is_err());
        // A started but cut 10th counter is an error too, not a 0.
        assert!(decode_losses_payload(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]).is_err());
    }
}
