//! The byte layout of a log (`format/FORMAT.md`), one file per block:
//!
//! - `codec.rs`: little-endian fields, varints, zigzag (section 1);
//! - `header.rs`: the file header (section 3);
//! - `frame.rs`: the frame header and its CRC (section 4);
//! - `records.rs`: the RECORDS payload, the writer's hot path (section 5);
//! - `interface.rs`, `losses.rs`, `footer.rs`: the other payloads
//!   (sections 4, 6 and 7);
//! - `error.rs`: what can be wrong with each, as typed errors.
//!
//! Everything here is pure: encoders write into caller-provided buffers,
//! decoders read from byte slices and return `Err` (never panic) on any
//! input, because logs are untrusted files. Nothing else in the workspace
//! knows the byte layout.

mod codec;
mod error;
mod footer;
mod frame;
mod header;
mod interface;
mod losses;
mod records;

pub(crate) use error::HeaderError;
pub(crate) use footer::{MAX_FOOTER_PAYLOAD, MIN_FOOTER_PAYLOAD, decode_footer, encode_footer};
pub(crate) use frame::{
    FRAME_FOOTER, FRAME_HEADER_LEN, FRAME_INTERFACE, FRAME_LOSSES, FRAME_RECORDS, frame_crc,
    seal_frame, seal_records_frame,
};
pub(crate) use header::{
    HeaderInfo, OFF_COMMITTED, OFF_STATE, OFF_STATIC, OFF_STATIC_LEN, STATE_CLOSED, VERSION_MAJOR,
    decode_header, encode_header,
};
pub(crate) use interface::{MIN_INTERFACE_PAYLOAD, decode_interface, encode_interface};
pub(crate) use losses::{
    MAX_LOSSES_PAYLOAD, MIN_LOSSES_PAYLOAD, decode_losses_payload, encode_losses,
};
pub(crate) use records::{
    MAX_RECORD_OVERHEAD, Prev, RECORDS_COUNT_OFF, RECORDS_PREFIX_LEN, decode_records, encode_record,
};
