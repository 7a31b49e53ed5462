//! Deterministic synthetic packets for the load generator, tests and
//! benches.
//!
//! [`PacketSynth`] turns a seed into an endless stream of plausible IPv4 and
//! IPv6 packets carrying UDP, TCP or ICMP/ICMPv6: version, header length,
//! total/payload length, protocol/next header and TTL/hop limit are right,
//! the IPv4 header checksum and the transport checksums (pseudo-header
//! included) are correct, and every address comes from the documentation
//! ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).
//! The same seed and options always give the same packets, byte for byte.
//!
//! It is built for speed (the load generator makes tens of millions of
//! packets per second): nothing is allocated per packet, the payload is a
//! slice of a seeded pattern copied in one go, and the transport checksum
//! over the payload comes from prefix sums of that pattern in O(1), so even
//! a packet cut short by a snaplen carries the checksum of its whole
//! payload without the rest being written.
//!
//! Packets come in flows (up to [`SynthOptions::flow_len`] packets share
//! family, transport, hook, interface, addresses and ports), which is both
//! realistic and cheap: branches on the packet kind stay predictable.
//!
//! Usage: [`PacketSynth::next_packet`] draws what the next packet is (its
//! length, family, protocol, hook and interface) without writing anything,
//! so a caller can filter first; [`PacketSynth::write`] then writes its
//! first bytes into a caller buffer. [`PacketSynth::next`] does both, and
//! [`PacketSynth::next_record`] also makes the [`PacketRecord`].

use imp2_format::{Family, Hook, PacketRecord};

/// The splitmix64 generator: tiny, fast and good enough for test traffic.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-high (negligible bias).
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Transport header a synthetic packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (17).
    Udp,
    /// TCP (6), a 20-byte header without options.
    Tcp,
    /// ICMP echo (1) over IPv4, ICMPv6 echo (58) over IPv6.
    Icmp,
}

impl Transport {
    /// All three, in a fixed order.
    pub const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Icmp];

    /// The `IPPROTO_*` number of this transport over `family`.
    pub fn protocol(self, family: Family) -> u8 {
        match (self, family == Family::IPV6) {
            (Transport::Udp, _) => 17,
            (Transport::Tcp, _) => 6,
            (Transport::Icmp, false) => 1,
            (Transport::Icmp, true) => 58,
        }
    }

    /// Length of the transport header in bytes.
    pub fn header_len(self) -> usize {
        match self {
            Transport::Tcp => 20,
            Transport::Udp | Transport::Icmp => 8,
        }
    }

    /// Parses `udp`, `tcp` or `icmp` (`icmpv6` too).
    pub fn from_name(name: &str) -> Option<Transport> {
        match name.to_ascii_lowercase().as_str() {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "icmp" | "icmpv6" | "icmp6" => Some(Transport::Icmp),
            _ => None,
        }
    }
}

/// What to synthesize. Each packet picks one entry of every list, uniformly
/// at random (seeded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthOptions {
    /// Total packet lengths in bytes, from the network header on,
    /// 1..=65535. A length below the headers of the chosen family and
    /// transport gives a packet of just those headers (at most 60 bytes).
    pub sizes: Vec<usize>,
    /// [`Family::IPV4`] and/or [`Family::IPV6`].
    pub families: Vec<Family>,
    /// Transports to mix.
    pub transports: Vec<Transport>,
    /// Capture points to attribute packets to.
    pub hooks: Vec<Hook>,
    /// Interface indexes to attribute packets to.
    pub ifindexes: Vec<u32>,
    /// Longest flow, in packets (at least 1). Packets come in flows: a
    /// flow fixes family, transport, hook, interface, addresses and ports
    /// for 1..=`flow_len` consecutive packets (uniformly); each packet has
    /// its own size, IP id/sequence numbers and payload. 1 makes every
    /// packet independent.
    pub flow_len: usize,
}

impl Default for SynthOptions {
    /// 64-byte packets, both families, all transports, both hooks,
    /// interface 1, flows of up to 32 packets.
    fn default() -> SynthOptions {
        SynthOptions {
            sizes: vec![64],
            families: vec![Family::IPV4, Family::IPV6],
            transports: Transport::ALL.to_vec(),
            hooks: vec![Hook::PRE_ROUTING, Hook::LOCAL_OUT],
            ifindexes: vec![1],
            flow_len: 32,
        }
    }
}

