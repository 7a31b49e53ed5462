//! The header's two mutable fields, `committed_len` and `state`, in a small
//! shared map of the file's first page: stored with release ordering, so
//! that a reader (or a crash) sees a committed length only after the bytes
//! it covers (FORMAT.md section 3). Shared by the writer and the direct
//! backend's thread, which publishes what it has written.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::WriteError;
use super::layout;

/// Bytes of the first page mapped for the two mutable header fields.
const HEADER_MAP_LEN: usize = layout::OFF_STATIC;

/// The writer's map of the first page of its log.
#[derive(Debug)]
pub(super) struct HeaderMap(MmapRaw);

impl HeaderMap {
    /// Maps the header of `file` (already written).
    pub(super) fn new(file: &File, path: &Path) -> Result<HeaderMap, WriteError> {
        MmapOptions::new()
            .len(HEADER_MAP_LEN)
            .map_raw(file)
            .map(HeaderMap)
            .map_err(|e| WriteError {
                context: format!("mapping the header of {}", path.display()),
                source: e,
            })
    }

    /// Publishes the committed length `v`.
    pub(super) fn store_committed(&self, v: u64) {
        let p = self.0.as_mut_ptr().wrapping_add(layout::OFF_COMMITTED);
        // SAFETY: the header map starts at file offset 0, so it is page
        // aligned and `p` (offset 16) is 8-aligned and within its 32 bytes;
        // the caller's reference keeps it mapped. One writer modifies the
        // field (its thread in direct mode, else the writer itself), only
        // with atomic stores; readers load it atomically. Release: the frame
        // bytes are visible before the length that covers them.
        unsafe { AtomicU64::from_ptr(p.cast::<u64>()) }.store(v.to_le(), Ordering::Release);
    }

    /// Stores the state (recording, closed).
    pub(super) fn store_state(&self, v: u32) {
        let p = self.0.as_mut_ptr().wrapping_add(layout::OFF_STATE);
        // SAFETY: as for `store_committed`: offset 24 of a page-aligned
        // 32-byte map, 4-aligned, only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(v.to_le(), Ordering::Release);
    }

    /// `msync(MS_ASYNC)` of the header page.
    pub(super) fn flush_async(&self) -> std::io::Result<()> {
        self.0.flush_async()
    }
}
