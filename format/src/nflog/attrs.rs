//! The generic layer of nfnetlink messages: `struct nfgenmsg` and the
//! netlink attributes (`nlattr`) after it, read with every length checked
//! and written with the kernel's padding.

use super::consts::{NFGENMSG_LEN, NLA_HDRLEN, NLA_TYPE_MASK};
use super::error::{MalformedNflog, MalformedNflogReason};

/// `NLA_ALIGN(len)`
pub(super) const fn nla_align(len: usize) -> usize {
    (len + 3) & !3
}

/// `struct nfgenmsg`, the first 4 bytes of every nfnetlink payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NfGenMsg {
    /// `nfgen_family`: `AF_INET`, `AF_INET6`, ... (`AF_UNSPEC` in DONE).
    pub family: u8,
    /// `version`: `NFNETLINK_V0`.
    pub version: u8,
    /// `res_id` (big endian on the wire): the NFLOG group.
    pub group: u16,
}

impl NfGenMsg {
    /// Parses the first 4 bytes of `payload`.
    pub fn parse(payload: &[u8]) -> Option<NfGenMsg> {
        match *payload {
            [family, version, g0, g1, ..] => Some(NfGenMsg {
                family,
                version,
                group: u16::from_be_bytes([g0, g1]),
            }),
            _ => None,
        }
    }

    /// Encodes as 4 bytes.
    pub fn to_bytes(self) -> [u8; NFGENMSG_LEN] {
        let g = self.group.to_be_bytes();
        [self.family, self.version, g[0], g[1]]
    }
}

/// The `struct nfgenmsg` at the start of an nfnetlink message's payload
/// (the bytes after its netlink header, which start at byte `base` of the
/// buffer being parsed) and the attributes after it.
#[inline(always)]
pub(super) fn nfgen_and_attrs(
    payload: &[u8],
    base: usize,
) -> Result<(NfGenMsg, Attrs<'_>), MalformedNflog> {
    let Some(nfgen) = NfGenMsg::parse(payload) else {
        return Err(MalformedNflog {
            offset: base,
            reason: MalformedNflogReason::ShortNfgenmsg {
                payload: payload.len(),
            },
        });
    };
    Ok((
        nfgen,
        Attrs::new(&payload[NFGENMSG_LEN..], base + NFGENMSG_LEN),
    ))
}

/// One attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// Byte offset of the attribute header in the parsed buffer.
    pub offset: usize,
    /// Type with `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER` masked off.
    pub kind: u16,
    /// Value bytes (without padding).
    pub value: &'a [u8],
}

impl Attr<'_> {
    pub(super) fn fixed<const N: usize>(&self) -> Result<[u8; N], MalformedNflog> {
        match self.value.first_chunk::<N>() {
            Some(v) => Ok(*v),
            None => Err(MalformedNflog {
                offset: self.offset,
                reason: MalformedNflogReason::AttrTooShort {
                    kind: self.kind,
                    len: self.value.len(),
                    need: N,
                },
            }),
        }
    }

    pub(super) fn be16(&self) -> Result<u16, MalformedNflog> {
        self.fixed::<2>().map(u16::from_be_bytes)
    }

    pub(super) fn be32(&self) -> Result<u32, MalformedNflog> {
        self.fixed::<4>().map(u32::from_be_bytes)
    }
}

/// Iterator over the attributes of one message (`nla_for_each_attr` with
/// every length checked). After an error it yields nothing more.
#[derive(Clone, Debug)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Attrs<'a> {
    /// Iterates the attributes in `buf`, which starts at byte `base` of the
    /// buffer being parsed (for error offsets).
    pub fn new(buf: &'a [u8], base: usize) -> Attrs<'a> {
        Attrs { buf, pos: 0, base }
    }

    fn fail(
        &mut self,
        at: usize,
        reason: MalformedNflogReason,
    ) -> Option<Result<Attr<'a>, MalformedNflog>> {
        self.pos = self.buf.len();
        Some(Err(MalformedNflog {
            offset: self.base + at,
            reason,
        }))
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, MalformedNflog>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        let rest = self.buf.get(at..)?;
        let [l0, l1, t0, t1, ..] = *rest else {
            if rest.is_empty() {
                return None;
            }
            return self.fail(
                at,
                MalformedNflogReason::AttrTrailingBytes {
                    remaining: rest.len(),
                },
            );
        };
        let len = u16::from_ne_bytes([l0, l1]);
        let kind = u16::from_ne_bytes([t0, t1]) & NLA_TYPE_MASK;
        let ulen = usize::from(len);
        if ulen < NLA_HDRLEN {
            return self.fail(at, MalformedNflogReason::AttrLengthBelowHeader { len });
        }
        if ulen > rest.len() {
            return self.fail(
                at,
                MalformedNflogReason::AttrLengthPastEnd {
                    kind,
                    len,
                    available: rest.len(),
                },
            );
        }
        // The last attribute's padding may be missing: the walk just ends.
        self.pos = (at + nla_align(ulen)).min(self.buf.len());
        Some(Ok(Attr {
            offset: self.base + at,
            kind,
            value: &rest[NLA_HDRLEN..ulen],
        }))
    }
}

impl std::iter::FusedIterator for Attrs<'_> {}

/// Appends one attribute with zeroed padding. `nla_len` is 16 bits: a
/// longer value is cut to the longest that fits (the kernel's copy range is
/// below that limit for the same reason).
pub(super) fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX) - NLA_HDRLEN)];
    let len = NLA_HDRLEN + value.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + nla_align(len) - len, 0);
}
