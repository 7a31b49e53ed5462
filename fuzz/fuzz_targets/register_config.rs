//! Untrusted REGISTER payloads (what the loadgen and module parse): parsing
//! never panics and whatever parses re-encodes to the same bytes.
#![no_main]

use imp2_format::wire::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = Config::parse(data) {
        assert_eq!(&config.to_bytes()[..], &data[..64]);
    }
});
