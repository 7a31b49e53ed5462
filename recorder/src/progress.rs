//! The status line on a terminal (refreshed once a second on stderr), and
//! the messages printed while it shows.
//!
//! A message must not be glued onto the status line: [`message`] erases the
//! line, prints the message on a line of its own and draws the status line
//! again below it. Every line the recorder prints during a run goes through
//! it.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::log_sink::LogSink;

/// The status line on the screen now, if any (without its `\r` and erase
/// sequence), so that [`message`] can draw it again.
static SHOWN: Mutex<Option<String>> = Mutex::new(None);

/// Erases the current terminal line and returns the cursor to its start.
const ERASE_LINE: &str = "\r\x1b[K";

/// Prints `imp2-record: {line}` on stderr on a line of its own: a status
/// line on the screen is erased first and drawn again after. Never panics
/// (after SIGHUP the terminal may be gone; a lost message must not cost the
/// log its clean close).
pub fn message(line: &str) {
    let line = imp2_tools::cli::without_os_error_codes(line);
    let shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = match shown.as_deref() {
        Some(status) => write!(err, "{ERASE_LINE}imp2-record: {line}\n{status}"),
        None => writeln!(err, "imp2-record: {line}"),
    };
    let _ = err.flush();
}

/// Once-a-second status line, only when stderr is a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    last_records: u64,
    /// The log's committed length at the last update.
    last_log_bytes: u64,
}

impl Progress {
    /// A status line if `wanted` and stderr is a TTY, for a log that is
    /// `log_bytes` long now (its header), so that the header does not count
    /// as written in the first second.
    pub fn new(wanted: bool, log_bytes: u64) -> Progress {
        use std::io::IsTerminal;
        let now = Instant::now();
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
            started: now,
            last: now,
            last_records: 0,
            last_log_bytes: log_bytes,
        }
    }

    /// Updates the line if a second has passed. Called on every turn of
    /// the receive loop, so the sink is only asked once a second.
    ///
    /// The byte rate is what was committed to the log per second: frame
    /// overhead included, the number the disk has to keep up with. (It is
    /// not the netlink bytes received, which carry per-record headers the
    /// log drops, nor the captured bytes.)
    pub fn tick(&mut self, sink: &LogSink) {
        if !self.enabled || self.last.elapsed() < Duration::from_secs(1) {
            return;
        }
        let dt = self.last.elapsed().as_secs_f64();
        let records = sink.written;
        let log_bytes = sink.log_bytes();
        let rate = records.saturating_sub(self.last_records) as f64 / dt;
        let log_mbps = log_bytes.saturating_sub(self.last_log_bytes) as f64 / dt / 1e6;
        let line = status_line(
            self.started.elapsed(),
            records,
            rate,
            log_mbps,
            sink.losses().records(),
        );
        let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{ERASE_LINE}{line}");
        let _ = err.flush();
        *shown = Some(line);
        self.last = Instant::now();
        self.last_records = records;
        self.last_log_bytes = log_bytes;
    }

    /// Erases the line before the final summary.
    pub fn clear(&mut self) {
        let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
        if shown.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{ERASE_LINE}");
            let _ = err.flush();
        }
    }
}

/// The status line's text, e.g. `imp2-record:     12 s  48213 packets
/// 4.4k pkt/s  0.4 MB/s to the log  lost 0`.
fn status_line(elapsed: Duration, records: u64, rate: f64, log_mbps: f64, lost: u64) -> String {
    format!(
        "imp2-record: {:>6.0} s  {records} {}  {}  {log_mbps:.1} MB/s to the log  lost {lost}",
        elapsed.as_secs_f64(),
        plural(records, "packet", "packets"),
        packet_rate(rate),
    )
}

/// A packet rate with a unit that keeps three significant figures at
/// ordinary and at high rates: `0 pkt/s`, `950 pkt/s`, `4.4k pkt/s`,
/// `12.3M pkt/s`.
pub fn packet_rate(per_sec: f64) -> String {
    let per_sec = if per_sec.is_finite() {
        per_sec.max(0.0)
    } else {
        0.0
    };
    // Rounded first, so that 999.96 shows as `1.0k`, not `1000`.
    if per_sec.round() < 1e3 {
        format!("{per_sec:.0} pkt/s")
    } else if (per_sec / 1e3 * 10.0).round() < 1e4 {
        format!("{:.1}k pkt/s", per_sec / 1e3)
    } else if (per_sec / 1e6 * 10.0).round() < 1e4 {
        format!("{:.1}M pkt/s", per_sec / 1e6)
    } else {
        format!("{:.1}G pkt/s", per_sec / 1e9)
    }
}

/// `one` when `n` is 1, else `many`.
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4,000 packets a second used to read `0.00 M records/s`.
    #[test]
    fn packet_rates_keep_their_figures() {
        assert_eq!(packet_rate(0.0), "0 pkt/s");
        assert_eq!(packet_rate(3.4), "3 pkt/s");
        assert_eq!(packet_rate(950.0), "950 pkt/s");
        assert_eq!(packet_rate(999.6), "1.0k pkt/s");
        assert_eq!(packet_rate(4_000.0), "4.0k pkt/s");
        assert_eq!(packet_rate(4_400.0), "4.4k pkt/s");
        assert_eq!(packet_rate(999_949.0), "999.9k pkt/s");
        assert_eq!(packet_rate(999_960.0), "1.0M pkt/s");
        assert_eq!(packet_rate(12_345_678.0), "12.3M pkt/s");
        assert_eq!(packet_rate(2.5e9), "2.5G pkt/s");
        assert_eq!(packet_rate(f64::NAN), "0 pkt/s");
        assert_eq!(packet_rate(-1.0), "0 pkt/s");
    }

    #[test]
    fn the_status_line_counts_in_words() {
        let line = status_line(Duration::from_secs(12), 1, 4_400.0, 0.44, 0);
        assert_eq!(
            line,
            "imp2-record:     12 s  1 packet  4.4k pkt/s  0.4 MB/s to the log  lost 0"
        );
        assert!(status_line(Duration::ZERO, 2, 0.0, 0.0, 3).contains(" 2 packets  0 pkt/s "));
    }
}
