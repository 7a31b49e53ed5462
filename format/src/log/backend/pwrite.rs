//! [`WriteMode::Pwrite`](crate::log::WriteMode::Pwrite): frames are built
//! in a reusable buffer and each is written with one `pwrite` when it is
//! complete. The buffer stays cache-hot, so encoding into it and writing it
//! costs about what `write()` of already encoded bytes costs (the writer's
//! module docs say why this is the default).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Room, Span};
use crate::log::WriteError;

/// The frame buffer; the window's `base` is the file offset of its first
/// byte.
#[derive(Debug, Default)]
pub(super) struct Pwrite {
    buf: Vec<u8>,
}

impl Pwrite {
    #[inline(always)]
    pub(super) fn window_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    pub(super) fn window(&self) -> &[u8] {
        &self.buf
    }

    /// Grows the buffer (at least doubling, at least a MiB) to reach
    /// `room.need_end`; the bytes in it stay where they are.
    pub(super) fn make_room(&mut self, span: &mut Span, room: Room) {
        if room.need_end > span.end {
            let want = (room.need_end - span.base) as usize;
            let new_len = want.max(2 * self.buf.len()).max(1 << 20);
            self.buf.resize(new_len, 0);
            span.end = span.base + new_len as u64;
        }
    }

    /// Writes `[start, end)` with one `pwrite`; the next frame is then
    /// built from the start of the buffer, at `end`. On failure nothing
    /// moves: a later call retries.
    pub(super) fn complete(
        &mut self,
        span: &mut Span,
        file: &File,
        path: &Path,
        start: u64,
        end: u64,
    ) -> Result<(), WriteError> {
        let (from, to) = ((start - span.base) as usize, (end - span.base) as usize);
        file.write_all_at(&self.buf[from..to], start)
            .map_err(|e| WriteError {
                context: format!(
                    "writing a {}-byte frame at offset {start} of {}",
                    to - from,
                    path.display()
                ),
                source: e,
            })?;
        span.base = end;
        span.end = end + self.buf.len() as u64;
        Ok(())
    }
}
