//! Appending to a log: frames, and the commit protocol (FORMAT.md section
//! 8).
//!
//! Records are encoded in place, behind a blank frame header, in the
//! window of the [`WriteMode`]'s backend (`backend/`, which says how each
//! moves bytes to the file and why `pwrite` is the default); [`LogWriter`]
//! seals each frame, hands it to the backend and moves the header's
//! `committed_len` (in a small shared map of the first page) past it with a
//! release store, so it survives `kill -9`. In [`WriteMode::Direct`] the
//! writer thread moves it once the frame's buffer is written.
//!
//! Disk space is reserved ahead (`reserve.rs`) *before* any of it is
//! written or mapped: a full disk is a [`WriteError`] with
//! [`WriteError::is_disk_full`], never a `SIGBUS` on a mapped page. Room
//! for the footer is always held back, so a log whose disk filled up can
//! still be [`finish`](LogWriter::finish)ed cleanly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backend::{Backend, Publish, Room};
use super::header_map::HeaderMap;
use super::layout::{self, Prev};
use super::lock;
use super::reserve::Reservation;
use super::{
    Footer, Interface, LogHeader, Losses, StopReason, WriteError, WriteMode, WriterOptions,
};
use crate::crc::crc32c_append;
use crate::record::PacketRecord;

/// Room always kept reserved for closing the log: one LOSSES frame (the
/// losses counted after a write error, [`LogWriter::finish_with_losses`])
/// and the footer frame, with the longest stop reason (which is what a
/// full disk records).
const FOOTER_RESERVE: u64 =
    (2 * layout::FRAME_HEADER_LEN + layout::MAX_LOSSES_PAYLOAD + layout::MAX_FOOTER_PAYLOAD) as u64;
