//! Untrusted REGISTER payloads (what the loadgen and module parse): parsing
//! never panics; whatever parses re-encodes to the same config bytes and,
//! with a filter extension, to exactly the same payload.
#![no_main]

use imp2_format::wire::Register;
use imp2_format::wire::abi::config::SIZE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(register) = Register::parse(data) {
        let bytes = register.to_bytes();
        assert_eq!(&bytes[..SIZE], &data[..SIZE]);
        if register.filter.is_some() {
            assert_eq!(&bytes[..], data);
        }
    }
});
