//! How much receive buffer the CPU's cache holds.
//!
//! The kernel copies each batch into the next buffer of the receive ring,
//! and the recorder walks it right after. When the ring is larger than the
//! core's level-2 cache, every copy lands in memory that was evicted since
//! its last use: measured on an AMD EPYC (Zen 3, 512 KiB L2 per core) the
//! NFLOG source's 4 x 256 KiB ring made the kernel's copy cost about 148 ns
//! a packet against 25-30 ns into one cache-resident buffer (issue 19). So
//! the ring is sized from the L2 of the machine at hand, read from sysfs.

use std::path::Path;

/// Bytes of the ring when the cache size cannot be read: what fitted the
/// machines measured before the size was read (2 MiB L2 and up).
pub const RING_BYTES_UNKNOWN_CACHE: usize = 1 << 20;

/// Overrides the ring's size in bytes (suffix K or M), for measuring one
/// size against another on the same machine; not for users.
pub const RING_BYTES_ENV: &str = "IMP2_RING_BYTES";

/// Share of the L2 the ring may take: the rest is for the log's frame
/// buffer and the walk's own data, which are hot at the same time.
const L2_SHARE_DIVISOR: usize = 2;

/// Bytes the receive ring should take together: half the level-2 cache of
/// CPU 0 (`/sys/devices/system/cpu/cpu0/cache`), [`RING_BYTES_UNKNOWN_CACHE`]
/// when that cannot be read, or the [`RING_BYTES_ENV`] override.
pub fn ring_bytes() -> usize {
    if let Some(bytes) = std::env::var(RING_BYTES_ENV)
        .ok()
        .and_then(|v| parse_size(&v))
    {
        return bytes;
    }
    l2_bytes(Path::new("/sys/devices/system/cpu/cpu0/cache"))
        .map_or(RING_BYTES_UNKNOWN_CACHE, |l2| l2 / L2_SHARE_DIVISOR)
}

/// Size of the level-2 data (or unified) cache described under `dir` (the
/// `indexN/{level,type,size}` files of sysfs), if there is one.
pub fn l2_bytes(dir: &Path) -> Option<usize> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().find_map(|entry| {
        let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
        let level = read("level")?;
        let kind = read("type")?;
        (level.trim() == "2" && matches!(kind.trim(), "Unified" | "Data"))
            .then(|| parse_size(&read("size")?))
            .flatten()
    })
}

/// `2048K`, `1M`, `524288` as bytes (sysfs ends them with a newline): the
/// command line's sizes.
fn parse_size(s: &str) -> Option<usize> {
    crate::cli::parse_size(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_dir(levels: &[(&str, &str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (i, (level, kind, size)) in levels.iter().enumerate() {
            let index = dir.path().join(format!("index{i}"));
            std::fs::create_dir(&index).unwrap();
            std::fs::write(index.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(index.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(index.join("size"), format!("{size}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn the_level_2_cache_is_found_among_the_others() {
        // Zen 3 as the issue measured it, and this project's Xeon VMs.
        let zen3 = cache_dir(&[
            ("1", "Data", "32K"),
            ("1", "Instruction", "32K"),
            ("2", "Unified", "512K"),
            ("3", "Unified", "32768K"),
        ]);
        assert_eq!(l2_bytes(zen3.path()), Some(512 << 10));
        let xeon = cache_dir(&[("1", "Data", "48K"), ("2", "Unified", "2048K")]);
        assert_eq!(l2_bytes(xeon.path()), Some(2 << 20));
        let none = cache_dir(&[("1", "Data", "48K"), ("3", "Unified", "1M")]);
        assert_eq!(l2_bytes(none.path()), None);
        assert_eq!(l2_bytes(Path::new("/nonexistent")), None);
    }

    #[test]
    fn sizes_read_as_sysfs_writes_them() {
        assert_eq!(parse_size("2048K\n"), Some(2 << 20));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("524288"), Some(512 << 10));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("K"), None);
    }
}
