//! Building messages byte for byte as the module does: batches of RECORD
//! messages closed by an NLMSG_DONE trailer, and the small control messages.
//!
//! Used by imp2-loadgen (the module's stand-in), the tests and the benches.

use super::abi;
use super::{BatchTrailer, Config, NlHeader, Register};
use crate::record::PacketRecord;

/// The record did not fit: send the batch and start a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFull;

impl std::fmt::Display for BatchFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("batch full")
    }
}

impl std::error::Error for BatchFull {}

/// Size of the DONE message that closes every batch.
pub const TRAILER_MESSAGE_LEN: usize = abi::NLMSG_HDRLEN + abi::trailer::SIZE;

/// Space one record of `captured` bytes takes in a batch, padding included.
pub const fn record_message_len(captured: usize) -> usize {
    abi::nlmsg_align(abi::NLMSG_HDRLEN + abi::record::SIZE + captured)
}

/// Accumulates one batch in a reusable buffer: records, then a trailer.
///
/// Space for the trailer is always kept, so [`BatchBuilder::finish`] cannot
/// fail. The buffer is allocated once and reused across batches.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    capacity: usize,
    max_records: u32,
    records: u32,
    port_id: u32,
}

impl BatchBuilder {
    /// A builder for batches of at most `capacity` bytes (trailer included)
    /// and `max_records` records, whose messages carry `port_id` as sender.
    pub fn new(capacity: usize, max_records: u32, port_id: u32) -> BatchBuilder {
        let capacity = capacity.max(TRAILER_MESSAGE_LEN + record_message_len(0));
        BatchBuilder {
            buf: Vec::with_capacity(capacity),
            capacity,
            max_records: max_records.max(1),
            records: 0,
            port_id,
        }
    }

