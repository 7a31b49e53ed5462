//! The NFLOG parser on broken input: every framing, attribute and content
//! error is reported with the byte offset of what is broken, valid messages
//! around it are kept, and nothing panics.

use imp2_format::nflog::{
    ConfigRequest, MalformedNflog, MalformedNflogReason, NflogMessage, NflogWalker, PacketMessage,
    consts, emit_done,
};
use imp2_format::wire::{FramingError, NlHeader};

const IP: [u8; 28] = [
    0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 199, 0, 1, 10, 199, 0, 2, 0x30, 0x39, 0x27, 0x0f,
    0, 8, 0, 0,
];

fn packet(seq: u32) -> PacketMessage<'static> {
    PacketMessage {
        family: consts::AF_INET,
        group: 1,
        hw_protocol: 0x0800,
        hook: consts::NF_INET_PRE_ROUTING,
        indev: Some(3),
        seq: Some(seq),
        payload: Some(&IP),
        ..Default::default()
    }
}

/// Three packet messages (76 bytes each: 16 + 4 + 8 + 8 + 8 + 32) and a
/// DONE.
fn buffer() -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 0..3 {
        packet(seq).emit(&mut out);
    }
    emit_done(1, &mut out);
    assert_eq!(out.len(), 3 * 76 + 20);
    out
}

fn walk(buf: &[u8]) -> (Vec<u32>, Vec<MalformedNflog>) {
    let mut seqs = Vec::new();
    let mut errors = Vec::new();
    for item in NflogWalker::new(buf) {
        match item {
            Ok(item) => {
                if let NflogMessage::Packet(p) = item.message {
                    seqs.push(p.seq.unwrap());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (seqs, errors)
}

fn set_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

fn set_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

#[test]
fn the_intact_buffer_walks_cleanly() {
    assert_eq!(walk(&buffer()), (vec![0, 1, 2], vec![]));
}

#[test]
fn framing_errors_end_the_walk_with_the_offset() {
    // Message 2's nlmsg_len below the header size.
    let mut b = buffer();
    set_u32(&mut b, 76, 15);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 76,
            reason: MalformedNflogReason::Framing(FramingError::LengthBelowHeader { len: 15 })
        }]
    );
    assert!(!errors[0].reason.is_recoverable());

    // Message 3 runs past the end (a truncated receive).
    let b = buffer();
    let cut = &b[..152 + 40];
    let (seqs, errors) = walk(cut);
    assert_eq!(seqs, [0, 1]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 152,
            reason: MalformedNflogReason::Framing(FramingError::LengthPastEnd {
                len: 76,
                available: 40
            })
        }]
    );

    // A few bytes after the last message.
    let mut b = buffer();
    b.extend_from_slice(&[1, 2, 3]);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 248,
            reason: MalformedNflogReason::Framing(FramingError::TrailingBytes { remaining: 3 })
        }]
    );
}

#[test]
fn attribute_errors_skip_only_their_message() {
    // Message 2's first attribute (PACKET_HDR at 76 + 20) claims 3 bytes.
    let mut b = buffer();
    set_u16(&mut b, 96, 3);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0, 2]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 96,
            reason: MalformedNflogReason::AttrLengthBelowHeader { len: 3 }
        }]
    );
    assert!(errors[0].reason.is_recoverable());

    // Its payload attribute (at 76 + 44) runs past the message end.
    let mut b = buffer();
    set_u16(&mut b, 120, 40);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0, 2]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 120,
            reason: MalformedNflogReason::AttrLengthPastEnd {
                kind: consts::NFULA_PAYLOAD,
                len: 40,
                available: 32
            }
        }]
    );

    // A sequence number attribute (at 76 + 36) with 2 value bytes.
    let mut b = buffer();
    set_u16(&mut b, 112, 6);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0, 2]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 112,
            reason: MalformedNflogReason::AttrTooShort {
                kind: consts::NFULA_SEQ,
                len: 2,
                need: 4
            }
        }]
    );

    // Message length cutting the last attribute's header short: 2 bytes
    // left after the sequence number.
    let mut b = buffer();
    set_u32(&mut b, 76, 46);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [0]);
    // The next "message" then starts inside message 2: framing is lost.
    assert_eq!(
        errors[0],
        MalformedNflog {
            offset: 120,
            reason: MalformedNflogReason::AttrTrailingBytes { remaining: 2 }
        }
    );
}

