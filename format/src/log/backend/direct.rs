//! [`WriteMode::Direct`](crate::log::WriteMode::Direct): page-aligned
//! buffers written with `O_DIRECT` by a writer thread.
//!
//! # Why
//!
//! A buffered `pwrite` of every batch costs the recorder more CPU than
//! anything else it does: the copy into the page cache, the file system's
//! per-page bookkeeping (folio allocation, buffer heads, dirtying) and later
//! the writeback, all for bytes that are never read again. Writing whole
//! MiB blocks with `O_DIRECT` skips the page cache: on the reference VM
//! (ext4 on virtio) it costs 0.06-0.18 ns of system time per byte against
//! 1.0-1.1 for 40 KiB buffered writes and their `fsync` (`fio`, 2 GiB; see
//! BENCHMARKS.md for the recorder's own figures).
//!
//! # How
//!
//! [`LogWriter`](crate::log::LogWriter) encodes and seals frames in a
//! page-aligned buffer exactly as in `Pwrite` mode, but keeps several
//! commits in it; once it holds [`HAND_OFF_BYTES`] (or when the owner
//! flushes), the buffer goes to this thread, which writes it with one
//! direct `pwrite` (padded to whole pages) and only then publishes the new
//! committed length in the header. The last, partial page is copied to the
//! next buffer and written again with it, so the file is always written in
//! whole pages, in order, by one thread: two writes of the same page can
//! never race. The first page is the exception: it is mapped for the
//! header's mutable fields, so the bytes of it after the header go through
//! the page cache, once, with a buffered `pwrite`.
//!
//! # What it changes
//!
//! Committed frames become durable against a crash of the recorder when
//! their buffer is written, not when `commit` returns: at most
//! [`HAND_OFF_BYTES`] plus the buffers in flight, or whatever arrived since
//! the owner's last [`flush_async`](crate::log::LogWriter::flush_async), is lost
//! by `kill -9`. The file's bytes are identical to the other modes'.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use memmap2::{Advice, MmapMut};

use super::{Room, Span};
use crate::log::WriteError;
use crate::log::header_map::HeaderMap;

/// The direct backend: the buffer being filled, and the thread.
#[derive(Debug)]
pub(super) struct Direct {
    /// A page-aligned buffer at the window's base (page-aligned). Its bytes
    /// below the committed length are already handed off; they are written
    /// again with the rest of their page. Its last page is kept out of the
    /// window, for the padding of the write.
    buf: MmapMut,
    thread: DirectWriter,
    page: u64,
}

impl Direct {
    /// Starts the thread for a file whose `header` is written, and sets up
    /// the first window at the header's last page (written again whole).
    /// Fails, removing the file, where the file system has no direct I/O.
    pub(super) fn start(
        file: &File,
        path: &Path,
        header_map: Arc<HeaderMap>,
        header: &[u8],
        page: u64,
        span: &mut Span,
    ) -> Result<Direct, WriteError> {
        let header_len = header.len() as u64;
        let started = DirectWriter::start(file, path, header_map, header_len, page);
        let mut thread = started.inspect_err(|_| {
            // No direct I/O here: leave no header-only file behind.
            let _ = std::fs::remove_file(path);
        })?;
        let mut buf = thread.buffer(BUFFER_BYTES)?;
        span.base = header_len / page * page;
        let kept = (header_len - span.base) as usize;
        buf[..kept].copy_from_slice(&header[span.base as usize..]);
        span.end = window_end(span.base, &buf, page);
        Ok(Direct { buf, thread, page })
    }

    #[inline(always)]
    pub(super) fn window_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub(super) fn window(&self) -> &[u8] {
        &self.buf
    }

    /// Moves what is written to a larger buffer when `room` needs one.
    pub(super) fn make_room(&mut self, span: &mut Span, room: Room) -> Result<(), WriteError> {
        if room.need_end > span.end {
            let page = self.page;
            let used = (room.pos - span.base) as usize;
            let want = (room.need_end - span.base + page) as usize;
            let mut bigger = self.thread.buffer(want.max(2 * self.buf.len()))?;
            bigger[..used].copy_from_slice(&self.buf[..used]);
            self.thread
                .recycle(std::mem::replace(&mut self.buf, bigger));
            span.end = window_end(span.base, &self.buf, page);
        }
        Ok(())
    }

    /// Bytes up to `end` are complete: handed to the thread once the buffer
    /// holds `HAND_OFF_BYTES` of them.
    pub(super) fn complete(&mut self, span: &mut Span, end: u64) -> Result<(), WriteError> {
        if end - span.base >= HAND_OFF_BYTES {
            self.hand_off(span, end, end)?;
        }
        Ok(())
    }

