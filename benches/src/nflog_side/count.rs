//! Counting packets in the outputs: capture files and imp2 logs.

use super::*;

// ---------------------------------------------------------------------------
// Counting packets in the outputs

/// Packets in a capture file: all of them, and those of the flood (IPv4
/// UDP to `PORT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// Every packet in the file.
    pub total: u64,
    /// The flood's packets.
    pub flood: u64,
}

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Is this captured frame (of `linktype`) one of the flood's datagrams?
pub(super) fn is_flood(linktype: u32, frame: &[u8]) -> bool {
    let ip = match linktype {
        // Ethernet, with one optional VLAN tag.
        1 => {
            let (et, off) = match be16(frame, 12) {
                Some(0x8100) => (be16(frame, 16), 18),
                et => (et, 14),
            };
            if et != Some(0x0800) {
                return false;
            }
            &frame[off.min(frame.len())..]
        }
        // Raw IP (DLT_RAW in its several numberings) and LINKTYPE_IPV4.
        12 | 14 | 101 | 228 => frame,
        // Linux cooked capture v1 and v2.
        113 if be16(frame, 14) == Some(0x0800) => &frame[16.min(frame.len())..],
        276 if be16(frame, 0) == Some(0x0800) => &frame[20.min(frame.len())..],
        _ => return false,
    };
    let Some(&v_ihl) = ip.first() else {
        return false;
    };
    let ihl = usize::from(v_ihl & 0x0f) * 4;
    v_ihl >> 4 == 4 && ip.get(9) == Some(&17) && be16(ip, ihl + 2) == Some(PORT)
}

/// Counts a pcap or pcapng file by walking its packets (a record cut
/// short at the end, by a capturer stopped mid-write, is not counted).
pub fn count_capture(path: &Path) -> Result<Count, String> {
    let mut c = Count::default();
    imp2_testkit::capture::for_each_packet(path, |linktype, frame| {
        c.total += 1;
        c.flood += u64::from(is_flood(linktype, frame));
    })?;
    Ok(c)
}

/// Counts an imp2 log through imp2-format's reader: all records and the
/// UDP ones (the rule only logs the flood).
pub fn count_log(path: &Path) -> Result<Count, String> {
    let reader = LogReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = Count::default();
    for event in reader.events() {
        match event {
            Ok(LogEvent::Record(r)) => {
                c.total += 1;
                c.flood += u64::from(r.protocol == 17);
            }
            Ok(_) => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(c)
}
