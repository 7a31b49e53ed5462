//! Appending to a log.
//!
//! # How bytes reach the file
//!
//! Records are encoded in place, behind a blank frame header, either
//! directly into a shared memory map of the file ([`WriteMode::Mmap`]) or
//! into a reusable frame buffer that [`LogWriter::commit`] hands to the
//! kernel with one `pwrite` ([`WriteMode::Pwrite`], the default). Either
//! way, when `commit` returns the frame is in the page cache and the
//! header's `committed_len` (in a small shared map of the first page) has
//! moved past it with a release store, so it survives `kill -9`. In
//! [`WriteMode::Direct`] (below) that happens when the frame's buffer has
//! been written.
//!
//! Why `pwrite` is the default: new pages of a file must be initialised by
//! the kernel before a mapping can expose them. `write()` initialises them
//! with the copy of the data itself; a mapping needs the kernel to zero each
//! page first (at fault or `MADV_POPULATE_WRITE` time) and the user copy
//! comes on top. On the x86 VMs imp2 was measured on (no ERMS: the kernel
//! zeroes pages at ~1 GB/s but copies at ~4 GB/s) the prefaulted mapping
//! appends at less than half the speed of the frame buffer; the
//! `append_bandwidth` example of imp2-benches measures both on the machine
//! at hand. The frame buffer stays cache-hot, so encoding into it and `pwrite`-ing it
//! costs about what `write()` of already encoded bytes costs; the rest of
//! the writer's time is the CRC32C, computed in chunks while the encoded
//! bytes are still in cache.
//!
//! One `pwrite` per commit (per received batch, ~40 KiB) is also the
//! cheapest buffered size here: coalescing 8 or 32 batches into one write was
//! measured (`benches/examples/hotpath.rs`, last argument) to cost *more*
//! kernel time, as the larger buffer no longer stays in L2, and it would
//! have loosened the crash guarantee. The mapped mode costs about 2.5 times
//! the kernel time of this one on the reference VM (page zeroing).
//!
//! [`WriteMode::Direct`] skips the page cache: frames are built in the
//! same way, in page-aligned buffers of about a MiB that a writer thread
//! writes with `O_DIRECT` (`direct.rs` says why and how). It costs the
//! least CPU, and makes commits durable a buffer at a time instead of one
//! by one.
//!
//! # Disk space
//!
//! Space is reserved with `fallocate` (or by writing zeros where the file
//! system does not support it) in steps that double from a MiB to
//! [`WriterOptions::chunk_bytes`] *before* any of it is written or mapped: a full disk is a
//! [`WriteError`] with [`WriteError::is_disk_full`], never a `SIGBUS` on a
//! mapped page. When a whole chunk no longer fits, the writer reserves just
//! what the next record needs, so a log fills the disk to the last page.
//! Room for the footer is always held back, so a log whose disk filled up
//! can still be [`finish`](LogWriter::finish)ed cleanly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{Advice, MmapMut, MmapOptions, MmapRaw};

use super::direct::{self, DirectWriter};
use super::encode::{self, Prev};
use super::lock;
use super::{Footer, Interface, LogHeader, Losses, StopReason};
use crate::crc::crc32c_append;
use crate::record::PacketRecord;

/// A failed log write, with what was being done.
#[derive(Debug)]
pub struct WriteError {
    /// What the writer was doing, e.g. "reserving 64 MiB in run.log".
    pub context: String,
    /// The underlying error.
    pub source: std::io::Error,
}

impl WriteError {
    /// Whether the disk (or quota) is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT)
        )
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The OS's reason in words, without Rust's "(os error N)".
        write!(
            f,
            "{}: {}",
            self.context,
            crate::export::io_reason(&self.source)
        )
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// How a [`LogWriter`] moves frames into the file (see the module docs).
/// All produce identical files. `Pwrite` and `Mmap` make each commit
/// durable against a crash of the process when it returns; `Direct` when
/// its buffer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Encode into a reusable frame buffer; `commit` writes it with one
    /// `pwrite`.
    #[default]
    Pwrite,
    /// Encode directly into a shared map of the file: windows of
    /// [`WriterOptions::chunk_bytes`], prefaulted with
    /// `MADV_POPULATE_WRITE` a few MiB ahead of the write position.
    Mmap,
    /// Encode into page-aligned buffers that a writer thread writes with
    /// `O_DIRECT` about a MiB at a time, bypassing the page cache. A commit
    /// is durable once its buffer is written: when about a MiB more is
    /// committed, at [`LogWriter::flush_async`], or at
    /// [`LogWriter::flush_committed`]. Fails at creation where the file
    /// system does not support direct I/O.
    Direct,
}

