//! What a [`LogWriter`](super::LogWriter) is asked for: how frames reach
//! the file ([`WriteMode`]) and how much space it reserves at a time
//! ([`WriterOptions`]).

/// How a [`LogWriter`](super::LogWriter) moves frames into the file (one
/// backend each, `backend/` in the source).
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
    /// committed, at [`LogWriter::flush_async`](super::LogWriter::flush_async), or at
    /// [`LogWriter::flush_committed`](super::LogWriter::flush_committed). Fails at creation where the file
    /// system does not support direct I/O.
    Direct,
}

/// Tuning of a [`LogWriter`](super::LogWriter); `Default` is what the recorder uses.
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
