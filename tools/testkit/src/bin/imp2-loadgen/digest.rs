//! [`RecordDigest`] at line rate: the same value as `RecordDigest::add`,
//! computed with two CRC32C passes per record instead of four, with
//! imp2-format's CRC ([`imp2_format::crc`]).
//!
//! `RecordDigest::add` hashes each record with two CRC32C over the same
//! bytes M (20 bytes of fields, then the data), from two initial values.
//! CRC is linear: running it from state `a ^ b` equals running it from `a`
//! xored with running it from `b` over zeros. So the second CRC is the
//! first xored with a constant that depends only on the length of M (the
//! CRC of that many zero bytes from the difference of the two initial
//! states: `crc32c_combine(HI_SEED, 0, len)`), which is cached per length.
//!
//! For data seen many times (the packet pool), [`FastDigest::prepare`]
//! computes the data's own CRC once; each record then costs the CRC of its
//! 20 field bytes and one table-driven "advance over n bytes" of that state
//! (linearity again: running state s over data D equals running s over n
//! zero bytes, xored with running 0 over D).

use imp2_format::PacketRecord;
use imp2_format::crc::{crc32c, crc32c_append, crc32c_combine};
use imp2_testkit::RecordDigest;

/// The seed `RecordDigest::add` starts its high CRC from.
const HI_SEED: u32 = 0x9e37_79b9;

/// Cache slots for the per-length constant (direct-mapped by length).
const SLOTS: usize = 256;

/// Adds records to a [`RecordDigest`], fast.
#[derive(Debug, Clone)]
pub struct FastDigest {
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

/// The 20 field bytes `RecordDigest::add` hashes before the data
/// (little-endian tstamp_ns, ifindex, orig_len, then hook, family,
/// protocol, 0).
#[inline(always)]
fn fields(r: &PacketRecord<'_>) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[0..8].copy_from_slice(&r.tstamp_ns.to_le_bytes());
    f[8..12].copy_from_slice(&r.ifindex.to_le_bytes());
    f[12..16].copy_from_slice(&r.orig_len.to_le_bytes());
    f[16] = r.hook.0;
    f[17] = r.family.0;
    f[18] = r.protocol;
    f
}

/// The CRC state (before the final inversion) after the field bytes.
#[inline(always)]
fn fields_state(r: &PacketRecord<'_>) -> u32 {
    !crc32c(&fields(r))
}

/// The high CRC xor the low one for a message of `len` bytes: the state
/// difference `HI_SEED` advanced over `len` zero bytes.
fn zeros(len: usize) -> u32 {
    crc32c_combine(HI_SEED, 0, len as u64)
}

impl FastDigest {
    /// A digester with empty caches.
    pub fn new() -> FastDigest {
        FastDigest {
            cache: Box::new([(0, 0); SLOTS]),
            shifts: Vec::new(),
        }
    }

    /// Precomputes the digest work for records carrying `data`.
    pub fn prepare(&mut self, data: &[u8]) -> Prepared {
        let n = data.len();
        let shift = match self.shifts.iter().position(|(len, _)| *len == n) {
            Some(i) => i,
            None => {
                // The map is linear: tabulate it from its values on the
                // 32 basis states (a state advanced over n zero bytes is
                // `crc32c_combine(state, 0, n)`).
                let mut basis = [0u32; 32];
                for (j, b) in basis.iter_mut().enumerate() {
                    *b = crc32c_combine(1 << j, 0, n as u64);
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
        Prepared {
            // The state after the data from state 0: `crc32c_append` runs
            // from state `!crc` and inverts at the end.
            crc0: !crc32c_append(u32::MAX, data),
            shift: shift as u32,
            zeros: zeros(20 + n),
        }
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
        let s = fields_state(record);
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

    /// Adds `record` to `digest`, exactly like `digest.add(record)`.
    #[inline(always)]
    pub fn add(&mut self, digest: &mut RecordDigest, record: &PacketRecord<'_>) {
        let lo = crc32c_append(crc32c(&fields(record)), record.data);
        let len = 20 + record.data.len();
        let slot = &mut self.cache[len % SLOTS];
        let zeros = if slot.0 == len as u32 + 1 {
            slot.1
        } else {
            let z = zeros(len);
            *slot = (len as u32 + 1, z);
            z
        };
        let hi = lo ^ zeros;
        digest.records += 1;
        digest.sum = digest.sum.wrapping_add(u64::from(hi) << 32 | u64::from(lo));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_testkit::synth::{PacketSynth, SynthOptions};

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
            let p = fast.prepare(r.data);
            fast.add_prepared(&mut a, &PacketRecord { data: &[], ..r }, &p);
            b.add(&r);
            assert_eq!(a, b, "record {i}");
        }
    }
}