/// Tuning of a [`LogWriter`]; `Default` is what the recorder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// How frames reach the file.
    pub mode: WriteMode,
    /// Disk space reserved at a time once the log is this large (smaller
    /// logs reserve as much as they hold, from a MiB on), and size of the
    /// mapped window in [`WriteMode::Mmap`], in bytes (rounded up to whole
    /// pages). A killed recorder leaves up to this much reserved space after
    /// the committed length ([`super::trim_to_committed`] gives it back).
    pub chunk_bytes: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            mode: WriteMode::default(),
            chunk_bytes: 64 << 20,
        }
    }
}

/// Room always kept reserved for closing the log: one LOSSES frame (the
/// losses counted after a write error, [`LogWriter::finish_with_losses`])
/// and the footer frame, with the longest stop reason (which is what a
/// full disk records).
const FOOTER_RESERVE: u64 =
    (2 * encode::FRAME_HEADER_LEN + encode::MAX_LOSSES_PAYLOAD + encode::MAX_FOOTER_PAYLOAD) as u64;
/// The first disk reservation of a log, bytes; each later one is as large
/// as the file so far, up to [`WriterOptions::chunk_bytes`]. Doubling from a
/// MiB reaches the 64 MiB chunk after seven reservations, a few
/// `fallocate` calls more per log than reserving whole chunks.
const FIRST_RESERVE_STEP: u64 = 1 << 20;
/// A RECORDS frame is committed early rather than grow past this payload
/// (bounds the frame buffer and the mapped window when commits are rare).
const MAX_FRAME_BYTES: u64 = 16 << 20;
/// Records bigger than this could not fit a frame's u32 payload length.
const MAX_RECORD_DATA: usize = u32::MAX as usize - 64;
/// How far ahead of the write position a window is prefaulted.
const PREFAULT_AHEAD: u64 = 4 << 20;
/// Records are checksummed in chunks of at least this many bytes: large
/// enough for the CRC's fast path, small enough to be in L1/L2 still.
const CRC_CHUNK: u64 = 32 << 10;
/// `frame_start` when no frame is open.
const NO_FRAME: u64 = u64::MAX;
/// Bytes of the first page mapped for the two mutable header fields.
const HEADER_MAP_LEN: usize = encode::OFF_STATIC;

#[derive(Debug)]
enum Region {
    /// Frame buffer; `region_base` is the file offset of its first byte.
    Buf(Vec<u8>),
    /// Mapped window of the file at `region_base`; `None` until the first
    /// frame needs it.
    Map(Option<MmapMut>),
    /// Direct mode: a page-aligned buffer at `region_base` (page-aligned).
    /// Its bytes below the committed length are already handed off; they
    /// are written again with the rest of their page. Its last page is kept
    /// out of the region, for the padding of the write.
    Direct(MmapMut),
}

/// Disk space reserved ahead of the writer.
#[derive(Debug)]
struct Reservation {
    /// File offset up to which space is allocated (and the file is at
    /// least this long).
    end: u64,
    chunk: u64,
    page: u64,
    /// `fallocate` is not supported here: reserve by writing zeros.
    zero_fill: bool,
}

/// Totals for the footer.
#[derive(Debug, Default)]
struct Totals {
    records: u64,
    captured: u64,
    original: u64,
    first_ns: u64,
    last_ns: u64,
}

/// Writer of one log file.
#[derive(Debug)]
pub struct LogWriter {
    file: File,
    path: PathBuf,
    mode: WriteMode,
    /// First page of the file, for the atomic `committed_len`/`state`
    /// (shared with the writer thread in direct mode).
    header_map: Arc<MmapRaw>,
    /// Direct mode: the writer thread.
    direct: Option<DirectWriter>,
    region: Region,
    /// File offset of the first byte of `region`, and of its end.
    region_base: u64,
    region_end: u64,
    /// File offset of the next byte to write.
    pos: u64,
    /// `pos + n <= limit` means `n` bytes can be written at `pos` without
    /// any bookkeeping: inside the region, reserved (footer room aside) and
    /// prefaulted.
    limit: u64,
    /// `pos + n <= append_limit` means a record of up to `n` bytes can be
    /// appended to the open frame without any bookkeeping: within `limit`,
    /// the frame stays within `MAX_FRAME_BYTES`, and the bytes not yet
    /// checksummed stay below `CRC_CHUNK`. 0 when no frame is open. The only
    /// check on the hot path ([`LogWriter::append`]); see `update_limit`.
    append_limit: u64,
    reservation: Reservation,
    /// Mmap mode: offset up to which the window is prefaulted.
    populated_to: u64,
    /// Mmap mode: `MADV_POPULATE_WRITE` works here (Linux >= 5.14).
    populate: bool,
    committed: u64,
    /// Offset of the open frame's header, or `NO_FRAME`.
    frame_start: u64,
    frame_count: u32,
    /// CRC32C of the open RECORDS frame's records up to `crc_to`, computed
    /// in chunks as the frame grows, while the bytes are still in cache.
    records_crc: u32,
    crc_to: u64,
    prev: Prev,
    totals: Totals,
    losses: Losses,
    /// Why the run ended, for the footer ([`LogWriter::set_stop`]).
    stop: Option<StopReason>,
}

