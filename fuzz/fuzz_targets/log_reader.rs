//! Untrusted log files: opening and reading every event never panics.
#![no_main]

use imp2_format::log::LogReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = LogReader::from_bytes(data.to_vec()) {
        for event in reader.events() {
            if event.is_err() {
                break;
            }
        }
    }
});
