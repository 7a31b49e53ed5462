//! Property tests for the NFLOG parser: build -> parse round trips for
//! packet messages and config requests, and arbitrary or mutated bytes never
//! panic nor yield data outside the buffer.

use imp2_format::Family;
use imp2_format::ip::{ip_orig_len, ip_protocol};
use imp2_format::nflog::{
    Attrs, ConfigRequest, CopyMode, NflogMessage, NflogWalker, PacketMessage, PacketParser,
    Timestamp, consts, emit_done,
};
use imp2_format::record::PROTO_UNKNOWN;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Owned {
    family: u8,
    group: u16,
    hw_protocol: u16,
    hook: u8,
    prefix: Option<Vec<u8>>,
    indev: Option<u32>,
    outdev: Option<u32>,
    mark: Option<u32>,
    timestamp: Option<(u64, u64)>,
    uid: Option<(u32, u32)>,
    seq: Option<u32>,
    seq_global: Option<u32>,
    payload: Option<Vec<u8>>,
}

impl Owned {
    fn view(&self) -> PacketMessage<'_> {
        PacketMessage {
            family: self.family,
            group: self.group,
            hw_protocol: self.hw_protocol,
            hook: self.hook,
            prefix: self.prefix.as_deref(),
            indev: self.indev,
            outdev: self.outdev,
            mark: self.mark,
            timestamp: self.timestamp.map(|(sec, usec)| Timestamp { sec, usec }),
            uid: self.uid.map(|u| u.0),
            gid: self.uid.map(|u| u.1),
            seq: self.seq,
            seq_global: self.seq_global,
            payload: self.payload.as_deref(),
            ..Default::default()
        }
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        (
            prop_oneof![Just(2u8), Just(10u8), any::<u8>()],
            any::<u16>(),
            any::<u16>(),
            0u8..6,
        ),
        // Short prefixes, and long ones that push the attribute headers past
        // what the parser's layout cache compares (it must then decline).
        proptest::option::of(prop_oneof![
            3 => proptest::collection::vec(any::<u8>(), 0..40),
            1 => proptest::collection::vec(any::<u8>(), 200..300),
        ]),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        ),
        any::<Option<(u64, u64)>>(),
        any::<Option<(u32, u32)>>(),
        (any::<Option<u32>>(), any::<Option<u32>>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    )
        .prop_map(
            |(
                (family, group, hw_protocol, hook),
                prefix,
                (indev, outdev, mark),
                timestamp,
                uid,
                (seq, seq_global),
                payload,
            )| Owned {
                family,
                group,
                hw_protocol,
                hook,
                prefix,
                indev,
                outdev,
                mark,
                timestamp,
                uid,
                seq,
                seq_global,
                payload,
            },
        )
}

fn config() -> impl Strategy<Value = ConfigRequest> {
    (
        (any::<u8>(), any::<u16>(), any::<Option<u8>>()),
        any::<Option<(u8, u32)>>(),
        (
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
        ),
        any::<Option<u16>>(),
    )
        .prop_map(
            |((family, group, command), mode, (nlbufsiz, timeout, qthresh), flags)| ConfigRequest {
                family,
                group,
                command,
                mode: mode.map(|(mode, range)| CopyMode { mode, range }),
                nlbufsiz,
                timeout,
                qthresh,
                flags,
            },
        )
}

