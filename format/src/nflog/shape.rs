//! The fast path of NFLOG parsing: a [`PacketParser`] learns the shape
//! (attribute headers and their offsets) of the packet messages of a stream
//! and checks later messages against it with a few masked word compares
//! instead of walking their attribute chain.

use super::attrs::{Attrs, nla_align};
use super::consts::*;
use super::error::MalformedNflog;
use super::packet::{PacketMessage, Timestamp};

/// Bytes at the start of a message payload that a [`Layout`] compares: the
/// attribute headers before the payload attribute must lie within them
/// (with prefix, marks, hardware header, timestamp, uid/gid and sequence
/// numbers the kernel's messages use about 140).
pub(super) const LAYOUT_SPAN: usize = 256;
/// `LAYOUT_SPAN` in the 8-byte words the comparison works in.
const LAYOUT_WORDS: usize = LAYOUT_SPAN / 8;
/// Attribute types a [`Layout`] knows the place of (`NFULA_*` up to
/// `NFULA_HWLEN`).
const LAYOUT_KINDS: usize = NFULA_HWLEN as usize + 1;

/// Where every attribute of one packet message is, as long as the
/// messages of a stream keep the same shape (they do: the kernel builds
/// every message of a rule and device alike, only the payload length
/// varies).
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// The attribute headers before the payload attribute, in place: the
    /// payload's first `8 * words` bytes, read as native-endian `u64`s
    /// and masked with `mask`, equal these (the values between the
    /// headers vary from message to message and are masked out).
    heads: [u64; LAYOUT_WORDS],
    /// All-ones over the header bytes, zero elsewhere.
    mask: [u64; LAYOUT_WORDS],
    /// How many words of `heads`/`mask` are used.
    words: usize,
    /// Offset of the payload attribute's header (0: an empty layout).
    payload_at: usize,
    /// Value offset and length by attribute type (offset 0: absent; the
    /// last attribute of a type, as in a full parse).
    values: [(u16, u16); LAYOUT_KINDS],
}

impl Layout {
    const EMPTY: Layout = Layout {
        heads: [0; LAYOUT_WORDS],
        mask: [0; LAYOUT_WORDS],
        words: 0,
        payload_at: 0,
        values: [(0, 0); LAYOUT_KINDS],
    };

    /// The layout of `payload`, a message that parsed as valid, if it is
    /// one a layout can describe (payload attribute last, its header
    /// within `LAYOUT_SPAN`).
    fn learn(payload: &[u8]) -> Option<Layout> {
        let mut layout = Layout::EMPTY;
        let mut heads = [0u8; LAYOUT_SPAN];
        let mut mask = [0u8; LAYOUT_SPAN];
        for attr in Attrs::new(payload.get(NFGENMSG_LEN..)?, NFGENMSG_LEN) {
            let attr = attr.ok()?;
            if attr.offset + NLA_HDRLEN > LAYOUT_SPAN {
                return None;
            }
            if attr.kind == NFULA_PAYLOAD {
                let end = attr.offset + NLA_HDRLEN + attr.value.len();
                // Only a payload attribute that ends the message.
                if nla_align(end) < payload.len() {
                    return None;
                }
                layout.payload_at = attr.offset;
                layout.words = attr.offset.div_ceil(8);
                for (i, (h, m)) in heads.chunks_exact(8).zip(mask.chunks_exact(8)).enumerate() {
                    layout.heads[i] = u64::from_ne_bytes(h.try_into().ok()?);
                    layout.mask[i] = u64::from_ne_bytes(m.try_into().ok()?);
                }
                return Some(layout);
            }
            let at = attr.offset;
            heads[at..at + NLA_HDRLEN].copy_from_slice(payload.get(at..at + NLA_HDRLEN)?);
            mask[at..at + NLA_HDRLEN].fill(0xff);
            if let Some(v) = layout.values.get_mut(usize::from(attr.kind)) {
                let value_at = u16::try_from(at + NLA_HDRLEN).ok()?;
                let len = u16::try_from(attr.value.len()).ok()?;
                *v = (value_at, len);
            }
        }
        None
    }

