//! Disk space reserved ahead of the writer (FORMAT.md section 8):
//! `fallocate`, or zeros written where the file system cannot, *before*
//! any of it is written or mapped, so that a full disk is a [`WriteError`]
//! and never a `SIGBUS` on a mapped page.
//!
//! Reservations are made in steps that double from a MiB to
//! [`WriterOptions::chunk_bytes`](super::WriterOptions::chunk_bytes). When
//! a whole step no longer fits, the writer reserves just what the next
//! record needs, so a log fills the disk to the last page.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::WriteError;

/// The first disk reservation of a log, bytes; each later one is as large
/// as the file so far, up to the chunk
/// ([`WriterOptions::chunk_bytes`](super::WriterOptions::chunk_bytes)).
/// Doubling from a MiB reaches the 64 MiB chunk after seven reservations, a
/// few `fallocate` calls more per log than reserving whole chunks.
const FIRST_RESERVE_STEP: u64 = 1 << 20;

/// Disk space reserved ahead of the writer.
#[derive(Debug)]
pub(super) struct Reservation {
    /// File offset up to which space is allocated (and the file is at
    /// least this long).
    pub(super) end: u64,
    pub(super) chunk: u64,
    pub(super) page: u64,
    /// `fallocate` is not supported here: reserve by writing zeros.
    zero_fill: bool,
}

impl Reservation {
    /// Nothing reserved yet; later steps up to `chunk_bytes` (rounded up to
    /// whole pages).
    pub(super) fn new(chunk_bytes: u64) -> Reservation {
        let page = page_size();
        Reservation {
            end: 0,
            chunk: chunk_bytes.max(1).div_ceil(page) * page,
            page,
            zero_fill: false,
        }
    }

    /// Makes sure space up to `min_end` is allocated: a whole chunk if the
    /// disk allows, else just enough.
    pub(super) fn ensure(
        &mut self,
        file: &File,
        path: &Path,
        min_end: u64,
    ) -> Result<(), WriteError> {
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
    use std::fs::OpenOptions;

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
