//! Reading and verifying a log.
//!
//! The reader trusts nothing in the file: it loads `committed_len` once,
//! walks the frames of the committed prefix, verifies each frame's CRC and
//! decodes the whole frame before handing out anything from it, and stops
//! at the first problem with the offset of the frame where it was found.
//!
//! On request ([`OnDamage::Skip`]) a walk goes on past a damaged frame
//! instead: it looks for the next intact frame (FORMAT.md section 9,
//! "Skipping damage"), reports the bytes it passed over as a
//! [`LogEvent::Skipped`], and resumes there.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::Mmap;

mod mistaken;
mod walk;

use mistaken::mistaken_input_reason;
pub use walk::Chunks;
use walk::Events;

use super::layout::{self, HeaderError, HeaderInfo};
use super::{Footer, Interface, LogHeader, Losses};
use crate::record::PacketRecord;

/// What went wrong reading a log.
#[derive(Debug)]
pub enum ReadErrorKind {
    /// The file could not be opened or mapped.
    Io(std::io::Error),
    /// The file does not start with the imp2 log magic.
    NotALog,
    /// Written by a newer, incompatible format version.
    UnsupportedVersion {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// The header is damaged (reason).
    BadHeader(String),
    /// The header says more bytes are committed than the file holds.
    TornTail {
        /// Committed length claimed by the header.
        committed: u64,
        /// Actual file length.
        file_len: u64,
    },
    /// A frame's checksum does not match.
    BadChecksum {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum computed over its bytes.
        computed: u32,
    },
    /// A frame's structure is invalid (reason).
    BadFrame(String),
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadErrorKind::Io(e) => f.write_str(&crate::export::io_reason(e)),
            ReadErrorKind::NotALog => f.write_str("not an imp2 log (bad magic)"),
            ReadErrorKind::UnsupportedVersion { major, minor } => write!(
                f,
                "written by format version {major}.{minor}, this reader supports {}.x",
                layout::VERSION_MAJOR
            ),
            ReadErrorKind::BadHeader(why) => write!(f, "damaged header: {why}"),
            ReadErrorKind::TornTail {
                committed,
                file_len,
            } => write!(
                f,
                "file is truncated: {file_len} bytes, but {committed} bytes were committed"
            ),
            ReadErrorKind::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            ReadErrorKind::BadFrame(why) => f.write_str(why),
        }
    }
}