    /// Whether `payload` has exactly this layout: the same attribute
    /// headers at the same offsets, then a payload attribute that ends the
    /// message. The comparison is a few independent masked word compares
    /// (no walk along the attribute chain, no per-attribute branch).
    #[inline(always)]
    fn fits(&self, payload: &[u8]) -> bool {
        if self.payload_at == 0 {
            return false; // nothing learnt yet
        }
        let Some(&payload_head) = payload
            .get(self.payload_at..)
            .and_then(|p| p.first_chunk::<4>())
        else {
            return false;
        };
        // In bounds whenever the payload head is: 8 * words <= payload_at + 4.
        let Some(span) = payload.get(..self.words * 8) else {
            return false;
        };
        let mut diff = 0u64;
        for ((word, &head), &mask) in span.chunks_exact(8).zip(&self.heads).zip(&self.mask) {
            diff |= (u64::from_ne_bytes(word.try_into().unwrap_or([0xff; 8])) ^ head) & mask;
        }
        let head = u32::from_ne_bytes(payload_head);
        let len = (head & 0xffff) as usize;
        let kind = (head >> 16) as u16 & NLA_TYPE_MASK;
        diff == 0
            && kind == NFULA_PAYLOAD
            && len >= NLA_HDRLEN
            && self.payload_at + len <= payload.len()
            && self.payload_at + nla_align(len) >= payload.len()
    }

    #[inline(always)]
    fn value<'a>(&self, payload: &'a [u8], kind: u16) -> Option<&'a [u8]> {
        let (at, len) = self.values[usize::from(kind)];
        (at != 0).then(|| {
            let at = usize::from(at);
            payload.get(at..at + usize::from(len)).unwrap_or_default()
        })
    }

    #[inline(always)]
    fn be32(&self, payload: &[u8], kind: u16) -> Option<u32> {
        self.value(payload, kind)
            .map(|v| u32::from_be_bytes(v.first_chunk::<4>().copied().unwrap_or_default()))
    }

    #[inline(always)]
    fn be16(&self, payload: &[u8], kind: u16) -> Option<u16> {
        self.value(payload, kind)
            .map(|v| u16::from_be_bytes(v.first_chunk::<2>().copied().unwrap_or_default()))
    }

    /// The message, read at the known places (`fits` said they hold).
    #[inline(always)]
    fn read<'a>(&self, payload: &'a [u8]) -> PacketMessage<'a> {
        let [family, _version, g0, g1, ..] = *payload else {
            return PacketMessage::default();
        };
        let header = self.value(payload, NFULA_PACKET_HDR).unwrap_or_default();
        let [p0, p1, hook, ..] = *header else {
            return PacketMessage::default();
        };
        let timestamp = self.value(payload, NFULA_TIMESTAMP).map(|t| {
            let t = t.first_chunk::<16>().copied().unwrap_or_default();
            let (sec, usec) = t.split_at(8);
            Timestamp {
                sec: u64::from_be_bytes(sec.try_into().unwrap_or_default()),
                usec: u64::from_be_bytes(usec.try_into().unwrap_or_default()),
            }
        });
        let data_at = self.payload_at + NLA_HDRLEN;
        let data_len = payload.get(self.payload_at..data_at).map_or(0, |h| {
            usize::from(u16::from_ne_bytes([h[0], h[1]])).saturating_sub(NLA_HDRLEN)
        });
        PacketMessage {
            family,
            group: u16::from_be_bytes([g0, g1]),
            hw_protocol: u16::from_be_bytes([p0, p1]),
            hook,
            prefix: self.value(payload, NFULA_PREFIX),
            indev: self.be32(payload, NFULA_IFINDEX_INDEV),
            outdev: self.be32(payload, NFULA_IFINDEX_OUTDEV),
            physindev: self.be32(payload, NFULA_IFINDEX_PHYSINDEV),
            physoutdev: self.be32(payload, NFULA_IFINDEX_PHYSOUTDEV),
            mark: self.be32(payload, NFULA_MARK),
            hwaddr: self.value(payload, NFULA_HWADDR),
            hwtype: self.be16(payload, NFULA_HWTYPE),
            hwlen: self.be16(payload, NFULA_HWLEN),
            hwheader: self.value(payload, NFULA_HWHEADER),
            timestamp,
            uid: self.be32(payload, NFULA_UID),
            gid: self.be32(payload, NFULA_GID),
            seq: self.be32(payload, NFULA_SEQ),
            seq_global: self.be32(payload, NFULA_SEQ_GLOBAL),
            payload: Some(payload.get(data_at..data_at + data_len).unwrap_or_default()),
        }
    }
}

/// Parses the packet messages of one NFLOG stream, fast.
///
/// Gives exactly what [`PacketMessage::parse`] gives, for every input. It
/// remembers the layout of the last two message shapes it parsed (e.g.
/// input packets and output packets); a message with the same attribute
/// headers at the same offsets (only the payload length may differ) is
/// validated by comparing its first bytes, masked to those headers, with
/// the learnt ones, a few independent word compares, instead of by walking
/// the attribute chain, where each attribute's position depends on the
/// previous one's length.
#[derive(Clone, Copy, Debug)]
pub struct PacketParser {
    layouts: [Layout; 2],
}

