//! The status line on a terminal: refreshed once a second on stderr.

use std::io::Write;
use std::time::{Duration, Instant};

use imp2_format::log::Losses;

/// Once-a-second status line, only when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    last_records: u64,
    last_bytes: u64,
    shown: bool,
}

impl Progress {
    /// A status line if `wanted` and stderr is a TTY.
    pub fn new(wanted: bool) -> Progress {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDERR_FILENO) } == 1;
        let now = Instant::now();
        Progress {
            enabled: wanted && tty,
            started: now,
            last: now,
            last_records: 0,
            last_bytes: 0,
            shown: false,
        }
    }

    /// Updates the line if a second has passed.
    pub fn tick(&mut self, records: u64, bytes: u64, losses: &Losses) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let dt = self.last.elapsed().as_secs_f64();
        let rate = (records - self.last_records) as f64 / dt;
        let mbps = (bytes - self.last_bytes) as f64 / dt / 1e6;
        let lost = losses.records();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kimp2-record: {:>6.0}s  {records} records  {:.2} M records/s  {mbps:.1} MB/s  lost {lost}",
            self.started.elapsed().as_secs_f64(),
            rate / 1e6,
        );
        let _ = err.flush();
        self.shown = true;
        self.last = Instant::now();
        self.last_records = records;
        self.last_bytes = bytes;
    }

    /// Erases the line before the final summary.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
