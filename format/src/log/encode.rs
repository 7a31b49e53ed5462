//! Byte layout of headers, frames and records (see `format/FORMAT.md`).
//!
//! Everything here is pure: encoders write into caller-provided buffers,
//! decoders read from byte slices and return `Err` (never panic) on any
//! input, because logs are untrusted files.

use super::{Footer, Interface, LogHeader, Losses, StopCause, StopReason, cut_detail};
use crate::crc;
use crate::record::{Family, Hook, PacketRecord};

/// `"IMP2LOG\0"`.
pub(crate) const MAGIC: [u8; 8] = *b"IMP2LOG\0";
/// Format version written by this code; readers accept any minor of it.
pub(crate) const VERSION_MAJOR: u16 = 1;
pub(crate) const VERSION_MINOR: u16 = 2;

/// Granularity of `header_len`: frames start page-aligned.
pub(crate) const HEADER_ALIGN: usize = 4096;
pub(crate) const OFF_HEADER_LEN: usize = 12;
pub(crate) const OFF_COMMITTED: usize = 16;
pub(crate) const OFF_STATE: usize = 24;
pub(crate) const OFF_STATIC_LEN: usize = 28;
pub(crate) const OFF_STATIC: usize = 32;
/// created_ns + snaplen + tsresol_digits.
const STATIC_FIXED_LEN: usize = 13;

pub(crate) const STATE_RECORDING: u32 = 0;
pub(crate) const STATE_CLOSED: u32 = 1;

const TAG_SOURCE: u16 = 1;
const TAG_HOSTNAME: u16 = 2;
const TAG_KERNEL: u16 = 3;
const TAG_INTERFACE: u16 = 4;

pub(crate) const FRAME_HEADER_LEN: usize = 12;
pub(crate) const FRAME_RECORDS: u8 = 1;
pub(crate) const FRAME_INTERFACE: u8 = 2;
pub(crate) const FRAME_LOSSES: u8 = 3;
pub(crate) const FRAME_FOOTER: u8 = 4;

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

/// Loss counters of version 1.0 (LOSSES and FOOTER): always present.
const LOSS_COUNTERS_V1_0: usize = 9;
/// Loss counters written now: 1.0's and `unwritten` (an optional trailing
/// field for readers, which a 1.0 reader ignores).
const LOSS_COUNTERS: usize = 10;
/// Largest LOSSES payload.
pub(crate) const MAX_LOSSES_PAYLOAD: usize = LOSS_COUNTERS * 10;
/// Shortest LOSSES payload: the counters of version 1.0, a byte each.
pub(crate) const MIN_LOSSES_PAYLOAD: usize = LOSS_COUNTERS_V1_0;
/// The fixed part of a FOOTER payload: six `u64`.
const FOOTER_FIXED_LEN: usize = 6 * 8;
/// Shortest FOOTER payload: the fixed part, then the shortest LOSSES.
pub(crate) const MIN_FOOTER_PAYLOAD: usize = FOOTER_FIXED_LEN + MIN_LOSSES_PAYLOAD;
/// Largest stop reason (1.2): the cause (a `u64` varint), the detail's
/// length (a `u32` varint) and the detail, which the writer cuts.
const MAX_STOP_REASON: usize = 10 + 5 + StopReason::MAX_DETAIL;
/// Largest FOOTER payload: six u64, the loss varints and the stop reason.
/// The writer holds this much back for closing a log on a full disk.
pub(crate) const MAX_FOOTER_PAYLOAD: usize =
    FOOTER_FIXED_LEN + MAX_LOSSES_PAYLOAD + MAX_STOP_REASON;

// ---------------------------------------------------------------------------
// Primitives

/// Writes `v` as a varint at the start of `out` and returns its length.
/// `out` must hold 10 bytes (5 for values that fit in a `u32`).
#[inline(always)]
fn put_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Appends `v` as a varint to `out` (for the cold, allocating encoders).
fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let n = put_varint(&mut tmp, v);
    out.extend_from_slice(&tmp[..n]);
}

