//! [`WriteMode::Mmap`](crate::log::WriteMode::Mmap): frames are encoded
//! directly into a shared map of the file, in windows of the chunk size,
//! prefaulted with `MADV_POPULATE_WRITE` a few MiB ahead of the write
//! position so that the copies take no page faults.
//!
//! It saves the copy of a `pwrite`, but new pages of a file must be zeroed
//! by the kernel before a map can expose them, and that costs more than the
//! copy on machines whose kernel zeroes pages slowly (the writer's module
//! docs, and the `append_bandwidth` example, which measures both).

use std::fs::File;
use std::path::Path;

use memmap2::{Advice, MmapMut, MmapOptions};

use super::{Room, Span};
use crate::log::WriteError;

/// How far ahead of the write position a window is prefaulted.
const PREFAULT_AHEAD: u64 = 4 << 20;

/// The mapped window and how far it is prefaulted.
#[derive(Debug)]
pub(super) struct Mmap {
    /// The window; `None` until the first frame needs it, and after a
    /// remap failed.
    map: Option<MmapMut>,
    /// Offset up to which the window is prefaulted.
    populated_to: u64,
    /// `MADV_POPULATE_WRITE` works here (Linux >= 5.14).
    populate: bool,
    page: u64,
    /// Smallest window, bytes (whole pages).
    chunk: u64,
}

impl Mmap {
    /// No window yet; the first write maps one at `start`.
    pub(super) fn new(start: u64, page: u64, chunk: u64) -> Mmap {
        Mmap {
            map: None,
            populated_to: start,
            populate: true,
            page,
            chunk,
        }
    }

    #[inline(always)]
    pub(super) fn window_mut(&mut self) -> Option<&mut [u8]> {
        self.map.as_deref_mut()
    }

    pub(super) fn window(&self) -> Option<&[u8]> {
        self.map.as_deref()
    }

    /// End of what can be written without faulting: the prefaulted part
    /// of the window ending at `end`.
    pub(super) fn ready_end(&self, end: u64) -> u64 {
        if self.populate {
            end.min(self.populated_to)
        } else {
            end
        }
    }

    /// Maps a new window when `room` needs one (starting at the page of
    /// `room.keep`, reaching at least `room.need_end`), and prefaults.
    pub(super) fn make_room(
        &mut self,
        span: &mut Span,
        file: &File,
        path: &Path,
        room: Room,
    ) -> Result<(), WriteError> {
        if room.need_end > span.end {
            let page = self.page;
            let start = room.keep / page * page;
            let len = (room.need_end - start).div_ceil(page) * page;
            let len = len.max(self.chunk);
            // Unmap the old window first: address space, and the new one may
            // overlap it. Until the new one exists, nothing may be written.
            self.map = None;
            span.end = span.base;
            let map_len = usize::try_from(len).unwrap_or(usize::MAX);
            // SAFETY: the map is of a file this writer created and owns for
            // writing; nothing else is supposed to truncate it. Bytes past the
            // reserved length (where the file may end) are never touched: every
            // write is checked against the writer's limit, which never exceeds
            // the reservation. The only other view of the file in this process
            // is the header map, which never overlaps a window's bytes in use
            // (windows start at or after `header_len`'s page and the header
            // fields are never written through a window).
            let map = unsafe { MmapOptions::new().offset(start).len(map_len).map_mut(file) }
                .map_err(|e| WriteError {
                    context: format!(
                        "mapping {len} bytes at offset {start} of {}",
                        path.display()
                    ),
                    source: e,
                })?;
            // A hint for readahead and reclaim; its failure changes nothing.
            let _ = map.advise(Advice::Sequential);
            self.map = Some(map);
            span.base = start;
            span.end = start + len;
            // The new mapping has no page tables yet.
            self.populated_to = (room.pos / page * page).max(start);
        }
        if self.populate && room.need_end > self.populated_to {
            self.prefault(span, room);
        }
        Ok(())
    }

    /// Prefaults the window from the populated frontier to `PREFAULT_AHEAD`
    /// past `room.need_end` (within the window and the reservation), so the
    /// copies that follow take no page faults.
    fn prefault(&mut self, span: &Span, room: Room) {
        let page = self.page;
        let from = self.populated_to.max(room.pos / page * page);
        let to = (room.need_end + PREFAULT_AHEAD)
            .div_ceil(page)
            .saturating_mul(page)
            .min(span.end)
            .min(room.reserved_end);
        if to <= from {
            self.populated_to = self.populated_to.max(room.need_end);
            return;
        }
        let Some(m) = &self.map else {
            return;
        };
        let off = (from - span.base) as usize;
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

    /// `msync(MS_ASYNC)` of the window.
    pub(super) fn flush_async(&self, path: &Path) -> Result<(), WriteError> {
        match &self.map {
            Some(m) => m.flush_async().map_err(|e| WriteError {
                context: format!("starting writeback of {}", path.display()),
                source: e,
            }),
            None => Ok(()),
        }
    }
}
