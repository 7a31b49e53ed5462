//! What can be wrong with a log's bytes, and with a header that cannot be
//! encoded: one enum per block, each with the offsets and values that
//! were wrong. `Display` gives the texts readers and tools show (they are
//! asserted by the tools' tests: change them only on purpose).

use std::fmt;

use super::footer::FOOTER_FIXED_LEN;
use super::header::STATIC_FIXED_LEN;
use super::records::RECORDS_PREFIX_LEN;

/// A field that cannot be read: a bounds or range problem found by the
/// [`Cursor`](super::codec::Cursor), or a record field that breaks a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Fixed-size bytes run past the end of what is read.
    PastEnd,
    /// A varint is cut by the end.
    VarintPastEnd,
    /// A varint's value does not fit in `bits` bits (32 or 64).
    VarintOverflow {
        /// 32 or 64.
        bits: u8,
    },
    /// A varint is longer than `max` bytes (5 or 10).
    VarintTooLong {
        /// 5 or 10.
        max: u8,
    },
    /// A record's reserved flag bits are set.
    ReservedFlags,
    /// A record has OUT or IPV6 together with EXT.
    ExtendedWithBits,
    /// A record's `cap_len` exceeds its `orig_len`.
    CapExceedsOrig,
    /// A record's data runs past the payload.
    DataPastFrame,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::PastEnd => f.write_str("runs past the end"),
            Malformed::VarintPastEnd => f.write_str("varint runs past the end"),
            Malformed::VarintOverflow { bits } => write!(f, "varint overflows {bits} bits"),
            Malformed::VarintTooLong { max } => write!(f, "varint longer than {max} bytes"),
            Malformed::ReservedFlags => f.write_str("reserved record flag bits set"),
            Malformed::ExtendedWithBits => {
                f.write_str("hook or family bit set together with the extended flag")
            }
            Malformed::CapExceedsOrig => f.write_str("captured length exceeds original length"),
            Malformed::DataPastFrame => f.write_str("packet data runs past the frame"),
        }
    }
}

/// Why a header cannot be encoded (what a writer was given does not fit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// A TLV value is longer than its `u16` length field holds.
    TooLong {
        /// Which field: `source`, `hostname`, `kernel release`,
        /// `interface name`.
        what: &'static str,
        /// Its length, bytes.
        len: usize,
    },
    /// The static part or the whole header overflows its `u32` length.
    HeaderTooLarge,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { what, len } => write!(
                f,
                "{what} is too long for the header ({len} bytes, at most 65535)"
            ),
            EncodeError::HeaderTooLarge => f.write_str("header too large"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why a header cannot be decoded, for the reader to turn into its error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// No imp2 magic.
    NotALog,
    /// Another major version (major, minor).
    Version(u16, u16),
    /// A damaged header: what is wrong, at which file offset.
    Bad {
        /// File offset of the field concerned.
        offset: u64,
        /// What is wrong.
        problem: HeaderProblem,
    },
}