/// A RECORDS frame is committed early rather than grow past this payload
/// (bounds the frame buffer and the mapped window when commits are rare).
const MAX_FRAME_BYTES: u64 = 16 << 20;
/// Records bigger than this could not fit a frame's u32 payload length.
const MAX_RECORD_DATA: usize = u32::MAX as usize - 64;
/// Records are checksummed in chunks of at least this many bytes: large
/// enough for the CRC's fast path, small enough to be in L1/L2 still.
const CRC_CHUNK: u64 = 32 << 10;
/// `frame_start` when no frame is open.
const NO_FRAME: u64 = u64::MAX;

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
    header_map: Arc<HeaderMap>,
    /// Where the bytes go: the window the frames are built in.
    backend: Backend,
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
        let hdr = layout::encode_header(header).map_err(|m| WriteError {
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
        let mut reservation = Reservation::new(options.chunk_bytes);
        let header_len = hdr.len() as u64;
        reservation.ensure(&file, path, header_len + FOOTER_RESERVE)?;
        file.write_all_at(&hdr, 0).map_err(|e| WriteError {
            context: ctx("writing the header of"),
            source: e,
        })?;
        let header_map = Arc::new(HeaderMap::new(&file, path)?);
        let backend = Backend::new(
            options.mode,
            &file,
            path,
            &header_map,
            &hdr,
            reservation.page,
            reservation.chunk,
        )?;
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            mode: options.mode,
            header_map,
            backend,
            pos: header_len,
            limit: header_len, // the first append sets up the region
            append_limit: 0,
            reservation,
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
        let rec_max = (layout::MAX_RECORD_OVERHEAD + data_len) as u64;
        if self.pos + rec_max > self.append_limit {
            self.prepare_append(record.tstamp_ns, rec_max)?;
        }
        let off = (self.pos - self.backend.base()) as usize;
        let out = match self.backend.window_mut() {
            Some(w) => &mut w[off..],
            // `limit` never lets a write past `make_room` without a window.
            None => return Err(no_window(&self.path)),
        };
        let n = layout::encode_record(out, record, &mut self.prev);
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
        if self.backend.window().is_none() {
            // An earlier remap failed (mmap): map the open frame again.
            self.make_room(0, false)?;
        }
        let base = self.backend.base();
        let at = (self.frame_start - base) as usize
            + layout::FRAME_HEADER_LEN
            + layout::RECORDS_COUNT_OFF;
        let count = self.frame_count.to_le_bytes();
        let start = (self.frame_start - base) as usize;
        let end = (self.pos - base) as usize;
        let crc_from = (self.crc_to - base) as usize;
        let records_crc = self.records_crc;
        let region = self.region_mut()?;
        let crc = crc32c_append(records_crc, &region[crc_from..end]);
        region[at..at + 4].copy_from_slice(&count);
        layout::seal_records_frame(&mut region[start..end], crc);
        self.publish_and_commit()
    }

    /// Records an interface seen after the header was written (own frame,
    /// committed at once, after committing the open frame).
    pub fn add_interface(&mut self, interface: &Interface) -> Result<(), WriteError> {
        self.commit()?;
        self.write_frame(
            layout::FRAME_INTERFACE,
            &layout::encode_interface(interface),
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
        let mut payload = Vec::with_capacity(layout::MAX_LOSSES_PAYLOAD);
        layout::encode_losses(&mut payload, delta);
        self.write_frame(layout::FRAME_LOSSES, &payload, closing)?;
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
        self.backend.published().unwrap_or(self.committed)
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
        let cached = self
            .backend
            .flush_async(&self.path, self.committed, self.pos)?;
        self.update_limit();
        if !cached {
            return Ok(());
        }
        let err = |e| WriteError {
            context: format!("starting writeback of {}", self.path.display()),
            source: e,
        };
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
        self.write_frame(layout::FRAME_FOOTER, &layout::encode_footer(&footer), true)?;
        // Direct mode: written and published before the log says it is
        // closed. The window is unmapped before the file is cut below it.
        self.backend.close(self.committed, self.pos)?;
        self.header_map.store_state(layout::STATE_CLOSED);
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
        let from = (self.crc_to - self.backend.base()) as usize;
        let to = (self.pos - self.backend.base()) as usize;
        let Some(window) = self.backend.window() else {
            return; // unreachable: a record was just written
        };
        let bytes = &window[from..to];
        self.records_crc = crc32c_append(self.records_crc, bytes);
        self.crc_to = self.pos;
    }

    /// The window, for the cold paths.
    fn region_mut(&mut self) -> Result<&mut [u8], WriteError> {
        match self.backend.window_mut() {
            Some(w) => Ok(w),
            None => Err(no_window(&self.path)),
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
        let prefix = (layout::FRAME_HEADER_LEN + layout::RECORDS_PREFIX_LEN) as u64;
        if self.pos + prefix + rec_max > self.limit {
            self.make_room(prefix + rec_max, false)?;
        }
        let off = (self.pos - self.backend.base()) as usize + layout::FRAME_HEADER_LEN;
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
        let len = (layout::FRAME_HEADER_LEN + payload.len()) as u64;
        if self.pos + len > self.limit {
            self.make_room(len, footer)?;
        }
        let off = (self.pos - self.backend.base()) as usize + layout::FRAME_HEADER_LEN;
        self.region_mut()?[off..off + payload.len()].copy_from_slice(payload);
        self.frame_start = self.pos;
        self.pos += len;
        let start = off - layout::FRAME_HEADER_LEN;
        let end = off + payload.len();
        layout::seal_frame(&mut self.region_mut()?[start..end], frame_type);
        self.publish_and_commit()
    }

    /// Hands the sealed open frame to the backend and publishes the new
    /// committed length (direct mode: the writer thread publishes it once
    /// the frame is written).
    fn publish_and_commit(&mut self) -> Result<(), WriteError> {
        // On failure the frame stays open: a later commit retries it.
        let publish = self
            .backend
            .complete(&self.file, &self.path, self.frame_start, self.pos)?;
        self.committed = self.pos;
        self.frame_start = NO_FRAME;
        self.frame_count = 0;
        if publish == Publish::Now {
            self.header_map.store_committed(self.pos);
        }
        self.update_limit();
        Ok(())
    }

    /// Blocks until every committed frame is in the file, as far as a crash
    /// of this process is concerned (in the page cache or on the device).
    /// Only direct mode has anything to wait for: it hands its buffer to the
    /// writer thread and waits for the writes.
    pub fn flush_committed(&mut self) -> Result<(), WriteError> {
        let flushed = self.backend.flush_committed(self.committed, self.pos);
        self.update_limit();
        flushed
    }

    /// Slow path of every write: reserves disk space and has the backend
    /// (re)arrange its window so that `need` bytes can be written at `pos`,
    /// keeping the open frame contiguous. `footer`: the write may use the
    /// footer's reserve.
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
        let room = self.room(need_end);
        let made = self.backend.make_room(&self.file, &self.path, room);
        self.update_limit();
        made
    }

    /// What the window must hold for writing up to `need_end`: the open
    /// frame (or `pos`) on.
    fn room(&self, need_end: u64) -> Room {
        Room {
            keep: if self.frame_start == NO_FRAME {
                self.pos
            } else {
                self.frame_start
            },
            pos: self.pos,
            need_end,
            reserved_end: self.reservation.end,
        }
    }

    fn update_limit(&mut self) {
        let limit = self
            .backend
            .ready_end()
            .min(self.reservation.end.saturating_sub(FOOTER_RESERVE));
        self.limit = limit;
        self.append_limit = if self.frame_start == NO_FRAME {
            0
        } else {
            limit
                .min(self.frame_start + MAX_FRAME_BYTES)
                .min(self.crc_to + CRC_CHUNK)
        };
    }
}

impl Drop for LogWriter {
    /// An unfinished writer (an error path, a panic) hands what is committed
    /// to the writer thread, which writes it before it stops (direct mode;
    /// the other modes have written everything committed already).
    fn drop(&mut self) {
        self.backend.abandon(self.committed, self.pos);
    }
}

#[cold]
fn no_window(path: &Path) -> WriteError {
    WriteError {
        context: format!("writing to {}", path.display()),
        source: io::Error::other("no mapped window (an earlier mapping failed)"),
    }
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
}
