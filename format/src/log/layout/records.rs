//! The RECORDS payload (FORMAT.md section 5): a base time and a count,
//! then records each encoded against the previous one. The encoder is the
//! writer's hot path.

use super::codec::{Cursor, put_varint, unzigzag, zigzag};
use super::error::{FrameError, Malformed};
use crate::record::{Family, Hook, PacketRecord};

/// base_ts (u64) + count (u32) at the start of a RECORDS payload.
pub(crate) const RECORDS_PREFIX_LEN: usize = 12;
/// Offset of the count inside a RECORDS payload.
pub(crate) const RECORDS_COUNT_OFF: usize = 8;

const F_OUT: u8 = 0x01;
const F_IPV6: u8 = 0x02;
const F_SAME_IF: u8 = 0x04;
const F_SAME_PROTO: u8 = 0x08;
const F_CAPLEN: u8 = 0x10;
const F_EXT: u8 = 0x20;
const F_RESERVED: u8 = 0xc0;

/// Largest encoding of a record besides its data: flags, time delta (10),
/// hook and family (2), ifindex (5), protocol (1), orig_len (5),
/// cap_len (5).
pub(crate) const MAX_RECORD_OVERHEAD: usize = 1 + 10 + 2 + 5 + 1 + 5 + 5;
/// Smallest encoding of a record: flags, time delta, orig_len, all 1 byte.
const MIN_RECORD_LEN: usize = 3;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Prev {
    pub(crate) ts: u64,
    pub(crate) ifindex: u32,
    pub(crate) protocol: u8,
}

impl Prev {
    /// State at the start of a frame.
    pub(crate) fn new(base_ts: u64) -> Prev {
        Prev {
            ts: base_ts,
            ifindex: 0,
            protocol: 0,
        }
    }
}

/// Encodes `r` at the start of `out` and returns its length. `out` must
/// hold `MAX_RECORD_OVERHEAD + r.data.len()` bytes and `r.data.len()` must
/// not exceed `r.orig_len` (the writer checks both). Bytes of `out` past
/// the returned length may be overwritten (scratch of the varint stores).
///
/// This is the writer's hot path: the common case (a standard hook and
/// family, small varints, a small packet) runs without loops or calls, and
/// it is inlined into `LogWriter::append` (so into the caller's loop).
#[inline(always)]
pub(crate) fn encode_record(out: &mut [u8], r: &PacketRecord<'_>, prev: &mut Prev) -> usize {
    let data = r.data;
    let cap_len = data.len() as u32;
    // One bounds check for the whole record: every store below then lies
    // within `out` (the compiler still checks the variable offsets, but
    // those checks always pass and are never mispredicted).
    let out = &mut out[..MAX_RECORD_OVERHEAD + data.len()];
    let mut flags = record_flags(r.hook, r.family);
    flags |= F_SAME_IF * u8::from(r.ifindex == prev.ifindex);
    flags |= F_SAME_PROTO * u8::from(r.protocol == prev.protocol);
    flags |= F_CAPLEN * u8::from(cap_len != r.orig_len);
    out[0] = flags;
    let delta = zigzag(r.tstamp_ns.wrapping_sub(prev.ts) as i64);
    let mut n = put_varint_at(out, 1, delta);
    if flags & F_EXT != 0 {
        out[n] = r.hook.0;
        out[n + 1] = r.family.0;
        n += 2;
    }
    if flags & F_SAME_IF == 0 {
        n = put_varint_at(out, n, u64::from(r.ifindex));
    }
    if flags & F_SAME_PROTO == 0 {
        out[n] = r.protocol;
        n += 1;
    }
    n = put_varint_at(out, n, u64::from(r.orig_len));
    if flags & F_CAPLEN != 0 {
        n = put_varint_at(out, n, u64::from(cap_len));
    }
    copy_data(&mut out[n..n + data.len()], data);
    *prev = Prev {
        ts: r.tstamp_ns,
        ifindex: r.ifindex,
        protocol: r.protocol,
    };
    n + data.len()
}