/// Everything a walk yields must lie inside `buf`.
fn check_walk(buf: &[u8]) {
    let range = buf.as_ptr_range();
    let inside = |s: &[u8]| {
        let r = s.as_ptr_range();
        s.is_empty() || (range.start <= r.start && r.end <= range.end)
    };
    for item in NflogWalker::new(buf) {
        let Ok(item) = item else { continue };
        assert!(item.offset + item.header.len as usize <= buf.len());
        if let NflogMessage::Packet(p) = item.message {
            for s in [p.prefix, p.payload, p.hwaddr, p.hwheader]
                .into_iter()
                .flatten()
            {
                assert!(inside(s));
            }
            if let Ok(r) = p.to_record(1) {
                assert!(inside(r.data));
                assert!(r.data.len() as u64 <= u64::from(r.orig_len));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn packet_messages_round_trip(messages in proptest::collection::vec(owned(), 1..8)) {
        let mut buf = Vec::new();
        for m in &messages {
            m.view().emit(&mut buf);
        }
        emit_done(7, &mut buf);
        let items: Vec<_> = NflogWalker::new(&buf).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(items.len(), messages.len() + 1);
        for (item, m) in items.iter().zip(&messages) {
            prop_assert_eq!(item.message, NflogMessage::Packet(m.view()));
        }
        prop_assert_eq!(items[messages.len()].message, NflogMessage::Done);
    }

    #[test]
    fn config_requests_round_trip(c in config(), seq in any::<u32>(), pid in any::<u32>()) {
        let msg = c.to_message(seq, pid);
        prop_assert_eq!(msg.len() % 4, 0);
        prop_assert_eq!(ConfigRequest::parse(&msg[16..], 16), Ok(c));
    }

    #[test]
    fn records_never_claim_less_than_they_carry(m in owned(), now in any::<u64>()) {
        if let Ok(r) = m.view().to_record(now) {
            prop_assert!(r.data.len() as u64 <= u64::from(r.orig_len));
            prop_assert_eq!(r.data, m.payload.as_deref().unwrap_or(&[]));
            if m.timestamp.is_none() {
                prop_assert_eq!(r.tstamp_ns, now);
            }
        } else {
            prop_assert!(m.family != consts::AF_INET && m.family != consts::AF_INET6);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_walk(&buf);
        for a in Attrs::new(&buf, 0).flatten() {
            prop_assert!(a.value.len() < buf.len());
        }
        let _ = ConfigRequest::parse(&buf, 0);
        let _ = PacketMessage::parse(&buf, 0);
        let _ = ip_orig_len(Family::IPV4, &buf);
        let _ = ip_orig_len(Family::IPV6, &buf);
        let p = ip_protocol(Family::IPV6, &buf);
        prop_assert!(buf.len() >= 40 || p == PROTO_UNKNOWN);
    }

    /// A snaplen cut never changes the protocol into another one: a
    /// prefix of a packet gives the whole packet's protocol or unknown.
    #[test]
    fn cut_packets_give_their_protocol_or_unknown(
        chain in proptest::collection::vec(
            (prop::sample::select(vec![0u8, 43, 44, 51, 60, 6, 17, 50, 59]), 0u8..4, any::<u8>()),
            0..6,
        ),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
        cut in any::<prop::sample::Index>(),
    ) {
        // An IPv6 header and extension headers of random types and
        // lengths, so that walks go deep more often than over random bytes.
        let mut buf = vec![0u8; 40];
        buf[0] = 0x60;
        buf[6] = chain.first().map_or(17, |c| c.0);
        for (i, &(_, len, offset)) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(17, |c| c.0);
            let mut h = vec![next, len, offset & 0x0f, offset];
            h.resize(8 * (usize::from(len) + 1), 0);
            buf.extend_from_slice(&h);
        }
        buf.extend_from_slice(&tail);
        for family in [Family::IPV4, Family::IPV6] {
            let whole = ip_protocol(family, &buf);
            let part = ip_protocol(family, &buf[..cut.index(buf.len() + 1)]);
            prop_assert!(part == whole || part == PROTO_UNKNOWN, "{part} for {whole}");
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        messages in proptest::collection::vec(owned(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        for m in &messages {
            m.view().emit(&mut buf);
        }
        for (at, v) in flips {
            let i = at.index(buf.len());
            buf[i] = v;
        }
        check_walk(&buf);
        let n = cut.index(buf.len() + 1);
        check_walk(&buf[..n]);
    }

    /// The layout cache changes nothing: over a stream of messages of a
    /// few shapes (payload lengths varying), some of them damaged, the
    /// parser gives exactly what the stateless parse gives, message by
    /// message, whichever layouts it holds.
    #[test]
    fn the_layout_cache_parses_exactly_like_the_full_parse(
        shapes in proptest::collection::vec(owned(), 1..4),
        picks in proptest::collection::vec(
            (any::<prop::sample::Index>(), 0usize..400, proptest::option::of((any::<prop::sample::Index>(), any::<u8>()))),
            1..40,
        ),
    ) {
        let mut parser = PacketParser::default();
        for (shape, payload_len, damage) in picks {
            let mut m = shapes[shape.index(shapes.len())].clone();
            if m.payload.is_some() {
                m.payload = Some(vec![0x45; payload_len]);
            }
            let mut buf = Vec::new();
            m.view().emit(&mut buf);
            if let Some((at, v)) = damage {
                let i = at.index(buf.len() - 16) + 16;
                buf[i] = v;
            }
            let payload = &buf[16..];
            let fast = parser.parse(payload, 16);
            let full = PacketMessage::parse(payload, 16);
            prop_assert_eq!(fast, full);
        }
    }

    /// Walking with a parser carried over from earlier datagrams gives the
    /// same items as a fresh walk.
    #[test]
    fn walking_with_a_warm_parser_changes_nothing(
        first in proptest::collection::vec(owned(), 1..4),
        second in proptest::collection::vec(owned(), 1..4),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut a = Vec::new();
        for m in &first {
            m.view().emit(&mut a);
        }
        let mut b = Vec::new();
        for m in &second {
            m.view().emit(&mut b);
        }
        for (at, v) in flips {
            let i = at.index(b.len());
            b[i] = v;
        }
        let mut warm = NflogWalker::new(&a);
        for _ in &mut warm {}
        let warm: Vec<_> = NflogWalker::with_parser(&b, warm.parser()).collect();
        let cold: Vec<_> = NflogWalker::new(&b).collect();
        prop_assert_eq!(warm, cold);
    }

    /// The fast path changes nothing: over a stream of messages of a few
    /// shapes, some damaged, cut anywhere, walking with `next_packet`
    /// first and `next` when it declines gives exactly the packets (and
    /// the other items, and the errors) of walking with `next` alone.
    #[test]
    fn the_fast_path_walks_exactly_like_the_iterator(
        shapes in proptest::collection::vec(owned(), 1..4),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..300), 1..30),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        for (shape, payload_len) in picks {
            let mut m = shapes[shape.index(shapes.len())].clone();
            if m.payload.is_some() {
                m.payload = Some(vec![0x60; payload_len]);
            }
            m.view().emit(&mut buf);
        }
        emit_done(7, &mut buf);
        for (at, v) in flips {
            let i = at.index(buf.len());
            buf[i] = v;
        }
        let buf = &buf[..cut.index(buf.len() + 1)];
        prop_assert_eq!(walk_fast(buf), walk_plain(buf));
    }
}

/// What a walk yields, packets reduced to what a recorder keeps.
#[derive(Debug, PartialEq)]
enum Seen<'a> {
    Packet(imp2_format::nflog::LoggedPacket<'a>),
    Other(NflogMessage<'a>),
    Error(imp2_format::nflog::MalformedNflog),
}

fn walk_plain(buf: &[u8]) -> Vec<Seen<'_>> {
    NflogWalker::new(buf)
        .map(|item| match item {
            Ok(i) => match i.message {
                NflogMessage::Packet(p) => Seen::Packet(p.logged()),
                m => Seen::Other(m),
            },
            Err(e) => Seen::Error(e),
        })
        .collect()
}

fn walk_fast(buf: &[u8]) -> Vec<Seen<'_>> {
    let mut out = Vec::new();
    let mut walker = NflogWalker::new(buf);
    loop {
        if let Some(p) = walker.next_packet() {
            out.push(Seen::Packet(p));
            continue;
        }
        match walker.next() {
            Some(Ok(i)) => out.push(match i.message {
                NflogMessage::Packet(p) => Seen::Packet(p.logged()),
                m => Seen::Other(m),
            }),
            Some(Err(e)) => out.push(Seen::Error(e)),
            None => break,
        }
    }
    out
}
