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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imp2_format::Family;
use imp2_format::log::Losses;
use imp2_format::nflog::{
    ConfigRequest, CopyMode, LoggedPacket, Malformed, Message, PacketParser, Walker, consts,
};
use imp2_format::wire::abi::{FAMILY_F_IPV4, FAMILY_F_IPV6};
use netlink_sys::{Socket, SocketAddr};

use crate::netlink::{poll_readable, recv_datagram, set_rcvbuf};
use crate::session::RunError;
use crate::sink::Sink;
use crate::source::Source;

/// How long to wait for the kernel's ACK to BIND.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// After this long without a single packet, print the rule hint.
const HINT_AFTER: Duration = Duration::from_secs(3);
/// Largest datagram NFLOG sends: the kernel rounds a buffer of
/// `NFULA_CFG_NLBUFSIZ` bytes (at most 128 KiB) up to its allocation, a
/// power of two, and fills all of it, so up to 256 KiB arrive at once.
const DATAGRAM_MAX: usize = 256 << 10;
/// `SO_MEMINFO` (asm-generic/socket.h; the same on x86, arm and powerpc).
const SO_MEMINFO: libc::c_int = 55;
/// `SK_MEMINFO_VARS`
const SK_MEMINFO_VARS: usize = 9;

/// Default queue threshold: high enough that buffers fill by size at high
/// rates.
pub const QTHRESH_DEFAULT: u32 = 4096;
/// Default flush timeout, milliseconds.
pub const FLUSH_MS_DEFAULT: u32 = 100;
/// The most NFLOG copies of a packet: a larger snap length is cut to this.
pub const COPY_RANGE_MAX: u32 = consts::COPY_RANGE_MAX;

/// What the user asked of the NFLOG source.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// The NFLOG group.
    pub group: u16,
    /// Payload bytes to copy per packet (clamped to the kernel's maximum).
    pub snaplen: u32,
    /// Kernel buffer size in bytes (4096-131072; wider as typed, so that
    /// `validate` can name what the user asked for).
    pub bufsize: usize,
    /// Packets per kernel buffer at most.
    pub qthresh: u32,
    /// Flush timeout in milliseconds (rounded to the kernel's 10 ms unit).
    pub flush_ms: u32,
    /// Socket receive buffer, bytes.
    pub rcvbuf: usize,
    /// `FAMILY_F_*` bits: families to record (others are skipped).
    pub families: u32,
}

impl Settings {
    /// Checks the ranges the kernel enforces (it silently ignores a bad
    /// buffer size instead of refusing it).
    pub fn validate(&self) -> Result<(), String> {
        let (lo, hi) = (consts::NLBUFSIZ_MIN, consts::NLBUFSIZ_MAX);
        if !(lo as usize..=hi as usize).contains(&self.bufsize) {
            return Err(format!(
                "--nflog-bufsize must be {lo}-{hi} bytes, not {}",
                self.bufsize
            ));
        }
        if self.qthresh == 0 {
            return Err("--nflog-qthresh must be at least 1".into());
        }
        if self.snaplen == 0 {
            return Err("--snaplen must be at least 1".into());
        }
        Ok(())
    }

    fn copy_range(&self) -> u32 {
        self.snaplen.min(COPY_RANGE_MAX)
    }

    /// The BIND request with every setting: the kernel applies them all in
    /// one step, so no packet is copied with the defaults in between.
    fn bind_request(&self) -> ConfigRequest {
        ConfigRequest {
            family: consts::AF_UNSPEC,
            group: self.group,
            command: Some(consts::CMD_BIND),
            mode: Some(CopyMode {
                mode: consts::COPY_PACKET,
                range: self.copy_range(),
            }),
            // `NflogSource::open` validates before binding, so this fits;
            // the fallback only keeps the conversion total.
            nlbufsiz: Some(u32::try_from(self.bufsize).unwrap_or(u32::MAX)),
            timeout: Some(self.flush_ms.div_ceil(10)),
            qthresh: Some(self.qthresh),
            flags: Some(consts::CFG_F_SEQ),
        }
    }
}

