//! A program in words, as `tcpdump -d` prints it (libpcap's `bpf_image`):
//! what `imp2-record -d` shows.

use std::fmt::Write;

use super::bpf::{Insn, Program};

/// One line per instruction: `(000) ldb      [0]`, conditional jumps with
/// their absolute targets (`jt 3`, a tab, `jf 9`).
pub fn disassemble(program: &Program) -> String {
    let mut out = String::new();
    for (at, i) in program.insns().iter().enumerate() {
        let (op, operand) = words(i, at);
        let jumps = i.code & 0x07 == 0x05 && i.code & 0xf0 != 0x00;
        if jumps {
            let (t, f) = (at + 1 + usize::from(i.jt), at + 1 + usize::from(i.jf));
            let _ = writeln!(out, "({at:03}) {op:<8} {operand:<16} jt {t}\tjf {f}");
        } else if operand.is_empty() {
            let _ = writeln!(out, "({at:03}) {op}");
        } else {
            let _ = writeln!(out, "({at:03}) {op:<8} {operand}");
        }
    }
    out
}

/// Mnemonic and operand of one instruction.
fn words(i: &Insn, at: usize) -> (&'static str, String) {
    let k = i.k;
    let src = if i.code & 0x08 != 0 {
        "x".to_string()
    } else {
        format!("#{k:#x}")
    };
    let dec = if i.code & 0x08 != 0 {
        "x".to_string()
    } else {
        format!("#{k}")
    };
    match i.code {
        0x06 => ("ret", format!("#{k}")),
        0x16 => ("ret", String::new()),
        0x20 => ("ld", format!("[{k}]")),
        0x28 => ("ldh", format!("[{k}]")),
        0x30 => ("ldb", format!("[{k}]")),
        0x80 => ("ld", "#pktlen".into()),
        0x40 => ("ld", format!("[x + {k}]")),
        0x48 => ("ldh", format!("[x + {k}]")),
        0x50 => ("ldb", format!("[x + {k}]")),
        0x00 => ("ld", format!("#{k:#x}")),
        0x01 => ("ldx", format!("#{k:#x}")),
        0x81 => ("ldxl", "#pktlen".into()),
        0xb1 => ("ldxb", format!("4*([{k}]&0xf)")),
        0x60 => ("ld", format!("M[{k}]")),
        0x61 => ("ldx", format!("M[{k}]")),
        0x02 => ("st", format!("M[{k}]")),
        0x03 => ("stx", format!("M[{k}]")),
        0x05 => ("ja", format!("{}", at + 1 + k as usize)),
        0x07 => ("tax", String::new()),
        0x87 => ("txa", String::new()),
        0x84 => ("neg", String::new()),
        c => match (c & 0x07, c & 0xf0) {
            (0x05, 0x10) => ("jeq", src),
            (0x05, 0x20) => ("jgt", src),
            (0x05, 0x30) => ("jge", src),
            (0x05, 0x40) => ("jset", src),
            (0x04, 0x00) => ("add", dec),
            (0x04, 0x10) => ("sub", dec),
            (0x04, 0x20) => ("mul", dec),
            (0x04, 0x30) => ("div", dec),
            (0x04, 0x90) => ("mod", dec),
            (0x04, 0x50) => ("and", src),
            (0x04, 0x40) => ("or", src),
            (0x04, 0xa0) => ("xor", src),
            (0x04, 0x60) => ("lsh", dec),
            (0x04, 0x70) => ("rsh", dec),
            _ => ("unimp", format!("{c:#x}")),
        },
    }
}