/// Why [`SynthOptions`] were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SynthError {
    /// A list that must not be empty is (its name).
    Empty(&'static str),
    /// A size outside 1..=65535.
    Size(usize),
    /// A family other than IPv4 or IPv6.
    Family(Family),
}

impl std::fmt::Display for SynthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SynthError::Empty(name) => write!(f, "no {name} to choose from"),
            SynthError::Size(size) => write!(f, "packet size {size} is not in 1..={MAX_LEN}"),
            SynthError::Family(family) => write!(f, "cannot synthesize {family} packets"),
        }
    }
}

impl std::error::Error for SynthError {}

/// Largest packet: the IPv4 total length field is 16 bits.
pub const MAX_LEN: usize = 65535;

/// Longest header stack: IPv6 (40) + TCP (20).
pub const MAX_HEADER_LEN: usize = 60;

/// Payloads start at an even offset below this in the pattern (small, so
/// that the prefix sums read per packet stay in L1).
const PATTERN_WINDOW: usize = 2048;
const PATTERN_LEN: usize = PATTERN_WINDOW + MAX_LEN + 1;

/// One packet drawn by [`PacketSynth::next_packet`]: what it is, and the
/// random bits its header fields and payload come from (its flow's and its
/// own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthPacket {
    /// Total length in bytes, from the network header on (the record's
    /// `orig_len`).
    pub len: usize,
    /// Address family.
    pub family: Family,
    /// `IPPROTO_*` number of the transport.
    pub protocol: u8,
    /// Capture point attributed to the packet.
    pub hook: Hook,
    /// Interface attributed to the packet.
    pub ifindex: u32,
    /// Transport header kind.
    pub transport: Transport,
    flow: [u64; 2],
    bits: u64,
    index: u32,
}

impl SynthPacket {
    /// Length of the network and transport headers.
    pub fn header_len(&self) -> usize {
        ip_header_len(self.family) + self.transport.header_len()
    }

    /// The record of this packet captured at `tstamp_ns`, with `data` the
    /// captured bytes (its first `min(len, snaplen)` bytes as written by
    /// [`PacketSynth::write`]).
    pub fn record<'a>(&self, tstamp_ns: u64, data: &'a [u8]) -> PacketRecord<'a> {
        debug_assert!(data.len() <= self.len);
        PacketRecord {
            tstamp_ns,
            ifindex: self.ifindex,
            orig_len: self.len as u32,
            hook: self.hook,
            family: self.family,
            protocol: self.protocol,
            data,
        }
    }

    fn payload_offset(&self) -> usize {
        ((self.bits >> 54) as usize) << 1
    }
}

fn ip_header_len(family: Family) -> usize {
    if family == Family::IPV6 { 40 } else { 20 }
}

/// The packet generator; see the module documentation.
#[derive(Clone)]
pub struct PacketSynth {
    rng: SplitMix64,
    flow_len: usize,
    /// The current flow: packets left, and what they share.
    flow_left: usize,
    flow: SynthPacket,
    sizes: Box<[usize]>,
    families: Box<[Family]>,
    transports: Box<[Transport]>,
    hooks: Box<[Hook]>,
    ifindexes: Box<[u32]>,
    /// Seeded payload bytes.
    pattern: Box<[u8]>,
    /// `prefix[k]`: sum of the first `k` big-endian 16-bit words of
    /// `pattern`, modulo 0xffff (one's complement arithmetic).
    prefix: Box<[u32]>,
}

impl std::fmt::Debug for PacketSynth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketSynth")
            .field("sizes", &self.sizes)
            .field("families", &self.families)
            .field("transports", &self.transports)
            .field("hooks", &self.hooks)
            .field("ifindexes", &self.ifindexes)
            .field("flow_len", &self.flow_len)
            .finish_non_exhaustive()
    }
}

/// Picks one element: no random draw when there is only one.
#[inline]
fn pick<T: Copy>(rng: &mut SplitMix64, items: &[T]) -> T {
    if items.len() == 1 {
        items[0]
    } else {
        items[rng.below(items.len())]
    }
}

