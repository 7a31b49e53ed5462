//! Interface names for the log: all known at start go in the header; an
//! ifindex seen later is named once, when it first appears.

use std::collections::HashSet;
use std::ffi::CStr;

use imp2_format::log::Interface;

/// Every interface of this network namespace (`if_nameindex`).
pub fn all() -> Vec<Interface> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns a heap array terminated by an entry with
    // index 0 (or NULL on error), which we read and then free exactly once.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut entry = list;
        while (*entry).if_index != 0 {
            let name = CStr::from_ptr((*entry).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(Interface {
                ifindex: (*entry).if_index,
                name,
            });
            entry = entry.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

/// Name of `ifindex` now, or `if<N>` if it has none (gone already).
pub fn name_of(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf holds IF_NAMESIZE bytes as if_indextoname requires; the
    // result is NUL-terminated when non-null.
    let name = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if name.is_null() {
        format!("if{ifindex}")
    } else {
        // SAFETY: non-null means buf now holds a NUL-terminated name.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Which ifindexes the log already names; the common small ones in a
/// bitmap so the per-record check costs a load and a test.
#[derive(Debug, Default)]
pub struct KnownInterfaces {
    small: Vec<u64>,
    large: HashSet<u32>,
}

const SMALL: u32 = 4096;

impl KnownInterfaces {
    /// Marks `ifindex` as named; returns whether it was new.
    pub fn insert(&mut self, ifindex: u32) -> bool {
        if ifindex < SMALL {
            if self.small.is_empty() {
                self.small = vec![0; (SMALL / 64) as usize];
            }
            let (word, bit) = ((ifindex / 64) as usize, ifindex % 64);
            let new = self.small[word] & (1 << bit) == 0;
            self.small[word] |= 1 << bit;
            new
        } else {
            self.large.insert(ifindex)
        }
    }

    /// Whether `ifindex` is named already.
    #[inline]
    pub fn contains(&self, ifindex: u32) -> bool {
        if ifindex < SMALL {
            self.small
                .get((ifindex / 64) as usize)
                .is_some_and(|w| w & (1 << (ifindex % 64)) != 0)
        } else {
            self.large.contains(&ifindex)
        }
    }
}
