//! The imp2 source: the kernel module (or imp2-loadgen standing in for it)
//! speaking the wire ABI of `kmod/imp2_uapi.h`.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use imp2_format::log::Losses;
use imp2_format::wire::{
    BatchMessage, BatchTrailer, BatchWalker, Config, FrameError, Frames, FramingError,
    MalformedBatch, NlHeader, Register, TRAILER_MESSAGE_LEN, abi,
};

use crate::log_sink::LogSink;
use crate::session::RunError;
use crate::source::Source;
use accounting::{TrailerAccounting, TrailerVerdict};
use socket::ImpSocket;

mod accounting;
pub mod socket;

/// How long to wait for the producer's ACK to REGISTER.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The module as a source.
#[derive(Debug)]
pub struct Imp2Source {
    sock: ImpSocket,
    /// What REGISTER sends: the config and the capture filter.
    register: Register,
    config: Config,
    decoder: BatchDecoder,
    /// Set once the producer's socket is found closed (imp2-loadgen
    /// exited): nothing more can arrive.
    gone: Option<String>,
}

/// Decoding of batches and the state it needs.
#[derive(Debug, Default)]
struct BatchDecoder {
    accounting: TrailerAccounting,
    unregister_seq: Option<u32>,
    unregister_acked: bool,
    last_malformed: Option<MalformedBatch>,
}

impl Imp2Source {
    /// Opens the socket on `unit`, aimed at producer `peer` (0: kernel).
    pub fn open(
        unit: i32,
        peer: u32,
        rcvbuf: usize,
        register: Register,
    ) -> Result<Imp2Source, RunError> {
        let sock = ImpSocket::open(unit, peer, rcvbuf).map_err(|e| RunError(e.to_string()))?;
        Ok(Imp2Source {
            sock,
            config: register.config,
            register,
            decoder: BatchDecoder::default(),
            gone: None,
        })
    }

    /// The socket (receive buffer size, fallbacks).
    pub fn socket(&self) -> &ImpSocket {
        &self.sock
    }
}

impl Source for Imp2Source {
    fn fd(&self) -> RawFd {
        self.sock.socket.as_raw_fd()
    }

    fn datagram_len(&self) -> usize {
        (self.config.batch_bytes as usize).next_multiple_of(4096)
    }

    fn description(&self) -> String {
        if self.sock.peer == 0 {
            format!("imp2 module, netlink unit {}", self.sock.unit)
        } else {
            format!(
                "imp2 producer port {} on netlink unit {}",
                self.sock.peer, self.sock.unit
            )
        }
    }

    fn tsresol_digits(&self) -> u8 {
        9
    }

    fn snaplen(&self) -> u32 {
        self.config.snaplen
    }

    fn start(&mut self, sink: &mut LogSink) -> Result<(), RunError> {
        let decoder = &mut self.decoder;
        self.sock
            .register(&self.register, ACK_TIMEOUT, &mut |d, t| {
                decoder.decode(d, t, sink)
            })
            .map_err(|e| RunError(e.to_string()))?;
        match sink.error() {
            Some(e) => Err(RunError(e.to_string())),
            None => Ok(()),
        }
    }

    #[inline]
    fn on_datagram(&mut self, buf: &[u8], truncated: bool, sink: &mut LogSink) {
        self.decoder.decode(buf, truncated, sink)
    }

    fn request_stop(&mut self) -> Result<(), String> {
        let seq = self.sock.send_unregister().map_err(|e| e.to_string())?;
        self.decoder.unregister_seq = Some(seq);
        Ok(())
    }

    fn stop_acknowledged(&self) -> bool {
        self.decoder.unregister_acked
    }

    fn on_tick(&mut self, _sink: &LogSink, _notice: &mut dyn FnMut(String)) {
        if self.gone.is_none() && self.sock.peer_exists() == Some(false) {
            self.gone = Some(format!(
                "the producer is gone (its socket, port {} on netlink unit {}, was closed)",
                self.sock.peer, self.sock.unit
            ));
        }
    }

    fn gone(&self) -> Option<&str> {
        self.gone.as_deref()
    }

    fn summary_fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            (
                "producer_cpus",
                serde_json::json!(self.decoder.accounting.cpus()),
            ),
            (
                "inconsistent_trailers",
                serde_json::json!(self.decoder.accounting.inconsistent),
            ),
            ("rcvbuf", serde_json::json!(self.sock.rcvbuf)),
        ]
    }

    fn last_malformed(&self) -> Option<String> {
        self.decoder.last_malformed.map(|m| m.to_string())
    }
}

