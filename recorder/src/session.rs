//! One recording run, whatever the source: start it, receive datagrams,
//! hand them to the source's decoder, report progress, stop and drain
//! cleanly, and finish the log.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use imp2_format::export::io_reason;
use imp2_format::log::{
    Footer, LogHeader, LogWriter, StopCause, StopReason, WriteError, WriteMode, WriterOptions,
};

use crate::interfaces::{self, KnownInterfaces};
use crate::log_sink::LogSink;
use crate::progress::Progress;
use crate::receive::{IoMode, Receiver};
use crate::signals;
use crate::source::Source;
use crate::sys::{cpu_time, now_ns, uname};

/// What the user asked for.
#[derive(Debug)]
pub struct Options {
    /// Log file to write.
    pub output: PathBuf,
    /// The capture filter in words, for the log's source description.
    pub filter: Option<String>,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Receive path.
    pub io: IoMode,
    /// How the log is written.
    pub write_mode: WriteMode,
    /// Status line on a terminal.
    pub progress: bool,
}

/// How long to empty the socket before asking the producer to stop.
const PREDRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to drain final batches after UNREGISTER.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often to start writeback of the log's dirty pages.
const FLUSH_EVERY: Duration = Duration::from_secs(2);
/// With direct I/O, how often to write what is committed even if less than
/// a buffer: bounds what a crash loses when traffic is slow.
const DIRECT_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Result of a run, for the final summary.
#[derive(Debug)]
pub struct SessionSummary {
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
    /// Its buffers: how many, and bytes each (sized from the CPU's cache).
    pub receive_buffers: (usize, usize),
    /// How the log was written: `pwrite` or `direct`.
    pub write: &'static str,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU time (user, system) the recorder used.
    pub cpu: (Duration, Duration),
    /// Whether the producer acknowledged UNREGISTER.
    pub unregistered: bool,
    /// Whether the run ended because the producer went away (then there
    /// was nobody to unregister from).
    pub producer_gone: bool,
    /// Whether the stop request (UNREGISTER, UNBIND) was sent; if it could
    /// not be, that was said when it failed.
    pub stop_requested: bool,
    /// Source-specific facts, `(key, JSON value)`.
    pub source_fields: Vec<(&'static str, serde_json::Value)>,
    /// The last malformed message seen, if any.
    pub last_malformed: Option<String>,
    /// Why the run stopped, as the log's footer records it.
    pub stop: StopReason,
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

/// The stop reason of a write error: the OS's text alone (e.g. "No space
/// left on device"), without the writer's context (which names the file,
/// known to whoever reads it) or Rust's "(os error 28)".
fn write_error_reason(e: &WriteError) -> StopReason {
    StopReason::new(StopCause::WriteError, io_reason(&e.source))
}

/// Runs one recording from `source` to its end.
pub fn run(
    opts: &Options,
    source: &mut dyn Source,
    notice: &mut dyn FnMut(String),
) -> Result<SessionSummary, RunError> {
    let started = Instant::now();
    signals::install().map_err(|e| RunError(format!("cannot install signal handlers: {e}")))?;
    let (hostname, kernel_release) = uname();
    let interfaces = interfaces::all();
    let header = LogHeader {
        created_ns: now_ns(),
        snaplen: source.snaplen(),
        source: match &opts.filter {
            Some(filter) => format!("{}; {filter}", source.description()),
            None => source.description(),
        },
        hostname,
        kernel_release,
        tsresol_digits: source.tsresol_digits(),
        interfaces: interfaces.clone(),
    };
    let out = opts.output.display();
    let writer_options = WriterOptions {
        mode: opts.write_mode,
        ..WriterOptions::default()
    };
    let writer = LogWriter::create_with(&opts.output, &header, writer_options).map_err(|e| {
        let no_direct_io =
            opts.write_mode == WriteMode::Direct && e.source.raw_os_error() == Some(libc::EINVAL);
        let hint = if no_direct_io {
            "; run without --direct"
        } else {
            ""
        };
        RunError(format!("{e}{hint}"))
    })?;
    let flush_every = match opts.write_mode {
        WriteMode::Direct => DIRECT_FLUSH_EVERY,
        _ => FLUSH_EVERY,
    };
    let mut known = KnownInterfaces::default();
    for i in &interfaces {
        known.insert(i.ifindex);
    }
    let mut sink = LogSink::new(writer, known, opts.count.unwrap_or(u64::MAX));
    if let Err(e) = source.start(&mut sink) {
        // Nothing was recorded: leave no empty log behind.
        drop(sink);
        let _ = std::fs::remove_file(&opts.output);
        return Err(e);
    }
    let mut receiver = Receiver::new(source.fd(), opts.io, source.datagram_len(), notice);
    let mut progress = Progress::new(opts.progress, sink.log_bytes());
    let deadline = opts.duration.map(|d| started + d);
    let mut last_flush = Instant::now();
    let mut last_tick = Instant::now();

    let stop = loop {
        if let Some(signal) = signals::stop_requested() {
            break StopReason::new(StopCause::Signal, signals::name(signal));
        }
        if let Some(e) = sink.error() {
            break write_error_reason(e);
        }
        if sink.limit_reached() {
            let asked = opts.count.unwrap_or(sink.written);
            break StopReason::new(StopCause::Count, asked.to_string());
        }
        let now = Instant::now();
        // Short enough that the periodic flush keeps its period when idle.
        let mut wait = Duration::from_millis(250).min(flush_every);
        if let Some(deadline) = deadline {
            if now >= deadline {
                let asked = opts.duration.unwrap_or_default().as_secs_f64();
                break StopReason::new(StopCause::Duration, format!("{asked} s"));
            }
            wait = wait.min(deadline - now);
        }
        let idle = match receiver.poll(wait, &mut |d, t| source.on_datagram(d, t, &mut sink)) {
            Ok(delivered) => delivered == 0,
            Err(e) => break StopReason::new(StopCause::ReceiveError, e.to_string()),
        };
        progress.tick(&sink);
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            source.on_tick(&sink, notice);
        }
        // A producer that went away may have left batches queued: the run
        // ends once the socket has nothing more (no time bound on that).
        if idle && let Some(why) = source.gone() {
            notice(format!("{why}: nothing more can arrive; closing the log"));
            break StopReason::new(StopCause::ReceiveError, why.to_string());
        }
        if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            if let Err(e) = sink.writer().flush_async() {
                sink.fail(e);
            }
        }
    };
    progress.clear();

