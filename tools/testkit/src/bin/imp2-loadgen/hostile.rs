//! Hostile datagrams (`--hostile-every K`): each holds exactly one
//! malformed or unexpected item among valid records, and no valid trailer,
//! so it stays outside the sequence and running-total accounting. A correct
//! recorder keeps the valid records, counts the one item, and goes on.

use imp2_format::PacketRecord;
use imp2_format::wire::NlHeader;
use imp2_format::wire::abi;
use imp2_testkit::RecordDigest;
use imp2_testkit::synth::PacketSynth;
use imp2_testkit::synth::SplitMix64;

use crate::stream::Filter;

/// The kinds, in the order they cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// (a) V records, then a message whose `nlmsg_len` runs past the end.
    LengthPastEnd,
    /// (b) V records, then a message with `nlmsg_len` < 16.
    LengthBelowHeader,
    /// (c) V records, then 3 trailing bytes.
    TrailingBytes,
    /// (d) V records, a well-framed message of type 0x7ff0, V records.
    UnknownType,
    /// (e) V records and no NLMSG_DONE.
    MissingDone,
    /// (f) an NLMSG_ERROR carrying -EIO, alone.
    Error,
    /// (g) a record, a RECORD shorter than `struct imp2_record`, a record.
    ShortRecord,
    /// (h) V records, then an NLMSG_DONE with a 4-byte payload.
    ShortTrailer,
}

impl Kind {
    /// All kinds, in cycling order.
    pub const ALL: [Kind; 8] = [
        Kind::LengthPastEnd,
        Kind::LengthBelowHeader,
        Kind::TrailingBytes,
        Kind::UnknownType,
        Kind::MissingDone,
        Kind::Error,
        Kind::ShortRecord,
        Kind::ShortTrailer,
    ];
}

/// Type of the unknown message of kind (d).
pub const UNKNOWN_TYPE: u16 = 0x7ff0;

/// Builder of hostile datagrams, with its own packet stream (so that the
/// normal stream is the same with or without them).
#[derive(Debug)]
pub struct Hostile {
    synth: PacketSynth,
    rng: SplitMix64,
    next: usize,
    port_id: u32,
    /// Whether any packet of `synth` can pass the filters.
    records_possible: bool,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

/// Encodes one RECORD message (`NLM_F_MULTI`), padding zeroed, like
/// `BatchBuilder::push`.
fn push_record(out: &mut Vec<u8>, record: &PacketRecord<'_>, port_id: u32) {
    use abi::record as f;
    let len = abi::NLMSG_HDRLEN + f::SIZE + record.data.len();
    let start = out.len();
    out.resize(start + abi::NLMSG_HDRLEN + f::SIZE, 0);
    NlHeader {
        len: len as u32,
        msg_type: abi::MSG_RECORD,
        flags: abi::NLM_F_MULTI,
        seq: 0,
        pid: port_id,
    }
    .write(&mut out[start..]);
    let r = start + abi::NLMSG_HDRLEN;
    out[f::TSTAMP_NS.at(r)].copy_from_slice(&record.tstamp_ns.to_ne_bytes());
    out[f::IFINDEX.at(r)].copy_from_slice(&record.ifindex.to_ne_bytes());
    out[f::ORIG_LEN.at(r)].copy_from_slice(&record.orig_len.to_ne_bytes());
    out[r + f::HOOK.offset] = record.hook.0;
    out[r + f::FAMILY.offset] = record.family.0;
    out[r + f::PROTOCOL.offset] = record.protocol;
    out.extend_from_slice(record.data);
    out.resize(start + abi::nlmsg_align(len), 0);
}

/// Appends a bare header (and `payload`), padded.
fn push_message(out: &mut Vec<u8>, header: NlHeader, payload: &[u8]) {
    let start = out.len();
    out.resize(start + abi::NLMSG_HDRLEN, 0);
    header.write(&mut out[start..]);
    out.extend_from_slice(payload);
    out.resize(
        start + abi::nlmsg_align(abi::NLMSG_HDRLEN + payload.len()),
        0,
    );
}

impl Hostile {
    /// A builder drawing its records from `synth`, its record counts from
    /// `seed`, sending as `port_id`; `records_possible` tells whether the
    /// filters can let any of `synth`'s packets through.
    pub fn new(synth: PacketSynth, seed: u64, port_id: u32, records_possible: bool) -> Hostile {
        let scratch = vec![0u8; synth.max_len()];
        Hostile {
            synth,
            rng: SplitMix64::new(seed),
            next: 0,
            port_id,
            records_possible,
            buf: Vec::new(),
            scratch,
        }
    }

