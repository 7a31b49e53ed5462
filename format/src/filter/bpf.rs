//! Classic BPF programs: the instruction encoding (`struct sock_filter`,
//! 8 bytes), a checker with the kernel's rules and an interpreter with
//! libpcap's semantics.
//!
//! A program is what libpcap's compiler makes of a tcpdump expression
//! ([`super::compile()`]); the kernel module runs it at the hook (the kernel's
//! `bpf_prog_create` checks it again there), and the recorder (NFLOG
//! source) and the readers run it here. [`Program::new`] validates once,
//! so [`Program::run`] never panics and always ends: jumps only go forward
//! and every path ends in a `ret`.
//!
//! Semantics, as libpcap's `bpf_filter` and the kernel's cBPF agree on them:
//! a load past the captured bytes ends the program with 0 (reject); a
//! division or remainder by X = 0 returns 0; `len` is the packet's length
//! on the wire, which may exceed the captured bytes. Where the two differ
//! (a shift by X >= 32: 0 in libpcap, X & 31 in the kernel's JIT), this
//! interpreter follows libpcap; libpcap's compiler never emits such shifts
//! for an expression.

use std::fmt;

/// Most instructions the kernel accepts in one program (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;
/// Scratch memory words (`BPF_MEMWORDS`).
pub const MEM_WORDS: usize = 16;
/// Bytes of one encoded instruction: `u16 code, u8 jt, u8 jf, u32 k`, in
/// the host's byte order as the kernel takes it.
pub const INSN_LEN: usize = 8;

// Instruction classes, sizes, modes and operations (linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;

const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;

const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;

const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const MOD: u16 = 0x90;
const XOR: u16 = 0xa0;

const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;

/// Source operand: the constant `k` or the index register X.
const SRC_X: u16 = 0x08;
/// `ret` operand: the accumulator.
const RET_A: u16 = 0x10;
/// `txa` (`tax` is 0x00).
const TXA: u16 = 0x80;

/// One instruction, as `struct sock_filter` / `struct bpf_insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Class, size, mode or operation bits.
    pub code: u16,
    /// Forward jump when the condition holds.
    pub jt: u8,
    /// Forward jump when it does not.
    pub jf: u8,
    /// The constant operand.
    pub k: u32,
}

impl Insn {
    /// The 8 bytes the kernel takes (host byte order).
    pub fn to_bytes(self) -> [u8; INSN_LEN] {
        let mut b = [0u8; INSN_LEN];
        b[0..2].copy_from_slice(&self.code.to_ne_bytes());
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..8].copy_from_slice(&self.k.to_ne_bytes());
        b
    }

    /// Reads one instruction from 8 bytes (host byte order).
    pub fn from_bytes(b: [u8; INSN_LEN]) -> Insn {
        Insn {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl fmt::Display for Insn {
    /// `code jt jf k`, as `tcpdump -ddd` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.code, self.jt, self.jf, self.k)
    }
}

/// Why a program was refused: the instruction and the rule it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadProgram {
    /// No instructions.
    Empty,
    /// More than [`MAX_INSNS`].
    TooLong(usize),
    /// Byte length not a multiple of [`INSN_LEN`].
    Ragged(usize),
    /// An opcode this interpreter (and the kernel's cBPF) does not know.
    UnknownOpcode { at: usize, code: u16 },
    /// A jump past the last instruction.
    JumpOut { at: usize },
    /// Division or remainder by the constant 0.
    DivideByZero { at: usize },
    /// A shift by a constant of 32 or more (the kernel refuses it).
    ShiftTooFar { at: usize },
    /// A scratch memory index of [`MEM_WORDS`] or more.
    MemoryIndex { at: usize, index: u32 },
    /// A scratch word read before any path stored it.
    UninitializedMemory { at: usize, index: u32 },
    /// The last instruction is not a `ret`, so a path could run off the end.
    NoReturn,
}

impl fmt::Display for BadProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadProgram::Empty => write!(f, "the program has no instructions"),
            BadProgram::TooLong(n) => write!(
                f,
                "the program has {n} instructions, more than the {MAX_INSNS} the kernel accepts"
            ),
            BadProgram::Ragged(n) => write!(
                f,
                "{n} bytes is not a whole number of {INSN_LEN}-byte instructions"
            ),
            BadProgram::UnknownOpcode { at, code } => {
                write!(f, "instruction {at}: unknown opcode {code:#06x}")
            }
            BadProgram::JumpOut { at } => {
                write!(f, "instruction {at}: jumps past the end of the program")
            }
            BadProgram::DivideByZero { at } => {
                write!(f, "instruction {at}: divides by the constant 0")
            }
            BadProgram::ShiftTooFar { at } => {
                write!(f, "instruction {at}: shifts by 32 or more")
            }
            BadProgram::MemoryIndex { at, index } => write!(
                f,
                "instruction {at}: scratch memory index {index} (there are {MEM_WORDS})"
            ),
            BadProgram::UninitializedMemory { at, index } => write!(
                f,
                "instruction {at}: reads scratch word {index} before it is written"
            ),
            BadProgram::NoReturn => write!(f, "the last instruction is not a return"),
        }
    }
}