    /// Hands the bytes complete up to `end` to the thread. The page holding
    /// `end`, and the bytes after it up to `pos` (an open frame's), move to
    /// a fresh buffer that continues the window.
    pub(super) fn hand_off(
        &mut self,
        span: &mut Span,
        end: u64,
        pos: u64,
    ) -> Result<(), WriteError> {
        if end == self.thread.handed_off() {
            return Ok(());
        }
        let page = self.page;
        let base = span.base;
        let carry_from = end / page * page;
        let carry = (carry_from - base) as usize..(pos - base) as usize;
        let mut next = self.thread.buffer(self.buf.len())?;
        next[..carry.len()].copy_from_slice(&self.buf[carry.clone()]);
        // Bytes past `pos` are stale; the file gets zeros up to the page end.
        let pad_end = (end.div_ceil(page) * page - base) as usize;
        if carry.end < pad_end {
            self.buf[carry.end..pad_end].fill(0);
        }
        span.end = window_end(carry_from, &next, page);
        let full = std::mem::replace(&mut self.buf, next);
        self.thread.submit(full, base, end)?;
        span.base = carry_from;
        Ok(())
    }

    /// Hands off what is complete up to `end` and waits until every buffer
    /// is written.
    pub(super) fn flush_committed(
        &mut self,
        span: &mut Span,
        end: u64,
        pos: u64,
    ) -> Result<(), WriteError> {
        self.hand_off(span, end, pos)?;
        self.thread.wait()
    }

    /// The committed length in the file (written by the thread).
    pub(super) fn published(&self) -> u64 {
        self.thread.published()
    }

    /// Waits for the writes, stops the thread.
    pub(super) fn stop(&mut self) -> Result<(), WriteError> {
        self.thread.stop()
    }
}

/// End of a window that starts at file offset `base` in `buf`: the
/// buffer's last page is kept out of it, for the padding of the write.
fn window_end(base: u64, buf: &[u8], page: u64) -> u64 {
    base + buf.len() as u64 - page
}

/// Committed bytes a buffer gathers before it is handed to the thread:
/// large enough that a direct write costs little per byte (a write costs
/// tens of µs on a virtual disk whatever its size), small enough to stay a
/// few ms of traffic at full speed.
const HAND_OFF_BYTES: u64 = 1 << 20;
/// Initial size of a buffer: a hand-off's worth and room for the frame that
/// crosses it (grown when a larger frame needs it).
const BUFFER_BYTES: usize = 2 << 20;
/// Buffers being written at most; the recorder waits for one when the disk
/// falls this far behind.
const IN_FLIGHT_MAX: usize = 4;

/// A buffer on its way to the file.
struct Job {
    buf: MmapMut,
    /// File offset of `buf[0]` (page-aligned).
    base: u64,
    /// File offset up to which the file is already written.
    from: u64,
    /// End of the committed bytes in `buf`: the new committed length.
    end: u64,
}

/// A buffer coming back.
enum Done {
    Written(MmapMut),
    Failed(MmapMut, WriteError),
}

/// The main thread's side of the writer thread.
#[derive(Debug)]
struct DirectWriter {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    spare: Vec<MmapMut>,
    in_flight: usize,
    /// End of the bytes handed to the thread.
    handed_off: u64,
    /// Committed length the thread published last.
    published: Arc<AtomicU64>,
    /// A write failed: nothing is written any more.
    failed: bool,
    path: PathBuf,
}

impl DirectWriter {
    /// Opens `path` (already created by the writer, `committed` bytes long
    /// and written) a second time with `O_DIRECT` and starts the thread.
    fn start(
        file: &File,
        path: &Path,
        header_map: Arc<HeaderMap>,
        committed: u64,
        page: u64,
    ) -> Result<DirectWriter, WriteError> {
        let direct = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .map_err(|e| WriteError {
                context: format!(
                    "opening {} for direct I/O (O_DIRECT: EINVAL means the file \
                     system does not support it)",
                    path.display()
                ),
                source: e,
            })?;
        let buffered = file.try_clone().map_err(|e| WriteError {
            context: format!("duplicating the descriptor of {}", path.display()),
            source: e,
        })?;
        let (jobs, job_rx) = sync_channel::<Job>(IN_FLIGHT_MAX);
        // Unbounded, so the thread never waits for the main thread; the
        // main thread keeps at most IN_FLIGHT_MAX jobs out.
        let (done_tx, done) = channel::<Done>();
        let published = Arc::new(AtomicU64::new(committed));
        let thread = {
            let published = published.clone();
            let file_path = path.to_path_buf();
            std::thread::Builder::new()
                .name("imp2-log-write".into())
                .spawn(move || {
                    let files = Files {
                        direct,
                        buffered,
                        page,
                        path: file_path,
                    };
                    for job in job_rx {
                        let reply = files.write(job, &header_map, &published);
                        let failed = matches!(reply, Done::Failed(..));
                        if done_tx.send(reply).is_err() || failed {
                            break;
                        }
                    }
                })
                .map_err(|e| WriteError {
                    context: format!("starting the writer thread of {}", path.display()),
                    source: e,
                })?
        };
        Ok(DirectWriter {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            spare: Vec::new(),
            in_flight: 0,
            handed_off: committed,
            published,
            failed: false,
            path: path.to_path_buf(),
        })
    }

