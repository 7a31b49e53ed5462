//! Netlink framing shared by every walker over a received buffer (imp2
//! batches, NFLOG datagrams, the recorder's ACK search and trailer hop):
//! `NLMSG_OK`/`NLMSG_NEXT` with every length checked, and the payload of
//! an `NLMSG_ERROR`.
//!
//! The bytes are untrusted: nothing here panics or reads out of bounds. A
//! message whose length cannot be trusted (below the header size, past the
//! buffer) ends the walk with a [`FrameError`] naming its offset, since
//! nothing after it can be located.

use super::{NlHeader, abi};

/// One message of a walked buffer and where it starts: what the batch
/// walker ([`super::BatchItem`]) and the NFLOG walker yield, each with its
/// own typed content `M`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located<M> {
    /// Byte offset of the message's netlink header in the buffer.
    pub offset: usize,
    /// Its netlink header.
    pub header: NlHeader,
    /// Its typed content.
    pub message: M,
}

/// Why a netlink message cannot be framed: its length cannot be trusted,
/// so nothing after it can be found and the walk ends there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramingError {
    /// Fewer bytes remain than a netlink header.
    TrailingBytes {
        /// Bytes left over.
        remaining: usize,
    },
    /// `nlmsg_len` smaller than the header.
    LengthBelowHeader {
        /// The claimed `nlmsg_len`.
        len: u32,
    },
    /// `nlmsg_len` runs past the end of the buffer.
    LengthPastEnd {
        /// The claimed `nlmsg_len`.
        len: u32,
        /// Bytes available from the message start.
        available: usize,
    },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            FramingError::TrailingBytes { remaining } => {
                write!(f, "{remaining} trailing bytes, less than a netlink header")
            }
            FramingError::LengthBelowHeader { len } => {
                write!(f, "nlmsg_len {len} is below the header size")
            }
            FramingError::LengthPastEnd { len, available } => {
                write!(
                    f,
                    "nlmsg_len {len} runs past the end ({available} bytes left)"
                )
            }
        }
    }
}

/// A message that cannot be framed and where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Byte offset of the message in the walked buffer.
    pub offset: usize,
    /// What is wrong with its length.
    pub error: FramingError,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unframable message at byte {}: {}",
            self.offset, self.error
        )
    }
}

impl std::error::Error for FrameError {}

/// One well-framed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Byte offset of its header in the walked buffer.
    pub offset: usize,
    /// Its netlink header.
    pub header: NlHeader,
    /// The bytes after the header, up to `nlmsg_len` (padding excluded).
    pub payload: &'a [u8],
}

/// Iterator over the messages of one received buffer: yields each
/// well-framed message, or one [`FrameError`] and then nothing more.
///
/// Walkers with a fast path of their own read [`Frames::rest`], check the
/// message there and step over it with [`Frames::advance`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Frames<'a> {
    /// Walks `buf`, what one `recv` returned.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Frames<'a> {
        Frames { buf, pos: 0 }
    }

    /// Offset of the next message (the buffer length once done).
    #[inline(always)]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes from the next message on (empty once done).
    #[inline(always)]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// `NLMSG_NEXT`: steps over the next message, whose `nlmsg_len` is
    /// `len` and fits [`Frames::rest`] (the caller checked). Only the
    /// alignment pad after the last message can run past the buffer's
    /// end: the walk then simply ends.
    #[inline(always)]
    pub fn advance(&mut self, len: usize) {
        self.pos = self
            .pos
            .saturating_add(abi::nlmsg_align(len))
            .min(self.buf.len());
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.pos;
        let rest = self.rest();
        if rest.is_empty() {
            return None;
        }
        match frame(rest) {
            Ok((header, len)) => {
                self.advance(len);
                Some(Ok(Frame {
                    offset,
                    header,
                    payload: &rest[abi::NLMSG_HDRLEN..len],
                }))
            }
            Err(error) => {
                self.pos = self.buf.len();
                Some(Err(FrameError { offset, error }))
            }
        }
    }
}

