//! Walking the packets of a pcap or pcapng file (`pcap-file`'s readers),
//! for benchmarks that count what a capturer wrote.

use std::io::BufReader;
use std::path::Path;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// Is this error the end of a file cut short (a capturer stopped in the
/// middle of a record)? What came before it counts.
fn cut_short(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
}

/// Calls `f(linktype, captured bytes)` for every packet of a pcap or
/// pcapng file (pcapng: enhanced, simple and obsolete packet blocks, with
/// the link type of their interface, `u32::MAX` for an unknown one). A
/// record cut short at the end of the file ends the walk without error.
pub fn for_each_packet(path: &Path, mut f: impl FnMut(u32, &[u8])) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let open = || {
        std::fs::File::open(path)
            .map(|file| BufReader::with_capacity(1 << 20, file))
            .map_err(|e| err(&e))
    };
    let mut head = [0u8; 4];
    std::io::Read::read_exact(&mut open()?, &mut head).map_err(|e| err(&e))?;
    if head == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = PcapNgReader::new(open()?).map_err(|e| err(&format!("pcapng: {e}")))?;
        while let Some(block) = r.next_block() {
            let (block, state) = match block {
                Ok(b) => b,
                Err(pcap_file::pcapng::PcapNgReadError::Io(e)) if cut_short(&e) => break,
                Err(e) => return Err(err(&format!("pcapng: {e}"))),
            };
            let linktype = |iface: u32| {
                state
                    .interfaces()
                    .get(iface as usize)
                    .map_or(u32::MAX, |i| u32::from(i.linktype))
            };
            match block {
                Block::EnhancedPacket(p) => f(linktype(p.interface_id), &p.data),
                Block::Packet(p) => f(linktype(u32::from(p.interface_id)), &p.data),
                Block::SimplePacket(p) => f(linktype(0), &p.data),
                _ => {}
            }
        }
        return Ok(());
    }
    let mut r = match PcapReader::new(open()?) {
        Ok(r) => r,
        Err(pcap_file::pcap::PcapReadError::Io(e)) => {
            return Err(err(&format!("pcap header: {e}")));
        }
        Err(_) => return Err(err(&"neither pcap nor pcapng")),
    };
    let linktype = u32::from(r.header().datalink);
    while let Some(packet) = r.next_raw_packet() {
        match packet {
            Ok(p) => f(linktype, &p.data),
            Err(pcap_file::pcap::PcapReadError::Io(e)) if cut_short(&e) => break,
            Err(e) => return Err(err(&e)),
        }
    }
    Ok(())
}