impl BatchDecoder {
    /// The hot path: walk one batch, append its records, account.
    fn decode(&mut self, buf: &[u8], truncated: bool, sink: &mut LogSink) {
        sink.on_datagram(buf.len());
        let mut losses = Losses::default();
        if truncated {
            // Part of the batch is missing, its trailer with it. Nothing in
            // it is kept: the next trailer from its CPU tells exactly how
            // many records it held (they are counted as gap records then).
            losses.truncated_batches = 1;
            sink.add_losses(&losses);
            return;
        }
        // Where the trailer should be, or `None` when the tail does not tell.
        let tail_trailer_at = match tail_trailer(buf) {
            Some((at, t)) if !self.accounting.is_late(&t) => Some(at),
            // A late batch (or bytes that only look like one at the tail):
            // the full pass over the headers decides.
            _ => {
                if let Some(t) = last_trailer(buf) {
                    if self.accounting.is_late(&t) {
                        // Counted as lost when a later batch of its CPU
                        // revealed the gap: keeping it would count its
                        // records twice.
                        self.accounting.on_trailer(&t);
                        return;
                    }
                }
                None
            }
        };
        let mut last_trailer_at = None;
        let mut has_trailer = false;
        let mut malformed = false;
        let mut records = 0u32;
        let mut walker = BatchWalker::new(buf);
        loop {
            // Records take the walker's fast path, straight into the log;
            // everything else (the trailer, errors) comes through `next`.
            if let Some(record) = walker.next_record() {
                records += 1;
                sink.append(&record);
                continue;
            }
            let Some(item) = walker.next() else {
                break;
            };
            let item = match item {
                Ok(item) => item,
                Err(m) => {
                    malformed = true;
                    self.last_malformed = Some(m);
                    continue;
                }
            };
            match item.message {
                BatchMessage::Record(record) => {
                    records += 1;
                    sink.append(&record);
                }
                BatchMessage::Done(t) => {
                    if let TrailerVerdict::InOrder(l) = self.accounting.on_trailer(&t) {
                        losses.add(&l);
                    }
                    has_trailer = true;
                    last_trailer_at = Some(item.offset);
                }
                BatchMessage::Error {
                    request: Some(req), ..
                } if Some(req.seq) == self.unregister_seq => {
                    self.unregister_acked = true;
                }
                BatchMessage::Noop => {}
                // Overruns, stray errors, unknown types: not what a
                // producer of batches sends.
                BatchMessage::Error { .. }
                | BatchMessage::Overrun
                | BatchMessage::Unknown { .. } => {
                    malformed = true;
                }
            }
        }
        // A batch must end with its trailer; a datagram counts once however
        // many things are wrong with it. Bytes at the tail that looked like
        // the trailer but were not the last message's are wrong too: the
        // late-batch check trusted them.
        let tail_misread = tail_trailer_at.is_some() && tail_trailer_at != last_trailer_at;
        if malformed || tail_misread || (records > 0 && !has_trailer) {
            losses.malformed_messages += 1;
        }
        sink.commit();
        sink.add_losses(&losses);
    }
}

/// The trailer ending `buf` and its offset, if the last bytes hold a DONE
/// message of exactly the trailer's size, as every batch of the module and
/// of imp2-loadgen ends. One look at the tail instead of a pass over the
/// message headers ([`last_trailer`]), which is a chain of dependent loads
/// across a batch bigger than L1: about 3 ns a 64-byte record, measured
/// live. Payload bytes can look like this; `decode` checks that the walk
/// ends there.
fn tail_trailer(buf: &[u8]) -> Option<(usize, BatchTrailer)> {
    // So no pad can follow it.
    const _: () = assert!(abi::nlmsg_align(TRAILER_MESSAGE_LEN) == TRAILER_MESSAGE_LEN);
    let at = buf.len().checked_sub(TRAILER_MESSAGE_LEN)?;
    let h = NlHeader::parse(&buf[at..])?;
    if h.msg_type != abi::NLMSG_DONE || h.len as usize != TRAILER_MESSAGE_LEN {
        return None;
    }
    Some((at, BatchTrailer::parse(&buf[at + abi::NLMSG_HDRLEN..])?))
}