    /// Appends `n` valid records (passing `filter`, cut at `snaplen`),
    /// stamped from `*ts` on.
    fn records(
        &mut self,
        n: usize,
        filter: &Filter,
        snaplen: usize,
        ts: &mut u64,
        digest: &mut RecordDigest,
    ) {
        if !self.records_possible {
            return;
        }
        for _ in 0..n {
            let p = loop {
                let p = self.synth.next_packet();
                if filter.wanted(&p) {
                    break p;
                }
            };
            let len = p.len.min(snaplen);
            let written = self.synth.write(&p, &mut self.scratch[..len]);
            let record = p.record(*ts, &self.scratch[..written]);
            *ts += 1;
            digest.add(&record);
            push_record(&mut self.buf, &record, self.port_id);
        }
    }

    /// Builds the next hostile datagram; records are stamped from `*ts` on
    /// (left one past the last). Returns it with the digest of its valid
    /// records.
    pub fn build(
        &mut self,
        filter: &Filter,
        snaplen: usize,
        ts: &mut u64,
    ) -> (&[u8], RecordDigest) {
        let port_id = self.port_id;
        let kind = Kind::ALL[self.next % Kind::ALL.len()];
        self.next += 1;
        let v = 1 + self.rng.below(3);
        let mut digest = RecordDigest::default();
        self.buf.clear();
        let header = |len: usize, msg_type: u16| NlHeader {
            len: len as u32,
            msg_type,
            flags: abi::NLM_F_MULTI,
            seq: 0,
            pid: port_id,
        };
        match kind {
            Kind::LengthPastEnd => {
                self.records(v, filter, snaplen, ts, &mut digest);
                // Claims a 4 KiB record; only its header and 40 bytes follow.
                let claimed = abi::NLMSG_HDRLEN + abi::record::SIZE + 4096;
                push_message(&mut self.buf, header(claimed, abi::MSG_RECORD), &[0x5a; 40]);
            }
            Kind::LengthBelowHeader => {
                self.records(v, filter, snaplen, ts, &mut digest);
                push_message(&mut self.buf, header(8, abi::MSG_RECORD), &[]);
            }
            Kind::TrailingBytes => {
                self.records(v, filter, snaplen, ts, &mut digest);
                self.buf.extend_from_slice(&[0xde, 0xad, 0xbe]);
            }
            Kind::UnknownType => {
                self.records(v, filter, snaplen, ts, &mut digest);
                push_message(
                    &mut self.buf,
                    header(abi::NLMSG_HDRLEN + 8, UNKNOWN_TYPE),
                    &[0xa5; 8],
                );
                self.records(v, filter, snaplen, ts, &mut digest);
            }
            Kind::MissingDone => {
                self.records(v, filter, snaplen, ts, &mut digest);
            }
            Kind::Error => {
                // errno, then the header of an imaginary request (not one
                // the recorder sent, so it cannot pass for an ACK).
                let mut payload = [0u8; 4 + abi::NLMSG_HDRLEN];
                payload[..4].copy_from_slice(&(-libc::EIO).to_ne_bytes());
                NlHeader {
                    len: abi::NLMSG_HDRLEN as u32,
                    msg_type: abi::MSG_RECORD,
                    flags: 0,
                    seq: 0,
                    pid: port_id,
                }
                .write(&mut payload[4..]);
                let mut h = header(abi::NLMSG_HDRLEN + payload.len(), abi::NLMSG_ERROR);
                h.flags = 0;
                push_message(&mut self.buf, h, &payload);
            }
            Kind::ShortRecord => {
                self.records(1, filter, snaplen, ts, &mut digest);
                push_message(
                    &mut self.buf,
                    header(abi::NLMSG_HDRLEN + 10, abi::MSG_RECORD),
                    &[0x33; 10],
                );
                self.records(1, filter, snaplen, ts, &mut digest);
            }
            Kind::ShortTrailer => {
                self.records(v, filter, snaplen, ts, &mut digest);
                push_message(
                    &mut self.buf,
                    header(abi::NLMSG_HDRLEN + 4, abi::NLMSG_DONE),
                    &0i32.to_ne_bytes(),
                );
            }
        }
        (&self.buf, digest)
    }
}
