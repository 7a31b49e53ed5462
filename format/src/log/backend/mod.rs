//! How bytes reach the file: one backend per [`WriteMode`], behind one
//! small interface, [`Backend`].
//!
//! A backend owns a *window*: memory that stands for the file bytes
//! `[base, end)`. The writer encodes and seals frames in the window and
//! tells the backend when a frame is complete; the backend knows nothing of
//! frames, records or checksums, only of byte ranges:
//!
//! - `pwrite.rs`: a reusable buffer, each completed range written with one
//!   `pwrite` ([`WriteMode::Pwrite`]);
//! - `mmap.rs`: a shared map of the file, prefaulted ahead of the writer
//!   ([`WriteMode::Mmap`]);
//! - `direct.rs`: page-aligned buffers written about a MiB at a time with
//!   `O_DIRECT` by a writer thread ([`WriteMode::Direct`]).
//!
//! With `Pwrite` and `Mmap`, when `commit` returns the frame is in the page
//! cache.
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
//! The dispatch is an enum, not a trait object: the window is reached on
//! the hot path (once per record), where a `match` costs what the writer's
//! old `Region` did and a virtual call would cost more.

mod direct;
mod mmap;
mod pwrite;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::header_map::HeaderMap;
use super::{WriteError, WriteMode};

/// The file range a window stands for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    /// File offset of the window's first byte.
    pub(super) base: u64,
    /// File offset of its end.
    pub(super) end: u64,
}

/// What a backend wants the window to hold after [`Backend::make_room`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    /// First byte to keep (the open frame's start, or `pos`): bytes from
    /// here to `pos` are already written into the window.
    pub(super) keep: u64,
    /// Next byte to write.
    pub(super) pos: u64,
    /// The window must reach at least this far.
    pub(super) need_end: u64,
    /// End of the reserved disk space: nothing past it is touched.
    pub(super) reserved_end: u64,
}

/// Who publishes a completed range's end as the committed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publish {
    /// The bytes are in the file (page cache): the writer publishes now.
    Now,
    /// The backend's thread publishes once it has written them.
    Later,
}

#[derive(Debug)]
enum Imp {
    Pwrite(pwrite::Pwrite),
    Mmap(mmap::Mmap),
    Direct(direct::Direct),
}

/// The backend of one log writer.
#[derive(Debug)]
pub(super) struct Backend {
    span: Span,
    imp: Imp,
}

impl Backend {
    /// The backend of `mode` for a file whose `header` is written and
    /// mapped (`header_map`), with pages of `page` bytes and windows of
    /// `chunk` bytes (mmap).
    pub(super) fn new(
        mode: WriteMode,
        file: &File,
        path: &Path,
        header_map: &Arc<HeaderMap>,
        header: &[u8],
        page: u64,
        chunk: u64,
    ) -> Result<Backend, WriteError> {
        let header_len = header.len() as u64;
        let mut span = Span {
            base: header_len,
            end: header_len,
        };
        let imp = match mode {
            WriteMode::Pwrite => Imp::Pwrite(pwrite::Pwrite::default()),
            WriteMode::Mmap => Imp::Mmap(mmap::Mmap::new(header_len, page, chunk)),
            WriteMode::Direct => Imp::Direct(direct::Direct::start(
                file,
                path,
                header_map.clone(),
                header,
                page,
                &mut span,
            )?),
        };
        Ok(Backend { span, imp })
    }

    /// File offset of the window's first byte.
    #[inline(always)]
    pub(super) fn base(&self) -> u64 {
        self.span.base
    }