/// The trailer ending `buf`, found by hopping over message headers only
/// (a few loads per message; the records themselves are not parsed).
fn last_trailer(buf: &[u8]) -> Option<BatchTrailer> {
    let mut last = None;
    for frame in Frames::new(buf) {
        match frame {
            Ok(frame) if frame.header.msg_type == abi::NLMSG_DONE => {
                last = BatchTrailer::parse(frame.payload);
            }
            Ok(_) => {}
            // Too few bytes for a header after the last message: the hop
            // ends there.
            Err(FrameError {
                error: FramingError::TrailingBytes { .. },
                ..
            }) => break,
            Err(_) => return None,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_format::log::{LogHeader, LogWriter};
    use imp2_format::wire::BatchBuilder;
    use imp2_format::{Family, Hook, PacketRecord};

    use crate::interfaces::KnownInterfaces;

    fn sink(dir: &tempfile::TempDir) -> LogSink {
        let writer = LogWriter::create(&dir.path().join("t.log"), &LogHeader::default()).unwrap();
        let mut known = KnownInterfaces::default();
        known.insert(1);
        LogSink::new(writer, known, u64::MAX)
    }

    fn record(data: &[u8]) -> PacketRecord<'_> {
        PacketRecord {
            tstamp_ns: 1_000,
            ifindex: 1,
            orig_len: data.len() as u32,
            hook: Hook(0),
            family: Family(4),
            protocol: 17,
            data,
        }
    }

    fn trailer(seq: u64) -> BatchTrailer {
        BatchTrailer {
            status: 0,
            cpu: 0,
            seq,
            records: 0,
            flags: 0,
            records_total: 0,
            dropped: [0; abi::DROP_CAUSES],
            dropped_total: [0; abi::DROP_CAUSES],
        }
    }

    /// A batch of `n` records of `data`, numbered `seq` on CPU 0.
    fn batch(seq: u64, n: usize, data: &[u8]) -> Vec<u8> {
        let mut b = BatchBuilder::new(1 << 16, 1000, 7);
        for _ in 0..n {
            b.push(&record(data)).unwrap();
        }
        b.finish(&trailer(seq)).to_vec()
    }

    #[test]
    fn the_tail_look_finds_the_trailer_the_walk_ends_with() {
        for n in [0, 1, 5] {
            let buf = batch(9, n, &[0xab; 61]);
            let (at, t) = tail_trailer(&buf).expect("a batch ends with its trailer");
            assert_eq!(t.seq, 9);
            assert_eq!(Some(t), last_trailer(&buf));
            let done = BatchWalker::new(&buf)
                .map(Result::unwrap)
                .find(|i| matches!(i.message, BatchMessage::Done(_)))
                .unwrap();
            assert_eq!(at, done.offset);
        }
        // Not a trailer of the expected length, or nothing at the end.
        let buf = batch(9, 2, &[0xab; 61]);
        assert_eq!(tail_trailer(&buf[..buf.len() - 4]), None);
        let mut longer = buf.clone();
        let at = longer.len() - TRAILER_MESSAGE_LEN;
        longer[at..at + 4].copy_from_slice(&(TRAILER_MESSAGE_LEN as u32 + 8).to_ne_bytes());
        longer.extend_from_slice(&[0; 8]);
        assert_eq!(tail_trailer(&longer), None);
        assert!(
            last_trailer(&longer).is_some(),
            "the full pass still finds it"
        );
        assert_eq!(tail_trailer(&[]), None);
    }

    /// The bytes of a whole DONE message numbered `seq`, as a record's data.
    fn done_bytes(seq: u64) -> Vec<u8> {
        let mut b = BatchBuilder::new(1 << 16, 1000, 7);
        b.finish(&trailer(seq)).to_vec()
    }

    #[test]
    fn a_late_batch_is_skipped_and_a_tail_that_only_looks_like_a_trailer_is_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = BatchDecoder::default();
        d.decode(&batch(1, 3, &[1; 64]), false, &mut sink);
        d.decode(&batch(3, 3, &[1; 64]), false, &mut sink);
        assert_eq!(sink.written, 6);
        assert_eq!(sink.losses().gap_batches, 1);
        // Batch 2 arrives after batch 3 revealed it lost: not kept.
        d.decode(&batch(2, 3, &[1; 64]), false, &mut sink);
        assert_eq!(sink.written, 6);
        assert_eq!(sink.losses().malformed_messages, 0);

        // Batch 4 without its trailer, its last record ending with the bytes
        // of a trailer numbered 2 (late): the tail look is fooled, the full
        // pass is not; the records are kept and the batch is malformed
        // (no trailer).
        let mut b = BatchBuilder::new(1 << 16, 1000, 7);
        let mut data = vec![0u8; 4];
        data.extend_from_slice(&done_bytes(2));
        b.push(&record(&data)).unwrap();
        let mut buf = b.finish(&trailer(4)).to_vec();
        buf.truncate(buf.len() - TRAILER_MESSAGE_LEN);
        assert!(tail_trailer(&buf).is_some_and(|(_, t)| t.seq == 2));
        assert_eq!(last_trailer(&buf), None);
        d.decode(&buf, false, &mut sink);
        assert_eq!(sink.written, 7);
        assert_eq!(sink.losses().malformed_messages, 1);

        // A whole batch 4, then one more record ending with the bytes of a
        // trailer numbered 5 (in order): the tail look points at those
        // bytes, the walk's trailer is elsewhere. Its records are kept
        // (nothing was late) and the batch is malformed.
        let mut b = BatchBuilder::new(1 << 16, 1000, 7);
        b.push(&record(&[1; 64])).unwrap();
        let mut buf = b.finish(&trailer(4)).to_vec();
        let mut b = BatchBuilder::new(1 << 16, 1000, 7);
        let mut data = vec![0u8; 4];
        data.extend_from_slice(&done_bytes(5));
        b.push(&record(&data)).unwrap();
        let tail = b.finish(&trailer(6));
        buf.extend_from_slice(&tail[..tail.len() - TRAILER_MESSAGE_LEN]);
        assert!(tail_trailer(&buf).is_some_and(|(_, t)| t.seq == 5));
        d.decode(&buf, false, &mut sink);
        assert_eq!(sink.written, 9);
        assert_eq!(sink.losses().malformed_messages, 2);
    }
}
