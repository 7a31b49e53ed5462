//! A small tmpfs, for tests of a full disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A small tmpfs mounted on a directory of its own, for tests of a full
/// disk. Unmounted and its directory removed on drop, also when a step
/// fails or panics. Mounting needs root.
#[derive(Debug)]
pub struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `1m`, `3m`).
    pub fn mount(size: &str) -> Result<SmallTmpfs, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("imp2-tmpfs-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let fs = SmallTmpfs { path };
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "imp2test"])
            .arg(&fs.path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a {size} tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(fs)
    }

    /// Mounts a tmpfs of `size` for a test, or fails the test with the
    /// reason (the same way in every test that needs one: see
    /// [`crate::needs_root`]).
    pub fn for_test(size: &str) -> SmallTmpfs {
        crate::needs_root("a small tmpfs", SmallTmpfs::mount(size))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir(&self.path);
    }
}