impl PacketSynth {
    /// A generator for `options`, seeded with `seed`.
    pub fn new(seed: u64, options: SynthOptions) -> Result<PacketSynth, SynthError> {
        let SynthOptions {
            sizes,
            families,
            transports,
            hooks,
            ifindexes,
            flow_len,
        } = options;
        let nonempty = |len: usize, name| {
            if len == 0 {
                Err(SynthError::Empty(name))
            } else {
                Ok(())
            }
        };
        nonempty(sizes.len(), "sizes")?;
        nonempty(families.len(), "families")?;
        nonempty(transports.len(), "transports")?;
        nonempty(hooks.len(), "hooks")?;
        nonempty(ifindexes.len(), "interfaces")?;
        if let Some(&bad) = sizes.iter().find(|&&s| s == 0 || s > MAX_LEN) {
            return Err(SynthError::Size(bad));
        }
        if let Some(&bad) = families
            .iter()
            .find(|&&f| f != Family::IPV4 && f != Family::IPV6)
        {
            return Err(SynthError::Family(bad));
        }
        // The pattern has its own stream so that the packet stream does not
        // depend on the pattern's length.
        let mut prng = SplitMix64::new(seed ^ 0x5eed_0f1e_a75a_17ed);
        let mut pattern = vec![0u8; PATTERN_LEN].into_boxed_slice();
        for chunk in pattern.chunks_mut(8) {
            let bytes = prng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let mut prefix = Vec::with_capacity(PATTERN_LEN / 2 + 1);
        let mut sum = 0u32;
        prefix.push(0);
        for word in pattern.chunks_exact(2) {
            sum = (sum + u32::from(u16::from_be_bytes([word[0], word[1]]))) % 0xffff;
            prefix.push(sum);
        }
        Ok(PacketSynth {
            rng: SplitMix64::new(seed),
            flow_len: flow_len.max(1),
            flow_left: 0,
            flow: SynthPacket {
                len: 0,
                family: families[0],
                protocol: 0,
                hook: hooks[0],
                ifindex: ifindexes[0],
                transport: transports[0],
                flow: [0; 2],
                bits: 0,
                index: 0,
            },
            sizes: sizes.into(),
            families: families.into(),
            transports: transports.into(),
            hooks: hooks.into(),
            ifindexes: ifindexes.into(),
            pattern,
            prefix: prefix.into(),
        })
    }

    /// Largest packet this generator makes.
    pub fn max_len(&self) -> usize {
        let largest = self.sizes.iter().copied().max().unwrap_or(0);
        largest.max(MAX_HEADER_LEN)
    }

    /// Starts a new flow.
    fn new_flow(&mut self) {
        // One draw picks family, transport, hook and length (16 bits each).
        let r0 = self.rng.next_u64();
        let family = pick16(&self.families, r0);
        let transport = pick16(&self.transports, r0 >> 16);
        self.flow = SynthPacket {
            len: 0,
            family,
            protocol: transport.protocol(family),
            hook: pick16(&self.hooks, r0 >> 32),
            ifindex: pick(&mut self.rng, &self.ifindexes),
            transport,
            flow: [self.rng.next_u64(), self.rng.next_u64()],
            bits: 0,
            index: 0,
        };
        self.flow_left = 1 + ((usize::from((r0 >> 48) as u16) * self.flow_len) >> 16);
    }

    /// Draws the next packet without writing it.
    #[inline]
    pub fn next_packet(&mut self) -> SynthPacket {
        if self.flow_left == 0 {
            self.new_flow();
        }
        self.flow_left -= 1;
        let bits = self.rng.next_u64();
        let size = pick16(&self.sizes, bits);
        let headers = self.flow.header_len();
        let packet = SynthPacket {
            len: size.max(headers),
            bits,
            ..self.flow
        };
        self.flow.index = self.flow.index.wrapping_add(1);
        packet
    }

    /// Writes the first `min(buf.len(), packet.len)` bytes of `packet` into
    /// `buf` and returns that count. The bytes depend only on the seed and
    /// `packet`; checksums always cover the whole packet.
    #[inline]
    pub fn write(&self, packet: &SynthPacket, buf: &mut [u8]) -> usize {
        let n = buf.len().min(packet.len);
        let hlen = packet.header_len();
        if n >= hlen {
            self.headers(packet, &mut buf[..hlen]);
            let off = packet.payload_offset();
            buf[hlen..n].copy_from_slice(&self.pattern[off..off + (n - hlen)]);
        } else {
            let mut headers = [0u8; MAX_HEADER_LEN];
            self.headers(packet, &mut headers[..hlen]);
            buf[..n].copy_from_slice(&headers[..n]);
        }
        n
    }

    /// Draws the next packet and writes its first `min(buf.len(), len)`
    /// bytes into `buf` (the whole packet if `buf` holds
    /// [`PacketSynth::max_len`] bytes).
    #[inline]
    pub fn next(&mut self, buf: &mut [u8]) -> SynthPacket {
        let packet = self.next_packet();
        self.write(&packet, buf);
        packet
    }

    /// Draws the next packet and returns its record captured at `tstamp_ns`
    /// with `snaplen`: its data are the first `min(len, snaplen)` bytes,
    /// written into `buf` (which must hold them), `orig_len` is `len`.
    pub fn next_record<'a>(
        &mut self,
        buf: &'a mut [u8],
        snaplen: usize,
        tstamp_ns: u64,
    ) -> PacketRecord<'a> {
        let packet = self.next_packet();
        let n = packet.len.min(snaplen);
        assert!(buf.len() >= n, "buffer of {} < {n} bytes", buf.len());
        let n = self.write(&packet, &mut buf[..n]);
        packet.record(tstamp_ns, &buf[..n])
    }

    /// One's complement sum (mod 0xffff) of `len` payload bytes from the
    /// even pattern offset `off`, as 16-bit big-endian words, the last odd
    /// byte padded with zero.
    fn payload_sum(&self, off: usize, len: usize) -> u32 {
        debug_assert!(off % 2 == 0);
        let first = off / 2;
        let words = len / 2;
        let mut sum = self.prefix[first + words] + 0xffff - self.prefix[first];
        if len % 2 == 1 {
            sum += u32::from(self.pattern[off + len - 1]) << 8;
        }
        sum
    }

    /// Writes the network and transport headers of `p` into `h`, which
    /// is exactly [`SynthPacket::header_len`] bytes long. Every byte is
    /// written, and checksums are summed from the field values (reading
    /// the freshly written bytes back would stall on store forwarding).
    #[inline]
    fn headers(&self, p: &SynthPacket, h: &mut [u8]) {
        let [f0, f1] = p.flow;
        let k = p.index;
        let v6 = p.family == Family::IPV6;
        let ip_len = ip_header_len(p.family);
        let t_len = p.transport.header_len();
        let l4_len = (p.len - ip_len) as u32; // transport header + payload
        let proto = u32::from(p.protocol);
        let (ip, t) = h.split_at_mut(ip_len);
        // Sum of the pseudo-header (RFC 768/793/8200); ICMPv4 has none.
        let mut sum: u64;
        if v6 {
            let ip: &mut [u8; 40] = ip.try_into().expect("IPv6 header");
            // Version 6, traffic class 0, 20-bit flow label.
            let flow = (f1 as u32) & 0x000f_ffff;
            put32(ip, 0, (6 << 28) | flow);
            put32(ip, 4, l4_len << 16 | proto << 8 | 64); // hop limit 64
            // 2001:db8:0:<net>::<host> with a random 32-bit host part.
            let (src_host, dst_host) = (f0 as u32, (f0 >> 32) as u32);
            let (src_net, dst_net) = if p.hook == Hook::LOCAL_OUT {
                (1u64, 2u64)
            } else {
                (2, 1)
            };
            const DOC: u64 = 0x2001_0db8 << 32;
            put64(ip, 8, DOC | src_net);
            put64(ip, 16, u64::from(src_host));
            put64(ip, 24, DOC | dst_net);
            put64(ip, 32, u64::from(dst_host));
            sum = 2 * (0x2001 + 0x0db8)
                + src_net
                + dst_net
                + words32(src_host)
                + words32(dst_host)
                + u64::from(l4_len)
                + u64::from(proto);
        } else {
            let ip: &mut [u8; 20] = ip.try_into().expect("IPv4 header");
            const NETS: [u32; 3] = [0xc000_0200, 0xc633_6400, 0xcb00_7100];
            let host = |bits: u64| 1 + ((u32::from(bits as u8) * 254) >> 8);
            let src = NETS[(f0 as u16 as usize * 3) >> 16] | host(f0 >> 16);
            let dst = NETS[((f0 >> 24) as u16 as usize * 3) >> 16] | host(f0 >> 40);
            let id = u32::from(((f0 >> 48) as u16).wrapping_add(k as u16));
            let total = p.len as u32;
            // Version 4, IHL 5, TOS 0; id, DF; TTL 64, protocol.
            let header_sum = 0x4500
                + u64::from(total)
                + u64::from(id)
                + 0x4000
                + u64::from(64 << 8 | proto)
                + words32(src)
                + words32(dst);
            put32(ip, 0, 0x4500_0000 | total);
            put32(ip, 4, id << 16 | 0x4000);
            put32(ip, 8, 64 << 24 | proto << 16 | u32::from(fold(header_sum)));
            put32(ip, 12, src);
            put32(ip, 16, dst);
            sum = if p.transport == Transport::Icmp {
                0
            } else {
                words32(src) + words32(dst) + u64::from(l4_len) + u64::from(proto)
            };
        }
        const PORTS: [u32; 8] = [53, 80, 123, 443, 514, 4789, 5353, 8080];
        let ephemeral = 49152 + ((f1 >> 21) as u32 & 0x3fff);
        let service = PORTS[(f1 >> 35) as usize & 7];
        let ports = if (f1 >> 20) & 1 == 0 {
            ephemeral << 16 | service
        } else {
            service << 16 | ephemeral
        };
        // Word sum of the transport header with its checksum field at 0,
        // and where that field is.
        let check_at = match p.transport {
            Transport::Udp => {
                put32(t, 0, ports);
                put32(t, 4, l4_len << 16);
                sum += words32(ports) + u64::from(l4_len);
                6
            }
            Transport::Tcp => {
                // A sender of full segments: seq advances by 1448 a packet.
                let seq = ((f1 >> 32) as u32).wrapping_add(k.wrapping_mul(1448));
                let ack = f0.rotate_left(13) as u32;
                put32(t, 0, ports);
                put32(t, 4, seq);
                put32(t, 8, ack);
                // Data offset 5 words, PSH|ACK, window 64240.
                put32(t, 12, 0x5018 << 16 | 64240);
                put32(t, 16, 0); // checksum, urgent pointer
                sum += words32(ports) + words32(seq) + words32(ack) + 0x5018 + 64240;
                16
            }
            Transport::Icmp => {
                // Echo request or reply: 8/0 (ICMP), 128/129 (ICMPv6).
                let reply = (f1 >> 38) & 1 == 1;
                let icmp_type: u32 = match (v6, reply) {
                    (false, false) => 8,
                    (false, true) => 0,
                    (true, false) => 128,
                    (true, true) => 129,
                };
                let seq = ((f1 >> 56) as u32).wrapping_add(k) & 0xffff;
                let id_seq = ((f1 >> 40) as u32 & 0xffff) << 16 | seq;
                put32(t, 0, icmp_type << 24);
                put32(t, 4, id_seq);
                sum += u64::from(icmp_type << 8) + words32(id_seq);
                2
            }
        };
        sum += u64::from(self.payload_sum(p.payload_offset(), l4_len as usize - t_len));
        let mut check = fold(sum);
        if check == 0 && p.transport == Transport::Udp {
            check = 0xffff; // 0 means "no checksum" in UDP
        }
        t[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
    }
}

