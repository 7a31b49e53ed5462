//! What an imp2 file is when it is plainly not a log but a file often
//! passed by mistake (an empty file, a pcap or pcapng capture), for
//! [`LogReader::mistaken_input`](super::LogReader::mistaken_input).

/// The reason for [`LogReader::mistaken_input`], from the first (up to 4)
/// bytes of a file that is not a log.
pub(super) fn mistaken_input_reason(prefix: &[u8]) -> Option<&'static str> {
    // The classic pcap magics (µs 0xa1b2c3d4, ns 0xa1b23c4d) are written in
    // the capturing host's byte order; pcapng's first block type
    // (0x0a0d0d0a) reads the same in both.
    const PCAP: [[u8; 4]; 4] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
    ];
    const PCAPNG_SHB: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
    let magic: [u8; 4] = match prefix {
        [] => return Some("is an empty file, not an imp2 log"),
        [a, b, c, d, ..] => [*a, *b, *c, *d],
        _ => return None,
    };
    // The same advice for both kinds of capture.
    macro_rules! already_a_capture {
        ($kind:literal) => {
            concat!(
                "is a ",
                $kind,
                " file, not an imp2 log (already a capture: open it with Wireshark, tshark \
                 or tcpdump -r)"
            )
        };
    }
    if PCAP.contains(&magic) {
        Some(already_a_capture!("pcap"))
    } else if magic == PCAPNG_SHB {
        Some(already_a_capture!("pcapng"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::{LogReader, ReadErrorKind};
    use super::*;

    const PCAP_REASON: &str = "is a pcap file, not an imp2 log (already a capture: open it \
                               with Wireshark, tshark or tcpdump -r)";
    const PCAPNG_REASON: &str = "is a pcapng file, not an imp2 log (already a capture: open \
                                 it with Wireshark, tshark or tcpdump -r)";

    #[test]
    fn mistaken_inputs_are_named() {
        let cases: &[(&[u8], Option<&str>)] = &[
            // 0 bytes.
            (b"", Some("is an empty file, not an imp2 log")),
            // pcap, microseconds, written little-endian (magic 0xa1b2c3d4),
            // then version 2.4.
            (
                &[0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00],
                Some(PCAP_REASON),
            ),
            // The same written big-endian.
            (
                &[0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x02, 0x00, 0x04],
                Some(PCAP_REASON),
            ),
            // pcap, nanoseconds (0xa1b23c4d), little-endian: imp2-convert's
            // own pcap output.
            (&[0x4d, 0x3c, 0xb2, 0xa1], Some(PCAP_REASON)),
            // The same big-endian.
            (&[0xa1, 0xb2, 0x3c, 0x4d], Some(PCAP_REASON)),
            // pcapng: SHB block type 0x0a0d0d0a, total length 28 (LE), byte
            // order magic 0x1a2b3c4d (LE).
            (
                &[
                    0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a,
                ],
                Some(PCAPNG_REASON),
            ),
            // Fewer than 4 bytes, even of a magic: not recognised.
            (&[0xd4, 0xc3, 0xb2], None),
            (&[0x0a], None),
            // The imp2 magic itself, and text.
            (b"IMP2LOG\0", None),
            (b"hello world", None),
            // A pcap magic with one byte off.
            (&[0xd4, 0xc3, 0xb2, 0xa2], None),
        ];
        for (bytes, want) in cases {
            assert_eq!(mistaken_input_reason(bytes), *want, "{bytes:02x?}");
        }
    }

    #[test]
    fn mistaken_input_reads_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            LogReader::mistaken_input(&empty),
            Some("is an empty file, not an imp2 log")
        );
        // What the tools see first: open still fails as not a log.
        assert!(matches!(
            LogReader::open(&empty).unwrap_err().kind,
            ReadErrorKind::NotALog
        ));
        let pcap = dir.path().join("run.pcap");
        std::fs::write(&pcap, [0x4d, 0x3c, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00]).unwrap();
        assert_eq!(LogReader::mistaken_input(&pcap), Some(PCAP_REASON));
        // A directory (reads as empty to nobody) and a missing file.
        assert_eq!(LogReader::mistaken_input(dir.path()), None);
        assert_eq!(LogReader::mistaken_input(&dir.path().join("nope")), None);
    }
}
