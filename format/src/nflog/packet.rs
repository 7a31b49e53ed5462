//! `NFULNL_MSG_PACKET` messages: the typed view of one ([`PacketMessage`]),
//! its full parse, what a recorder keeps of it, and building messages and
//! the `NLMSG_DONE` that ends a buffer as the kernel does.

use super::attrs::{NfGenMsg, nfgen_and_attrs, put_attr};
use super::consts::*;
use super::error::{MalformedNflog, MalformedNflogReason};
use crate::ip::{ip_orig_len, ip_protocol};
use crate::record::{Family, Hook, PacketRecord};
use crate::wire::NlHeader;
use crate::wire::abi::{NLMSG_DONE, NLMSG_HDRLEN};

/// `struct nfulnl_msg_packet_timestamp`: the packet's `skb->tstamp`, or the
/// time it was logged, in microseconds (`CLOCK_REALTIME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub sec: u64,
    /// Microseconds within the second.
    pub usec: u64,
}

impl Timestamp {
    /// Nanoseconds since the Unix epoch (saturating on absurd values).
    pub fn as_ns(self) -> u64 {
        self.sec
            .saturating_mul(1_000_000_000)
            .saturating_add(self.usec.saturating_mul(1000))
    }
}

/// A typed view of one `NFULNL_MSG_PACKET` message: every attribute imp2
/// knows, `None` when absent. Unknown attributes (conntrack, VLAN, L2
/// header, future ones) are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PacketMessage<'a> {
    /// `nfgenmsg.nfgen_family`: the protocol family the rule ran in.
    pub family: u8,
    /// `nfgenmsg.res_id`: the NFLOG group.
    pub group: u16,
    /// `NFULA_PACKET_HDR.hw_protocol`: the ethertype (`skb->protocol`).
    pub hw_protocol: u16,
    /// `NFULA_PACKET_HDR.hook`: the `NF_INET_*` hook.
    pub hook: u8,
    /// `NFULA_PREFIX`: the rule's prefix with its NUL.
    pub prefix: Option<&'a [u8]>,
    /// `NFULA_IFINDEX_INDEV`
    pub indev: Option<u32>,
    /// `NFULA_IFINDEX_OUTDEV`
    pub outdev: Option<u32>,
    /// `NFULA_IFINDEX_PHYSINDEV`
    pub physindev: Option<u32>,
    /// `NFULA_IFINDEX_PHYSOUTDEV`
    pub physoutdev: Option<u32>,
    /// `NFULA_MARK`
    pub mark: Option<u32>,
    /// `NFULA_HWADDR`: `struct nfulnl_msg_packet_hw`, raw (12 bytes).
    pub hwaddr: Option<&'a [u8]>,
    /// `NFULA_HWTYPE`: `dev->type` (`ARPHRD_*`).
    pub hwtype: Option<u16>,
    /// `NFULA_HWLEN`: `dev->hard_header_len`.
    pub hwlen: Option<u16>,
    /// `NFULA_HWHEADER`: the MAC header.
    pub hwheader: Option<&'a [u8]>,
    /// `NFULA_TIMESTAMP`
    pub timestamp: Option<Timestamp>,
    /// `NFULA_UID`
    pub uid: Option<u32>,
    /// `NFULA_GID`
    pub gid: Option<u32>,
    /// `NFULA_SEQ`: per-instance sequence number, from 0 at BIND.
    pub seq: Option<u32>,
    /// `NFULA_SEQ_GLOBAL`: per-namespace sequence number.
    pub seq_global: Option<u32>,
    /// `NFULA_PAYLOAD`: the packet from the network header on, cut to the
    /// copy range (absent in `COPY_META` mode).
    pub payload: Option<&'a [u8]>,
}

/// What a recorder keeps of one packet message: what loss accounting
/// needs (group, sequence number) and the log record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedPacket<'a> {
    /// `nfgenmsg.res_id`: the NFLOG group.
    pub group: u16,
    /// `NFULA_SEQ`: per-instance sequence number.
    pub seq: Option<u32>,
    /// Whether the kernel stamped the packet (`NFULA_TIMESTAMP`). When it
    /// did not (send hooks), `record.tstamp_ns` is 0: the receiver supplies
    /// the time.
    pub has_timestamp: bool,
    /// The record, or the family when it is not IPv4/IPv6.
    pub record: Result<PacketRecord<'a>, NotIp>,
}

