//! Untrusted NETLINK_NETFILTER datagrams (what imp2-record receives from
//! NFLOG): the walker never panics, everything it yields lies inside the
//! buffer, a record never carries more than its original length, every
//! packet message it accepts re-encodes to a message that parses the same,
//! and neither the parser's layout cache nor the walker's fast path
//! (`next_packet`) ever changes a result.
#![no_main]

use imp2_format::nflog::{
    ConfigRequest, LoggedPacket, NflogMessage, PacketMessage, NflogWalker,
};
use imp2_format::ip::ip_protocol;
use imp2_format::record::PROTO_UNKNOWN;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let range = data.as_ptr_range();
    let inside = |s: &[u8]| {
        let r = s.as_ptr_range();
        s.is_empty() || (range.start <= r.start && r.end <= range.end)
    };
    for item in NflogWalker::new(data).flatten() {
        assert!(item.offset + item.header.len as usize <= data.len());
        if let NflogMessage::Packet(p) = item.message {
            for s in [p.prefix, p.payload, p.hwaddr, p.hwheader]
                .into_iter()
                .flatten()
            {
                assert!(inside(s));
            }
            if let Ok(r) = p.to_record(0) {
                assert!(inside(r.data));
                assert!(r.data.len() as u64 <= u64::from(r.orig_len));
                // A snaplen cut gives the same protocol, or unknown.
                let cut = &r.data[..r.data.len() / 2];
                let part = ip_protocol(r.family, cut);
                assert!(part == r.protocol || part == PROTO_UNKNOWN);
            }
            let mut again = Vec::new();
            p.emit(&mut again);
            let reparsed: Vec<_> = NflogWalker::new(&again).collect();
            assert_eq!(reparsed.len(), 1);
            match reparsed[0] {
                Ok(ref i) => assert_eq!(i.message, NflogMessage::Packet(p)),
                Err(e) => panic!("re-encoded message does not parse: {e}"),
            }
        }
    }
    // The layout cache of a walker changes nothing: a parser warmed up on
    // the first part of the input parses the rest exactly like a fresh
    // walk, and every packet exactly like the stateless parse.
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (first, second) = data.split_at(split);
    let mut warm = NflogWalker::new(first);
    for _ in &mut warm {}
    let warm_items: Vec<_> = NflogWalker::with_parser(second, warm.parser()).collect();
    let cold_items: Vec<_> = NflogWalker::new(second).collect();
    assert_eq!(warm_items, cold_items);
    for item in cold_items.iter().flatten() {
        if let NflogMessage::Packet(p) = item.message {
            let start = item.offset + 16;
            let end = item.offset + item.header.len as usize;
            assert_eq!(PacketMessage::parse(&second[start..end], start), Ok(p));
        }
    }
    // The fast path changes nothing: `next_packet` first, `next` when it
    // declines, gives the packets (and everything else) of `next` alone.
    let plain: Vec<_> = NflogWalker::new(data)
        .map(|item| item.map(|i| (i.offset, logged(i.message))))
        .collect();
    let mut fast = Vec::new();
    let mut walker = NflogWalker::new(data);
    loop {
        let at = walker.offset();
        if let Some(p) = walker.next_packet() {
            fast.push(Ok((at, Ok(p))));
            continue;
        }
        match walker.next() {
            Some(item) => fast.push(item.map(|i| (i.offset, logged(i.message)))),
            None => break,
        }
    }
    assert_eq!(fast, plain);
    if let Ok(c) = ConfigRequest::parse(data, 0) {
        let msg = c.to_message(1, 2);
        assert_eq!(ConfigRequest::parse(&msg[16..], 16), Ok(c));
    }
});

/// A packet message as a recorder keeps it; other messages as they are.
fn logged(m: NflogMessage<'_>) -> Result<LoggedPacket<'_>, NflogMessage<'_>> {
    match m {
        NflogMessage::Packet(p) => Ok(p.logged()),
        other => Err(other),
    }
}