/// NFLOG as a source.
#[derive(Debug)]
pub struct NflogSource {
    socket: Socket,
    port_id: u32,
    rcvbuf: usize,
    rcvbuf_capped: bool,
    settings: Settings,
    request_seq: u32,
    decoder: Decoder,
    started: Option<Instant>,
    hint_shown: bool,
}

/// Decoding of datagrams and the state it needs.
#[derive(Debug)]
struct Decoder {
    group: u16,
    families: u32,
    /// The sequence number the next packet should carry.
    next_seq: u32,
    /// Packets seen (recorded, filtered or skipped).
    packets: u64,
    /// Gaps found in the sequence numbers.
    seq_gaps: u64,
    /// Sequence numbers that went backwards (never from a sane kernel).
    seq_backwards: u64,
    /// Packets without a sequence number (never from a sane kernel).
    without_seq: u64,
    /// Records stamped with the receive time (no kernel timestamp).
    receive_time_stamps: u64,
    /// Packets of families other than IPv4/IPv6 (ARP, bridge rules).
    not_ip: u64,
    /// Packets of a family not selected with `--family`.
    filtered: u64,
    /// Messages of other types or groups.
    other_messages: u64,
    unbind_seq: Option<u32>,
    unbind_errno: Option<i32>,
    last_malformed: Option<Malformed>,
    /// Message layouts learnt so far (the fast path of the parse).
    parser: PacketParser,
}