impl LogWriter {
    /// Creates (truncating) `path` and writes `header` (committed at once).
    /// Fails, leaving the file alone, while another writer holds it (see
    /// `lock_exclusive`).
    pub fn create(path: &Path, header: &LogHeader) -> Result<LogWriter, WriteError> {
        Self::create_with(path, header, WriterOptions::default())
    }

    /// [`LogWriter::create`] with explicit options.
    pub fn create_with(
        path: &Path,
        header: &LogHeader,
        options: WriterOptions,
    ) -> Result<LogWriter, WriteError> {
        let ctx = |what: &str| format!("{what} {}", path.display());
        let hdr = encode::encode_header(header).map_err(|m| WriteError {
            context: ctx("encoding the header of"),
            source: io::Error::new(io::ErrorKind::InvalidInput, m),
        })?;
        // Not truncated yet: a log another writer still holds must not be
        // destroyed.
        let file = OpenOptions::new()
            .read(true) // a shared writable map needs a read-write descriptor
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| WriteError {
                context: ctx("creating"),
                source: e,
            })?;
        lock::lock_exclusive(&file, path, "choose another file name")?;
        file.set_len(0).map_err(|e| WriteError {
            context: ctx("truncating"),
            source: e,
        })?;
        let page = page_size();
        let mut reservation = Reservation {
            end: 0,
            chunk: options.chunk_bytes.max(1).div_ceil(page) * page,
            page,
            zero_fill: false,
        };
        let header_len = hdr.len() as u64;
        reservation.ensure(&file, path, header_len + FOOTER_RESERVE)?;
        file.write_all_at(&hdr, 0).map_err(|e| WriteError {
            context: ctx("writing the header of"),
            source: e,
        })?;
        let header_map = Arc::new(
            MmapOptions::new()
                .len(HEADER_MAP_LEN)
                .map_raw(&file)
                .map_err(|e| WriteError {
                    context: ctx("mapping the header of"),
                    source: e,
                })?,
        );
        let (mut region_base, mut region_end) = (header_len, header_len);
        let mut direct = None;
        let region = match options.mode {
            WriteMode::Pwrite => Region::Buf(Vec::new()),
            WriteMode::Mmap => Region::Map(None),
            WriteMode::Direct => {
                let started =
                    DirectWriter::start(&file, path, header_map.clone(), header_len, page);
                let mut d = started.inspect_err(|_| {
                    // No direct I/O here: leave no header-only file behind.
                    let _ = std::fs::remove_file(path);
                })?;
                let mut buf = d.buffer(direct::BUFFER_BYTES)?;
                // The buffer starts at the header's last page, which is
                // written again whole.
                region_base = header_len / page * page;
                let kept = (header_len - region_base) as usize;
                buf[..kept].copy_from_slice(&hdr[region_base as usize..]);
                region_end = direct_region_end(region_base, &buf, page);
                direct = Some(d);
                Region::Direct(buf)
            }
        };
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            mode: options.mode,
            header_map,
            direct,
            region,
            region_base,
            region_end,
            pos: header_len,
            limit: header_len, // the first append sets up the region
            append_limit: 0,
            reservation,
            populated_to: header_len,
            populate: true,
            committed: header_len,
            frame_start: NO_FRAME,
            frame_count: 0,
            records_crc: 0,
            crc_to: 0,
            prev: Prev::new(0),
            totals: Totals {
                // So that `append` can take the min and max unconditionally.
                first_ns: u64::MAX,
                ..Totals::default()
            },
            losses: Losses::default(),
            stop: None,
        })
    }

    /// Appends one record to the open frame, opening one if needed. Nothing
    /// is visible to readers until [`LogWriter::commit`].
    ///
    /// Fails without appending anything when the record's data is longer
    /// than its `orig_len` or the disk is full; the writer stays usable
    /// (e.g. to [`finish`](LogWriter::finish) the log).
    // Always inlined: in the caller's loop the record's fields stay in
    // registers and no `Result` goes through memory (~40 instructions a
    // record); everything rare is out of line (`prepare_append`).
    #[inline(always)]
    pub fn append(&mut self, record: &PacketRecord<'_>) -> Result<(), WriteError> {
        let data_len = record.data.len();
        // One comparison for both: no more data than the original length,
        // nor more than a frame's u32 payload length can hold.
        if data_len > (record.orig_len as usize).min(MAX_RECORD_DATA) {
            // Lengths only: a reference to the record would make it live in
            // memory on the hot path too.
            return Err(self.invalid_record(data_len, record.orig_len));
        }
        let rec_max = (encode::MAX_RECORD_OVERHEAD + data_len) as u64;
        if self.pos + rec_max > self.append_limit {
            self.prepare_append(record.tstamp_ns, rec_max)?;
        }
        let off = (self.pos - self.region_base) as usize;
        let out = match &mut self.region {
            Region::Buf(v) => &mut v[off..],
            Region::Map(Some(m)) | Region::Direct(m) => &mut m[off..],
            // `limit` never lets a write past `make_room` without a window.
            Region::Map(None) => return Err(no_window(&self.path)),
        };
        let n = encode::encode_record(out, record, &mut self.prev);
        self.pos += n as u64;
        // Cannot overflow: a frame holds at most MAX_FRAME_BYTES and a
        // record takes at least 3 bytes.
        self.frame_count += 1;
        let t = &mut self.totals;
        t.first_ns = t.first_ns.min(record.tstamp_ns);
        t.last_ns = t.last_ns.max(record.tstamp_ns);
        t.records += 1;
        t.captured += data_len as u64;
        t.original += u64::from(record.orig_len);
        Ok(())
    }

    /// Slow path of [`LogWriter::append`], when `append_limit` is reached:
    /// opens a frame (committing the open one first when it is full),
    /// checksums the bytes encoded since the last chunk, makes room.
    #[cold]
    #[inline(never)]
    fn prepare_append(&mut self, base_ts: u64, rec_max: u64) -> Result<(), WriteError> {
        if self.frame_start == NO_FRAME {
            self.open_records_frame(base_ts, rec_max)?;
        } else if self.pos - self.frame_start + rec_max > MAX_FRAME_BYTES {
            self.commit()?;
            self.open_records_frame(base_ts, rec_max)?;
        } else {
            // Whichever bound was reached, checksumming now keeps the next
            // chunk starting here (it is only ever done early, never late).
            self.crc_chunk();
            if self.pos + rec_max > self.limit {
                self.make_room(rec_max, false)?;
            }
            self.update_limit();
        }
        debug_assert!(self.frame_count < u32::MAX);
        Ok(())
    }

    /// Closes the open frame (if any) and moves the committed length past
    /// it. Call once per received batch.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        if self.frame_start == NO_FRAME {
            return Ok(());
        }
        if matches!(self.region, Region::Map(None)) {
            // An earlier remap failed: map the open frame again.
            self.map_window(self.pos)?;
        }
        let at = (self.frame_start - self.region_base) as usize
            + encode::FRAME_HEADER_LEN
            + encode::RECORDS_COUNT_OFF;
        let count = self.frame_count.to_le_bytes();
        let start = (self.frame_start - self.region_base) as usize;
        let end = (self.pos - self.region_base) as usize;
        let crc_from = (self.crc_to - self.region_base) as usize;
        let records_crc = self.records_crc;
        let region = self.region_mut()?;
        let crc = crc32c_append(records_crc, &region[crc_from..end]);
        region[at..at + 4].copy_from_slice(&count);
        encode::seal_records_frame(&mut region[start..end], crc);
        self.publish_and_commit()
    }

    /// Records an interface seen after the header was written (own frame,
    /// committed at once, after committing the open frame).
    pub fn add_interface(&mut self, interface: &Interface) -> Result<(), WriteError> {
        self.commit()?;
        self.write_frame(
            encode::FRAME_INTERFACE,
            &encode::encode_interface(interface),
            false,
        )
    }

    /// Records losses learnt since the last call (own frame, committed at
    /// once, after committing the open frame).
    pub fn add_losses(&mut self, delta: &Losses) -> Result<(), WriteError> {
        self.write_losses(delta, false)
    }

    /// Commits, then writes and commits a LOSSES frame of `delta`; with
    /// `closing`, into the room held back for closing the log.
    fn write_losses(&mut self, delta: &Losses, closing: bool) -> Result<(), WriteError> {
        self.commit()?;
        let mut payload = Vec::with_capacity(encode::MAX_LOSSES_PAYLOAD);
        encode::encode_losses(&mut payload, delta);
        self.write_frame(encode::FRAME_LOSSES, &payload, closing)?;
        self.losses.add(delta);
        Ok(())
    }

    /// Records appended so far (committed or not).
    pub fn records(&self) -> u64 {
        self.totals.records
    }

    /// Losses added so far.
    pub fn losses(&self) -> &Losses {
        &self.losses
    }

    /// Bytes of the file that readers trust. In direct mode, the frames
    /// committed since are not counted until their buffer is written (see
    /// [`LogWriter::flush_committed`]).
    pub fn committed_len(&self) -> u64 {
        match &self.direct {
            Some(d) => d.published(),
            None => self.committed,
        }
    }

    /// How frames reach the file.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Path of the log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Asks the kernel to write dirty pages back: `msync(MS_ASYNC)` on the
    /// maps, and `sync_file_range(SYNC_FILE_RANGE_WRITE)` on the file, which
    /// actually starts the writeback (`MS_ASYNC` alone does nothing on
    /// Linux). Does not wait for it.
    ///
    /// In direct mode it hands what is committed to the writer thread
    /// instead (the page cache holds nothing to write back), so that a
    /// slow trickle of packets does not wait in a buffer for a MiB to fill.
    pub fn flush_async(&mut self) -> Result<(), WriteError> {
        if self.direct.is_some() {
            return self.hand_off();
        }
        let err = |e| WriteError {
            context: format!("starting writeback of {}", self.path.display()),
            source: e,
        };
        if let Region::Map(Some(m)) = &self.region {
            m.flush_async().map_err(err)?;
        }
        self.header_map.flush_async().map_err(err)?;
        // SAFETY: plain system call on a descriptor this writer owns; no
        // memory is passed.
        let r = unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
        };
        if r != 0 {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sets why the run ended, which [`finish`](LogWriter::finish) writes
    /// in the footer (without a call the footer says "not recorded"). The
    /// detail is cut to [`StopReason::MAX_DETAIL`] bytes, as the footer
    /// returned by `finish` shows.
    pub fn set_stop(&mut self, stop: StopReason) {
        self.stop = Some(StopReason::new(stop.cause, stop.detail));
    }

    /// Commits, writes the footer, marks the log closed, syncs and
    /// truncates the file to its real length. Returns the footer.
    ///
    /// Blocks until the whole log is on stable storage (`fdatasync`): a
    /// recorder rotating files should call it off its capture thread.
    pub fn finish(self, closed_ns: u64) -> Result<Footer, WriteError> {
        self.finish_with_losses(&Losses::default(), closed_ns)
    }

    /// [`LogWriter::finish`], adding a last LOSSES frame `closing` (unless
    /// it is zero) first. Unlike [`LogWriter::add_losses`] that frame may
    /// use the room held back for closing, so it is written even when a
    /// full disk stopped the log: the losses counted after the write error
    /// reach the file.
    pub fn finish_with_losses(
        mut self,
        closing: &Losses,
        closed_ns: u64,
    ) -> Result<Footer, WriteError> {
        self.commit()?;
        if !closing.is_zero() {
            self.write_losses(closing, true)?;
        }
        let t = &self.totals;
        let footer = Footer {
            records: t.records,
            captured_bytes: t.captured,
            original_bytes: t.original,
            first_ns: if t.records == 0 { 0 } else { t.first_ns },
            last_ns: t.last_ns,
            closed_ns,
            losses: self.losses,
            stop: self.stop.take(),
        };
        self.write_frame(encode::FRAME_FOOTER, &encode::encode_footer(&footer), true)?;
        // Direct mode: written and published before the log says it is
        // closed.
        self.hand_off()?;
        if let Some(d) = &mut self.direct {
            d.stop()?;
        }
        self.store_state(encode::STATE_CLOSED);
        // Unmap the window before cutting the file below it.
        self.region = Region::Buf(Vec::new());
        let ctx = |what: &str| format!("{what} {}", self.path.display());
        self.file.set_len(self.committed).map_err(|e| WriteError {
            context: ctx(&format!("truncating to {} bytes", self.committed)),
            source: e,
        })?;
        self.file.sync_data().map_err(|e| WriteError {
            context: ctx("syncing"),
            source: e,
        })?;
        Ok(footer)
    }

    // -----------------------------------------------------------------------

    /// Folds the records encoded since `crc_to` into `records_crc`.
    fn crc_chunk(&mut self) {
        if self.pos == self.crc_to {
            return;
        }
        let from = (self.crc_to - self.region_base) as usize;
        let to = (self.pos - self.region_base) as usize;
        let bytes = match &self.region {
            Region::Buf(v) => &v[from..to],
            Region::Map(Some(m)) | Region::Direct(m) => &m[from..to],
            Region::Map(None) => return, // unreachable: a record was just written
        };
        self.records_crc = crc32c_append(self.records_crc, bytes);
        self.crc_to = self.pos;
    }

    /// The region, for the cold paths.
    fn region_mut(&mut self) -> Result<&mut [u8], WriteError> {
        match &mut self.region {
            Region::Buf(v) => Ok(v),
            Region::Map(Some(m)) | Region::Direct(m) => Ok(m),
            Region::Map(None) => Err(no_window(&self.path)),
        }
    }

    #[cold]
    fn invalid_record(&self, data_len: usize, orig_len: u32) -> WriteError {
        let why = if data_len > orig_len as usize {
            format!("record has {data_len} bytes of data but an original length of {orig_len}")
        } else {
            format!("record data of {data_len} bytes is too large")
        };
        WriteError {
            context: format!("appending to {}", self.path.display()),
            source: io::Error::new(io::ErrorKind::InvalidInput, why),
        }
    }

    /// Writes the frame header and RECORDS prefix of a new frame at `pos`,
    /// making room for them and a first record of up to `rec_max` bytes.
    fn open_records_frame(&mut self, base_ts: u64, rec_max: u64) -> Result<(), WriteError> {
        let prefix = (encode::FRAME_HEADER_LEN + encode::RECORDS_PREFIX_LEN) as u64;
        if self.pos + prefix + rec_max > self.limit {
            self.make_room(prefix + rec_max, false)?;
        }
        let off = (self.pos - self.region_base) as usize + encode::FRAME_HEADER_LEN;
        self.region_mut()?[off..off + 8].copy_from_slice(&base_ts.to_le_bytes());
        self.frame_start = self.pos;
        self.frame_count = 0;
        self.records_crc = 0;
        self.prev = Prev::new(base_ts);
        self.pos += prefix;
        self.crc_to = self.pos;
        self.update_limit();
        Ok(())
    }

    /// Writes and commits a whole frame of another type (no frame open).
    fn write_frame(
        &mut self,
        frame_type: u8,
        payload: &[u8],
        footer: bool,
    ) -> Result<(), WriteError> {
        debug_assert_eq!(self.frame_start, NO_FRAME);
        let len = (encode::FRAME_HEADER_LEN + payload.len()) as u64;
        if self.pos + len > self.limit {
            self.make_room(len, footer)?;
        }
        let off = (self.pos - self.region_base) as usize + encode::FRAME_HEADER_LEN;
        self.region_mut()?[off..off + payload.len()].copy_from_slice(payload);
        self.frame_start = self.pos;
        self.pos += len;
        let start = off - encode::FRAME_HEADER_LEN;
        let end = off + payload.len();
        encode::seal_frame(&mut self.region_mut()?[start..end], frame_type);
        self.publish_and_commit()
    }

    /// Hands the sealed open frame to the kernel (pwrite mode) and publishes
    /// the new committed length.
    fn publish_and_commit(&mut self) -> Result<(), WriteError> {
        let start = (self.frame_start - self.region_base) as usize;
        let end = (self.pos - self.region_base) as usize;
        if let Region::Buf(v) = &self.region {
            // On failure the frame stays open: a later commit retries it.
            self.file
                .write_all_at(&v[start..end], self.frame_start)
                .map_err(|e| WriteError {
                    context: format!(
                        "writing a {}-byte frame at offset {} of {}",
                        end - start,
                        self.frame_start,
                        self.path.display()
                    ),
                    source: e,
                })?;
        }
        self.committed = self.pos;
        self.frame_start = NO_FRAME;
        self.frame_count = 0;
        match &self.region {
            Region::Buf(v) => {
                // The next frame is built from the start of the buffer.
                self.region_base = self.pos;
                self.region_end = self.pos + v.len() as u64;
            }
            // The writer thread publishes the length once it is written.
            Region::Direct(_) => {
                if self.pos - self.region_base >= direct::HAND_OFF_BYTES {
                    self.hand_off()?;
                }
                self.update_limit();
                return Ok(());
            }
            Region::Map(_) => {}
        }
        store_committed(&self.header_map, self.pos);
        self.update_limit();
        Ok(())
    }

    /// Direct mode: hands the committed bytes to the writer thread. The
    /// page holding the committed length, and an open frame's bytes, move
    /// to a fresh buffer that continues the region.
    fn hand_off(&mut self) -> Result<(), WriteError> {
        let (Some(d), Region::Direct(buf)) = (&mut self.direct, &mut self.region) else {
            return Ok(());
        };
        let end = self.committed;
        if end == d.handed_off() {
            return Ok(());
        }
        let page = self.reservation.page;
        let base = self.region_base;
        let carry_from = end / page * page;
        let carry = (carry_from - base) as usize..(self.pos - base) as usize;
        let mut next = d.buffer(buf.len())?;
        next[..carry.len()].copy_from_slice(&buf[carry.clone()]);
        // Bytes past `pos` are stale; the file gets zeros up to the page end.
        let pad_end = (end.div_ceil(page) * page - base) as usize;
        if carry.end < pad_end {
            buf[carry.end..pad_end].fill(0);
        }
        self.region_end = direct_region_end(carry_from, &next, page);
        let full = std::mem::replace(buf, next);
        d.submit(full, base, end)?;
        self.region_base = carry_from;
        self.update_limit();
        Ok(())
    }

    /// Blocks until every committed frame is in the file, as far as a crash
    /// of this process is concerned (in the page cache or on the device).
    /// Only direct mode has anything to wait for: it hands its buffer to the
    /// writer thread and waits for the writes.
    pub fn flush_committed(&mut self) -> Result<(), WriteError> {
        self.hand_off()?;
        match &mut self.direct {
            Some(d) => d.wait(),
            None => Ok(()),
        }
    }

    /// Slow path of every write: reserves disk space and (re)arranges the
    /// region so that `need` bytes can be written at `pos`, keeping the open
    /// frame contiguous. `footer`: the write may use the footer's reserve.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, need: u64, footer: bool) -> Result<(), WriteError> {
        let need_end = self.pos + need;
        let reserve_end = if footer {
            need_end
        } else {
            need_end + FOOTER_RESERVE
        };
        self.reservation
            .ensure(&self.file, &self.path, reserve_end)?;
        match &mut self.region {
            Region::Buf(v) => {
                if need_end > self.region_end {
                    let want = (need_end - self.region_base) as usize;
                    let new_len = want.max(2 * v.len()).max(1 << 20);
                    v.resize(new_len, 0);
                    self.region_end = self.region_base + new_len as u64;
                }
            }
            Region::Direct(buf) => {
                if need_end > self.region_end {
                    let page = self.reservation.page;
                    let used = (self.pos - self.region_base) as usize;
                    let want = (need_end - self.region_base + page) as usize;
                    let Some(d) = &mut self.direct else {
                        unreachable!("direct region without a writer thread")
                    };
                    let mut bigger = d.buffer(want.max(2 * buf.len()))?;
                    bigger[..used].copy_from_slice(&buf[..used]);
                    d.recycle(std::mem::replace(buf, bigger));
                    self.region_end = direct_region_end(self.region_base, buf, page);
                }
            }
            Region::Map(_) => {
                if need_end > self.region_end {
                    self.map_window(need_end)?;
                }
                if self.populate && need_end > self.populated_to {
                    self.prefault(need_end);
                }
            }
        }
        self.update_limit();
        Ok(())
    }

    /// Maps a new window that starts at the page of the open frame (or of
    /// `pos`) and reaches at least `need_end`.
    fn map_window(&mut self, need_end: u64) -> Result<(), WriteError> {
        let page = self.reservation.page;
        let keep = if self.frame_start == NO_FRAME {
            self.pos
        } else {
            self.frame_start
        };
        let start = keep / page * page;
        let len = (need_end - start).div_ceil(page) * page;
        let len = len.max(self.reservation.chunk);
        // Unmap the old window first: address space, and the new one may
        // overlap it. Until the new one exists, nothing may be written.
        self.region = Region::Map(None);
        self.region_end = self.region_base;
        self.update_limit();
        let map_len = usize::try_from(len).unwrap_or(usize::MAX);
        // SAFETY: the map is of a file this writer created and owns for
        // writing; nothing else is supposed to truncate it. Bytes past the
        // reserved length (where the file may end) are never touched: every
        // write is checked against `limit`, which never exceeds the
        // reservation. The only other view of the file in this process is
        // the header map, which never overlaps a window's bytes in use
        // (windows start at or after `header_len`'s page and the header
        // fields are never written through a window).
        let map = unsafe {
            MmapOptions::new()
                .offset(start)
                .len(map_len)
                .map_mut(&self.file)
        }
        .map_err(|e| WriteError {
            context: format!(
                "mapping {len} bytes at offset {start} of {}",
                self.path.display()
            ),
            source: e,
        })?;
        // A hint for readahead and reclaim; its failure changes nothing.
        let _ = map.advise(Advice::Sequential);
        self.region = Region::Map(Some(map));
        self.region_base = start;
        self.region_end = start + len;
        // The new mapping has no page tables yet.
        self.populated_to = (self.pos / page * page).max(start);
        self.update_limit();
        Ok(())
    }

    /// Prefaults the window from the populated frontier to `PREFAULT_AHEAD`
    /// past `need_end` (within the window and the reservation), so the
    /// copies that follow take no page faults.
    fn prefault(&mut self, need_end: u64) {
        let page = self.reservation.page;
        let from = self.populated_to.max(self.pos / page * page);
        let to = (need_end + PREFAULT_AHEAD)
            .div_ceil(page)
            .saturating_mul(page)
            .min(self.region_end)
            .min(self.reservation.end);
        if to <= from {
            self.populated_to = self.populated_to.max(need_end);
            return;
        }
        let Region::Map(Some(m)) = &self.region else {
            return;
        };
        let off = (from - self.region_base) as usize;
        match m.advise_range(Advice::PopulateWrite, off, (to - from) as usize) {
            Ok(()) => {}
            // Kernel before 5.14: pages fault in on first write instead.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.populate = false,
            // ENOMEM, EINTR...: prefaulting is an optimisation only; the
            // writes will fault the pages in (the space is reserved).
            Err(_) => {}
        }
        self.populated_to = to;
    }

    fn update_limit(&mut self) {
        let mut limit = self
            .region_end
            .min(self.reservation.end.saturating_sub(FOOTER_RESERVE));
        if self.mode == WriteMode::Mmap && self.populate {
            limit = limit.min(self.populated_to);
        }
        self.limit = limit;
        self.append_limit = if self.frame_start == NO_FRAME {
            0
        } else {
            limit
                .min(self.frame_start + MAX_FRAME_BYTES)
                .min(self.crc_to + CRC_CHUNK)
        };
    }

    fn store_state(&self, v: u32) {
        let p = self.header_map.as_mut_ptr().wrapping_add(encode::OFF_STATE);
        // SAFETY: as for `store_committed`: offset 24 of a page-aligned
        // 32-byte map, 4-aligned, only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(v.to_le(), Ordering::Release);
    }
}