/// A read error and the byte offset in the file where it was found.
#[derive(Debug)]
pub struct ReadError {
    /// File offset of the damaged header or frame.
    pub offset: u64,
    /// What is wrong.
    pub kind: ReadErrorKind,
    /// The file, when the log was opened from one (for messages).
    pub path: Option<PathBuf>,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        let off = self.offset;
        match &self.kind {
            ReadErrorKind::Io(_)
            | ReadErrorKind::NotALog
            | ReadErrorKind::UnsupportedVersion { .. } => write!(f, "{}", self.kind),
            ReadErrorKind::BadHeader(_) => write!(f, "{} (header byte {off})", self.kind),
            ReadErrorKind::TornTail { .. } => {
                write!(f, "{}; frames from byte {off} on are missing", self.kind)
            }
            ReadErrorKind::BadChecksum { .. } | ReadErrorKind::BadFrame(_) => {
                write!(f, "damaged frame at byte {off}: {}", self.kind)
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ReadErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// One item of a log, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent<'a> {
    /// A captured packet.
    Record(PacketRecord<'a>),
    /// An interface seen after the header was written.
    Interface(Interface),
    /// Losses learnt at this point of the run (a delta).
    Losses(Losses),
    /// The footer of a cleanly closed log (always the last event).
    Footer(Footer),
    /// Damaged bytes a walk with [`OnDamage::Skip`] passed over; never
    /// yielded by a walk that stops at damage.
    Skipped(Skipped),
}

/// A damaged stretch of the committed prefix that a walk skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// File offset of the damaged frame: the first byte not read.
    pub offset: u64,
    /// Bytes skipped, up to the next intact frame (or to the end of the
    /// committed prefix when none follows).
    pub len: u64,
    /// Why the frame at `offset` was rejected, e.g. `checksum mismatch
    /// (stored 0x..., computed 0x...)`.
    pub reason: String,
}

/// What a walk does at a damaged frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDamage {
    /// End the walk with the error (the default: nothing after the damage
    /// is trusted, as FORMAT.md section 9 specifies for readers).
    #[default]
    Stop,
    /// Report the damage as [`LogEvent::Skipped`] and go on from the next
    /// intact frame. A torn tail (the file ends before the committed length,
    /// inside a frame that no intact frame follows) still ends the walk:
    /// there is nothing after it to find; so does a
    /// log marked closed that has no footer (when no damage was skipped,
    /// which might have held it).
    Skip,
}

#[derive(Debug)]
enum Bytes {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A log mapped read-only.
#[derive(Debug)]
pub struct LogReader {
    bytes: Bytes,
    path: Option<PathBuf>,
    header: LogHeader,
    info: HeaderInfo,
}

impl LogReader {
    /// Maps and checks the header of the log at `path`.
    pub fn open(path: &Path) -> Result<LogReader, ReadError> {
        let io_err = |e| ReadError {
            offset: 0,
            kind: ReadErrorKind::Io(e),
            path: Some(path.to_path_buf()),
        };
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let bytes = if len == 0 {
            // memmap2 cannot map nothing; an empty file is simply not a log.
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this reader. The
            // file may be a log a recorder is still appending to: the writer
            // never changes bytes below the committed length once they are
            // committed, and this reader reads nothing at or past the
            // committed length it loads at open (except the header's two
            // mutable fields, which it loads atomically). A file truncated
            // below that by someone else would raise SIGBUS, as with any
            // mapped file; logs are only truncated by their writer, to their
            // committed length.
            let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
            // Frames are read front to back; a hint, so failure is harmless.
            let _ = map.advise(memmap2::Advice::Sequential);
            Bytes::Map(map)
        };
        Self::new(bytes, Some(path.to_path_buf()))
    }

    /// What the file at `path` is, when it is plainly not a log but one of
    /// the files most often passed by mistake: an empty file, or a capture
    /// that is already pcap or pcapng. A clearer reason than "bad magic"
    /// for a tool to give once [`LogReader::open`] has failed with
    /// [`ReadErrorKind::NotALog`], e.g. `is a pcap file, not an imp2 log
    /// (...)`. `None` when the file is not a regular file, cannot be read,
    /// or starts with nothing recognised.
    pub fn mistaken_input(path: &Path) -> Option<&'static str> {
        // Checked before opening: opening a FIFO would wait for a writer,
        // and reading it would take bytes from whoever reads it next.
        if !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        let mut prefix = Vec::with_capacity(4);
        File::open(path)
            .ok()?
            .take(4)
            .read_to_end(&mut prefix)
            .ok()?;
        mistaken_input_reason(&prefix)
    }

    /// Reads a log held in memory (tests, fuzzing).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<LogReader, ReadError> {
        Self::new(Bytes::Owned(bytes), None)
    }

    fn new(bytes: Bytes, path: Option<PathBuf>) -> Result<LogReader, ReadError> {
        let buf = bytes.as_slice();
        let (committed, state) = load_mutable_fields(buf);
        let (header, info) = layout::decode_header(buf, committed, state).map_err(|e| {
            let (offset, kind) = match e {
                HeaderError::NotALog => (0, ReadErrorKind::NotALog),
                HeaderError::Version(major, minor) => {
                    (8, ReadErrorKind::UnsupportedVersion { major, minor })
                }
                HeaderError::Bad { offset, problem } => {
                    (offset, ReadErrorKind::BadHeader(problem.to_string()))
                }
            };
            ReadError {
                offset,
                kind,
                path: path.clone(),
            }
        })?;
        Ok(LogReader {
            bytes,
            path,
            header,
            info,
        })
    }

    /// The header.
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Format version of the file (major, minor), as its header says: any
    /// minor of [`LogReader`]'s major (a newer minor's additions are
    /// skipped).
    pub fn version(&self) -> (u16, u16) {
        self.info.version
    }

