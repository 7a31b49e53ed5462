//! One recording run: register, receive batches, append records to the log,
//! account for every record not received, and finish cleanly.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imp2_format::PacketRecord;
use imp2_format::log::{Footer, Interface, LogHeader, LogWriter, Losses, WriteError};
use imp2_format::wire::{BatchWalker, Config, Malformed, Message};

use crate::accounting::{TrailerAccounting, TrailerVerdict};
use crate::interfaces::{self, KnownInterfaces};
use crate::netlink::ImpSocket;
use crate::progress::Progress;
use crate::receive::{IoMode, Receiver};
use crate::signals;

/// What the user asked for.
#[derive(Debug)]
pub struct Options {
    /// Log file to write.
    pub output: PathBuf,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Configuration sent with REGISTER.
    pub config: Config,
    /// Receive buffer to ask for, bytes.
    pub rcvbuf: usize,
    /// Netlink unit.
    pub unit: i32,
    /// Producer port id (0 = kernel).
    pub peer: u32,
    /// Receive path.
    pub io: IoMode,
    /// Status line on a terminal.
    pub progress: bool,
}

/// How long to wait for the producer's ACKs.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to drain final batches after UNREGISTER.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often to start writeback of the log's dirty pages.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

/// Result of a run, for the final summary.
#[derive(Debug)]
pub struct Summary {
    /// Footer written to the log (totals and losses).
    pub footer: Footer,
    /// Datagrams (batches) received.
    pub batches: u64,
    /// Bytes received from the socket.
    pub received_bytes: u64,
    /// Records received after `-c` was reached (not written, not lost).
    pub beyond_count: u64,
    /// Receive path used.
    pub io: &'static str,
    /// Receive buffer granted, bytes.
    pub rcvbuf: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Whether the producer acknowledged UNREGISTER.
    pub unregistered: bool,
    /// Trailers whose totals went backwards.
    pub inconsistent_trailers: u64,
    /// Producer CPUs (sequence spaces) seen.
    pub producer_cpus: usize,
    /// The last malformed message seen, if any.
    pub last_malformed: Option<String>,
    /// Why the run stopped.
    pub stopped_by: String,
    /// A write error that ended the run early (the log is still valid).
    pub write_error: Option<String>,
    /// Log file.
    pub output: PathBuf,
}

/// A run that could not start or could not finish its log.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated
    // strings on success.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return (String::new(), String::new());
        }
        let s = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned()
        };
        (s(&u.nodename), s(&u.release))
    }
}

/// The state fed by every received datagram.
#[derive(Debug)]
struct Recording {
    writer: LogWriter,
    accounting: TrailerAccounting,
    known: KnownInterfaces,
    limit: u64,
    written: u64,
    beyond_count: u64,
    batches: u64,
    received_bytes: u64,
    unregister_seq: Option<u32>,
    unregister_acked: bool,
    last_malformed: Option<Malformed>,
    error: Option<WriteError>,
}

impl Recording {
    fn on_datagram(&mut self, buf: &[u8], truncated: bool) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.handle(buf, truncated) {
            self.error = Some(e);
        }
    }

    /// The hot path: walk one batch, append its records, account.
    fn handle(&mut self, buf: &[u8], truncated: bool) -> Result<(), WriteError> {
        self.batches += 1;
        self.received_bytes += buf.len() as u64;
        let mut losses = Losses::default();
        if truncated {
            // Part of the batch is missing, its trailer with it. Nothing in
            // it is kept: the next trailer from its CPU tells exactly how
            // many records it held (they are counted as gap records then).
            losses.truncated_batches = 1;
            return self.writer.add_losses(&losses);
        }
        let mut trailer = None;
        let mut malformed = false;
        let mut records = 0u32;
        let mut late = false;
        for item in BatchWalker::new(buf) {
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
                    self.append(&record)?;
                }
                Message::Done(t) => match self.accounting.on_trailer(&t) {
                    TrailerVerdict::InOrder(l) => {
                        losses.add(&l);
                        trailer = Some(t);
                    }
                    TrailerVerdict::Late => late = true,
                },
                Message::Error { request: Some(req), .. }
                    if Some(req.seq) == self.unregister_seq =>
                {
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
        if records > 0 && trailer.is_none() && !late {
            malformed = true; // a batch must end with its trailer
        }
        if malformed {
            losses.malformed_messages += 1;
        }
        if late {
            self.writer.discard_uncommitted();
            self.written -= u64::from(records).min(self.written);
        } else {
            self.writer.commit()?;
        }
        if !losses.is_zero() {
            self.writer.add_losses(&losses)?;
        }
        Ok(())
    }

    #[inline]
    fn append(&mut self, record: &PacketRecord<'_>) -> Result<(), WriteError> {
        if self.written >= self.limit {
            self.beyond_count += 1;
            return Ok(());
        }
        if !self.known.contains(record.ifindex) {
            self.known.insert(record.ifindex);
            let name = interfaces::name_of(record.ifindex);
            self.writer.add_interface(&Interface { ifindex: record.ifindex, name })?;
        }
        self.writer.append(record)?;
        self.written += 1;
        Ok(())
    }
}

