//! The link-layer header in front of each exported packet.
//!
//! A record holds the packet from its network header on. `LINKTYPE_RAW`
//! stores that as it is; `LINKTYPE_LINUX_SLL2` (the default) puts the
//! 20-byte Linux "cooked" v2 header in front of it, which carries what a
//! raw IP packet cannot: the ifindex and the direction. It also exists
//! because of a reader bug: Debian 12's libpcap 1.10.3 maps the first
//! IDB's `LINKTYPE_RAW` (101) to `DLT_RAW` (12), then compares each later
//! IDB's unmapped 101 with it and stops (`an interface has a type 101
//! different from the type of the first interface`), so tcpdump cannot
//! read a RAW pcapng with more than one interface, which every real
//! capture has. 276 maps to itself and reads with any number of IDBs.

use std::fmt;
use std::str::FromStr;

use pcap_file::DataLink;

use crate::ip::ip_family;
use crate::record::{Family, PacketRecord};

/// `LINKTYPE_RAW`: raw IPv4 or IPv6, no link-layer header.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_LINUX_SLL2`: Linux cooked capture v2, a 20-byte header.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;
/// Bytes of an SLL2 header.
pub const SLL2_HEADER_LEN: usize = 20;

/// SLL2 protocol type of an IPv4 packet (its EtherType).
const ETHERTYPE_IPV4: u16 = 0x0800;
/// SLL2 protocol type of an IPv6 packet.
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// `ARPHRD_NONE`: no link-layer header, what a tun device reports. tshark
/// and tcpdump dissect the IP layer after it by the protocol type (the
/// readers test checks both).
const ARPHRD_NONE: u16 = 0xFFFE;
/// `PACKET_HOST`: addressed to this host; also written when the hook does
/// not tell the direction.
const PACKET_HOST: u8 = 0;
/// `PACKET_OUTGOING`: sent by this host.
const PACKET_OUTGOING: u8 = 4;

/// Link-layer header type of the exported packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_LINUX_SLL2` (276): a 20-byte header with protocol,
    /// ifindex and direction before each packet. Read by tcpdump (libpcap
    /// 1.10.3 and later) with several interfaces, by tshark and Wireshark.
    #[default]
    Sll2,
    /// `LINKTYPE_RAW` (101): the packet alone, 20 bytes less per packet.
    /// Debian 12's libpcap 1.10.3 reads such a pcapng only when it has a
    /// single interface; tshark reads it always.
    Raw,
}

impl LinkType {
    /// The `LINKTYPE_*` number.
    pub fn number(self) -> u32 {
        match self {
            LinkType::Sll2 => LINKTYPE_LINUX_SLL2,
            LinkType::Raw => LINKTYPE_RAW,
        }
    }

    /// `sll2` or `raw`.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::Sll2 => "sll2",
            LinkType::Raw => "raw",
        }
    }

    /// Bytes this link type adds in front of each packet.
    pub fn header_len(self) -> usize {
        match self {
            LinkType::Sll2 => SLL2_HEADER_LEN,
            LinkType::Raw => 0,
        }
    }

    /// `pcap-file`'s name for it.
    pub(super) fn data_link(self) -> DataLink {
        match self {
            LinkType::Sll2 => DataLink::LINUX_SLL2,
            LinkType::Raw => DataLink::RAW,
        }
    }

    /// A snap length of the log (IP bytes) as a snap length of the output:
    /// the header is captured too. 0 ("no limit" in pcapng) stays 0.
    pub(super) fn snaplen(self, log_snaplen: u32) -> u32 {
        if log_snaplen == 0 {
            return 0;
        }
        log_snaplen.saturating_add(self.header_len() as u32)
    }

    /// The link-layer header of `record`, written into `scratch` (which it
    /// borrows from, so that the per-packet path allocates nothing); empty
    /// for [`LinkType::Raw`].
    #[inline]
    pub(super) fn header<'s>(
        self,
        record: &PacketRecord<'_>,
        scratch: &'s mut [u8; SLL2_HEADER_LEN],
    ) -> &'s [u8] {
        match self {
            LinkType::Sll2 => {
                *scratch = sll2_header(record);
                scratch
            }
            LinkType::Raw => &[],
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LinkType {
    type Err = String;

    fn from_str(s: &str) -> Result<LinkType, String> {
        if s.eq_ignore_ascii_case("sll2") {
            Ok(LinkType::Sll2)
        } else if s.eq_ignore_ascii_case("raw") {
            Ok(LinkType::Raw)
        } else {
            Err(format!("unknown link type `{s}` (expected sll2 or raw)"))
        }
    }
}

/// The SLL2 header of `record`, all fields big-endian: protocol type,
/// reserved 0, interface index, `ARPHRD_NONE`, packet type (from the hook:
/// `PACKET_HOST` inbound, `PACKET_OUTGOING` outbound, `PACKET_HOST` when
/// the hook does not tell), link-layer address length 0 and 8 bytes of
/// address 0.
#[inline]
pub fn sll2_header(record: &PacketRecord<'_>) -> [u8; SLL2_HEADER_LEN] {
    let mut h = [0u8; SLL2_HEADER_LEN];
    h[0..2].copy_from_slice(&ethertype(record).to_be_bytes());
    h[4..8].copy_from_slice(&record.ifindex.to_be_bytes());
    h[8..10].copy_from_slice(&ARPHRD_NONE.to_be_bytes());
    h[10] = match record.hook.inbound() {
        Some(false) => PACKET_OUTGOING,
        Some(true) | None => PACKET_HOST,
    };
    h
}

/// The protocol type of a record: by its family, else by the IP version in
/// the data's first nibble, else 0 (a reader shows the bytes undissected).
fn ethertype(record: &PacketRecord<'_>) -> u16 {
    match record.family {
        Family::IPV4 => ETHERTYPE_IPV4,
        Family::IPV6 => ETHERTYPE_IPV6,
        _ => match ip_family(record.data) {
            Some(Family::IPV4) => ETHERTYPE_IPV4,
            Some(Family::IPV6) => ETHERTYPE_IPV6,
            _ => 0,
        },
    }
}
