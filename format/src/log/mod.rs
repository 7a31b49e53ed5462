//! The compact on-disk log, specified in `format/FORMAT.md`.
//!
//! - [`LogWriter`] appends frames of records (space reserved ahead with
//!   `fallocate`, so a full disk is an error, never a `SIGBUS`), either
//!   through a reusable frame buffer and one `pwrite` per commit or directly
//!   into a prefaulted shared map of the file, or in MiB blocks with
//!   `O_DIRECT` from a writer thread ([`WriteMode`]; one backend each in
//!   `backend/`, space reserved by `reserve.rs`), and moves
//!   the committed length in the header past each frame once it is written.
//! - [`LogReader`] maps a log read-only, trusts only the committed prefix,
//!   verifies every frame's CRC32C and stops at the first damaged frame with
//!   its offset and reason.
//!
//! Both share the byte layout in `layout/`; nothing else in the workspace
//! knows it.

#[allow(unsafe_code)] // the mmap backend maps the file
mod backend;
mod error;
#[allow(unsafe_code)] // the header's shared map
mod header_map;
mod layout;
#[allow(unsafe_code)] // flock(2)
mod lock;
mod options;
#[allow(unsafe_code)] // mmap of the file it reads
mod reader;
#[allow(unsafe_code)] // fallocate(2)
mod reserve;
mod trim;
#[allow(unsafe_code)] // mmap, fallocate, O_DIRECT buffers
mod writer;

pub use error::WriteError;
pub use options::{WriteMode, WriterOptions};
pub use reader::{LogEvent, LogReader, OnDamage, ReadError, ReadErrorKind, Skipped};
pub use trim::{TrimError, Trimmed, trim_to_committed};
pub use writer::LogWriter;

/// Interface known to the log: the kernel's ifindex and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Interface {
    /// Kernel interface index.
    pub ifindex: u32,
    /// Name (`eth0`, `lo`, ...), as seen when it was recorded.
    pub name: String,
}

/// Self-describing header of a log. The format version is not part of it:
/// a writer always writes its own ([`LogReader::version`] tells what a
/// file was written with).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LogHeader {
    /// When recording started, CLOCK_REALTIME ns.
    pub created_ns: u64,
    /// Snap length the capture was configured with, bytes.
    pub snaplen: u32,
    /// What produced the records, e.g. `imp2 module unit 31` or
    /// `nflog group 5`.
    pub source: String,
    /// Host name of the recording machine.
    pub hostname: String,
    /// `uname -r` of the recording machine.
    pub kernel_release: String,
    /// Resolution of the capture timestamps in decimal digits: 9 for
    /// nanoseconds (module), 6 for microseconds (NFLOG). Stored values are
    /// always nanoseconds.
    pub tsresol_digits: u8,
    /// Interfaces known when recording started; more may follow in
    /// interface frames.
    pub interfaces: Vec<Interface>,
}

/// Everything that was not recorded, by cause. Record counts unless the
/// name says otherwise. All counters are totals over the run (a log holds
/// deltas in its loss frames; readers sum them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Losses {
    /// Records the kernel dropped, by `enum imp2_drop_cause`
    /// (nomem, rcvbuf, send, other).
    pub kernel: [u64; crate::wire::abi::DROP_CAUSES],
    /// Records lost between the kernel and the recorder, found exactly from
    /// sequence numbers and running totals (imp2) or sequence gaps (NFLOG).
    pub gap_records: u64,
    /// Batches lost between the kernel and the recorder (sequence gaps).
    pub gap_batches: u64,
    /// Batches that arrived truncated (`MSG_TRUNC`): their records are
    /// counted in `gap_records` once the next trailer tells how many.
    pub truncated_batches: u64,
    /// Malformed netlink messages skipped (messages, not records).
    pub malformed_messages: u64,
    /// Receive errors reported by the socket (e.g. `ENOBUFS`), events.
    pub socket_errors: u64,
    /// Records received after a write error (e.g. a full disk) stopped the
    /// log: counted, not written. 0 in logs written before the counter
    /// existed (FORMAT.md section 6).
    pub unwritten: u64,
}

