//! Untrusted log files: opening and reading every event never panics,
//! also when skipping damaged frames.
#![no_main]

use imp2_format::log::{LogReader, OnDamage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = LogReader::from_bytes(data.to_vec()) {
        for event in reader.events() {
            if event.is_err() {
                break;
            }
        }
        // Skipping damage searches the rest of the bytes for intact frames.
        for event in reader.events_with(OnDamage::Skip) {
            if event.is_err() {
                break;
            }
        }
    }
});