/// A packet of a family other than IPv4/IPv6 (ARP, bridge, netdev rules):
/// not something the log can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotIp {
    /// `nfgen_family` of the message.
    pub family: u8,
}

impl<'a> PacketMessage<'a> {
    /// Parses the payload of a packet message (the bytes after its netlink
    /// header), which starts at byte `base` of the buffer being parsed.
    #[inline(always)]
    pub fn parse(payload: &'a [u8], base: usize) -> Result<PacketMessage<'a>, MalformedNflog> {
        let (nfgen, attrs) = nfgen_and_attrs(payload, base)?;
        let mut m = PacketMessage {
            family: nfgen.family,
            group: nfgen.group,
            ..Default::default()
        };
        let mut has_header = false;
        for attr in attrs {
            let attr = attr?;
            match attr.kind {
                NFULA_PACKET_HDR => {
                    let [p0, p1, hook, _pad] = attr.fixed::<4>()?;
                    m.hw_protocol = u16::from_be_bytes([p0, p1]);
                    m.hook = hook;
                    has_header = true;
                }
                NFULA_PAYLOAD => m.payload = Some(attr.value),
                NFULA_TIMESTAMP => {
                    let t = attr.fixed::<16>()?;
                    let (sec, usec) = t.split_at(8);
                    m.timestamp = Some(Timestamp {
                        sec: u64::from_be_bytes(sec.try_into().unwrap_or_default()),
                        usec: u64::from_be_bytes(usec.try_into().unwrap_or_default()),
                    });
                }
                NFULA_IFINDEX_INDEV => m.indev = Some(attr.be32()?),
                NFULA_IFINDEX_OUTDEV => m.outdev = Some(attr.be32()?),
                NFULA_SEQ => m.seq = Some(attr.be32()?),
                NFULA_SEQ_GLOBAL => m.seq_global = Some(attr.be32()?),
                NFULA_PREFIX => m.prefix = Some(attr.value),
                NFULA_UID => m.uid = Some(attr.be32()?),
                NFULA_GID => m.gid = Some(attr.be32()?),
                NFULA_MARK => m.mark = Some(attr.be32()?),
                NFULA_IFINDEX_PHYSINDEV => m.physindev = Some(attr.be32()?),
                NFULA_IFINDEX_PHYSOUTDEV => m.physoutdev = Some(attr.be32()?),
                NFULA_HWADDR => {
                    attr.fixed::<12>()?;
                    m.hwaddr = Some(attr.value);
                }
                NFULA_HWTYPE => m.hwtype = Some(attr.be16()?),
                NFULA_HWLEN => m.hwlen = Some(attr.be16()?),
                NFULA_HWHEADER => m.hwheader = Some(attr.value),
                _ => {}
            }
        }
        if !has_header {
            return Err(MalformedNflog {
                offset: base,
                reason: MalformedNflogReason::MissingPacketHeader,
            });
        }
        Ok(m)
    }

    /// The interface the packet was seen on: the input device on the
    /// receive hooks (pre-routing, local-in, forward), the output device on
    /// the send hooks; the other one if that is missing, else 0.
    pub fn ifindex(&self) -> u32 {
        let (first, second) = if self.hook <= NF_INET_FORWARD {
            (self.indev, self.outdev)
        } else {
            (self.outdev, self.indev)
        };
        first.or(second).unwrap_or(0)
    }

    /// The log record for this packet. `receive_ns` is used as the capture
    /// time when the kernel sent no timestamp (send hooks; `CLOCK_REALTIME`
    /// ns when the datagram was received). Packets of families other than
    /// IPv4 and IPv6 are refused.
    #[inline(always)]
    pub fn to_record(&self, receive_ns: u64) -> Result<PacketRecord<'a>, NotIp> {
        let family = match self.family {
            AF_INET => Family::IPV4,
            AF_INET6 => Family::IPV6,
            family => return Err(NotIp { family }),
        };
        let data = self.payload.unwrap_or(&[]);
        Ok(PacketRecord {
            tstamp_ns: self.timestamp.map_or(receive_ns, Timestamp::as_ns),
            ifindex: self.ifindex(),
            orig_len: ip_orig_len(family, data),
            hook: Hook(self.hook),
            family,
            protocol: ip_protocol(family, data),
            data,
        })
    }