impl std::error::Error for BadProgram {}

/// A checked program: every instruction known, every jump inside, every
/// path ending in a `ret`, scratch memory written before it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
}

impl Program {
    /// Checks `insns` with the rules of the kernel's `bpf_check_classic`.
    pub fn new(insns: Vec<Insn>) -> Result<Program, BadProgram> {
        check(&insns)?;
        Ok(Program { insns })
    }

    /// Reads and checks a program in the kernel's encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, BadProgram> {
        if bytes.len() % INSN_LEN != 0 {
            return Err(BadProgram::Ragged(bytes.len()));
        }
        let insns = bytes
            .chunks_exact(INSN_LEN)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunks of INSN_LEN")))
            .collect();
        Program::new(insns)
    }

    /// The instructions.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// The kernel's encoding, for the module's REGISTER request.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.insns.iter().flat_map(|i| i.to_bytes()).collect()
    }

    /// Runs the program on a packet of which `data` was captured and
    /// `wire_len` bytes were on the wire; returns how many bytes to keep
    /// (0: reject).
    pub fn run(&self, data: &[u8], wire_len: u32) -> u32 {
        self.run_on(
            Bytes {
                head: &[],
                tail: data,
            },
            wire_len,
        )
    }

    /// [`run`](Program::run) on a packet whose captured bytes are `head`
    /// followed by `tail` (a link-layer header made up for a record, then
    /// its IP packet), without copying them together.
    pub fn run_split(&self, head: &[u8], tail: &[u8], wire_len: u32) -> u32 {
        self.run_on(Bytes { head, tail }, wire_len)
    }

    fn run_on(&self, data: Bytes<'_>, wire_len: u32) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEM_WORDS];
        let mut pc = 0usize;
        // `check` proved: pc stays in range (jumps forward, last is ret),
        // memory indexes < MEM_WORDS, no constant divisor 0.
        loop {
            let i = self.insns[pc];
            pc += 1;
            let src = |x: u32| if i.code & SRC_X != 0 { x } else { i.k };
            match i.code & 0x07 {
                LD | LDX => {
                    let value = match (i.code & 0x07, i.code & 0xe0) {
                        (_, IMM) => i.k,
                        (_, LEN) => wire_len,
                        (_, MEM) => mem[i.k as usize],
                        (LD, ABS) => match data.load(i.k, i.code & 0x18) {
                            Some(v) => v,
                            None => return 0,
                        },
                        // X + k does not wrap: past 4 GiB is out of range, as
                        // libpcap's bpf_filter checks it.
                        (LD, IND) => match u32::try_from(u64::from(x) + u64::from(i.k))
                            .ok()
                            .and_then(|at| data.load(at, i.code & 0x18))
                        {
                            Some(v) => v,
                            None => return 0,
                        },
                        // LDX MSH: X = 4 * (P[k] & 0xf), the IPv4 header length.
                        _ => match data.byte(i.k as usize) {
                            Some(b) => u32::from(b & 0x0f) << 2,
                            None => return 0,
                        },
                    };
                    if i.code & 0x07 == LD {
                        a = value;
                    } else {
                        x = value;
                    }
                }
                ST => mem[i.k as usize] = a,
                STX => mem[i.k as usize] = x,
                ALU => {
                    let s = src(x);
                    a = match i.code & 0xf0 {
                        ADD => a.wrapping_add(s),
                        SUB => a.wrapping_sub(s),
                        MUL => a.wrapping_mul(s),
                        DIV => match a.checked_div(s) {
                            Some(v) => v,
                            None => return 0,
                        },
                        MOD => match a.checked_rem(s) {
                            Some(v) => v,
                            None => return 0,
                        },
                        OR => a | s,
                        AND => a & s,
                        XOR => a ^ s,
                        LSH => a.checked_shl(s).unwrap_or(0),
                        RSH => a.checked_shr(s).unwrap_or(0),
                        _ => a.wrapping_neg(), // NEG
                    };
                }
                JMP => {
                    let taken = match i.code & 0xf0 {
                        JA => {
                            pc += i.k as usize;
                            continue;
                        }
                        JEQ => a == src(x),
                        JGT => a > src(x),
                        JGE => a >= src(x),
                        _ => a & src(x) != 0, // JSET
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                RET => return if i.code & RET_A != 0 { a } else { i.k },
                _ => {
                    // MISC
                    if i.code & 0xf8 == TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
            }
        }
    }
}

/// A packet's captured bytes, in up to two pieces.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

impl Bytes<'_> {
    fn byte(&self, at: usize) -> Option<u8> {
        match at.checked_sub(self.head.len()) {
            None => Some(self.head[at]),
            Some(t) => self.tail.get(t).copied(),
        }
    }

    /// Big-endian load of a word, half-word or byte at `offset`.
    #[inline]
    fn load(&self, offset: u32, size: u16) -> Option<u32> {
        let at = offset as usize;
        let n = match size {
            W => 4,
            H => 2,
            _ => 1,
        };
        // The common case: all of it in the tail (no made-up header).
        if let Some(t) = at.checked_sub(self.head.len()) {
            let b = self.tail.get(t..t.checked_add(n)?)?;
            return Some(b.iter().fold(0u32, |v, &x| v << 8 | u32::from(x)));
        }
        let mut v = 0u32;
        for k in 0..n {
            v = v << 8 | u32::from(self.byte(at.checked_add(k)?)?);
        }
        Some(v)
    }
}

/// Whether `code` is an instruction of classic BPF: the kernel's list in
/// `bpf_check_classic` without the ancillary loads (negative offsets are
/// ordinary loads here, out of range), which libpcap's compiler does not
/// emit for a raw-IP expression.
fn known(code: u16) -> bool {
    const ALU_OPS: [u16; 10] = [ADD, SUB, MUL, DIV, MOD, AND, OR, XOR, LSH, RSH];
    const JMP_OPS: [u16; 4] = [JEQ, JGT, JGE, JSET];
    match code & 0x07 {
        LD => [
            W | ABS,
            H | ABS,
            B | ABS,
            W | LEN,
            W | IND,
            H | IND,
            B | IND,
            IMM,
            MEM,
        ]
        .contains(&(code & !0x07)),
        LDX => [W | LEN, B | MSH, IMM, MEM].contains(&(code & !0x07)),
        ST | STX => code & !0x07 == 0,
        ALU => code == ALU | NEG || (ALU_OPS.contains(&(code & 0xf0)) && code & !0xf8 == ALU),
        JMP => code == JMP | JA || (JMP_OPS.contains(&(code & 0xf0)) && code & !0xf8 == JMP),
        RET => code == RET || code == RET | RET_A,
        _ => code == MISC || code == MISC | TXA,
    }
}

/// The kernel's rules (net/core/filter.c, `bpf_check_classic` and
/// `check_load_and_stores`).
fn check(insns: &[Insn]) -> Result<(), BadProgram> {
    let n = insns.len();
    if n == 0 {
        return Err(BadProgram::Empty);
    }
    if n > MAX_INSNS {
        return Err(BadProgram::TooLong(n));
    }
    for (at, i) in insns.iter().enumerate() {
        if !known(i.code) {
            return Err(BadProgram::UnknownOpcode { at, code: i.code });
        }
        let class = i.code & 0x07;
        let rest_of = at + 1;
        match class {
            ALU if i.code & SRC_X == 0 => match i.code & 0xf0 {
                DIV | MOD if i.k == 0 => return Err(BadProgram::DivideByZero { at }),
                LSH | RSH if i.k >= 32 => return Err(BadProgram::ShiftTooFar { at }),
                _ => {}
            },
            LD | LDX if i.code & 0xe0 == MEM && i.k as usize >= MEM_WORDS => {
                return Err(BadProgram::MemoryIndex { at, index: i.k });
            }
            ST | STX if i.k as usize >= MEM_WORDS => {
                return Err(BadProgram::MemoryIndex { at, index: i.k });
            }
            JMP => {
                let past = |off: usize| rest_of.checked_add(off).is_none_or(|t| t >= n);
                let out = if i.code & 0xf0 == JA {
                    past(i.k as usize)
                } else {
                    past(usize::from(i.jt)) || past(usize::from(i.jf))
                };
                if out {
                    return Err(BadProgram::JumpOut { at });
                }
            }
            _ => {}
        }
    }
    if insns[n - 1].code & 0x07 != RET {
        return Err(BadProgram::NoReturn);
    }
    check_memory(insns)
}

/// Scratch memory is read only after every path to the read stored it (the
/// kernel's `check_load_and_stores`): a bit set per word, intersected where
/// paths join. Jumps go forward only, so one pass in order suffices.
fn check_memory(insns: &[Insn]) -> Result<(), BadProgram> {
    const ALL: u16 = u16::MAX;
    // Words known stored on every path reaching each instruction; ALL
    // until some path reaches it (the meet's neutral element).
    let mut stored = vec![ALL; insns.len()];
    let mut reached = vec![false; insns.len()];
    stored[0] = 0;
    reached[0] = true;
    for (at, i) in insns.iter().enumerate() {
        if !reached[at] {
            continue;
        }
        let mut s = stored[at];
        match i.code & 0x07 {
            ST | STX => s |= 1 << i.k,
            LD | LDX if i.code & 0xe0 == MEM && s & (1 << i.k) == 0 => {
                return Err(BadProgram::UninitializedMemory { at, index: i.k });
            }
            _ => {}
        }
        let mut flow = |to: usize| {
            stored[to] &= s;
            reached[to] = true;
        };
        match i.code & 0x07 {
            RET => {}
            JMP if i.code & 0xf0 == JA => flow(at + 1 + i.k as usize),
            JMP => {
                flow(at + 1 + usize::from(i.jt));
                flow(at + 1 + usize::from(i.jf));
            }
            _ => flow(at + 1),
        }
    }
    Ok(())
}