#[test]
fn content_errors_of_packet_messages() {
    // No PACKET_HDR: retype it (at 20 + 2) to an unknown attribute.
    let mut b = buffer();
    set_u16(&mut b, 22, 200);
    let (seqs, errors) = walk(&b);
    assert_eq!(seqs, [1, 2]);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 16,
            reason: MalformedNflogReason::MissingPacketHeader
        }]
    );

    // A payload shorter than nfgenmsg.
    let mut short = vec![0u8; 18];
    NlHeader {
        len: 18,
        msg_type: consts::MSG_PACKET,
        flags: 0,
        seq: 0,
        pid: 0,
    }
    .write(&mut short);
    let (_, errors) = walk(&short);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 16,
            reason: MalformedNflogReason::ShortNfgenmsg { payload: 2 }
        }]
    );

    // A too-short timestamp.
    let mut b = Vec::new();
    let mut m = packet(0);
    m.timestamp = Some(Default::default());
    m.emit(&mut b);
    // TIMESTAMP follows PACKET_HDR and INDEV: at 16 + 4 + 8 + 8.
    set_u16(&mut b, 36, 12);
    let (_, errors) = walk(&b);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 36,
            reason: MalformedNflogReason::AttrTooShort {
                kind: consts::NFULA_TIMESTAMP,
                len: 8,
                need: 16
            }
        }]
    );
}

#[test]
fn errors_and_acks_are_typed() {
    let mut b = vec![0u8; 36];
    NlHeader {
        len: 36,
        msg_type: 2,
        flags: 0,
        seq: 4,
        pid: 0,
    }
    .write(&mut b);
    b[16..20].copy_from_slice(&(-1i32).to_ne_bytes());
    NlHeader {
        len: 28,
        msg_type: consts::MSG_CONFIG,
        flags: 5,
        seq: 4,
        pid: 77,
    }
    .write(&mut b[20..]);
    let items: Vec<_> = NflogWalker::new(&b).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        items[0].message,
        NflogMessage::Error {
            errno: -1,
            request: Some(NlHeader {
                len: 28,
                msg_type: consts::MSG_CONFIG,
                flags: 5,
                seq: 4,
                pid: 77
            })
        }
    );
    // An error message without its errno.
    let mut short = vec![0u8; 18];
    NlHeader {
        len: 18,
        msg_type: 2,
        flags: 0,
        seq: 0,
        pid: 0,
    }
    .write(&mut short);
    let (_, errors) = walk(&short);
    assert_eq!(
        errors,
        [MalformedNflog {
            offset: 0,
            reason: MalformedNflogReason::ShortError { payload: 2 }
        }]
    );
}

#[test]
fn config_attributes_are_checked_against_the_policy() {
    let mut msg = ConfigRequest::bind(2).to_message(1, 0);
    // Claim the command attribute is empty.
    set_u16(&mut msg, 20, 4);
    assert_eq!(
        ConfigRequest::parse(&msg[16..], 16),
        Err(MalformedNflog {
            offset: 20,
            reason: MalformedNflogReason::AttrTooShort {
                kind: consts::NFULA_CFG_CMD,
                len: 0,
                need: 1
            }
        })
    );
    assert_eq!(
        ConfigRequest::parse(&msg[16..18], 16),
        Err(MalformedNflog {
            offset: 16,
            reason: MalformedNflogReason::ShortNfgenmsg { payload: 2 }
        })
    );
}

#[test]
fn every_error_displays_its_offset() {
    let e = MalformedNflog {
        offset: 120,
        reason: MalformedNflogReason::AttrLengthBelowHeader { len: 3 },
    };
    assert_eq!(
        e.to_string(),
        "malformed NFLOG message at byte 120: nla_len 3 is below the attribute header size"
    );
}