impl Default for PacketParser {
    fn default() -> PacketParser {
        PacketParser {
            layouts: [Layout::EMPTY; 2],
        }
    }
}

impl PacketParser {
    /// Parses the payload of a packet message (the bytes after its netlink
    /// header), which starts at byte `base` of the buffer being parsed.
    #[inline(always)]
    pub fn parse<'a>(
        &mut self,
        payload: &'a [u8],
        base: usize,
    ) -> Result<PacketMessage<'a>, MalformedNflog> {
        if let Some(message) = self.parse_known(payload) {
            return Ok(message);
        }
        self.parse_other(payload, base)
    }

    /// The message if it has the layout met last (the walker's fast path,
    /// [`NflogWalker::next_packet`](super::NflogWalker::next_packet));
    /// `None`, learning nothing, otherwise.
    #[inline(always)]
    pub(super) fn parse_known<'a>(&self, payload: &'a [u8]) -> Option<PacketMessage<'a>> {
        let layout = &self.layouts[0];
        layout.fits(payload).then(|| layout.read(payload))
    }

    #[inline(never)]
    fn parse_other<'a>(
        &mut self,
        payload: &'a [u8],
        base: usize,
    ) -> Result<PacketMessage<'a>, MalformedNflog> {
        if self.layouts[1].fits(payload) {
            self.layouts.swap(0, 1);
            return Ok(self.layouts[0].read(payload));
        }
        let message = PacketMessage::parse(payload, base)?;
        if let Some(layout) = Layout::learn(payload) {
            self.layouts[1] = self.layouts[0];
            self.layouts[0] = layout;
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nflog::NflogWalker;
    use crate::wire::abi::NLMSG_HDRLEN;

    /// A stream of `prefix_len`-prefixed messages of one shape, payloads of
    /// the given lengths, as the kernel sends them.
    fn stream(prefix_len: usize, payload_lens: &[usize]) -> Vec<u8> {
        let prefix = vec![b'p'; prefix_len];
        let mut buf = Vec::new();
        for (i, &len) in payload_lens.iter().enumerate() {
            let data = vec![0x45; len];
            PacketMessage {
                family: AF_INET,
                group: 3,
                hook: NF_INET_LOCAL_IN,
                prefix: Some(&prefix),
                indev: Some(2),
                timestamp: Some(Timestamp { sec: 5, usec: 6 }),
                seq: Some(i as u32),
                payload: Some(&data),
                ..Default::default()
            }
            .emit(&mut buf);
        }
        buf
    }

    /// Which messages of `buf` the fast path took.
    fn fast_path_hits(buf: &[u8]) -> Vec<bool> {
        let mut walker = NflogWalker::new(buf);
        let mut hits = Vec::new();
        loop {
            if walker.next_packet().is_some() {
                hits.push(true);
            } else if walker.next().is_some() {
                hits.push(false);
            } else {
                return hits;
            }
        }
    }

    #[test]
    fn the_fast_path_takes_every_message_of_a_learnt_shape() {
        // Prefix lengths put the payload header at offsets of both
        // remainders mod 8 (the comparison works in 8-byte words).
        for prefix_len in [0, 1, 4, 5, 40] {
            let buf = stream(prefix_len, &[60, 1, 0, 1500, 61]);
            assert_eq!(
                fast_path_hits(&buf),
                [false, true, true, true, true],
                "prefix of {prefix_len} bytes"
            );
        }
    }

    #[test]
    fn the_fast_path_declines_what_it_cannot_vouch_for() {
        // A header byte changed in the third message (the prefix
        // attribute's length, 12 -> 11: still valid, another shape): a full
        // parse, which learns that shape; the fourth, of the first shape,
        // is then found by the parser's second layout, off the fast path.
        let mut buf = stream(8, &[60, 60, 60, 60]);
        let per = buf.len() / 4;
        let prefix_head = 2 * per + NLMSG_HDRLEN + NFGENMSG_LEN + 8;
        assert_eq!(buf[prefix_head], 4 + 8);
        buf[prefix_head] = 4 + 7;
        assert_eq!(fast_path_hits(&buf), [false, true, false, false]);

        // Headers past what a layout compares: never learnt.
        let buf = stream(LAYOUT_SPAN, &[60, 60, 60]);
        assert_eq!(fast_path_hits(&buf), [false, false, false]);
    }
}