    /// The window, `None` while there is none (mmap: a remap failed).
    #[inline(always)]
    pub(super) fn window_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.imp {
            Imp::Pwrite(p) => Some(p.window_mut()),
            Imp::Mmap(m) => m.window_mut(),
            Imp::Direct(d) => Some(d.window_mut()),
        }
    }

    /// The window, read-only.
    pub(super) fn window(&self) -> Option<&[u8]> {
        match &self.imp {
            Imp::Pwrite(p) => Some(p.window()),
            Imp::Mmap(m) => m.window(),
            Imp::Direct(d) => Some(d.window()),
        }
    }

    /// End of what can be written without [`Backend::make_room`]: the
    /// window's end, or (mmap) the end of its prefaulted part.
    pub(super) fn ready_end(&self) -> u64 {
        match &self.imp {
            Imp::Mmap(m) => m.ready_end(self.span.end),
            _ => self.span.end,
        }
    }

    /// Makes the window hold `[room.keep, room.need_end)` (and prefaulted,
    /// for mmap), keeping what is written of it.
    pub(super) fn make_room(
        &mut self,
        file: &File,
        path: &Path,
        room: Room,
    ) -> Result<(), WriteError> {
        match &mut self.imp {
            Imp::Pwrite(p) => {
                p.make_room(&mut self.span, room);
                Ok(())
            }
            Imp::Mmap(m) => m.make_room(&mut self.span, file, path, room),
            Imp::Direct(d) => d.make_room(&mut self.span, room),
        }
    }

    /// The bytes `[start, end)` of the window are complete (a sealed frame,
    /// nothing open after it): hands them to the file. On failure nothing
    /// changed and a later call may retry.
    pub(super) fn complete(
        &mut self,
        file: &File,
        path: &Path,
        start: u64,
        end: u64,
    ) -> Result<Publish, WriteError> {
        match &mut self.imp {
            Imp::Pwrite(p) => {
                p.complete(&mut self.span, file, path, start, end)?;
                Ok(Publish::Now)
            }
            Imp::Mmap(_) => Ok(Publish::Now),
            Imp::Direct(d) => {
                d.complete(&mut self.span, end)?;
                Ok(Publish::Later)
            }
        }
    }

    /// Starts writing back what is complete up to `complete` (`pos`: the
    /// next byte to write) without waiting: `msync(MS_ASYNC)` of the map;
    /// direct mode hands its buffer to the thread. Returns whether the
    /// page cache holds the bytes (then the caller starts its writeback).
    pub(super) fn flush_async(
        &mut self,
        path: &Path,
        complete: u64,
        pos: u64,
    ) -> Result<bool, WriteError> {
        match &mut self.imp {
            Imp::Direct(d) => {
                d.hand_off(&mut self.span, complete, pos)?;
                Ok(false)
            }
            Imp::Mmap(m) => {
                m.flush_async(path)?;
                Ok(true)
            }
            Imp::Pwrite(_) => Ok(true),
        }
    }

    /// Blocks until everything complete up to `complete` is in the file as
    /// far as a crash of the process is concerned (only direct mode has
    /// anything to wait for).
    pub(super) fn flush_committed(&mut self, complete: u64, pos: u64) -> Result<(), WriteError> {
        match &mut self.imp {
            Imp::Direct(d) => d.flush_committed(&mut self.span, complete, pos),
            _ => Ok(()),
        }
    }

    /// The committed length the backend's thread published, if it has one.
    pub(super) fn published(&self) -> Option<u64> {
        match &self.imp {
            Imp::Direct(d) => Some(d.published()),
            _ => None,
        }
    }

    /// Writes what is complete up to `complete`, waits for it, stops any
    /// thread and drops the window (the file may be cut below it next).
    pub(super) fn close(&mut self, complete: u64, pos: u64) -> Result<(), WriteError> {
        if let Imp::Direct(d) = &mut self.imp {
            d.hand_off(&mut self.span, complete, pos)?;
            d.stop()?;
        }
        self.imp = Imp::Pwrite(pwrite::Pwrite::default());
        Ok(())
    }

    /// An unfinished writer is dropped (an error path, a panic): hands what
    /// is complete to the thread, which writes it before it stops (the
    /// other backends have written everything complete already).
    pub(super) fn abandon(&mut self, complete: u64, pos: u64) {
        if let Imp::Direct(d) = &mut self.imp {
            let _ = d.hand_off(&mut self.span, complete, pos);
        }
    }
}
