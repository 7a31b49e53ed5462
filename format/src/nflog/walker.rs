//! Walking one received NETLINK_NETFILTER datagram message by message
//! ([`Frames`] does the framing) into typed NFLOG messages, with the fast
//! path a recorder takes for packet messages of a known shape.

use super::consts::MSG_PACKET;
use super::error::{MalformedNflog, MalformedNflogReason};
use super::packet::{LoggedPacket, PacketMessage};
use super::shape::PacketParser;
use crate::wire::abi::{NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN};
use crate::wire::{Frame, Frames, Located, NlError, NlHeader};

/// A typed message from NETLINK_NETFILTER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NflogMessage<'a> {
    /// `NFULNL_MSG_PACKET`: one logged packet.
    Packet(PacketMessage<'a>),
    /// `NLMSG_DONE`: the end of a buffer of several packets.
    Done,
    /// `NLMSG_ERROR`: `errno` 0 for an ACK, else a negative errno.
    Error {
        /// 0 (ACK) or a negative errno.
        errno: i32,
        /// Header of the request answered, when included.
        request: Option<NlHeader>,
    },
    /// `NLMSG_NOOP`
    Noop,
    /// `NLMSG_OVERRUN`
    Overrun,
    /// Any other well-framed message.
    Other {
        /// `nlmsg_type`
        msg_type: u16,
        /// Bytes after the header.
        payload: &'a [u8],
    },
}

/// One message with its place in the buffer.
pub type NflogItem<'a> = Located<NflogMessage<'a>>;

/// Iterator over the messages of one received buffer (`NLMSG_OK` /
/// `NLMSG_NEXT` with every length checked). Yields `Err` for a malformed
/// message and goes on, unless its framing is broken (then nothing after
/// it can be found and the walk ends).
///
/// Packet messages are parsed with a [`PacketParser`]; pass the one of the
/// previous datagram ([`NflogWalker::with_parser`], [`NflogWalker::parser`]) so that
/// the layouts it learnt carry over.
#[derive(Clone, Debug)]
pub struct NflogWalker<'a> {
    frames: Frames<'a>,
    parser: PacketParser,
}

impl<'a> NflogWalker<'a> {
    /// Walks `buf`, what one `recv` returned.
    pub fn new(buf: &'a [u8]) -> NflogWalker<'a> {
        NflogWalker::with_parser(buf, PacketParser::default())
    }

    /// Walks `buf` with `parser` (and the layouts it already knows).
    pub fn with_parser(buf: &'a [u8], parser: PacketParser) -> NflogWalker<'a> {
        NflogWalker {
            frames: Frames::new(buf),
            parser,
        }
    }

    /// Byte offset of the next message.
    pub fn offset(&self) -> usize {
        self.frames.position()
    }

    /// The parser, with what it learnt during the walk.
    pub fn parser(&self) -> PacketParser {
        self.parser
    }

    /// The fast path for a stream's common case: when the next message is
    /// a packet message with the layout the parser met last, returns what a
    /// recorder keeps of it ([`PacketMessage::logged`]) and moves past it.
    /// Otherwise returns `None` and stays put: [`Iterator::next`] then
    /// handles the message, whatever it is (and learns its layout). Walking
    /// with `next_packet` first and `next` when it declines gives exactly
    /// the packets of walking with `next` alone, with the same checks (the
    /// message lies within the buffer; `fits` validates the attributes);
    /// it only skips building the whole [`PacketMessage`] and [`NflogItem`].
    #[inline(always)]
    pub fn next_packet(&mut self) -> Option<LoggedPacket<'a>> {
        let rest = self.frames.rest();
        let head = rest.first_chunk::<NLMSG_HDRLEN>()?;
        let len = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if u16::from_ne_bytes([head[4], head[5]]) != MSG_PACKET {
            return None;
        }
        // None when `len` is below the header or past the buffer, as in
        // `next`.
        let payload = rest.get(NLMSG_HDRLEN..len)?;
        let message = self.parser.parse_known(payload)?;
        self.frames.advance(len);
        Some(message.logged())
    }
}

impl<'a> Iterator for NflogWalker<'a> {
    type Item = Result<NflogItem<'a>, MalformedNflog>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        let Frame {
            offset,
            header,
            payload,
        } = match self.frames.next()? {
            Ok(frame) => frame,
            Err(e) => return Some(Err(e.into())),
        };
        let message = match header.msg_type {
            MSG_PACKET => self
                .parser
                .parse(payload, offset + NLMSG_HDRLEN)
                .map(NflogMessage::Packet),
            NLMSG_DONE => Ok(NflogMessage::Done),
            NLMSG_ERROR => NlError::parse(payload)
                .map(|NlError { errno, request }| NflogMessage::Error { errno, request })
                .ok_or(MalformedNflog {
                    offset,
                    reason: MalformedNflogReason::ShortError {
                        payload: payload.len(),
                    },
                }),
            NLMSG_NOOP => Ok(NflogMessage::Noop),
            NLMSG_OVERRUN => Ok(NflogMessage::Overrun),
            msg_type => Ok(NflogMessage::Other { msg_type, payload }),
        };
        Some(message.map(|message| NflogItem {
            offset,
            header,
            message,
        }))
    }
}

impl std::iter::FusedIterator for NflogWalker<'_> {}