#[inline(always)]
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[inline(always)]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bounds-checked reader over a byte slice. Every accessor fails with a
/// static reason instead of panicking.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.remaining() {
            return Err("runs past the end");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u64` varint: at most 10 bytes, value within 64 bits.
    pub(crate) fn varint_u64(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("varint runs past the end");
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits");
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes")
    }

    /// A `u32` varint: at most 5 bytes, value within 32 bits.
    pub(crate) fn varint_u32(&mut self) -> Result<u32, &'static str> {
        let mut v = 0u32;
        for i in 0..5 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err("varint runs past the end");
            };
            self.pos += 1;
            if i == 4 && b > 0x0f {
                return Err("varint overflows 32 bits");
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 5 bytes")
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------
// Header

/// The mutable and structural fields of a header, besides [`LogHeader`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderInfo {
    pub(crate) header_len: u64,
    pub(crate) committed_len: u64,
    pub(crate) state: u32,
}

/// Why a header cannot be decoded, for the reader to turn into its error.
#[derive(Debug)]
pub(crate) enum HeaderError {
    NotALog,
    Version(u16, u16),
    /// Reason and the file offset it refers to.
    Bad(String, u64),
}

fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[&[u8]], what: &str) -> Result<(), String> {
    let len: usize = value.iter().map(|v| v.len()).sum();
    let len = u16::try_from(len)
        .map_err(|_| format!("{what} is too long for the header ({len} bytes, at most 65535)"))?;
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    for v in value {
        out.extend_from_slice(v);
    }
    Ok(())
}

/// Encodes a whole header region (`header_len` bytes, zero padded) with
/// `committed_len = header_len` and state "recording".
pub(crate) fn encode_header(h: &LogHeader) -> Result<Vec<u8>, String> {
    let mut st = Vec::with_capacity(256);
    st.extend_from_slice(&h.created_ns.to_le_bytes());
    st.extend_from_slice(&h.snaplen.to_le_bytes());
    st.push(h.tsresol_digits);
    push_tlv(&mut st, TAG_SOURCE, &[h.source.as_bytes()], "source")?;
    push_tlv(&mut st, TAG_HOSTNAME, &[h.hostname.as_bytes()], "hostname")?;
    push_tlv(
        &mut st,
        TAG_KERNEL,
        &[h.kernel_release.as_bytes()],
        "kernel release",
    )?;
    for i in &h.interfaces {
        push_tlv(
            &mut st,
            TAG_INTERFACE,
            &[&i.ifindex.to_le_bytes(), i.name.as_bytes()],
            "interface name",
        )?;
    }
    let static_len = u32::try_from(st.len()).map_err(|_| "header too large".to_string())?;
    let used = OFF_STATIC + st.len() + 4;
    let header_len = used.div_ceil(HEADER_ALIGN) * HEADER_ALIGN;
    let header_len_u32 = u32::try_from(header_len).map_err(|_| "header too large".to_string())?;

    let mut out = vec![0u8; header_len];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    out[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
    out[OFF_HEADER_LEN..OFF_HEADER_LEN + 4].copy_from_slice(&header_len_u32.to_le_bytes());
    out[OFF_COMMITTED..OFF_COMMITTED + 8].copy_from_slice(&(header_len as u64).to_le_bytes());
    out[OFF_STATE..OFF_STATE + 4].copy_from_slice(&STATE_RECORDING.to_le_bytes());
    out[OFF_STATIC_LEN..OFF_STATIC_LEN + 4].copy_from_slice(&static_len.to_le_bytes());
    out[OFF_STATIC..OFF_STATIC + st.len()].copy_from_slice(&st);
    let crc = header_crc(&out, st.len());
    let crc_off = OFF_STATIC + st.len();
    out[crc_off..crc_off + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// CRC of a header whose static part is `static_len` bytes (`buf` holds at
/// least `OFF_STATIC + static_len` bytes).
fn header_crc(buf: &[u8], static_len: usize) -> u32 {
    let c = crc::crc32c(&buf[..OFF_COMMITTED]);
    crc::crc32c_append(c, &buf[OFF_STATIC_LEN..OFF_STATIC + static_len])
}

/// Decodes and verifies a header. `committed_len` and `state` are the
/// values the caller loaded (atomically, for a live file); `buf` is the
/// whole file.
pub(crate) fn decode_header(
    buf: &[u8],
    committed_len: u64,
    state: u32,
) -> Result<(LogHeader, HeaderInfo), HeaderError> {
    if buf.len() < MAGIC.len() || buf[..MAGIC.len()] != MAGIC {
        return Err(HeaderError::NotALog);
    }
    let bad = |why: String, off: usize| HeaderError::Bad(why, off as u64);
    if buf.len() < OFF_STATIC {
        return Err(bad(
            format!(
                "file is {} bytes, too short for the fixed header (32 bytes)",
                buf.len()
            ),
            0,
        ));
    }
    let le16 = |o: usize| u16::from_le_bytes([buf[o], buf[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
    // In bounds: buf holds at least OFF_STATIC bytes.
    let (major, minor) = (le16(8), le16(10));
    let header_len = le32(OFF_HEADER_LEN);
    let static_len = le32(OFF_STATIC_LEN);
    if major != VERSION_MAJOR {
        return Err(HeaderError::Version(major, minor));
    }
    let static_len = static_len as usize;
    let Some(static_end) = OFF_STATIC.checked_add(static_len) else {
        return Err(bad(
            format!("static part length {static_len} is impossible"),
            OFF_STATIC_LEN,
        ));
    };
    let crc_end = static_end + 4;
    if crc_end > header_len as usize {
        return Err(bad(
            format!(
                "static part ({static_len} bytes) does not fit in the header length {header_len}"
            ),
            OFF_STATIC_LEN,
        ));
    }
    if static_len < STATIC_FIXED_LEN {
        return Err(bad(
            format!("static part is {static_len} bytes, at least {STATIC_FIXED_LEN} expected"),
            OFF_STATIC_LEN,
        ));
    }
    if crc_end > buf.len() {
        return Err(bad(
            format!(
                "file is {} bytes, cut inside the {crc_end}-byte header",
                buf.len()
            ),
            0,
        ));
    }
    let stored = u32::from_le_bytes([
        buf[static_end],
        buf[static_end + 1],
        buf[static_end + 2],
        buf[static_end + 3],
    ]);
    let computed = header_crc(buf, static_len);
    if stored != computed {
        return Err(bad(
            format!("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
            static_end,
        ));
    }
    if state != STATE_RECORDING && state != STATE_CLOSED {
        return Err(bad(format!("unknown state {state}"), OFF_STATE));
    }
    if committed_len < u64::from(header_len) {
        return Err(bad(
            format!("committed length {committed_len} is inside the {header_len}-byte header"),
            OFF_COMMITTED,
        ));
    }

    let mut c = Cursor::new(&buf[OFF_STATIC..static_end]);
    let fixed = (|| Ok::<_, &'static str>((c.u64()?, c.u32()?, c.u8()?)))();
    // Cannot fail: static_len >= STATIC_FIXED_LEN was checked above.
    let (created_ns, snaplen, tsresol_digits) =
        fixed.map_err(|why| bad(format!("static part: {why}"), OFF_STATIC))?;
    let mut h = LogHeader {
        version: (major, minor),
        created_ns,
        snaplen,
        tsresol_digits,
        ..LogHeader::default()
    };
    while c.remaining() > 0 {
        let at = OFF_STATIC + c.pos();
        let (tag, value) = read_tlv(&mut c)
            .map_err(|_| bad("header entry runs past the static part".into(), at))?;
        match tag {
            TAG_SOURCE => h.source = lossy(value),
            TAG_HOSTNAME => h.hostname = lossy(value),
            TAG_KERNEL => h.kernel_release = lossy(value),
            TAG_INTERFACE => {
                if value.len() < 4 {
                    return Err(bad(
                        format!(
                            "interface entry is {} bytes, at least 4 expected",
                            value.len()
                        ),
                        at,
                    ));
                }
                h.interfaces.push(Interface {
                    ifindex: u32::from_le_bytes([value[0], value[1], value[2], value[3]]),
                    name: lossy(&value[4..]),
                });
            }
            _ => {} // added by a later minor version: skip
        }
    }
    let info = HeaderInfo {
        header_len: u64::from(header_len),
        committed_len,
        state,
    };
    Ok((h, info))
}

fn read_tlv<'a>(c: &mut Cursor<'a>) -> Result<(u16, &'a [u8]), &'static str> {
    let tag = c.u16()?;
    let len = c.u16()?;
    Ok((tag, c.bytes(usize::from(len))?))
}

// ---------------------------------------------------------------------------
// Frames

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

// ---------------------------------------------------------------------------
// Records

/// The "previous record" a record is encoded against.
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
) -> Result<(), String> {
    out.clear();
    let mut c = Cursor::new(payload);
    let (Ok(base_ts), Ok(count)) = (c.u64(), c.u32()) else {
        return Err(format!(
            "records payload is {} bytes, shorter than its {RECORDS_PREFIX_LEN}-byte prefix",
            payload.len()
        ));
    };
    let count = count as usize;
    if count > c.remaining() / MIN_RECORD_LEN {
        return Err(format!(
            "record count {count} is impossible in a {}-byte payload",
            payload.len()
        ));
    }
    // Grows with the records actually decoded: no allocation driven by an
    // untrusted count beyond what the payload can back.
    out.reserve(count);
    let mut prev = Prev::new(base_ts);
    for i in 0..count {
        let at = c.pos();
        let r = decode_record(&mut c, &mut prev)
            .map_err(|why| format!("record {i} at payload byte {at}: {why}"))?;
        out.push(r);
    }
    if c.remaining() != 0 {
        return Err(format!(
            "{} bytes left after the {count} records the frame announces",
            c.remaining()
        ));
    }
    Ok(())
}

#[inline]
fn decode_record<'a>(
    c: &mut Cursor<'a>,
    prev: &mut Prev,
) -> Result<PacketRecord<'a>, &'static str> {
    let flags = c.u8()?;
    if flags & F_RESERVED != 0 {
        return Err("reserved record flag bits set");
    }
    let delta = unzigzag(c.varint_u64()?);
    let tstamp_ns = prev.ts.wrapping_add(delta as u64);
    let (hook, family) = if flags & F_EXT != 0 {
        if flags & (F_OUT | F_IPV6) != 0 {
            return Err("hook or family bit set together with the extended flag");
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
            return Err("captured length exceeds original length");
        }
        cap
    } else {
        orig_len
    };
    let data = c
        .bytes(cap_len as usize)
        .map_err(|_| "packet data runs past the frame")?;
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

// ---------------------------------------------------------------------------
// Interface, losses, footer

pub(crate) fn encode_interface(i: &Interface) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + i.name.len());
    out.extend_from_slice(&i.ifindex.to_le_bytes());
    out.extend_from_slice(i.name.as_bytes());
    out
}

pub(crate) fn decode_interface(payload: &[u8]) -> Result<Interface, String> {
    if payload.len() < 4 {
        return Err(format!(
            "interface payload is {} bytes, at least 4 expected",
            payload.len()
        ));
    }
    Ok(Interface {
        ifindex: u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
        name: lossy(&payload[4..]),
    })
}

fn loss_counters(l: &Losses) -> [u64; LOSS_COUNTERS] {
    let k = &l.kernel;
    [
        k[0],
        k[1],
        k[2],
        k[3],
        l.gap_records,
        l.gap_batches,
        l.truncated_batches,
        l.malformed_messages,
        l.socket_errors,
        l.unwritten,
    ]
}

pub(crate) fn encode_losses(out: &mut Vec<u8>, l: &Losses) {
    for v in loss_counters(l) {
        push_varint(out, v);
    }
}

fn decode_losses(c: &mut Cursor<'_>) -> Result<Losses, String> {
    let mut v = [0u64; LOSS_COUNTERS];
    for (i, slot) in v.iter_mut().enumerate() {
        if i >= LOSS_COUNTERS_V1_0 && c.remaining() == 0 {
            break; // written before the counter existed: 0
        }
        *slot = c
            .varint_u64()
            .map_err(|why| format!("loss counter {i}: {why}"))?;
    }
    Ok(Losses {
        kernel: [v[0], v[1], v[2], v[3]],
        gap_records: v[4],
        gap_batches: v[5],
        truncated_batches: v[6],
        malformed_messages: v[7],
        socket_errors: v[8],
        unwritten: v[9],
    })
}

/// Decodes a LOSSES payload; bytes after the known counters are ignored
/// (a later minor version may add counters).
pub(crate) fn decode_losses_payload(payload: &[u8]) -> Result<Losses, String> {
    decode_losses(&mut Cursor::new(payload))
}

pub(crate) fn encode_footer(f: &Footer) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_FOOTER_PAYLOAD);
    for v in [
        f.records,
        f.captured_bytes,
        f.original_bytes,
        f.first_ns,
        f.last_ns,
        f.closed_ns,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    encode_losses(&mut out, &f.losses);
    // 1.2: always written, "not recorded" (0, no detail) included, so that
    // a later field can follow it.
    let (cause, detail) = match &f.stop {
        Some(s) => (s.cause.code(), cut_detail(&s.detail)),
        None => (0, ""),
    };
    push_varint(&mut out, cause);
    push_varint(&mut out, detail.len() as u64);
    out.extend_from_slice(detail.as_bytes());
    out
}

/// Decodes the stop reason after a FOOTER's loss counters: none before 1.2
/// (nothing left), none for cause 0. Once it has started it must be whole:
/// a cut varint or detail is an error, as a cut loss counter is.
fn decode_stop(c: &mut Cursor<'_>) -> Result<Option<StopReason>, String> {
    if c.remaining() == 0 {
        return Ok(None); // written before format 1.2
    }
    let code = c.varint_u64().map_err(|why| format!("stop cause: {why}"))?;
    let len = c
        .varint_u32()
        .map_err(|why| format!("stop detail length: {why}"))?;
    let left = c.remaining();
    let detail = c.bytes(len as usize).map_err(|_| {
        format!("stop detail of {len} bytes runs past the footer ({left} bytes left)")
    })?;
    Ok(StopCause::from_code(code).map(|cause| StopReason {
        cause,
        detail: lossy(detail),
    }))
}

/// Decodes a FOOTER payload; trailing bytes are ignored as for LOSSES.
pub(crate) fn decode_footer(payload: &[u8]) -> Result<Footer, String> {
    let mut c = Cursor::new(payload);
    let mut v = [0u64; 6];
    for slot in &mut v {
        *slot = c.u64().map_err(|_| {
            format!(
                "footer payload is {} bytes, shorter than its {FOOTER_FIXED_LEN} fixed bytes",
                payload.len()
            )
        })?;
    }
    Ok(Footer {
        records: v[0],
        captured_bytes: v[1],
        original_bytes: v[2],
        first_ns: v[3],
        last_ns: v[4],
        closed_ns: v[5],
        losses: decode_losses(&mut c)?,
        stop: decode_stop(&mut c)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LOSSES payloads of both versions, byte by byte.
    #[test]
    fn losses_golden_bytes_and_the_1_0_form() {
        let l = Losses {
            kernel: [1, 2, 0, 0],
            gap_records: 300,
            socket_errors: 5,
            unwritten: 7,
            ..Losses::default()
        };
        let mut out = Vec::new();
        encode_losses(&mut out, &l);
        #[rustfmt::skip]
        let want = [
            0x01, 0x02, 0x00, 0x00, // kernel nomem, rcvbuf, send, other
            0xac, 0x02,             // gap_records 300 = 0x2c | 0x80, 300 >> 7
            0x00, 0x00, 0x00,       // gap_batches, truncated, malformed
            0x05,                   // socket_errors
            0x07,                   // unwritten (1.1)
        ];
        assert_eq!(out, want);
        assert_eq!(decode_losses_payload(&out), Ok(l));
        // A 1.0 writer stops after socket_errors: unwritten reads as 0.
        let v1_0 = decode_losses_payload(&want[..10]).unwrap();
        assert_eq!(v1_0, Losses { unwritten: 0, ..l });
        // Bytes after the known counters are a later version's: ignored.
        let mut later = want.to_vec();
        later.extend_from_slice(&[0x09, 0x7f]);
        assert_eq!(decode_losses_payload(&later), Ok(l));
        // Cut inside the first nine counters: an error.
        assert!(decode_losses_payload(&want[..9]).is_err());
        // A started but cut 10th counter is an error too, not a 0.
        assert!(decode_losses_payload(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]).is_err());
    }

    /// 1.0 and 1.1 FOOTERs (nine and ten loss varints, no stop reason)
    /// still read: no unwritten in 1.0, no stop reason in either.
    #[test]
    fn footers_of_versions_1_0_and_1_1_read() {
        let f = Footer {
            records: 3,
            closed_ns: 9,
            losses: Losses {
                gap_records: 2,
                unwritten: 4,
                ..Losses::default()
            },
            stop: None,
            ..Footer::default()
        };
        let new = encode_footer(&f);
        assert_eq!(new.len(), 48 + 10 + 2, "1.2 writes cause 0, length 0");
        assert_eq!(&new[58..], [0x00, 0x00]);
        assert_eq!(decode_footer(&new), Ok(f.clone()));
        // 1.1: the ten loss varints end the payload.
        assert_eq!(decode_footer(&new[..48 + 10]), Ok(f.clone()));
        // 1.0: nine.
        let v1_0 = Footer {
            losses: Losses {
                unwritten: 0,
                ..f.losses
            },
            ..f
        };
        assert_eq!(decode_footer(&new[..48 + 9]), Ok(v1_0));
    }

    /// A 1.2 FOOTER, byte by byte.
    #[test]
    fn footer_golden_bytes_with_a_stop_reason() {
        let f = Footer {
            records: 2,
            captured_bytes: 0x0102,
            original_bytes: 0x0203,
            first_ns: 5,
            last_ns: 6,
            closed_ns: 7,
            losses: Losses {
                unwritten: 3,
                ..Losses::default()
            },
            stop: Some(StopReason::new(
                StopCause::WriteError,
                "No space left on device",
            )),
        };
        let out = encode_footer(&f);
        #[rustfmt::skip]
        let want = [
            0x02, 0, 0, 0, 0, 0, 0, 0,       // records 2
            0x02, 0x01, 0, 0, 0, 0, 0, 0,    // captured_bytes 0x0102
            0x03, 0x02, 0, 0, 0, 0, 0, 0,    // original_bytes 0x0203
            0x05, 0, 0, 0, 0, 0, 0, 0,       // first_ns 5
            0x06, 0, 0, 0, 0, 0, 0, 0,       // last_ns 6
            0x07, 0, 0, 0, 0, 0, 0, 0,       // closed_ns 7
            0x00, 0x00, 0x00, 0x00,          // kernel nomem, rcvbuf, send, other
            0x00, 0x00, 0x00, 0x00, 0x00,    // gap_records, gap_batches, truncated,
                                             // malformed, socket_errors
            0x03,                            // unwritten 3 (1.1)
            0x04,                            // stop cause 4: write error (1.2)
            0x17,                            // detail length 23
            b'N', b'o', b' ', b's', b'p', b'a', b'c', b'e', b' ', b'l', b'e', b'f',
            b't', b' ', b'o', b'n', b' ', b'd', b'e', b'v', b'i', b'c', b'e',
        ];
        assert_eq!(out, want);
        assert_eq!(decode_footer(&out), Ok(f.clone()));

        // Bytes after the stop reason are a later version's: ignored.
        let mut later = out.clone();
        later.extend_from_slice(&[0x2a, 0x80, 0x01]);
        assert_eq!(decode_footer(&later), Ok(f.clone()));

        // Cut inside the stop reason: an error, like a cut loss counter.
        // Inside the detail, at the length, and inside a long cause.
        for cut in [out.len() - 1, 48 + 10 + 1] {
            let e = decode_footer(&out[..cut]).unwrap_err();
            assert!(e.contains("stop"), "{cut}: {e}");
        }
        let mut long_cause = out[..58].to_vec();
        long_cause.push(0x80);
        assert!(
            decode_footer(&long_cause)
                .unwrap_err()
                .contains("stop cause")
        );
    }

    /// Every cause's number, an unknown (later) one kept by number, cause 0
    /// read as "not recorded", and invalid UTF-8 replaced, not rejected.
    #[test]
    fn stop_causes_unknown_and_invalid_detail() {
        let base = encode_footer(&Footer::default());
        let with = |cause: &[u8], detail: &[u8]| {
            let mut p = base[..58].to_vec();
            p.extend_from_slice(cause);
            p.push(detail.len() as u8);
            p.extend_from_slice(detail);
            decode_footer(&p).map(|f| f.stop)
        };
        for (code, cause) in [
            (1, StopCause::Signal),
            (2, StopCause::Count),
            (3, StopCause::Duration),
            (4, StopCause::WriteError),
            (5, StopCause::ReceiveError),
        ] {
            assert_eq!(cause.code(), code);
            assert_eq!(StopCause::from_code(code), Some(cause));
            let got = with(&[code as u8], b"x").unwrap().unwrap();
            assert_eq!(got, StopReason::new(cause, "x"));
        }
        // A later version's cause 300 (varint 0xac 0x02).
        let other = with(&[0xac, 0x02], b"why").unwrap().unwrap();
        assert_eq!(other.cause, StopCause::Other(300));
        assert_eq!(other.cause.code(), 300);
        assert_eq!(other.to_string(), "cause 300: why");
        assert_eq!(with(&[0x00], b"ignored"), Ok(None));
        let bad = with(&[0x01], b"SIG\xffINT").unwrap().unwrap();
        assert_eq!(bad.detail, "SIG\u{fffd}INT");
        // What the writer stores round-trips through every cause.
        for cause in [StopCause::Signal, StopCause::Other(u64::MAX)] {
            let f = Footer {
                stop: Some(StopReason::new(cause, "é")),
                ..Footer::default()
            };
            assert_eq!(decode_footer(&encode_footer(&f)), Ok(f));
        }
    }

    /// A detail longer than the limit is cut at a character boundary, by
    /// `StopReason::new` and by the encoder (whose output must fit the
    /// writer's reserve whatever it is given).
    #[test]
    fn long_detail_is_cut_at_a_char_boundary() {
        // 'é' is two bytes: 1023 of them put a boundary at 1022 and 1024,
        // with a 'z' first they sit at 1023 and 1025.
        let long = format!("z{}", "é".repeat(1023));
        let cut = StopReason::new(StopCause::ReceiveError, long.clone());
        assert_eq!(cut.detail.len(), 1023);
        assert!(long.starts_with(&cut.detail));
        let f = Footer {
            stop: Some(StopReason {
                cause: StopCause::ReceiveError,
                detail: long,
            }),
            ..Footer::default()
        };
        let p = encode_footer(&f);
        assert!(p.len() <= MAX_FOOTER_PAYLOAD);
        assert_eq!(decode_footer(&p).unwrap().stop, Some(cut));
        let exact = "a".repeat(StopReason::MAX_DETAIL);
        assert_eq!(
            StopReason::new(StopCause::Count, exact.clone()).detail,
            exact
        );
    }

    #[test]
    fn stop_reason_display() {
        let line = |cause, detail: &str| StopReason::new(cause, detail).to_string();
        assert_eq!(line(StopCause::Signal, "SIGTERM"), "stopped by SIGTERM");
        assert_eq!(line(StopCause::Count, "1000"), "packet count 1000 reached");
        assert_eq!(line(StopCause::Duration, "60 s"), "duration 60 s reached");
        assert_eq!(
            line(StopCause::WriteError, "No space left on device"),
            "write error: No space left on device"
        );
        assert_eq!(line(StopCause::ReceiveError, "x"), "receive error: x");
        assert_eq!(line(StopCause::Signal, ""), "stopped by a signal");
        assert_eq!(line(StopCause::Other(9), ""), "cause 9");
    }

    #[test]
    fn varint_limits() {
        let mut b = [0u8; 10];
        for v in [0, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            let n = put_varint(&mut b, v);
            assert_eq!(Cursor::new(&b[..n]).varint_u64(), Ok(v));
            assert!(n <= 10);
            if let Ok(v32) = u32::try_from(v) {
                assert!(n <= 5);
                assert_eq!(Cursor::new(&b[..n]).varint_u32(), Ok(v32));
            } else {
                assert!(Cursor::new(&b[..n]).varint_u32().is_err());
            }
            assert!(Cursor::new(&b[..n - 1]).varint_u64().is_err());
        }
        // 11 bytes, or a 10th byte with more than one bit, are rejected.
        assert!(Cursor::new(&[0x80; 11]).varint_u64().is_err());
        let mut over = [0xffu8; 10];
        over[9] = 0x02;
        assert!(Cursor::new(&over).varint_u64().is_err());
        // Non-minimal forms within the limit are accepted.
        assert_eq!(Cursor::new(&[0x81, 0x80, 0x00]).varint_u64(), Ok(1));
    }

    #[test]
    fn zigzag_round_trip() {
        for n in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn records_frame_seal_matches_seal() {
        let mut frame: Vec<u8> = (0..5000u32).map(|i| (i * 31) as u8).collect();
        let mut other = frame.clone();
        seal_frame(&mut other, FRAME_RECORDS);
        let records_crc = crc::crc32c(&frame[FRAME_HEADER_LEN + RECORDS_PREFIX_LEN..]);
        seal_records_frame(&mut frame, records_crc);
        assert_eq!(frame, other);
    }

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
        decode_records(p, &mut out).map(|()| out)
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