impl Losses {
    /// Records lost, all causes together (events are not records and are
    /// not counted here).
    ///
    /// Saturates at `u64::MAX`, as [`Losses::add`] does: a run cannot lose
    /// that many, but a damaged or hostile log can claim it.
    pub fn records(&self) -> u64 {
        self.kernel
            .iter()
            .fold(self.gap_records, |sum, &n| sum.saturating_add(n))
            .saturating_add(self.unwritten)
    }

    /// Adds `other` into `self`, saturating at `u64::MAX` (counters read
    /// from a log are untrusted).
    pub fn add(&mut self, other: &Losses) {
        for (a, b) in self.kernel.iter_mut().zip(other.kernel) {
            *a = a.saturating_add(b);
        }
        self.gap_records = self.gap_records.saturating_add(other.gap_records);
        self.gap_batches = self.gap_batches.saturating_add(other.gap_batches);
        self.truncated_batches = self
            .truncated_batches
            .saturating_add(other.truncated_batches);
        self.malformed_messages = self
            .malformed_messages
            .saturating_add(other.malformed_messages);
        self.socket_errors = self.socket_errors.saturating_add(other.socket_errors);
        self.unwritten = self.unwritten.saturating_add(other.unwritten);
    }

    /// Whether nothing was lost and nothing went wrong.
    pub fn is_zero(&self) -> bool {
        *self == Losses::default()
    }

    /// `(name, value)` for every counter, in a fixed order, for reports.
    /// The kernel's are `kernel_` and the cause's name in
    /// [`DROP_CAUSE_NAMES`](crate::wire::abi::DROP_CAUSE_NAMES), e.g.
    /// `kernel_nomem`.
    pub fn named(&self) -> [(&'static str, u64); 10] {
        let k = &self.kernel;
        let names = &*KERNEL_COUNTER_NAMES;
        [
            (names[0].as_str(), k[0]),
            (names[1].as_str(), k[1]),
            (names[2].as_str(), k[2]),
            (names[3].as_str(), k[3]),
            ("gap_records", self.gap_records),
            ("gap_batches", self.gap_batches),
            ("truncated_batches", self.truncated_batches),
            ("malformed_messages", self.malformed_messages),
            ("socket_errors", self.socket_errors),
            ("unwritten", self.unwritten),
        ]
    }
}

/// Report names of the kernel's drop counters, by cause: built from the
/// ABI's names, the only list of them on the Rust side.
static KERNEL_COUNTER_NAMES: std::sync::LazyLock<[String; crate::wire::abi::DROP_CAUSES]> =
    std::sync::LazyLock::new(|| {
        crate::wire::abi::DROP_CAUSE_NAMES.map(|cause| format!("kernel_{cause}"))
    });

/// Why a recording ended, as its log's footer records it (FORMAT.md
/// section 7, format 1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReason {
    /// What ended the run.
    pub cause: StopCause,
    /// The particulars, for people: the signal's name, the count or
    /// duration asked for, the error's text. Possibly empty. A writer cuts
    /// it to [`StopReason::MAX_DETAIL`] bytes.
    pub detail: String,
}

impl StopReason {
    /// Longest detail a writer stores, in bytes: an error's text, not a
    /// document, and the footer's room on a full disk is held back ahead
    /// of time.
    pub const MAX_DETAIL: usize = 1024;

    /// A reason with `detail` cut to [`StopReason::MAX_DETAIL`] bytes (at a
    /// character boundary), as a writer stores it.
    pub fn new(cause: StopCause, detail: impl Into<String>) -> StopReason {
        let mut detail = detail.into();
        detail.truncate(cut_detail(&detail).len());
        StopReason { cause, detail }
    }
}