impl Drop for LogWriter {
    /// An unfinished writer (an error path, a panic) hands what is committed
    /// to the writer thread, which writes it before it stops (direct mode;
    /// the other modes have written everything committed already).
    fn drop(&mut self) {
        let _ = self.hand_off();
    }
}

impl Reservation {
    /// Makes sure space up to `min_end` is allocated: a whole chunk if the
    /// disk allows, else just enough.
    fn ensure(&mut self, file: &File, path: &Path, min_end: u64) -> Result<(), WriteError> {
        if min_end <= self.end {
            return Ok(());
        }
        let min_target = min_end.div_ceil(self.page) * self.page;
        // Steps grow with the file, from FIRST_RESERVE_STEP to a whole
        // chunk: a short recording killed before it could truncate leaves
        // about a MiB behind, not a chunk, and a long one still reserves a
        // chunk at a time.
        let step = self.end.max(FIRST_RESERVE_STEP).min(self.chunk);
        let want = min_target.max(self.end + step);
        let first = self.extend(file, want);
        let result = match first {
            Err(e) if is_full(&e) && want > min_target => self.extend(file, min_target),
            other => other,
        };
        result.map_err(|e| WriteError {
            context: format!(
                "reserving {} bytes at offset {} of {}",
                min_target - self.end,
                self.end,
                path.display()
            ),
            source: e,
        })
    }

