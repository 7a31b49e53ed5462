//! Untrusted netlink batches: the walker must never panic, and every record
//! it yields must lie inside the buffer.
#![no_main]

use imp2_format::wire::{BatchWalker, BatchMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for item in BatchWalker::new(data) {
        if let Ok(item) = item {
            assert!(item.offset + item.header.len as usize <= data.len());
            if let BatchMessage::Record(r) = item.message {
                assert!(r.data.len() as u64 <= u64::from(r.orig_len));
            }
        }
    }
});