    /// Bytes the header says are committed.
    pub fn committed_len(&self) -> u64 {
        self.info.committed_len
    }

    /// Bytes past the committed length (a torn, uncommitted tail left by a
    /// recorder that died; ignored by readers).
    pub fn uncommitted_len(&self) -> u64 {
        self.file_len().saturating_sub(self.info.committed_len)
    }

    /// Length of the file (or buffer) when it was opened. Shorter than
    /// [`LogReader::committed_len`] for a torn file, whose
    /// [`LogReader::events`] end with [`ReadErrorKind::TornTail`].
    pub fn file_len(&self) -> u64 {
        self.bytes.as_slice().len() as u64
    }

    /// Offset where the first frame starts.
    pub fn header_len(&self) -> u64 {
        self.info.header_len
    }

    /// Whether the log was closed cleanly (its state says so; the footer is
    /// then the last event, which [`LogReader::events`] verifies).
    pub fn is_closed(&self) -> bool {
        self.info.state == layout::STATE_CLOSED
    }

    /// Every event in the committed prefix, in order, verifying each frame.
    /// Stops after the first error, which is yielded as the last item.
    ///
    /// Nothing of a frame is yielded before the whole frame is verified and
    /// decoded, so the events before an error are exactly the contents of
    /// the intact frames that precede the damaged one.
    pub fn events(&self) -> impl Iterator<Item = Result<LogEvent<'_>, ReadError>> + '_ {
        self.walk(OnDamage::Stop)
    }

    /// [`LogReader::events`], choosing what happens at a damaged frame:
    /// with [`OnDamage::Skip`] the walk yields a [`LogEvent::Skipped`] for
    /// it and goes on from the next intact frame, so only a torn tail (or a
    /// closed log without a footer) ends it with an error.
    pub fn events_with(
        &self,
        on_damage: OnDamage,
    ) -> impl Iterator<Item = Result<LogEvent<'_>, ReadError>> + '_ {
        self.walk(on_damage)
    }

    /// The same walk as [`LogReader::events`], a frame at a time: the
    /// records of a RECORDS frame come as one slice. For consumers that
    /// handle every record alike (export), this spares building a
    /// [`LogEvent`] per record; the verification is the same.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks(self.walk(OnDamage::Stop))
    }

    /// [`LogReader::chunks`], choosing what happens at a damaged frame (see
    /// [`LogReader::events_with`]).
    pub fn chunks_with(&self, on_damage: OnDamage) -> Chunks<'_> {
        Chunks(self.walk(on_damage))
    }

    /// A walk of the frames from the first one on.
    fn walk(&self, on_damage: OnDamage) -> Events<'_> {
        Events::new(self, on_damage)
    }

    fn error(&self, offset: u64, kind: ReadErrorKind) -> ReadError {
        ReadError {
            offset,
            kind,
            path: self.path.clone(),
        }
    }

    /// End of what a walk may read: the committed prefix, or less when the
    /// file is torn.
    fn readable_end(&self) -> u64 {
        self.info.committed_len.min(self.file_len())
    }

    /// Where to resume after the damaged frame at `at` (FORMAT.md section
    /// 9, "Skipping damage"): at the end the damaged frame's own header
    /// gives, when an intact frame starts there or the committed prefix ends
    /// there, unless intact frames start before it and run into it exactly
    /// (the length was damaged into a too large one that happens to land on
    /// a later frame); else at the first offset after `at` where an intact
    /// frame starts; else at the end of what is readable.
    fn resync(&self, at: u64) -> u64 {
        let buf = self.bytes.as_slice();
        let end = self.readable_end();
        let head_len = layout::FRAME_HEADER_LEN as u64;
        let claimed = (at + head_len <= end)
            .then(|| {
                // In bounds: at + 4 <= end <= buf.len().
                let h = &buf[at as usize..at as usize + 4];
                at + head_len + u64::from(u32::from_le_bytes([h[0], h[1], h[2], h[3]]))
            })
            // Ending the committed prefix counts only if the file holds it
            // all: resuming past a torn tail would hide the tear.
            .filter(|&c| {
                (c == end && end == self.info.committed_len)
                    || (c < end && intact_frame_at(buf, c, end).is_some())
            });
        let scan_end = claimed.unwrap_or(end);
        let first_intact = (at + 1..scan_end).find(|&p| intact_frame_at(buf, p, end).is_some());
        match (claimed, first_intact) {
            (Some(c), Some(p)) if self.chains_to(p, c) => p,
            (Some(c), _) => c,
            (None, Some(p)) => p,
            (None, None) => end,
        }
    }

    /// Whether intact frames follow one another from `from` to exactly `to`.
    fn chains_to(&self, mut from: u64, to: u64) -> bool {
        let buf = self.bytes.as_slice();
        let end = self.readable_end();
        while from < to {
            match intact_frame_at(buf, from, end) {
                Some(next) => from = next,
                None => return false,
            }
        }
        from == to
    }
}