/// Runs one recording to its end.
pub fn run(opts: &Options, notice: &mut dyn FnMut(String)) -> Result<Summary, RunError> {
    let started = Instant::now();
    signals::install().map_err(|e| RunError(format!("cannot install signal handlers: {e}")))?;
    let mut sock =
        ImpSocket::open(opts.unit, opts.peer, opts.rcvbuf).map_err(|e| RunError(e.to_string()))?;
    if sock.rcvbuf_capped {
        notice(format!(
            "SO_RCVBUFFORCE needs CAP_NET_ADMIN; fell back to SO_RCVBUF: the receive buffer is \
             {} bytes (capped by net.core.rmem_max), not {}",
            sock.rcvbuf, opts.rcvbuf
        ));
    }
    let (hostname, kernel_release) = uname();
    let interfaces = interfaces::all();
    let header = LogHeader {
        version: (1, 0),
        created_ns: now_ns(),
        snaplen: opts.config.snaplen,
        source: if opts.peer == 0 {
            format!("imp2 module, netlink unit {}", opts.unit)
        } else {
            format!("imp2 producer port {} on netlink unit {}", opts.peer, opts.unit)
        },
        hostname,
        kernel_release,
        tsresol_digits: 9,
        interfaces: interfaces.clone(),
    };
    let out = opts.output.display();
    let writer = LogWriter::create(&opts.output, &header).map_err(|e| RunError(format!("{e}")))?;
    let mut known = KnownInterfaces::default();
    for i in &interfaces {
        known.insert(i.ifindex);
    }
    let mut rec = Recording {
        writer,
        accounting: TrailerAccounting::default(),
        known,
        limit: opts.count.unwrap_or(u64::MAX),
        written: 0,
        beyond_count: 0,
        batches: 0,
        received_bytes: 0,
        unregister_seq: None,
        unregister_acked: false,
        last_malformed: None,
        error: None,
    };
    if let Err(e) = sock.register(&opts.config, ACK_TIMEOUT, &mut |d, t| rec.on_datagram(d, t)) {
        // Nothing was recorded: leave no empty log behind.
        drop(rec);
        let _ = std::fs::remove_file(&opts.output);
        return Err(RunError(e.to_string()));
    }
    let buf_len = (opts.config.batch_bytes as usize).next_multiple_of(4096);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock.socket);
    let mut receiver = Receiver::new(fd, opts.io, buf_len, notice);
    let mut progress = Progress::new(opts.progress);
    let deadline = opts.duration.map(|d| started + d);
    let mut last_flush = Instant::now();

    let stopped_by = loop {
        if let Some(signal) = signals::stop_requested() {
            break format!("signal {signal}");
        }
        if rec.error.is_some() {
            break "write error".to_string();
        }
        if rec.written >= rec.limit {
            break format!("count {} reached", rec.limit);
        }
        let now = Instant::now();
        let mut wait = Duration::from_millis(250);
        if let Some(deadline) = deadline {
            if now >= deadline {
                break "duration reached".to_string();
            }
            wait = wait.min(deadline - now);
        }
        if let Err(e) = receiver.poll(wait, &mut |d, t| rec.on_datagram(d, t)) {
            break format!("receive error: {e}");
        }
        progress.tick(rec.written, rec.received_bytes, rec.writer.losses());
        if last_flush.elapsed() >= FLUSH_EVERY {
            last_flush = Instant::now();
            if let Err(e) = rec.writer.flush_async() {
                rec.error = Some(e);
            }
        }
    };
    progress.clear();

    // Unregister and drain: the producer flushes its pending batches, then
    // ACKs; everything queued before the ACK is recorded. If the producer is
    // gone already, what it queued is still drained until the socket idles.
    let drain_end = Instant::now() + DRAIN_TIMEOUT;
    let mut drain = |rec: &mut Recording, until_ack: bool| {
        while Instant::now() < drain_end && !(until_ack && rec.unregister_acked) {
            match receiver.poll(Duration::from_millis(100), &mut |d, t| rec.on_datagram(d, t)) {
                Ok(0) if !until_ack => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    match sock.send_unregister() {
        Ok(seq) => {
            rec.unregister_seq = Some(seq);
            drain(&mut rec, true);
        }
        Err(e) => {
            notice(format!("could not unregister: {e}"));
            drain(&mut rec, false);
        }
    }
    let unregistered = rec.unregister_acked;
    if let Err(e) = receiver.shutdown(&mut |d, t| rec.on_datagram(d, t)) {
        notice(format!("stopping the receiver: {e}"));
    }

    let write_error = rec.error.take().map(|e| {
        if e.is_disk_full() {
            format!("{out}: disk full after {} records ({e}); the log holds every record before it", rec.written)
        } else {
            format!("{out}: {e}")
        }
    });
    let batches = rec.batches;
    let received_bytes = rec.received_bytes;
    let beyond_count = rec.beyond_count;
    let inconsistent_trailers = rec.accounting.inconsistent;
    let producer_cpus = rec.accounting.cpus();
    let last_malformed = rec.last_malformed.map(|m| m.to_string());
    let footer = rec.writer.finish(now_ns()).map_err(|e| {
        RunError(match &write_error {
            Some(w) => format!("{w}; closing the log failed too: {e} (its committed part is valid)"),
            None => format!("{out}: closing the log: {e} (its committed part is valid)"),
        })
    })?;
    Ok(Summary {
        footer,
        batches,
        received_bytes,
        beyond_count,
        io: receiver.name(),
        rcvbuf: sock.rcvbuf,
        elapsed: started.elapsed(),
        unregistered,
        inconsistent_trailers,
        producer_cpus,
        last_malformed,
        stopped_by,
        write_error,
        output: opts.output.clone(),
    })
}