    /// End of the bytes handed to the thread so far.
    fn handed_off(&self) -> u64 {
        self.handed_off
    }

    /// The committed length in the file (written by the thread).
    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A page-aligned buffer of at least `min_len` bytes, a returned one
    /// if it is large enough. Waits while `IN_FLIGHT_MAX` buffers are out:
    /// the disk is that far behind.
    fn buffer(&mut self, min_len: usize) -> Result<MmapMut, WriteError> {
        self.collect(false)?;
        while self.in_flight >= IN_FLIGHT_MAX {
            self.collect(true)?;
        }
        match self.spare.pop() {
            Some(b) if b.len() >= min_len => Ok(b),
            _ => {
                let buf = MmapMut::map_anon(min_len).map_err(|e| WriteError {
                    context: format!("allocating a {min_len}-byte write buffer"),
                    source: e,
                })?;
                // Huge pages where the kernel has them (`madvise` mode):
                // a direct write pins one page instead of 512, and the
                // encoder's stores miss the TLB less. Only an optimisation.
                let _ = buf.advise(Advice::HugePage);
                Ok(buf)
            }
        }
    }

    /// Gives back a buffer that was not handed off (replaced by a larger
    /// one).
    fn recycle(&mut self, buf: MmapMut) {
        self.spare.push(buf);
    }

    /// Hands `buf` to the thread: its bytes up to file offset `end` (from
    /// file offset `base`, page-aligned) are committed; the thread writes
    /// those not yet written, padded to a whole page, then publishes `end`.
    /// The caller has zeroed or filled the padding.
    fn submit(&mut self, buf: MmapMut, base: u64, end: u64) -> Result<(), WriteError> {
        self.check()?;
        let job = Job {
            buf,
            base,
            from: self.handed_off,
            end,
        };
        let Some(jobs) = &self.jobs else {
            return Err(self.stopped());
        };
        if jobs.send(job).is_err() {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        self.handed_off = end;
        Ok(())
    }

    /// Waits until every buffer handed off is written.
    fn wait(&mut self) -> Result<(), WriteError> {
        while self.in_flight > 0 {
            self.collect(true)?;
        }
        self.check()
    }

    /// Waits for the writes, stops the thread.
    fn stop(&mut self) -> Result<(), WriteError> {
        let waited = self.wait();
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        waited
    }

    /// Takes the buffers the thread returned; `block`: wait for one.
    fn collect(&mut self, block: bool) -> Result<(), WriteError> {
        let mut block = block;
        loop {
            let reply = if block {
                block = false;
                match self.done.recv() {
                    Ok(r) => r,
                    Err(_) => {
                        self.in_flight = 0;
                        return Err(self.stopped());
                    }
                }
            } else {
                match self.done.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            };
            self.in_flight -= 1;
            match reply {
                Done::Written(b) => self.spare.push(b),
                Done::Failed(b, e) => {
                    self.spare.push(b);
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }

    fn check(&self) -> Result<(), WriteError> {
        if self.failed {
            Err(self.stopped())
        } else {
            Ok(())
        }
    }

    #[cold]
    fn stopped(&self) -> WriteError {
        WriteError {
            context: format!("writing {}", self.path.display()),
            source: io::Error::other("an earlier write of the log failed; nothing more is written"),
        }
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The thread's descriptors.
struct Files {
    direct: File,
    buffered: File,
    page: u64,
    path: PathBuf,
}

impl Files {
    fn write(&self, job: Job, header_map: &HeaderMap, published: &AtomicU64) -> Done {
        match self.write_job(&job) {
            Ok(()) => {
                header_map.store_committed(job.end);
                published.store(job.end, Ordering::Release);
                Done::Written(job.buf)
            }
            Err((at, len, e)) => Done::Failed(
                job.buf,
                WriteError {
                    context: format!(
                        "writing {len} bytes at offset {at} of {} (direct I/O)",
                        self.path.display()
                    ),
                    source: e,
                },
            ),
        }
    }

    /// Writes `[job.from, job.end)`: what lies in the first page through
    /// the page cache, the rest directly in whole pages.
    fn write_job(&self, job: &Job) -> Result<(), (u64, usize, io::Error)> {
        let slice =
            |from: u64, to: u64| &job.buf[(from - job.base) as usize..(to - job.base) as usize];
        let mut at = job.from;
        if at < self.page {
            let to = job.end.min(self.page);
            let bytes = slice(at, to);
            self.buffered
                .write_all_at(bytes, at)
                .map_err(|e| (at, bytes.len(), e))?;
            at = to;
        }
        if at < job.end {
            let from = at / self.page * self.page;
            let to = job.end.div_ceil(self.page) * self.page;
            let bytes = slice(from, to);
            self.direct
                .write_all_at(bytes, from)
                .map_err(|e| (from, bytes.len(), e))?;
        }
        Ok(())
    }
}
