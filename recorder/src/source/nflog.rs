//! The NFLOG source: the kernel's own batching netlink producer
//! (nfnetlink_log), for machines that cannot load the imp2 module.
//!
//! A rule (`nft ... log group N`, `iptables ... -j NFLOG --nflog-group N`)
//! hands packets to the NFLOG instance of group N, which this source creates
//! by BINDing the group on a `NETLINK_NETFILTER` socket. The kernel packs one
//! message per packet into buffers of up to `--nflog-bufsize` bytes and
//! sends a buffer when it is full, holds `--nflog-qthresh` packets, or
//! `--nflog-flush-ms` passed. Every packet carries a per-instance sequence
//! number (from 0 at BIND): a buffer the kernel could not deliver (receive
//! buffer full) leaves a gap in them, which is exactly the number of packets
//! lost. NFLOG counts nothing else: packets the kernel could not even queue
//! (no memory for a buffer) are not seen at all.
//!
//! Stopping sends UNBIND: the kernel flushes the pending buffer to us, then
//! ACKs, so the session drains until that ACK.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use imp2_format::nflog::{ConfigRequest, NflogMessage, NflogWalker, consts};
use netlink_sys::{Socket, SocketAddr};

use crate::log_sink::LogSink;
use crate::session::RunError;
use crate::source::{Source, netlink};
use crate::sys::{poll_readable, recv_datagram, socket_drops};
use bind::explain_bind_errno;
use decode::NflogDecoder;

pub use bind::{COPY_RANGE_MAX, FLUSH_MS_DEFAULT, QTHRESH_DEFAULT, Settings};

mod bind;
mod decode;

/// How long to wait for the kernel's ACK to BIND.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// After this long without a single packet, print the rule hint.
const HINT_AFTER: Duration = Duration::from_secs(3);
/// Largest datagram NFLOG sends: the kernel rounds a buffer of
/// `NFULA_CFG_NLBUFSIZ` bytes (at most 128 KiB) up to its allocation, a
/// power of two, and fills all of it, so up to 256 KiB arrive at once.
const DATAGRAM_MAX: usize = 256 << 10;

/// NFLOG as a source.
#[derive(Debug)]
pub struct NflogSource {
    socket: Socket,
    port_id: u32,
    rcvbuf: usize,
    rcvbuf_capped: bool,
    settings: Settings,
    request_seq: u32,
    decoder: NflogDecoder,
    started: Option<Instant>,
    hint_shown: bool,
}

impl NflogSource {
    /// Opens the `NETLINK_NETFILTER` socket (no request sent yet).
    pub fn open(settings: Settings) -> Result<NflogSource, RunError> {
        settings.validate().map_err(RunError)?;
        let socket = Socket::new(consts::NETLINK_NETFILTER as isize).map_err(|e| {
            RunError(if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                "this kernel has no nfnetlink (CONFIG_NETFILTER_NETLINK): NFLOG is unavailable"
                    .into()
            } else {
                format!("cannot open a NETLINK_NETFILTER socket: {e}")
            })
        })?;
        // Losses are found from sequence gaps, exactly; ENOBUFS would only
        // say "something" was lost (and make the kernel drop more).
        let bound =
            netlink::bind(socket, "NETLINK_NETFILTER", settings.rcvbuf).map_err(RunError)?;
        Ok(NflogSource {
            socket: bound.socket,
            port_id: bound.port_id,
            rcvbuf: bound.rcvbuf,
            rcvbuf_capped: bound.rcvbuf_capped,
            decoder: NflogDecoder::new(&settings),
            settings,
            request_seq: 0,
            started: None,
            hint_shown: false,
        })
    }

    /// Receive buffer granted, bytes.
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Whether `SO_RCVBUFFORCE` was refused and `SO_RCVBUF` used instead.
    pub fn rcvbuf_capped(&self) -> bool {
        self.rcvbuf_capped
    }

    fn send(&mut self, request: &ConfigRequest, what: &str) -> Result<u32, String> {
        self.request_seq += 1;
        let msg = request.to_message(self.request_seq, self.port_id);
        self.socket
            .send_to(&msg, &SocketAddr::new(0, 0), 0)
            .map_err(|e| {
                format!(
                    "cannot send {what} for NFLOG group {}: {e}",
                    self.settings.group
                )
            })?;
        Ok(self.request_seq)
    }

    /// Receives until the ACK of request `seq`; returns its errno (0 or
    /// negative). Packets arriving meanwhile are decoded into `sink`.
    fn wait_ack(&mut self, seq: u32, sink: &mut LogSink) -> Result<i32, RunError> {
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut buf = vec![0u8; DATAGRAM_MAX];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RunError(format!(
                    "the kernel did not answer the NFLOG configuration within {} s",
                    ACK_TIMEOUT.as_secs()
                )));
            }
            if !poll_readable(self.socket.as_raw_fd(), left)
                .map_err(|e| RunError(format!("poll: {e}")))?
            {
                continue;
            }
            let (len, truncated) = match recv_datagram(&self.socket, &mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(RunError(format!("receiving the NFLOG ACK: {e}"))),
            };
            let datagram = &buf[..len.min(buf.len())];
            let mut ack = None;
            let mut others = false;
            for item in NflogWalker::new(datagram).flatten() {
                match item.message {
                    NflogMessage::Error { errno, request }
                        if request.map_or(item.header.seq, |r| r.seq) == seq =>
                    {
                        ack = Some(errno);
                    }
                    _ => others = true,
                }
            }
            if others || ack.is_none() {
                self.decoder.decode(datagram, truncated, sink);
                if let Some(e) = sink.error() {
                    return Err(RunError(e.to_string()));
                }
            }
            if let Some(errno) = ack {
                return Ok(errno);
            }
        }
    }
}