/// What is wrong with a header of the right magic and major version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    /// The file ends before the fixed 32 bytes.
    TooShort {
        /// File length.
        file_len: usize,
    },
    /// `static_len` overflows an offset.
    StaticLenImpossible {
        /// The stored `static_len`.
        static_len: usize,
    },
    /// The static part and its CRC do not fit in `header_len`.
    StaticPastHeader {
        /// The stored `static_len`.
        static_len: usize,
        /// The stored `header_len`.
        header_len: u32,
    },
    /// The static part is shorter than its fixed fields.
    StaticTooShort {
        /// The stored `static_len`.
        static_len: usize,
    },
    /// The file ends inside the checksummed header.
    Cut {
        /// File length.
        file_len: usize,
        /// End of the header's CRC.
        crc_end: usize,
    },
    /// `header_crc` does not match.
    Checksum {
        /// Stored CRC.
        stored: u32,
        /// Computed CRC.
        computed: u32,
    },
    /// `state` is neither recording nor closed.
    UnknownState(u32),
    /// `committed_len` lies inside the header.
    CommittedInsideHeader {
        /// The loaded `committed_len`.
        committed: u64,
        /// The stored `header_len`.
        header_len: u32,
    },
    /// A fixed field of the static part cannot be read (never: its length
    /// is checked first).
    StaticField(Malformed),
    /// A TLV entry runs past the static part.
    EntryPastEnd,
    /// An interface entry is too short for its ifindex.
    InterfaceEntryShort {
        /// The entry's value length.
        len: usize,
    },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::TooShort { file_len } => write!(
                f,
                "file is {file_len} bytes, too short for the fixed header (32 bytes)"
            ),
            HeaderProblem::StaticLenImpossible { static_len } => {
                write!(f, "static part length {static_len} is impossible")
            }
            HeaderProblem::StaticPastHeader {
                static_len,
                header_len,
            } => write!(
                f,
                "static part ({static_len} bytes) does not fit in the header length {header_len}"
            ),
            HeaderProblem::StaticTooShort { static_len } => write!(
                f,
                "static part is {static_len} bytes, at least {STATIC_FIXED_LEN} expected"
            ),
            HeaderProblem::Cut { file_len, crc_end } => write!(
                f,
                "file is {file_len} bytes, cut inside the {crc_end}-byte header"
            ),
            HeaderProblem::Checksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            HeaderProblem::UnknownState(state) => write!(f, "unknown state {state}"),
            HeaderProblem::CommittedInsideHeader {
                committed,
                header_len,
            } => write!(
                f,
                "committed length {committed} is inside the {header_len}-byte header"
            ),
            HeaderProblem::StaticField(why) => write!(f, "static part: {why}"),
            HeaderProblem::EntryPastEnd => f.write_str("header entry runs past the static part"),
            HeaderProblem::InterfaceEntryShort { len } => {
                write!(f, "interface entry is {len} bytes, at least 4 expected")
            }
        }
    }
}

/// What is wrong with the payload of a frame whose CRC matched (a writer's
/// error or a hostile file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A RECORDS payload shorter than its prefix.
    RecordsPrefix {
        /// Payload length.
        len: usize,
    },
    /// More records announced than the payload can hold.
    ImpossibleCount {
        /// Announced count.
        count: usize,
        /// Payload length.
        len: usize,
    },
    /// Record `index`, at payload byte `at`, is malformed.
    Record {
        /// Index of the record in the frame.
        index: usize,
        /// Its first byte in the payload.
        at: usize,
        /// What is wrong.
        why: Malformed,
    },
    /// Bytes after the announced records.
    LeftOver {
        /// Bytes left.
        left: usize,
        /// Announced count.
        count: usize,
    },
    /// An INTERFACE payload too short for its ifindex.
    InterfaceShort {
        /// Payload length.
        len: usize,
    },
    /// Loss counter `index` cannot be read.
    LossCounter {
        /// Index of the counter (FORMAT.md section 6 order).
        index: usize,
        /// What is wrong.
        why: Malformed,
    },
    /// A FOOTER payload shorter than its fixed part.
    FooterShort {
        /// Payload length.
        len: usize,
    },
    /// The stop cause varint cannot be read.
    StopCause(Malformed),
    /// The stop detail's length varint cannot be read.
    StopDetailLen(Malformed),
    /// The stop detail runs past the payload.
    StopDetailPastEnd {
        /// The detail's stored length.
        len: u32,
        /// Payload bytes left for it.
        left: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::RecordsPrefix { len } => write!(
                f,
                "records payload is {len} bytes, shorter than its {RECORDS_PREFIX_LEN}-byte prefix"
            ),
            FrameError::ImpossibleCount { count, len } => write!(
                f,
                "record count {count} is impossible in a {len}-byte payload"
            ),
            FrameError::Record { index, at, why } => {
                write!(f, "record {index} at payload byte {at}: {why}")
            }
            FrameError::LeftOver { left, count } => write!(
                f,
                "{left} bytes left after the {count} records the frame announces"
            ),
            FrameError::InterfaceShort { len } => {
                write!(f, "interface payload is {len} bytes, at least 4 expected")
            }
            FrameError::LossCounter { index, why } => write!(f, "loss counter {index}: {why}"),
            FrameError::FooterShort { len } => write!(
                f,
                "footer payload is {len} bytes, shorter than its {FOOTER_FIXED_LEN} fixed bytes"
            ),
            FrameError::StopCause(why) => write!(f, "stop cause: {why}"),
            FrameError::StopDetailLen(why) => write!(f, "stop detail length: {why}"),
            FrameError::StopDetailPastEnd { len, left } => write!(
                f,
                "stop detail of {len} bytes runs past the footer ({left} bytes left)"
            ),
        }
    }
}
