//! Record digests: "the log holds exactly what the producer sent".

use imp2_format::PacketRecord;
use imp2_format::crc::{crc32c, crc32c_append};

/// An order-independent digest of a set of records, for end-to-end checks
/// ("the log holds exactly what the producer sent").
///
/// Each record hashes to 64 bits (two CRC32C over all its fields and data,
/// with different seeds); the digest is the count and the wrapping sum of
/// those hashes, so batches that arrive in another order (per-CPU batches)
/// give the same digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct RecordDigest {
    /// Records added.
    pub records: u64,
    /// Wrapping sum of per-record hashes.
    pub sum: u64,
}

impl RecordDigest {
    /// Adds one record.
    pub fn add(&mut self, record: &PacketRecord<'_>) {
        let mut fields = [0u8; 20];
        fields[0..8].copy_from_slice(&record.tstamp_ns.to_le_bytes());
        fields[8..12].copy_from_slice(&record.ifindex.to_le_bytes());
        fields[12..16].copy_from_slice(&record.orig_len.to_le_bytes());
        fields[16] = record.hook.0;
        fields[17] = record.family.0;
        fields[18] = record.protocol;
        let lo = crc32c_append(crc32c(&fields), record.data);
        let hi = crc32c_append(crc32c_append(0x9e37_79b9, &fields), record.data);
        self.records += 1;
        self.sum = self.sum.wrapping_add(u64::from(hi) << 32 | u64::from(lo));
    }

    /// Hex form for JSON reports: `<records>:<sum as 16 hex digits>`.
    pub fn to_hex(&self) -> String {
        format!("{}:{:016x}", self.records, self.sum)
    }
}