impl Source for NflogSource {
    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    fn datagram_len(&self) -> usize {
        DATAGRAM_MAX
    }

    fn description(&self) -> String {
        format!("nflog group {}", self.settings.group)
    }

    fn tsresol_digits(&self) -> u8 {
        6
    }

    fn snaplen(&self) -> u32 {
        self.settings.copy_range()
    }

    fn start(&mut self, sink: &mut LogSink) -> Result<(), RunError> {
        let seq = self
            .send(&self.settings.bind_request(), "BIND")
            .map_err(RunError)?;
        match self.wait_ack(seq, sink)? {
            0 => {
                self.started = Some(Instant::now());
                Ok(())
            }
            errno => Err(RunError(explain_bind_errno(
                self.settings.group,
                self.port_id,
                -errno,
            ))),
        }
    }

    #[inline]
    fn on_datagram(&mut self, buf: &[u8], truncated: bool, sink: &mut LogSink) {
        self.decoder.decode(buf, truncated, sink)
    }

    fn request_stop(&mut self) -> Result<(), String> {
        let seq = self.send(&ConfigRequest::unbind(self.settings.group), "UNBIND")?;
        self.decoder.unbind_seq = Some(seq);
        Ok(())
    }

    fn stop_acknowledged(&self) -> bool {
        self.decoder.unbind_errno.is_some()
    }

    fn on_tick(&mut self, _sink: &LogSink, notice: &mut dyn FnMut(String)) {
        let Some(started) = self.started else { return };
        // The kernel may hold packets for the whole flush timeout: no hint
        // before it has passed.
        let hint_after = HINT_AFTER.max(Duration::from_millis(
            u64::from(self.settings.flush_ms) + 1000,
        ));
        if self.hint_shown || self.decoder.packets > 0 || started.elapsed() < hint_after {
            return;
        }
        self.hint_shown = true;
        let g = self.settings.group;
        notice(format!(
            "no packets from NFLOG group {g} after {} s: is a rule logging to it in this network \
             namespace? e.g. `nft add rule inet filter input log group {g}` (in an existing \
             table and chain) or `iptables -A INPUT -j NFLOG --nflog-group {g}` \
             (ip6tables for IPv6)",
            hint_after.as_secs()
        ));
    }

    fn summary_fields(&self) -> Vec<(&'static str, serde_json::Value)> {
        let d = &self.decoder;
        let drops = socket_drops(&self.socket);
        vec![
            ("nflog_group", serde_json::json!(self.settings.group)),
            ("nflog_bufsize", serde_json::json!(self.settings.bufsize)),
            ("nflog_qthresh", serde_json::json!(self.settings.qthresh)),
            ("rcvbuf", serde_json::json!(self.rcvbuf)),
            ("nflog_packets", serde_json::json!(d.packets)),
            ("nflog_seq_gaps", serde_json::json!(d.seq_gaps)),
            ("nflog_seq_backwards", serde_json::json!(d.seq_backwards)),
            ("nflog_without_seq", serde_json::json!(d.without_seq)),
            (
                "nflog_receive_time_stamps",
                serde_json::json!(d.receive_time_stamps),
            ),
            ("nflog_not_ip", serde_json::json!(d.not_ip)),
            (
                "nflog_filtered_family",
                serde_json::json!(d.filtered - d.filter_rejected),
            ),
            ("filtered", serde_json::json!(d.filtered)),
            ("filter_rejected", serde_json::json!(d.filter_rejected)),
            ("nflog_other_messages", serde_json::json!(d.other_messages)),
            ("socket_drops", serde_json::json!(drops)),
            ("nflog_hint_shown", serde_json::json!(self.hint_shown)),
        ]
    }

    fn last_malformed(&self) -> Option<String> {
        self.decoder.last_malformed.map(|m| m.to_string())
    }
}
