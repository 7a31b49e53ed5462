//! A captured packet: the one shape shared by the wire, the log and export.

use std::fmt;

/// Where in the stack a packet was captured (the kernel's `NF_INET_*`
/// number, as `enum imp2_hook` in `kmod/imp2_uapi.h`).
///
/// Kept as the raw byte so that a value this version does not know survives
/// a round trip through the log unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hook(pub u8);

impl Hook {
    /// `NF_INET_PRE_ROUTING`: a received packet, before routing.
    pub const PRE_ROUTING: Hook = Hook(0);
    /// `NF_INET_LOCAL_IN`: a received packet for this host (NFLOG rules).
    pub const LOCAL_IN: Hook = Hook(1);
    /// `NF_INET_FORWARD`: a packet being routed through (NFLOG rules).
    pub const FORWARD: Hook = Hook(2);
    /// `NF_INET_LOCAL_OUT`: a locally generated packet, on its way out.
    pub const LOCAL_OUT: Hook = Hook(3);
    /// `NF_INET_POST_ROUTING`: a packet about to leave (NFLOG rules).
    pub const POST_ROUTING: Hook = Hook(4);

    /// Short name used by the CLI and reports (`pre`, `out`).
    pub fn name(self) -> &'static str {
        match self {
            Hook::PRE_ROUTING => "pre",
            Hook::LOCAL_IN => "in",
            Hook::FORWARD => "forward",
            Hook::LOCAL_OUT => "out",
            Hook::POST_ROUTING => "post",
            _ => "unknown",
        }
    }

    /// Whether the packet was coming in (`Some(true)`), going out
    /// (`Some(false)`) or this version cannot tell (`None`). The ifindex a
    /// record carries is the input device for the first three hooks and the
    /// output device for the last two, so a forwarded packet counts as
    /// inbound on its input device.
    pub fn inbound(self) -> Option<bool> {
        match self {
            Hook::PRE_ROUTING | Hook::LOCAL_IN | Hook::FORWARD => Some(true),
            Hook::LOCAL_OUT | Hook::POST_ROUTING => Some(false),
            _ => None,
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "unknown" => write!(f, "hook{}", self.0),
            name => f.write_str(name),
        }
    }
}

/// Address family of the captured packet (`AF_INET`/`AF_INET6` numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family(pub u8);

impl Family {
    /// `AF_INET`
    pub const IPV4: Family = Family(2);
    /// `AF_INET6`
    pub const IPV6: Family = Family(10);

    /// `ipv4`, `ipv6` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            Family::IPV4 => "ipv4",
            Family::IPV6 => "ipv6",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "unknown" => write!(f, "family{}", self.0),
            name => f.write_str(name),
        }
    }
}

/// Transport protocol value meaning "the capturer did not determine it"
/// (`IMP2_PROTO_UNKNOWN`).
pub const PROTO_UNKNOWN: u8 = 255;

/// One captured packet, borrowed from a received batch or a mapped log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord<'a> {
    /// Capture time, CLOCK_REALTIME nanoseconds since the Unix epoch.
    pub tstamp_ns: u64,
    /// Input device (pre-routing) or output device (local-out).
    pub ifindex: u32,
    /// Packet length from the network header on, before any snaplen cut.
    pub orig_len: u32,
    /// Capture point.
    pub hook: Hook,
    /// Address family.
    pub family: Family,
    /// Transport protocol (`IPPROTO_*`), or [`PROTO_UNKNOWN`].
    pub protocol: u8,
    /// Captured bytes from the network header on; never longer than
    /// `orig_len`.
    pub data: &'a [u8],
}

/// Human name of an IP protocol number for reports.
pub fn protocol_name(protocol: u8) -> &'static str {
    match protocol {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        50 => "esp",
        58 => "icmpv6",
        132 => "sctp",
        PROTO_UNKNOWN => "unknown",
        _ => "other",
    }
}
