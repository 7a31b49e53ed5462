//! The frame block (FORMAT.md section 4): a 12-byte header with the
//! payload length, the type and a CRC32C over both and the payload.

use super::records::RECORDS_PREFIX_LEN;
use crate::crc;

/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// Frame types.
pub(crate) const FRAME_RECORDS: u8 = 1;
pub(crate) const FRAME_INTERFACE: u8 = 2;
pub(crate) const FRAME_LOSSES: u8 = 3;
pub(crate) const FRAME_FOOTER: u8 = 4;

/// Fills the frame header of `frame` (12 header bytes + payload) with the
/// payload length, the type and the CRC.
pub(crate) fn seal_frame(frame: &mut [u8], frame_type: u8) {
    write_frame_head(frame, frame_type);
    let crc = frame_crc(&frame[..8], &frame[FRAME_HEADER_LEN..]);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// The first 8 header bytes of `frame`: payload length, type, reserved.
fn write_frame_head(frame: &mut [u8], frame_type: u8) {
    let payload_len = (frame.len() - FRAME_HEADER_LEN) as u32;
    frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
    frame[4] = frame_type;
    frame[5] = 0;
    frame[6..8].fill(0);
}

/// CRC of a frame: its first 8 header bytes, then its payload.
pub(crate) fn frame_crc(head8: &[u8], payload: &[u8]) -> u32 {
    crc::crc32c_append(crc::crc32c(head8), payload)
}

/// Like [`seal_frame`] for a RECORDS frame whose records (the payload after
/// its 12-byte prefix) have CRC `records_crc`, computed while they were
/// encoded and still in cache: only the 20 header and prefix bytes are
/// read again.
pub(crate) fn seal_records_frame(frame: &mut [u8], records_crc: u32) {
    write_frame_head(frame, FRAME_RECORDS);
    let prefix_end = FRAME_HEADER_LEN + RECORDS_PREFIX_LEN;
    let head = frame_crc(&frame[..8], &frame[FRAME_HEADER_LEN..prefix_end]);
    let crc = crc::crc32c_combine(head, records_crc, (frame.len() - prefix_end) as u64);
    frame[8..12].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_frame_seal_matches_seal() {
        let mut frame: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
        let mut other = frame.clone();
        seal_frame(&mut other, FRAME_RECORDS);
        let records_crc = crc::crc32c(&frame[FRAME_HEADER_LEN + RECORDS_PREFIX_LEN..]);
        seal_records_frame(&mut frame, records_crc);
        assert_eq!(frame, other);
    }
}
