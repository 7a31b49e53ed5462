//! [`WriteError`]: what the writer, its backends, the reservation and the
//! lock fail with.

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
        // The OS's reason in words, without Rust's "(os error N)".
        write!(
            f,
            "{}: {}",
            self.context,
            crate::export::io_reason(&self.source)
        )
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