/// The end of the frame at `p` if an intact frame of a version 1 type
/// starts there and ends by `end`: zero flags and reserved bytes, a
/// payload at least as long as its type needs, and a matching CRC. The
/// cheap checks come first, because resynchronising tries every offset.
fn intact_frame_at(buf: &[u8], p: u64, end: u64) -> Option<u64> {
    let head_end = p.checked_add(layout::FRAME_HEADER_LEN as u64)?;
    if head_end > end {
        return None;
    }
    // In bounds: head_end <= end <= buf.len().
    let head = &buf[p as usize..head_end as usize];
    let min_payload = match head[4] {
        layout::FRAME_RECORDS => layout::RECORDS_PREFIX_LEN,
        layout::FRAME_INTERFACE => layout::MIN_INTERFACE_PAYLOAD,
        layout::FRAME_LOSSES => layout::MIN_LOSSES_PAYLOAD,
        layout::FRAME_FOOTER => layout::MIN_FOOTER_PAYLOAD,
        _ => return None,
    };
    if head[5..8] != [0, 0, 0] {
        return None;
    }
    let payload_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let frame_end = head_end + u64::from(payload_len);
    if (payload_len as usize) < min_payload || frame_end > end {
        return None;
    }
    let stored = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    let payload = &buf[head_end as usize..frame_end as usize];
    (layout::frame_crc(&head[..8], payload) == stored).then_some(frame_end)
}

/// Loads `committed_len` and `state`. For a mapped file (page-aligned, so
/// the fields are naturally aligned) this is an acquire load, pairing with
/// the writer's release store: a recorder may be appending right now, and
/// the frame bytes must not be read as they were before the commit.
fn load_mutable_fields(buf: &[u8]) -> (u64, u32) {
    if buf.len() < layout::OFF_STATIC_LEN {
        return (0, 0);
    }
    let committed_ptr = buf[layout::OFF_COMMITTED..].as_ptr();
    let state_ptr = buf[layout::OFF_STATE..].as_ptr();
    if committed_ptr.align_offset(8) == 0 && state_ptr.align_offset(4) == 0 {
        // SAFETY: both pointers are in bounds (checked above), aligned
        // (checked just now) and valid for the lifetime of `buf`. The
        // fields are only ever modified by atomic stores of the same size
        // (by a writer, possibly in another process), so atomic loads
        // through shared references are sound.
        let (c, s) = unsafe {
            (
                AtomicU64::from_ptr(committed_ptr as *mut u64).load(Ordering::Acquire),
                AtomicU32::from_ptr(state_ptr as *mut u32).load(Ordering::Acquire),
            )
        };
        (u64::from_le(c), u32::from_le(s))
    } else {
        // An in-memory copy (unaligned Vec): nobody writes it concurrently.
        let mut c = [0u8; 8];
        c.copy_from_slice(&buf[layout::OFF_COMMITTED..layout::OFF_COMMITTED + 8]);
        let mut s = [0u8; 4];
        s.copy_from_slice(&buf[layout::OFF_STATE..layout::OFF_STATE + 4]);
        (u64::from_le_bytes(c), u32::from_le_bytes(s))
    }
}