/// The OUT, IPV6 and EXT flag bits of a hook and family, without branches
/// (the mix of hooks and families in real traffic is not predictable): two
/// table lookups, whose bit 7 marks a value that needs EXT.
#[inline(always)]
fn record_flags(hook: Hook, family: Family) -> u8 {
    const NOT_STANDARD: u8 = 0x80;
    const fn table(a: u8, a_bits: u8, b: u8, b_bits: u8) -> [u8; 256] {
        let mut t = [NOT_STANDARD; 256];
        t[a as usize] = a_bits;
        t[b as usize] = b_bits;
        t
    }
    static HOOK_BITS: [u8; 256] = table(Hook::PRE_ROUTING.0, 0, Hook::LOCAL_OUT.0, F_OUT);
    static FAMILY_BITS: [u8; 256] = table(Family::IPV4.0, 0, Family::IPV6.0, F_IPV6);
    let bits = HOOK_BITS[usize::from(hook.0)] | FAMILY_BITS[usize::from(family.0)];
    if bits & NOT_STANDARD != 0 {
        F_EXT
    } else {
        bits
    }
}

/// Writes `v` as a varint at `out[at..]` and returns the position after it.
///
/// Values below 2^14 (time deltas up to 8 µs, packet lengths up to
/// 16 KiB: nearly every value) take a branch-free path, since whether they
/// need one byte or two depends on the traffic and would be mispredicted:
/// both bytes are stored, and when one is enough the second is scratch,
/// overwritten by the next field or lying past the record. The longest
/// record with a one-byte varint last is 4 bytes shorter than
/// `MAX_RECORD_OVERHEAD`, so the scratch byte stays within `out`.
#[inline(always)]
fn put_varint_at(out: &mut [u8], at: usize, v: u64) -> usize {
    if v < 1 << 14 {
        let long = u64::from(v >= 0x80);
        // Bits 7-13 move up one place to byte 1: `(v & 0x7f) + 2 * (v &
        // 0x3f80)`; bit 7 of byte 0 is the continuation bit.
        let word = v + (v & 0x3f80) + (long << 7);
        out[at..at + 2].copy_from_slice(&(word as u16).to_le_bytes());
        at + 1 + long as usize
    } else {
        at + put_varint(&mut out[at..], v)
    }
}

/// `dst.copy_from_slice(src)` for equal lengths, with packets of 16 to 64
/// bytes (TCP ACKs, DNS, snaplen-cut headers) copied by two or four
/// overlapping 16-byte moves inline instead of a call into `memcpy`, whose
/// call and size dispatch cost as much as the copy itself at that size.
#[inline(always)]
fn copy_data(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n {
        // Never: the caller slices `dst` to `src`'s length. Lets the
        // compiler drop the bounds checks below.
        return dst.copy_from_slice(src);
    }
    if (32..=64).contains(&n) {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else if (16..32).contains(&n) {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    } else {
        dst.copy_from_slice(src);
    }
}

/// Decodes a whole RECORDS payload into `out` (cleared first). On error
/// `out` holds the records decoded so far, which the caller must discard.
pub(crate) fn decode_records<'a>(
    payload: &'a [u8],
    out: &mut Vec<PacketRecord<'a>>,
) -> Result<(), FrameError> {
    out.clear();
    let mut c = Cursor::new(payload);
    let (Ok(base_ts), Ok(count)) = (c.u64(), c.u32()) else {
        return Err(FrameError::RecordsPrefix { len: payload.len() });
    };
    let count = count as usize;
    if count > c.remaining() / MIN_RECORD_LEN {
        return Err(FrameError::ImpossibleCount {
            count,
            len: payload.len(),
        });
    }
    // Grows with the records actually decoded: no allocation driven by an
    // untrusted count beyond what the payload can back.
    out.reserve(count);
    let mut prev = Prev::new(base_ts);
    for i in 0..count {
        let at = c.pos();
        let r = decode_record(&mut c, &mut prev).map_err(|why| FrameError::Record {
            index: i,
            at,
            why,
        })?;
        out.push(r);
    }
    if c.remaining() != 0 {
        return Err(FrameError::LeftOver {
            left: c.remaining(),
            count,
        });
    }
    Ok(())
}

