//! Walking one received netlink buffer (one batch) message by message, with
//! the semantics of `NLMSG_OK`/`NLMSG_NEXT` and every length checked
//! ([`Frames`]), into typed imp2 messages.
//!
//! The bytes are untrusted: the walker never panics and never reads out of
//! bounds. A message whose *framing* is broken (its length is below the
//! header size or runs past the buffer) ends the walk, since nothing after it
//! can be located; a well-framed message whose *content* is bad (a record
//! shorter than its header, a short trailer) is reported and skipped, and the
//! walk goes on.

use super::abi;
use super::{
    BatchTrailer, Frame, FrameError, Frames, FramingError, Located, NlError, NlHeader, get_u32,
    get_u64,
};
use crate::record::{Family, Hook, PacketRecord};

/// A typed message from a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchMessage<'a> {
    /// `IMP2_MSG_RECORD`: one captured packet.
    Record(PacketRecord<'a>),
    /// `NLMSG_DONE` with an imp2 trailer: the end of a batch.
    Done(BatchTrailer),
    /// `NLMSG_ERROR`: `errno` is 0 for an ACK, else a negative errno;
    /// `request` is the header of the message it answers, when included.
    Error {
        /// 0 (ACK) or a negative errno.
        errno: i32,
        /// Header of the request being answered, if present.
        request: Option<NlHeader>,
    },
    /// `NLMSG_OVERRUN`: the sender says data was lost.
    Overrun,
    /// `NLMSG_NOOP`: nothing.
    Noop,
    /// A well-framed message of a type imp2 does not know (including the
    /// requests REGISTER and UNREGISTER, which only the kernel receives).
    Unknown {
        /// `nlmsg_type`
        msg_type: u16,
        /// Bytes after the header.
        payload: &'a [u8],
    },
}

/// What is wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedBatchReason {
    /// The message cannot be framed (the walk ends).
    Framing(FramingError),
    /// A RECORD payload shorter than `struct imp2_record` (skipped).
    ShortRecord {
        /// Payload length.
        payload: usize,
    },
    /// A RECORD carrying more bytes than its original length (skipped).
    CapturedPastOriginal {
        /// Captured bytes present.
        captured: usize,
        /// `orig_len` claimed.
        orig_len: u32,
    },
    /// An `NLMSG_DONE` payload shorter than the imp2 trailer (skipped).
    ShortTrailer {
        /// Payload length.
        payload: usize,
    },
    /// An `NLMSG_ERROR` payload shorter than its errno (skipped).
    ShortError {
        /// Payload length.
        payload: usize,
    },
}

impl MalformedBatchReason {
    /// Whether the walk can go on after this (the message's length was
    /// valid, only its content was not).
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, MalformedBatchReason::Framing(_))
    }
}

impl std::fmt::Display for MalformedBatchReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            MalformedBatchReason::Framing(e) => e.fmt(f),
            MalformedBatchReason::ShortRecord { payload } => {
                write!(
                    f,
                    "record payload of {payload} bytes is shorter than its header"
                )
            }
            MalformedBatchReason::CapturedPastOriginal { captured, orig_len } => {
                write!(
                    f,
                    "record carries {captured} bytes but claims orig_len {orig_len}"
                )
            }
            MalformedBatchReason::ShortTrailer { payload } => {
                write!(
                    f,
                    "NLMSG_DONE payload of {payload} bytes is shorter than the trailer"
                )
            }
            MalformedBatchReason::ShortError { payload } => {
                write!(
                    f,
                    "NLMSG_ERROR payload of {payload} bytes is shorter than an errno"
                )
            }
        }
    }
}

/// A malformed message and where it starts in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedBatch {
    /// Byte offset of the message in the walked buffer.
    pub offset: usize,
    /// What is wrong.
    pub reason: MalformedBatchReason,
}

impl std::fmt::Display for MalformedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed message at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for MalformedBatch {}

impl From<FrameError> for MalformedBatch {
    fn from(e: FrameError) -> MalformedBatch {
        MalformedBatch {
            offset: e.offset,
            reason: MalformedBatchReason::Framing(e.error),
        }
    }
}

/// One message of a batch with its position in the buffer.
pub type BatchItem<'a> = Located<BatchMessage<'a>>;

/// Iterator over the messages of one received buffer.
///
/// Yields `Ok` for each valid message and `Err` for each malformed one;
/// after a framing error it yields nothing more.
#[derive(Clone, Debug)]
pub struct BatchWalker<'a> {
    frames: Frames<'a>,
}

impl<'a> BatchWalker<'a> {
    /// Walks `buf`, which holds what one `recv` returned.
    pub fn new(buf: &'a [u8]) -> BatchWalker<'a> {
        BatchWalker {
            frames: Frames::new(buf),
        }
    }

    /// Offset of the next message (the buffer length once done).
    pub fn position(&self) -> usize {
        self.frames.position()
    }
}

impl<'a> Iterator for BatchWalker<'a> {
    type Item = Result<BatchItem<'a>, MalformedBatch>;

    /// Record messages take [`BatchWalker::next_record`]'s fast path
    /// (inlined: a caller that uses neither the header nor the offset does
    /// not pay for them); everything else goes to the out-of-line
    /// `BatchWalker::next_slow`.
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.frames.position();
        match self.next_record_with_header() {
            Some((header, record)) => Some(Ok(BatchItem {
                offset,
                header,
                message: BatchMessage::Record(record),
            })),
            None => self.next_slow(),
        }
    }
}