    /// Records in the batch being built.
    pub fn records(&self) -> u32 {
        self.records
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Whether the batch has reached its record threshold.
    pub fn is_full(&self) -> bool {
        self.records >= self.max_records
    }

    /// Appends one RECORD message (`NLM_F_MULTI`); padding is zeroed.
    pub fn push(&mut self, record: &PacketRecord<'_>) -> Result<(), BatchFull> {
        let len = abi::NLMSG_HDRLEN + abi::record::SIZE + record.data.len();
        let padded = abi::nlmsg_align(len);
        if self.is_full() || self.buf.len() + padded + TRAILER_MESSAGE_LEN > self.capacity {
            return Err(BatchFull);
        }
        let start = self.buf.len();
        self.buf
            .resize(start + abi::NLMSG_HDRLEN + abi::record::SIZE, 0);
        NlHeader {
            len: len as u32,
            msg_type: abi::MSG_RECORD,
            flags: abi::NLM_F_MULTI,
            seq: 0,
            pid: self.port_id,
        }
        .write(&mut self.buf[start..]);
        let r = start + abi::NLMSG_HDRLEN;
        use abi::record as f;
        self.buf[f::TSTAMP_NS.at(r)].copy_from_slice(&record.tstamp_ns.to_ne_bytes());
        self.buf[f::IFINDEX.at(r)].copy_from_slice(&record.ifindex.to_ne_bytes());
        self.buf[f::ORIG_LEN.at(r)].copy_from_slice(&record.orig_len.to_ne_bytes());
        self.buf[r + f::HOOK.offset] = record.hook.0;
        self.buf[r + f::FAMILY.offset] = record.family.0;
        self.buf[r + f::PROTOCOL.offset] = record.protocol;
        self.buf.extend_from_slice(record.data);
        self.buf.resize(start + padded, 0);
        self.records += 1;
        Ok(())
    }

    /// Like [`BatchBuilder::push`], but the record's `captured` data bytes
    /// are written in place by `fill` (they start zeroed) instead of being
    /// copied from `record.data`, which is ignored: a generator can
    /// synthesize packets straight into the batch. Returns the data as
    /// written.
    #[inline(always)]
    pub fn push_with(
        &mut self,
        record: &PacketRecord<'_>,
        captured: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<&[u8], BatchFull> {
        const HEAD: usize = abi::NLMSG_HDRLEN + abi::record::SIZE;
        let len = HEAD + captured;
        let padded = abi::nlmsg_align(len);
        if self.is_full() || self.buf.len() + padded + TRAILER_MESSAGE_LEN > self.capacity {
            return Err(BatchFull);
        }
        // Header and record struct assembled on the stack and appended in
        // one fixed-size copy; then the data and padding, zeroed.
        let mut head = [0u8; HEAD];
        NlHeader {
            len: len as u32,
            msg_type: abi::MSG_RECORD,
            flags: abi::NLM_F_MULTI,
            seq: 0,
            pid: self.port_id,
        }
        .write(&mut head);
        let r = abi::NLMSG_HDRLEN;
        use abi::record as f;
        head[f::TSTAMP_NS.at(r)].copy_from_slice(&record.tstamp_ns.to_ne_bytes());
        head[f::IFINDEX.at(r)].copy_from_slice(&record.ifindex.to_ne_bytes());
        head[f::ORIG_LEN.at(r)].copy_from_slice(&record.orig_len.to_ne_bytes());
        head[r + f::HOOK.offset] = record.hook.0;
        head[r + f::FAMILY.offset] = record.family.0;
        head[r + f::PROTOCOL.offset] = record.protocol;
        let start = self.buf.len();
        self.buf.extend_from_slice(&head);
        self.buf.resize(start + padded, 0);
        let msg = &mut self.buf[start..start + padded];
        fill(&mut msg[HEAD..len]);
        self.records += 1;
        Ok(&self.buf[start + HEAD..start + len])
    }

    /// Appends the NLMSG_DONE trailer (its `records` field is filled in
    /// here) and returns the finished batch. Call [`BatchBuilder::clear`]
    /// before building the next one.
    pub fn finish(&mut self, trailer: &BatchTrailer) -> &[u8] {
        let trailer = BatchTrailer {
            records: self.records,
            ..*trailer
        };
        let start = self.buf.len();
        self.buf.resize(start + abi::NLMSG_HDRLEN, 0);
        NlHeader {
            len: TRAILER_MESSAGE_LEN as u32,
            msg_type: abi::NLMSG_DONE,
            flags: abi::NLM_F_MULTI,
            seq: 0,
            pid: self.port_id,
        }
        .write(&mut self.buf[start..]);
        self.buf.extend_from_slice(&trailer.to_bytes());
        &self.buf
    }

    /// Empties the builder for the next batch, keeping its buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.records = 0;
    }
}

fn message(msg_type: u16, flags: u16, seq: u32, pid: u32, payload: &[u8]) -> Vec<u8> {
    let len = abi::NLMSG_HDRLEN + payload.len();
    let mut buf = vec![0u8; abi::nlmsg_align(len)];
    NlHeader {
        len: len as u32,
        msg_type,
        flags,
        seq,
        pid,
    }
    .write(&mut buf);
    buf[abi::NLMSG_HDRLEN..len].copy_from_slice(payload);
    buf
}

/// REGISTER request (`NLM_F_REQUEST | NLM_F_ACK`) carrying `config`.
pub fn register_message(config: &Config, seq: u32, pid: u32) -> Vec<u8> {
    message(
        abi::MSG_REGISTER,
        abi::NLM_F_REQUEST | abi::NLM_F_ACK,
        seq,
        pid,
        &config.to_bytes(),
    )
}

/// REGISTER request carrying a whole [`Register`]: the config and, when
/// it has one, the filter extension.
pub fn register_filtered_message(register: &Register, seq: u32, pid: u32) -> Vec<u8> {
    message(
        abi::MSG_REGISTER,
        abi::NLM_F_REQUEST | abi::NLM_F_ACK,
        seq,
        pid,
        &register.to_bytes(),
    )
}

/// UNREGISTER request (`NLM_F_REQUEST | NLM_F_ACK`).
pub fn unregister_message(seq: u32, pid: u32) -> Vec<u8> {
    message(
        abi::MSG_UNREGISTER,
        abi::NLM_F_REQUEST | abi::NLM_F_ACK,
        seq,
        pid,
        &[],
    )
}

/// NLMSG_ERROR answering `request`: `errno` 0 is an ACK, else a negative
/// errno. Carries the request's header, as the kernel does with a capped ack.
pub fn ack_message(request: &NlHeader, errno: i32, pid: u32) -> Vec<u8> {
    let mut payload = [0u8; 4 + abi::NLMSG_HDRLEN];
    payload[..4].copy_from_slice(&errno.to_ne_bytes());
    request.write(&mut payload[4..]);
    message(abi::NLMSG_ERROR, 0, request.seq, pid, &payload)
}
