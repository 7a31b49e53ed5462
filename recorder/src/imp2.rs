//! The imp2 source: the kernel module (or imp2-loadgen standing in for it)
//! speaking the wire ABI of `kmod/imp2_uapi.h`.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use imp2_format::log::{Losses, WriteError};
use imp2_format::wire::{BatchTrailer, BatchWalker, Config, Malformed, Message, NlHeader, abi};

use crate::accounting::{TrailerAccounting, TrailerVerdict};
use crate::netlink::ImpSocket;
use crate::session::RunError;
use crate::sink::Sink;
use crate::source::Source;

/// How long to wait for the producer's ACK to REGISTER.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The module as a source.
#[derive(Debug)]
pub struct Imp2Source {
    sock: ImpSocket,
    config: Config,
    decoder: Decoder,
}

/// Decoding of batches and the state it needs.
#[derive(Debug, Default)]
struct Decoder {
    accounting: TrailerAccounting,
    unregister_seq: Option<u32>,
    unregister_acked: bool,
    last_malformed: Option<Malformed>,
}

impl Imp2Source {
    /// Opens the socket on `unit`, aimed at producer `peer` (0: kernel).
    pub fn open(
        unit: i32,
        peer: u32,
        rcvbuf: usize,
        config: Config,
    ) -> Result<Imp2Source, RunError> {
        let sock = ImpSocket::open(unit, peer, rcvbuf).map_err(|e| RunError(e.to_string()))?;
        Ok(Imp2Source {
            sock,
            config,
            decoder: Decoder::default(),
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

    fn start(&mut self, sink: &mut Sink) -> Result<(), RunError> {
        let mut write_error = None;
        let decoder = &mut self.decoder;
        self.sock
            .register(&self.config, ACK_TIMEOUT, &mut |d, t| {
                if write_error.is_none() {
                    write_error = decoder.decode(d, t, sink).err();
                }
            })
            .map_err(|e| RunError(e.to_string()))?;
        match write_error {
            Some(e) => Err(RunError(e.to_string())),
            None => Ok(()),
        }
    }

    #[inline]
    fn on_datagram(
        &mut self,
        buf: &[u8],
        truncated: bool,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
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

    fn summary_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("producer_cpus", self.decoder.accounting.cpus().to_string()),
            (
                "inconsistent_trailers",
                self.decoder.accounting.inconsistent.to_string(),
            ),
            ("rcvbuf", self.sock.rcvbuf.to_string()),
        ]
    }

    fn last_malformed(&self) -> Option<String> {
        self.decoder.last_malformed.map(|m| m.to_string())
    }
}

impl Decoder {
    /// The hot path: walk one batch, append its records, account.
    fn decode(&mut self, buf: &[u8], truncated: bool, sink: &mut Sink) -> Result<(), WriteError> {
        sink.on_datagram(buf.len());
        let mut losses = Losses::default();
        if truncated {
            // Part of the batch is missing, its trailer with it. Nothing in
            // it is kept: the next trailer from its CPU tells exactly how
            // many records it held (they are counted as gap records then).
            losses.truncated_batches = 1;
            return sink.add_losses(&losses);
        }
        if let Some(t) = last_trailer(buf) {
            if self.accounting.is_late(&t) {
                // Counted as lost when a later batch of its CPU revealed the
                // gap: keeping it would count its records twice.
                self.accounting.on_trailer(&t);
                return Ok(());
            }
        }
        let mut has_trailer = false;
        let mut malformed = false;
        let mut records = 0u32;
        let mut walker = BatchWalker::new(buf);
        loop {
            // Records take the walker's fast path, straight into the log;
            // everything else (the trailer, errors) comes through `next`.
            if let Some(record) = walker.next_record() {
                records += 1;
                sink.append(&record)?;
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
                Message::Record(record) => {
                    records += 1;
                    sink.append(&record)?;
                }
                Message::Done(t) => {
                    if let TrailerVerdict::InOrder(l) = self.accounting.on_trailer(&t) {
                        losses.add(&l);
                    }
                    has_trailer = true;
                }
                Message::Error {
                    request: Some(req), ..
                } if Some(req.seq) == self.unregister_seq => {
                    self.unregister_acked = true;
                }
                Message::Noop => {}
                // Overruns, stray errors, unknown types: not what a
                // producer of batches sends.
                Message::Error { .. } | Message::Overrun | Message::Unknown { .. } => {
                    malformed = true;
                }
            }
        }
        // A batch must end with its trailer; a datagram counts once however
        // many things are wrong with it.
        if malformed || (records > 0 && !has_trailer) {
            losses.malformed_messages += 1;
        }
        sink.commit()?;
        sink.add_losses(&losses)
    }
}

/// The trailer ending `buf`, found by hopping over message headers only
/// (a few loads per message; the records themselves are not parsed).
fn last_trailer(buf: &[u8]) -> Option<BatchTrailer> {
    let mut pos = 0usize;
    let mut last = None;
    while let Some(h) = buf.get(pos..).and_then(NlHeader::parse) {
        let len = h.len as usize;
        if len < abi::NLMSG_HDRLEN || len > buf.len() - pos {
            return None;
        }
        if h.msg_type == abi::NLMSG_DONE {
            last = BatchTrailer::parse(&buf[pos + abi::NLMSG_HDRLEN..pos + len]);
        }
        pos += abi::nlmsg_align(len);
    }
    last
}
