//! The header block (FORMAT.md section 3): magic and version, the two
//! mutable fields (`committed_len`, `state`), the checksummed static part
//! and its TLV entries.

use super::codec::{Cursor, lossy};
use super::error::{EncodeError, HeaderError, HeaderProblem, Malformed};
use crate::crc;
use crate::log::{Interface, LogHeader};

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
pub(crate) const STATIC_FIXED_LEN: usize = 13;

pub(crate) const STATE_RECORDING: u32 = 0;
pub(crate) const STATE_CLOSED: u32 = 1;

const TAG_SOURCE: u16 = 1;
const TAG_HOSTNAME: u16 = 2;
const TAG_KERNEL: u16 = 3;
const TAG_INTERFACE: u16 = 4;

/// The mutable and structural fields of a header, besides [`LogHeader`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderInfo {
    /// Format version of the file (major, minor).
    pub(crate) version: (u16, u16),
    pub(crate) header_len: u64,
    pub(crate) committed_len: u64,
    pub(crate) state: u32,
}

fn push_tlv(
    out: &mut Vec<u8>,
    tag: u16,
    value: &[&[u8]],
    what: &'static str,
) -> Result<(), EncodeError> {
    let len: usize = value.iter().map(|v| v.len()).sum();
    let len = u16::try_from(len).map_err(|_| EncodeError::TooLong { what, len })?;
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    for v in value {
        out.extend_from_slice(v);
    }
    Ok(())
}

/// Encodes a whole header region (`header_len` bytes, zero padded) with
/// `committed_len = header_len` and state "recording".
pub(crate) fn encode_header(h: &LogHeader) -> Result<Vec<u8>, EncodeError> {
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
    let static_len = u32::try_from(st.len()).map_err(|_| EncodeError::HeaderTooLarge)?;
    let used = OFF_STATIC + st.len() + 4;
    let header_len = used.div_ceil(HEADER_ALIGN) * HEADER_ALIGN;
    let header_len_u32 = u32::try_from(header_len).map_err(|_| EncodeError::HeaderTooLarge)?;

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
    let bad = |problem: HeaderProblem, off: usize| HeaderError::Bad {
        offset: off as u64,
        problem,
    };
    if buf.len() < OFF_STATIC {
        return Err(bad(
            HeaderProblem::TooShort {
                file_len: buf.len(),
            },
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
            HeaderProblem::StaticLenImpossible { static_len },
            OFF_STATIC_LEN,
        ));
    };
    let crc_end = static_end + 4;
    if crc_end > header_len as usize {
        return Err(bad(
            HeaderProblem::StaticPastHeader {
                static_len,
                header_len,
            },
            OFF_STATIC_LEN,
        ));
    }
    if static_len < STATIC_FIXED_LEN {
        return Err(bad(
            HeaderProblem::StaticTooShort { static_len },
            OFF_STATIC_LEN,
        ));
    }
    if crc_end > buf.len() {
        return Err(bad(
            HeaderProblem::Cut {
                file_len: buf.len(),
                crc_end,
            },
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
            HeaderProblem::Checksum { stored, computed },
            static_end,
        ));
    }
    if state != STATE_RECORDING && state != STATE_CLOSED {
        return Err(bad(HeaderProblem::UnknownState(state), OFF_STATE));
    }
    if committed_len < u64::from(header_len) {
        return Err(bad(
            HeaderProblem::CommittedInsideHeader {
                committed: committed_len,
                header_len,
            },
            OFF_COMMITTED,
        ));
    }

    let mut c = Cursor::new(&buf[OFF_STATIC..static_end]);
    let fixed = (|| Ok::<_, Malformed>((c.u64()?, c.u32()?, c.u8()?)))();
    // Cannot fail: static_len >= STATIC_FIXED_LEN was checked above.
    let (created_ns, snaplen, tsresol_digits) =
        fixed.map_err(|why| bad(HeaderProblem::StaticField(why), OFF_STATIC))?;
    let mut h = LogHeader {
        created_ns,
        snaplen,
        tsresol_digits,
        ..LogHeader::default()
    };
    while c.remaining() > 0 {
        let at = OFF_STATIC + c.pos();
        let (tag, value) = read_tlv(&mut c).map_err(|_| bad(HeaderProblem::EntryPastEnd, at))?;
        match tag {
            TAG_SOURCE => h.source = lossy(value),
            TAG_HOSTNAME => h.hostname = lossy(value),
            TAG_KERNEL => h.kernel_release = lossy(value),
            TAG_INTERFACE => {
                if value.len() < 4 {
                    return Err(bad(
                        HeaderProblem::InterfaceEntryShort { len: value.len() },
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
        version: (major, minor),
        header_len: u64::from(header_len),
        committed_len,
        state,
    };
    Ok((h, info))
}

fn read_tlv<'a>(c: &mut Cursor<'a>) -> Result<(u16, &'a [u8]), Malformed> {
    let tag = c.u16()?;
    let len = c.u16()?;
    Ok((tag, c.bytes(usize::from(len))?))
}
