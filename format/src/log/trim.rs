//! Cutting a log back to its committed length.
//!
//! A recorder reserves disk space ahead of what it writes and, when it
//! closes the log, truncates the file to its committed length. One that
//! dies first (`kill -9`, a crash, a power cut) leaves the reservation
//! behind: bytes past the committed length that no reader uses.
//! [`trim_to_committed`] gives them back, under the writer's lock, so that
//! a log still being written is never cut.

use std::fs::OpenOptions;
use std::path::Path;

use super::lock;
use super::{LogReader, ReadError, WriteError};

/// What [`trim_to_committed`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// File length before, bytes.
    pub from: u64,
    /// File length after: the committed length.
    pub to: u64,
}

/// Why a log could not be trimmed.
#[derive(Debug)]
pub enum TrimError {
    /// The file is not a log whose header can be read.
    Read(ReadError),
    /// Opening, locking (a recorder is writing it) or truncating failed.
    Write(WriteError),
}

impl std::fmt::Display for TrimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrimError::Read(e) => e.fmt(f),
            TrimError::Write(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TrimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrimError::Read(e) => Some(e),
            TrimError::Write(e) => Some(e),
        }
    }
}

/// Truncates the log at `path` to its committed length, unless a writer
/// holds it. Every reader reads the same records before and after; a log
/// that is already as long as its committed length is left alone
/// (`from == to`). A file shorter than its committed length (a torn tail)
/// is not touched either: that is damage, and cutting cannot mend it.
pub fn trim_to_committed(path: &Path) -> Result<Trimmed, TrimError> {
    let write_err =
        |context: String| move |source| TrimError::Write(WriteError { context, source });
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(write_err(format!("opening {} to trim it", path.display())))?;
    lock::lock_exclusive(&file, path, "a log is trimmed when its recorder closes it")
        .map_err(TrimError::Write)?;
    let committed = LogReader::open(path)
        .map_err(TrimError::Read)?
        .committed_len();
    // The reader's map is gone before the file shrinks under it.
    let from = file
        .metadata()
        .map_err(write_err(format!(
            "reading the length of {}",
            path.display()
        )))?
        .len();
    if from > committed {
        file.set_len(committed).map_err(write_err(format!(
            "truncating {} to {committed} bytes",
            path.display()
        )))?;
        return Ok(Trimmed {
            from,
            to: committed,
        });
    }
    Ok(Trimmed { from, to: from })
}
