//! The walker on broken input: every framing and content error is reported
//! with its offset, what is valid is kept, and nothing panics.

use imp2_format::wire::abi;
use imp2_format::wire::{
    BatchBuilder, BatchMessage, BatchTrailer, BatchWalker, FramingError, MalformedBatch,
    MalformedBatchReason, NlHeader,
};
use imp2_format::{Family, Hook, PacketRecord};

const DATA: [u8; 40] = [0x45; 40];

fn record(i: u64) -> PacketRecord<'static> {
    PacketRecord {
        tstamp_ns: i,
        ifindex: 1,
        orig_len: 40,
        hook: Hook::PRE_ROUTING,
        family: Family::IPV4,
        protocol: 6,
        data: &DATA,
    }
}

/// Two valid records (80-byte messages) without a trailer.
fn two_records() -> Vec<u8> {
    let mut b = BatchBuilder::new(4096, 10, 0);
    b.push(&record(1)).unwrap();
    b.push(&record(2)).unwrap();
    let batch = b.finish(&BatchTrailer::default()).to_vec();
    batch[..160].to_vec()
}

fn header(len: u32, msg_type: u16) -> [u8; 16] {
    let mut h = [0u8; 16];
    NlHeader {
        len,
        msg_type,
        flags: 0,
        seq: 0,
        pid: 0,
    }
    .write(&mut h);
    h
}

fn walk(buf: &[u8]) -> (usize, Vec<MalformedBatch>) {
    let mut records = 0;
    let mut errors = Vec::new();
    for item in BatchWalker::new(buf) {
        match item {
            Ok(i) if matches!(i.message, BatchMessage::Record(_)) => records += 1,
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    (records, errors)
}

#[test]
fn length_past_end_stops_walk_and_keeps_prefix() {
    let mut buf = two_records();
    buf.extend_from_slice(&header(1000, abi::MSG_RECORD));
    buf.extend_from_slice(&[0; 24]);
    let (records, errors) = walk(&buf);
    assert_eq!(records, 2);
    assert_eq!(
        errors,
        [MalformedBatch {
            offset: 160,
            reason: MalformedBatchReason::Framing(FramingError::LengthPastEnd {
                len: 1000,
                available: 40
            })
        }]
    );
}

#[test]
fn length_below_header_stops_walk() {
    let mut buf = two_records();
    buf.extend_from_slice(&header(8, abi::MSG_RECORD));
    buf.extend_from_slice(&two_records());
    let (records, errors) = walk(&buf);
    assert_eq!(records, 2, "nothing after a framing error can be located");
    assert_eq!(
        errors,
        [MalformedBatch {
            offset: 160,
            reason: MalformedBatchReason::Framing(FramingError::LengthBelowHeader { len: 8 })
        }]
    );
}

#[test]
fn trailing_bytes_are_reported() {
    let mut buf = two_records();
    buf.extend_from_slice(&[1, 2, 3]);
    let (records, errors) = walk(&buf);
    assert_eq!(records, 2);
    assert_eq!(
        errors,
        [MalformedBatch {
            offset: 160,
            reason: MalformedBatchReason::Framing(FramingError::TrailingBytes { remaining: 3 })
        }]
    );
}

#[test]
fn content_errors_are_skipped_and_walk_goes_on() {
    let mut buf = two_records();
    // A record with a 20-byte payload: shorter than struct imp2_record.
    buf.extend_from_slice(&header(36, abi::MSG_RECORD));
    buf.extend_from_slice(&[0; 20]);
    // A done with a 4-byte payload.
    buf.extend_from_slice(&header(20, abi::NLMSG_DONE));
    buf.extend_from_slice(&[0; 4]);
    // An error with a 2-byte payload (padded to 4).
    buf.extend_from_slice(&header(18, abi::NLMSG_ERROR));
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&two_records());
    let (records, errors) = walk(&buf);
    assert_eq!(records, 4);
    assert_eq!(
        errors,
        [
            MalformedBatch {
                offset: 160,
                reason: MalformedBatchReason::ShortRecord { payload: 20 }
            },
            MalformedBatch {
                offset: 196,
                reason: MalformedBatchReason::ShortTrailer { payload: 4 }
            },
            MalformedBatch {
                offset: 216,
                reason: MalformedBatchReason::ShortError { payload: 2 }
            },
        ]
    );
    assert!(errors.iter().all(|e| e.reason.is_recoverable()));
}

#[test]
fn captured_past_original_is_rejected() {
    let mut buf = two_records();
    // orig_len (offset 12 of the record) = 10 < 40 captured bytes.
    buf[16 + 12..16 + 16].copy_from_slice(&10u32.to_ne_bytes());
    let (records, errors) = walk(&buf);
    assert_eq!(records, 1);
    assert_eq!(
        errors,
        [MalformedBatch {
            offset: 0,
            reason: MalformedBatchReason::CapturedPastOriginal {
                captured: 40,
                orig_len: 10
            }
        }]
    );
}

#[test]
fn control_messages_are_typed() {
    let mut buf = Vec::new();
    let request = NlHeader {
        len: 80,
        msg_type: abi::MSG_REGISTER,
        flags: 5,
        seq: 9,
        pid: 77,
    };
    buf.extend_from_slice(&imp2_format::wire::ack_message(&request, -libc::EBUSY, 0));
    buf.extend_from_slice(&header(16, abi::NLMSG_OVERRUN));
    buf.extend_from_slice(&header(16, abi::NLMSG_NOOP));
    buf.extend_from_slice(&header(20, 0x7ff0));
    buf.extend_from_slice(&[9, 9, 9, 9]);
    let messages: Vec<_> = BatchWalker::new(&buf).map(|i| i.unwrap().message).collect();
    assert_eq!(
        messages,
        [
            BatchMessage::Error {
                errno: -libc::EBUSY,
                request: Some(request)
            },
            BatchMessage::Overrun,
            BatchMessage::Noop,
            BatchMessage::Unknown {
                msg_type: 0x7ff0,
                payload: &[9, 9, 9, 9]
            },
        ]
    );
}

#[test]
fn missing_final_padding_is_accepted() {
    // A 21-byte message at the very end, without its 3 pad bytes.
    let mut buf = header(21, 0x7ff0).to_vec();
    buf.extend_from_slice(&[1, 2, 3, 4, 5]);
    let items: Vec<_> = BatchWalker::new(&buf).collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].is_ok());
}

#[test]
fn empty_buffer_yields_nothing() {
    assert_eq!(BatchWalker::new(&[]).count(), 0);
}
