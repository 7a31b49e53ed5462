//! Appending to a log through a memory map. (Contract: implementation in progress.)

use std::path::Path;

use super::{Footer, Interface, LogHeader, Losses};
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
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Writer of one log file.
#[derive(Debug)]
pub struct LogWriter {
    _private: (),
}

impl LogWriter {
    /// Creates (truncating) `path` and writes `header` (committed at once).
    pub fn create(path: &Path, header: &LogHeader) -> Result<LogWriter, WriteError> {
        let _ = (path, header);
        todo!()
    }

    /// Appends one record to the open frame, opening one if needed. Nothing
    /// is visible to readers until [`LogWriter::commit`].
    pub fn append(&mut self, record: &PacketRecord<'_>) -> Result<(), WriteError> {
        let _ = record;
        todo!()
    }

    /// Closes the open frame (if any) and moves the committed length past
    /// it. Call once per received batch.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        todo!()
    }

    /// Records an interface seen after the header was written (own frame,
    /// committed at once, after committing the open frame).
    pub fn add_interface(&mut self, interface: &Interface) -> Result<(), WriteError> {
        let _ = interface;
        todo!()
    }

    /// Records losses learnt since the last call (own frame, committed at
    /// once, after committing the open frame).
    pub fn add_losses(&mut self, delta: &Losses) -> Result<(), WriteError> {
        let _ = delta;
        todo!()
    }

    /// Records appended so far (committed or not).
    pub fn records(&self) -> u64 {
        todo!()
    }

    /// Losses added so far.
    pub fn losses(&self) -> &Losses {
        todo!()
    }

    /// Bytes of the file that readers trust.
    pub fn committed_len(&self) -> u64 {
        todo!()
    }

    /// Asks the kernel to write dirty pages back (`msync(MS_ASYNC)`).
    pub fn flush_async(&mut self) -> Result<(), WriteError> {
        todo!()
    }

    /// Commits, writes the footer, marks the log closed, syncs and
    /// truncates the file to its real length. Returns the footer.
    pub fn finish(self, closed_ns: u64) -> Result<Footer, WriteError> {
        let _ = closed_ns;
        todo!()
    }
}
