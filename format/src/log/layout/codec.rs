//! The primitives every block is built from: little-endian fields read
//! through a bounds-checked [`Cursor`], LEB128 varints, zigzag, lossy
//! UTF-8 (FORMAT.md section 1). Checksums are `crate::crc`'s.

use super::error::Malformed;

/// Writes `v` as a varint at the start of `out` and returns its length.
/// `out` must hold 10 bytes (5 for values that fit in a `u32`).
#[inline(always)]
pub(crate) fn put_varint(out: &mut [u8], mut v: u64) -> usize {
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
pub(crate) fn push_varint(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let n = put_varint(&mut tmp, v);
    out.extend_from_slice(&tmp[..n]);
}

#[inline(always)]
pub(crate) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[inline(always)]
pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bounds-checked reader over a byte slice. Every accessor fails with a
/// [`Malformed`] instead of panicking.
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

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.remaining() {
            return Err(Malformed::PastEnd);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A `u64` varint: at most 10 bytes, value within 64 bits.
    pub(crate) fn varint_u64(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Malformed::VarintPastEnd);
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(Malformed::VarintOverflow { bits: 64 });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed::VarintTooLong { max: 10 })
    }

    /// A `u32` varint: at most 5 bytes, value within 32 bits.
    pub(crate) fn varint_u32(&mut self) -> Result<u32, Malformed> {
        let mut v = 0u32;
        for i in 0..5 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Malformed::VarintPastEnd);
            };
            self.pos += 1;
            if i == 4 && b > 0x0f {
                return Err(Malformed::VarintOverflow { bits: 32 });
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed::VarintTooLong { max: 5 })
    }
}

/// Bytes as a string, invalid UTF-8 replaced (FORMAT.md section 1).
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