impl<'a> BatchWalker<'a> {
    /// The next message if it is a well-formed RECORD, which it then steps
    /// over; `None` (without moving) for anything else: another type, a
    /// malformed message or the end, which [`Iterator::next`] then yields.
    ///
    /// The hot loop of a consumer that only keeps records:
    ///
    /// ```
    /// # use imp2_format::wire::BatchWalker;
    /// # let buf = [0u8; 0];
    /// let mut walker = BatchWalker::new(&buf);
    /// loop {
    ///     if let Some(record) = walker.next_record() {
    ///         // append `record`
    ///         continue;
    ///     }
    ///     let Some(item) = walker.next() else { break };
    ///     // trailer, error, malformed message...
    /// }
    /// ```
    ///
    /// It yields exactly what `next` yields for the same message, but in
    /// a few instructions: the record is returned in registers rather
    /// than as a [`BatchItem`] built in memory, and no header field besides
    /// the length and type is read.
    #[inline]
    pub fn next_record(&mut self) -> Option<PacketRecord<'a>> {
        self.next_record_with_header().map(|(_, record)| record)
    }

    /// [`BatchWalker::next_record`] with the message header.
    #[inline(always)]
    fn next_record_with_header(&mut self) -> Option<(NlHeader, PacketRecord<'a>)> {
        const HEAD: usize = abi::NLMSG_HDRLEN + abi::record::SIZE;
        let (head, tail) = self.frames.rest().split_first_chunk::<HEAD>()?;
        let len = ne_u32(head, abi::nlmsghdr::LEN.offset);
        let msg_type = ne_u16(head, abi::nlmsghdr::TYPE.offset);
        let orig_len = ne_u32(head, REC + abi::record::ORIG_LEN.offset);
        // Captured bytes the message claims. Wraps to a huge value when
        // `len` is below a record message: the first check then fails and
        // `next_slow` reports it. Three comparisons in all: within the
        // buffer, type, at most `orig_len`; `next_slow` tells which failed.
        let data_len = (len as usize).wrapping_sub(HEAD);
        let data = tail.get(..data_len)?;
        if msg_type != abi::MSG_RECORD || data_len > orig_len as usize {
            return None;
        }
        // NLMSG_NEXT as in `next_slow`: `len` fits the buffer.
        self.frames.advance(len as usize);
        let header = NlHeader {
            len,
            msg_type,
            flags: ne_u16(head, abi::nlmsghdr::FLAGS.offset),
            seq: ne_u32(head, abi::nlmsghdr::SEQ.offset),
            pid: ne_u32(head, abi::nlmsghdr::PID.offset),
        };
        let record = PacketRecord {
            tstamp_ns: ne_u64(head, REC + abi::record::TSTAMP_NS.offset),
            ifindex: ne_u32(head, REC + abi::record::IFINDEX.offset),
            orig_len,
            hook: Hook(head[REC + abi::record::HOOK.offset]),
            family: Family(head[REC + abi::record::FAMILY.offset]),
            protocol: head[REC + abi::record::PROTOCOL.offset],
            data,
        };
        Some((header, record))
    }

    /// Every message the fast path does not take, with every check in the
    /// documented order.
    #[cold]
    #[inline(never)]
    fn next_slow(&mut self) -> Option<Result<BatchItem<'a>, MalformedBatch>> {
        let Frame {
            offset,
            header,
            payload,
        } = match self.frames.next()? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e.into())),
        };
        let message = match header.msg_type {
            abi::MSG_RECORD => parse_record(payload),
            abi::NLMSG_DONE => BatchTrailer::parse(payload).map(BatchMessage::Done).ok_or(
                MalformedBatchReason::ShortTrailer {
                    payload: payload.len(),
                },
            ),
            abi::NLMSG_ERROR => parse_error(payload),
            abi::NLMSG_OVERRUN => Ok(BatchMessage::Overrun),
            abi::NLMSG_NOOP => Ok(BatchMessage::Noop),
            msg_type => Ok(BatchMessage::Unknown { msg_type, payload }),
        };
        Some(
            message
                .map(|message| BatchItem {
                    offset,
                    header,
                    message,
                })
                .map_err(|reason| MalformedBatch { offset, reason }),
        )
    }
}

/// Offset of the `struct imp2_record` in a RECORD message.
const REC: usize = abi::NLMSG_HDRLEN;

// Loads from a fixed-size head: with constant offsets the bounds checks
// vanish at compile time.
#[inline(always)]
fn ne_u16<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn ne_u32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(a)
}

#[inline(always)]
fn ne_u64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

impl std::iter::FusedIterator for BatchWalker<'_> {}

fn parse_record(payload: &[u8]) -> Result<BatchMessage<'_>, MalformedBatchReason> {
    use abi::record as r;
    if payload.len() < r::SIZE {
        return Err(MalformedBatchReason::ShortRecord {
            payload: payload.len(),
        });
    }
    let data = &payload[r::SIZE..];
    let orig_len = get_u32(payload, 0, r::ORIG_LEN);
    if data.len() as u64 > u64::from(orig_len) {
        return Err(MalformedBatchReason::CapturedPastOriginal {
            captured: data.len(),
            orig_len,
        });
    }
    Ok(BatchMessage::Record(PacketRecord {
        tstamp_ns: get_u64(payload, 0, r::TSTAMP_NS),
        ifindex: get_u32(payload, 0, r::IFINDEX),
        orig_len,
        hook: Hook(payload[r::HOOK.offset]),
        family: Family(payload[r::FAMILY.offset]),
        protocol: payload[r::PROTOCOL.offset],
        data,
    }))
}

fn parse_error(payload: &[u8]) -> Result<BatchMessage<'_>, MalformedBatchReason> {
    let NlError { errno, request } =
        NlError::parse(payload).ok_or(MalformedBatchReason::ShortError {
            payload: payload.len(),
        })?;
    Ok(BatchMessage::Error { errno, request })
}