/// The first [`StopReason::MAX_DETAIL`] bytes of `detail` at most, ending
/// at a character boundary (the writer stores valid UTF-8).
pub(crate) fn cut_detail(detail: &str) -> &str {
    let mut end = detail.len().min(StopReason::MAX_DETAIL);
    while !detail.is_char_boundary(end) {
        end -= 1;
    }
    &detail[..end]
}

/// One line for people, e.g. "stopped by SIGTERM", "packet count 1000
/// reached", "write error: No space left on device".
impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.detail.as_str();
        match (self.cause, d.is_empty()) {
            (StopCause::Signal, false) => write!(f, "stopped by {d}"),
            (StopCause::Signal, true) => f.write_str("stopped by a signal"),
            (StopCause::Count, false) => write!(f, "packet count {d} reached"),
            (StopCause::Count, true) => f.write_str("packet count reached"),
            (StopCause::Duration, false) => write!(f, "duration {d} reached"),
            (StopCause::Duration, true) => f.write_str("duration reached"),
            (StopCause::WriteError, false) => write!(f, "write error: {d}"),
            (StopCause::WriteError, true) => f.write_str("write error"),
            (StopCause::ReceiveError, false) => write!(f, "receive error: {d}"),
            (StopCause::ReceiveError, true) => f.write_str("receive error"),
            (StopCause::Other(n), false) => write!(f, "cause {n}: {d}"),
            (StopCause::Other(n), true) => write!(f, "cause {n}"),
        }
    }
}

/// What ended a recording. The numbers are the footer's `cause` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopCause {
    /// A signal (SIGINT, SIGTERM, SIGHUP): 1.
    Signal,
    /// The packet count asked for (`-c`) was reached: 2.
    Count,
    /// The duration asked for (`--duration`) was reached: 3.
    Duration,
    /// Writing the log failed, e.g. a full disk: 4.
    WriteError,
    /// Receiving failed: 5.
    ReceiveError,
    /// A cause this version does not know (a later version's), by number;
    /// never 0-5.
    Other(u64),
}

impl StopCause {
    /// The number stored in the footer (0 is "not recorded", which is no
    /// cause).
    pub fn code(self) -> u64 {
        match self {
            StopCause::Signal => 1,
            StopCause::Count => 2,
            StopCause::Duration => 3,
            StopCause::WriteError => 4,
            StopCause::ReceiveError => 5,
            StopCause::Other(n) => n,
        }
    }

    /// The cause stored as `code`; `None` for 0, "not recorded".
    pub fn from_code(code: u64) -> Option<StopCause> {
        Some(match code {
            0 => return None,
            1 => StopCause::Signal,
            2 => StopCause::Count,
            3 => StopCause::Duration,
            4 => StopCause::WriteError,
            5 => StopCause::ReceiveError,
            n => StopCause::Other(n),
        })
    }

    /// A short machine-readable name: `signal`, `count`, `duration`,
    /// `write_error`, `receive_error`, or `unknown` for a later version's
    /// cause (whose number [`StopCause::code`] gives).
    pub fn name(self) -> &'static str {
        match self {
            StopCause::Signal => "signal",
            StopCause::Count => "count",
            StopCause::Duration => "duration",
            StopCause::WriteError => "write_error",
            StopCause::ReceiveError => "receive_error",
            StopCause::Other(_) => "unknown",
        }
    }
}

/// Totals written in the footer on a clean close.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Footer {
    /// Records in the log.
    pub records: u64,
    /// Captured bytes of all records (packet data only).
    pub captured_bytes: u64,
    /// Original bytes of all records.
    pub original_bytes: u64,
    /// Timestamp of the earliest record, ns (0 when there is none).
    pub first_ns: u64,
    /// Timestamp of the latest record, ns (0 when there is none).
    pub last_ns: u64,
    /// When recording ended, CLOCK_REALTIME ns.
    pub closed_ns: u64,
    /// Losses over the whole run.
    pub losses: Losses,
    /// Why the run ended; `None` when the writer did not say (cause 0, and
    /// every log before format 1.2).
    pub stop: Option<StopReason>,
}
