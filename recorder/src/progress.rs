//! The status line on a terminal: refreshed once a second on stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::sink::Sink;

/// Once-a-second status line, only when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    last_records: u64,
    /// The log's committed length at the last update.
    last_log_bytes: u64,
    shown: bool,
}

impl Progress {
    /// A status line if `wanted` and stderr is a TTY, for a log that is
    /// `log_bytes` long now (its header), so that the header does not count
    /// as written in the first second.
    pub fn new(wanted: bool, log_bytes: u64) -> Progress {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
        let now = Instant::now();
        Progress {
            enabled: wanted && tty,
            started: now,
            last: now,
            last_records: 0,
            last_log_bytes: log_bytes,
            shown: false,
        }
    }

    /// Updates the line if a second has passed. Called on every turn of
    /// the receive loop, so the sink is only asked once a second.
    ///
    /// The byte rate is what was committed to the log per second: frame
    /// overhead included, the number the disk has to keep up with. (It is
    /// not the netlink bytes received, which carry per-record headers the
    /// log drops, nor the captured bytes.)
    pub fn tick(&mut self, sink: &Sink) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let dt = self.last.elapsed().as_secs_f64();
        let records = sink.written;
        let log_bytes = sink.log_bytes();
        let rate = records.saturating_sub(self.last_records) as f64 / dt;
        let log_mbps = log_bytes.saturating_sub(self.last_log_bytes) as f64 / dt / 1e6;
        let lost = sink.losses().records();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kimp2-record: {:>6.0}s  {records} records  {:.2} M records/s  \
             {log_mbps:.1} MB/s to the log  lost {lost}",
            self.started.elapsed().as_secs_f64(),
            rate / 1e6,
        );
        let _ = err.flush();
        self.shown = true;
        self.last = Instant::now();
        self.last_records = records;
        self.last_log_bytes = log_bytes;
    }

    /// Erases the line before the final summary.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