#[inline]
fn decode_record<'a>(c: &mut Cursor<'a>, prev: &mut Prev) -> Result<PacketRecord<'a>, Malformed> {
    let flags = c.u8()?;
    if flags & F_RESERVED != 0 {
        return Err(Malformed::ReservedFlags);
    }
    let delta = unzigzag(c.varint_u64()?);
    let tstamp_ns = prev.ts.wrapping_add(delta as u64);
    let (hook, family) = if flags & F_EXT != 0 {
        if flags & (F_OUT | F_IPV6) != 0 {
            return Err(Malformed::ExtendedWithBits);
        }
        (Hook(c.u8()?), Family(c.u8()?))
    } else {
        (
            if flags & F_OUT != 0 {
                Hook::LOCAL_OUT
            } else {
                Hook::PRE_ROUTING
            },
            if flags & F_IPV6 != 0 {
                Family::IPV6
            } else {
                Family::IPV4
            },
        )
    };
    let ifindex = if flags & F_SAME_IF != 0 {
        prev.ifindex
    } else {
        c.varint_u32()?
    };
    let protocol = if flags & F_SAME_PROTO != 0 {
        prev.protocol
    } else {
        c.u8()?
    };
    let orig_len = c.varint_u32()?;
    let cap_len = if flags & F_CAPLEN != 0 {
        let cap = c.varint_u32()?;
        if cap > orig_len {
            return Err(Malformed::CapExceedsOrig);
        }
        cap
    } else {
        orig_len
    };
    let data = c
        .bytes(cap_len as usize)
        .map_err(|_| Malformed::DataPastFrame)?;
    *prev = Prev {
        ts: tstamp_ns,
        ifindex,
        protocol,
    };
    Ok(PacketRecord {
        tstamp_ns,
        ifindex,
        orig_len,
        hook,
        family,
        protocol,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RECORDS payload: base_ts 100, `count`, then `body`.
    fn payload(count: u32, body: &[u8]) -> Vec<u8> {
        let mut p = 100u64.to_le_bytes().to_vec();
        p.extend_from_slice(&count.to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    fn decode(count: u32, body: &[u8]) -> Result<Vec<PacketRecord<'static>>, String> {
        let p: &'static [u8] = Box::leak(payload(count, body).into_boxed_slice());
        let mut out = Vec::new();
        decode_records(p, &mut out)
            .map(|()| out)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn record_decoding_rules() {
        // flags 0 (pre, ipv4, new ifindex and protocol), delta +1, ifindex
        // 2, protocol 6, orig_len 3, data.
        let ok = [0x00, 0x02, 0x02, 0x06, 0x03, 1, 2, 3];
        let r = decode(1, &ok).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].tstamp_ns, r[0].ifindex, r[0].protocol), (101, 2, 6));
        assert_eq!((r[0].orig_len, r[0].data), (3, &[1u8, 2, 3][..]));
        let err = |count, body: &[u8]| decode(count, body).unwrap_err();
        assert!(err(1, &[0x40, 0x02, 0x02, 0x06, 0x03, 1, 2, 3]).contains("reserved"));
        assert!(err(1, &[0x21, 0x02, 3, 2, 0x02, 0x06, 0x00]).contains("extended"));
        // CAPLEN: orig 2, cap 3.
        assert!(err(1, &[0x10, 0x02, 0x02, 0x06, 0x02, 0x03, 1, 2, 3]).contains("exceeds"));
        assert!(err(1, &[0x00, 0x02, 0x02, 0x06, 0x04, 1, 2, 3]).contains("runs past"));
        assert!(err(2, &ok).contains("record 1"));
        assert!(err(4, &ok).contains("impossible"));
        assert!(err(u32::MAX, &ok).contains("impossible"));
        let mut trailing = ok.to_vec();
        trailing.push(0);
        assert!(err(1, &trailing).contains("left"));
        assert!(decode_records(&[0u8; 11], &mut Vec::new()).is_err());
        assert_eq!(decode(0, &[]).unwrap().len(), 0);
    }
}