impl NflogSource {
    /// Opens the `NETLINK_NETFILTER` socket (no request sent yet).
    pub fn open(settings: Settings) -> Result<NflogSource, RunError> {
        settings.validate().map_err(RunError)?;
        let mut socket = Socket::new(consts::NETLINK_NETFILTER as isize).map_err(|e| {
            RunError(if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) {
                "this kernel has no nfnetlink (CONFIG_NETFILTER_NETLINK): NFLOG is unavailable"
                    .into()
            } else {
                format!("cannot open a NETLINK_NETFILTER socket: {e}")
            })
        })?;
        let addr = socket
            .bind_auto()
            .map_err(|e| RunError(format!("cannot bind the NETLINK_NETFILTER socket: {e}")))?;
        let rcvbuf_capped = set_rcvbuf(&socket, settings.rcvbuf).map_err(|e| {
            RunError(format!(
                "cannot set the receive buffer to {} bytes: {e}",
                settings.rcvbuf
            ))
        })?;
        let rcvbuf = socket
            .get_rx_buf_sz()
            .map_err(|e| RunError(format!("cannot read the receive buffer size: {e}")))?;
        // Losses are found from sequence gaps, exactly; ENOBUFS would only
        // say "something" was lost (and make the kernel drop more).
        socket
            .set_no_enobufs(true)
            .map_err(|e| RunError(format!("cannot set NETLINK_NO_ENOBUFS: {e}")))?;
        Ok(NflogSource {
            socket,
            port_id: addr.port_number(),
            rcvbuf,
            rcvbuf_capped,
            settings,
            request_seq: 0,
            decoder: NflogSource::decoder(&settings),
            started: None,
            hint_shown: false,
        })
    }

    /// The decoder's initial state for `settings`.
    fn decoder(settings: &Settings) -> Decoder {
        Decoder {
            group: settings.group,
            families: settings.families,
            next_seq: 0,
            packets: 0,
            seq_gaps: 0,
            seq_backwards: 0,
            without_seq: 0,
            receive_time_stamps: 0,
            not_ip: 0,
            filtered: 0,
            other_messages: 0,
            unbind_seq: None,
            unbind_errno: None,
            last_malformed: None,
            parser: PacketParser::default(),
        }
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
    fn wait_ack(&mut self, seq: u32, sink: &mut Sink) -> Result<i32, RunError> {
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
            for item in Walker::new(datagram).flatten() {
                match item.message {
                    Message::Error { errno, request }
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

    fn explain_bind_errno(&self, errno: i32) -> String {
        let group = self.settings.group;
        match errno {
            libc::EPERM => explain_eperm(group, self.port_id),
            libc::EBUSY => format!("NFLOG group {group} is already bound by this socket"),
            // nfnetlink found no "log" subsystem and could not load it.
            libc::EINVAL | libc::EAGAIN => "the kernel's NFLOG (nfnetlink_log) is not available: \
                                            load it with `modprobe nfnetlink_log`"
                .into(),
            e => format!(
                "the kernel refused to bind NFLOG group {group}: {}",
                io::Error::from_raw_os_error(e)
            ),
        }
    }

    /// Receive drops of the socket (datagrams), from `SO_MEMINFO`.
    fn socket_drops(&self) -> Option<u32> {
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: info is writable for len bytes and len is passed by
        // pointer as getsockopt requires; the fd is our open socket.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        (rc == 0 && len as usize >= std::mem::size_of_val(&info)).then_some(info[8])
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

    fn start(&mut self, sink: &mut Sink) -> Result<(), RunError> {
        let seq = self
            .send(&self.settings.bind_request(), "BIND")
            .map_err(RunError)?;
        match self.wait_ack(seq, sink)? {
            0 => {
                self.started = Some(Instant::now());
                Ok(())
            }
            errno => Err(RunError(self.explain_bind_errno(-errno))),
        }
    }

    #[inline]
    fn on_datagram(&mut self, buf: &[u8], truncated: bool, sink: &mut Sink) {
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

    fn on_tick(&mut self, _sink: &Sink, notice: &mut dyn FnMut(String)) {
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
        let drops = self.socket_drops();
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
            ("nflog_filtered_family", serde_json::json!(d.filtered)),
            ("nflog_other_messages", serde_json::json!(d.other_messages)),
            ("socket_drops", serde_json::json!(drops)),
            ("nflog_hint_shown", serde_json::json!(self.hint_shown)),
        ]
    }

    fn last_malformed(&self) -> Option<String> {
        self.decoder.last_malformed.map(|m| m.to_string())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Decoder {
    fn wants(&self, family: Family) -> bool {
        let bit = if family == Family::IPV4 {
            FAMILY_F_IPV4
        } else {
            FAMILY_F_IPV6
        };
        self.families & bit != 0
    }

    /// One packet of our group: sequence accounting, time, family filter,
    /// then the log. `losses` collects this datagram's gaps;
    /// `received_ns` is the datagram's receive time, read at most once.
    #[inline(always)]
    fn on_packet(
        &mut self,
        p: LoggedPacket<'_>,
        losses: &mut Losses,
        received_ns: &mut Option<u64>,
        sink: &mut Sink,
    ) {
        self.packets += 1;
        match p.seq {
            Some(seq) => {
                let gap = seq.wrapping_sub(self.next_seq);
                if gap != 0 {
                    if gap < 1 << 31 {
                        losses.gap_records += u64::from(gap);
                        losses.gap_batches += 1;
                        self.seq_gaps += 1;
                    } else {
                        self.seq_backwards += 1;
                    }
                }
                self.next_seq = seq.wrapping_add(1);
            }
            None => self.without_seq += 1,
        }
        if !p.has_timestamp {
            self.receive_time_stamps += 1;
        }
        match p.record {
            Ok(mut record) if self.wants(record.family) => {
                if !p.has_timestamp {
                    // The send hooks carry no kernel time stamp: the
                    // datagram's receive time (CLOCK_REALTIME) stands in.
                    record.tstamp_ns = *received_ns.get_or_insert_with(now_ns);
                }
                sink.append(&record);
            }
            Ok(_) => self.filtered += 1,
            Err(_) => self.not_ip += 1,
        }
    }

    /// The hot path: walk one datagram, append its records, account.
    fn decode(&mut self, buf: &[u8], truncated: bool, sink: &mut Sink) {
        sink.on_datagram(buf.len());
        let mut losses = Losses::default();
        if truncated {
            // The messages that fit are kept; the cut ones show up as a
            // sequence gap at the next packet.
            losses.truncated_batches = 1;
        }
        let mut malformed = false;
        // CLOCK_REALTIME when this datagram was handled, read once, only if
        // a packet lacks the kernel's timestamp.
        let mut received_ns = None;
        // The parser keeps the layouts it learnt across datagrams.
        let mut walker = Walker::with_parser(buf, self.parser);
        loop {
            // Packets of the usual shape take the fast path; everything
            // else (new shapes, DONE, ACKs, errors) comes through `next`.
            if let Some(p) = walker.next_packet() {
                if p.group == self.group {
                    self.on_packet(p, &mut losses, &mut received_ns, sink);
                } else {
                    self.other_messages += 1;
                }
                continue;
            }
            let Some(item) = walker.next() else {
                break;
            };
            let item = match item {
                Ok(item) => item,
                // The cut end of a truncated datagram is not malformed.
                Err(m) if truncated && !m.reason.is_recoverable() => continue,
                Err(m) => {
                    malformed = true;
                    self.last_malformed = Some(m);
                    continue;
                }
            };
            match item.message {
                Message::Packet(p) if p.group == self.group => {
                    self.on_packet(p.logged(), &mut losses, &mut received_ns, sink);
                }
                Message::Error { errno, request } => {
                    // The kernel includes the request's header; its seq is
                    // also in the ACK's own header.
                    let seq = request.map_or(item.header.seq, |r| r.seq);
                    if self.unbind_seq == Some(seq) {
                        self.unbind_errno = Some(errno);
                    } else {
                        self.other_messages += 1;
                    }
                }
                Message::Done | Message::Noop => {}
                Message::Packet(_) | Message::Overrun | Message::Other { .. } => {
                    self.other_messages += 1;
                }
            }
        }
        self.parser = walker.parser();
        if malformed {
            losses.malformed_messages += 1;
        }
        sink.commit();
        sink.add_losses(&losses);
    }
}

/// Why BIND answered EPERM: the group belongs to another socket, or we lack
/// CAP_NET_ADMIN. `/proc/net/netfilter/nfnetlink_log` (readable by root)
/// names the group's owner; our own effective capabilities tell the rest.
fn explain_eperm(group: u16, own_port: u32) -> String {
    let no_cap = "configuring NFLOG needs CAP_NET_ADMIN: run imp2-record as root or give it \
                  cap_net_admin (setcap cap_net_admin+ep imp2-record)";
    match group_owner(group) {
        Some(port) if port != own_port => {
            let who = match process_of_netlink_port(port) {
                Some((pid, name)) => format!("{name}, pid {pid}"),
                None => format!("netlink port {port}; ulogd?"),
            };
            format!(
                "NFLOG group {group} is already bound by another program ({who}): stop it or \
                 record another group with --source nflog:GROUP"
            )
        }
        _ => match has_net_admin() {
            Some(false) => no_cap.into(),
            Some(true) => format!(
                "NFLOG group {group} is already bound by another program (ulogd?): stop it or \
                 record another group with --source nflog:GROUP"
            ),
            None => format!(
                "binding NFLOG group {group} was refused (EPERM): {no_cap}; or another program \
                 (ulogd?) holds the group"
            ),
        },
    }
}

/// Whether this process has CAP_NET_ADMIN in its effective set (`CapEff`
/// of `/proc/self/status`); `None` when that cannot be read.
fn has_net_admin() -> Option<bool> {
    const CAP_NET_ADMIN: u32 = 12;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << CAP_NET_ADMIN) != 0)
}

const NFNETLINK_LOG_PROC: &str = "/proc/net/netfilter/nfnetlink_log";

/// The netlink port bound to `group` in this network namespace
/// (`/proc/net/netfilter/nfnetlink_log`: group, port id, queue length, copy
/// mode, copy range, flush timeout, use count).
fn group_owner(group: u16) -> Option<u32> {
    let table = std::fs::read_to_string(NFNETLINK_LOG_PROC).ok()?;
    table.lines().find_map(|line| {
        let mut f = line.split_whitespace();
        let g = f.next()?.parse::<u16>().ok()?;
        let port = f.next()?.parse::<u32>().ok()?;
        (g == group).then_some(port)
    })
}

/// The process holding the NETLINK_NETFILTER socket with port `port`:
/// its inode from `/proc/net/netlink`, then the process with that socket
/// among its descriptors.
fn process_of_netlink_port(port: u32) -> Option<(u32, String)> {
    let netlink = std::fs::read_to_string("/proc/net/netlink").ok()?;
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    let inode = netlink.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let proto = f.get(1)?.parse::<i32>().ok()?;
        let pid = f.get(2)?.parse::<u32>().ok()?;
        (proto == consts::NETLINK_NETFILTER && pid == port)
            .then(|| f.last().map(|s| s.to_string()))?
    })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some((pid, name));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use imp2_format::log::{LogHeader, LogWriter, StopCause, StopReason};
    use imp2_format::nflog::{PacketMessage, Timestamp, emit_done};
    use imp2_format::wire::NlHeader;

    use crate::interfaces::KnownInterfaces;

    const IP: [u8; 28] = [
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 199, 0, 1, 10, 199, 0, 2, 0x30, 0x39, 0x27,
        0x0f, 0, 8, 0, 0,
    ];

    fn decoder(families: u32) -> Decoder {
        let settings = Settings {
            group: 3,
            snaplen: 100,
            bufsize: 131_072,
            qthresh: 10,
            flush_ms: 100,
            rcvbuf: 1 << 20,
            families,
        };
        NflogSource::decoder(&settings)
    }

    fn sink(dir: &tempfile::TempDir) -> Sink {
        let header = LogHeader {
            tsresol_digits: 6,
            ..Default::default()
        };
        let writer = LogWriter::create(&dir.path().join("t.log"), &header).unwrap();
        let mut known = KnownInterfaces::default();
        known.insert(1);
        Sink::new(writer, known, u64::MAX)
    }

    fn packet(seq: u32, family: u8, stamped: bool) -> PacketMessage<'static> {
        PacketMessage {
            family,
            group: 3,
            hw_protocol: 0x0800,
            hook: if stamped { 1 } else { 3 },
            indev: Some(1),
            outdev: Some(1),
            timestamp: stamped.then_some(Timestamp { sec: 7, usec: 8 }),
            seq: Some(seq),
            payload: Some(&IP),
            ..Default::default()
        }
    }

    fn datagram(seqs: impl IntoIterator<Item = u32>) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in seqs {
            packet(seq, consts::AF_INET, true).emit(&mut buf);
        }
        emit_done(3, &mut buf);
        buf
    }

    #[test]
    fn sequence_gaps_are_lost_packets() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4 | FAMILY_F_IPV6);
        // Packets 0-2, then 3-5 lost (a buffer the kernel could not
        // deliver), then 6-7; then 8-9 lost and 10.
        d.decode(&datagram(0..3), false, &mut sink);
        d.decode(&datagram(6..8), false, &mut sink);
        d.decode(&datagram([10]), false, &mut sink);
        assert_eq!(sink.written, 6);
        assert_eq!(sink.losses().gap_records, 5);
        assert_eq!(sink.losses().gap_batches, 2);
        assert_eq!((d.seq_gaps, d.seq_backwards, d.packets), (2, 0, 6));
    }

    #[test]
    fn the_first_packet_is_seq_0_and_wraparound_is_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        // Two packets logged before the first one received were lost.
        d.decode(&datagram([2]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        d.next_seq = u32::MAX - 1;
        d.decode(&datagram([u32::MAX - 1, u32::MAX, 0, 1]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        // Going backwards is counted, never turned into a huge loss.
        d.decode(&datagram([0]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 2);
        assert_eq!(d.seq_backwards, 1);
        assert_eq!(sink.written, 6);
    }

    #[test]
    fn families_timestamps_and_other_messages_are_sorted_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        let mut buf = Vec::new();
        packet(0, consts::AF_INET, false).emit(&mut buf); // recorded, receive time
        packet(1, consts::AF_INET6, true).emit(&mut buf); // --family 4: filtered
        packet(2, 7, true).emit(&mut buf); // bridge/ARP family: not IP
        let mut other = packet(3, consts::AF_INET, true);
        other.group = 4; // another group: not ours
        other.emit(&mut buf);
        let before = now_ns();
        d.decode(&buf, false, &mut sink);
        assert_eq!(sink.written, 1);
        assert_eq!(
            (
                d.receive_time_stamps,
                d.filtered,
                d.not_ip,
                d.other_messages
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(d.packets, 3);
        assert!(sink.losses().is_zero(), "{:?}", sink.losses());
        let stop = StopReason::new(StopCause::Signal, "SIGINT");
        let footer = sink.finish(now_ns(), stop.clone()).0.unwrap();
        assert!(footer.first_ns >= before, "receive time used: {footer:?}");
        assert_eq!(footer.stop, Some(stop));
    }

    #[test]
    fn truncated_and_malformed_datagrams_are_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        let full = datagram(0..3);
        // Cut inside the third message: two kept, the cut is not malformed.
        d.decode(&full[..full.len() - 40], true, &mut sink);
        assert_eq!(sink.written, 2);
        assert_eq!(sink.losses().truncated_batches, 1);
        assert_eq!(sink.losses().malformed_messages, 0);
        // The next packet reveals the cut one as a gap.
        d.decode(&datagram([3]), false, &mut sink);
        assert_eq!(sink.losses().gap_records, 1);
        // A packet message without its header attribute: malformed, once.
        let mut bad = datagram(4..6);
        bad[22] = 0xee; // retype NFULA_PACKET_HDR of the first message
        d.decode(&bad, false, &mut sink);
        assert_eq!(sink.losses().malformed_messages, 1);
        assert_eq!(sink.written, 4);
        assert!(d.last_malformed.is_some());
    }

    #[test]
    fn the_unbind_ack_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = sink(&dir);
        let mut d = decoder(FAMILY_F_IPV4);
        d.unbind_seq = Some(9);
        let ack = |seq: u32| {
            let mut b = vec![0u8; 36];
            NlHeader {
                len: 36,
                msg_type: 2,
                flags: 0,
                seq,
                pid: 0,
            }
            .write(&mut b);
            NlHeader {
                len: 28,
                msg_type: consts::MSG_CONFIG,
                flags: 5,
                seq,
                pid: 1,
            }
            .write(&mut b[20..]);
            b
        };
        d.decode(&ack(8), false, &mut sink);
        assert_eq!(d.unbind_errno, None);
        assert_eq!(d.other_messages, 1);
        d.decode(&ack(9), false, &mut sink);
        assert_eq!(d.unbind_errno, Some(0));
    }

    #[test]
    fn settings_are_checked_and_the_bind_carries_them_all() {
        let ok = Settings {
            group: 5,
            snaplen: 70_000,
            bufsize: 131_072,
            qthresh: 4096,
            flush_ms: 95,
            rcvbuf: 1 << 20,
            families: FAMILY_F_IPV4,
        };
        assert!(ok.validate().is_ok());
        assert!(
            Settings {
                bufsize: 4095,
                ..ok
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                bufsize: 131_073,
                ..ok
            }
            .validate()
            .is_err()
        );
        assert!(Settings { qthresh: 0, ..ok }.validate().is_err());
        let bind = ok.bind_request();
        assert_eq!(bind.command, Some(consts::CMD_BIND));
        assert_eq!(
            bind.mode,
            Some(CopyMode {
                mode: consts::COPY_PACKET,
                range: 65_531
            })
        );
        assert_eq!(bind.timeout, Some(10), "95 ms rounds up to 10 hundredths");
        assert_eq!(bind.flags, Some(consts::CFG_F_SEQ));
        assert_eq!(bind.nlbufsiz, Some(131_072));
        assert_eq!(bind.qthresh, Some(4096));
    }
}
