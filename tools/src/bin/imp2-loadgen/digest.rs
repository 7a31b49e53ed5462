//! [`RecordDigest`] at line rate: the same value as `RecordDigest::add`,
//! computed with one CRC32C pass per record instead of four.
//!
//! `RecordDigest::add` hashes each record with two CRC32C over the same
//! bytes M (20 bytes of fields, then the data), from two initial values.
//! CRC is linear: running it from state `a ^ b` equals running it from `a`
//! xored with running it from `b` over zeros. So the second CRC is the
//! first xored with a constant that depends only on the length of M (the
//! CRC of that many zero bytes from the difference of the two initial
//! states), which is cached per length. The one pass uses the SSE 4.2
//! `crc32` instruction directly, without the alignment preamble that makes
//! the general-purpose routine slow on short buffers. Without SSE 4.2 it
//! falls back to `RecordDigest::add`.
//!
//! For data seen many times (the packet pool), [`FastDigest::prepare`]
//! computes the data's own CRC once; each record then costs the CRC of its
//! 20 field bytes and one table-driven "advance over n bytes" of that state
//! (linearity again: running state s over data D equals running s over n
//! zero bytes, xored with running 0 over D).

use imp2_format::{PacketRecord, RecordDigest};

/// The seed `RecordDigest::add` starts its high CRC from.
const HI_SEED: u32 = 0x9e37_79b9;

/// Cache slots for the per-length constant (direct-mapped by length).
const SLOTS: usize = 256;

/// Adds records to a [`RecordDigest`], fast.
#[derive(Debug, Clone)]
pub struct FastDigest {
    hw: bool,
    /// `(message length + 1, constant)`; 0 marks an empty slot.
    cache: Box<[(u32, u32); SLOTS]>,
    /// Per data length n: the map "CRC state advanced over n zero bytes",
    /// as four byte-indexed tables.
    shifts: Vec<(usize, Box<Shift>)>,
}

/// Byte tables of a linear map on CRC states.
type Shift = [[u32; 256]; 4];

/// What [`FastDigest::add_prepared`] needs to know about a record's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// CRC state after the data from state 0.
    crc0: u32,
    /// Index of the shift tables for the data length.
    shift: u32,
    /// Difference of the high and low CRCs for this record length.
    zeros: u32,
}

impl Default for FastDigest {
    fn default() -> FastDigest {
        FastDigest::new()
    }
}

impl FastDigest {
    /// A digester using the CRC32C instruction when the CPU has it.
    pub fn new() -> FastDigest {
        #[cfg(target_arch = "x86_64")]
        let hw = std::arch::is_x86_feature_detected!("sse4.2");
        #[cfg(not(target_arch = "x86_64"))]
        let hw = false;
        FastDigest {
            hw,
            cache: Box::new([(0, 0); SLOTS]),
            shifts: Vec::new(),
        }
    }

    /// Whether the CRC32C instruction is used.
    pub fn hw(&self) -> bool {
        self.hw
    }

    /// Precomputes the digest work for records carrying `data`; `None`
    /// without SSE 4.2 (use [`FastDigest::add`] then).
    pub fn prepare(&mut self, data: &[u8]) -> Option<Prepared> {
        #[cfg(target_arch = "x86_64")]
        if self.hw {
            let n = data.len();
            let shift = match self.shifts.iter().position(|(len, _)| *len == n) {
                Some(i) => i,
                None => {
                    // The map is linear: tabulate it from its values on the
                    // 32 basis states.
                    let mut basis = [0u32; 32];
                    for (j, b) in basis.iter_mut().enumerate() {
                        // SAFETY: `hw` is set only when the CPU supports SSE 4.2.
                        *b = unsafe { hw::zeros_crc(1 << j, n) };
                    }
                    let mut tables: Box<Shift> = Box::new([[0; 256]; 4]);
                    for (k, table) in tables.iter_mut().enumerate() {
                        for v in 1..256usize {
                            let low = v.trailing_zeros() as usize;
                            table[v] = table[v & (v - 1)] ^ basis[8 * k + low];
                        }
                    }
                    self.shifts.push((n, tables));
                    self.shifts.len() - 1
                }
            };
            // SAFETY: as above.
            let (crc0, zeros) = unsafe { (hw::run(0, data), hw::zeros_crc(HI_SEED, 20 + n)) };
            return Some(Prepared {
                crc0,
                shift: shift as u32,
                zeros,
            });
        }
        let _ = data;
        None
    }

    /// Adds a record whose data `prepared` describes (`record.data` is not
    /// read), exactly like `digest.add` of the record with that data.
    #[inline(always)]
    pub fn add_prepared(
        &self,
        digest: &mut RecordDigest,
        record: &PacketRecord<'_>,
        prepared: &Prepared,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `prepare` gave out `prepared`, so the CPU has SSE 4.2.
            let s = unsafe { hw::fields_state(record) };
            let t = &self.shifts[prepared.shift as usize].1;
            let advanced = t[0][(s & 0xff) as usize]
                ^ t[1][((s >> 8) & 0xff) as usize]
                ^ t[2][((s >> 16) & 0xff) as usize]
                ^ t[3][(s >> 24) as usize];
            let lo = !(advanced ^ prepared.crc0);
            let hi = lo ^ prepared.zeros;
            digest.records += 1;
            digest.sum = digest.sum.wrapping_add(u64::from(hi) << 32 | u64::from(lo));
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (digest, record, prepared);
            unreachable!("prepare() returns None without SSE 4.2");
        }
    }

    /// Adds `record` to `digest`, exactly like `digest.add(record)`.
    #[inline(always)]
    pub fn add(&mut self, digest: &mut RecordDigest, record: &PacketRecord<'_>) {
        #[cfg(target_arch = "x86_64")]
        if self.hw {
            // SAFETY: `hw` is set only when the CPU supports SSE 4.2.
            let lo = unsafe { hw::record_crc(record) };
            let len = 20 + record.data.len();
            let slot = &mut self.cache[len % SLOTS];
            let zeros = if slot.0 == len as u32 + 1 {
                slot.1
            } else {
                // SAFETY: as above.
                let z = unsafe { hw::zeros_crc(HI_SEED, len) };
                *slot = (len as u32 + 1, z);
                z
            };
            let hi = lo ^ zeros;
            digest.records += 1;
            digest.sum = digest.sum.wrapping_add(u64::from(hi) << 32 | u64::from(lo));
            return;
        }
        digest.add(record);
    }
}

