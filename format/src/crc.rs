//! CRC32C (Castagnoli), the checksum of every log header and frame.
//!
//! The log writer checksums every byte it writes, so the CRC's speed is part
//! of the recorder's cost per record. The `crc32` instruction (SSE 4.2) runs
//! one 8-byte step per 3 cycles per dependency chain; the `crc-fast` crate
//! folds with carry-less multiplication as well. Which is faster depends on
//! the CPU: on an Intel Xeon with VPCLMULQDQ and AVX-512 (2026-12-05, 32 KiB
//! chunks, the writer's chunk size) `crc-fast` ran at 112 GB/s against the
//! `crc32c` crate's 26; on an AMD EPYC (Zen 3, no VPCLMULQDQ) one session
//! measured `crc-fast` 1.1-2x faster and another (issue 19) the `crc32c`
//! crate at 21.9 GB/s against 17-18 on 64 KiB. At these speeds the CRC of a
//! 92-byte record costs 1-5 ns. The `crc32c` crate stays as the independent
//! reference of the tests.
//!
//! Public for the test kit's record digests (`imp2-testkit`), which hash
//! millions of records per second with the same CRC.

use crc_fast::{CrcAlgorithm, Digest};

/// CRC32C of `bytes`.
#[inline]
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc_fast::crc32_iscsi(bytes)
}

/// CRC32C of `A || bytes`, given `crc` = CRC32C of `A` (0 for none): same
/// contract as `crc32c::crc32c_append`.
#[inline]
pub fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    // The running state is the CRC before its final inversion.
    let mut digest = Digest::new_with_init_state(CrcAlgorithm::Crc32Iscsi, u64::from(!crc));
    digest.update(bytes);
    digest.finalize() as u32
}

/// CRC32C polynomial, reflected.
const POLY: u32 = 0x82F6_3B78;

/// `a * b mod P` over GF(2), both reflected (zlib's `multmodp`).
const fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// `X2N[k] = x^(2^k) mod P`.
const X2N: [u32; 32] = {
    let mut t = [0u32; 32];
    let mut p = 1u32 << 30; // x^1
    let mut k = 0;
    while k < 32 {
        t[k] = p;
        p = multmodp(p, p);
        k += 1;
    }
    t
};

/// CRC32C of `A || B` from `crc(A)`, `crc(B)` and the length of `B`, in
/// O(log len) multiplications (zlib's `crc32_combine`); the crc32c crate's
/// combine squares 32x32 matrices instead, about 30 times slower.
pub fn crc32c_combine(crc1: u32, crc2: u32, len2: u64) -> u32 {
    // x^(8 * len2) mod P: one multiplication per set bit of len2, starting
    // at x^(2^3) for bytes.
    let mut p = 1u32 << 31; // x^0
    let mut n = len2;
    let mut k = 3;
    while n != 0 {
        if n & 1 != 0 {
            p = multmodp(X2N[k & 31], p);
        }
        n >>= 1;
        k += 1;
    }
    multmodp(p, crc1) ^ crc2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes whose CRC depends on every bit and on their order.
    fn data(len: usize) -> Vec<u8> {
        (0..len as u32).map(|i| (i * 7 + i / 13) as u8).collect()
    }

    #[test]
    fn is_castagnoli() {
        // The catalogue's check value of CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn matches_the_reference_crate_at_every_length_and_alignment() {
        let d = data(70_000);
        for len in (0..=300).chain([1023, 1024, 4096, 32_767, 32_768, 65_535, 69_000]) {
            for start in [0, 1, 3, 8] {
                let b = &d[start..start + len];
                assert_eq!(crc32c(b), crc32c::crc32c(b), "len {len} start {start}");
                assert_eq!(
                    crc32c_append(0x1234_5678, b),
                    crc32c::crc32c_append(0x1234_5678, b),
                    "append, len {len} start {start}"
                );
            }
        }
    }

    #[test]
    fn append_in_pieces_equals_whole() {
        let d = data(100_000);
        for piece in [1, 7, 64, 1000, 32 << 10] {
            let crc = d.chunks(piece).fold(0, crc32c_append);
            assert_eq!(crc, crc32c(&d), "pieces of {piece}");
        }
    }

    #[test]
    fn combine_matches_direct_crc() {
        let d = data(70_000);
        for split in [0, 1, 7, 8, 20, 1000, 65_536, 69_999, 70_000] {
            let (a, b) = d.split_at(split);
            let combined = crc32c_combine(crc32c(a), crc32c(b), b.len() as u64);
            assert_eq!(combined, crc32c::crc32c(&d), "split at {split}");
            assert_eq!(
                combined,
                crc32c::crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len())
            );
        }
    }
}
