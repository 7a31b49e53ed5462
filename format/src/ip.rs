//! Facts of an IP packet read from its header bytes: its family (by the
//! version nibble), its original length and its transport protocol (after
//! IPv6 extension headers, a later fragment's included).
//!
//! The one place every Rust part of imp2 derives them from packet bytes
//! (the NFLOG records, the export's link-layer header, the tools). Every
//! function takes untrusted `&[u8]` of any length and never panics.

use crate::record::{Family, PROTO_UNKNOWN};

/// The family of an IP packet by the version in its first nibble (4 or
/// 6); `None` for anything else or no bytes.
#[inline]
pub fn ip_family(data: &[u8]) -> Option<Family> {
    match data.first().map(|b| b >> 4) {
        Some(4) => Some(Family::IPV4),
        Some(6) => Some(Family::IPV6),
        _ => None,
    }
}

/// Original length of an IP packet from its header (IPv4 total length;
/// IPv6 payload length + 40), never less than the captured bytes; the
/// captured length when the header is cut or says 0 (jumbograms, GSO).
#[inline]
pub fn ip_orig_len(family: Family, data: &[u8]) -> u32 {
    let captured = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let claimed = match (family, data) {
        (Family::IPV4, [_, _, l0, l1, ..]) => u32::from(u16::from_be_bytes([*l0, *l1])),
        (Family::IPV6, [_, _, _, _, l0, l1, ..]) => match u16::from_be_bytes([*l0, *l1]) {
            0 => 0,
            n => u32::from(n) + 40,
        },
        _ => 0,
    };
    claimed.max(captured)
}

/// Transport protocol of an IP packet: the IPv4 protocol field; for IPv6
/// the next header after the extension headers, as the kernel's
/// `ipv6_skip_exthdr` walks them (the module's `imp2_protocol` does the
/// same). A later fragment has no transport header: it gets its fragment
/// header's next header, the protocol of the datagram it belongs to, as an
/// IPv4 fragment carries it in its protocol field, so that every fragment
/// of a UDP datagram counts as UDP in both families (44, the fragment
/// header itself, named no protocol a user asked about). [`PROTO_UNKNOWN`]
/// when the captured bytes end first or there is no next header. A chain
/// cut by the snaplen gives unknown, not the last next header reached: that would name an extension header as the
/// protocol, and 44 would read as a later fragment. The one function every
/// protocol taken from packet bytes comes from (the NFLOG source's
/// records); `&[u8]` of any length, never panics.
#[inline]
pub fn ip_protocol(family: Family, data: &[u8]) -> u8 {
    match family {
        Family::IPV4 => data.get(9).copied().unwrap_or(PROTO_UNKNOWN),
        Family::IPV6 => ipv6_protocol(data),
        _ => PROTO_UNKNOWN,
    }
}

fn ipv6_protocol(data: &[u8]) -> u8 {
    const HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const NONE: u8 = 59;
    const DEST: u8 = 60;
    if data.len() < 40 {
        return PROTO_UNKNOWN;
    }
    let mut next = data[6];
    let mut start = 40usize;
    // Each extension header is at least 8 bytes: the loop ends within
    // data.len() / 8 rounds.
    while matches!(next, HOP | ROUTING | FRAGMENT | AUTH | NONE | DEST) {
        if next == NONE {
            return PROTO_UNKNOWN;
        }
        let Some(&[nh, hlen, f0, f1]) = data.get(start..start + 4) else {
            return PROTO_UNKNOWN;
        };
        let len = match next {
            FRAGMENT => {
                if u16::from_be_bytes([f0, f1]) & !7 != 0 {
                    // A later fragment: its data is not a header.
                    return nh;
                }
                8
            }
            AUTH => (usize::from(hlen) + 2) * 4,
            _ => (usize::from(hlen) + 1) * 8,
        };
        next = nh;
        start += len;
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_extension_headers_are_skipped_like_the_kernel() {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        p.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]); // -> dest opts, 8 bytes
        p.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // -> frag, 16
        p.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 1]); // first fragment -> UDP
        assert_eq!(ip_protocol(Family::IPV6, &p), 17);
        // A non-first fragment stops at the fragment header and takes the
        // protocol it names.
        let n = p.len();
        p[n - 6] = 0x05;
        assert_eq!(ip_protocol(Family::IPV6, &p), 17);
        // Cut short inside the chain: unknown.
        assert_eq!(ip_protocol(Family::IPV6, &p[..50]), PROTO_UNKNOWN);
        // No next header.
        let mut q = vec![0u8; 40];
        q[6] = 59;
        assert_eq!(ip_protocol(Family::IPV6, &q), PROTO_UNKNOWN);
        // AH: (len + 2) * 4 bytes.
        let mut a = vec![0u8; 40];
        a[6] = 51;
        a.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ip_protocol(Family::IPV6, &a), 6);
        assert_eq!(ip_protocol(Family::IPV6, &a[..39]), PROTO_UNKNOWN);
    }

    #[test]
    fn original_length_comes_from_the_ip_header() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[2..4].copy_from_slice(&1500u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV4, &v4), 1500);
        // A header claiming less than was captured: the captured length.
        v4[2..4].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV4, &v4), 20);
        let mut v6 = [0u8; 40];
        v6[4..6].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV6, &v6), 1040);
        v6[4..6].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(ip_orig_len(Family::IPV6, &v6), 40);
        assert_eq!(ip_orig_len(Family::IPV6, &v6[..3]), 3);
        assert_eq!(ip_orig_len(Family(7), &v6), 40);
    }

    #[test]
    fn the_family_comes_from_the_version_nibble() {
        assert_eq!(ip_family(&[0x45, 0]), Some(Family::IPV4));
        assert_eq!(ip_family(&[0x60]), Some(Family::IPV6));
        assert_eq!(ip_family(&[0x50]), None);
        assert_eq!(ip_family(&[]), None);
    }
}
