//! Shared code of the imp2 tools: opening a log with one-line errors
//! (here), the command line's error style (`cli`), the reading filters
//! (`selection`), and the summary of a log that `imp2-info` prints
//! (`summary`, its text in `summary_text`).

pub mod cli;
pub mod selection;
mod summary;
mod summary_text;

pub use summary::{
    ErrorSummary, FilterSummary, FooterState, HeaderSummary, Integrity, InterfaceSummary,
    LogSummary, SkippedSummary,
};
pub use summary_text::StopSummary;

use std::path::Path;

use imp2_format::export::{io_reason, read_error_reason};
use imp2_format::log::{LogReader, ReadError, ReadErrorKind};

/// Exit code: the tool did what was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: a runtime or integrity error (clap uses 2 for usage errors).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: wrong usage (same as clap's).
pub const EXIT_USAGE: u8 = 2;

/// A failure worth one line on stderr, and the exit code to end with.
#[derive(Debug)]
pub struct Failure {
    /// The line, without the tool's name.
    pub message: String,
    /// Exit code.
    pub code: u8,
}

impl Failure {
    /// A runtime failure (exit 1).
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: EXIT_FAILURE,
        }
    }

    /// A usage failure (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    /// Prints `tool: message` on stderr and returns the exit code.
    pub fn report(&self, tool: &str) -> std::process::ExitCode {
        cli::report(tool, self, false)
    }
}

/// One line for a read error: `<reason> at byte N` (no offset for errors
/// that concern the whole file: I/O, not a log, version).
pub fn describe_read_error(e: &ReadError) -> String {
    use imp2_format::log::ReadErrorKind::*;
    let reason = read_error_reason(&e.kind);
    match e.kind {
        Io(_) | NotALog | UnsupportedVersion { .. } => reason,
        _ => format!("{reason} at byte {}", e.offset),
    }
}

/// Opens the log at `path`, or fails with `PATH: reason`.
pub fn open_log(path: &Path) -> Result<LogReader, Failure> {
    // The reader maps the file: say clearly what is not a regular file
    // rather than letting mmap fail obscurely.
    match std::fs::metadata(path) {
        Err(e) => {
            return Err(Failure::runtime(format!(
                "{}: {}",
                path.display(),
                io_reason(&e)
            )));
        }
        Ok(m) if m.is_dir() => {
            return Err(Failure::runtime(format!(
                "{}: is a directory, not an imp2 log",
                path.display()
            )));
        }
        Ok(m) if !m.is_file() => {
            // /dev/null, a pipe from `<(...)`: the reader maps the log, and
            // such files read as empty or cannot be mapped.
            return Err(Failure::runtime(format!(
                "{}: is {}, not an imp2 log (a log is a regular file)",
                path.display(),
                file_kind(&m.file_type())
            )));
        }
        Ok(_) => {}
    }
    LogReader::open(path).map_err(|e| {
        // "Bad magic" is all the reader can say; an empty file or a
        // capture passed by mistake gets a clearer reason.
        let reason = match e.kind {
            ReadErrorKind::NotALog => LogReader::mistaken_input(path).map(str::to_string),
            _ => None,
        };
        let reason = reason.unwrap_or_else(|| describe_read_error(&e));
        Failure::runtime(format!("{}: {reason}", path.display()))
    })
}

/// What a file that is neither regular nor a directory is, with its article.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}