    /// Allocates `[self.end, to)`, moving `self.end` as far as it got.
    fn extend(&mut self, file: &File, to: u64) -> io::Result<()> {
        while !self.zero_fill {
            let len = to - self.end;
            // SAFETY: plain system call on a descriptor owned by the writer;
            // no memory is passed.
            let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, self.end as i64, len as i64) };
            if r == 0 {
                self.end = to;
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => self.zero_fill = true,
                _ => return Err(e),
            }
        }
        // Writing zeros allocates the blocks as fallocate would (and makes
        // ENOSPC surface now rather than at writeback).
        let zeros = vec![0u8; (1 << 20).min((to - self.end) as usize)];
        while self.end < to {
            let n = zeros.len().min((to - self.end) as usize);
            match file.write_at(&zeros[..n], self.end) {
                Ok(0) => return Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                Ok(w) => self.end += w as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Publishes the committed length `v` in the header (`header_map`: the
/// writer's map of the first page).
pub(crate) fn store_committed(header_map: &MmapRaw, v: u64) {
    let p = header_map.as_mut_ptr().wrapping_add(encode::OFF_COMMITTED);
    // SAFETY: the header map starts at file offset 0, so it is page aligned
    // and `p` (offset 16) is 8-aligned and within its 32 bytes; the caller's
    // reference keeps it mapped. One writer modifies the field (its thread
    // in direct mode, else the writer itself), only with atomic stores;
    // readers load it atomically. Release: the frame bytes are visible before
    // the length that covers them.
    unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.store(v.to_le(), Ordering::Release);
}

/// End of a direct-mode region that starts at file offset `base` in `buf`:
/// the buffer's last page is kept out of it, for the padding of the write.
fn direct_region_end(base: u64, buf: &[u8], page: u64) -> u64 {
    base + buf.len() as u64 - page
}

#[cold]
fn no_window(path: &Path) -> WriteError {
    WriteError {
        context: format!("writing to {}", path.display()),
        source: io::Error::other("no mapped window (an earlier mapping failed)"),
    }
}

fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_can_move_between_threads() {
        // A recorder finishes a rotated log on another thread.
        fn send<T: Send>() {}
        send::<LogWriter>();
        send::<super::super::LogReader>();
    }

    #[test]
    fn zero_fill_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut r = Reservation {
            end: 0,
            chunk: 1 << 16,
            page: 4096,
            zero_fill: true,
        };
        r.ensure(&file, &path, 5000).unwrap();
        assert_eq!(r.end, 1 << 16);
        assert_eq!(file.metadata().unwrap().len(), 1 << 16);
        r.ensure(&file, &path, (1 << 16) + 1).unwrap();
        assert_eq!(r.end, 2 << 16);
        assert_eq!(file.metadata().unwrap().len(), 2 << 16);
    }
}