#[cfg(target_arch = "x86_64")]
mod hw {
    use imp2_format::PacketRecord;
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u32, _mm_crc32_u64};

    /// `crc32c_append(crc32c(fields), data)` of `RecordDigest::add`: the
    /// CRC32C (initial value 0, i.e. state !0) of the 20 field bytes then
    /// the data.
    ///
    /// # Safety
    /// The CPU must support SSE 4.2.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    pub unsafe fn record_crc(r: &PacketRecord<'_>) -> u32 {
        // SAFETY: the caller guarantees SSE 4.2.
        unsafe { !run(fields_state(r), r.data) }
    }

    /// The CRC state after the 20 field bytes of `RecordDigest::add`
    /// (little-endian tstamp_ns, ifindex, orig_len, hook, family,
    /// protocol, 0), from state !0.
    ///
    /// # Safety
    /// The CPU must support SSE 4.2.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    #[allow(unused_unsafe)] // the intrinsics are safe here on newer Rust
    pub unsafe fn fields_state(r: &PacketRecord<'_>) -> u32 {
        let w0 = r.tstamp_ns;
        let w1 = u64::from(r.ifindex) | u64::from(r.orig_len) << 32;
        let w2 = u32::from(r.hook.0) | u32::from(r.family.0) << 8 | u32::from(r.protocol) << 16;
        // SAFETY: the caller guarantees SSE 4.2.
        unsafe {
            let s = _mm_crc32_u64(u64::from(u32::MAX), w0);
            let s = _mm_crc32_u64(s, w1);
            _mm_crc32_u32(s as u32, w2)
        }
    }

    /// Runs the CRC state `s` over `data`.
    ///
    /// # Safety
    /// The CPU must support SSE 4.2.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    #[allow(unused_unsafe)] // the intrinsics are safe here on newer Rust
    pub unsafe fn run(s: u32, data: &[u8]) -> u32 {
        let mut s64 = u64::from(s);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            // SAFETY: the caller guarantees SSE 4.2.
            s64 = unsafe { _mm_crc32_u64(s64, u64::from_le_bytes(w)) };
        }
        let mut s = s64 as u32;
        let mut rest = chunks.remainder();
        if rest.len() >= 4 {
            let w = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            // SAFETY: the caller guarantees SSE 4.2.
            s = unsafe { _mm_crc32_u32(s, w) };
            rest = &rest[4..];
        }
        for &b in rest {
            // SAFETY: the caller guarantees SSE 4.2.
            s = unsafe { _mm_crc32_u8(s, b) };
        }
        s
    }

    /// The CRC state after running `len` zero bytes from state `s`.
    ///
    /// # Safety
    /// The CPU must support SSE 4.2.
    #[target_feature(enable = "sse4.2")]
    #[allow(unused_unsafe)] // the intrinsics are safe here on newer Rust
    pub unsafe fn zeros_crc(s: u32, len: usize) -> u32 {
        let mut s64 = u64::from(s);
        for _ in 0..len / 8 {
            // SAFETY: the caller guarantees SSE 4.2.
            s64 = unsafe { _mm_crc32_u64(s64, 0) };
        }
        let mut s = s64 as u32;
        for _ in 0..len % 8 {
            // SAFETY: the caller guarantees SSE 4.2.
            s = unsafe { _mm_crc32_u8(s, 0) };
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_format::synth::{PacketSynth, SynthOptions};

    #[test]
    fn same_as_record_digest() {
        let options = SynthOptions {
            sizes: (1..=200).chain([1500, 9000, 65535]).collect(),
            ifindexes: vec![1, 2, 0xdead_beef],
            ..SynthOptions::default()
        };
        let mut synth = PacketSynth::new(5, options).unwrap();
        let mut buf = vec![0u8; 65535];
        let mut fast = FastDigest::new();
        let (mut a, mut b) = (RecordDigest::default(), RecordDigest::default());
        for i in 0..20_000u64 {
            let snaplen = [65535, 64, 1, 0, 37][i as usize % 5];
            let r = synth.next_record(&mut buf, snaplen, i.wrapping_mul(0x1234_5678_9abc));
            fast.add(&mut a, &r);
            b.add(&r);
            assert_eq!(a, b, "record {i}");
        }
    }

    #[test]
    fn prepared_same_as_record_digest() {
        let mut synth = PacketSynth::new(
            6,
            SynthOptions {
                sizes: vec![1, 28, 64, 65, 1500],
                ..SynthOptions::default()
            },
        )
        .unwrap();
        let mut buf = vec![0u8; 1500];
        let mut fast = FastDigest::new();
        let (mut a, mut b) = (RecordDigest::default(), RecordDigest::default());
        for i in 0..5_000u64 {
            let r = synth.next_record(&mut buf, [65535, 64, 3][i as usize % 3], i * 977);
            match fast.prepare(r.data) {
                Some(p) => fast.add_prepared(&mut a, &PacketRecord { data: &[], ..r }, &p),
                None => a.add(&r),
            }
            b.add(&r);
            assert_eq!(a, b, "record {i}");
        }
    }
}
