//! What can be wrong with an NFLOG message or one of its attributes, and
//! where: the errors of every parser in [`crate::nflog`].

use std::fmt;

use crate::wire::{FrameError, FramingError};

/// What is wrong with a message or one of its attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedNflogReason {
    /// The message cannot be framed (the walk ends).
    Framing(FramingError),
    /// The payload is shorter than `struct nfgenmsg`.
    ShortNfgenmsg {
        /// Payload length.
        payload: usize,
    },
    /// 1-3 bytes after the last attribute, less than an attribute header.
    AttrTrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// `nla_len` smaller than the attribute header.
    AttrLengthBelowHeader {
        /// The claimed `nla_len`.
        len: u16,
    },
    /// `nla_len` runs past the end of the message.
    AttrLengthPastEnd {
        /// Attribute type (flag bits masked).
        kind: u16,
        /// The claimed `nla_len`.
        len: u16,
        /// Bytes available from the attribute start.
        available: usize,
    },
    /// A fixed-size attribute shorter than its type requires.
    AttrTooShort {
        /// Attribute type (flag bits masked).
        kind: u16,
        /// Value bytes present.
        len: usize,
        /// Value bytes required.
        need: usize,
    },
    /// A packet message without `NFULA_PACKET_HDR`.
    MissingPacketHeader,
    /// An `NLMSG_ERROR` payload shorter than its errno.
    ShortError {
        /// Payload length.
        payload: usize,
    },
}

impl MalformedNflogReason {
    /// Whether a walk can go on after this (only the content of a well
    /// framed message was bad).
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, MalformedNflogReason::Framing(_))
    }
}

impl fmt::Display for MalformedNflogReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MalformedNflogReason::Framing(e) => e.fmt(f),
            MalformedNflogReason::ShortNfgenmsg { payload } => {
                write!(
                    f,
                    "payload of {payload} bytes is shorter than struct nfgenmsg"
                )
            }
            MalformedNflogReason::AttrTrailingBytes { remaining } => {
                write!(
                    f,
                    "{remaining} bytes after the last attribute, less than its header"
                )
            }
            MalformedNflogReason::AttrLengthBelowHeader { len } => {
                write!(f, "nla_len {len} is below the attribute header size")
            }
            MalformedNflogReason::AttrLengthPastEnd {
                kind,
                len,
                available,
            } => write!(
                f,
                "attribute {kind}: nla_len {len} runs past the end of the message \
                 ({available} bytes left)"
            ),
            MalformedNflogReason::AttrTooShort { kind, len, need } => {
                write!(f, "attribute {kind}: {len} value bytes, needs {need}")
            }
            MalformedNflogReason::MissingPacketHeader => {
                f.write_str("packet message without NFULA_PACKET_HDR")
            }
            MalformedNflogReason::ShortError { payload } => {
                write!(
                    f,
                    "NLMSG_ERROR payload of {payload} bytes is shorter than an errno"
                )
            }
        }
    }
}

/// A malformed message or attribute and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedNflog {
    /// Byte offset of the broken structure (message or attribute header)
    /// in the parsed buffer.
    pub offset: usize,
    /// What is wrong.
    pub reason: MalformedNflogReason,
}

impl fmt::Display for MalformedNflog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed NFLOG message at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for MalformedNflog {}

impl From<FrameError> for MalformedNflog {
    fn from(e: FrameError) -> MalformedNflog {
        MalformedNflog {
            offset: e.offset,
            reason: MalformedNflogReason::Framing(e.error),
        }
    }
}