    /// What a recorder keeps of this message: group, sequence number and
    /// log record ([`PacketMessage::to_record`] with a receive time of 0).
    #[inline(always)]
    pub fn logged(&self) -> LoggedPacket<'a> {
        LoggedPacket {
            group: self.group,
            seq: self.seq,
            has_timestamp: self.timestamp.is_some(),
            record: self.to_record(0),
        }
    }

    /// Appends this message as the kernel's `__build_packet_message` builds
    /// it (same attribute order, zeroed padding, `nlmsg_len` including the
    /// last attribute's padding), with `pid` 0 and no flags.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + NLMSG_HDRLEN, 0);
        let nfgen = NfGenMsg {
            family: self.family,
            version: NFNETLINK_V0,
            group: self.group,
        };
        out.extend_from_slice(&nfgen.to_bytes());
        let p = self.hw_protocol.to_be_bytes();
        put_attr(out, NFULA_PACKET_HDR, &[p[0], p[1], self.hook, 0]);
        let be32 = |out: &mut Vec<u8>, kind, v: Option<u32>| {
            if let Some(v) = v {
                put_attr(out, kind, &v.to_be_bytes());
            }
        };
        let raw = |out: &mut Vec<u8>, kind, v: Option<&[u8]>| {
            if let Some(v) = v {
                put_attr(out, kind, v);
            }
        };
        raw(out, NFULA_PREFIX, self.prefix);
        be32(out, NFULA_IFINDEX_INDEV, self.indev);
        be32(out, NFULA_IFINDEX_PHYSINDEV, self.physindev);
        be32(out, NFULA_IFINDEX_OUTDEV, self.outdev);
        be32(out, NFULA_IFINDEX_PHYSOUTDEV, self.physoutdev);
        be32(out, NFULA_MARK, self.mark);
        raw(out, NFULA_HWADDR, self.hwaddr);
        if let Some(t) = self.hwtype {
            put_attr(out, NFULA_HWTYPE, &t.to_be_bytes());
        }
        if let Some(l) = self.hwlen {
            put_attr(out, NFULA_HWLEN, &l.to_be_bytes());
        }
        raw(out, NFULA_HWHEADER, self.hwheader);
        if let Some(t) = self.timestamp {
            let mut ts = [0u8; 16];
            ts[..8].copy_from_slice(&t.sec.to_be_bytes());
            ts[8..].copy_from_slice(&t.usec.to_be_bytes());
            put_attr(out, NFULA_TIMESTAMP, &ts);
        }
        be32(out, NFULA_UID, self.uid);
        be32(out, NFULA_GID, self.gid);
        be32(out, NFULA_SEQ, self.seq);
        be32(out, NFULA_SEQ_GLOBAL, self.seq_global);
        raw(out, NFULA_PAYLOAD, self.payload);
        let len = out.len() - start;
        NlHeader {
            len: len as u32,
            msg_type: MSG_PACKET,
            flags: 0,
            seq: 0,
            pid: 0,
        }
        .write(&mut out[start..]);
    }
}

/// Appends the `NLMSG_DONE` that ends a buffer of more than one message, as
/// `__nfulnl_send` builds it (family `AF_UNSPEC`, the group as `res_id`).
pub fn emit_done(group: u16, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + NLMSG_HDRLEN, 0);
    let nfgen = NfGenMsg {
        family: AF_UNSPEC,
        version: NFNETLINK_V0,
        group,
    };
    out.extend_from_slice(&nfgen.to_bytes());
    let len = NLMSG_HDRLEN + NFGENMSG_LEN;
    NlHeader {
        len: len as u32,
        msg_type: NLMSG_DONE,
        flags: 0,
        seq: 0,
        pid: 0,
    }
    .write(&mut out[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifindex_follows_the_hook() {
        let m = PacketMessage {
            indev: Some(2),
            outdev: Some(3),
            ..Default::default()
        };
        for (hook, want) in [(0, 2), (1, 2), (2, 2), (3, 3), (4, 3), (9, 3)] {
            assert_eq!(PacketMessage { hook, ..m }.ifindex(), want, "hook {hook}");
        }
        assert_eq!(
            PacketMessage {
                hook: 0,
                indev: None,
                ..m
            }
            .ifindex(),
            3
        );
        assert_eq!(
            PacketMessage {
                hook: 3,
                indev: None,
                outdev: None,
                ..m
            }
            .ifindex(),
            0
        );
    }
}
