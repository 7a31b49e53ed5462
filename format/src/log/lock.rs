//! The lock that makes a log one writer's: an exclusive `flock`, and the
//! name of whoever holds it when it is refused.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::WriteError;

/// Takes an exclusive `flock` on the log for as long as `file` is open (it
/// goes with the descriptor), so that a second recorder started on the same
/// path fails instead of truncating a log that is being written. Readers
/// take no lock: a live log is readable up to its committed length. When
/// another process holds the lock, the error names it and ends with
/// `busy_advice` (what to do instead).
pub(crate) fn lock_exclusive(
    file: &File,
    path: &Path,
    busy_advice: &str,
) -> Result<(), WriteError> {
    // SAFETY: plain system call on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let source = io::Error::last_os_error();
    let context = if source.raw_os_error() == Some(libc::EWOULDBLOCK) {
        let holder = lock_holder(file).map_or(String::new(), |pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!(" ({} pid {pid})", name.trim())
        });
        format!(
            "{} is being written by another process{holder}; {busy_advice}",
            path.display()
        )
    } else {
        format!("locking {}", path.display())
    };
    Err(WriteError { context, source })
}

/// Pid of the process holding a `flock` on `file`, from `/proc/locks`
/// (`N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`, device numbers in
/// hex), if it can be found.
fn lock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let id = format!(
        "{:02x}:{:02x}:{}",
        libc::major(dev),
        libc::minor(dev),
        meta.ino()
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Waiters are listed as `N: -> FLOCK ...`; holders have 8 fields.
        match fields[..] {
            [_, "FLOCK", _, _, pid, file_id, ..] if file_id == id => pid.parse().ok(),
            _ => None,
        }
    })
}
