//! Capture filters: tcpdump expressions compiled by libpcap into classic
//! BPF for raw IP packets, the checked program and its interpreter.
//!
//! - [`bpf`]: the instruction encoding the kernel takes, the kernel's
//!   checks, and an interpreter with libpcap's semantics.
//! - [`mod@compile`]: tcpdump expressions through libpcap's compiler.
//! - [`disasm`]: a program in words, as `tcpdump -d` prints it.
//! - [`select`]: which records a reader keeps (expression, interfaces,
//!   hooks, time range, count).

pub mod bpf;
pub mod compile;
pub mod disasm;
pub mod select;

pub use bpf::{BadProgram, Insn, Program};
pub use compile::{CompileError, Filter, FilterLink, compile, compile_for, join_words};
pub use disasm::disassemble;
pub use select::{Selection, Selector};