/// Picks an element with 16 random bits (the low 16 of `bits`).
#[inline]
fn pick16<T: Copy>(items: &[T], bits: u64) -> T {
    items[(usize::from(bits as u16) * items.len()) >> 16]
}

/// Writes `v` big-endian at `at`.
#[inline]
fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Writes `v` big-endian at `at`.
#[inline]
fn put64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Sum of the two 16-bit halves of `v`.
#[inline]
fn words32(v: u32) -> u64 {
    u64::from(v >> 16) + u64::from(v & 0xffff)
}

/// The Internet checksum of a word sum: folded with end-around carry,
/// complemented.
#[inline]
fn fold(sum: u64) -> u16 {
    // Branch-free end-around carry: four folds bring any u64 to 16 bits.
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward Internet checksum of `bytes`, odd byte padded.
    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum = 0u64;
        for w in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
        fold(sum)
    }

    /// Checks every header field of a whole packet; returns its protocol.
    fn check_packet(p: &SynthPacket, b: &[u8]) {
        assert_eq!(b.len(), p.len);
        let (l4, proto, pseudo) = match b[0] >> 4 {
            4 => {
                assert_eq!(p.family, Family::IPV4);
                assert_eq!(b[0], 0x45);
                assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len());
                assert_eq!(checksum(&b[..20]), 0, "IPv4 header checksum");
                assert_eq!(b[8], 64);
                assert!(
                    [[192, 0, 2], [198, 51, 100], [203, 0, 113]].contains(&[b[12], b[13], b[14]])
                );
                assert!(
                    [[192, 0, 2], [198, 51, 100], [203, 0, 113]].contains(&[b[16], b[17], b[18]])
                );
                let l4 = &b[20..];
                let mut pseudo = b[12..20].to_vec();
                pseudo.extend_from_slice(&[0, b[9]]);
                pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                (l4, b[9], pseudo)
            }
            6 => {
                assert_eq!(p.family, Family::IPV6);
                assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])) + 40, b.len());
                assert_eq!(&b[8..12], &[0x20, 0x01, 0x0d, 0xb8]);
                assert_eq!(&b[24..28], &[0x20, 0x01, 0x0d, 0xb8]);
                let l4 = &b[40..];
                let mut pseudo = b[8..40].to_vec();
                pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, b[6]]);
                (l4, b[6], pseudo)
            }
            v => panic!("IP version {v}"),
        };
        assert_eq!(proto, p.protocol);
        let mut whole = if proto == 1 { Vec::new() } else { pseudo };
        whole.extend_from_slice(l4);
        assert_eq!(checksum(&whole), 0, "transport checksum, protocol {proto}");
        match proto {
            17 => assert_eq!(usize::from(u16::from_be_bytes([l4[4], l4[5]])), l4.len()),
            6 => assert_eq!(l4[12] >> 4, 5),
            1 => assert!(l4[0] == 8 || l4[0] == 0),
            58 => assert!(l4[0] == 128 || l4[0] == 129),
            _ => panic!("protocol {proto}"),
        }
    }

    fn mixed() -> SynthOptions {
        SynthOptions {
            sizes: vec![1, 28, 41, 64, 65, 200, 1500, 9001, MAX_LEN],
            ifindexes: vec![1, 2, 7],
            ..SynthOptions::default()
        }
    }

    #[test]
    fn headers_and_checksums_are_valid() {
        let mut synth = PacketSynth::new(42, mixed()).unwrap();
        let mut buf = vec![0u8; synth.max_len()];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5000 {
            let p = synth.next(&mut buf);
            assert!(p.len >= p.header_len());
            check_packet(&p, &buf[..p.len]);
            seen.insert((p.family, p.protocol, p.hook, p.ifindex));
        }
        // 2 families x 3 transports x 2 hooks x 3 interfaces.
        assert_eq!(seen.len(), 36);
    }

    #[test]
    fn same_seed_same_bytes() {
        let run = |seed| {
            let mut synth = PacketSynth::new(seed, mixed()).unwrap();
            let mut buf = vec![0u8; synth.max_len()];
            let mut out = Vec::new();
            for _ in 0..300 {
                let p = synth.next(&mut buf);
                out.push((p, buf[..p.len].to_vec()));
            }
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn prefix_write_matches_whole_packet() {
        let mut synth = PacketSynth::new(3, mixed()).unwrap();
        let mut whole = vec![0u8; synth.max_len()];
        for _ in 0..500 {
            let p = synth.next_packet();
            assert_eq!(synth.write(&p, &mut whole), p.len);
            for cut in [0, 1, 19, 20, 33, 64, 96] {
                let mut part = [0u8; 96];
                let n = synth.write(&p, &mut part[..cut]);
                assert_eq!(n, cut.min(p.len));
                assert_eq!(&part[..n], &whole[..n]);
            }
        }
    }

    #[test]
    fn next_record_cuts_at_snaplen() {
        let mut synth = PacketSynth::new(9, SynthOptions::default()).unwrap();
        let mut buf = [0u8; 64];
        let r = synth.next_record(&mut buf, 40, 123);
        assert_eq!(r.orig_len, 64);
        assert_eq!(r.data.len(), 40);
        assert_eq!(r.tstamp_ns, 123);
        assert_eq!(r.ifindex, 1);
        assert!(r.hook == Hook::PRE_ROUTING || r.hook == Hook::LOCAL_OUT);
    }

    #[test]
    fn single_choices_and_errors() {
        let options = SynthOptions {
            sizes: vec![100],
            families: vec![Family::IPV6],
            transports: vec![Transport::Tcp],
            hooks: vec![Hook::LOCAL_OUT],
            ifindexes: vec![5],
            flow_len: 1,
        };
        let mut synth = PacketSynth::new(1, options.clone()).unwrap();
        let mut buf = [0u8; 100];
        for _ in 0..10 {
            let p = synth.next(&mut buf);
            assert_eq!(
                (p.len, p.protocol, p.hook, p.ifindex),
                (100, 6, Hook::LOCAL_OUT, 5)
            );
            check_packet(&p, &buf);
        }
        let bad = |o: SynthOptions| PacketSynth::new(0, o).unwrap_err();
        assert_eq!(
            bad(SynthOptions {
                sizes: vec![],
                ..options.clone()
            }),
            SynthError::Empty("sizes")
        );
        assert_eq!(
            bad(SynthOptions {
                sizes: vec![70000],
                ..options.clone()
            }),
            SynthError::Size(70000)
        );
        assert_eq!(
            bad(SynthOptions {
                families: vec![Family(7)],
                ..options
            }),
            SynthError::Family(Family(7))
        );
    }

    #[test]
    fn flows_share_addresses_and_vary_ids() {
        let options = SynthOptions {
            families: vec![Family::IPV4],
            transports: vec![Transport::Udp],
            flow_len: 4,
            ..SynthOptions::default()
        };
        let mut synth = PacketSynth::new(11, options).unwrap();
        let mut buf = [0u8; 64];
        let mut flows = std::collections::HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..4000 {
            let p = synth.next(&mut buf);
            check_packet(&p, &buf);
            // (addresses, ports) identify the flow.
            let key = (buf[12..20].to_vec(), buf[20..24].to_vec());
            *flows.entry(key).or_insert(0u32) += 1;
            ids.insert((buf[12..24].to_vec(), [buf[4], buf[5]]));
        }
        // Flows average 2.5 packets; packets of a flow differ in IP id.
        assert!(flows.len() > 1000 && flows.len() < 2200, "{}", flows.len());
        assert!(ids.len() > 3900);
    }

    #[test]
    fn push_with_writes_what_push_copies() {
        use imp2_format::wire::{BatchBuilder, BatchTrailer};
        let mut synth = PacketSynth::new(21, mixed()).unwrap();
        let mut buf = vec![0u8; synth.max_len()];
        let mut by_copy = BatchBuilder::new(8192, 100, 42);
        let mut in_place = BatchBuilder::new(8192, 100, 42);
        let mut pushed = 0;
        for i in 0..100u64 {
            let p = synth.next_packet();
            let n = p.len.min(300);
            synth.write(&p, &mut buf[..n]);
            let record = p.record(1000 + i, &buf[..n]);
            let a = by_copy.push(&record);
            let b = in_place
                .push_with(&p.record(1000 + i, &[]), n, |data| {
                    synth.write(&p, data);
                })
                .map(|data| assert_eq!(data, record.data));
            assert_eq!(a, b);
            pushed += u32::from(a.is_ok());
        }
        assert!(pushed > 10 && pushed < 100, "{pushed}");
        let t = BatchTrailer::default();
        assert_eq!(by_copy.finish(&t), in_place.finish(&t));
    }
}