    // Empty the socket first (bounded): the producer's final batches and its
    // acknowledgement are sent without blocking, and would be dropped by a
    // full receive buffer.
    let predrain_end = Instant::now() + PREDRAIN_TIMEOUT;
    while Instant::now() < predrain_end {
        match receiver.poll(Duration::from_millis(20), &mut |d, t| {
            source.on_datagram(d, t, &mut sink)
        }) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Stop and drain: the producer flushes its pending batches, then
    // acknowledges; everything queued before the acknowledgement is
    // recorded. If the producer is gone already, what it queued is still
    // drained until the socket idles. After a write error too: the sink
    // then counts the records as unwritten, so that the loss is exact, and
    // the source sees the acknowledgement.
    let producer_gone = source.gone().is_some();
    let until_ack = if producer_gone {
        // Said already; there is nobody to ask.
        false
    } else {
        match source.request_stop() {
            Ok(()) => true,
            Err(e) => {
                notice(format!("could not stop the producer: {e}"));
                false
            }
        }
    };
    let drain_end = Instant::now() + DRAIN_TIMEOUT;
    while Instant::now() < drain_end && !(until_ack && source.stop_acknowledged()) {
        match receiver.poll(Duration::from_millis(100), &mut |d, t| {
            source.on_datagram(d, t, &mut sink)
        }) {
            Ok(0) if !until_ack => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let unregistered = source.stop_acknowledged();
    if let Err(e) = receiver.shutdown(&mut |d, t| source.on_datagram(d, t, &mut sink)) {
        notice(format!("stopping the receiver: {e}"));
    }

    let batches = sink.batches;
    let received_bytes = sink.received_bytes;
    let beyond_count = sink.beyond_count;
    let written = sink.written;
    // A write error while draining (the run was stopped by a signal, say)
    // still cut the log short, which is what a reader of the log must
    // learn: it wins over what ended the loop.
    let stop = match sink.error() {
        Some(e) => write_error_reason(e),
        None => stop,
    };
    let (footer, error) = sink.finish(now_ns(), stop.clone());
    let write_error = error.map(|e| {
        if e.is_disk_full() {
            format!(
                "{out}: disk full after {written} records ({e}); the log holds every record \
                 before it"
            )
        } else {
            format!("{out}: {e}")
        }
    });
    let footer = footer.map_err(|e| {
        RunError(match &write_error {
            Some(w) => {
                format!("{w}; closing the log failed too: {e} (its committed part is valid)")
            }
            None => format!("{out}: closing the log: {e} (its committed part is valid)"),
        })
    })?;
    Ok(SessionSummary {
        footer,
        batches,
        received_bytes,
        beyond_count,
        io: receiver.name(),
        receive_buffers: receiver.buffers(),
        write: match opts.write_mode {
            WriteMode::Direct => "direct",
            WriteMode::Mmap => "mmap",
            WriteMode::Pwrite => "pwrite",
        },
        elapsed: started.elapsed(),
        cpu: cpu_time(),
        unregistered,
        producer_gone,
        stop_requested: until_ack,
        source_fields: source.summary_fields(),
        last_malformed: source.last_malformed(),
        stop,
        write_error,
        output: opts.output.clone(),
    })
}