impl std::iter::FusedIterator for Frames<'_> {}

/// `NLMSG_OK` for the message at the start of `rest` (not empty): its
/// header and its length, which lies within `rest` and covers the header.
#[inline(always)]
fn frame(rest: &[u8]) -> Result<(NlHeader, usize), FramingError> {
    let Some(header) = NlHeader::parse(rest) else {
        return Err(FramingError::TrailingBytes {
            remaining: rest.len(),
        });
    };
    let len = header.len as usize;
    if len < abi::NLMSG_HDRLEN {
        return Err(FramingError::LengthBelowHeader { len: header.len });
    }
    if len > rest.len() {
        return Err(FramingError::LengthPastEnd {
            len: header.len,
            available: rest.len(),
        });
    }
    Ok((header, len))
}

/// The payload of an `NLMSG_ERROR`: an ACK or a refusal, and the request
/// it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlError {
    /// 0 (ACK) or a negative errno.
    pub errno: i32,
    /// Header of the request answered, when included.
    pub request: Option<NlHeader>,
}

impl NlError {
    /// Parses an `NLMSG_ERROR` payload; `None` when it is shorter than its
    /// errno.
    #[inline]
    pub fn parse(payload: &[u8]) -> Option<NlError> {
        let (errno, request) = payload.split_first_chunk::<4>()?;
        Some(NlError {
            errno: i32::from_ne_bytes(*errno),
            request: NlHeader::parse(request),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32, msg_type: u16, total: usize) -> Vec<u8> {
        let mut m = vec![0u8; total];
        NlHeader {
            len,
            msg_type,
            ..NlHeader::default()
        }
        .write(&mut m);
        m
    }

    #[test]
    fn frames_step_by_the_aligned_length_and_stop_at_a_bad_one() {
        let mut buf = message(17, 3, 20);
        buf.extend(message(16, 1, 16));
        buf.extend(message(15, 2, 16));
        buf.extend(message(16, 4, 16));
        let mut frames = Frames::new(&buf);
        let first = frames.next().unwrap().unwrap();
        assert_eq!((first.offset, first.header.msg_type), (0, 3));
        assert_eq!(first.payload.len(), 1);
        let second = frames.next().unwrap().unwrap();
        assert_eq!((second.offset, second.payload.len()), (20, 0));
        assert_eq!(
            frames.next(),
            Some(Err(FrameError {
                offset: 36,
                error: FramingError::LengthBelowHeader { len: 15 }
            }))
        );
        assert_eq!(frames.next(), None);
        assert_eq!(frames.position(), buf.len());
    }

    #[test]
    fn a_missing_last_pad_ends_the_walk_and_short_tails_are_errors() {
        let buf = message(17, 3, 17);
        assert_eq!(Frames::new(&buf).count(), 1);
        let mut buf = message(16, 3, 16);
        buf.extend([0; 3]);
        assert_eq!(
            Frames::new(&buf).nth(1),
            Some(Err(FrameError {
                offset: 16,
                error: FramingError::TrailingBytes { remaining: 3 }
            }))
        );
        let buf = message(40, 3, 20);
        assert_eq!(
            Frames::new(&buf).next(),
            Some(Err(FrameError {
                offset: 0,
                error: FramingError::LengthPastEnd {
                    len: 40,
                    available: 20
                }
            }))
        );
    }

    #[test]
    fn error_payloads_need_their_errno() {
        assert_eq!(NlError::parse(&[1, 2, 3]), None);
        let mut p = (-5i32).to_ne_bytes().to_vec();
        assert_eq!(
            NlError::parse(&p),
            Some(NlError {
                errno: -5,
                request: None
            })
        );
        p.extend(message(16, 7, 16));
        assert_eq!(NlError::parse(&p).unwrap().request.unwrap().msg_type, 7);
    }
}
