//! Untrusted classic-BPF programs (what a REGISTER request may carry, what
//! `-d` prints): the checker never panics; a program it accepts runs to an
//! end on any packet (whole, cut, empty) without panicking and
//! re-encodes to the same bytes.
#![no_main]

use imp2_format::filter::Program;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into program and packet.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (usize::from(split) * 8).min(rest.len() - rest.len() % 8);
    let (code, packet) = rest.split_at(at);
    let Ok(program) = Program::from_bytes(code) else {
        return;
    };
    assert_eq!(program.to_bytes(), code);
    for cut in [packet.len(), packet.len() / 2, 0] {
        let _ = program.run(&packet[..cut], packet.len() as u32);
    }
});
